//! Idempotency keys: the fingerprint of the request that first used a key in a scope (`ticket`,
//! `customer`, `message`), and the id of what it made.

use std::collections::HashMap;

use helpdesk_runtime::{ServiceError, time::now_micros};
use sqlx::AnyConnection;

use super::sql::{Param, Sql, insert_many};

/// The fingerprint and resource id stored for the key, if it was used.
pub(crate) async fn idempotency_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    scope: &str,
    key: &str,
) -> Result<Option<(String, String)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT fingerprint, resource_id FROM idempotency_keys \
         WHERE tenant_id = $1 AND scope = $2 AND idempotency_key = $3",
    )
    .bind(tenant_id)
    .bind(scope)
    .bind(key)
    .fetch_optional(conn)
    .await?)
}

pub(crate) async fn insert_idempotency_key(
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

// --- Ticket creation, for keys of any tenants

/// Which of the `(tenant, key)` ticket keys were used: (tenant, key) → (fingerprint, ticket id).
pub(crate) async fn ticket_idempotency_keys(
    conn: &mut AnyConnection,
    keys: &[(&str, &str)],
) -> Result<HashMap<(String, String), (String, String)>, ServiceError> {
    let mut found = HashMap::new();
    for chunk in keys.chunks(500) {
        let mut sql = Sql::new(
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
        for (tenant, key, fingerprint, ticket_id) in
            sql.fetch_all::<(String, String, String, String)>(&mut *conn).await?
        {
            found.insert((tenant, key), (fingerprint, ticket_id));
        }
    }
    Ok(found)
}

/// Remembers each `(tenant, key, fingerprint, ticket id)` of new tickets.
pub(crate) async fn insert_ticket_idempotency_keys(
    conn: &mut AnyConnection,
    keys: &[(&str, &str, &str, &str)],
    now: i64,
) -> Result<(), ServiceError> {
    let rows = keys
        .iter()
        .map(|&(tenant, key, fingerprint, ticket_id)| {
            vec![
                Param::from(tenant),
                Param::from("ticket"),
                Param::from(key),
                Param::from(fingerprint),
                Param::from(ticket_id),
                Param::from(now),
            ]
        })
        .collect();
    insert_many(
        conn,
        "INSERT INTO idempotency_keys (tenant_id, scope, idempotency_key, fingerprint, resource_id, created_at)",
        "",
        rows,
    )
    .await?;
    Ok(())
}
