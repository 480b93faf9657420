//! Tickets: read, update with optimistic concurrency, list and search, merge, link, and their
//! history (creation is in `create`, messages in `messages`). Every write commits its history rows
//! and outbox events in the same transaction.

use helpdesk_events::outbox;
use helpdesk_proto::{
    common::v1::{AuthorKind, Channel},
    events::v1::{MessageAdded, TicketAssigned, TicketMerged, TicketStatusChanged, TicketUpdated, event::Payload},
    ticketing::v1::{self as proto, Status, TicketOrder, Visibility},
};
use helpdesk_runtime::{
    ServiceError,
    auth::Principal,
    time::{micros_to_timestamp, now_micros, timestamp_to_micros},
};
use sqlx::AnyConnection;

use crate::{
    Ticketing,
    model::{self, new_id, to_json},
    store::{self, Document, StoredTicket, TicketFilter},
};

const MAX_QUERY_TERMS: usize = 32;

/// The ticket with its links.
pub(crate) async fn load(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredTicket>, ServiceError> {
    let stored = store::ticket_by_id(conn, tenant_id, id).await?;
    with_links(conn, tenant_id, stored).await
}

/// [`load`] within a write transaction, the ticket locked until commit (see
/// [`store::ticket_for_update`]).
pub(crate) async fn load_for_update(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredTicket>, ServiceError> {
    let stored = store::ticket_for_update(conn, tenant_id, id).await?;
    with_links(conn, tenant_id, stored).await
}

async fn with_links(
    conn: &mut AnyConnection,
    tenant_id: &str,
    stored: Option<StoredTicket>,
) -> Result<Option<StoredTicket>, ServiceError> {
    let Some(mut stored) = stored else { return Ok(None) };
    let mut links = store::ticket_links(conn, tenant_id, std::slice::from_ref(&stored.ticket.id)).await?;
    stored.ticket.linked_ticket_ids = links.remove(&stored.ticket.id).unwrap_or_default();
    Ok(Some(stored))
}

/// Customers see only their own tickets, and never the flag on their own profile.
pub(crate) fn visible_to(caller: &Principal, mut ticket: proto::Ticket) -> Option<proto::Ticket> {
    if caller.is_customer() {
        if ticket.requester_id != caller.subject {
            return None;
        }
        // Internal classification and links (which may name other customers' tickets) stay inside.
        ticket.requester_flag = None;
        ticket.tags.clear();
        ticket.custom_fields.clear();
        ticket.group.clear();
        ticket.assignee_id.clear();
        ticket.linked_ticket_ids.clear();
    }
    Some(ticket)
}

pub(crate) fn not_found() -> ServiceError {
    ServiceError::not_found("ticket")
}

/// Returns the resource a previous request with this key created; refuses a reused key whose
/// request differs.
pub(crate) async fn replay(
    conn: &mut AnyConnection,
    tenant_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &str,
) -> Result<Option<String>, ServiceError> {
    let Some((stored, resource_id)) = store::idempotency_key(conn, tenant_id, scope, key).await? else {
        return Ok(None);
    };
    if stored != fingerprint {
        return Err(ServiceError::failed_precondition("idempotency key was used for a different request"));
    }
    Ok(Some(resource_id))
}

/// One field change for the history.
pub(crate) struct Change {
    field: &'static str,
    old: String,
    new: String,
}

impl Change {
    pub(crate) fn of<T: serde::Serialize + PartialEq>(
        field: &'static str,
        old: &T,
        new: &T,
    ) -> Result<Option<Self>, ServiceError> {
        if old == new {
            return Ok(None);
        }
        Ok(Some(Self { field, old: to_json(old)?, new: to_json(new)? }))
    }
}

pub(crate) async fn record_changes(
    conn: &mut AnyConnection,
    caller: &Principal,
    actor_kind: AuthorKind,
    ticket: &proto::Ticket,
    changes: &[Change],
    at: i64,
) -> Result<(), ServiceError> {
    for change in changes {
        let change = proto::TicketChange {
            id: new_id(),
            ticket_id: ticket.id.clone(),
            version: ticket.version,
            field: change.field.to_owned(),
            old_value: change.old.clone(),
            new_value: change.new.clone(),
            actor_kind: actor_kind as i32,
            actor_id: caller.subject.clone(),
            changed_at: Some(micros_to_timestamp(at)),
        };
        store::insert_ticket_change(conn, &caller.tenant_id, &change).await?;
    }
    Ok(())
}

/// Moves `ticket` to `to`, keeping the solved and closed timestamps in step.
pub(crate) fn set_status(ticket: &mut proto::Ticket, to: Status, at: i64) {
    ticket.status = to as i32;
    match to {
        Status::Solved => ticket.solved_at = Some(micros_to_timestamp(at)),
        Status::Closed => ticket.closed_at = Some(micros_to_timestamp(at)),
        Status::Open | Status::Pending | Status::OnHold | Status::New => ticket.solved_at = None,
        Status::Unspecified => {}
    }
}

/// Sequences events after `event_seq` and appends them to the outbox.
pub(crate) async fn emit(
    conn: &mut AnyConnection,
    caller: &Principal,
    ticket_id: &str,
    event_seq: &mut i64,
    at: i64,
    payloads: Vec<Payload>,
) -> Result<(), ServiceError> {
    for payload in payloads {
        *event_seq += 1;
        let event = model::event(caller, "ticket", ticket_id, *event_seq, at, payload);
        outbox::append(conn, &event).await?;
    }
    Ok(())
}

impl Ticketing {
    pub(crate) async fn get_ticket(&self, caller: &Principal, id: &str) -> Result<proto::Ticket, ServiceError> {
        let mut conn = self.db.reader().acquire().await?;
        load(&mut conn, &caller.tenant_id, id)
            .await?
            .and_then(|stored| visible_to(caller, stored.ticket))
            .ok_or_else(not_found)
    }

    pub(crate) async fn update_ticket(
        &self,
        caller: &Principal,
        request: proto::UpdateTicketRequest,
    ) -> Result<proto::Ticket, ServiceError> {
        if request.expected_version < 1 {
            return Err(ServiceError::invalid_field("expected_version", "send the version you last saw (1 or more)"));
        }
        if !request.custom_fields.is_empty() {
            self.check_custom_fields(&caller.tenant_id, &request.custom_fields, false).await?;
        }
        model::string_map("external_refs", &request.external_refs, 20)?;
        let now = now_micros();
        let mut tx = self.db.writer().begin().await?;
        let stored = load_for_update(&mut tx, &caller.tenant_id, &request.id).await?.ok_or_else(not_found)?;
        let before = stored.ticket;
        if before.version != request.expected_version {
            return Err(ServiceError::conflict(format!(
                "ticket changed since version {}; it is now at version {}",
                request.expected_version, before.version
            )));
        }
        if before.status == Status::Closed as i32 {
            return Err(ServiceError::failed_precondition("closed tickets are final; open a follow-up ticket"));
        }
        let mut after = before.clone();
        if let Some(subject) = &request.subject {
            after.subject = model::required_text("subject", subject, model::MAX_SUBJECT)?;
        }
        if let Some(assignee) = &request.assignee_id {
            after.assignee_id = model::optional_text("assignee_id", assignee.trim(), 64)?;
        }
        if let Some(group) = &request.group {
            after.group = model::optional_text("group", group.trim(), 100)?;
        }
        if let Some(priority) = request.priority {
            after.priority = model::priority(priority, "priority")? as i32;
        }
        if let Some(tags) = &request.tags {
            after.tags = model::tags(&tags.values)?;
        }
        if let Some(ids) = request.collaborator_ids {
            after.collaborator_ids = crate::customers::collaborators(
                &mut tx,
                &caller.tenant_id,
                "collaborator_ids",
                &after.requester_id,
                ids.values,
            )
            .await?;
        }
        for (key, value) in request.custom_fields {
            if matches!(value.kind, None | Some(pbjson_types::value::Kind::NullValue(_))) {
                after.custom_fields.remove(&key);
            } else {
                after.custom_fields.insert(key, value);
            }
        }
        for (key, value) in request.external_refs {
            if value.is_empty() {
                after.external_refs.remove(&key);
            } else {
                after.external_refs.insert(key, value);
            }
        }
        // The limit applies to what the ticket ends up with, not only to this request.
        model::string_map("external_refs", &after.external_refs, 20)?;
        let from = model::status(before.status, "status")?;
        let mut to = match request.status {
            Some(status) => model::status(status, "status")?,
            None => from,
        };
        // Assigning a new ticket opens it, unless the request sets a status itself.
        if request.status.is_none() && from == Status::New && !after.assignee_id.is_empty() {
            to = Status::Open;
        }
        model::check_transition(from, to)?;
        set_status(&mut after, to, now);

        let changes: Vec<Change> = [
            Change::of("subject", &before.subject, &after.subject)?,
            Change::of("assignee_id", &before.assignee_id, &after.assignee_id)?,
            Change::of("group", &before.group, &after.group)?,
            Change::of("priority", &before.priority, &after.priority)?,
            Change::of("status", &model::status_name(from), &model::status_name(to))?,
            Change::of("tags", &before.tags, &after.tags)?,
            Change::of("collaborator_ids", &before.collaborator_ids, &after.collaborator_ids)?,
            Change::of("custom_fields", &before.custom_fields, &after.custom_fields)?,
            Change::of("external_refs", &before.external_refs, &after.external_refs)?,
        ]
        .into_iter()
        .flatten()
        .collect();
        if changes.is_empty() {
            return Ok(visible_to(caller, before).unwrap_or_default());
        }
        after.version += 1;
        after.updated_at = Some(micros_to_timestamp(now));

        let mut payloads = vec![Payload::TicketUpdated(TicketUpdated {
            ticket: Some(after.clone()),
            changed_fields: changes.iter().map(|change| change.field.to_owned()).collect(),
        })];
        if from != to {
            payloads.push(Payload::TicketStatusChanged(TicketStatusChanged {
                ticket_id: after.id.clone(),
                from: from as i32,
                to: to as i32,
            }));
        }
        if before.assignee_id != after.assignee_id || before.group != after.group {
            payloads.push(Payload::TicketAssigned(TicketAssigned {
                ticket_id: after.id.clone(),
                previous_assignee_id: before.assignee_id.clone(),
                assignee_id: after.assignee_id.clone(),
                group: after.group.clone(),
            }));
        }
        let mut event_seq = stored.event_seq;
        emit(&mut tx, caller, &after.id, &mut event_seq, now, payloads).await?;
        if !store::update_ticket(&mut tx, &caller.tenant_id, &after, before.version, event_seq).await? {
            return Err(ServiceError::conflict("ticket changed concurrently; reload and retry"));
        }
        if before.tags != after.tags {
            store::delete_ticket_tags(&mut tx, &caller.tenant_id, &after.id).await?;
            let tags: Vec<(&str, &str, &str)> =
                after.tags.iter().map(|tag| (caller.tenant_id.as_str(), after.id.as_str(), tag.as_str())).collect();
            store::insert_ticket_tags(&mut tx, &tags).await?;
        }
        if before.subject != after.subject {
            let document = Document::new(&caller.tenant_id, &after.id, &after.subject, false);
            store::add_search_terms(&mut tx, &[document]).await?;
        }
        record_changes(&mut tx, caller, model::author_kind(caller), &after, &changes, now).await?;
        tx.commit().await?;
        self.events_written.notify_one();
        Ok(after)
    }

    pub(crate) async fn list_tickets(
        &self,
        caller: &Principal,
        request: proto::ListTicketsRequest,
    ) -> Result<proto::ListTicketsResponse, ServiceError> {
        let page_size = model::page_size(request.page_size)?;
        let order = TicketOrder::try_from(request.order)
            .map_err(|_| ServiceError::invalid_field("order", format!("unknown order {}", request.order)))?;
        let order = if order == TicketOrder::Unspecified { TicketOrder::CreatedDesc } else { order };
        let requester_id = if caller.is_customer() {
            if !request.requester_id.is_empty() && request.requester_id != caller.subject {
                return Err(ServiceError::permission_denied("customers list only their own tickets"));
            }
            // Filtering on what customers do not see would tell them its values.
            let hidden = [
                ("assignee_id", !request.assignee_id.is_empty()),
                ("group", !request.group.is_empty()),
                ("tag", !request.tag.is_empty()),
                ("unassigned", request.unassigned),
            ];
            if let Some((field, _)) = hidden.iter().find(|(_, set)| *set) {
                return Err(
                    ServiceError::permission_denied(format!("customers cannot filter by {field}")).with_field(*field)
                );
            }
            &caller.subject
        } else {
            &request.requester_id
        };
        let statuses =
            request.statuses.iter().map(|status| model::status(*status, "statuses")).collect::<Result<Vec<_>, _>>()?;
        let priorities = request
            .priorities
            .iter()
            .map(|priority| model::priority(*priority, "priorities"))
            .collect::<Result<Vec<_>, _>>()?;
        let channel =
            if request.channel != 0 { Some(model::channel(request.channel, Channel::Unspecified)?) } else { None };
        let mut terms = Vec::new();
        if !request.query.trim().is_empty() {
            if request.query.chars().count() > 500 {
                return Err(ServiceError::invalid_field("query", "longer than 500 characters"));
            }
            terms = helpdesk_text::distinct_terms(&request.query);
            if terms.is_empty() {
                return Err(ServiceError::invalid_field("query", "has no words to search for"));
            }
            if terms.len() > MAX_QUERY_TERMS {
                return Err(ServiceError::invalid_field("query", format!("at most {MAX_QUERY_TERMS} terms")));
            }
        }
        let token_kind = match order {
            TicketOrder::CreatedAsc => "ca",
            TicketOrder::UpdatedDesc => "ud",
            TicketOrder::UpdatedAsc => "ua",
            TicketOrder::PriorityDesc => "pd",
            TicketOrder::CreatedDesc | TicketOrder::Unspecified => "cd",
        };
        let after = model::parse_page_token(&request.page_token, token_kind, store::cursor_len(order))?;
        let micros = |timestamp: &Option<pbjson_types::Timestamp>| timestamp.as_ref().map(timestamp_to_micros);
        let filter = TicketFilter {
            requester_id,
            assignee_id: &request.assignee_id,
            group: &request.group,
            unassigned: request.unassigned,
            statuses,
            priorities,
            channel,
            tag: (!request.tag.is_empty()).then(|| request.tag.trim().to_lowercase()),
            created_after: micros(&request.created_after),
            created_before: micros(&request.created_before),
            updated_after: micros(&request.updated_after),
            updated_before: micros(&request.updated_before),
            terms,
            public_terms: caller.is_customer(),
            order,
            after,
            limit: page_size + 1,
        };

        let mut conn = self.db.reader().acquire().await?;
        let mut tickets = store::tickets_page(&mut conn, &caller.tenant_id, &filter).await?;
        let next_page_token = model::finish_page(&mut tickets, page_size, |last| {
            model::page_token(token_kind, &store::ticket_cursor(last, order))
        });
        let ids: Vec<String> = tickets.iter().map(|ticket| ticket.id.clone()).collect();
        let mut links = store::ticket_links(&mut conn, &caller.tenant_id, &ids).await?;
        let tickets = tickets
            .into_iter()
            .filter_map(|mut ticket| {
                ticket.linked_ticket_ids = links.remove(&ticket.id).unwrap_or_default();
                visible_to(caller, ticket)
            })
            .collect();
        Ok(proto::ListTicketsResponse { tickets, next_page_token })
    }

    pub(crate) async fn list_history(
        &self,
        caller: &Principal,
        ticket_id: &str,
    ) -> Result<Vec<proto::TicketChange>, ServiceError> {
        self.get_ticket(caller, ticket_id).await?;
        store::ticket_changes(&self.db, &caller.tenant_id, ticket_id).await
    }

    pub(crate) async fn merge_tickets(
        &self,
        caller: &Principal,
        request: proto::MergeTicketsRequest,
    ) -> Result<proto::Ticket, ServiceError> {
        if request.source_id == request.target_id {
            return Err(ServiceError::invalid_field("target_id", "cannot merge a ticket into itself"));
        }
        let now = now_micros();
        let mut tx = self.db.writer().begin().await?;
        let source = load(&mut tx, &caller.tenant_id, &request.source_id)
            .await?
            .ok_or_else(|| ServiceError::invalid_field("source_id", "no such ticket"))?;
        let target = load(&mut tx, &caller.tenant_id, &request.target_id)
            .await?
            .ok_or_else(|| ServiceError::invalid_field("target_id", "no such ticket"))?;
        if source.ticket.requester_id != target.ticket.requester_id {
            // Moving messages would show one customer's conversation to another.
            return Err(ServiceError::failed_precondition(
                "only tickets of the same requester can be merged; link them instead",
            ));
        }
        for (field, stored) in [("source_id", &source), ("target_id", &target)] {
            if stored.ticket.status == Status::Closed as i32 {
                return Err(ServiceError::failed_precondition(format!("{field} is closed and cannot be merged")));
            }
        }
        store::move_messages(&mut tx, &caller.tenant_id, &source.ticket.id, &target.ticket.id).await?;
        store::copy_search_terms(&mut tx, &caller.tenant_id, &source.ticket.id, &target.ticket.id).await?;

        let mut closed = source.ticket.clone();
        let from = model::status(closed.status, "status")?;
        set_status(&mut closed, Status::Closed, now);
        closed.merged_into_id = target.ticket.id.clone();
        closed.version += 1;
        closed.updated_at = Some(micros_to_timestamp(now));
        let mut source_seq = source.event_seq;
        emit(
            &mut tx,
            caller,
            &closed.id,
            &mut source_seq,
            now,
            vec![
                Payload::TicketMerged(TicketMerged {
                    source_ticket_id: closed.id.clone(),
                    target_ticket_id: target.ticket.id.clone(),
                }),
                Payload::TicketStatusChanged(TicketStatusChanged {
                    ticket_id: closed.id.clone(),
                    from: from as i32,
                    to: Status::Closed as i32,
                }),
            ],
        )
        .await?;
        if !store::update_ticket(&mut tx, &caller.tenant_id, &closed, source.ticket.version, source_seq).await? {
            return Err(ServiceError::conflict("ticket changed concurrently; retry"));
        }
        let source_changes: Vec<Change> = [
            Change::of("status", &model::status_name(from), &"closed")?,
            Change::of("merged_into_id", &String::new(), &closed.merged_into_id)?,
        ]
        .into_iter()
        .flatten()
        .collect();
        record_changes(&mut tx, caller, model::author_kind(caller), &closed, &source_changes, now).await?;

        let mut merged = target.ticket.clone();
        merged.version += 1;
        merged.updated_at = Some(micros_to_timestamp(now));
        let note = proto::Message {
            id: new_id(),
            ticket_id: merged.id.clone(),
            author_kind: AuthorKind::System as i32,
            author_id: caller.subject.clone(),
            visibility: Visibility::Internal as i32,
            body_text: format!("Ticket {} \"{}\" was merged into this ticket.", closed.id, closed.subject),
            body_html: String::new(),
            attachments: Vec::new(),
            created_at: Some(micros_to_timestamp(now)),
            customer_text: String::new(),
        };
        store::insert_message(&mut tx, &caller.tenant_id, &note).await?;
        let mut target_seq = target.event_seq;
        emit(
            &mut tx,
            caller,
            &merged.id,
            &mut target_seq,
            now,
            vec![
                Payload::TicketMerged(TicketMerged {
                    source_ticket_id: closed.id.clone(),
                    target_ticket_id: merged.id.clone(),
                }),
                Payload::MessageAdded(MessageAdded { ticket_id: merged.id.clone(), message: Some(note) }),
            ],
        )
        .await?;
        if !store::update_ticket(&mut tx, &caller.tenant_id, &merged, target.ticket.version, target_seq).await? {
            return Err(ServiceError::conflict("ticket changed concurrently; retry"));
        }
        tx.commit().await?;
        self.events_written.notify_one();
        Ok(merged)
    }

    pub(crate) async fn link_tickets(
        &self,
        caller: &Principal,
        request: proto::LinkTicketsRequest,
    ) -> Result<proto::Ticket, ServiceError> {
        if request.ticket_id == request.other_ticket_id {
            return Err(ServiceError::invalid_field("other_ticket_id", "cannot link a ticket to itself"));
        }
        let mut tx = self.db.writer().begin().await?;
        for (field, id) in [("ticket_id", &request.ticket_id), ("other_ticket_id", &request.other_ticket_id)] {
            if load(&mut tx, &caller.tenant_id, id).await?.is_none() {
                return Err(ServiceError::invalid_field(field, "no such ticket"));
            }
        }
        store::link_tickets(&mut tx, &caller.tenant_id, &request.ticket_id, &request.other_ticket_id).await?;
        let ticket = load_for_update(&mut tx, &caller.tenant_id, &request.ticket_id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(ticket.ticket)
    }
}
