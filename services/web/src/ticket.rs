//! A ticket's page and what an agent does on it: the conversation beside the customer, SLA
//! clocks, knowledge-base suggestions to link in a reply, replies and notes, changes under
//! optimistic concurrency (a stale edit shows what changed instead of overwriting it), transfer
//! with a note and escalation with a reason.

use askama::Template;
use axum::{
    Form,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use helpdesk_proto::{
    knowledge::v1::{GetArticleRequest, SuggestRequest},
    routing::v1::{
        EscalateTicketRequest, GetTicketSlaRequest, ListAgentsRequest, ListQueuesRequest, SlaKind, TargetState,
        TransferTicketRequest,
    },
    ticketing::v1::{
        self as proto, AddMessageRequest, GetCustomerRequest, GetTicketRequest, ListMessagesRequest,
        ListTicketsRequest, UpdateTicketRequest, Visibility,
    },
};
use serde::Deserialize;

use crate::{
    Web, i18n,
    pages::{Row, STATUSES, failed, forbidden_form, render, status_choices, to_sign_in},
    session::Agent,
    view,
};

/// A message of the conversation.
pub(crate) struct Entry {
    internal: bool,
    author: String,
    at: String,
    /// Sanitized by ticketing; the page's CSP runs nothing in it anyway.
    html: String,
    text: String,
    files: Vec<(String, String)>,
}

/// An SLA target as the agent reads it: what, its state (a CSS class) and when.
pub(crate) struct Clock {
    name: &'static str,
    state: &'static str,
    when: String,
}

/// A knowledge-base article that may answer the ticket, and the line a reply links it with.
pub(crate) struct Suggestion {
    id: String,
    title: String,
    link: String,
}

/// What the agent saw of the editable fields, sent back with a change so that a refused
/// (stale) change can say what someone else changed meanwhile.
struct Seen {
    status: String,
    priority: String,
    assignee: String,
    tags: String,
}

impl Seen {
    fn of(ticket: &proto::Ticket) -> Self {
        Self {
            status: view::status_word(ticket.status).to_owned(),
            priority: view::priority_word(ticket.priority).to_owned(),
            assignee: ticket.assignee_id.clone(),
            tags: ticket.tags.join(", "),
        }
    }

    /// `status|priority|assignee|tags`, as the form carries it.
    fn encode(&self) -> String {
        [&self.status, &self.priority, &self.assignee, &self.tags].map(|value| value.replace('|', " ")).join("|")
    }

    fn decode(value: &str) -> Option<Self> {
        let mut parts = value.splitn(4, '|').map(str::to_owned);
        Some(Self { status: parts.next()?, priority: parts.next()?, assignee: parts.next()?, tags: parts.next()? })
    }
}

/// A field someone else changed while the agent edited: its name, then and now.
pub(crate) struct Change {
    field: &'static str,
    before: String,
    after: String,
}

fn changes(text: &i18n::Text, seen: &Seen, now: &Seen) -> Vec<Change> {
    let word = |field: &str, value: &str| -> String {
        match field {
            "status" => STATUSES
                .iter()
                .find(|(word, _)| *word == value)
                .map_or(value.to_owned(), |(_, status)| view::status(text, *status as i32).to_owned()),
            "priority" => view::PRIORITIES
                .iter()
                .find(|(word, _)| *word == value)
                .map_or(value.to_owned(), |(_, priority)| view::priority(text, *priority as i32).to_owned()),
            _ if value.is_empty() => "—".to_owned(),
            _ => value.to_owned(),
        }
    };
    [
        (text.status, "status", &seen.status, &now.status),
        (text.priority, "priority", &seen.priority, &now.priority),
        (text.assignee, "assignee", &seen.assignee, &now.assignee),
        (text.tags, "tags", &seen.tags, &now.tags),
    ]
    .into_iter()
    .filter(|(_, _, before, after)| before != after)
    .map(|(name, field, before, after)| Change { field: name, before: word(field, before), after: word(field, after) })
    .collect()
}

#[derive(Template)]
#[template(path = "ticket.html")]
struct TicketPage<'a> {
    t: &'a i18n::Text,
    agent_id: String,
    csrf: String,
    ticket: proto::Ticket,
    status: &'static str,
    status_word: &'static str,
    priority: &'static str,
    priority_word: &'static str,
    channel: &'static str,
    created: String,
    customer: proto::Customer,
    flag: Option<(String, String)>,
    others: Vec<Row>,
    entries: Vec<Entry>,
    statuses: Vec<(&'static str, &'static str)>,
    priorities: Vec<(&'static str, &'static str)>,
    tags: String,
    seen: String,
    clocks: Vec<Clock>,
    suggestions: Vec<Suggestion>,
    /// Where a ticket can be transferred: `queue:<id>` or `agent:<id>`, and its name.
    queues: Vec<(String, String)>,
    agents: Vec<(String, String)>,
    notice: Notice,
    draft: String,
    nonce: String,
    saved_replies: Vec<(String, String)>,
}

