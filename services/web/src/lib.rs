//! The agent workspace: server-rendered pages under `/app` (askama templates; one small script
//! of our own adds live updates and keyboard shortcuts, and every page works without it),
//! calling the platform's services over gRPC with the signed-in agent's own session, so that
//! every check the API makes — tenant, role, what a ticket shows — holds here too. Every page
//! carries a Content-Security-Policy that runs no inline script and loads nothing from elsewhere,
//! and every form a CSRF token.

mod chart;
mod i18n;
mod pages;
mod reports;
mod session;
mod supervisor;
mod ticket;
mod view;

use std::sync::Arc;

use axum::{
    Router,
    http::{HeaderValue, header},
    routing::{get, post},
};
use helpdesk_proto::{
    feedback::v1::{feedback_service_client::FeedbackServiceClient, insights_service_client::InsightsServiceClient},
    identity::v1::identity_service_client::IdentityServiceClient,
    knowledge::v1::knowledge_service_client::KnowledgeServiceClient,
    routing::v1::{routing_service_client::RoutingServiceClient, sla_service_client::SlaServiceClient},
    ticketing::v1::{
        attachment_service_client::AttachmentServiceClient, customer_service_client::CustomerServiceClient,
        saved_reply_service_client::SavedReplyServiceClient, ticket_service_client::TicketServiceClient,
    },
};
use helpdesk_runtime::auth::{Authenticator, ServiceTokens};
use tonic::transport::Channel;
use tower_http::set_header::SetResponseHeaderLayer;

/// Where the workspace finds the services, and how it checks sessions.
pub struct Backends {
    pub ticketing: Channel,
    pub identity: Channel,
    pub routing: Channel,
    pub knowledge: Channel,
    pub feedback: Channel,
    /// Resolves session cookies, like any bearer credential.
    pub authenticator: Arc<Authenticator>,
    /// The workspace's own tokens, for signing people in and out.
    pub tokens: Arc<ServiceTokens>,
    /// Ticket events, for live updates.
    pub bus: Arc<dyn helpdesk_events::EventBus>,
}

/// The workspace's settings.
#[derive(Clone)]
pub struct Settings {
    /// Mark cookies `Secure`: on whenever the workspace is reached over HTTPS.
    pub secure_cookies: bool,
    /// The workspace the sign-in form suggests.
    pub default_tenant: String,
    /// The address customers reach the help center at, for article links in replies (empty:
    /// links are paths on this host).
    pub public_url: String,
}

impl From<&helpdesk_runtime::config::Config> for Settings {
    fn from(config: &helpdesk_runtime::config::Config) -> Self {
        Self {
            secure_cookies: config.web.secure_cookies,
            default_tenant: config.web.default_tenant.clone(),
            public_url: config.feedback.public_url.clone().unwrap_or_default(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Web {
    tickets: TicketServiceClient<Channel>,
    customers: CustomerServiceClient<Channel>,
    attachments: AttachmentServiceClient<Channel>,
    identity: IdentityServiceClient<Channel>,
    authenticator: Arc<Authenticator>,
    tokens: Arc<ServiceTokens>,
    replies: SavedReplyServiceClient<Channel>,
    routing: RoutingServiceClient<Channel>,
    sla: SlaServiceClient<Channel>,
    knowledge: KnowledgeServiceClient<Channel>,
    insights: InsightsServiceClient<Channel>,
    feedback: FeedbackServiceClient<Channel>,
    bus: Arc<dyn helpdesk_events::EventBus>,
    settings: Settings,
}

/// What every page's response carries: only the workspace's own script and stylesheet run (no
/// inline script, nothing from elsewhere), no page frames it, and nothing is cached (pages show
/// tickets).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The workspace's routes, all under `/app`.
pub fn router(backends: Backends, settings: Settings) -> Router {
    let web = Web {
        tickets: TicketServiceClient::new(backends.ticketing.clone()),
        customers: CustomerServiceClient::new(backends.ticketing.clone()),
        replies: SavedReplyServiceClient::new(backends.ticketing.clone()),
        // Files as large as ticketing's store takes (at most 100 MiB).
        attachments: AttachmentServiceClient::new(backends.ticketing).max_decoding_message_size(101 * 1024 * 1024),
        identity: IdentityServiceClient::new(backends.identity),
        routing: RoutingServiceClient::new(backends.routing.clone()),
        sla: SlaServiceClient::new(backends.routing),
        knowledge: KnowledgeServiceClient::new(backends.knowledge),
        insights: InsightsServiceClient::new(backends.feedback.clone()),
        feedback: FeedbackServiceClient::new(backends.feedback),
        authenticator: backends.authenticator,
        tokens: backends.tokens,
        bus: backends.bus,
        settings,
    };
    let headers = [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    let mut router = Router::new()
        .route("/app", get(pages::inbox))
        .route("/app/sign-in", get(pages::sign_in_form).post(pages::sign_in))
        .route("/app/sign-out", post(pages::sign_out))
        .route("/app/tickets/{id}", get(ticket::page).post(ticket::update))
        .route("/app/tickets/{id}/messages", post(ticket::add_message))
        .route("/app/tickets/{id}/escalate", post(ticket::escalate))
        .route("/app/tickets/{id}/transfer", post(ticket::transfer))
        .route("/app/tickets/{id}/attachments/{sha256}", get(ticket::attachment))
        .route("/app/supervisor", get(supervisor::page))
        .route("/app/reports", get(reports::page))
        .route("/app/reports/{report}", get(reports::csv))
        .route("/app/static/app.css", get(pages::stylesheet))
        .route("/app/static/app.js", get(pages::script))
        .route("/app/events", get(pages::events))
        .route("/app/healthz", get(|| async { "ok" }))
        .with_state(web);
    for (name, value) in headers {
        router = router.layer(SetResponseHeaderLayer::if_not_present(name, HeaderValue::from_static(value)));
    }
    router
}
