//! Every SQL statement of the email service, tenant first: mailboxes and the addresses they
//! take mail for, received mail and its outcome, and the keys that thread mail into tickets.

mod imap;

pub(crate) use imap::*;

use helpdesk_runtime::{ServiceError, db::Database};
use sqlx::AnyConnection;

/// A mailbox as stored: its encoded settings and its encrypted credentials.
#[derive(sqlx::FromRow)]
pub(crate) struct MailboxRow {
    pub(crate) spec: Vec<u8>,
    pub(crate) secrets: Option<Vec<u8>>,
    pub(crate) created_at: i64,
    pub(crate) updated_at: i64,
}

pub(crate) async fn mailbox(db: &Database, tenant_id: &str, id: &str) -> Result<Option<MailboxRow>, ServiceError> {
    Ok(sqlx::query_as("SELECT spec, secrets, created_at, updated_at FROM mailboxes WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .fetch_optional(db.reader())
        .await?)
}

pub(crate) async fn mailboxes(db: &Database, tenant_id: &str) -> Result<Vec<MailboxRow>, ServiceError> {
    Ok(sqlx::query_as("SELECT spec, secrets, created_at, updated_at FROM mailboxes WHERE tenant_id = $1 ORDER BY id")
        .bind(tenant_id)
        .fetch_all(db.reader())
        .await?)
}

/// Writes the mailbox and makes `addresses` the ones it takes mail for; an address another
/// mailbox holds fails as already existing.
pub(crate) async fn save_mailbox(
    conn: &mut AnyConnection,
    tenant_id: &str,
    id: &str,
    row: &MailboxRow,
    addresses: &[String],
) -> Result<(), ServiceError> {
    sqlx::query(
        "INSERT INTO mailboxes (tenant_id, id, spec, secrets, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (tenant_id, id) DO UPDATE SET spec = excluded.spec, secrets = excluded.secrets, \
         updated_at = excluded.updated_at",
    )
    .bind(tenant_id)
    .bind(id)
    .bind(&row.spec)
    .bind(&row.secrets)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(&mut *conn)
    .await?;
    release_addresses(conn, tenant_id, id).await?;
    for address in addresses {
        sqlx::query("INSERT INTO mailbox_addresses (address, tenant_id, mailbox_id) VALUES ($1, $2, $3)")
            .bind(address)
            .bind(tenant_id)
            .bind(id)
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

pub(crate) async fn release_addresses(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM mailbox_addresses WHERE tenant_id = $1 AND mailbox_id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether the mailbox existed.
pub(crate) async fn delete_mailbox(conn: &mut AnyConnection, tenant_id: &str, id: &str) -> Result<bool, ServiceError> {
    release_addresses(conn, tenant_id, id).await?;
    let deleted = sqlx::query("DELETE FROM mailboxes WHERE tenant_id = $1 AND id = $2")
        .bind(tenant_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(deleted.rows_affected() > 0)
}

/// The `(tenant, mailbox)` that takes mail for `address`, whatever the tenant.
pub(crate) async fn mailbox_for_address(
    db: &Database,
    address: &str,
) -> Result<Option<(String, String)>, ServiceError> {
    Ok(sqlx::query_as("SELECT tenant_id, mailbox_id FROM mailbox_addresses WHERE address = $1")
        .bind(address)
        .fetch_optional(db.reader())
        .await?)
}

/// A received message as first stored.
pub(crate) struct NewMail<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) id: &'a str,
    pub(crate) mailbox_id: &'a str,
    pub(crate) source: i32,
    pub(crate) message_id: &'a str,
    pub(crate) sender: &'a str,
    pub(crate) subject: &'a str,
    pub(crate) size_bytes: i64,
    pub(crate) dedup_key: Option<&'a str>,
    pub(crate) raw: Option<&'a [u8]>,
    pub(crate) outcome: i32,
    pub(crate) reason: &'a str,
    pub(crate) ticket_id: &'a str,
    pub(crate) received_at: i64,
}

/// Stores the message; `false` when one with its dedup key is stored already.
pub(crate) async fn insert_mail(conn: &mut AnyConnection, mail: &NewMail<'_>) -> Result<bool, ServiceError> {
    let inserted = sqlx::query(
        "INSERT INTO inbound_mail (tenant_id, id, mailbox_id, source, message_id, sender, subject, size_bytes, \
         dedup_key, raw, outcome, reason, ticket_id, attempts, claimed_until, received_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 0, 0, $14) \
         ON CONFLICT (tenant_id, dedup_key) DO NOTHING",
    )
    .bind(mail.tenant_id)
    .bind(mail.id)
    .bind(mail.mailbox_id)
    .bind(i64::from(mail.source))
    .bind(mail.message_id)
    .bind(mail.sender)
    .bind(mail.subject)
    .bind(mail.size_bytes)
    .bind(mail.dedup_key)
    .bind(mail.raw)
    .bind(i64::from(mail.outcome))
    .bind(mail.reason)
    .bind(mail.ticket_id)
    .bind(mail.received_at)
    .execute(conn)
    .await?;
    Ok(inserted.rows_affected() > 0)
}

/// The id of the stored message with `dedup_key`.
pub(crate) async fn mail_by_dedup_key(
    conn: &mut AnyConnection,
    tenant_id: &str,
    dedup_key: &str,
) -> Result<Option<(String, i64)>, ServiceError> {
    Ok(sqlx::query_as("SELECT id, outcome FROM inbound_mail WHERE tenant_id = $1 AND dedup_key = $2")
        .bind(tenant_id)
        .bind(dedup_key)
        .fetch_optional(conn)
        .await?)
}

/// Mail as admins see it in the list.
#[derive(sqlx::FromRow)]
pub(crate) struct MailRow {
    pub(crate) id: String,
    pub(crate) mailbox_id: String,
    pub(crate) source: i64,
    pub(crate) message_id: String,
    pub(crate) sender: String,
    pub(crate) subject: String,
    pub(crate) size_bytes: i64,
    pub(crate) outcome: i64,
    pub(crate) reason: String,
    pub(crate) ticket_id: String,
    pub(crate) received_at: i64,
}

const MAIL_COLUMNS: &str =
    "id, mailbox_id, source, message_id, sender, subject, size_bytes, outcome, reason, ticket_id, received_at";

/// A page of a mailbox's mail, newest first, after the `(received_at, id)` cursor; only the
/// pending when `pending`.
pub(crate) async fn mail_page(
    db: &Database,
    tenant_id: &str,
    mailbox_id: &str,
    after: Option<(i64, String)>,
    pending: bool,
    limit: i64,
) -> Result<Vec<MailRow>, ServiceError> {
    let (before_at, before_id) = after.unwrap_or((i64::MAX, String::new()));
    let only_pending = if pending { "AND outcome = 0" } else { "" };
    Ok(sqlx::query_as(&format!(
        "SELECT {MAIL_COLUMNS} FROM inbound_mail WHERE tenant_id = $1 AND mailbox_id = $2 {only_pending} \
         AND (received_at < $3 OR (received_at = $3 AND id < $4)) \
         ORDER BY received_at DESC, id DESC LIMIT $5"
    ))
    .bind(tenant_id)
    .bind(mailbox_id)
    .bind(before_at)
    .bind(before_id)
    .bind(limit)
    .fetch_all(db.reader())
    .await?)
}

/// Received mail waiting to be threaded.
#[derive(sqlx::FromRow)]
pub(crate) struct PendingMail {
    pub(crate) tenant_id: String,
    pub(crate) id: String,
    pub(crate) mailbox_id: String,
    pub(crate) sender: String,
    pub(crate) raw: Vec<u8>,
    pub(crate) attempts: i64,
    pub(crate) received_at: i64,
}

/// Up to `limit` pending messages that no worker holds, oldest first.
pub(crate) async fn pending(db: &Database, now: i64, limit: i64) -> Result<Vec<PendingMail>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id, mailbox_id, sender, raw, attempts, received_at FROM inbound_mail \
         WHERE outcome = 0 AND claimed_until < $1 ORDER BY received_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.reader())
    .await?)
}