/// What the page says above its forms after a change, if anything.
#[derive(Default)]
pub(crate) struct Notice {
    /// Someone else's changes that won over the agent's.
    conflict: Option<Vec<Change>>,
    /// Why a form was refused, naming the field.
    error: Option<String>,
    /// What was done (escalated, transferred).
    done: Option<String>,
}

/// The ticket page. Everything but the ticket is asked for at once; a part that cannot be had
/// (no SLA policy, knowledge unavailable) is left out rather than failing the page.
async fn ticket_page(web: &Web, agent: &Agent, id: &str, notice: Notice, draft: String) -> Response {
    let ticket = match web.tickets.clone().get_ticket(agent.request(GetTicketRequest { id: id.to_owned() })).await {
        Ok(ticket) => ticket.into_inner(),
        Err(status) => return failed(&status),
    };
    let mut tickets = web.tickets.clone();
    let mut customers = web.customers.clone();
    let mut others_client = web.tickets.clone();
    let mut replies = web.replies.clone();
    let mut sla = web.sla.clone();
    let mut knowledge = web.knowledge.clone();
    let mut routing_queues = web.routing.clone();
    let mut routing_agents = web.routing.clone();
    let messages = ListMessagesRequest { ticket_id: ticket.id.clone(), page_size: 200, page_token: String::new() };
    let others = ListTicketsRequest { requester_id: ticket.requester_id.clone(), page_size: 10, ..Default::default() };
    let suggest = SuggestRequest {
        subject: ticket.subject.clone(),
        body: ticket.description.chars().take(2000).collect(),
        limit: 3,
        ..SuggestRequest::default()
    };
    let (customer, messages, others, saved_replies, clocks, suggestions, queues, agents) = tokio::join!(
        customers.get_customer(agent.request(GetCustomerRequest { id: ticket.requester_id.clone() })),
        tickets.list_messages(agent.request(messages)),
        others_client.list_tickets(agent.request(others)),
        replies.list_saved_replies(agent.request(proto::ListSavedRepliesRequest {})),
        sla.get_ticket_sla(agent.request(GetTicketSlaRequest { ticket_id: ticket.id.clone() })),
        knowledge.suggest(agent.request(suggest)),
        routing_queues.list_queues(agent.request(ListQueuesRequest::default())),
        routing_agents.list_agents(agent.request(ListAgentsRequest::default())),
    );
    let messages = match messages {
        Ok(messages) => messages.into_inner().messages,
        Err(status) => return failed(&status),
    };
    let customer = customer
        .map(|customer| customer.into_inner())
        .unwrap_or_else(|_| proto::Customer { name: ticket.requester_id.clone(), ..Default::default() });
    let text = agent.text;
    let others = others
        .map(|others| others.into_inner().tickets)
        .unwrap_or_default()
        .iter()
        .filter(|other| other.id != ticket.id)
        .map(|other| Row { flag: None, ..Row::of(other, agent) })
        .collect();
    let files = |ticket_id: &str, attachments: &[proto::Attachment]| {
        attachments
            .iter()
            .map(|file| (file.name.clone(), format!("/app/tickets/{ticket_id}/attachments/{}", file.sha256)))
            .collect::<Vec<_>>()
    };
    let entries = messages
        .iter()
        .map(|message| Entry {
            internal: message.visibility == Visibility::Internal as i32,
            author: if message.author_id == ticket.requester_id {
                customer.name.clone()
            } else {
                message.author_id.clone()
            },
            at: view::time(agent.time_zone, message.created_at.as_ref()),
            // Inline images, served through the workspace with the agent's session.
            html: message.body_html.replace(
                &format!("/v1/tickets/{}/attachments/", ticket.id),
                &format!("/app/tickets/{}/attachments/", ticket.id),
            ),
            text: message.body_text.clone(),
            files: files(&ticket.id, &message.attachments),
        })
        .collect();
    let flag = view::flag(text, customer.flag.as_ref().or(ticket.requester_flag.as_ref()));
    let saved_replies = saved_replies
        .map(|listed| listed.into_inner().saved_replies.into_iter().map(|reply| (reply.id, reply.title)).collect())
        .unwrap_or_default();
    let clocks = clocks.map(|sla| sla_clocks(agent, &sla.into_inner())).unwrap_or_default();
    let suggestions = suggestions
        .map(|found| {
            let found = found.into_inner();
            found
                .suggestions
                .into_iter()
                .map(|suggestion| Suggestion {
                    link: article_link(web, &suggestion.title, &suggestion.url_path),
                    id: suggestion.article_id,
                    title: suggestion.title,
                })
                .collect()
        })
        .unwrap_or_default();
    let queues = queues
        .map(|listed| listed.into_inner().queues.into_iter().map(|queue| (format!("queue:{}", queue.id), queue.name)))
        .map(Iterator::collect)
        .unwrap_or_default();
    let agents = agents
        .map(|listed| {
            listed.into_inner().agents.into_iter().map(|other| (format!("agent:{}", other.id), other.name)).collect()
        })
        .unwrap_or_default();
    let seen = Seen::of(&ticket);
    render(&TicketPage {
        t: text,
        agent_id: agent.principal.subject.clone(),
        csrf: agent.csrf(),
        status: view::status(text, ticket.status),
        status_word: view::status_word(ticket.status),
        priority: view::priority(text, ticket.priority),
        priority_word: view::priority_word(ticket.priority),
        channel: view::channel(ticket.channel),
        created: view::time(agent.time_zone, ticket.created_at.as_ref()),
        flag,
        others,
        entries,
        statuses: status_choices(text),
        priorities: view::priority_choices(text),
        tags: seen.tags.clone(),
        seen: seen.encode(),
        clocks,
        suggestions,
        queues,
        agents,
        notice,
        customer,
        ticket,
        draft,
        nonce: uuid::Uuid::new_v4().simple().to_string(),
        saved_replies,
    })
}

