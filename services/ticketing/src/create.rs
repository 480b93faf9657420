//! Ticket creation with group commit. Each request is validated and prepared on its own (reads
//! only), then queued; one writer task commits whatever has queued up in a single transaction
//! with multi-row inserts, and answers each caller only after the commit. If a batch fails, its
//! tickets are retried one by one, so one bad request cannot fail its neighbours.

use std::collections::HashMap;

use helpdesk_events::outbox;
use helpdesk_proto::{
    common::v1::Channel,
    events::v1::{Event, TicketAssigned, TicketCreated, event::Payload},
    ticketing::v1::{self as proto, Status},
};
use helpdesk_runtime::{
    ServiceError,
    auth::Principal,
    db::Database,
    time::{micros_to_timestamp, now_micros},
};
use sqlx::AnyConnection;

use crate::{
    Ticketing,
    model::{self, new_id},
    store::{self, Document, NewTicketRow},
    tickets::{load, visible_to},
};

/// The most tickets one transaction writes.
pub(crate) const MAX_BATCH: usize = 128;

/// A validated ticket, ready to be written.
pub(crate) struct NewTicket {
    caller: Principal,
    ticket: proto::Ticket,
    /// Idempotency key and request fingerprint.
    idempotency: Option<(String, String)>,
    events: Vec<Event>,
}

pub(crate) enum Created {
    New(Box<proto::Ticket>),
    /// An earlier request with the same idempotency key made this ticket.
    Existing(String),
}

impl Ticketing {
    pub(crate) async fn create_ticket(
        &self,
        caller: &Principal,
        request: proto::CreateTicketRequest,
    ) -> Result<proto::Ticket, ServiceError> {
        let job = self.prepare(caller, request).await?;
        match self.creates.submit(job).await? {
            Created::New(ticket) => {
                self.events_written.notify_one();
                Ok(visible_to(caller, *ticket).unwrap_or_default())
            }
            Created::Existing(id) => self.get_ticket(caller, &id).await,
        }
    }

    /// Validates the request and reads what the ticket needs; writes nothing.
    async fn prepare(
        &self,
        caller: &Principal,
        request: proto::CreateTicketRequest,
    ) -> Result<NewTicket, ServiceError> {
        let idempotency =
            model::idempotency_key(caller, &request.idempotency_key)?.map(|key| (key, model::fingerprint(&request)));
        let now = now_micros();
        let requester_id = if caller.is_customer() {
            if !request.requester_id.is_empty() && request.requester_id != caller.subject {
                return Err(ServiceError::permission_denied("customers open tickets only for themselves"));
            }
            // What routes a ticket and promises its SLA is the team's to decide, not the customer's.
            let staff_only = [
                ("assignee_id", !request.assignee_id.is_empty()),
                ("group", !request.group.is_empty()),
                ("tags", !request.tags.is_empty()),
                ("priority", request.priority != 0),
                ("channel", request.channel != 0),
                ("custom_fields", !request.custom_fields.is_empty()),
                ("external_refs", !request.external_refs.is_empty()),
                ("collaborator_ids", !request.collaborator_ids.is_empty()),
            ];
            if let Some((field, _)) = staff_only.iter().find(|(_, set)| *set) {
                return Err(ServiceError::permission_denied(format!("customers cannot set {field}")).with_field(*field));
            }
            caller.subject.clone()
        } else {
            model::required_text("requester_id", &request.requester_id, 64)?
        };
        let default_channel = if caller.is_customer() { Channel::Web } else { Channel::Api };
        let tags = model::tags(&request.tags)?;
        model::string_map("external_refs", &request.external_refs, 20)?;
        self.check_custom_fields(&caller.tenant_id, &request.custom_fields, true).await?;
        let assignee_id = model::optional_text("assignee_id", request.assignee_id.trim(), 64)?;
        let attachments = self.checked_attachments(&caller.tenant_id, "attachments", request.attachments).await?;
        let collaborator_ids = if request.collaborator_ids.is_empty() {
            Vec::new()
        } else {
            let mut conn = self.db.reader().acquire().await?;
            let ids = request.collaborator_ids;
            crate::customers::collaborators(&mut conn, &caller.tenant_id, "collaborator_ids", &requester_id, ids)
                .await?
        };
        let mut ticket = proto::Ticket {
            id: new_id(),
            tenant_id: caller.tenant_id.clone(),
            subject: model::required_text("subject", &request.subject, model::MAX_SUBJECT)?,
            description: model::optional_text("description", &request.description, model::MAX_BODY)?,
            requester_id,
            status: if assignee_id.is_empty() { Status::New } else { Status::Open } as i32,
            assignee_id,
            group: model::optional_text("group", request.group.trim(), 100)?,
            priority: model::priority(request.priority, "priority")? as i32,
            channel: model::channel(request.channel, default_channel)? as i32,
            tags,
            custom_fields: request.custom_fields,
            external_refs: request.external_refs,
            version: 1,
            created_at: Some(micros_to_timestamp(now)),
            updated_at: Some(micros_to_timestamp(now)),
            follow_up_of_id: request.follow_up_of_id.trim().to_owned(),
            attachments,
            collaborator_ids,
            ..Default::default()
        };
        if !ticket.follow_up_of_id.is_empty() {
            // Closed is final, so this check cannot be overtaken before the write.
            let mut conn = self.db.reader().acquire().await?;
            let original = load(&mut conn, &caller.tenant_id, &ticket.follow_up_of_id)
                .await?
                .and_then(|stored| visible_to(caller, stored.ticket))
                .ok_or_else(|| ServiceError::invalid_field("follow_up_of_id", "no such ticket"))?;
            if original.status != Status::Closed as i32 {
                return Err(ServiceError::invalid_field("follow_up_of_id", "only a closed ticket can be followed up"));
            }
            ticket.linked_ticket_ids.push(original.id);
        }
        let mut payloads = vec![Payload::TicketCreated(TicketCreated { ticket: Some(ticket.clone()) })];
        if !ticket.assignee_id.is_empty() {
            payloads.push(Payload::TicketAssigned(TicketAssigned {
                ticket_id: ticket.id.clone(),
                previous_assignee_id: String::new(),
                assignee_id: ticket.assignee_id.clone(),
                group: ticket.group.clone(),
            }));
        }
        let events = payloads
            .into_iter()
            .zip(1..)
            .map(|(payload, sequence)| model::event(caller, "ticket", &ticket.id, sequence, now, payload))
            .collect();
        Ok(NewTicket { caller: caller.clone(), ticket, idempotency, events })
    }
}