/// Takes the message for a worker until `until`; `false` when another worker has it.
pub(crate) async fn claim(
    db: &Database,
    tenant_id: &str,
    id: &str,
    now: i64,
    until: i64,
) -> Result<bool, ServiceError> {
    let claimed = sqlx::query(
        "UPDATE inbound_mail SET claimed_until = $1, attempts = attempts + 1 \
         WHERE tenant_id = $2 AND id = $3 AND outcome = 0 AND claimed_until < $4",
    )
    .bind(until)
    .bind(tenant_id)
    .bind(id)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(claimed.rows_affected() > 0)
}

/// Leaves the message pending until `retry_at`, after a failure that may pass.
pub(crate) async fn postpone(db: &Database, tenant_id: &str, id: &str, retry_at: i64) -> Result<(), ServiceError> {
    sqlx::query("UPDATE inbound_mail SET claimed_until = $1 WHERE tenant_id = $2 AND id = $3")
        .bind(retry_at)
        .bind(tenant_id)
        .bind(id)
        .execute(db.writer())
        .await?;
    Ok(())
}

/// What became of the message, and what ties it to its ticket, in one transaction.
pub(crate) async fn settle(
    db: &Database,
    tenant_id: &str,
    id: &str,
    outcome: i32,
    reason: &str,
    ticket_id: &str,
    thread_keys: &[String],
) -> Result<(), ServiceError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query("UPDATE inbound_mail SET outcome = $1, reason = $2, ticket_id = $3, claimed_until = 0 WHERE tenant_id = $4 AND id = $5")
        .bind(i64::from(outcome))
        .bind(reason)
        .bind(ticket_id)
        .bind(tenant_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
    for key in thread_keys {
        sqlx::query(
            "INSERT INTO thread_keys (tenant_id, thread_key, ticket_id) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, thread_key) DO NOTHING",
        )
        .bind(tenant_id)
        .bind(key)
        .bind(ticket_id)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The ticket the first of `keys` that is known belongs to, with that key.
pub(crate) async fn ticket_for_keys(
    db: &Database,
    tenant_id: &str,
    keys: &[String],
) -> Result<Option<(String, String)>, ServiceError> {
    for key in keys {
        let found: Option<String> =
            sqlx::query_scalar("SELECT ticket_id FROM thread_keys WHERE tenant_id = $1 AND thread_key = $2")
                .bind(tenant_id)
                .bind(key)
                .fetch_optional(db.reader())
                .await?;
        if let Some(ticket) = found {
            return Ok(Some((ticket, key.clone())));
        }
    }
    Ok(None)
}

/// Whether any of `message_ids` is a message of the tenant received by `received_at` and not yet
/// threaded (other than `id` itself).
pub(crate) async fn names_pending_mail(
    db: &Database,
    tenant_id: &str,
    id: &str,
    message_ids: &[&str],
    received_at: i64,
) -> Result<bool, ServiceError> {
    if message_ids.is_empty() {
        return Ok(false);
    }
    let placeholders: Vec<String> = (0..message_ids.len()).map(|n| format!("${}", n + 4)).collect();
    let sql = format!(
        "SELECT COUNT(*) FROM inbound_mail WHERE tenant_id = $1 AND id <> $2 AND outcome = 0 AND received_at <= $3 \
         AND message_id IN ({})",
        placeholders.join(", ")
    );
    let mut query = sqlx::query_scalar(&sql).bind(tenant_id).bind(id).bind(received_at);
    for message_id in message_ids {
        query = query.bind(*message_id);
    }
    let pending: i64 = query.fetch_one(db.writer()).await?;
    Ok(pending > 0)
}

/// How many messages `sender` sent the tenant from `since` to `until`.
pub(crate) async fn sent_between(
    db: &Database,
    tenant_id: &str,
    sender: &str,
    since: i64,
    until: i64,
) -> Result<i64, ServiceError> {
    Ok(sqlx::query_scalar(
        "SELECT COUNT(*) FROM inbound_mail WHERE tenant_id = $1 AND sender = $2 AND received_at >= $3 \
         AND received_at <= $4",
    )
    .bind(tenant_id)
    .bind(sender)
    .bind(since)
    .bind(until)
    .fetch_one(db.reader())
    .await?)
}

/// The mailbox and Message-IDs of the mail a ticket received, oldest first (at most 20), for
/// the headers that thread a reply.
pub(crate) async fn ticket_mail(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Vec<(String, String)>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT mailbox_id, message_id FROM inbound_mail WHERE tenant_id = $1 AND ticket_id = $2 \
         AND message_id <> '' ORDER BY received_at DESC LIMIT 20",
    )
    .bind(tenant_id)
    .bind(ticket_id)
    .fetch_all(db.reader())
    .await
    .map(|mut rows: Vec<(String, String)>| {
        rows.reverse();
        rows
    })?)
}

