//! What feedback writes to ticketing, from its own tables so nothing is lost to a crash: survey
//! links as public messages on the solved ticket, a linked ticket for each follow-up (assigned to
//! the team lead), and "you said, we did" messages. Each call carries an idempotency key, so a
//! retry after a crash posts nothing twice.

use std::{sync::Arc, time::Duration};

use helpdesk_proto::{
    common::v1::Priority,
    feedback::v1::{FollowUp, Invitation, SurveyResponse},
    routing::v1::GetAgentRequest,
    ticketing::v1::{
        AddMessageRequest, CreateTicketRequest, GetTicketRequest, LinkTicketsRequest, Status, Ticket,
        UpdateTicketRequest, Visibility,
    },
};
use helpdesk_runtime::{ServiceError, error::ErrorKind, shutdown::Shutdown, time::now_micros};
use tonic::Code;

use crate::{Feedback, Peers, follow_ups::kind_name, store::Notification};

const BATCH: i64 = 100;

/// The tag follow-up tickets carry, so that views and reports can find them.
pub const FOLLOW_UP_TAG: &str = "survey-follow-up";

/// The tag of the solved tickets that carry a survey link or an announcement to a customer whose
/// ticket was closed; reports leave them out, and they are not surveyed.
pub const CARRIER_TAG: &str = "feedback-message";

pub(crate) async fn run(feedback: Arc<Feedback>, peers: Peers, shutdown: Shutdown) {
    let wake = feedback.delivery_wake.clone();
    loop {
        if let Err(error) = drain(&feedback, &peers).await {
            tracing::warn!(error = %error.message, "survey delivery will be retried");
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = shutdown.clone().wait() => return,
        }
    }
}

/// One pass over everything due. An item that fails for a passing reason (ticketing down, a
/// race) is tried again next pass; one ticketing refuses is given up, so it cannot block the rest.
async fn drain(feedback: &Feedback, peers: &Peers) -> Result<(), ServiceError> {
    for (tenant, invitation) in feedback.due_invitations(now_micros(), BATCH).await? {
        let sent = send_invitation(feedback, peers, &tenant, &invitation).await;
        settle("survey invitation", &invitation.id, sent, || {
            feedback.cancel_invitations(&tenant, &invitation.ticket_id)
        })
        .await?;
    }
    for (tenant, follow_up, response) in feedback.unlinked_follow_ups(BATCH).await? {
        let opened = open_follow_up(feedback, peers, &tenant, &follow_up, &response).await;
        settle("follow-up", &follow_up.id, opened, || feedback.mark_link_refused(&tenant, &follow_up.id)).await?;
    }
    for notification in feedback.pending_notifications(BATCH).await? {
        let told = notify(feedback, peers, &notification).await;
        settle("announcement", &notification.announcement, told, || feedback.mark_notification(&notification, false))
            .await?;
    }
    Ok(())
}

async fn settle<GiveUp>(
    what: &str,
    id: &str,
    result: Result<(), ServiceError>,
    give_up: impl FnOnce() -> GiveUp,
) -> Result<(), ServiceError>
where
    GiveUp: std::future::Future<Output = Result<(), ServiceError>>,
{
    match result {
        Ok(()) => Ok(()),
        Err(error)
            if matches!(
                error.kind,
                ErrorKind::Unavailable | ErrorKind::Internal | ErrorKind::Conflict | ErrorKind::TooManyRequests
            ) =>
        {
            tracing::warn!(what, id, error = %error.message, "delivery will be retried");
            Ok(())
        }
        Err(error) => {
            tracing::error!(what, id, error = %error.message, "ticketing refused it; given up");
            give_up().await
        }
    }
}

async fn ticket(peers: &Peers, tenant: &str, id: &str) -> Result<Option<Ticket>, ServiceError> {
    match peers.tickets().get_ticket(peers.request(tenant, GetTicketRequest { id: id.to_owned() })?).await {
        Ok(ticket) => Ok(Some(ticket.into_inner())),
        Err(status) if status.code() == Code::NotFound => Ok(None),
        Err(status) => Err(ServiceError::from_status(&status)),
    }
}

/// What a message tells: `text` for everyone, or — when it carries the customer's own
/// credential — `text` redacted for staff and `customer_text` for the customer.
struct Notice {
    text: String,
    customer_text: String,
}

