//! The outbox table lives in the owning service's database, created by [`MIGRATIONS`], which the
//! service lists among its own as shared; this module is the only code that reads or writes it.

use std::borrow::Borrow;

use helpdesk_proto::events::v1::Event;
use helpdesk_runtime::db::{Migrations, positional};
use prost::Message;
use sqlx::AnyConnection;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./outbox/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./outbox/postgres");

/// The outbox table, version 0 of a publishing service's schema.
pub static MIGRATIONS: Migrations =
    Migrations { portable: &Migrations::NONE, sqlite: &SQLITE, postgres: &POSTGRES, shared: &[], rebaselined: &[] };

/// An event as stored in the outbox, encoded as protobuf.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    pub position: i64,
    pub event: Event,
}

/// Appends `event` within the caller's transaction, so it commits or rolls back with the change.
pub async fn append(conn: &mut AnyConnection, event: &Event) -> Result<(), sqlx::Error> {
    append_all(conn, std::slice::from_ref(event)).await
}

/// Appends `events` in order, a few hundred rows a statement.
pub async fn append_all(conn: &mut AnyConnection, events: &[impl Borrow<Event>]) -> Result<(), sqlx::Error> {
    const COLUMNS: usize = 6;
    for chunk in events.chunks(500) {
        let rows: Vec<String> = (0..chunk.len())
            .map(|row| {
                let first = row * COLUMNS + 1;
                let placeholders: Vec<String> = (first..first + COLUMNS).map(|n| positional(conn, n)).collect();
                format!("({})", placeholders.join(", "))
            })
            .collect();
        let sql = format!(
            "INSERT INTO outbox (tenant_id, event_id, aggregate_type, aggregate_id, sequence, payload) VALUES {}",
            rows.join(", ")
        );
        let mut query = sqlx::query(&sql);
        for event in chunk {
            let event = event.borrow();
            query = query
                .bind(&event.tenant_id)
                .bind(&event.id)
                .bind(&event.aggregate_type)
                .bind(&event.aggregate_id)
                .bind(event.sequence)
                .bind(event.encode_to_vec());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The oldest committed events by position (per aggregate, that is commit order), and the
/// positions of rows that cannot be decoded.
pub(crate) async fn oldest(pool: &sqlx::AnyPool, limit: i64) -> Result<(Vec<StoredEvent>, Vec<i64>), sqlx::Error> {
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as("SELECT position, payload FROM outbox ORDER BY position LIMIT $1")
        .bind(limit)
        .fetch_all(pool)
        .await?;
    let mut events = Vec::with_capacity(rows.len());
    let mut undecodable = Vec::new();
    for (position, payload) in rows {
        match Event::decode(payload.as_slice()) {
            Ok(event) => events.push(StoredEvent { position, event }),
            // Only this crate writes the outbox, so this is a defect: log it, drop the row, and
            // keep relaying the rest rather than stall behind it.
            Err(error) => {
                tracing::error!(position, %error, "undecodable outbox row dropped");
                undecodable.push(position);
            }
        }
    }
    Ok((events, undecodable))
}

/// Removes exactly the published rows (not a range: a lower position may still commit later).
pub(crate) async fn remove(pool: &sqlx::AnyPool, positions: &[i64]) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    for chunk in positions.chunks(500) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| positional(&conn, i)).collect();
        let sql = format!("DELETE FROM outbox WHERE position IN ({})", placeholders.join(", "));
        let mut query = sqlx::query(&sql);
        for position in chunk {
            query = query.bind(*position);
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