/// The ticket's token, if the ticket came by email.
pub(crate) async fn ticket_token(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Option<String>, ServiceError> {
    let key: Option<String> = sqlx::query_scalar(
        "SELECT thread_key FROM thread_keys WHERE tenant_id = $1 AND ticket_id = $2 AND thread_key LIKE 'token:%'",
    )
    .bind(tenant_id)
    .bind(ticket_id)
    .fetch_optional(db.reader())
    .await?;
    Ok(key.and_then(|key| key.strip_prefix("token:").map(str::to_owned)))
}

/// A reply as first queued.
pub(crate) struct NewDelivery<'a> {
    pub(crate) tenant_id: &'a str,
    pub(crate) message_id: &'a str,
    pub(crate) ticket_id: &'a str,
    pub(crate) mailbox_id: &'a str,
    pub(crate) recipient: &'a str,
    /// Copied to, separated by commas.
    pub(crate) cc: &'a str,
    pub(crate) email_message_id: &'a str,
    pub(crate) raw: &'a [u8],
    pub(crate) queued_at: i64,
}

/// Queues the reply and ties its Message-ID to the ticket, once per ticket message.
pub(crate) async fn queue_delivery(db: &Database, delivery: &NewDelivery<'_>) -> Result<(), ServiceError> {
    let mut tx = db.writer().begin().await?;
    sqlx::query(
        "INSERT INTO deliveries (tenant_id, message_id, ticket_id, mailbox_id, recipient, email_message_id, raw, state, \
         attempts, last_error, next_attempt_at, queued_at, cc) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 0, '', $8, $8, $9) \
         ON CONFLICT (tenant_id, message_id) DO NOTHING",
    )
    .bind(delivery.tenant_id)
    .bind(delivery.message_id)
    .bind(delivery.ticket_id)
    .bind(delivery.mailbox_id)
    .bind(delivery.recipient)
    .bind(delivery.email_message_id)
    .bind(delivery.raw)
    .bind(delivery.queued_at)
    .bind(delivery.cc)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO thread_keys (tenant_id, thread_key, ticket_id) VALUES ($1, $2, $3) \
         ON CONFLICT (tenant_id, thread_key) DO NOTHING",
    )
    .bind(delivery.tenant_id)
    .bind(format!("id:{}", delivery.email_message_id))
    .bind(delivery.ticket_id)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// A reply due for an attempt.
