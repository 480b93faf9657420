//! Sign-in and out, the inbox, and what every page shares: rendering, and how a failed call
//! reaches the agent.

use askama::Template;
use axum::{
    Form,
    extract::{Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
};
use helpdesk_proto::{
    identity::v1::{SignInRequest, SignOutRequest},
    ticketing::v1::{self as proto, ListTicketsRequest, Status},
};
use serde::Deserialize;

use crate::{
    Web, i18n,
    session::{self, Agent, FORM_COOKIE, PREFS_COOKIE, SESSION_COOKIE},
    view,
};

/// Seconds a session cookie lives: as long as identity's session.
const SESSION_SECONDS: i64 = 12 * 3600;

pub(crate) fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(%error, "page not rendered");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

pub(crate) fn to_sign_in() -> Response {
    Redirect::to("/app/sign-in").into_response()
}

pub(crate) fn forbidden_form() -> Response {
    (StatusCode::FORBIDDEN, "the form is out of date: reload the page and try again").into_response()
}

/// A call's failure as the page shows it: signed out → the sign-in page, else the message.
pub(crate) fn failed(status: &tonic::Status) -> Response {
    match status.code() {
        tonic::Code::Unauthenticated => to_sign_in(),
        tonic::Code::NotFound | tonic::Code::PermissionDenied => (StatusCode::NOT_FOUND, "not found").into_response(),
        _ => {
            tracing::warn!(error = %status.message(), "workspace call failed");
            (StatusCode::SERVICE_UNAVAILABLE, "the service is unavailable; try again shortly").into_response()
        }
    }
}

pub(crate) async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("../static/app.js"),
    )
}

/// Server-sent events: the id of each ticket of the agent's tenant that changes, as it changes,
/// for the inbox to redraw and a ticket page to reload. Ends with the session's lifetime.
pub(crate) async fn events(State(web): State<Web>, headers: HeaderMap) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    use futures::StreamExt;
    let Some(agent) = web.agent(&headers).await else { return StatusCode::UNAUTHORIZED.into_response() };
    let changes = match web.bus.tail(&format!("{}.ticket.>", agent.principal.tenant_id)).await {
        Ok(changes) => changes,
        Err(error) => {
            tracing::warn!(%error, "live updates unavailable");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    let ticket_ids = changes
        .filter_map(|delivery| async move {
            let ticket = delivery.ok()?.event.aggregate_id;
            Some(Ok::<_, std::convert::Infallible>(Event::default().event("ticket").data(ticket)))
        })
        .take_until(tokio::time::sleep(std::time::Duration::from_secs(SESSION_SECONDS as u64)));
    Sse::new(ticket_ids).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15))).into_response()
}

pub(crate) async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=3600")],
        include_str!("../static/app.css"),
    )
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    t: &'a i18n::Text,
    csrf: String,
    tenant: String,
    email: String,
    error: Option<String>,
}

fn sign_in_page(
    web: &Web,
    text: &'static i18n::Text,
    tenant: String,
    email: String,
    error: Option<String>,
) -> Response {
    let token = hex::encode(rand::random::<[u8; 32]>());
    let cookie = session::set_cookie(FORM_COOKIE, &token, 3600, web.settings.secure_cookies);
    let tenant = if tenant.is_empty() { web.settings.default_tenant.clone() } else { tenant };
    let page = SignInPage { t: text, csrf: token, tenant, email, error };
    let status = if page.error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    (status, [(header::SET_COOKIE, cookie)], render(&page)).into_response()
}

fn browser_text(headers: &HeaderMap) -> &'static i18n::Text {
    i18n::preferred(headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok()).unwrap_or("en"))
}

pub(crate) async fn sign_in_form(State(web): State<Web>, headers: HeaderMap) -> Response {
    if web.agent(&headers).await.is_some() {
        return Redirect::to("/app").into_response();
    }
    sign_in_page(&web, browser_text(&headers), String::new(), String::new(), None)
}

#[derive(Deserialize)]
pub(crate) struct SignInForm {
    csrf: String,
    tenant: String,
    email: String,
    password: String,
}

pub(crate) async fn sign_in(State(web): State<Web>, headers: HeaderMap, Form(form): Form<SignInForm>) -> Response {
    let text = browser_text(&headers);
    let expected = session::cookie(&headers, FORM_COOKIE).unwrap_or_default();
    if expected.is_empty() || !session::constant_time_eq(expected.as_bytes(), form.csrf.as_bytes()) {
        return forbidden_form();
    }
    let tenant = form.tenant.trim().to_owned();
    if helpdesk_identity::validate_tenant_id(&tenant).is_err() {
        return sign_in_page(&web, text, tenant, form.email, Some("no such workspace".to_owned()));
    }
    let request = SignInRequest { tenant_id: tenant.clone(), email: form.email.clone(), password: form.password };
    let bearer = match web.tokens.bearer(&tenant) {
        Ok(bearer) => bearer,
        Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, error.message).into_response(),
    };
    match web.identity.clone().sign_in(helpdesk_runtime::grpc::outgoing(request, Some(&bearer))).await {
        Ok(response) => {
            let response = response.into_inner();
            let account = response.account.unwrap_or_default();
            let secure = web.settings.secure_cookies;
            let prefs = format!("{}|{}", account.language, account.time_zone.replace('/', "%2F"));
            let mut reply = Redirect::to("/app").into_response();
            for cookie in [
                session::set_cookie(SESSION_COOKIE, &response.session, SESSION_SECONDS, secure),
                session::set_cookie(PREFS_COOKIE, &prefs, SESSION_SECONDS, secure),
                session::set_cookie(FORM_COOKIE, "", 0, secure),
            ] {
                if let Ok(value) = cookie.parse() {
                    reply.headers_mut().append(header::SET_COOKIE, value);
                }
            }
            reply
        }
        Err(status) if status.code() == tonic::Code::Unauthenticated => {
            sign_in_page(&web, text, tenant, form.email, Some(status.message().to_owned()))
        }
        Err(status) => failed(&status),
    }
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    csrf: String,
}

