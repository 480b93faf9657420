//! Survey triggers: a ticket solved in ticketing is matched against the tenant's survey rules,
//! and an invitation is scheduled; a reopened ticket withdraws the one not yet sent. Planning is
//! idempotent per ticket and survey, so a redelivered event changes nothing.

use std::sync::Arc;

use helpdesk_events::{BusError, EventBus, EventStream, handle_delivery, next_delivery};
use helpdesk_proto::{
    events::v1::{TicketStatusChanged, event::Payload},
    ticketing::v1::{GetCustomerRequest, GetTicketRequest, Status},
};
use helpdesk_runtime::{ServiceError, shutdown::Shutdown};

use crate::{Feedback, Peers, invitations::SolvedTicket};

/// Status changes of tickets, on a durable consumer the replicas share.
pub(crate) async fn subscribe(bus: &dyn EventBus) -> Result<EventStream, BusError> {
    bus.subscribe("feedback-surveys", Some("*.ticket.status_changed")).await
}

pub(crate) async fn run(feedback: Arc<Feedback>, peers: Peers, mut events: EventStream, shutdown: Shutdown) {
    loop {
        let Some(delivery) = next_delivery(&mut events, &shutdown).await else { return };
        // Ticketing or the database away for a while: the survey waits for it rather than being
        // lost; a refusal becomes a dead letter, so it cannot hold up every later survey.
        handle_delivery(delivery, &shutdown, |event| {
            let (feedback, peers) = (feedback.clone(), peers.clone());
            async move {
                let Some(Payload::TicketStatusChanged(change)) = &event.payload else { return Ok(()) };
                handle(&feedback, &peers, &event.tenant_id, change).await
            }
        })
        .await;
    }
}

async fn handle(
    feedback: &Feedback,
    peers: &Peers,
    tenant: &str,
    change: &TicketStatusChanged,
) -> Result<(), ServiceError> {
    let solved = Status::Solved as i32;
    if change.to != solved {
        // Reopened: the resolution did not hold. Closing keeps the survey.
        if change.from == solved && change.to != Status::Closed as i32 {
            feedback.cancel_invitations(tenant, &change.ticket_id).await?;
        }
        return Ok(());
    }
    let mut tickets = peers.tickets();
    let ticket =
        match tickets.get_ticket(peers.request(tenant, GetTicketRequest { id: change.ticket_id.clone() })?).await {
            Ok(ticket) => ticket.into_inner(),
            Err(status) if status.code() == tonic::Code::NotFound => return Ok(()),
            Err(status) => return Err(ServiceError::from_status(&status)),
        };
    // Reopened again before this event was handled: the later events decide.
    if ticket.status != solved {
        return Ok(());
    }
    let customer_language = if ticket.requester_id.is_empty() {
        String::new()
    } else {
        match peers
            .customers()
            .get_customer(peers.request(tenant, GetCustomerRequest { id: ticket.requester_id.clone() })?)
            .await
        {
            Ok(customer) => customer.into_inner().language,
            Err(status) if status.code() == tonic::Code::NotFound => String::new(),
            Err(status) => return Err(ServiceError::from_status(&status)),
        }
    };
    let solved_at = ticket
        .solved_at
        .as_ref()
        .map_or_else(helpdesk_runtime::time::now_micros, helpdesk_runtime::time::timestamp_to_micros);
    let planned = feedback
        .plan_invitation(
            tenant,
            &SolvedTicket {
                ticket_id: ticket.id,
                customer_id: ticket.requester_id,
                customer_language,
                channel: ticket.channel,
                agent_id: ticket.assignee_id,
                team: ticket.group,
                tags: ticket.tags,
                solved_at,
            },
        )
        .await?;
    if let Some(invitation) = planned {
        tracing::info!(%tenant, ticket = %change.ticket_id, %invitation, "survey scheduled");
    }
    Ok(())
}