#[derive(sqlx::FromRow)]
pub(crate) struct DueDelivery {
    pub(crate) tenant_id: String,
    pub(crate) message_id: String,
    pub(crate) mailbox_id: String,
    pub(crate) recipient: String,
    /// Copied to, separated by commas.
    pub(crate) cc: String,
    pub(crate) raw: Vec<u8>,
    pub(crate) attempts: i64,
    pub(crate) next_attempt_at: i64,
}

pub(crate) async fn due_deliveries(db: &Database, now: i64, limit: i64) -> Result<Vec<DueDelivery>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, message_id, mailbox_id, recipient, cc, raw, attempts, next_attempt_at FROM deliveries \
         WHERE state IN (1, 3) AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.reader())
    .await?)
}

/// Takes the delivery for an attempt until `until`, if nobody took it since it was read.
pub(crate) async fn claim_delivery(db: &Database, due: &DueDelivery, until: i64) -> Result<bool, ServiceError> {
    let claimed = sqlx::query(
        "UPDATE deliveries SET next_attempt_at = $1, attempts = attempts + 1 \
         WHERE tenant_id = $2 AND message_id = $3 AND state IN (1, 3) AND next_attempt_at = $4",
    )
    .bind(until)
    .bind(&due.tenant_id)
    .bind(&due.message_id)
    .bind(due.next_attempt_at)
    .execute(db.writer())
    .await?;
    Ok(claimed.rows_affected() > 0)
}

