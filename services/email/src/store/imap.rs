//! IMAP fetching's state: each mailbox's lease, its folder's UID mark and how the last pass went.
//! Every write after the lease is taken names the holder, so a replica that lost the lease
//! (paused, cut off) can neither move the mark nor keep the mailbox.

use helpdesk_runtime::{ServiceError, db::Database};
use sqlx::AnyConnection;

use crate::imap::MailboxKey;

/// Gives a mailbox with IMAP settings its row; `account_changed` (another server, user or
/// folder) starts its UIDs over. A mailbox without IMAP settings has no row.
pub(crate) async fn keep_imap_state(
    conn: &mut AnyConnection,
    tenant_id: &str,
    mailbox_id: &str,
    fetches: bool,
    account_changed: bool,
) -> Result<(), ServiceError> {
    if !fetches {
        return forget_imap_state(conn, tenant_id, mailbox_id).await;
    }
    sqlx::query(
        "INSERT INTO imap_state (tenant_id, mailbox_id, holder, lease_until, uid_validity, last_uid, \
         messages_fetched, last_fetched_at, last_error, last_error_at) VALUES ($1, $2, '', 0, 0, 0, 0, 0, '', 0) \
         ON CONFLICT (tenant_id, mailbox_id) DO NOTHING",
    )
    .bind(tenant_id)
    .bind(mailbox_id)
    .execute(&mut *conn)
    .await?;
    if account_changed {
        sqlx::query(
            "UPDATE imap_state SET uid_validity = 0, last_uid = 0, last_error = '', last_error_at = 0 \
             WHERE tenant_id = $1 AND mailbox_id = $2",
        )
        .bind(tenant_id)
        .bind(mailbox_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

pub(crate) async fn forget_imap_state(
    conn: &mut AnyConnection,
    tenant_id: &str,
    mailbox_id: &str,
) -> Result<(), ServiceError> {
    sqlx::query("DELETE FROM imap_state WHERE tenant_id = $1 AND mailbox_id = $2")
        .bind(tenant_id)
        .bind(mailbox_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Mailboxes whose lease lapsed before `now`, longest lapsed first.
pub(crate) async fn lapsed_imap_leases(db: &Database, now: i64, limit: i64) -> Result<Vec<MailboxKey>, ServiceError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT tenant_id, mailbox_id FROM imap_state WHERE lease_until < $1 ORDER BY lease_until LIMIT $2",
    )
    .bind(now)
    .bind(limit)
    .fetch_all(db.reader())
    .await?;
    Ok(rows.into_iter().map(|(tenant_id, mailbox_id)| MailboxKey { tenant_id, mailbox_id }).collect())
}

/// Takes the mailbox for `holder` until `until` if its lease lapsed before `now`; `false` when
/// another replica was first.
pub(crate) async fn take_imap_lease(
    db: &Database,
    key: &MailboxKey,
    holder: &str,
    now: i64,
    until: i64,
) -> Result<bool, ServiceError> {
    let taken = sqlx::query(
        "UPDATE imap_state SET holder = $1, lease_until = $2 \
         WHERE tenant_id = $3 AND mailbox_id = $4 AND lease_until < $5",
    )
    .bind(holder)
    .bind(until)
    .bind(&key.tenant_id)
    .bind(&key.mailbox_id)
    .bind(now)
    .execute(db.writer())
    .await?;
    Ok(taken.rows_affected() > 0)
}

/// Extends the lease `holder` holds; `false` when it passed to another replica (or the mailbox
/// is gone).
pub(crate) async fn renew_imap_lease(
    db: &Database,
    key: &MailboxKey,
    holder: &str,
    until: i64,
) -> Result<bool, ServiceError> {
    let renewed =
        sqlx::query("UPDATE imap_state SET lease_until = $1 WHERE tenant_id = $2 AND mailbox_id = $3 AND holder = $4")
            .bind(until)
            .bind(&key.tenant_id)
            .bind(&key.mailbox_id)
            .bind(holder)
            .execute(db.writer())
            .await?;
    Ok(renewed.rows_affected() > 0)
}

/// Lets every lease `holder` has lapse now, for another replica to take over at once.
pub(crate) async fn release_imap_leases(db: &Database, holder: &str) -> Result<(), ServiceError> {
    sqlx::query("UPDATE imap_state SET lease_until = 0 WHERE holder = $1").bind(holder).execute(db.writer()).await?;
    Ok(())
}

/// The UID fetching resumes after, for a folder with `uid_validity`: the mark, or 0 when the
/// folder is new or was recreated. `None` when `holder` lost the lease.
pub(crate) async fn imap_position(
    db: &Database,
    key: &MailboxKey,
    holder: &str,
    uid_validity: i64,
) -> Result<Option<i64>, ServiceError> {
    Ok(sqlx::query_scalar(
        "UPDATE imap_state SET last_uid = CASE WHEN uid_validity = $1 THEN last_uid ELSE 0 END, uid_validity = $1 \
         WHERE tenant_id = $2 AND mailbox_id = $3 AND holder = $4 RETURNING last_uid",
    )
    .bind(uid_validity)
    .bind(&key.tenant_id)
    .bind(&key.mailbox_id)
    .bind(holder)
    .fetch_optional(db.writer())
    .await?)
}

/// Moves the mark to `last_uid` after `fetched` more messages were stored; `false` when
/// `holder` lost the lease.
pub(crate) async fn imap_fetched(
    db: &Database,
    key: &MailboxKey,
    holder: &str,
    last_uid: i64,
    fetched: i64,
    now: i64,
) -> Result<bool, ServiceError> {
    let moved = sqlx::query(
        "UPDATE imap_state SET last_uid = $1, messages_fetched = messages_fetched + $2, last_fetched_at = $3, \
         last_error = '' WHERE tenant_id = $4 AND mailbox_id = $5 AND holder = $6",
    )
    .bind(last_uid)
    .bind(fetched)
    .bind(now)
    .bind(&key.tenant_id)
    .bind(&key.mailbox_id)
    .bind(holder)
    .execute(db.writer())
    .await?;
    Ok(moved.rows_affected() > 0)
}

/// Records why the last pass failed, for admins; `false` when `holder` lost the lease.
pub(crate) async fn imap_failed(
    db: &Database,
    key: &MailboxKey,
    holder: &str,
    error: &str,
    now: i64,
) -> Result<bool, ServiceError> {
    let recorded = sqlx::query(
        "UPDATE imap_state SET last_error = $1, last_error_at = $2 WHERE tenant_id = $3 AND mailbox_id = $4 \
         AND holder = $5",
    )
    .bind(error)
    .bind(now)
    .bind(&key.tenant_id)
    .bind(&key.mailbox_id)
    .bind(holder)
    .execute(db.writer())
    .await?;
    Ok(recorded.rows_affected() > 0)
}

/// How fetching a mailbox stands, for admins.
#[derive(sqlx::FromRow)]
pub(crate) struct ImapStateRow {
    pub(crate) mailbox_id: String,
    pub(crate) lease_until: i64,
    pub(crate) uid_validity: i64,
    pub(crate) last_uid: i64,
    pub(crate) messages_fetched: i64,
    pub(crate) last_fetched_at: i64,
    pub(crate) last_error: String,
    pub(crate) last_error_at: i64,
}

/// The state of the tenant's mailboxes that fetch over IMAP; of one when `mailbox_id` is given.
pub(crate) async fn imap_states(
    db: &Database,
    tenant_id: &str,
    mailbox_id: Option<&str>,
) -> Result<Vec<ImapStateRow>, ServiceError> {
    Ok(sqlx::query_as(
        "SELECT mailbox_id, lease_until, uid_validity, last_uid, messages_fetched, last_fetched_at, last_error, \
         last_error_at FROM imap_state WHERE tenant_id = $1 AND ($2 = '' OR mailbox_id = $2)",
    )
    .bind(tenant_id)
    .bind(mailbox_id.unwrap_or(""))
    .fetch_all(db.reader())
    .await?)
}
