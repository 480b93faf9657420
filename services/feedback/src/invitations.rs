//! Invitations: a solved ticket is invited to the first active survey whose rules take it, once
//! per ticket and survey, and at most once per throttle period per customer; delivery posts the
//! signed link when it is due, and a reopened ticket withdraws the invitation not yet sent.

use helpdesk_proto::feedback::v1::{self as proto, Invitation};
use helpdesk_runtime::{ServiceError, time::now_micros};

use crate::{Feedback, model, store::NewInvitation, token::Claims};

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

impl Feedback {
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
        let mut tx = self.store.begin().await?;
        if trigger.throttle_days > 0 && !ticket.customer_id.is_empty() {
            // Two of the customer's tickets solved at once: one survey, not one each.
            tx.lock_customer(tenant, &ticket.customer_id).await?;
            let since = now - i64::from(trigger.throttle_days) * 86_400_000_000;
            if tx.invited_since(tenant, &ticket.customer_id, since, &ticket.ticket_id).await? {
                return Ok(None);
            }
        }
        let id = uuid::Uuid::now_v7().to_string();
        let send_at = ticket.solved_at.max(now) + i64::from(trigger.delay_minutes) * 60_000_000;
        let expires_at = send_at + i64::from(survey.link_ttl_hours) * 3_600_000_000;
        let invitation = NewInvitation {
            id: &id,
            survey_id: &survey.id,
            ticket,
            locale: model::locale_for(&ticket.customer_language),
            send_at,
            expires_at,
            created_at: now,
        };
        let scheduled = tx.schedule_invitation(tenant, &invitation).await?;
        tx.commit().await?;
        self.delivery_wake.notify_one();
        Ok(scheduled.then_some(id))
    }

    /// A reopened ticket is not surveyed about a resolution that did not hold.
    pub async fn cancel_invitations(&self, tenant: &str, ticket_id: &str) -> Result<(), ServiceError> {
        self.store.cancel_invitations(tenant, ticket_id).await
    }

    /// Scheduled invitations whose time has come: (tenant, invitation).
    pub(crate) async fn due_invitations(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<(String, Invitation)>, ServiceError> {
        self.store.due_invitations(now, limit).await
    }

    pub(crate) async fn mark_sent(&self, tenant: &str, id: &str, at: i64) -> Result<(), ServiceError> {
        self.store.mark_sent(tenant, id, at).await
    }

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
        self.store.invitations(tenant, &request.ticket_id, model::list_limit(request.limit)).await
    }
}