/// The staff-named requesters of the batch that exist: (tenant, id) → their flag, if any.
/// Customers who authenticated by token are provisioned instead.
async fn requesters(
    conn: &mut AnyConnection,
    jobs: &[NewTicket],
) -> Result<HashMap<(String, String), Option<proto::CustomerFlag>>, ServiceError> {
    let mut wanted: Vec<(&str, &str)> = jobs
        .iter()
        .filter(|job| !job.caller.is_customer())
        .map(|job| (job.ticket.tenant_id.as_str(), job.ticket.requester_id.as_str()))
        .collect();
    wanted.sort_unstable();
    wanted.dedup();
    store::customer_flags(conn, &wanted).await
}

/// Writes `jobs` in one transaction; if that fails, writes each on its own.
pub(crate) async fn write_tickets(db: &Database, jobs: Vec<NewTicket>) -> Vec<Result<Created, ServiceError>> {
    match write_batch(db, &jobs).await {
        Ok(results) => results,
        // Retrying one by one helps when one ticket broke the batch, not when the database is down.
        Err(error) if jobs.len() == 1 || error.kind == helpdesk_runtime::ErrorKind::Unavailable => {
            jobs.iter().map(|_| Err(error.clone())).collect()
        }
        Err(error) => {
            tracing::warn!(%error, tickets = jobs.len(), "batch failed; writing its tickets one by one");
            let mut results = Vec::with_capacity(jobs.len());
            for job in &jobs {
                results.push(match write_batch(db, std::slice::from_ref(job)).await {
                    Ok(mut single) => single.pop().unwrap_or_else(|| Err(ServiceError::internal(&"empty result"))),
                    Err(error) => Err(error),
                });
            }
            results
        }
    }
}

