//! Saved replies' table: shared ones have no owner, personal ones their owner's id.

use helpdesk_proto::ticketing::v1 as proto;
use helpdesk_runtime::{
    ServiceError,
    db::Database,
    time::{micros_to_timestamp, timestamp_to_micros},
};

pub(crate) async fn insert_saved_reply(
    db: &Database,
    tenant_id: &str,
    reply: &proto::SavedReply,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO saved_replies (tenant_id, id, title, body, owner_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(tenant_id)
    .bind(&reply.id)
    .bind(&reply.title)
    .bind(&reply.body)
    .bind(&reply.owner_id)
    .bind(reply.created_at.as_ref().map(timestamp_to_micros).unwrap_or_default())
    .execute(db.writer())
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
struct SavedReplyRow {
    id: String,
    title: String,
    body: String,
    owner_id: String,
    created_at: i64,
}

/// The tenant's shared replies and `owner_id`'s personal ones, by title.
pub(crate) async fn saved_replies(
    db: &Database,
    tenant_id: &str,
    owner_id: &str,
) -> Result<Vec<proto::SavedReply>, ServiceError> {
    let rows: Vec<SavedReplyRow> = sqlx::query_as(
        "SELECT id, title, body, owner_id, created_at FROM saved_replies \
         WHERE tenant_id = $1 AND (owner_id = '' OR owner_id = $2) ORDER BY title, id",
    )
    .bind(tenant_id)
    .bind(owner_id)
    .fetch_all(db.reader())
    .await?;
    Ok(rows
        .into_iter()
        .map(|row| proto::SavedReply {
            id: row.id,
            title: row.title,
            body: row.body,
            owner_id: row.owner_id,
            created_at: Some(micros_to_timestamp(row.created_at)),
        })
        .collect())
}

/// Deletes the reply if it is `owner_id`'s, or shared and `admin` may; whether it did.
pub(crate) async fn delete_saved_reply(
    db: &Database,
    tenant_id: &str,
    id: &str,
    owner_id: &str,
    admin: bool,
) -> Result<bool, ServiceError> {
    let result = sqlx::query(
        "DELETE FROM saved_replies WHERE tenant_id = $1 AND id = $2 AND (owner_id = $3 OR (owner_id = '' AND $4 = 1))",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(owner_id)
    .bind(i64::from(admin))
    .execute(db.writer())
    .await?;
    Ok(result.rows_affected() > 0)
}
