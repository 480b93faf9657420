//! New tickets teach the knowledge base what it lacks: each ticket ticketing creates is matched
//! against the articles, and one that no article answers confidently is recorded as uncovered,
//! for the content-gap report. Recording is idempotent per ticket, so a redelivered event
//! changes nothing; an event is acknowledged once it is recorded.

use std::sync::Arc;

use helpdesk_events::{BusError, EventBus, EventStream, next_delivery};
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
        let Some(Payload::TicketCreated(created)) = &delivery.event.payload else {
            let _ = delivery.ack().await;
            continue;
        };
        let Some(ticket) = &created.ticket else {
            let _ = delivery.ack().await;
            continue;
        };
        let tenant = &delivery.event.tenant_id;
        let mut attempts = 0u64;
        while let Err(error) = knowledge.note_ticket(tenant, &ticket.id, &ticket.subject, &ticket.description).await {
            attempts += 1;
            tracing::warn!(error = %error.message, ticket = %ticket.id, attempts, "uncovered-ticket check will be retried");
            if attempts >= 5 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200 * attempts)).await;
        }
        if let Err(error) = delivery.ack().await {
            tracing::warn!(%error, "event acknowledgement failed; it will be redelivered");
        }
    }
}
