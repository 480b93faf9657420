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
    db::{Backend, Database, backend_of},
    time::{micros_to_timestamp, now_micros},
};
use sqlx::{AnyConnection, Row};

use crate::{
    Ticketing,
    model::{self, new_id, to_json},
    query::{Param, insert_many},
    search::{self, Document},
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
    let mut found = HashMap::new();
    for chunk in wanted.chunks(500) {
        let mut sql = crate::query::Sql::new(
            "SELECT tenant_id, id, flag_kind, flag_reason, flag_by, flag_at FROM customers WHERE ",
        );
        for (index, (tenant, id)) in chunk.iter().enumerate() {
            let (tenant, id) = (sql.text(*tenant), sql.text(*id));
            sql.push(&format!("{}(tenant_id = {tenant} AND id = {id})", if index > 0 { " OR " } else { "" }));
        }
        for row in sql.query().fetch_all(&mut *conn).await? {
            found.insert((row.try_get("tenant_id")?, row.try_get("id")?), crate::customers::flag_from_row(&row)?);
        }
    }
    Ok(found)
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
    let mut found = HashMap::new();
    let keyed: Vec<(&str, &str)> = jobs
        .iter()
        .filter_map(|job| job.idempotency.as_ref().map(|(key, _)| (job.caller.tenant_id.as_str(), key.as_str())))
        .collect();
    for chunk in keyed.chunks(500) {
        let mut sql = crate::query::Sql::new(
            "SELECT tenant_id, idempotency_key, fingerprint, resource_id FROM idempotency_keys WHERE scope = 'ticket' AND (",
        );
        for (index, (tenant, key)) in chunk.iter().enumerate() {
            let (tenant, key) = (sql.text(*tenant), sql.text(*key));
            sql.push(&format!(
                "{}(tenant_id = {tenant} AND idempotency_key = {key})",
                if index > 0 { " OR " } else { "" }
            ));
        }
        sql.push(")");
        for row in sql.query().fetch_all(&mut *conn).await? {
            found.insert(
                (row.try_get("tenant_id")?, row.try_get("idempotency_key")?),
                (row.try_get("fingerprint")?, row.try_get("resource_id")?),
            );
        }
    }
    Ok(found)
}

async fn insert(conn: &mut AnyConnection, jobs: &[&NewTicket]) -> Result<(), ServiceError> {
    let now = now_micros();
    let customers: Vec<Vec<Param>> = jobs
        .iter()
        .filter(|job| job.caller.is_customer())
        .map(|job| crate::customers::provisioned_row(&job.caller.tenant_id, &job.caller.subject, now))
        .collect();
    crate::customers::insert_provisioned(conn, customers).await?;

    // PostgreSQL keeps a ticket's search terms on its row; SQLite in a term table.
    let postgres = backend_of(conn) == Backend::Postgres;
    let mut rows = Vec::with_capacity(jobs.len());
    for job in jobs {
        let t = &job.ticket;
        let created = t.created_at.as_ref().map(helpdesk_runtime::time::timestamp_to_micros).unwrap_or(now);
        rows.push(vec![
            Param::from(&t.tenant_id),
            Param::from(&t.id),
            Param::from(&t.subject),
            Param::from(&t.description),
            Param::from(&t.requester_id),
            Param::from(&t.assignee_id),
            Param::from(&t.group),
            Param::from(i64::from(t.priority)),
            Param::from(i64::from(t.channel)),
            Param::from(i64::from(t.status)),
            Param::from(to_json(&t.tags)?),
            Param::from(to_json(&t.custom_fields)?),
            Param::from(to_json(&t.external_refs)?),
            Param::from(t.version),
            Param::from(job.events.len() as i64),
            Param::from(created),
            Param::from(created),
            Param::from(&t.follow_up_of_id),
            Param::from(""),
        ]);
        if postgres {
            let terms = search::joined(&helpdesk_text::distinct_terms(&format!("{}\n{}", t.subject, t.description)));
            rows.last_mut()
                .into_iter()
                .for_each(|row| row.extend([Param::from(terms.clone()), Param::from(terms.clone())]));
        }
    }
    let columns = "INSERT INTO tickets (tenant_id, id, subject, description, requester_id, assignee_id, group_name, \
         priority, channel, status, tags, custom_fields, external_refs, version, event_seq, created_at, updated_at, \
         follow_up_of_id, merged_into_id";
    let head = if postgres { format!("{columns}, terms_all, terms_public)") } else { format!("{columns})") };
    insert_many(conn, &head, "", rows).await?;

    let events: Vec<Event> = jobs.iter().flat_map(|job| job.events.iter().cloned()).collect();
    outbox::append_all(conn, &events).await?;

    let tags = jobs
        .iter()
        .flat_map(|job| {
            job.ticket
                .tags
                .iter()
                .map(|tag| vec![Param::from(&job.ticket.tenant_id), Param::from(tag), Param::from(&job.ticket.id)])
        })
        .collect();
    insert_many(conn, "INSERT INTO ticket_tags (tenant_id, tag, ticket_id)", "", tags).await?;

    if !postgres {
        let documents: Vec<Document<'_>> = jobs
            .iter()
            .map(|job| {
                let text = format!("{}\n{}", job.ticket.subject, job.ticket.description);
                Document::new(&job.ticket.tenant_id, &job.ticket.id, &text, false)
            })
            .collect();
        search::add(conn, &documents).await?;
    }

    let links = jobs
        .iter()
        .filter(|job| !job.ticket.follow_up_of_id.is_empty())
        .flat_map(|job| {
            let (tenant, id, other) = (&job.ticket.tenant_id, &job.ticket.id, &job.ticket.follow_up_of_id);
            [
                vec![Param::from(tenant), Param::from(id), Param::from(other)],
                vec![Param::from(tenant), Param::from(other), Param::from(id)],
            ]
        })
        .collect();
    insert_many(conn, "INSERT INTO ticket_links (tenant_id, ticket_id, other_id)", "ON CONFLICT DO NOTHING", links)
        .await?;

    let keys = jobs
        .iter()
        .filter_map(|job| {
            job.idempotency.as_ref().map(|(key, fingerprint)| {
                vec![
                    Param::from(&job.ticket.tenant_id),
                    Param::from("ticket"),
                    Param::from(key),
                    Param::from(fingerprint),
                    Param::from(&job.ticket.id),
                    Param::from(now),
                ]
            })
        })
        .collect();
    insert_many(
        conn,
        "INSERT INTO idempotency_keys (tenant_id, scope, idempotency_key, fingerprint, resource_id, created_at)",
        "",
        keys,
    )
    .await?;
    Ok(())
}