pub(crate) async fn sign_out(State(web): State<Web>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    if !agent.checks(&form.csrf) {
        return forbidden_form();
    }
    let request = SignOutRequest { session: agent.credential.clone() };
    if let Ok(bearer) = web.tokens.bearer(&agent.principal.tenant_id) {
        let ended = web.identity.clone().sign_out(helpdesk_runtime::grpc::outgoing(request, Some(&bearer))).await;
        if let Err(status) = ended {
            tracing::warn!(error = %status.message(), "session not ended");
        }
    }
    web.authenticator.forget_credentials();
    let mut reply = to_sign_in();
    for name in [SESSION_COOKIE, PREFS_COOKIE] {
        if let Ok(value) = session::set_cookie(name, "", 0, web.settings.secure_cookies).parse() {
            reply.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    reply
}

/// A ticket as a row of the inbox.
pub(crate) struct Row {
    pub(crate) id: String,
    pub(crate) subject: String,
    pub(crate) status: &'static str,
    pub(crate) status_word: &'static str,
    pub(crate) priority: &'static str,
    pub(crate) channel: &'static str,
    pub(crate) updated: String,
    pub(crate) flag: Option<(String, String)>,
}

impl Row {
    pub(crate) fn of(ticket: &proto::Ticket, agent: &Agent) -> Self {
        let text = agent.text;
        Row {
            id: ticket.id.clone(),
            subject: ticket.subject.clone(),
            status: view::status(text, ticket.status),
            status_word: view::status_word(ticket.status),
            priority: view::priority(text, ticket.priority),
            channel: view::channel(ticket.channel),
            updated: view::time(agent.time_zone, ticket.updated_at.as_ref()),
            flag: view::flag(text, ticket.requester_flag.as_ref()),
        }
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage<'a> {
    t: &'a i18n::Text,
    agent_id: String,
    csrf: String,
    view: String,
    status: String,
    q: String,
    rows: Vec<Row>,
    next: Option<String>,
    statuses: Vec<(&'static str, &'static str)>,
}

#[derive(Deserialize, Default)]
pub(crate) struct InboxQuery {
    #[serde(default)]
    view: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: String,
}

/// Statuses an inbox can be narrowed to, as the API spells them.
pub(crate) const STATUSES: &[(&str, Status)] = &[
    ("new", Status::New),
    ("open", Status::Open),
    ("pending", Status::Pending),
    ("on_hold", Status::OnHold),
    ("solved", Status::Solved),
    ("closed", Status::Closed),
];

/// Each status as the API spells it and as the agent reads it.
pub(crate) fn status_choices(text: &i18n::Text) -> Vec<(&'static str, &'static str)> {
    STATUSES.iter().map(|(word, status)| (*word, view::status(text, *status as i32))).collect()
}

pub(crate) async fn inbox(State(web): State<Web>, headers: HeaderMap, Query(query): Query<InboxQuery>) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    let view = match query.view.as_str() {
        "unassigned" | "all" => query.view.clone(),
        _ => "mine".to_owned(),
    };
    let statuses: Vec<i32> = match STATUSES.iter().find(|(word, _)| *word == query.status) {
        Some((_, status)) => vec![*status as i32],
        // Open work by default: what is solved or closed needs no one.
        None => [Status::New, Status::Open, Status::Pending, Status::OnHold].map(|status| status as i32).to_vec(),
    };
    let request = ListTicketsRequest {
        statuses,
        assignee_id: if view == "mine" { agent.principal.subject.clone() } else { String::new() },
        unassigned: view == "unassigned",
        query: query.q.trim().to_owned(),
        order: proto::TicketOrder::UpdatedDesc as i32,
        page_size: 50,
        page_token: query.page.clone(),
        ..ListTicketsRequest::default()
    };
    let listed = match web.tickets.clone().list_tickets(agent.request(request)).await {
        Ok(listed) => listed.into_inner(),
        Err(status) if status.code() == tonic::Code::InvalidArgument => proto::ListTicketsResponse::default(),
        Err(status) => return failed(&status),
    };
    let text = agent.text;
    let rows = listed.tickets.iter().map(|ticket| Row::of(ticket, &agent)).collect();
    let next = (!listed.next_page_token.is_empty()).then_some(listed.next_page_token);
    render(&InboxPage {
        t: text,
        agent_id: agent.principal.subject.clone(),
        csrf: agent.csrf(),
        view,
        status: query.status,
        q: query.q,
        rows,
        next,
        statuses: status_choices(text),
    })
}
