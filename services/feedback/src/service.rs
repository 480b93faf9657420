//! Surveys, invitations, answers, follow-ups and announcements: every write is one transaction
//! with the events it causes, so an accepted answer and its follow-up are never lost or doubled.

use std::sync::Arc;

use helpdesk_events::outbox;
use helpdesk_proto::{
    common::v1::AuthorKind,
    events::v1::{Event, FollowUpClosed, FollowUpOpened, SurveyAnswered, event::Payload},
    feedback::v1::{
        self as proto, Answer, FollowUp, FollowUpState, Invitation, InvitationState, QuestionKind, Settings, Survey,
        SurveyKind, SurveyResponse,
    },
};
use helpdesk_runtime::{
    ServiceError,
    auth::{Principal, Role},
    db::{Database, classify, row_lock, serialize_on},
    time::{micros_to_timestamp, now_micros, timestamp_to_micros},
};
use prost::Message;
use sha2::Digest;
use sqlx::{AnyConnection, Row};
use tokio::sync::Notify;

use crate::{
    model::{self, MAX_COMMENT_CHARS},
    token::{Claims, LinkSigner},
};

const MAX_LIST: i64 = 500;
const DEFAULT_LIST: i64 = 50;

/// What a solved ticket looks like to the survey trigger.
pub struct SolvedTicket {
    pub ticket_id: String,
    pub customer_id: String,
    pub customer_language: String,
    pub channel: i32,
    pub agent_id: String,
    pub team: String,
    pub tags: Vec<String>,
    pub solved_at: i64,
}

pub struct Feedback {
    db: Database,
    signer: LinkSigner,
    /// Where customers reach the gateway, for survey links.
    public_url: String,
    pub(crate) events_written: Arc<Notify>,
    pub(crate) delivery_wake: Arc<Notify>,
}

fn db_error(error: sqlx::Error) -> ServiceError {
    classify(error)
}

/// The protobuf message stored in `column` of `row`.
fn decode<M: Message + Default>(row: &sqlx::any::AnyRow, column: &str) -> Result<M, ServiceError> {
    let bytes: Vec<u8> = row.try_get(column).map_err(db_error)?;
    M::decode(bytes.as_slice()).map_err(|error| ServiceError::internal(&error))
}

fn limit(requested: i32) -> i64 {
    if requested <= 0 { DEFAULT_LIST } else { i64::from(requested).min(MAX_LIST) }
}

fn service_event(
    tenant: &str,
    actor: (AuthorKind, &str),
    aggregate: (&str, &str),
    sequence: i64,
    at: i64,
    payload: Payload,
) -> Event {
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.to_owned(),
        aggregate_type: aggregate.0.to_owned(),
        aggregate_id: aggregate.1.to_owned(),
        sequence,
        occurred_at: Some(micros_to_timestamp(at)),
        actor_kind: actor.0 as i32,
        actor_id: actor.1.to_owned(),
        payload: Some(payload),
    }
}

