//! Tickets' tables: the ticket rows (with their requester's flag), tags, links, history, the
//! batch insert of ticket creation, and the filtered, keyset-paginated ticket list.

use std::collections::HashMap;

use helpdesk_proto::{
    common::v1::{Channel, Priority},
    ticketing::v1::{self as proto, Status, TicketOrder},
};
use helpdesk_runtime::{
    ServiceError,
    db::{Backend, Database, backend_of},
    time::{micros_to_timestamp, optional_timestamp, timestamp_to_micros},
};
use sqlx::AnyConnection;

use super::{
    customers::FlagColumns,
    search::{self, Document},
    sql::{Param, Sql, after_cursor, insert_many},
};
use crate::model::{from_json, to_json};

const SELECT_TICKET: &str = "SELECT t.id, t.tenant_id, t.subject, t.description, t.requester_id, \
    t.assignee_id, t.group_name, t.priority, t.channel, t.status, t.tags, t.custom_fields, \
    t.external_refs, t.version, t.event_seq, t.created_at, t.updated_at, t.solved_at, t.closed_at, \
    t.merged_into_id, t.follow_up_of_id, t.attachments, t.collaborator_ids, c.flag_kind, c.flag_reason, c.flag_by, c.flag_at \
    FROM tickets t LEFT JOIN customers c ON c.tenant_id = t.tenant_id AND c.id = t.requester_id";

/// A ticket as stored, with the sequence number of its last event. Its links are read apart
/// ([`ticket_links`]).
pub(crate) struct StoredTicket {
    pub(crate) ticket: proto::Ticket,
    pub(crate) event_seq: i64,
}

/// A row of [`SELECT_TICKET`]: the tags, custom fields and external references as JSON.
#[derive(sqlx::FromRow)]
struct TicketRow {
    id: String,
    tenant_id: String,
    subject: String,
    description: String,
    requester_id: String,
    assignee_id: String,
    group_name: String,
    priority: i64,
    channel: i64,
    status: i64,
    tags: String,
    custom_fields: String,
    external_refs: String,
    version: i64,
    event_seq: i64,
    created_at: i64,
    updated_at: i64,
    solved_at: Option<i64>,
    closed_at: Option<i64>,
    merged_into_id: String,
    follow_up_of_id: String,
    attachments: String,
    collaborator_ids: String,
    #[sqlx(flatten)]
    requester_flag: FlagColumns,
}

impl TryFrom<TicketRow> for StoredTicket {
    type Error = ServiceError;

    fn try_from(row: TicketRow) -> Result<Self, ServiceError> {
        let ticket = proto::Ticket {
            id: row.id,
            tenant_id: row.tenant_id,
            subject: row.subject,
            description: row.description,
            requester_id: row.requester_id,
            assignee_id: row.assignee_id,
            group: row.group_name,
            priority: row.priority as i32,
            channel: row.channel as i32,
            status: row.status as i32,
            tags: from_json(&row.tags)?,
            custom_fields: from_json(&row.custom_fields)?,
            external_refs: from_json(&row.external_refs)?,
            version: row.version,
            created_at: Some(micros_to_timestamp(row.created_at)),
            updated_at: Some(micros_to_timestamp(row.updated_at)),
            solved_at: optional_timestamp(row.solved_at),
            closed_at: optional_timestamp(row.closed_at),
            merged_into_id: row.merged_into_id,
            follow_up_of_id: row.follow_up_of_id,
            attachments: from_json(&row.attachments)?,
            collaborator_ids: from_json(&row.collaborator_ids)?,
            linked_ticket_ids: Vec::new(),
            requester_flag: row.requester_flag.flag(),
        };
        Ok(Self { ticket, event_seq: row.event_seq })
    }
}

/// The ticket, without its links.
pub(crate) async fn ticket_by_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredTicket>, ServiceError> {
    select_ticket(conn, tenant_id, id, "").await
}

