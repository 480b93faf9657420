//! Writes routing's decisions to ticketing: each work item's desired assignee, queue (the
//! ticket's group) and priority, and escalation notes. Idempotent: a ticket already showing the
//! desired values is left alone, notes carry their id as idempotency key, and an item is marked
//! synced only with the values actually written.

use std::{sync::Arc, time::Duration};

use futures::StreamExt;
use helpdesk_proto::ticketing::v1::{
    AddMessageRequest, GetTicketRequest, Status as TicketStatus, UpdateTicketRequest, Visibility,
    ticket_service_client::TicketServiceClient,
};
use helpdesk_runtime::{error::ServiceError, shutdown::Shutdown};
use tonic::Code;

use crate::{
    ServiceLink,
    router::{Router, parse_desired},
    store,
};

const BATCH: i64 = 200;
const PARALLEL: usize = 16;
/// Retries of an update that lost a race with another change of the ticket.
const CONFLICT_RETRIES: usize = 3;

pub(crate) async fn run(router: Arc<Router>, link: ServiceLink, shutdown: Shutdown) {
    let wake = router.sync_wake.clone();
    loop {
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.clone().wait() => return,
        }
        if let Err(error) = drain(&router, &link).await {
            tracing::warn!(%error, "writing to ticketing will be retried");
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.clone().wait() => return,
            }
        }
    }
}

async fn drain(router: &Router, link: &ServiceLink) -> Result<(), ServiceError> {
    let db = router.database();
    let classify = helpdesk_runtime::db::classify;
    loop {
        let pending = store::unsynced(db, BATCH).await.map_err(classify)?;
        let notes = store::notes(db, BATCH).await.map_err(classify)?;
        if pending.is_empty() && notes.is_empty() {
            return Ok(());
        }
        let results: Vec<Result<(), ServiceError>> = futures::stream::iter(pending)
            .map(|row| async move {
                sync_item(link, &row.tenant, &row.ticket, &row.desired).await?;
                store::mark_synced(db, &row.tenant, &row.ticket, &row.desired).await.map_err(classify)
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        // Notes go out even when a ticket refuses its update; the failure is reported after.
        let failed = results.into_iter().find_map(Result::err);
        for (id, tenant, ticket, body) in notes {
            add_note(link, &tenant, &ticket, &id, &body).await?;
            store::remove_note(db, &id).await.map_err(classify)?;
        }
        if let Some(error) = failed {
            return Err(error);
        }
    }
}

fn client(link: &ServiceLink) -> TicketServiceClient<tonic::transport::Channel> {
    TicketServiceClient::new(link.channel.clone())
}

async fn sync_item(link: &ServiceLink, tenant: &str, ticket: &str, desired: &str) -> Result<(), ServiceError> {
    let Some((assignee, queue, priority)) = parse_desired(desired) else { return Ok(()) };
    for _ in 0..CONFLICT_RETRIES {
        let current =
            match client(link).get_ticket(link.request(tenant, GetTicketRequest { id: ticket.to_owned() })?).await {
                Ok(response) => response.into_inner(),
                Err(status) if status.code() == Code::NotFound => return Ok(()),
                Err(status) => return Err(ServiceError::from_status(&status)),
            };
        let finished = current.status() == TicketStatus::Solved || current.status() == TicketStatus::Closed;
        let mut update =
            UpdateTicketRequest { id: ticket.to_owned(), expected_version: current.version, ..Default::default() };
        if current.assignee_id != assignee {
            update.assignee_id = Some(assignee.clone());
        }
        // A ticket in no routing queue keeps the group ticketing gave it (a team name, say).
        if !queue.is_empty() && current.group != queue {
            update.group = Some(queue.clone());
        }
        if current.priority != priority && priority > 0 {
            update.priority = Some(priority);
        }
        let unchanged = update.assignee_id.is_none() && update.group.is_none() && update.priority.is_none();
        if finished || unchanged {
            return Ok(());
        }
        match client(link).update_ticket(link.request(tenant, update)?).await {
            Ok(_) => return Ok(()),
            Err(status) if matches!(status.code(), Code::Aborted | Code::FailedPrecondition) => continue,
            Err(status) if status.code() == Code::NotFound => return Ok(()),
            Err(status) => return Err(ServiceError::from_status(&status)),
        }
    }
    Err(ServiceError::conflict(format!("ticket {ticket} kept changing")))
}

/// Adds an internal note, written by routing, to the ticket.
pub(crate) async fn add_note(
    link: &ServiceLink,
    tenant: &str,
    ticket: &str,
    id: &str,
    body: &str,
) -> Result<(), ServiceError> {
    let request = AddMessageRequest {
        ticket_id: ticket.to_owned(),
        idempotency_key: format!("routing-note-{id}"),
        visibility: Visibility::Internal as i32,
        body_text: body.to_owned(),
        ..Default::default()
    };
    match client(link).add_message(link.request(tenant, request)?).await {
        Ok(_) => Ok(()),
        Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument | Code::FailedPrecondition) => {
            tracing::warn!(ticket, %status, "escalation note dropped");
            Ok(())
        }
        Err(status) => Err(ServiceError::from_status(&status)),
    }
}