/// Records an attempt's result: sent, to be retried at `retry_at`, or failed for good.
pub(crate) async fn settle_delivery(
    db: &Database,
    tenant_id: &str,
    message_id: &str,
    state: i32,
    last_error: &str,
    retry_at: i64,
    sent_at: Option<i64>,
) -> Result<(), ServiceError> {
    sqlx::query(
        "UPDATE deliveries SET state = $1, last_error = $2, next_attempt_at = $3, sent_at = $4 \
         WHERE tenant_id = $5 AND message_id = $6",
    )
    .bind(i64::from(state))
    .bind(last_error)
    .bind(retry_at)
    .bind(sent_at)
    .bind(tenant_id)
    .bind(message_id)
    .execute(db.writer())
    .await?;
    Ok(())
}

#[derive(sqlx::FromRow)]
pub(crate) struct DeliveryRow {
    pub(crate) message_id: String,
    pub(crate) ticket_id: String,
    pub(crate) mailbox_id: String,
    pub(crate) recipient: String,
    pub(crate) email_message_id: String,
    pub(crate) state: i64,
    pub(crate) attempts: i64,
    pub(crate) last_error: String,
    pub(crate) queued_at: i64,
    pub(crate) sent_at: Option<i64>,
}

pub(crate) async fn ticket_deliveries(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
) -> Result<Vec<DeliveryRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT message_id, ticket_id, mailbox_id, recipient, email_message_id, state, attempts, last_error, \
         queued_at, sent_at FROM deliveries WHERE tenant_id = $1 AND ticket_id = $2 ORDER BY queued_at LIMIT 500",
    )
    .bind(tenant_id)
    .bind(ticket_id)
    .fetch_all(db.reader())
    .await?)
}

/// Marks failed the reply that carried `email_message_id`, after its bounce; returns its ticket.
pub(crate) async fn bounce_delivery(
    db: &Database,
    tenant_id: &str,
    email_message_id: &str,
    reason: &str,
) -> Result<Option<String>, ServiceError> {
    Ok(sqlx::query_scalar(
        "UPDATE deliveries SET state = 4, last_error = $1 WHERE tenant_id = $2 AND email_message_id = $3 \
         RETURNING ticket_id",
    )
    .bind(reason)
    .bind(tenant_id)
    .bind(email_message_id)
    .fetch_optional(db.writer())
    .await?)
}

/// The `message_id` of a ticket's acknowledgement in `deliveries`: one per ticket.
pub(crate) fn acknowledgement_id(ticket_id: &str) -> String {
    format!("ack:{ticket_id}")
}

/// Queues the acknowledgement of a new ticket, without its text: it is composed when sent.
pub(crate) async fn queue_acknowledgement(
    db: &Database,
    tenant_id: &str,
    ticket_id: &str,
    mailbox_id: &str,
    recipient: &str,
    hostname: &str,
) -> Result<(), ServiceError> {
    let id = acknowledgement_id(ticket_id);
    let now = helpdesk_runtime::time::now_micros();
    sqlx::query(
        "INSERT INTO deliveries (tenant_id, message_id, ticket_id, mailbox_id, recipient, email_message_id, raw, state, \
         attempts, last_error, next_attempt_at, queued_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 1, 0, '', $8, $8) \
         ON CONFLICT (tenant_id, message_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(&id)
    .bind(ticket_id)
    .bind(mailbox_id)
    .bind(recipient)
    .bind(format!("ack-{ticket_id}@{hostname}"))
    .bind(Vec::<u8>::new())
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(())
}
