//! Feedback's tables: surveys and settings, invitations, answers and the submissions that gave
//! them, follow-ups, announcements with their notifications, and the key survey links are signed
//! with. (The insight projections' event log is read and written by `insights`.) Every query names
//! its tenant but the delivery queues', which span tenants and return each row's own.
//!
//! [`Store`] runs one statement at a time on the pools; [`Conn`] runs several on one connection:
//! a write transaction ([`Tx`]), or a connection held so that statements that belong together go
//! through the same one ([`Held`]).

use std::ops::DerefMut;

use helpdesk_events::outbox;
use helpdesk_proto::{
    events::v1::Event,
    feedback::v1::{Announcement, FollowUp, Invitation, InvitationState, Settings, Survey, SurveyResponse},
};
use helpdesk_runtime::{
    ServiceError,
    db::{Database, row_lock, serialize_on},
    time::{micros_to_timestamp, timestamp_to_micros},
};
use prost::Message;
use sqlx::{Any, AnyConnection, Transaction, pool::PoolConnection};

use crate::invitations::SolvedTicket;

/// The protobuf message stored in a column.
fn decode<M: Message + Default>(bytes: &[u8]) -> Result<M, ServiceError> {
    M::decode(bytes).map_err(|error| ServiceError::internal(&error))
}

/// Tags are stored one per line.
fn split_tags(tags: &str) -> Vec<String> {
    tags.split('\n').filter(|tag| !tag.is_empty()).map(str::to_owned).collect()
}

const SELECT_INVITATION: &str = "SELECT tenant_id, id, survey_id, ticket_id, customer_id, locale, channel, agent_id, \
     team, tags, state, send_at, sent_at, expires_at FROM invitations";

#[derive(sqlx::FromRow)]
struct InvitationRow {
    tenant_id: String,
    id: String,
    survey_id: String,
    ticket_id: String,
    customer_id: String,
    locale: String,
    channel: i64,
    agent_id: String,
    team: String,
    tags: String,
    state: i64,
    send_at: i64,
    sent_at: Option<i64>,
    expires_at: i64,
}

impl InvitationRow {
    /// The row's tenant, its invitation, and the handling the invitation carries into the answer.
    fn split(self) -> (String, Invitation, InvitationContext) {
        let invitation = Invitation {
            id: self.id,
            survey_id: self.survey_id,
            ticket_id: self.ticket_id,
            customer_id: self.customer_id,
            locale: self.locale,
            channel: self.channel as i32,
            state: self.state as i32,
            send_at: Some(micros_to_timestamp(self.send_at)),
            sent_at: self.sent_at.map(micros_to_timestamp),
            expires_at: Some(micros_to_timestamp(self.expires_at)),
        };
        let context = InvitationContext { agent_id: self.agent_id, team: self.team, tags: split_tags(&self.tags) };
        (self.tenant_id, invitation, context)
    }
}

/// The ticket's handling when the survey went out, carried into the answer for analysis.
pub(crate) struct InvitationContext {
    pub(crate) agent_id: String,
    pub(crate) team: String,
    pub(crate) tags: Vec<String>,
}

/// An invitation as [`Tx::schedule_invitation`] writes it.
pub(crate) struct NewInvitation<'a> {
    pub(crate) id: &'a str,
    pub(crate) survey_id: &'a str,
    pub(crate) ticket: &'a SolvedTicket,
    pub(crate) locale: &'a str,
    pub(crate) send_at: i64,
    pub(crate) expires_at: i64,
    pub(crate) created_at: i64,
}

/// An invitation's answer so far, with what identifies it: the fingerprint of its answers and
/// the submission that first gave it.
pub(crate) struct Stored {
    pub(crate) response: SurveyResponse,
    pub(crate) fingerprint: String,
    pub(crate) first_submission: String,
}

#[derive(sqlx::FromRow)]
struct StoredRow {
    body: Vec<u8>,
    fingerprint: String,
    first_submission: String,
}

#[derive(sqlx::FromRow)]
struct FollowUpRow {
    body: Vec<u8>,
    linked: i64,
}

#[derive(sqlx::FromRow)]
struct UnlinkedRow {
    tenant_id: String,
    body: Vec<u8>,
    response: Vec<u8>,
}