/// The line a reply links an article with: its title and the address customers open.
fn article_link(web: &Web, title: &str, url_path: &str) -> String {
    format!("{title}: {}{url_path}", web.settings.public_url.trim_end_matches('/'))
}

/// Each SLA target of the ticket: running ones with their due time and what is left.
fn sla_clocks(agent: &Agent, sla: &helpdesk_proto::routing::v1::TicketSla) -> Vec<Clock> {
    let text = agent.text;
    let now = chrono::Utc::now().timestamp();
    sla.targets
        .iter()
        .map(|target| {
            let name = match SlaKind::try_from(target.kind).unwrap_or(SlaKind::Unspecified) {
                SlaKind::FirstResponse => text.first_response,
                SlaKind::NextResponse => text.next_response,
                SlaKind::Resolution | SlaKind::Unspecified => text.resolution,
            };
            let at = |time: Option<&pbjson_types::Timestamp>| view::time(agent.time_zone, time);
            let (state, when) = match TargetState::try_from(target.state).unwrap_or(TargetState::Unspecified) {
                TargetState::Met => ("met", format!("{} {}", text.sla_met, at(target.met_at.as_ref()))),
                TargetState::Breached => {
                    ("breached", format!("{} {}", text.sla_breached, at(target.breached_at.as_ref())))
                }
                TargetState::Paused => {
                    ("paused", format!("{} · {}", text.sla_paused, view::duration(text, target.remaining_minutes * 60)))
                }
                TargetState::Running | TargetState::Unspecified => {
                    let due = target.due_at.as_ref().map_or(now, |due| due.seconds);
                    let left = due - now;
                    let state = if left < 0 {
                        "breached"
                    } else if target.warned {
                        "warned"
                    } else {
                        "running"
                    };
                    let left = if left < 0 {
                        format!("{} {}", view::duration(text, -left), text.overdue)
                    } else {
                        format!("{} {}", view::duration(text, left), text.left)
                    };
                    (state, format!("{} {} · {left}", text.due, at(target.due_at.as_ref())))
                }
            };
            Clock { name, state, when }
        })
        .collect()
}