impl Feedback {
    pub(crate) fn new(db: Database, signing_key: &[u8], public_url: &str) -> Self {
        Self {
            db,
            signer: LinkSigner::new(signing_key),
            public_url: public_url.trim_end_matches('/').to_owned(),
            events_written: Arc::new(Notify::new()),
            delivery_wake: Arc::new(Notify::new()),
        }
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    // --- Surveys and settings -------------------------------------------------------------

    pub async fn upsert_survey(&self, tenant: &str, survey: Option<Survey>) -> Result<Survey, ServiceError> {
        let mut survey = model::normalize(survey.ok_or_else(|| ServiceError::invalid_field("survey", "is required"))?)?;
        let now = now_micros();
        let mut conn = self.db.writer().acquire().await.map_err(db_error)?;
        if survey.id.is_empty() {
            survey.id = uuid::Uuid::now_v7().to_string();
            survey.created_at = Some(micros_to_timestamp(now));
        } else {
            let existing = load_survey(&mut conn, tenant, &survey.id).await?;
            survey.created_at = existing.created_at;
        }
        survey.updated_at = Some(micros_to_timestamp(now));
        let created = survey.created_at.as_ref().map(timestamp_to_micros).unwrap_or(now);
        sqlx::query(
            "INSERT INTO surveys (tenant_id, id, spec, active, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (tenant_id, id) DO UPDATE SET spec = excluded.spec, active = excluded.active",
        )
        .bind(tenant)
        .bind(&survey.id)
        .bind(survey.encode_to_vec())
        .bind(i64::from(survey.active))
        .bind(created)
        .execute(&mut *conn)
        .await
        .map_err(db_error)?;
        Ok(survey)
    }

    pub async fn list_surveys(&self, tenant: &str) -> Result<Vec<Survey>, ServiceError> {
        let rows = sqlx::query("SELECT spec FROM surveys WHERE tenant_id = $1 ORDER BY created_at, id")
            .bind(tenant)
            .fetch_all(self.db.reader())
            .await
            .map_err(db_error)?;
        rows.iter().map(|row| decode(row, "spec")).collect()
    }

    pub async fn set_settings(&self, tenant: &str, settings: Option<Settings>) -> Result<Settings, ServiceError> {
        let mut settings = settings.ok_or_else(|| ServiceError::invalid_field("settings", "is required"))?;
        settings.time_zone = settings.time_zone.trim().to_owned();
        if settings.time_zone.is_empty() {
            settings.time_zone = "UTC".to_owned();
        }
        if settings.time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ServiceError::invalid_field("settings.time_zone", "must be an IANA zone such as Asia/Seoul"));
        }
        if settings.team_leads.len() > 1_000
            || settings.team_leads.iter().any(|(team, lead)| team.is_empty() || team.len() > 100 || lead.len() > 100)
        {
            return Err(ServiceError::invalid_field(
                "settings.team_leads",
                "at most 1000 teams, each named and with a lead id of at most 100 characters",
            ));
        }
        sqlx::query(
            "INSERT INTO settings (tenant_id, spec) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET spec = excluded.spec",
        )
        .bind(tenant)
        .bind(settings.encode_to_vec())
        .execute(self.db.writer())
        .await
        .map_err(db_error)?;
        Ok(settings)
    }

    pub async fn settings(&self, tenant: &str) -> Result<Settings, ServiceError> {
        let row = sqlx::query("SELECT spec FROM settings WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_optional(self.db.reader())
            .await
            .map_err(db_error)?;
        match row {
            Some(row) => decode(&row, "spec"),
            None => Ok(Settings { time_zone: "UTC".to_owned(), ..Settings::default() }),
        }
    }

    // --- Invitations ----------------------------------------------------------------------

    /// Schedules the first active survey whose rules take `ticket`, unless the customer was
    /// surveyed too recently or feedback opened the ticket itself. Idempotent: a ticket is invited
    /// to a survey at most once.
    pub async fn plan_invitation(&self, tenant: &str, ticket: &SolvedTicket) -> Result<Option<String>, ServiceError> {
        // The tickets feedback opens itself are not surveyed: that would ask about the survey.
        if ticket.tags.iter().any(|tag| tag == crate::FOLLOW_UP_TAG || tag == crate::CARRIER_TAG) {
            return Ok(None);
        }
        let surveys = self.list_surveys(tenant).await?;
        let Some(survey) = surveys.into_iter().find(|survey| {
            let trigger = survey.trigger.clone().unwrap_or_default();
            survey.active
                && trigger.on_solved
                && (trigger.channels.is_empty() || trigger.channels.contains(&ticket.channel))
                && model::sampled(&ticket.ticket_id, trigger.sampling_percent)
        }) else {
            return Ok(None);
        };
        let trigger = survey.trigger.clone().unwrap_or_default();
        let now = now_micros();
        let mut tx = self.db.writer().begin().await.map_err(db_error)?;
        if trigger.throttle_days > 0 && !ticket.customer_id.is_empty() {
            // Two of the customer's tickets solved at once: one survey, not one each.
            let customer = format!("feedback-throttle/{tenant}/{}", ticket.customer_id);
            serialize_on(&mut tx, &customer).await.map_err(db_error)?;
            let since = now - i64::from(trigger.throttle_days) * 86_400_000_000;
            let recent = sqlx::query(
                "SELECT 1 FROM invitations WHERE tenant_id = $1 AND customer_id = $2 AND created_at > $3 \
                 AND state <> $4 AND ticket_id <> $5 LIMIT 1",
            )
            .bind(tenant)
            .bind(&ticket.customer_id)
            .bind(since)
            .bind(InvitationState::Cancelled as i64)
            .bind(&ticket.ticket_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if recent.is_some() {
                return Ok(None);
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        let send_at = ticket.solved_at.max(now) + i64::from(trigger.delay_minutes) * 60_000_000;
        let expires_at = send_at + i64::from(survey.link_ttl_hours) * 3_600_000_000;
        let inserted = sqlx::query(
            "INSERT INTO invitations (tenant_id, id, survey_id, ticket_id, customer_id, locale, channel, agent_id, \
             team, tags, state, send_at, sent_at, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, $13, $14) \
             ON CONFLICT (tenant_id, ticket_id, survey_id) DO NOTHING",
        )
        .bind(tenant)
        .bind(&id)
        .bind(&survey.id)
        .bind(&ticket.ticket_id)
        .bind(&ticket.customer_id)
        .bind(model::locale_for(&ticket.customer_language))
        .bind(i64::from(ticket.channel))
        .bind(&ticket.agent_id)
        .bind(&ticket.team)
        .bind(ticket.tags.join("\n"))
        .bind(InvitationState::Scheduled as i64)
        .bind(send_at)
        .bind(expires_at)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.delivery_wake.notify_one();
        Ok((inserted.rows_affected() == 1).then_some(id))
    }

    /// A reopened ticket is not surveyed about a resolution that did not hold.
    pub async fn cancel_invitations(&self, tenant: &str, ticket_id: &str) -> Result<(), ServiceError> {
        sqlx::query("UPDATE invitations SET state = $1 WHERE tenant_id = $2 AND ticket_id = $3 AND state = $4")
            .bind(InvitationState::Cancelled as i64)
            .bind(tenant)
            .bind(ticket_id)
            .bind(InvitationState::Scheduled as i64)
            .execute(self.db.writer())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// Scheduled invitations whose time has come: (tenant, invitation).
    pub(crate) async fn due_invitations(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(String, Invitation)>, ServiceError> {
        let rows =
            sqlx::query(&format!("{SELECT_INVITATION} WHERE state = $1 AND send_at <= $2 ORDER BY send_at LIMIT $3"))
                .bind(InvitationState::Scheduled as i64)
                .bind(now)
                .bind(limit)
                .fetch_all(self.db.reader())
                .await
                .map_err(db_error)?;
        rows.iter().map(|row| Ok((row.try_get("tenant_id").map_err(db_error)?, invitation_from_row(row)?))).collect()
    }

    pub(crate) async fn mark_sent(&self, tenant: &str, id: &str, at: i64) -> Result<(), ServiceError> {
        sqlx::query("UPDATE invitations SET state = $1, sent_at = $2 WHERE tenant_id = $3 AND id = $4 AND state = $5")
            .bind(InvitationState::Sent as i64)
            .bind(at)
            .bind(tenant)
            .bind(id)
            .bind(InvitationState::Scheduled as i64)
            .execute(self.db.writer())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    /// The signed link for an invitation.
    /// The invitation's survey link, and the same without its signature: what staff may see.
    pub(crate) fn link(&self, tenant: &str, invitation: &Invitation) -> (String, String) {
        let expires_at = invitation.expires_at.as_ref().map_or(0, |at| at.seconds);
        let token =
            self.signer.sign(&Claims { tenant: tenant.to_owned(), invitation: invitation.id.clone(), expires_at });
        let unsigned = token.rsplit_once('.').map_or("", |(claims, _)| claims);
        (
            format!("{}/v1/surveys/{token}", self.public_url),
            format!("{}/v1/surveys/{unsigned}.[redacted]", self.public_url),
        )
    }

    pub async fn list_invitations(
        &self,
        tenant: &str,
        request: proto::ListInvitationsRequest,
    ) -> Result<Vec<Invitation>, ServiceError> {
        let rows = sqlx::query(&format!(
            "{SELECT_INVITATION} WHERE tenant_id = $1 AND ($2 = '' OR ticket_id = $2) ORDER BY created_at DESC LIMIT $3"
        ))
        .bind(tenant)
        .bind(&request.ticket_id)
        .bind(limit(request.limit))
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        rows.iter().map(invitation_from_row).collect()
    }

    // --- Answers --------------------------------------------------------------------------

    /// The invitation and survey a link stands for, if the link is genuine and still open.
    async fn open_invitation(&self, token: &str) -> Result<Opened, ServiceError> {
        let claims = self.signer.verify(token, chrono::Utc::now().timestamp())?;
        let mut conn = self.db.reader().acquire().await.map_err(db_error)?;
        let row = sqlx::query(&format!("{SELECT_INVITATION} WHERE tenant_id = $1 AND id = $2"))
            .bind(&claims.tenant)
            .bind(&claims.invitation)
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_error)?
            .ok_or_else(|| ServiceError::invalid_field("token", "is not a valid survey link"))?;
        let invitation = invitation_from_row(&row)?;
        if invitation.state == InvitationState::Cancelled as i32 {
            return Err(ServiceError::failed_precondition("this survey was withdrawn: the ticket was reopened")
                .with_field("token"));
        }
        let context = InvitationContext {
            agent_id: row.try_get("agent_id").map_err(db_error)?,
            team: row.try_get("team").map_err(db_error)?,
            tags: split_tags(&row.try_get::<String, _>("tags").map_err(db_error)?),
        };
        let survey = load_survey(&mut conn, &claims.tenant, &invitation.survey_id).await?;
        Ok(Opened { tenant: claims.tenant, invitation, survey, context })
    }

    pub async fn survey_form(&self, token: &str) -> Result<proto::SurveyForm, ServiceError> {
        let Opened { tenant, invitation, survey, .. } = self.open_invitation(token).await?;
        let locale = invitation.locale.clone();
        let questions = survey
            .questions
            .iter()
            .map(|question| proto::FormQuestion {
                id: question.id.clone(),
                kind: question.kind,
                text: model::localized(question.text.as_ref(), &locale),
                min: question.min,
                max: question.max,
                choices: question.choices.iter().map(|choice| model::localized(Some(choice), &locale)).collect(),
                required: question.required,
            })
            .collect();
        let mut conn = self.db.reader().acquire().await.map_err(db_error)?;
        let current = load_response(&mut conn, &tenant, &invitation.id, false).await?.map(|stored| stored.response);
        Ok(proto::SurveyForm {
            survey_name: survey.name,
            kind: survey.kind,
            locale,
            questions,
            expires_at: invitation.expires_at,
            current: current.map(for_customer),
        })
    }

    /// Records an answer or its revision, and opens a follow-up for an unhappy one; returns what
    /// the customer may see of it.
    pub async fn submit_answer(&self, request: proto::SubmitAnswerRequest) -> Result<SurveyResponse, ServiceError> {
        let opened = self.open_invitation(&request.token).await?;
        let (answers, comment, score) = validate_answers(&opened.survey, request.answers, &request.comment)?;
        if request.submission_id.len() > 100 {
            return Err(ServiceError::invalid_field("submission_id", "is longer than 100 characters"));
        }
        let fingerprint = fingerprint(&answers, &comment);
        let checked = Checked {
            submission_id: request.submission_id,
            answers,
            comment,
            score,
            fingerprint,
            revision_key: request.revision_key,
        };
        // Two submissions racing for the first answer: the loser retries and becomes a revision.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.record_answer(&opened, &checked).await;
            match result {
                Err(error) if attempts < 3 && error.kind == helpdesk_runtime::error::ErrorKind::AlreadyExists => {
                    continue;
                }
                result => return result.map(for_customer),
            }
        }
    }

    async fn record_answer(&self, opened: &Opened, checked: &Checked) -> Result<SurveyResponse, ServiceError> {
        let Opened { tenant, invitation, survey, context } = opened;
        let Checked { submission_id, answers, comment, score, fingerprint, revision_key } = checked;
        let (tenant, score) = (tenant.as_str(), *score);
        let now = now_micros();
        let mut tx = self.db.writer().begin().await.map_err(db_error)?;
        let existing = load_response(&mut tx, tenant, &invitation.id, true).await?;
        if !submission_id.is_empty() {
            let seen = sqlx::query(
                "SELECT 1 FROM submissions WHERE tenant_id = $1 AND invitation_id = $2 AND submission_id = $3",
            )
            .bind(tenant)
            .bind(&invitation.id)
            .bind(submission_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_error)?;
            if let (Some(_), Some(stored)) = (seen, &existing) {
                return Ok(stored.response.clone());
            }
        }
        if let Some(stored) = &existing
            && stored.fingerprint == *fingerprint
        {
            remember_submission(&mut tx, tenant, &invitation.id, submission_id).await?;
            tx.commit().await.map_err(db_error)?;
            return Ok(stored.response.clone());
        }
        if let Some(stored) = &existing
            && !self.signer.is_revision_key(&invitation.id, &stored.first_submission, revision_key)
        {
            return Err(ServiceError::permission_denied(
                "only whoever answered first may revise the answer: send the revision_key their answer returned",
            )
            .with_field("revision_key"));
        }
        // A nonce of the server's names the first submitter: only the answer that made it hears
        // the key derived from it.
        let first_submission = match &existing {
            Some(stored) => stored.first_submission.clone(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let existing = existing.map(|stored| (stored.response, stored.fingerprint));
        let unhappy = score <= survey.follow_up_at_or_below;
        let previous = existing.as_ref().map(|(response, _)| response);
        let mut response = SurveyResponse {
            id: previous.map_or_else(|| uuid::Uuid::now_v7().to_string(), |previous| previous.id.clone()),
            survey_id: survey.id.clone(),
            kind: survey.kind,
            invitation_id: invitation.id.clone(),
            ticket_id: invitation.ticket_id.clone(),
            customer_id: invitation.customer_id.clone(),
            agent_id: context.agent_id.clone(),
            team: context.team.clone(),
            channel: invitation.channel,
            tags: context.tags.clone(),
            locale: invitation.locale.clone(),
            score,
            answers: answers.clone(),
            comment: comment.to_owned(),
            revision: previous.map_or(1, |previous| previous.revision + 1),
            submitted_at: previous.map_or(Some(micros_to_timestamp(now)), |previous| previous.submitted_at),
            updated_at: Some(micros_to_timestamp(now)),
            follow_up_id: previous.map(|previous| previous.follow_up_id.clone()).unwrap_or_default(),
            agent_rating: agent_rating(survey, answers),
            revision_key: String::new(),
        };
        let mut events = Vec::new();
        let actor = (AuthorKind::Customer, invitation.customer_id.as_str());
        if unhappy && response.follow_up_id.is_empty() {
            let follow_up = FollowUp {
                id: uuid::Uuid::now_v7().to_string(),
                response_id: response.id.clone(),
                ticket_id: invitation.ticket_id.clone(),
                linked_ticket_id: String::new(),
                assignee_id: String::new(),
                team: context.team.clone(),
                kind: survey.kind,
                score,
                state: FollowUpState::Open as i32,
                resolution_note: String::new(),
                closed_by: String::new(),
                created_at: Some(micros_to_timestamp(now)),
                closed_at: None,
            };
            save_follow_up(&mut tx, tenant, &follow_up, false, now).await?;
            response.follow_up_id = follow_up.id.clone();
            let id = follow_up.id.clone();
            events.push(service_event(
                tenant,
                actor,
                ("follow_up", &id),
                1,
                now,
                Payload::FollowUpOpened(FollowUpOpened { follow_up: Some(follow_up) }),
            ));
        }
        let tags = response.tags.join("\n");
        let sql = if previous.is_some() {
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
            .bind(i64::from(unhappy || !response.follow_up_id.is_empty()))
            .bind(now)
            .bind(&tags);
        if previous.is_none() {
            query = query.bind(&invitation.id).bind(&invitation.ticket_id).bind(&survey.id).bind(&first_submission);
        }
        // A concurrent first answer that won the unique invitation makes this one a duplicate:
        // the caller retries, as a revision.
        query.execute(&mut *tx).await.map_err(db_error)?;
        sqlx::query("UPDATE invitations SET state = $1 WHERE tenant_id = $2 AND id = $3")
            .bind(InvitationState::Answered as i64)
            .bind(tenant)
            .bind(&invitation.id)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        remember_submission(&mut tx, tenant, &invitation.id, submission_id).await?;
        events.insert(
            0,
            service_event(
                tenant,
                actor,
                ("survey_response", &response.id),
                i64::from(response.revision),
                now,
                Payload::SurveyAnswered(SurveyAnswered { response: Some(response.clone()) }),
            ),
        );
        outbox::append_all(&mut tx, &events).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.events_written.notify_one();
        self.delivery_wake.notify_one();
        if previous.is_none() {
            response.revision_key = self.signer.revision_key(&invitation.id, &first_submission);
        }
        Ok(response)
    }

    pub async fn list_responses(
        &self,
        tenant: &str,
        request: proto::ListResponsesRequest,
    ) -> Result<Vec<SurveyResponse>, ServiceError> {
        let rows = sqlx::query(
            "SELECT body FROM responses WHERE tenant_id = $1 AND ($2 = '' OR ticket_id = $2) \
             AND ($3 = '' OR survey_id = $3) ORDER BY updated_at DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(&request.ticket_id)
        .bind(&request.survey_id)
        .bind(limit(request.limit))
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| decode(row, "body")).collect()
    }

    // --- Follow-ups -----------------------------------------------------------------------

    pub async fn list_follow_ups(
        &self,
        tenant: &str,
        request: proto::ListFollowUpsRequest,
    ) -> Result<Vec<FollowUp>, ServiceError> {
        let rows = sqlx::query(
            "SELECT body FROM follow_ups WHERE tenant_id = $1 AND ($2 = 0 OR state = $2) \
             AND ($3 = '' OR assignee_id = $3) ORDER BY created_at DESC LIMIT $4",
        )
        .bind(tenant)
        .bind(i64::from(request.state))
        .bind(&request.assignee_id)
        .bind(limit(request.limit))
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        rows.iter().map(|row| decode(row, "body")).collect()
    }

    /// Closes a follow-up: its assignee (the team lead) or an admin.
    pub async fn close_follow_up(
        &self,
        closer: &Principal,
        request: proto::CloseFollowUpRequest,
    ) -> Result<FollowUp, ServiceError> {
        let tenant = closer.tenant_id.as_str();
        let note = request.resolution_note.trim();
        if note.is_empty() || note.chars().count() > MAX_COMMENT_CHARS {
            return Err(ServiceError::invalid_field("resolution_note", "must be 1 to 5000 characters"));
        }
        let now = now_micros();
        let mut tx = self.db.writer().begin().await.map_err(db_error)?;
        let (mut follow_up, linked) = load_follow_up(&mut tx, tenant, &request.id).await?;
        if closer.role != Role::Admin && follow_up.assignee_id != closer.subject {
            return Err(ServiceError::permission_denied("only the follow-up's assignee or an admin may close it"));
        }
        if follow_up.state == FollowUpState::Closed as i32 {
            return Err(ServiceError::failed_precondition("the follow-up is already closed"));
        }
        follow_up.state = FollowUpState::Closed as i32;
        follow_up.resolution_note = note.to_owned();
        follow_up.closed_by = closer.subject.clone();
        follow_up.closed_at = Some(micros_to_timestamp(now));
        save_follow_up(&mut tx, tenant, &follow_up, linked, now).await?;
        let event = service_event(
            tenant,
            (AuthorKind::Agent, &closer.subject),
            ("follow_up", &follow_up.id),
            2,
            now,
            Payload::FollowUpClosed(FollowUpClosed { follow_up: Some(follow_up.clone()) }),
        );
        outbox::append(&mut tx, &event).await.map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.events_written.notify_one();
        Ok(follow_up)
    }

    /// Follow-ups whose linked ticket ticketing does not have yet: (tenant, follow-up, answer).
    pub(crate) async fn unlinked_follow_ups(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, FollowUp, SurveyResponse)>, ServiceError> {
        let rows = sqlx::query(
            "SELECT f.tenant_id, f.body, r.body AS response FROM follow_ups f \
             JOIN responses r ON r.tenant_id = f.tenant_id AND r.id = f.response_id \
             WHERE f.linked = 0 ORDER BY f.created_at LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok((row.try_get("tenant_id").map_err(db_error)?, decode(row, "body")?, decode(row, "response")?))
            })
            .collect()
    }

    /// Ticketing refused the follow-up's ticket: the follow-up stays open in feedback, unlinked,
    /// and is not tried again.
    pub(crate) async fn mark_link_refused(&self, tenant: &str, id: &str) -> Result<(), ServiceError> {
        sqlx::query("UPDATE follow_ups SET linked = 2 WHERE tenant_id = $1 AND id = $2 AND linked = 0")
            .bind(tenant)
            .bind(id)
            .execute(self.db.writer())
            .await
            .map_err(db_error)?;
        Ok(())
    }

    pub(crate) async fn mark_linked(
        &self,
        tenant: &str,
        id: &str,
        linked_ticket: &str,
        lead: &str,
    ) -> Result<(), ServiceError> {
        let mut tx = self.db.writer().begin().await.map_err(db_error)?;
        let (mut follow_up, _) = load_follow_up(&mut tx, tenant, id).await?;
        follow_up.linked_ticket_id = linked_ticket.to_owned();
        follow_up.assignee_id = lead.to_owned();
        save_follow_up(&mut tx, tenant, &follow_up, true, now_micros()).await?;
        tx.commit().await.map_err(db_error)
    }

    // --- "You said, we did" ---------------------------------------------------------------

    pub async fn announce_change(
        &self,
        tenant: &str,
        request: proto::AnnounceChangeRequest,
    ) -> Result<proto::Announcement, ServiceError> {
        let theme = request.theme.trim().to_lowercase();
        if theme.is_empty() || theme.chars().count() > 100 {
            return Err(ServiceError::invalid_field("theme", "must be a tag of 1 to 100 characters"));
        }
        let message = request.message.unwrap_or_default();
        if message.en.trim().is_empty() && message.ko.trim().is_empty() {
            return Err(ServiceError::invalid_field("message", "needs English or Korean text"));
        }
        if message.en.chars().count() > MAX_COMMENT_CHARS || message.ko.chars().count() > MAX_COMMENT_CHARS {
            return Err(ServiceError::invalid_field("message", "is longer than 5000 characters"));
        }
        let now = now_micros();
        let since = request.since.as_ref().map_or(now - 90 * 86_400_000_000, timestamp_to_micros);
        let announcement = proto::Announcement {
            id: uuid::Uuid::now_v7().to_string(),
            theme: theme.clone(),
            message: Some(message.clone()),
            recipients: 0,
            created_at: Some(micros_to_timestamp(now)),
        };
        let mut tx = self.db.writer().begin().await.map_err(db_error)?;
        // Tags are stored one per line; the theme is matched as a whole line, its LIKE wildcards
        // escaped.
        let escaped = theme.replace('!', "!!").replace('%', "!%").replace('_', "!_");
        let rows = sqlx::query(
            "SELECT body FROM responses WHERE tenant_id = $1 AND updated_at >= $2 AND ($3 = 0 OR unhappy = 1) \
             AND ('\n' || tags || '\n') LIKE $4 ESCAPE '!' ORDER BY updated_at DESC",
        )
        .bind(tenant)
        .bind(since)
        .bind(i64::from(request.only_unhappy))
        .bind(format!("%\n{escaped}\n%"))
        .fetch_all(&mut *tx)
        .await
        .map_err(db_error)?;
        let mut told = std::collections::HashSet::new();
        for row in rows {
            let response: SurveyResponse = decode(&row, "body")?;
            // Newest answer first: each respondent is told once, on their latest ticket.
            if response.customer_id.is_empty() || !told.insert(response.customer_id.clone()) {
                continue;
            }
            sqlx::query(
                "INSERT INTO notifications (tenant_id, announcement_id, customer_id, ticket_id, body, state) \
                 VALUES ($1, $2, $3, $4, $5, 0)",
            )
            .bind(tenant)
            .bind(&announcement.id)
            .bind(&response.customer_id)
            .bind(&response.ticket_id)
            .bind(model::localized(Some(&message), &response.locale))
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        }
        let announcement = proto::Announcement { recipients: told.len() as i32, ..announcement };
        sqlx::query("INSERT INTO announcements (tenant_id, id, body, created_at) VALUES ($1, $2, $3, $4)")
            .bind(tenant)
            .bind(&announcement.id)
            .bind(announcement.encode_to_vec())
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(db_error)?;
        tx.commit().await.map_err(db_error)?;
        self.delivery_wake.notify_one();
        Ok(announcement)
    }

    /// Notifications not yet delivered: (tenant, announcement, customer, ticket, text).
    pub(crate) async fn pending_notifications(&self, limit: i64) -> Result<Vec<Notification>, ServiceError> {
        let rows = sqlx::query(
            "SELECT tenant_id, announcement_id, customer_id, ticket_id, body FROM notifications WHERE state = 0 LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db.reader())
        .await
        .map_err(db_error)?;
        rows.iter()
            .map(|row| {
                Ok(Notification {
                    tenant: row.try_get("tenant_id").map_err(db_error)?,
                    announcement: row.try_get("announcement_id").map_err(db_error)?,
                    customer: row.try_get("customer_id").map_err(db_error)?,
                    ticket: row.try_get("ticket_id").map_err(db_error)?,
                    text: row.try_get("body").map_err(db_error)?,
                })
            })
            .collect()
    }

    pub(crate) async fn mark_notification(
        &self,
        notification: &Notification,
        delivered: bool,
    ) -> Result<(), ServiceError> {
        sqlx::query(
            "UPDATE notifications SET state = $1 WHERE tenant_id = $2 AND announcement_id = $3 AND customer_id = $4",
        )
        .bind(if delivered { 1_i64 } else { 2 })
        .bind(&notification.tenant)
        .bind(&notification.announcement)
        .bind(&notification.customer)
        .execute(self.db.writer())
        .await
        .map_err(db_error)?;
        Ok(())
    }
}

/// An answer as its customer sees it: their answers, without the handling details staff see.
fn for_customer(response: SurveyResponse) -> SurveyResponse {
    SurveyResponse {
        id: response.id,
        survey_id: response.survey_id,
        kind: response.kind,
        ticket_id: response.ticket_id,
        locale: response.locale,
        score: response.score,
        answers: response.answers,
        comment: response.comment,
        revision: response.revision,
        submitted_at: response.submitted_at,
        updated_at: response.updated_at,
        revision_key: response.revision_key,
        ..SurveyResponse::default()
    }
}

pub(crate) struct Notification {
    pub tenant: String,
    pub announcement: String,
    pub customer: String,
    pub ticket: String,
    pub text: String,
}

/// What a genuine, open survey link stands for.
struct Opened {
    tenant: String,
    invitation: Invitation,
    survey: Survey,
    context: InvitationContext,
}

/// A submission checked against its survey.
struct Checked {
    submission_id: String,
    /// What a revision carries to show it comes from the first submitter.
    revision_key: String,
    /// In survey order.
    answers: Vec<Answer>,
    comment: String,
    score: i32,
    fingerprint: String,
}

/// The ticket's handling when the survey went out, carried into the answer for analysis.
struct InvitationContext {
    agent_id: String,
    team: String,
    tags: Vec<String>,
}

fn split_tags(tags: &str) -> Vec<String> {
    tags.split('\n').filter(|tag| !tag.is_empty()).map(str::to_owned).collect()
}

const SELECT_INVITATION: &str = "SELECT tenant_id, id, survey_id, ticket_id, customer_id, locale, channel, agent_id, \
     team, tags, state, send_at, sent_at, expires_at FROM invitations";

fn invitation_from_row(row: &sqlx::any::AnyRow) -> Result<Invitation, ServiceError> {
    let get = |name: &str| row.try_get::<i64, _>(name).map_err(db_error);
    Ok(Invitation {
        id: row.try_get("id").map_err(db_error)?,
        survey_id: row.try_get("survey_id").map_err(db_error)?,
        ticket_id: row.try_get("ticket_id").map_err(db_error)?,
        customer_id: row.try_get("customer_id").map_err(db_error)?,
        locale: row.try_get("locale").map_err(db_error)?,
        channel: get("channel")? as i32,
        state: get("state")? as i32,
        send_at: Some(micros_to_timestamp(get("send_at")?)),
        sent_at: row.try_get::<Option<i64>, _>("sent_at").map_err(db_error)?.map(micros_to_timestamp),
        expires_at: Some(micros_to_timestamp(get("expires_at")?)),
    })
}

async fn load_survey(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<Survey, ServiceError> {
    let row = sqlx::query("SELECT spec FROM surveys WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ServiceError::not_found("survey"))?;
    decode(&row, "spec")
}

/// The answer to an invitation and its fingerprint; `lock`ed for a revision.
/// An invitation's answer so far, with what identifies it: the fingerprint of its answers and
/// the submission that first gave it.
struct Stored {
    response: SurveyResponse,
    fingerprint: String,
    first_submission: String,
}

async fn load_response(
    conn: &mut AnyConnection,
    tenant: &str,
    invitation: &str,
    lock: bool,
) -> Result<Option<Stored>, ServiceError> {
    let sql = format!(
        "SELECT body, fingerprint, first_submission FROM responses WHERE tenant_id = $1 AND invitation_id = $2{}",
        if lock { row_lock(conn) } else { "" }
    );
    let row = sqlx::query(&sql).bind(tenant).bind(invitation).fetch_optional(&mut *conn).await.map_err(db_error)?;
    row.map(|row| {
        Ok(Stored {
            response: decode(&row, "body")?,
            fingerprint: row.try_get("fingerprint").map_err(db_error)?,
            first_submission: row.try_get("first_submission").map_err(db_error)?,
        })
    })
    .transpose()
}

async fn remember_submission(
    conn: &mut AnyConnection,
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
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

async fn load_follow_up(conn: &mut AnyConnection, tenant: &str, id: &str) -> Result<(FollowUp, bool), ServiceError> {
    let sql = format!("SELECT body, linked FROM follow_ups WHERE tenant_id = $1 AND id = $2{}", row_lock(conn));
    let row = sqlx::query(&sql)
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(db_error)?
        .ok_or_else(|| ServiceError::not_found("follow-up"))?;
    Ok((decode(&row, "body")?, row.try_get::<i64, _>("linked").map_err(db_error)? != 0))
}

async fn save_follow_up(
    conn: &mut AnyConnection,
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
    .execute(&mut *conn)
    .await
    .map_err(db_error)?;
    Ok(())
}

/// Control characters other than line breaks and tabs are dropped; HTML stays as typed, to be
/// rendered escaped.
fn plain_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect::<String>().trim().to_owned()
}

/// The answers in survey order, the comment, and the score; or the first field at fault.
fn validate_answers(
    survey: &Survey,
    answers: Vec<Answer>,
    comment: &str,
) -> Result<(Vec<Answer>, String, i32), ServiceError> {
    if answers.len() > model::MAX_QUESTIONS {
        return Err(ServiceError::invalid_field("answers", "has more answers than the survey has questions"));
    }
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ServiceError::invalid_field("comment", "is longer than 5000 characters"));
    }
    let mut given: Vec<Option<Answer>> = vec![None; survey.questions.len()];
    for (at, answer) in answers.into_iter().enumerate() {
        let field = |name: &str| format!("answers[{at}].{name}");
        let Some(index) = survey.questions.iter().position(|question| question.id == answer.question_id) else {
            return Err(ServiceError::invalid_field(field("question_id"), "is not a question of this survey"));
        };
        if given[index].is_some() {
            return Err(ServiceError::invalid_field(field("question_id"), "is answered twice"));
        }
        let question = &survey.questions[index];
        let answer = match QuestionKind::try_from(question.kind).unwrap_or(QuestionKind::Unspecified) {
            QuestionKind::Scale => match answer.value {
                Some(value) if (question.min..=question.max).contains(&value) => {
                    Answer { question_id: answer.question_id, value: Some(value), text: String::new() }
                }
                _ => {
                    return Err(ServiceError::invalid_field(
                        field("value"),
                        format!("must be a whole number from {} to {}", question.min, question.max),
                    ));
                }
            },
            QuestionKind::Choice => match answer.value {
                Some(value) if value >= 0 && (value as usize) < question.choices.len() => {
                    Answer { question_id: answer.question_id, value: Some(value), text: String::new() }
                }
                _ => return Err(ServiceError::invalid_field(field("value"), "must be the index of a choice")),
            },
            QuestionKind::Text | QuestionKind::Unspecified => {
                if answer.text.chars().count() > MAX_COMMENT_CHARS {
                    return Err(ServiceError::invalid_field(field("text"), "is longer than 5000 characters"));
                }
                Answer { question_id: answer.question_id, value: None, text: plain_text(&answer.text) }
            }
        };
        given[index] = Some(answer);
    }
    let score_id = model::score_question(survey).map(|question| question.id.clone()).unwrap_or_default();
    let mut score = None;
    for (question, answer) in survey.questions.iter().zip(&given) {
        if answer.is_none() && (question.required || question.id == score_id) {
            return Err(ServiceError::invalid_field("answers", format!("must answer question {}", question.id)));
        }
        if question.id == score_id {
            score = answer.as_ref().and_then(|answer| answer.value);
        }
    }
    let score = score.ok_or_else(|| ServiceError::invalid_field("answers", "must include the score"))?;
    Ok((given.into_iter().flatten().collect(), plain_text(comment), score))
}

/// The mean of the answers to the survey's questions about the agent.
fn agent_rating(survey: &Survey, answers: &[Answer]) -> Option<f64> {
    let ratings: Vec<f64> = answers
        .iter()
        .filter(|answer| {
            survey.questions.iter().any(|question| question.about_agent && question.id == answer.question_id)
        })
        .filter_map(|answer| answer.value.map(f64::from))
        .collect();
    (!ratings.is_empty()).then(|| ratings.iter().sum::<f64>() / ratings.len() as f64)
}

fn fingerprint(answers: &[Answer], comment: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    for answer in answers {
        hasher.update(answer.encode_to_vec());
        hasher.update([0xff]);
    }
    hasher.update(comment.as_bytes());
    hex::encode(hasher.finalize())
}

/// The survey kind's display name, for follow-up tickets.
pub(crate) fn kind_name(kind: i32) -> &'static str {
    match SurveyKind::try_from(kind).unwrap_or(SurveyKind::Unspecified) {
        SurveyKind::Csat => "CSAT",
        SurveyKind::Nps => "NPS",
        SurveyKind::Ces => "CES",
        SurveyKind::Custom | SurveyKind::Unspecified => "survey",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csat() -> Survey {
        model::normalize(Survey { name: "CSAT".into(), kind: SurveyKind::Csat as i32, ..Survey::default() }).unwrap()
    }

    fn answer(question: &str, value: i32) -> Answer {
        Answer { question_id: question.into(), value: Some(value), text: String::new() }
    }

    #[test]
    fn answers_are_checked_against_the_survey() {
        let survey = csat();
        let field = |answers: Vec<Answer>, comment: &str| {
            validate_answers(&survey, answers, comment).unwrap_err().field_violations[0].field.clone()
        };
        assert_eq!(field(vec![answer("score", 6)], ""), "answers[0].value");
        assert_eq!(field(vec![answer("score", 0)], ""), "answers[0].value");
        assert_eq!(field(vec![answer("nope", 3)], ""), "answers[0].question_id");
        assert_eq!(field(vec![answer("score", 3), answer("score", 4)], ""), "answers[1].question_id");
        assert_eq!(field(vec![answer("agent_clarity", 3)], ""), "answers");
        assert_eq!(field(vec![answer("score", 3)], &"x".repeat(5_001)), "comment");
        let (answers, comment, score) =
            validate_answers(&survey, vec![answer("agent_clarity", 5), answer("score", 2)], "<b>bad</b>\u{0}").unwrap();
        assert_eq!((answers[0].question_id.as_str(), score, comment.as_str()), ("score", 2, "<b>bad</b>"));
    }

    #[test]
    fn the_same_answers_have_the_same_fingerprint() {
        let one = fingerprint(&[answer("score", 2)], "slow");
        assert_eq!(one, fingerprint(&[answer("score", 2)], "slow"));
        assert_ne!(one, fingerprint(&[answer("score", 3)], "slow"));
    }
}