/// [`ticket_by_id`] within a write transaction: on PostgreSQL the row stays locked until commit,
/// so a concurrent change (routing assigning the ticket while the customer replies) waits instead
/// of failing the request with a conflict. SQLite has one writer, which serializes them already.
pub(crate) async fn ticket_for_update(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<Option<StoredTicket>, ServiceError> {
    let lock = match backend_of(conn) {
        Backend::Postgres => " FOR UPDATE OF t",
        Backend::Sqlite => "",
    };
    select_ticket(conn, tenant_id, id, lock).await
}

async fn select_ticket(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    lock: &str,
) -> Result<Option<StoredTicket>, ServiceError> {
    let row: Option<TicketRow> = sqlx::query_as(&format!("{SELECT_TICKET} WHERE t.tenant_id = $1 AND t.id = $2{lock}"))
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    row.map(StoredTicket::try_from).transpose()
}

/// The tickets each of `ids` is linked to, by ticket id.
pub(crate) async fn ticket_links(
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
    for (ticket_id, other_id) in sql.fetch_all::<(String, String)>(conn).await? {
        out.entry(ticket_id).or_default().push(other_id);
    }
    Ok(out)
}

/// Links two tickets both ways; linking twice is harmless.
pub(crate) async fn link_tickets(
    conn: &mut AnyConnection,
    tenant_id: &str,
    a: &str,
    b: &str,
) -> Result<(), ServiceError> {
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

/// Writes the ticket's new state if nobody changed it since `seen_version`; whether it did.
pub(crate) async fn update_ticket(
    conn: &mut AnyConnection,
    tenant_id: &str,
    ticket: &proto::Ticket,
    seen_version: i64,
    event_seq: i64,
) -> Result<bool, ServiceError> {
    let result = sqlx::query(
        "UPDATE tickets SET subject = $3, description = $4, assignee_id = $5, group_name = $6, priority = $7, \
         status = $8, tags = $9, custom_fields = $10, external_refs = $11, version = $12, event_seq = $13, \
         updated_at = $14, solved_at = $15, closed_at = $16, merged_into_id = $17, collaborator_ids = $19 \
         WHERE tenant_id = $1 AND id = $2 AND version = $18",
    )
    .bind(tenant_id)
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
    .bind(to_json(&ticket.collaborator_ids)?)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

pub(crate) async fn delete_ticket_tags(
    conn: &mut AnyConnection,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM ticket_tags WHERE tenant_id = $1 AND ticket_id = $2")
        .bind(tenant_id)
        .bind(ticket_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Indexes tickets by tag: `(tenant, ticket id, tag)` rows, of any tenants.
pub(crate) async fn insert_ticket_tags(
    conn: &mut AnyConnection,
    tags: &[(&str, &str, &str)],
) -> Result<(), ServiceError> {
    let rows = tags
        .iter()
        .map(|&(tenant, ticket_id, tag)| vec![Param::from(tenant), Param::from(tag), Param::from(ticket_id)])
        .collect();
    insert_many(conn, "INSERT INTO ticket_tags (tenant_id, tag, ticket_id)", "", rows).await?;
    Ok(())
}

/// Moves every message of ticket `from` to ticket `to`.
pub(crate) async fn move_messages(
    conn: &mut AnyConnection,
    tenant_id: &str,
    from: &str,
    to: &str,
) -> Result<(), ServiceError> {
    sqlx::query("UPDATE messages SET ticket_id = $3 WHERE tenant_id = $1 AND ticket_id = $2")
        .bind(tenant_id)
        .bind(from)
        .bind(to)
        .execute(conn)
        .await?;
    Ok(())
}

// --- History

pub(crate) async fn insert_ticket_change(
    conn: &mut AnyConnection,
    tenant_id: &str,
    change: &proto::TicketChange,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO ticket_changes (tenant_id, id, ticket_id, version, field, old_value, new_value, \
         actor_kind, actor_id, changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(tenant_id)
    .bind(&change.id)
    .bind(&change.ticket_id)
    .bind(change.version)
    .bind(&change.field)
    .bind(&change.old_value)
    .bind(&change.new_value)
    .bind(i64::from(change.actor_kind))
    .bind(&change.actor_id)
    .bind(change.changed_at.as_ref().map(timestamp_to_micros).unwrap_or_default())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct ChangeRow {
    id: String,
    ticket_id: String,
    version: i64,
    field: String,
    old_value: String,
    new_value: String,
    actor_kind: i64,
    actor_id: String,
    changed_at: i64,
}

/// The ticket's history, oldest first.
pub(crate) async fn ticket_changes(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Vec<proto::TicketChange>, ServiceError> {
    let rows: Vec<ChangeRow> = sqlx::query_as(
        "SELECT id, ticket_id, version, field, old_value, new_value, actor_kind, actor_id, changed_at \
         FROM ticket_changes WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY changed_at, id",
    )
    .bind(tenant_id)
    .bind(ticket_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| proto::TicketChange {
            id: row.id,
            ticket_id: row.ticket_id,
            field: row.field,
            old_value: row.old_value,
            new_value: row.new_value,
            actor_kind: row.actor_kind as i32,
            actor_id: row.actor_id,
            changed_at: Some(micros_to_timestamp(row.changed_at)),
            version: row.version,
        })
        .collect())
}

// --- Creation

/// A new ticket as [`insert_tickets`] writes it.
pub(crate) struct NewTicketRow<'a> {
    pub(crate) ticket: &'a proto::Ticket,
    /// The sequence number of its last event.
    pub(crate) event_seq: i64,
    /// What finds it in a search: its subject and description.
    pub(crate) document: Document<'a>,
}

/// Inserts new tickets of any tenants; `now` is the creation time of those without one.
/// PostgreSQL keeps a ticket's search terms on its row, so they go in here; SQLite's go in its
/// term table ([`search::index_new_tickets`]).
pub(crate) async fn insert_tickets(
    conn: &mut AnyConnection,
    tickets: &[NewTicketRow<'_>],
    now: i64,
) -> Result<(), ServiceError> {
    let postgres = backend_of(conn) == Backend::Postgres;
    let mut rows = Vec::with_capacity(tickets.len());
    for new in tickets {
        let t = new.ticket;
        let created = t.created_at.as_ref().map(timestamp_to_micros).unwrap_or(now);
        let mut row = vec![
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
            Param::from(new.event_seq),
            Param::from(created),
            Param::from(created),
            Param::from(&t.follow_up_of_id),
            Param::from(""),
            Param::from(to_json(&t.attachments)?),
            Param::from(to_json(&t.collaborator_ids)?),
        ];
        if postgres {
            let terms = search::joined(&new.document.terms);
            row.extend([Param::from(terms.clone()), Param::from(terms)]);
        }
        rows.push(row);
    }
    let columns = "INSERT INTO tickets (tenant_id, id, subject, description, requester_id, assignee_id, group_name, \
         priority, channel, status, tags, custom_fields, external_refs, version, event_seq, created_at, updated_at, \
         follow_up_of_id, merged_into_id, attachments, collaborator_ids";
    let head = if postgres { format!("{columns}, terms_all, terms_public)") } else { format!("{columns})") };
    insert_many(conn, &head, "", rows).await?;
    Ok(())
}

/// Links each `(tenant, ticket id, other ticket id)` both ways, of any tenants.
pub(crate) async fn insert_ticket_links(
    conn: &mut AnyConnection,
    links: &[(&str, &str, &str)],
) -> Result<(), ServiceError> {
    let rows = links
        .iter()
        .flat_map(|&(tenant, id, other)| {
            [
                vec![Param::from(tenant), Param::from(id), Param::from(other)],
                vec![Param::from(tenant), Param::from(other), Param::from(id)],
            ]
        })
        .collect();
    insert_many(conn, "INSERT INTO ticket_links (tenant_id, ticket_id, other_id)", "ON CONFLICT DO NOTHING", rows)
        .await?;
    Ok(())
}

// --- Listing

/// What a page of tickets is filtered by and sorted in; empty strings and lists, `false` and
/// `None` filter nothing.
pub(crate) struct TicketFilter<'a> {
    pub(crate) requester_id: &'a str,
    pub(crate) assignee_id: &'a str,
    pub(crate) group: &'a str,
    pub(crate) unassigned: bool,
    pub(crate) statuses: Vec<Status>,
    pub(crate) priorities: Vec<Priority>,
    pub(crate) channel: Option<Channel>,
    pub(crate) tag: Option<String>,
    pub(crate) created_after: Option<i64>,
    pub(crate) created_before: Option<i64>,
    pub(crate) updated_after: Option<i64>,
    pub(crate) updated_before: Option<i64>,
    /// Search terms the tickets must all contain.
    pub(crate) terms: Vec<String>,
    /// Match the terms in what customers may see only.
    pub(crate) public_terms: bool,
    pub(crate) order: TicketOrder,
    /// The [`ticket_cursor`] of the last ticket of the page before.
    pub(crate) after: Option<Vec<String>>,
    pub(crate) limit: i64,
}

/// The columns tickets are sorted by in `order` (numeric ones marked), and whether descending.
fn sort_key(order: TicketOrder) -> (&'static [(&'static str, bool)], bool) {
    match order {
        TicketOrder::CreatedAsc => (&[("t.created_at", true), ("t.id", false)], false),
        TicketOrder::UpdatedDesc => (&[("t.updated_at", true), ("t.id", false)], true),
        TicketOrder::UpdatedAsc => (&[("t.updated_at", true), ("t.id", false)], false),
        TicketOrder::PriorityDesc => (&[("t.priority", true), ("t.created_at", true), ("t.id", false)], true),
        TicketOrder::CreatedDesc | TicketOrder::Unspecified => (&[("t.created_at", true), ("t.id", false)], true),
    }
}

/// How many values a [`ticket_cursor`] of `order` holds.
pub(crate) fn cursor_len(order: TicketOrder) -> usize {
    sort_key(order).0.len()
}

/// The ticket's values in the sort key of `order`: where the page after it starts.
pub(crate) fn ticket_cursor(ticket: &proto::Ticket, order: TicketOrder) -> Vec<String> {
    let micros =
        |t: &Option<pbjson_types::Timestamp>| t.as_ref().map(timestamp_to_micros).unwrap_or_default().to_string();
    match order {
        TicketOrder::UpdatedDesc | TicketOrder::UpdatedAsc => vec![micros(&ticket.updated_at), ticket.id.clone()],
        TicketOrder::PriorityDesc => vec![ticket.priority.to_string(), micros(&ticket.created_at), ticket.id.clone()],
        _ => vec![micros(&ticket.created_at), ticket.id.clone()],
    }
}

/// A page of the tenant's tickets, without their links.
pub(crate) async fn tickets_page(
    conn: &mut AnyConnection,
    tenant_id: &str,
    filter: &TicketFilter<'_>,
) -> Result<Vec<proto::Ticket>, ServiceError> {
    let mut sql = Sql::new(SELECT_TICKET);
    let tenant = sql.text(tenant_id);
    sql.push(&format!(" WHERE t.tenant_id = {tenant}"));
    let equals = |sql: &mut Sql, column: &str, value: &str| {
        if !value.is_empty() {
            let placeholder = sql.text(value);
            sql.push(&format!(" AND {column} = {placeholder}"));
        }
    };
    equals(&mut sql, "t.requester_id", filter.requester_id);
    equals(&mut sql, "t.assignee_id", filter.assignee_id);
    equals(&mut sql, "t.group_name", filter.group);
    if filter.unassigned {
        sql.push(" AND t.assignee_id = ''");
    }
    if !filter.statuses.is_empty() {
        let values: Vec<String> = filter.statuses.iter().map(|status| sql.int(*status as i64)).collect();
        sql.push(&format!(" AND t.status IN ({})", values.join(", ")));
    }
    if !filter.priorities.is_empty() {
        let values: Vec<String> = filter.priorities.iter().map(|priority| sql.int(*priority as i64)).collect();
        sql.push(&format!(" AND t.priority IN ({})", values.join(", ")));
    }
    if let Some(channel) = filter.channel {
        let placeholder = sql.int(channel as i64);
        sql.push(&format!(" AND t.channel = {placeholder}"));
    }
    if let Some(tag) = &filter.tag {
        let tag = sql.text(tag.as_str());
        sql.push(&format!(
            " AND EXISTS (SELECT 1 FROM ticket_tags g WHERE g.tenant_id = t.tenant_id \
             AND g.ticket_id = t.id AND g.tag = {tag})"
        ));
    }
    for (micros, column, op) in [
        (filter.created_after, "t.created_at", ">="),
        (filter.created_before, "t.created_at", "<"),
        (filter.updated_after, "t.updated_at", ">="),
        (filter.updated_before, "t.updated_at", "<"),
    ] {
        if let Some(micros) = micros {
            let placeholder = sql.int(micros);
            sql.push(&format!(" AND {column} {op} {placeholder}"));
        }
    }
    if !filter.terms.is_empty() {
        search::restrict(&mut sql, backend_of(conn), &tenant, &filter.terms, filter.public_terms);
    }
    let (columns, descending) = sort_key(filter.order);
    if let Some(values) = &filter.after {
        after_cursor(&mut sql, columns, values, descending)?;
    }
    let direction = if descending { "DESC" } else { "ASC" };
    let order_by: Vec<String> = columns.iter().map(|(column, _)| format!("{column} {direction}")).collect();
    let limit = sql.int(filter.limit);
    sql.push(&format!(" ORDER BY {} LIMIT {limit}", order_by.join(", ")));
    let rows: Vec<TicketRow> = sql.fetch_all(conn).await?;
    rows.into_iter().map(|row| StoredTicket::try_from(row).map(|stored| stored.ticket)).collect()
}
