//! Follow-ups, the closed loop on unhappy answers: opened with the answer, linked by delivery to a
//! ticket in ticketing for the team lead, and closed with a note of what was done.

use helpdesk_proto::{
    common::v1::AuthorKind,
    events::v1::{FollowUpClosed, event::Payload},
    feedback::v1::{self as proto, FollowUp, FollowUpState, SurveyKind, SurveyResponse},
};
use helpdesk_runtime::{
    ServiceError,
    time::{micros_to_timestamp, now_micros},
};

use crate::{
    Feedback,
    model::{self, MAX_COMMENT_CHARS, service_event},
};

impl Feedback {
    pub async fn list_follow_ups(
        &self,
        tenant: &str,
        request: proto::ListFollowUpsRequest,
    ) -> Result<Vec<FollowUp>, ServiceError> {
        self.store.follow_ups(tenant, request.state, &request.assignee_id, model::list_limit(request.limit)).await
    }

    /// Closes a follow-up for `closer`, if `may_close` (the caller's permission, which the gRPC
    /// adapter decides) allows it on the follow-up as it stands, locked.
    pub async fn close_follow_up(
        &self,
        tenant: &str,
        closer: &str,
        may_close: impl FnOnce(&FollowUp) -> Result<(), ServiceError>,
        request: proto::CloseFollowUpRequest,
    ) -> Result<FollowUp, ServiceError> {
        let note = request.resolution_note.trim();
        if note.is_empty() || note.chars().count() > MAX_COMMENT_CHARS {
            return Err(ServiceError::invalid_field("resolution_note", "must be 1 to 5000 characters"));
        }
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        let (mut follow_up, linked) = tx.follow_up_for_update(tenant, &request.id).await?;
        may_close(&follow_up)?;
        if follow_up.state == FollowUpState::Closed as i32 {
            return Err(ServiceError::failed_precondition("the follow-up is already closed"));
        }
        follow_up.state = FollowUpState::Closed as i32;
        follow_up.resolution_note = note.to_owned();
        follow_up.closed_by = closer.to_owned();
        follow_up.closed_at = Some(micros_to_timestamp(now));
        tx.save_follow_up(tenant, &follow_up, linked, now).await?;
        let event = service_event(
            tenant,
            (AuthorKind::Agent, closer),
            ("follow_up", &follow_up.id),
            2,
            now,
            Payload::FollowUpClosed(FollowUpClosed { follow_up: Some(follow_up.clone()) }),
        );
        tx.append_events(&[event]).await?;
        tx.commit().await?;
        self.events_written.notify_one();
        Ok(follow_up)
    }

    /// Follow-ups whose linked ticket ticketing does not have yet: (tenant, follow-up, answer).
    pub(crate) async fn unlinked_follow_ups(
        &self,
        limit: i64,
    ) -> Result<Vec<(String, FollowUp, SurveyResponse)>, ServiceError> {
        self.store.unlinked_follow_ups(limit).await
    }

    /// Ticketing refused the follow-up's ticket: the follow-up stays open in feedback, unlinked,
    /// and is not tried again.
    pub(crate) async fn mark_link_refused(&self, tenant: &str, id: &str) -> Result<(), ServiceError> {
        self.store.mark_link_refused(tenant, id).await
    }

    pub(crate) async fn mark_linked(
        &self,
        tenant: &str,
        id: &str,
        linked_ticket: &str,
        lead: &str,
    ) -> Result<(), ServiceError> {
        let mut tx = self.store.begin().await?;
        let (mut follow_up, _) = tx.follow_up_for_update(tenant, id).await?;
        follow_up.linked_ticket_id = linked_ticket.to_owned();
        follow_up.assignee_id = lead.to_owned();
        tx.save_follow_up(tenant, &follow_up, true, now_micros()).await?;
        tx.commit().await
    }
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