#[derive(Deserialize, Default)]
pub(crate) struct TicketQuery {
    /// A saved reply to start the composer with, its placeholders filled from the ticket.
    #[serde(default)]
    saved_reply: String,
    /// An article to link in the composer (the page's script inserts it where the cursor is;
    /// without the script, this fills the composer).
    #[serde(default)]
    article: String,
}

pub(crate) async fn page(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<TicketQuery>,
) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    let mut draft = String::new();
    let mut notice = Notice::default();
    if !query.saved_reply.is_empty() {
        let request = proto::RenderSavedReplyRequest { saved_reply_id: query.saved_reply, ticket_id: id.clone() };
        match web.replies.clone().render_saved_reply(agent.request(request)).await {
            Ok(rendered) => draft = rendered.into_inner().body,
            Err(status) => notice.error = Some(status.message().to_owned()),
        }
    } else if !query.article.is_empty() {
        match web.knowledge.clone().get_article(agent.request(GetArticleRequest { id: query.article })).await {
            Ok(article) => {
                let article = article.into_inner();
                draft = article_link(&web, &article.title, &article.url_path);
            }
            Err(status) => notice.error = Some(status.message().to_owned()),
        }
    }
    ticket_page(&web, &agent, &id, notice, draft).await
}

#[derive(Deserialize)]
pub(crate) struct MessageForm {
    csrf: String,
    /// Made when the page was rendered: a form sent twice adds one message.
    nonce: String,
    body: String,
    #[serde(default)]
    internal: Option<String>,
}

pub(crate) async fn add_message(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<MessageForm>,
) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    if !agent.checks(&form.csrf) {
        return forbidden_form();
    }
    let visibility = if form.internal.is_some() { Visibility::Internal } else { Visibility::Public };
    let request = AddMessageRequest {
        ticket_id: id.clone(),
        idempotency_key: format!("web:{}", form.nonce.chars().take(64).collect::<String>()),
        visibility: visibility as i32,
        body_text: form.body.clone(),
        ..AddMessageRequest::default()
    };
    match web.tickets.clone().add_message(agent.request(request)).await {
        Ok(_) => Redirect::to(&format!("/app/tickets/{id}#latest")).into_response(),
        // What the agent wrote stays in the composer, with the reason beside it.
        Err(status) if refused(&status) => {
            let notice = Notice { error: Some(status.message().to_owned()), ..Notice::default() };
            ticket_page(&web, &agent, &id, notice, form.body).await
        }
        Err(status) => failed(&status),
    }
}

/// A refusal the agent can act on: the page shows it beside the form.
fn refused(status: &tonic::Status) -> bool {
    matches!(status.code(), tonic::Code::InvalidArgument | tonic::Code::FailedPrecondition)
}

#[derive(Deserialize)]
pub(crate) struct TicketForm {
    csrf: String,
    version: i64,
    #[serde(default)]
    seen: String,
    status: String,
    #[serde(default)]
    priority: String,
    #[serde(default)]
    assignee_id: String,
    #[serde(default)]
    tags: String,
}