/// A "you said, we did" message not yet delivered.
#[derive(sqlx::FromRow)]
pub(crate) struct Notification {
    #[sqlx(rename = "tenant_id")]
    pub(crate) tenant: String,
    #[sqlx(rename = "announcement_id")]
    pub(crate) announcement: String,
    #[sqlx(rename = "customer_id")]
    pub(crate) customer: String,
    #[sqlx(rename = "ticket_id")]
    pub(crate) ticket: String,
    #[sqlx(rename = "body")]
    pub(crate) text: String,
}

/// The answer to `invitation`, `lock`ed until commit on PostgreSQL.
async fn stored_response(
    conn: &mut AnyConnection,
    tenant: &str,
    invitation: &str,
    lock: bool,
) -> Result<Option<Stored>, ServiceError> {
    let sql = format!(
        "SELECT body, fingerprint, first_submission FROM responses WHERE tenant_id = $1 AND invitation_id = $2{}",
        if lock { row_lock(conn) } else { "" }
    );
    let row: Option<StoredRow> = sqlx::query_as(&sql).bind(tenant).bind(invitation).fetch_optional(&mut *conn).await?;
    row.map(|row| {
        Ok(Stored {
            response: decode(&row.body)?,
            fingerprint: row.fingerprint,
            first_submission: row.first_submission,
        })
    })
    .transpose()
}

pub(crate) struct Store {
    db: Database,
}

impl Store {
    pub(crate) fn new(db: Database) -> Self {
        Self { db }
    }

    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// A connection of the reader pool.
    pub(crate) async fn reader(&self) -> Result<Held, ServiceError> {
        Ok(Conn(self.db.reader().acquire().await?))
    }

    /// A connection of the writer pool: on SQLite, its only one, so no other write comes between
    /// the statements run on it.
    pub(crate) async fn writer(&self) -> Result<Held, ServiceError> {
        Ok(Conn(self.db.writer().acquire().await?))
    }

    pub(crate) async fn begin(&self) -> Result<Tx, ServiceError> {
        Ok(Conn(self.db.writer().begin().await?))
    }

    /// The key survey links are signed with: the first replica to start stores `fresh`, and every
    /// replica reads back what was stored, so links survive restarts and verify alike everywhere.
    pub(crate) async fn signing_key(&self, fresh: &str) -> Result<String, sqlx::Error> {
        sqlx::query("INSERT INTO secrets (name, value) VALUES ('survey_links', $1) ON CONFLICT (name) DO NOTHING")
            .bind(fresh)
            .execute(self.db.writer())
            .await?;
        sqlx::query_scalar::<_, String>("SELECT value FROM secrets WHERE name = 'survey_links'")
            .fetch_one(self.db.writer())
            .await
    }

    // --- Surveys and settings

    /// The tenant's surveys, oldest first.
    pub(crate) async fn surveys(&self, tenant: &str) -> Result<Vec<Survey>, ServiceError> {
        let specs: Vec<Vec<u8>> =
            sqlx::query_scalar("SELECT spec FROM surveys WHERE tenant_id = $1 ORDER BY created_at, id")
                .bind(tenant)
                .fetch_all(self.db.reader())
                .await?;
        specs.iter().map(|spec| decode(spec)).collect()
    }

    pub(crate) async fn save_settings(&self, tenant: &str, settings: &Settings) -> Result<(), ServiceError> {
        sqlx::query(
            "INSERT INTO settings (tenant_id, spec) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET spec = excluded.spec",
        )
        .bind(tenant)
        .bind(settings.encode_to_vec())
        .execute(self.db.writer())
        .await?;
        Ok(())
    }