impl Notice {
    fn plain(text: String) -> Self {
        Self { text, customer_text: String::new() }
    }
}

/// Posts a message on a ticket that still takes them.
async fn post(
    peers: &Peers,
    tenant: &str,
    ticket: &str,
    key: String,
    visibility: Visibility,
    notice: Notice,
) -> Result<(), ServiceError> {
    let request = AddMessageRequest {
        ticket_id: ticket.to_owned(),
        idempotency_key: key,
        visibility: visibility as i32,
        body_text: notice.text,
        customer_text: notice.customer_text,
        ..AddMessageRequest::default()
    };
    peers
        .tickets()
        .add_message(peers.request(tenant, request)?)
        .await
        .map_err(|status| ServiceError::from_status(&status))?;
    Ok(())
}

fn invitation_text(locale: &str, link: &str, expires: &str) -> String {
    if locale == "ko" {
        format!("상담은 만족스러우셨나요? 아래 링크에서 의견을 남겨 주세요.\n{link}\n링크는 {expires}까지 유효합니다.")
    } else {
        format!("How did we do? Please tell us about your experience:\n{link}\nThe link works until {expires}.")
    }
}

async fn send_invitation(
    feedback: &Feedback,
    peers: &Peers,
    tenant: &str,
    invitation: &Invitation,
) -> Result<(), ServiceError> {
    let surveyed = ticket(peers, tenant, &invitation.ticket_id)
        .await?
        .filter(|ticket| ticket.status == Status::Solved as i32 || ticket.status == Status::Closed as i32);
    let Some(surveyed) = surveyed else {
        return feedback.cancel_invitations(tenant, &invitation.ticket_id).await;
    };
    let expires = invitation
        .expires_at
        .as_ref()
        .and_then(|at| chrono::DateTime::from_timestamp(at.seconds, 0))
        .map_or_else(String::new, |at| at.format("%Y-%m-%d %H:%M UTC").to_string());
    // Staff read the ticket too: they see the link without its signature, which answers nothing.
    let (link, redacted) = feedback.link(tenant, invitation);
    let notice = Notice {
        text: invitation_text(&invitation.locale, &redacted, &expires),
        customer_text: invitation_text(&invitation.locale, &link, &expires),
    };
    tell(peers, tenant, &surveyed, format!("survey-{}", invitation.id), notice).await?;
    feedback.mark_sent(tenant, &invitation.id, now_micros()).await
}

/// Posts `notice` publicly on `ticket`; on a closed one, which takes no more messages, on a new
/// ticket that follows it up (tag [`CARRIER_TAG`]), solved at once.
async fn tell(peers: &Peers, tenant: &str, ticket: &Ticket, key: String, notice: Notice) -> Result<(), ServiceError> {
    if ticket.status != Status::Closed as i32 {
        return post(peers, tenant, &ticket.id, key, Visibility::Public, notice).await;
    }
    let request = CreateTicketRequest {
        idempotency_key: key.clone(),
        subject: ticket.subject.clone(),
        description: notice.text.clone(),
        requester_id: ticket.requester_id.clone(),
        group: ticket.group.clone(),
        channel: ticket.channel,
        tags: vec![CARRIER_TAG.to_owned()],
        follow_up_of_id: ticket.id.clone(),
        ..CreateTicketRequest::default()
    };
    let created = peers
        .tickets()
        .create_ticket(peers.request(tenant, request)?)
        .await
        .map_err(|status| ServiceError::from_status(&status))?
        .into_inner();
    // A description is for everyone: what only the customer may read follows as a message.
    if !notice.customer_text.is_empty() {
        post(peers, tenant, &created.id, format!("{key}-customer"), Visibility::Public, notice).await?;
    }
    // Nothing is left to do on it. A retry finds it solved already.
    if created.status != Status::Solved as i32 {
        let solve = UpdateTicketRequest {
            id: created.id,
            expected_version: created.version,
            status: Some(Status::Solved as i32),
            ..UpdateTicketRequest::default()
        };
        peers
            .tickets()
            .update_ticket(peers.request(tenant, solve)?)
            .await
            .map_err(|status| ServiceError::from_status(&status))?;
    }
    Ok(())
}

