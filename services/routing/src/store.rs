//! Routing's tables: settings, presence, work items with their SLA clocks, escalations, notes for
//! tickets and the outbox. Writes from many operations commit together (group commit); start-up
//! reads everything that is still open back into memory.

use std::{collections::HashMap, sync::Arc};

use helpdesk_proto::{events::v1::Event, routing::v1::Escalation};
use helpdesk_runtime::db::{Database, positional};
use prost::Message;

use crate::escalation::Recorded;

/// Kinds of rows in `settings`.
pub(crate) const AGENT: &str = "agent";
pub(crate) const QUEUE: &str = "queue";
pub(crate) const CALENDAR: &str = "calendar";
pub(crate) const POLICY: &str = "policy";
pub(crate) const RULE: &str = "rule";

pub(crate) struct ItemRow {
    pub(crate) tenant: String,
    pub(crate) ticket: String,
    pub(crate) open: bool,
    pub(crate) version: i64,
    pub(crate) item: Vec<u8>,
    pub(crate) sla: Option<Vec<u8>>,
    pub(crate) desired: String,
}

/// Everything one operation must make durable before it is acknowledged.
#[derive(Default)]
pub(crate) struct Writes {
    pub(crate) settings: Vec<(String, &'static str, String, Vec<u8>)>,
    pub(crate) presence: Vec<(String, String, i32, i64)>,
    pub(crate) items: Vec<ItemRow>,
    pub(crate) escalations: Vec<(String, Recorded)>,
    pub(crate) notes: Vec<(String, String, String, String)>,
    pub(crate) events: Vec<Event>,
}

impl Writes {
    pub(crate) fn is_empty(&self) -> bool {
        self.settings.is_empty()
            && self.presence.is_empty()
            && self.items.is_empty()
            && self.escalations.is_empty()
            && self.notes.is_empty()
            && self.events.is_empty()
    }
}

const ITEM_COLUMNS: usize = 8;

/// Commits a batch of operations' writes in one transaction. The writes are borrowed, so that a
/// failed commit can be retried with the same rows.
pub(crate) async fn write(db: &Database, batch: &[Arc<Writes>]) -> Result<(), sqlx::Error> {
    let mut tx = db.writer().begin().await?;
    let mut items: HashMap<(&str, &str), &ItemRow> = HashMap::new();
    let mut events = Vec::new();
    for writes in batch {
        for (tenant, kind, id, spec) in &writes.settings {
            let sql = "INSERT INTO settings (tenant_id, kind, id, spec, updated_at) VALUES ($1, $2, $3, $4, $5) \
                       ON CONFLICT (tenant_id, kind, id) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at";
            sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(*kind)
                .bind(id.as_str())
                .bind(spec.as_slice())
                .bind(crate::time::now())
                .execute(&mut *tx)
                .await?;
        }
        // Batches commit in parallel on PostgreSQL: an older presence never overwrites a newer one.
        for (tenant, agent, presence, last_active) in &writes.presence {
            let sql = "INSERT INTO presence (tenant_id, agent_id, presence, last_active_at) VALUES ($1, $2, $3, $4) \
                       ON CONFLICT (tenant_id, agent_id) DO UPDATE SET presence = excluded.presence, \
                       last_active_at = excluded.last_active_at \
                       WHERE presence.last_active_at <= excluded.last_active_at";
            sqlx::query(sql)
                .bind(tenant.as_str())
                .bind(agent.as_str())
                .bind(*presence)
                .bind(*last_active)
                .execute(&mut *tx)
                .await?;
        }
        for row in &writes.items {
            let key = (row.tenant.as_str(), row.ticket.as_str());
            if items.get(&key).is_none_or(|existing| existing.version < row.version) {
                items.insert(key, row);
            }
        }
        for (tenant, recorded) in &writes.escalations {
            let escalation = &recorded.escalation;
            let occurred = escalation.occurred_at.as_ref().map_or(0, crate::time::millis);
            sqlx::query(
                "INSERT INTO escalations (tenant_id, id, ticket_id, occurrence, occurred_at, spec) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(tenant.as_str())
            .bind(escalation.id.as_str())
            .bind(escalation.ticket_id.as_str())
            .bind(recorded.key.as_str())
            .bind(occurred)
            .bind(escalation.encode_to_vec())
            .execute(&mut *tx)
            .await?;
        }
        for (id, tenant, ticket, body) in &writes.notes {
            // A retried commit may find the note already written.
            sqlx::query(
                "INSERT INTO ticket_notes (id, tenant_id, ticket_id, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(id.as_str())
            .bind(tenant.as_str())
            .bind(ticket.as_str())
            .bind(body.as_str())
            .execute(&mut *tx)
            .await?;
        }
        events.extend(&writes.events);
    }
    let items: Vec<&ItemRow> = items.into_values().collect();
    for chunk in items.chunks(100) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|row| {
                let first = row * ITEM_COLUMNS + 1;
                let placeholders: Vec<String> = (first..first + ITEM_COLUMNS).map(|n| positional(&tx, n)).collect();
                format!("({})", placeholders.join(", "))
            })
            .collect();
        // `synced` starts empty, so a new row is pending for ticketing; a replayed older
        // version never overwrites a newer one.
        let sql = format!(
            "INSERT INTO work_items (tenant_id, ticket_id, open, version, item, sla, desired, synced) VALUES {} \
             ON CONFLICT (tenant_id, ticket_id) DO UPDATE SET open = excluded.open, version = excluded.version, \
             item = excluded.item, sla = excluded.sla, desired = excluded.desired \
             WHERE work_items.version < excluded.version",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for row in chunk {
            query = query
                .bind(row.tenant.as_str())
                .bind(row.ticket.as_str())
                .bind(i64::from(row.open))
                .bind(row.version)
                .bind(row.item.as_slice())
                .bind(row.sla.as_deref())
                .bind(row.desired.as_str())
                .bind("");
        }
        query.execute(&mut *tx).await?;
    }
    helpdesk_events::outbox::append_all(&mut tx, &events).await?;
    tx.commit().await
}

/// Every setting, by tenant.
pub(crate) async fn settings(db: &Database) -> Result<Vec<(String, String, Vec<u8>)>, sqlx::Error> {
    // Calendars before policies and queues before rules, so references resolve while loading.
    sqlx::query_as(
        "SELECT tenant_id, kind, spec FROM settings ORDER BY CASE kind WHEN 'calendar' THEN 0 WHEN 'queue' THEN 1 \
         WHEN 'agent' THEN 2 WHEN 'policy' THEN 3 ELSE 4 END, id",
    )
    .fetch_all(db.reader())
    .await
}

/// Each agent's `(tenant, agent, presence, last active)`.
pub(crate) async fn presence(db: &Database) -> Result<Vec<(String, String, i64, i64)>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, agent_id, presence, last_active_at FROM presence").fetch_all(db.reader()).await
}

#[derive(sqlx::FromRow)]
pub(crate) struct OpenItem {
    #[sqlx(rename = "tenant_id")]
    pub(crate) tenant: String,
    pub(crate) version: i64,
    pub(crate) item: Vec<u8>,
    pub(crate) sla: Option<Vec<u8>>,
}

pub(crate) async fn open_items(db: &Database) -> Result<Vec<OpenItem>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, version, item, sla FROM work_items WHERE open = 1").fetch_all(db.reader()).await
}

