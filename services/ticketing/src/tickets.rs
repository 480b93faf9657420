//! Tickets: read, update with optimistic concurrency, list and search, merge, link, and their
//! history (creation is in `create`, messages in `messages`). Every write commits its history rows
//! and outbox events in the same transaction.

use std::collections::HashMap;

use helpdesk_events::outbox;
use helpdesk_proto::{
    common::v1::{AuthorKind, Channel},
    events::v1::{MessageAdded, TicketAssigned, TicketMerged, TicketStatusChanged, TicketUpdated, event::Payload},
    ticketing::v1::{self as proto, Status, TicketOrder, Visibility},
};
use helpdesk_runtime::{
    ServiceError,
    auth::Principal,
    time::{micros_to_timestamp, now_micros, optional_timestamp, timestamp_to_micros},
};
use sqlx::{AnyConnection, Row, any::AnyRow};

use crate::{
    Ticketing,
    messages::insert_message,
    model::{self, from_json, new_id, to_json},
    query::{Param, Sql, after_cursor, insert_many},
    search::{self, Document},
};

const SELECT_TICKET: &str = "SELECT t.id, t.tenant_id, t.subject, t.description, t.requester_id, \
    t.assignee_id, t.group_name, t.priority, t.channel, t.status, t.tags, t.custom_fields, \
    t.external_refs, t.version, t.event_seq, t.created_at, t.updated_at, t.solved_at, t.closed_at, \
    t.merged_into_id, t.follow_up_of_id, c.flag_kind, c.flag_reason, c.flag_by, c.flag_at \
    FROM tickets t LEFT JOIN customers c ON c.tenant_id = t.tenant_id AND c.id = t.requester_id";

const MAX_QUERY_TERMS: usize = 32;

/// A ticket as stored, with the sequence number of its last event.
pub(crate) struct Stored {
    pub(crate) ticket: proto::Ticket,
    pub(crate) event_seq: i64,
}

fn ticket_from_row(row: &AnyRow) -> Result<Stored, ServiceError> {
    let requester_flag = crate::customers::flag_from_row(row)?;
    let ticket = proto::Ticket {
        id: row.try_get("id")?,
        tenant_id: row.try_get("tenant_id")?,
        subject: row.try_get("subject")?,
        description: row.try_get("description")?,
        requester_id: row.try_get("requester_id")?,
        assignee_id: row.try_get("assignee_id")?,
        group: row.try_get("group_name")?,
        priority: row.try_get::<i64, _>("priority")? as i32,
        channel: row.try_get::<i64, _>("channel")? as i32,
        status: row.try_get::<i64, _>("status")? as i32,
        tags: from_json(&row.try_get::<String, _>("tags")?)?,
        custom_fields: from_json(&row.try_get::<String, _>("custom_fields")?)?,
        external_refs: from_json(&row.try_get::<String, _>("external_refs")?)?,
        version: row.try_get("version")?,
        created_at: Some(micros_to_timestamp(row.try_get("created_at")?)),
        updated_at: Some(micros_to_timestamp(row.try_get("updated_at")?)),
        solved_at: optional_timestamp(row.try_get("solved_at")?),
        closed_at: optional_timestamp(row.try_get("closed_at")?),
        merged_into_id: row.try_get("merged_into_id")?,
        follow_up_of_id: row.try_get("follow_up_of_id")?,
        linked_ticket_ids: Vec::new(),
        requester_flag,
    };
    Ok(Stored { ticket, event_seq: row.try_get("event_seq")? })
}