    /// The tenant's settings, if it saved any.
    pub(crate) async fn settings(&self, tenant: &str) -> Result<Option<Settings>, ServiceError> {
        let spec: Option<Vec<u8>> = sqlx::query_scalar("SELECT spec FROM settings WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(self.db.reader())
            .await?;
        spec.map(|spec| decode(&spec)).transpose()
    }

    // --- Invitations

    /// Withdraws the ticket's invitations not sent yet.
    pub(crate) async fn cancel_invitations(&self, tenant: &str, ticket_id: &str) -> Result<(), ServiceError> {
        sqlx::query("UPDATE invitations SET state = $1 WHERE tenant_id = $2 AND ticket_id = $3 AND state = $4")
            .bind(InvitationState::Cancelled as i64)
            .bind(tenant)
            .bind(ticket_id)
            .bind(InvitationState::Scheduled as i64)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// Scheduled invitations of every tenant due at `now`, soonest first: (tenant, invitation).
    pub(crate) async fn due_invitations(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(String, Invitation)>, ServiceError> {
        let rows: Vec<InvitationRow> = sqlx::query_as(&format!(
            "{SELECT_INVITATION} WHERE state = $1 AND send_at <= $2 ORDER BY send_at LIMIT $3"
        ))
        .bind(InvitationState::Scheduled as i64)
        .bind(now)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let (tenant, invitation, _) = row.split();
                (tenant, invitation)
            })
            .collect())
    }

