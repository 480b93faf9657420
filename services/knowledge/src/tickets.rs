//! New tickets teach the knowledge base what it lacks: each ticket ticketing creates is matched
//! against the articles, and one that no article answers confidently is recorded as uncovered,
//! for the content-gap report. Recording is idempotent per ticket, so a redelivered event
//! changes nothing; an event is acknowledged once it is recorded.

use std::sync::Arc;

use helpdesk_events::{BusError, EventBus, EventStream, handle_delivery, next_delivery};
use helpdesk_proto::events::v1::event::Payload;
use helpdesk_runtime::shutdown::Shutdown;

use crate::service::Knowledge;

/// Ticket events, on a durable consumer named for the knowledge service (replicas share it).
pub(crate) async fn subscribe(bus: &dyn EventBus) -> Result<EventStream, BusError> {
    bus.subscribe("knowledge-tickets", Some("*.ticket.>")).await
}

pub(crate) async fn run(knowledge: Arc<Knowledge>, mut events: EventStream, shutdown: Shutdown) {
    loop {
        let Some(delivery) = next_delivery(&mut events, &shutdown).await else { return };
        handle_delivery(delivery, &shutdown, |event| {
            let knowledge = knowledge.clone();
            async move {
                let Some(Payload::TicketCreated(created)) = &event.payload else { return Ok(()) };
                let Some(ticket) = &created.ticket else { return Ok(()) };
                knowledge.note_ticket(&event.tenant_id, &ticket.id, &ticket.subject, &ticket.description).await
            }
        })
        .await;
    }
}