pub(crate) async fn load(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<Option<Stored>, ServiceError> {
    load_with(conn, tenant_id, id, "").await
}

/// [`load`] within a write transaction: on PostgreSQL the row stays locked until commit, so a
/// concurrent change (routing assigning the ticket while the customer replies) waits instead of
/// failing the request with a conflict. SQLite has one writer, which serializes them already.
pub(crate) async fn load_for_update(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<Stored>, ServiceError> {
    let lock = match helpdesk_runtime::db::backend_of(conn) {
        helpdesk_runtime::db::Backend::Postgres => " FOR UPDATE OF t",
        helpdesk_runtime::db::Backend::Sqlite => "",
    };
    load_with(conn, tenant_id, id, lock).await
}

async fn load_with(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    lock: &str,
) -> Result<Option<Stored>, ServiceError> {
    let row = sqlx::query(&format!("{SELECT_TICKET} WHERE t.tenant_id = $1 AND t.id = $2{lock}"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let mut stored = ticket_from_row(&row)?;
    let mut links = links(conn, tenant_id, std::slice::from_ref(&stored.ticket.id)).await?;
    stored.ticket.linked_ticket_ids = links.remove(&stored.ticket.id).unwrap_or_default();
    Ok(Some(stored))
}

async fn links(
    conn: &mut AnyConnection,
    tenant_id: &str,
    ids: &[String],
) -> Result<HashMap<String, Vec<String>>, ServiceError> {
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let mut sql = Sql::new("SELECT ticket_id, other_id FROM ticket_links WHERE tenant_id = ");
    let tenant = sql.text(tenant_id);
    let placeholders: Vec<String> = ids.iter().map(|id| sql.text(id.as_str())).collect();
    sql.push(&format!("{tenant} AND ticket_id IN ({}) ORDER BY other_id", placeholders.join(", ")));
    for row in sql.query().fetch_all(conn).await? {
        out.entry(row.try_get("ticket_id")?).or_default().push(row.try_get("other_id")?);
    }
    Ok(out)
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
    let row = sqlx::query(
        "SELECT fingerprint, resource_id FROM idempotency_keys \
         WHERE tenant_id = $1 AND scope = $2 AND idempotency_key = $3",
    )
    .bind(tenant_id)
    .bind(scope)
    .bind(key)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let stored: String = row.try_get("fingerprint")?;
    if stored != fingerprint {
        return Err(ServiceError::failed_precondition("idempotency key was used for a different request"));
    }
    Ok(Some(row.try_get("resource_id")?))
}

pub(crate) async fn remember(
    conn: &mut AnyConnection,
    tenant_id: &str,
    scope: &str,
    key: &str,
    fingerprint: &str,
    resource_id: &str,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO idempotency_keys (tenant_id, scope, idempotency_key, fingerprint, resource_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(scope)
    .bind(key)
    .bind(fingerprint)
    .bind(resource_id)
    .bind(now_micros())
    .execute(conn)
    .await?;
    Ok(())
}

async fn replace_tags(
    conn: &mut AnyConnection,
    tenant_id: &str,
    ticket_id: &str,
    tags: &[String],
) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM ticket_tags WHERE tenant_id = $1 AND ticket_id = $2")
        .bind(tenant_id)
        .bind(ticket_id)
        .execute(&mut *conn)
        .await?;
    let rows = tags.iter().map(|tag| vec![Param::from(tenant_id), Param::from(tag), Param::from(ticket_id)]).collect();
    insert_many(conn, "INSERT INTO ticket_tags (tenant_id, tag, ticket_id)", "", rows).await?;
    Ok(())
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
        sqlx::query(
            "INSERT INTO ticket_changes (tenant_id, id, ticket_id, version, field, old_value, new_value, \
             actor_kind, actor_id, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&caller.tenant_id)
        .bind(new_id())
        .bind(&ticket.id)
        .bind(ticket.version)
        .bind(change.field)
        .bind(&change.old)
        .bind(&change.new)
        .bind(i64::from(actor_kind as i32))
        .bind(&caller.subject)
        .bind(at)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Writes the ticket's new state if nobody changed it since `seen_version`.
pub(crate) async fn save(
    conn: &mut AnyConnection,
    ticket: &proto::Ticket,
    seen_version: i64,
    event_seq: i64,
) -> Result<bool, ServiceError> {
    let result = sqlx::query(
        "UPDATE tickets SET subject = $3, description = $4, assignee_id = $5, group_name = $6, priority = $7, \
         status = $8, tags = $9, custom_fields = $10, external_refs = $11, version = $12, event_seq = $13, \
         updated_at = $14, solved_at = $15, closed_at = $16, merged_into_id = $17 \
         WHERE tenant_id = $1 AND id = $2 AND version = $18",
    )
    .bind(&ticket.tenant_id)
    .bind(&ticket.id)
    .bind(&ticket.subject)
    .bind(&ticket.description)
    .bind(&ticket.assignee_id)
    .bind(&ticket.group)
    .bind(i64::from(ticket.priority))
    .bind(i64::from(ticket.status))
    .bind(to_json(&ticket.tags)?)
    .bind(to_json(&ticket.custom_fields)?)
    .bind(to_json(&ticket.external_refs)?)
    .bind(ticket.version)
    .bind(event_seq)
    .bind(ticket.updated_at.as_ref().map(timestamp_to_micros))
    .bind(ticket.solved_at.as_ref().map(timestamp_to_micros))
    .bind(ticket.closed_at.as_ref().map(timestamp_to_micros))
    .bind(&ticket.merged_into_id)
    .bind(seen_version)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
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

fn cursor_values(ticket: &proto::Ticket, order: TicketOrder) -> Vec<String> {
    let micros =
        |t: &Option<pbjson_types::Timestamp>| t.as_ref().map(timestamp_to_micros).unwrap_or_default().to_string();
    match order {
        TicketOrder::UpdatedDesc | TicketOrder::UpdatedAsc => vec![micros(&ticket.updated_at), ticket.id.clone()],
        TicketOrder::PriorityDesc => vec![ticket.priority.to_string(), micros(&ticket.created_at), ticket.id.clone()],
        _ => vec![micros(&ticket.created_at), ticket.id.clone()],
    }
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
        caller.require_staff()?;
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
        if !save(&mut tx, &after, before.version, event_seq).await? {
            return Err(ServiceError::conflict("ticket changed concurrently; reload and retry"));
        }
        if before.tags != after.tags {
            replace_tags(&mut tx, &caller.tenant_id, &after.id, &after.tags).await?;
        }
        if before.subject != after.subject {
            search::add(&mut tx, &[Document::new(&caller.tenant_id, &after.id, &after.subject, false)]).await?;
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
        let mut sql = Sql::new(SELECT_TICKET);
        let tenant = sql.text(caller.tenant_id.as_str());
        sql.push(&format!(" WHERE t.tenant_id = {tenant}"));
        let equals = |sql: &mut Sql, column: &str, value: &str| {
            if !value.is_empty() {
                let placeholder = sql.text(value);
                sql.push(&format!(" AND {column} = {placeholder}"));
            }
        };
        if caller.is_customer() {
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
            equals(&mut sql, "t.requester_id", &caller.subject);
        } else {
            equals(&mut sql, "t.requester_id", &request.requester_id);
        }
        equals(&mut sql, "t.assignee_id", &request.assignee_id);
        equals(&mut sql, "t.group_name", &request.group);
        if request.unassigned {
            sql.push(" AND t.assignee_id = ''");
        }
        if !request.statuses.is_empty() {
            let values = request
                .statuses
                .iter()
                .map(|status| model::status(*status, "statuses").map(|status| sql.int(status as i64)))
                .collect::<Result<Vec<_>, _>>()?;
            sql.push(&format!(" AND t.status IN ({})", values.join(", ")));
        }
        if !request.priorities.is_empty() {
            let values = request
                .priorities
                .iter()
                .map(|priority| model::priority(*priority, "priorities").map(|priority| sql.int(priority as i64)))
                .collect::<Result<Vec<_>, _>>()?;
            sql.push(&format!(" AND t.priority IN ({})", values.join(", ")));
        }
        if request.channel != 0 {
            let channel = model::channel(request.channel, Channel::Unspecified)?;
            let placeholder = sql.int(channel as i64);
            sql.push(&format!(" AND t.channel = {placeholder}"));
        }
        if !request.tag.is_empty() {
            let tag = sql.text(request.tag.trim().to_lowercase());
            sql.push(&format!(
                " AND EXISTS (SELECT 1 FROM ticket_tags g WHERE g.tenant_id = t.tenant_id \
                 AND g.ticket_id = t.id AND g.tag = {tag})"
            ));
        }
        for (timestamp, column, op) in [
            (&request.created_after, "t.created_at", ">="),
            (&request.created_before, "t.created_at", "<"),
            (&request.updated_after, "t.updated_at", ">="),
            (&request.updated_before, "t.updated_at", "<"),
        ] {
            if let Some(timestamp) = timestamp {
                let placeholder = sql.int(timestamp_to_micros(timestamp));
                sql.push(&format!(" AND {column} {op} {placeholder}"));
            }
        }
        if !request.query.trim().is_empty() {
            if request.query.chars().count() > 500 {
                return Err(ServiceError::invalid_field("query", "longer than 500 characters"));
            }
            let terms = helpdesk_text::distinct_terms(&request.query);
            if terms.is_empty() {
                return Err(ServiceError::invalid_field("query", "has no words to search for"));
            }
            if terms.len() > MAX_QUERY_TERMS {
                return Err(ServiceError::invalid_field("query", format!("at most {MAX_QUERY_TERMS} terms")));
            }
            search::restrict(&mut sql, self.db.backend(), &tenant, &terms, caller.is_customer());
        }
        let (columns, descending, token_kind): (&[(&str, bool)], bool, &str) = match order {
            TicketOrder::CreatedAsc => (&[("t.created_at", true), ("t.id", false)], false, "ca"),
            TicketOrder::UpdatedDesc => (&[("t.updated_at", true), ("t.id", false)], true, "ud"),
            TicketOrder::UpdatedAsc => (&[("t.updated_at", true), ("t.id", false)], false, "ua"),
            TicketOrder::PriorityDesc => (&[("t.priority", true), ("t.created_at", true), ("t.id", false)], true, "pd"),
            TicketOrder::CreatedDesc | TicketOrder::Unspecified => {
                (&[("t.created_at", true), ("t.id", false)], true, "cd")
            }
        };
        if !request.page_token.is_empty() {
            let values = model::parse_page_token(&request.page_token, token_kind, columns.len())?;
            after_cursor(&mut sql, columns, &values, descending)?;
        }
        let direction = if descending { "DESC" } else { "ASC" };
        let order_by: Vec<String> = columns.iter().map(|(column, _)| format!("{column} {direction}")).collect();
        let limit = sql.int(page_size + 1);
        sql.push(&format!(" ORDER BY {} LIMIT {limit}", order_by.join(", ")));

        let mut conn = self.db.reader().acquire().await?;
        let rows = sql.query().fetch_all(&mut *conn).await?;
        let mut tickets =
            rows.iter().map(|row| ticket_from_row(row).map(|stored| stored.ticket)).collect::<Result<Vec<_>, _>>()?;
        let next_page_token = model::finish_page(&mut tickets, page_size, |last| {
            model::page_token(token_kind, &cursor_values(last, order))
        });
        let ids: Vec<String> = tickets.iter().map(|ticket| ticket.id.clone()).collect();
        let mut links = links(&mut conn, &caller.tenant_id, &ids).await?;
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
        caller.require_staff()?;
        self.get_ticket(caller, ticket_id).await?;
        let rows = sqlx::query(
            "SELECT id, ticket_id, version, field, old_value, new_value, actor_kind, actor_id, changed_at \
             FROM ticket_changes WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY changed_at, id",
        )
        .bind(&caller.tenant_id)
        .bind(ticket_id)
        .fetch_all(self.db.reader())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(proto::TicketChange {
                    id: row.try_get("id")?,
                    ticket_id: row.try_get("ticket_id")?,
                    field: row.try_get("field")?,
                    old_value: row.try_get("old_value")?,
                    new_value: row.try_get("new_value")?,
                    actor_kind: row.try_get::<i64, _>("actor_kind")? as i32,
                    actor_id: row.try_get("actor_id")?,
                    changed_at: Some(micros_to_timestamp(row.try_get("changed_at")?)),
                    version: row.try_get("version")?,
                })
            })
            .collect()
    }

    pub(crate) async fn merge_tickets(
        &self,
        caller: &Principal,
        request: proto::MergeTicketsRequest,
    ) -> Result<proto::Ticket, ServiceError> {
        caller.require_staff()?;
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
        sqlx::query("UPDATE messages SET ticket_id = $3 WHERE tenant_id = $1 AND ticket_id = $2")
            .bind(&caller.tenant_id)
            .bind(&source.ticket.id)
            .bind(&target.ticket.id)
            .execute(&mut *tx)
            .await?;
        search::copy(&mut tx, &caller.tenant_id, &source.ticket.id, &target.ticket.id).await?;

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
        if !save(&mut tx, &closed, source.ticket.version, source_seq).await? {
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
        insert_message(&mut tx, &caller.tenant_id, &note).await?;
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
        if !save(&mut tx, &merged, target.ticket.version, target_seq).await? {
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
        caller.require_staff()?;
        if request.ticket_id == request.other_ticket_id {
            return Err(ServiceError::invalid_field("other_ticket_id", "cannot link a ticket to itself"));
        }
        let mut tx = self.db.writer().begin().await?;
        for (field, id) in [("ticket_id", &request.ticket_id), ("other_ticket_id", &request.other_ticket_id)] {
            if load(&mut tx, &caller.tenant_id, id).await?.is_none() {
                return Err(ServiceError::invalid_field(field, "no such ticket"));
            }
        }
        link(&mut tx, &caller.tenant_id, &request.ticket_id, &request.other_ticket_id).await?;
        let ticket = load_for_update(&mut tx, &caller.tenant_id, &request.ticket_id).await?.ok_or_else(not_found)?;
        tx.commit().await?;
        Ok(ticket.ticket)
    }
}

/// Links two tickets both ways; linking twice is harmless.
async fn link(conn: &mut AnyConnection, tenant_id: &str, a: &str, b: &str) -> Result<(), ServiceError> {
    for (from, to) in [(a, b), (b, a)] {
        sqlx::query(
            "INSERT INTO ticket_links (tenant_id, ticket_id, other_id) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}