/// One transaction for all of `jobs`. The outer error means nothing was written; the inner
/// results are each job's own answer (new ticket, replay, or a reused idempotency key).
async fn write_batch(db: &Database, jobs: &[NewTicket]) -> Result<Vec<Result<Created, ServiceError>>, ServiceError> {
    let mut tx = db.writer().begin().await?;
    let mut claimed = existing_keys(&mut tx, jobs).await?;
    let requesters = requesters(&mut tx, jobs).await?;
    let mut outcomes: Vec<Option<Result<Created, ServiceError>>> = Vec::with_capacity(jobs.len());
    let mut flags = Vec::with_capacity(jobs.len());
    for job in jobs {
        let requester = (job.ticket.tenant_id.clone(), job.ticket.requester_id.clone());
        let known = requesters.get(&requester);
        flags.push(known.cloned().flatten());
        if !job.caller.is_customer() && known.is_none() {
            outcomes.push(Some(Err(ServiceError::invalid_field("requester_id", "no such customer"))));
            continue;
        }
        let outcome = job.idempotency.as_ref().and_then(|(key, fingerprint)| {
            let slot = (job.caller.tenant_id.clone(), key.clone());
            match claimed.get(&slot) {
                Some((stored, id)) if stored == fingerprint => Some(Ok(Created::Existing(id.clone()))),
                Some(_) => {
                    Some(Err(ServiceError::failed_precondition("idempotency key was used for a different request")))
                }
                None => {
                    claimed.insert(slot, (fingerprint.clone(), job.ticket.id.clone()));
                    None
                }
            }
        });
        outcomes.push(outcome);
    }
    let fresh: Vec<&NewTicket> =
        jobs.iter().zip(&outcomes).filter(|(_, outcome)| outcome.is_none()).map(|(job, _)| job).collect();
    if !fresh.is_empty() {
        insert(&mut tx, &fresh).await?;
        tx.commit().await?;
    }
    Ok(jobs
        .iter()
        .zip(outcomes)
        .zip(flags)
        .map(|((job, outcome), requester_flag)| {
            outcome
                .unwrap_or_else(|| Ok(Created::New(Box::new(proto::Ticket { requester_flag, ..job.ticket.clone() }))))
        })
        .collect())
}

/// Stored idempotency keys of the batch's requests: (tenant, key) → (fingerprint, ticket id).
async fn existing_keys(
    conn: &mut AnyConnection,
    jobs: &[NewTicket],
) -> Result<HashMap<(String, String), (String, String)>, ServiceError> {
    let keyed: Vec<(&str, &str)> = jobs
        .iter()
        .filter_map(|job| job.idempotency.as_ref().map(|(key, _)| (job.caller.tenant_id.as_str(), key.as_str())))
        .collect();
    store::ticket_idempotency_keys(conn, &keyed).await
}

async fn insert(conn: &mut AnyConnection, jobs: &[&NewTicket]) -> Result<(), ServiceError> {
    let now = now_micros();
    let customers: Vec<(&str, &str)> = jobs
        .iter()
        .filter(|job| job.caller.is_customer())
        .map(|job| (job.caller.tenant_id.as_str(), job.caller.subject.as_str()))
        .collect();
    store::insert_provisioned_customers(conn, &customers, now).await?;

    let rows: Vec<NewTicketRow<'_>> = jobs
        .iter()
        .map(|job| {
            let t = &job.ticket;
            let text = format!("{}\n{}", t.subject, t.description);
            NewTicketRow {
                ticket: t,
                event_seq: job.events.len() as i64,
                document: Document::new(&t.tenant_id, &t.id, &text, false),
            }
        })
        .collect();
    store::insert_tickets(conn, &rows, now).await?;

    let events: Vec<Event> = jobs.iter().flat_map(|job| job.events.iter().cloned()).collect();
    outbox::append_all(conn, &events).await?;

    let tags: Vec<(&str, &str, &str)> = jobs
        .iter()
        .flat_map(|job| {
            let t = &job.ticket;
            t.tags.iter().map(|tag| (t.tenant_id.as_str(), t.id.as_str(), tag.as_str()))
        })
        .collect();
    store::insert_ticket_tags(conn, &tags).await?;

    let documents: Vec<Document<'_>> = rows.into_iter().map(|row| row.document).collect();
    store::index_new_tickets(conn, &documents).await?;

    let follow_ups: Vec<(&str, &str, &str)> = jobs
        .iter()
        .map(|job| &job.ticket)
        .filter(|t| !t.follow_up_of_id.is_empty())
        .map(|t| (t.tenant_id.as_str(), t.id.as_str(), t.follow_up_of_id.as_str()))
        .collect();
    store::insert_ticket_links(conn, &follow_ups).await?;

    let keys: Vec<(&str, &str, &str, &str)> = jobs
        .iter()
        .filter_map(|job| {
            let t = &job.ticket;
            let (key, fingerprint) = job.idempotency.as_ref()?;
            Some((t.tenant_id.as_str(), key.as_str(), fingerprint.as_str(), t.id.as_str()))
        })
        .collect();
    store::insert_ticket_idempotency_keys(conn, &keys, now).await?;
    Ok(())
}