/// A stored item (open or done) with its SLA.
pub(crate) async fn item(
    db: &Database,
    tenant: &str,
    ticket: &str,
) -> Result<Option<(Vec<u8>, Option<Vec<u8>>)>, sqlx::Error> {
    sqlx::query_as("SELECT item, sla FROM work_items WHERE tenant_id = $1 AND ticket_id = $2")
        .bind(tenant)
        .bind(ticket)
        .fetch_optional(db.reader())
        .await
}

/// The `(ticket, occurrence key)` of every escalation, so rules do not fire twice after a restart.
pub(crate) async fn fired(db: &Database) -> Result<Vec<(String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, ticket_id, occurrence FROM escalations").fetch_all(db.reader()).await
}

pub(crate) async fn escalations(db: &Database, tenant: &str, ticket: &str) -> Result<Vec<Escalation>, sqlx::Error> {
    let specs: Vec<Vec<u8>> = sqlx::query_scalar(
        "SELECT spec FROM escalations WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY occurred_at, id",
    )
    .bind(tenant)
    .bind(ticket)
    .fetch_all(db.reader())
    .await?;
    Ok(specs.iter().filter_map(|spec| Escalation::decode(spec.as_slice()).ok()).collect())
}

#[derive(sqlx::FromRow)]
pub(crate) struct Unsynced {
    #[sqlx(rename = "tenant_id")]
    pub(crate) tenant: String,
    #[sqlx(rename = "ticket_id")]
    pub(crate) ticket: String,
    pub(crate) desired: String,
}

pub(crate) async fn unsynced(db: &Database, limit: i64) -> Result<Vec<Unsynced>, sqlx::Error> {
    sqlx::query_as("SELECT tenant_id, ticket_id, desired FROM work_items WHERE desired <> synced LIMIT $1")
        .bind(limit)
        .fetch_all(db.reader())
        .await
}

pub(crate) async fn mark_synced(db: &Database, tenant: &str, ticket: &str, desired: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE work_items SET synced = $1 WHERE tenant_id = $2 AND ticket_id = $3")
        .bind(desired)
        .bind(tenant)
        .bind(ticket)
        .execute(db.writer())
        .await
        .map(|_| ())
}

pub(crate) async fn notes(db: &Database, limit: i64) -> Result<Vec<(String, String, String, String)>, sqlx::Error> {
    sqlx::query_as("SELECT id, tenant_id, ticket_id, body FROM ticket_notes ORDER BY id LIMIT $1")
        .bind(limit)
        .fetch_all(db.reader())
        .await
}

pub(crate) async fn remove_note(db: &Database, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM ticket_notes WHERE id = $1").bind(id).execute(db.writer()).await.map(|_| ())
}