/// The agent's supervisor in routing, else the team's lead in the feedback settings.
async fn lead_for(
    feedback: &Feedback,
    peers: &Peers,
    tenant: &str,
    agent: &str,
    team: &str,
) -> Result<String, ServiceError> {
    if !agent.is_empty() {
        match peers.agents().get_agent(peers.request(tenant, GetAgentRequest { id: agent.to_owned() })?).await {
            Ok(found) if !found.get_ref().supervisor_id.is_empty() => return Ok(found.into_inner().supervisor_id),
            Ok(_) => {}
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) => return Err(ServiceError::from_status(&status)),
        }
    }
    Ok(feedback.settings(tenant).await?.team_leads.get(team).cloned().unwrap_or_default())
}

/// What the customer sees of the follow-up ticket (they are its requester); the details are an
/// internal note.
fn follow_up_text(locale: &str) -> (&'static str, &'static str) {
    if locale == "ko" {
        (
            "고객님의 의견에 대한 후속 조치",
            "이전 문의에 대한 의견을 보내 주셔서 감사합니다. 담당 팀장이 직접 연락드리겠습니다.",
        )
    } else {
        (
            "Following up on your feedback",
            "Thank you for your feedback on your earlier request. Our team lead will get back to you.",
        )
    }
}

async fn open_follow_up(
    feedback: &Feedback,
    peers: &Peers,
    tenant: &str,
    follow_up: &FollowUp,
    response: &SurveyResponse,
) -> Result<(), ServiceError> {
    let original =
        ticket(peers, tenant, &follow_up.ticket_id).await?.ok_or_else(|| ServiceError::not_found("surveyed ticket"))?;
    let lead = lead_for(feedback, peers, tenant, &original.assignee_id, &follow_up.team).await?;
    let (subject, description) = follow_up_text(&response.locale);
    let request = CreateTicketRequest {
        idempotency_key: format!("follow-up-{}", follow_up.id),
        subject: subject.to_owned(),
        description: description.to_owned(),
        requester_id: original.requester_id.clone(),
        assignee_id: lead.clone(),
        group: follow_up.team.clone(),
        priority: Priority::High as i32,
        channel: original.channel,
        tags: vec![FOLLOW_UP_TAG.to_owned()],
        ..CreateTicketRequest::default()
    };
    let created = peers
        .tickets()
        .create_ticket(peers.request(tenant, request)?)
        .await
        .map_err(|status| ServiceError::from_status(&status))?;
    let linked = created.into_inner().id;
    let link = LinkTicketsRequest { ticket_id: linked.clone(), other_ticket_id: original.id.clone() };
    if let Err(status) = peers.tickets().link_tickets(peers.request(tenant, link)?).await
        && status.code() != Code::AlreadyExists
    {
        return Err(ServiceError::from_status(&status));
    }
    let mut note = format!(
        "Survey follow-up: the customer gave {} {} on ticket {} (\"{}\"). Contact them, then close follow-up {} \
         with what was done.",
        kind_name(follow_up.kind),
        follow_up.score,
        original.id,
        original.subject.chars().take(150).collect::<String>(),
        follow_up.id
    );
    if !response.comment.is_empty() {
        note.push_str("\n\nTheir comment (as typed):\n");
        note.push_str(&response.comment);
    }
    post(peers, tenant, &linked, format!("follow-up-note-{}", follow_up.id), Visibility::Internal, Notice::plain(note))
        .await?;
    tracing::info!(%tenant, follow_up = %follow_up.id, ticket = %linked, %lead, "follow-up opened in ticketing");
    feedback.mark_linked(tenant, &follow_up.id, &linked, &lead).await
}

/// Tells the respondent on the ticket of their answer.
async fn notify(feedback: &Feedback, peers: &Peers, notification: &Notification) -> Result<(), ServiceError> {
    let tenant = &notification.tenant;
    let Some(answered) = ticket(peers, tenant, &notification.ticket).await? else {
        return feedback.mark_notification(notification, false).await;
    };
    let key = format!("announcement-{}-{}", notification.announcement, notification.customer);
    tell(peers, tenant, &answered, key, Notice::plain(notification.text.clone())).await?;
    feedback.mark_notification(notification, true).await
}