    pub(crate) async fn mark_sent(&self, tenant: &str, id: &str, at: i64) -> Result<(), ServiceError> {
        sqlx::query("UPDATE invitations SET state = $1, sent_at = $2 WHERE tenant_id = $3 AND id = $4 AND state = $5")
            .bind(InvitationState::Sent as i64)
            .bind(at)
            .bind(tenant)
            .bind(id)
            .bind(InvitationState::Scheduled as i64)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    /// The tenant's invitations, newest first: all, or those of `ticket_id` when it is not empty.
    pub(crate) async fn invitations(
        &self,
        tenant: &str,
        ticket_id: &str,
        limit: i64,
    ) -> Result<Vec<Invitation>, ServiceError> {
        let rows: Vec<InvitationRow> = sqlx::query_as(&format!(
            "{SELECT_INVITATION} WHERE tenant_id = $1 AND ($2 = '' OR ticket_id = $2) ORDER BY created_at DESC LIMIT $3"
        ))
        .bind(tenant)
        .bind(ticket_id)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        Ok(rows.into_iter().map(|row| row.split().1).collect())
    }

    // --- Answers

    /// The tenant's answers, last updated first; of one ticket and one survey when those are not
    /// empty.
    pub(crate) async fn responses(
        &self,
        tenant: &str,
        ticket_id: &str,
        survey_id: &str,
        limit: i64,
    ) -> Result<Vec<SurveyResponse>, ServiceError> {
        let bodies: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT body FROM responses WHERE tenant_id = $1 AND ($2 = '' OR ticket_id = $2) \
             AND ($3 = '' OR survey_id = $3) ORDER BY updated_at DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(ticket_id)
        .bind(survey_id)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        bodies.iter().map(|body| decode(body)).collect()
    }

    // --- Follow-ups

    /// The tenant's follow-ups, newest first; in one state (`0`: any) and of one assignee (empty:
    /// any).
    pub(crate) async fn follow_ups(
        &self,
        tenant: &str,
        state: i32,
        assignee_id: &str,
        limit: i64,
    ) -> Result<Vec<FollowUp>, ServiceError> {
        let bodies: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT body FROM follow_ups WHERE tenant_id = $1 AND ($2 = 0 OR state = $2) \
             AND ($3 = '' OR assignee_id = $3) ORDER BY created_at DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(i64::from(state))
        .bind(assignee_id)
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        bodies.iter().map(|body| decode(body)).collect()
    }

    /// Follow-ups of every tenant whose linked ticket ticketing does not have yet, oldest first:
    /// (tenant, follow-up, answer).
    pub(crate) async fn unlinked_follow_ups(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, FollowUp, SurveyResponse)>, ServiceError> {
        let rows: Vec<UnlinkedRow> = sqlx::query_as(
            "SELECT f.tenant_id, f.body, r.body AS response FROM follow_ups f \
             JOIN responses r ON r.tenant_id = f.tenant_id AND r.id = f.response_id \
             WHERE f.linked = 0 ORDER BY f.created_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?;
        rows.into_iter().map(|row| Ok((row.tenant_id, decode(&row.body)?, decode(&row.response)?))).collect()
    }

    /// Marks the follow-up as one ticketing refused, so that it is not offered again.
    pub(crate) async fn mark_link_refused(&self, tenant: &str, id: &str) -> Result<(), ServiceError> {
        sqlx::query("UPDATE follow_ups SET linked = 2 WHERE tenant_id = $1 AND id = $2 AND linked = 0")
            .bind(tenant)
            .bind(id)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    // --- Announcements

    /// Notifications of every tenant not yet delivered.
    pub(crate) async fn pending_notifications(&self, limit: i64) -> Result<Vec<Notification>, ServiceError> {
        Ok(sqlx::query_as::<_, Notification>(
            "SELECT tenant_id, announcement_id, customer_id, ticket_id, body FROM notifications WHERE state = 0 LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.reader())
        .await?)
    }

    /// Settles a notification: delivered, or given up as undeliverable.
    pub(crate) async fn mark_notification(
        &self,
        tenant: &str,
        announcement_id: &str,
        customer_id: &str,
        delivered: bool,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "UPDATE notifications SET state = $1 WHERE tenant_id = $2 AND announcement_id = $3 AND customer_id = $4",
        )
        .bind(if delivered { 1_i64 } else { 2 })
        .bind(tenant)
        .bind(announcement_id)
        .bind(customer_id)
        .execute(self.db.writer())
        .await?;
        Ok(())
    }
}

/// Statements on one connection, `C`: a transaction or a pooled connection.
pub(crate) struct Conn<C>(C);

/// A write transaction, rolled back unless committed.
pub(crate) type Tx = Conn<Transaction<'static, Any>>;

/// A connection held from one pool.
pub(crate) type Held = Conn<PoolConnection<Any>>;

impl<C: DerefMut<Target = AnyConnection>> Conn<C> {
    pub(crate) async fn survey(&mut self, tenant: &str, id: &str) -> Result<Survey, ServiceError> {
        let spec: Vec<u8> = sqlx::query_scalar("SELECT spec FROM surveys WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *self.0)
            .await?
            .ok_or_else(|| ServiceError::not_found("survey"))?;
        decode(&spec)
    }

    /// Creates or replaces the survey; `created_at` orders the tenant's surveys.
    pub(crate) async fn save_survey(
        &mut self,
        tenant: &str,
        survey: &Survey,
        created_at: i64,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "INSERT INTO surveys (tenant_id, id, spec, active, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET spec = excluded.spec, active = excluded.active",
        )
        .bind(tenant)
        .bind(&survey.id)
        .bind(survey.encode_to_vec())
        .bind(i64::from(survey.active))
        .bind(created_at)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// The invitation and the ticket's handling it carries.
    pub(crate) async fn invitation(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> Result<Option<(Invitation, InvitationContext)>, ServiceError> {
        let row: Option<InvitationRow> =
            sqlx::query_as(&format!("{SELECT_INVITATION} WHERE tenant_id = $1 AND id = $2"))
                .bind(tenant)
                .bind(id)
                .fetch_optional(&mut *self.0)
                .await?;
        Ok(row.map(|row| {
            let (_, invitation, context) = row.split();
            (invitation, context)
        }))
    }

    /// The answer to the invitation so far.
    pub(crate) async fn response(&mut self, tenant: &str, invitation: &str) -> Result<Option<Stored>, ServiceError> {
        stored_response(&mut self.0, tenant, invitation, false).await
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> Result<(), ServiceError> {
        self.0.commit().await?;
        Ok(())
    }

    /// Appends `events` to the outbox, to commit or roll back with the change that caused them.
    pub(crate) async fn append_events(&mut self, events: &[Event]) -> Result<(), ServiceError> {
        outbox::append_all(&mut self.0, events).await?;
        Ok(())
    }

    // --- Invitations

    /// Holds the customer's invitations in the tenant until commit: another transaction that
    /// takes them waits for this one (on PostgreSQL; SQLite runs one writer at a time already).
    pub(crate) async fn lock_customer(&mut self, tenant: &str, customer_id: &str) -> Result<(), ServiceError> {
        let customer = format!("feedback-throttle/{tenant}/{customer_id}");
        serialize_on(&mut self.0, &customer).await?;
        Ok(())
    }

    /// Whether the customer was invited after `since` about a ticket other than `except_ticket`,
    /// withdrawn invitations aside.
    pub(crate) async fn invited_since(
        &mut self,
        tenant: &str,
        customer_id: &str,
        since: i64,
        except_ticket: &str,
    ) -> Result<bool, ServiceError> {
        let recent = sqlx::query(
            "SELECT 1 FROM invitations WHERE tenant_id = $1 AND customer_id = $2 AND created_at > $3 \
             AND state <> $4 AND ticket_id <> $5 LIMIT 1",
        )
        .bind(tenant)
        .bind(customer_id)
        .bind(since)
        .bind(InvitationState::Cancelled as i64)
        .bind(except_ticket)
        .fetch_optional(&mut *self.0)
        .await?;
        Ok(recent.is_some())
    }

    /// Schedules the invitation unless its ticket has one to the survey already; whether it did.
    pub(crate) async fn schedule_invitation(
        &mut self,
        tenant: &str,
        invitation: &NewInvitation<'_>,
    ) -> Result<bool, ServiceError> {
        let ticket = invitation.ticket;
        let inserted = sqlx::query(
            "INSERT INTO invitations (tenant_id, id, survey_id, ticket_id, customer_id, locale, channel, agent_id, \
             team, tags, state, send_at, sent_at, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $14) \
             ON CONFLICT (tenant_id, ticket_id, survey_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(invitation.id)
        .bind(invitation.survey_id)
        .bind(&ticket.ticket_id)
        .bind(&ticket.customer_id)
        .bind(invitation.locale)
        .bind(i64::from(ticket.channel))
        .bind(&ticket.agent_id)
        .bind(&ticket.team)
        .bind(ticket.tags.join("\n"))
        .bind(InvitationState::Scheduled as i64)
        .bind(invitation.send_at)
        .bind(invitation.expires_at)
        .bind(invitation.created_at)
        .execute(&mut *self.0)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    // --- Answers

    /// The answer to the invitation so far, locked until commit on PostgreSQL.
    pub(crate) async fn response_for_update(
        &mut self,
        tenant: &str,
        invitation: &str,
    ) -> Result<Option<Stored>, ServiceError> {
        stored_response(&mut self.0, tenant, invitation, true).await
    }

    /// Whether the invitation's answer was recorded from `submission` already.
    pub(crate) async fn submission_seen(
        &mut self,
        tenant: &str,
        invitation: &str,
        submission: &str,
    ) -> Result<bool, ServiceError> {
        let seen =
            sqlx::query("SELECT 1 FROM submissions WHERE tenant_id = $1 AND invitation_id = $2 AND submission_id = $3")
                .bind(tenant)
                .bind(invitation)
                .bind(submission)
                .fetch_optional(&mut *self.0)
                .await?;
        Ok(seen.is_some())
    }

    /// Remembers that `submission` was recorded for the invitation; nothing for an empty id.
    pub(crate) async fn remember_submission(
        &mut self,
        tenant: &str,
        invitation: &str,
        submission: &str,
    ) -> Result<(), ServiceError> {
        if submission.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO submissions (tenant_id, invitation_id, submission_id) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant_id, invitation_id, submission_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(invitation)
        .bind(submission)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    /// Writes an answer: its first version, with the submission that gave it, or (with no
    /// `first_submission`) a revision. A first version another one beat to the invitation fails
    /// as a duplicate.
    pub(crate) async fn save_response(
        &mut self,
        tenant: &str,
        response: &SurveyResponse,
        fingerprint: &str,
        unhappy: bool,
        at: i64,
        first_submission: Option<&str>,
    ) -> Result<(), ServiceError> {
        let tags = response.tags.join("\n");
        let sql = if first_submission.is_none() {
            "UPDATE responses SET body = $3, fingerprint = $4, unhappy = $5, updated_at = $6, tags = $7 \
             WHERE tenant_id = $1 AND id = $2"
        } else {
            "INSERT INTO responses (tenant_id, id, body, fingerprint, unhappy, updated_at, tags, invitation_id, \
             ticket_id, survey_id, first_submission) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        };
        let mut query = sqlx::query(sql)
            .bind(tenant)
            .bind(&response.id)
            .bind(response.encode_to_vec())
            .bind(fingerprint)
            .bind(i64::from(unhappy))
            .bind(at)
            .bind(&tags);
        if let Some(first_submission) = first_submission {
            query = query
                .bind(&response.invitation_id)
                .bind(&response.ticket_id)
                .bind(&response.survey_id)
                .bind(first_submission);
        }
        query.execute(&mut *self.0).await?;
        Ok(())
    }

    pub(crate) async fn mark_answered(&mut self, tenant: &str, invitation: &str) -> Result<(), ServiceError> {
        sqlx::query("UPDATE invitations SET state = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(InvitationState::Answered as i64)
            .bind(tenant)
            .bind(invitation)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }

    // --- Follow-ups

    /// The follow-up, locked until commit on PostgreSQL, and whether it is past waiting for its
    /// linked ticket (linked, or refused by ticketing).
    pub(crate) async fn follow_up_for_update(
        &mut self,
        tenant: &str,
        id: &str,
    ) -> Result<(FollowUp, bool), ServiceError> {
        let sql = format!("SELECT body, linked FROM follow_ups WHERE tenant_id = $1 AND id = $2{}", row_lock(&self.0));
        let row: FollowUpRow = sqlx::query_as(&sql)
            .bind(tenant)
            .bind(id)
            .fetch_optional(&mut *self.0)
            .await?
            .ok_or_else(|| ServiceError::not_found("follow-up"))?;
        Ok((decode(&row.body)?, row.linked != 0))
    }

    /// Creates or replaces the follow-up; `now` is its creation time if it has none.
    pub(crate) async fn save_follow_up(
        &mut self,
        tenant: &str,
        follow_up: &FollowUp,
        linked: bool,
        now: i64,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "INSERT INTO follow_ups (tenant_id, id, response_id, body, state, assignee_id, linked, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant_id, id) DO UPDATE SET body = excluded.body, \
             state = excluded.state, assignee_id = excluded.assignee_id, linked = excluded.linked",
        )
        .bind(tenant)
        .bind(&follow_up.id)
        .bind(&follow_up.response_id)
        .bind(follow_up.encode_to_vec())
        .bind(i64::from(follow_up.state))
        .bind(&follow_up.assignee_id)
        .bind(i64::from(linked))
        .bind(follow_up.created_at.as_ref().map_or(now, timestamp_to_micros))
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    // --- Announcements

    /// The tenant's answers updated since `since` that carry `tag`, newest first; only the unhappy
    /// ones if asked.
    pub(crate) async fn tagged_responses(
        &mut self,
        tenant: &str,
        tag: &str,
        since: i64,
        only_unhappy: bool,
    ) -> Result<Vec<SurveyResponse>, ServiceError> {
        // Tags are stored one per line; the tag is matched as a whole line, its LIKE wildcards
        // escaped.
        let escaped = tag.replace('!', "!!").replace('%', "!%").replace('_', "!_");
        let bodies: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT body FROM responses WHERE tenant_id = $1 AND updated_at >= $2 AND ($3 = 0 OR unhappy = 1) \
             AND ('\n' || tags || '\n') LIKE $4 ESCAPE '!' ORDER BY updated_at DESC",
        )
        .bind(tenant)
        .bind(since)
        .bind(i64::from(only_unhappy))
        .bind(format!("%\n{escaped}\n%"))
        .fetch_all(&mut *self.0)
        .await?;
        bodies.iter().map(|body| decode(body)).collect()
    }

    /// A message for the customer, to be delivered on their ticket.
    pub(crate) async fn add_notification(
        &mut self,
        tenant: &str,
        announcement_id: &str,
        customer_id: &str,
        ticket_id: &str,
        text: &str,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "INSERT INTO notifications (tenant_id, announcement_id, customer_id, ticket_id, body, state) \
             VALUES ($1, $2, $3, $4, $5, 0)",
        )
        .bind(tenant)
        .bind(announcement_id)
        .bind(customer_id)
        .bind(ticket_id)
        .bind(text)
        .execute(&mut *self.0)
        .await?;
        Ok(())
    }

    pub(crate) async fn save_announcement(
        &mut self,
        tenant: &str,
        announcement: &Announcement,
        at: i64,
    ) -> Result<(), ServiceError> {
        sqlx::query("INSERT INTO announcements (tenant_id, id, body, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant)
            .bind(&announcement.id)
            .bind(announcement.encode_to_vec())
            .bind(at)
            .execute(&mut *self.0)
            .await?;
        Ok(())
    }
}