pub(crate) async fn update(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TicketForm>,
) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    if !agent.checks(&form.csrf) {
        return forbidden_form();
    }
    let status = STATUSES.iter().find(|(word, _)| *word == form.status).map(|(_, status)| *status as i32);
    let priority =
        view::PRIORITIES.iter().find(|(word, _)| *word == form.priority).map(|(_, priority)| *priority as i32);
    let tags = form.tags.split(',').map(str::trim).filter(|tag| !tag.is_empty()).map(str::to_owned).collect();
    let request = UpdateTicketRequest {
        id: id.clone(),
        expected_version: form.version,
        status,
        priority,
        assignee_id: Some(form.assignee_id.trim().to_owned()),
        tags: Some(proto::StringList { values: tags }),
        ..UpdateTicketRequest::default()
    };
    match web.tickets.clone().update_ticket(agent.request(request)).await {
        Ok(_) => Redirect::to(&format!("/app/tickets/{id}")).into_response(),
        // Someone else's change won: say what it changed rather than overwrite it.
        Err(status) if status.code() == tonic::Code::Aborted => {
            let now = web.tickets.clone().get_ticket(agent.request(GetTicketRequest { id: id.clone() })).await;
            let conflict = match (Seen::decode(&form.seen), now) {
                (Some(seen), Ok(now)) => changes(agent.text, &seen, &Seen::of(&now.into_inner())),
                _ => Vec::new(),
            };
            ticket_page(&web, &agent, &id, Notice { conflict: Some(conflict), ..Notice::default() }, String::new())
                .await
        }
        Err(status) if refused(&status) => {
            let notice = Notice { error: Some(status.message().to_owned()), ..Notice::default() };
            ticket_page(&web, &agent, &id, notice, String::new()).await
        }
        Err(status) => failed(&status),
    }
}

#[derive(Deserialize)]
pub(crate) struct EscalateForm {
    csrf: String,
    reason: String,
}

pub(crate) async fn escalate(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<EscalateForm>,
) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    if !agent.checks(&form.csrf) {
        return forbidden_form();
    }
    let request = EscalateTicketRequest { ticket_id: id.clone(), reason: form.reason.trim().to_owned() };
    let notice = match web.sla.clone().escalate_ticket(agent.request(request)).await {
        Ok(escalation) => {
            let actions = escalation.into_inner().actions.join(", ");
            Notice { done: Some(format!("{} {actions}", agent.text.escalated)), ..Notice::default() }
        }
        Err(status) if refused(&status) => Notice { error: Some(status.message().to_owned()), ..Notice::default() },
        Err(status) => return failed(&status),
    };
    ticket_page(&web, &agent, &id, notice, String::new()).await
}

#[derive(Deserialize)]
pub(crate) struct TransferForm {
    csrf: String,
    /// `queue:<id>` or `agent:<id>`.
    to: String,
    #[serde(default)]
    note: String,
}

pub(crate) async fn transfer(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<TransferForm>,
) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    if !agent.checks(&form.csrf) {
        return forbidden_form();
    }
    let (to_queue_id, to_agent_id) = match form.to.split_once(':') {
        Some(("queue", queue)) => (queue.to_owned(), String::new()),
        Some(("agent", to)) => (String::new(), to.to_owned()),
        _ => {
            let notice = Notice {
                error: Some(format!("{}: {}", agent.text.transfer_to, agent.text.pick_one)),
                ..Default::default()
            };
            return ticket_page(&web, &agent, &id, notice, String::new()).await;
        }
    };
    let request =
        TransferTicketRequest { ticket_id: id.clone(), to_agent_id, to_queue_id, note: form.note.trim().to_owned() };
    let notice = match web.routing.clone().transfer_ticket(agent.request(request)).await {
        Ok(_) => Notice { done: Some(agent.text.transferred.to_owned()), ..Notice::default() },
        Err(status) if refused(&status) => Notice { error: Some(status.message().to_owned()), ..Notice::default() },
        Err(status) => return failed(&status),
    };
    ticket_page(&web, &agent, &id, notice, String::new()).await
}

/// A file of the ticket, as the gateway serves it, with the agent's session.
pub(crate) async fn attachment(
    State(web): State<Web>,
    headers: HeaderMap,
    Path((id, sha256)): Path<(String, String)>,
) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    let request = proto::GetAttachmentRequest { ticket_id: id, sha256 };
    match web.attachments.clone().get_attachment(agent.request(request)).await {
        Ok(file) => {
            let file = file.into_inner();
            let attachment = file.attachment.unwrap_or_default();
            let headers = helpdesk_runtime::download::file_headers(
                &attachment.name,
                &attachment.content_type,
                &attachment.sha256,
            );
            (headers, file.content).into_response()
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            (StatusCode::NOT_FOUND, "not found").into_response()
        }
        Err(status) => failed(&status),
    }
}
