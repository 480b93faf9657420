//! Messages' table: a ticket's replies and internal notes, their attachments as JSON.

use helpdesk_proto::ticketing::v1::{self as proto, Visibility};
use helpdesk_runtime::{
    ServiceError,
    db::Database,
    time::{micros_to_timestamp, timestamp_to_micros},
};
use sqlx::AnyConnection;

use super::sql::{Sql, after_cursor};
use crate::model::{from_json, to_json};

const SELECT_MESSAGE: &str = "SELECT id, ticket_id, author_kind, author_id, visibility, body_text, body_html, \
    attachments, created_at, customer_text FROM messages m";

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    ticket_id: String,
    author_kind: i64,
    author_id: String,
    visibility: i64,
    body_text: String,
    body_html: String,
    attachments: String,
    created_at: i64,
    customer_text: String,
}

impl TryFrom<MessageRow> for proto::Message {
    type Error = ServiceError;

    fn try_from(row: MessageRow) -> Result<Self, ServiceError> {
        Ok(proto::Message {
            id: row.id,
            ticket_id: row.ticket_id,
            author_kind: row.author_kind as i32,
            author_id: row.author_id,
            visibility: row.visibility as i32,
            body_text: row.body_text,
            body_html: row.body_html,
            attachments: from_json(&row.attachments)?,
            created_at: Some(micros_to_timestamp(row.created_at)),
            customer_text: row.customer_text,
        })
    }
}

pub(crate) async fn insert_message(
    conn: &mut AnyConnection,
    tenant_id: &str,
    message: &proto::Message,
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO messages (tenant_id, id, ticket_id, author_kind, author_id, visibility, body_text, \
         body_html, attachments, created_at, customer_text) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(tenant_id)
    .bind(&message.id)
    .bind(&message.ticket_id)
    .bind(i64::from(message.author_kind))
    .bind(&message.author_id)
    .bind(i64::from(message.visibility))
    .bind(&message.body_text)
    .bind(&message.body_html)
    .bind(to_json(&message.attachments)?)
    .bind(message.created_at.as_ref().map(timestamp_to_micros).unwrap_or_default())
    .bind(&message.customer_text)
    .execute(conn)
    .await?;
    Ok(())
}

/// The message, which must exist.
/// The ticket's message `id`, if it has one.
pub(crate) async fn ticket_message(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
    id: &str,
) -> Result<Option<proto::Message>, ServiceError> {
    let row: Option<MessageRow> =
        sqlx::query_as(&format!("{SELECT_MESSAGE} WHERE tenant_id = $1 AND ticket_id = $2 AND id = $3"))
            .bind(tenant_id)
            .bind(ticket_id)
            .bind(id)
            .fetch_optional(db.reader())
            .await?;
    row.map(proto::Message::try_from).transpose()
}

pub(crate) async fn message_by_id(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
) -> Result<proto::Message, ServiceError> {
    let row: MessageRow = sqlx::query_as(&format!("{SELECT_MESSAGE} WHERE tenant_id = $1 AND id = $2"))
        .bind(tenant_id)
        .bind(id)
        .fetch_one(conn)
        .await?;
    row.try_into()
}

/// A page of the ticket's messages, oldest first, after the `(created_at, id)` cursor; only the
/// public ones if asked.
pub(crate) async fn messages_page(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
    public_only: bool,
    after: Option<&[String]>,
    limit: i64,
) -> Result<Vec<proto::Message>, ServiceError> {
    let mut sql = Sql::new(&format!("{SELECT_MESSAGE} WHERE tenant_id = "));
    let tenant = sql.text(tenant_id);
    let ticket = sql.text(ticket_id);
    sql.push(&format!("{tenant} AND ticket_id = {ticket}"));
    if public_only {
        let public = sql.int(Visibility::Public as i64);
        sql.push(&format!(" AND visibility = {public}"));
    }
    if let Some(values) = after {
        after_cursor(&mut sql, &[("m.created_at", true), ("m.id", false)], values, false)?;
    }
    let limit = sql.int(limit);
    sql.push(&format!(" ORDER BY m.created_at, m.id LIMIT {limit}"));
    let rows: Vec<MessageRow> = sql.fetch_all(db.reader()).await?;
    rows.into_iter().map(proto::Message::try_from).collect()
}

/// The attachment with hex SHA-256 `sha256` on one of the ticket's messages (its public ones
/// only, if asked), as that message names it.
pub(crate) async fn message_attachment(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
    sha256: &str,
    public_only: bool,
) -> Result<Option<proto::Attachment>, ServiceError> {
    let visibility = if public_only { " AND visibility = $4" } else { "" };
    // The hash is hex, so the pattern matches it and nothing else; the JSON is read to be sure.
    let sql = format!(
        "SELECT attachments FROM messages WHERE tenant_id = $1 AND ticket_id = $2 AND attachments LIKE $3{visibility} \
         ORDER BY created_at, id"
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql).bind(tenant_id).bind(ticket_id).bind(format!("%{sha256}%"));
    if public_only {
        query = query.bind(Visibility::Public as i64);
    }
    for attachments in query.fetch_all(db.reader()).await? {
        let attachments: Vec<proto::Attachment> = from_json(&attachments)?;
        if let Some(found) = attachments.into_iter().find(|attachment| attachment.sha256 == sha256) {
            return Ok(Some(found));
        }
    }
    Ok(None)
}
