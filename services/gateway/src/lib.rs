//! The REST/JSON gateway for external clients (web widget, mobile apps, integrations). It
//! authenticates each request, applies a per-credential rate limit, and calls the gRPC services
//! with the caller's credentials and trace context. The public help center under `/v1/help` and
//! survey links under `/v1/surveys` need no credentials and are rate-limited per client address
//! instead.

mod auth;
mod dto;
mod error;
mod openapi;
mod rest;
mod routes;

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    http::{HeaderName, HeaderValue, Method, Request, StatusCode},
    middleware,
    response::IntoResponse,
    routing::get,
};
use helpdesk_proto::{
    email::v1::mail_intake_service_client::MailIntakeServiceClient,
    feedback::v1::{
        insights_service_client::InsightsServiceClient, survey_answer_service_client::SurveyAnswerServiceClient,
    },
    knowledge::v1::{
        help_center_service_client::HelpCenterServiceClient, knowledge_service_client::KnowledgeServiceClient,
    },
    ticketing::v1::{attachment_service_client::AttachmentServiceClient, ticket_service_client::TicketServiceClient},
};
use helpdesk_runtime::{
    auth::{Authenticator, PLATFORM_TENANT, ServiceTokens},
    config::GatewayConfig,
    telemetry,
};
use tonic::transport::Channel;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    trace::TraceLayer,
};

pub use openapi::openapi_json;

/// The query-string parsers, from raw text to the gRPC request, for the fuzz targets.
#[doc(hidden)]
pub mod fuzzing {
    use crate::dto;

    /// Parses `raw` as each list and report query; errors are the caller's 400s, and fine.
    pub fn parse_queries(raw: &str) {
        crate::rest::parse_queries(raw);
        if let Ok(query) = serde_urlencoded::from_str::<dto::ReportQuery>(raw) {
            let _ = query.into_proto(dto::ReportKind::Performance);
        }
        if let Ok(query) = serde_urlencoded::from_str::<dto::PublicSearchQuery>(raw) {
            let _ = query.into_proto("demo".to_owned());
        }
    }
}

/// Where the gateway finds the services it fronts, and the tokens it presents on public calls
/// (which the services then do not rate-limit: the gateway limits each of its clients itself).
pub struct Backends {
    pub ticketing: Channel,
    pub identity: Channel,
    pub routing: Channel,
    pub knowledge: Channel,
    pub feedback: Channel,
    pub email: Channel,
    pub tokens: Arc<ServiceTokens>,
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) tickets: TicketServiceClient<Channel>,
    pub(crate) attachments: AttachmentServiceClient<Channel>,
    pub(crate) knowledge: KnowledgeServiceClient<Channel>,
    pub(crate) help_center: HelpCenterServiceClient<Channel>,
    pub(crate) survey_answers: SurveyAnswerServiceClient<Channel>,
    pub(crate) insights: InsightsServiceClient<Channel>,
    pub(crate) mail_intake: MailIntakeServiceClient<Channel>,
    pub(crate) health: tonic_health::pb::health_client::HealthClient<Channel>,
    pub(crate) auth: Arc<auth::Gatekeeper>,
    pub(crate) tokens: Arc<ServiceTokens>,
}

impl AppState {
    /// A call to a public service on behalf of an anonymous client of the gateway.
    pub(crate) fn public_request<T>(&self, message: T) -> Result<tonic::Request<T>, error::ApiError> {
        Ok(helpdesk_runtime::grpc::outgoing(message, Some(&self.tokens.bearer(PLATFORM_TENANT)?)))
    }
}

/// The gateway's HTTP application; an error means the build's contract is broken.
pub fn router(config: &GatewayConfig, authenticator: Arc<Authenticator>, backends: Backends) -> anyhow::Result<Router> {
    let channels = HashMap::from([
        ("ticketing", backends.ticketing.clone()),
        ("identity", backends.identity.clone()),
        ("routing", backends.routing.clone()),
        ("knowledge", backends.knowledge.clone()),
        ("email", backends.email.clone()),
        ("feedback", backends.feedback.clone()),
    ]);
    let derived = rest::router(&channels).map_err(anyhow::Error::msg)?;
    let state = AppState {
        tickets: TicketServiceClient::new(backends.ticketing.clone()),
        attachments: AttachmentServiceClient::new(backends.ticketing.clone())
            .max_decoding_message_size(routes::attachments::MAX_FILE_BYTES + 64 * 1024),
        health: tonic_health::pb::health_client::HealthClient::new(backends.ticketing),
        knowledge: KnowledgeServiceClient::new(backends.knowledge.clone()),
        help_center: HelpCenterServiceClient::new(backends.knowledge),
        survey_answers: SurveyAnswerServiceClient::new(backends.feedback.clone()),
        insights: InsightsServiceClient::new(backends.feedback),
        mail_intake: MailIntakeServiceClient::new(backends.email.clone()),
        auth: Arc::new(auth::Gatekeeper::new(authenticator, config)),
        tokens: backends.tokens,
    };
    let request_id = HeaderName::from_static("x-request-id");
    let hand_written = routes::hand_written();
    let api = Router::from(hand_written.api)
        .merge(derived)
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let files = Router::from(hand_written.files)
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate))
        .layer(DefaultBodyLimit::max(routes::attachments::MAX_FILE_BYTES));
    let help_center = Router::from(hand_written.help_center)
        .route_layer(middleware::from_fn_with_state(state.clone(), routes::help_center::rate_limit))
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let surveys = Router::from(hand_written.surveys)
        .route_layer(middleware::from_fn_with_state(state.clone(), routes::surveys::rate_limit))
        .layer(DefaultBodyLimit::max(config.max_body_bytes));
    let inbound_mail = Router::from(hand_written.inbound_mail)
        .route_layer(middleware::from_fn_with_state(state.clone(), routes::inbound_mail::rate_limit))
        .layer(DefaultBodyLimit::max(routes::inbound_mail::MAX_MAIL_BYTES));
    Ok(Router::new()
        .merge(api)
        .merge(files)
        .route("/openapi.json", get(openapi::serve))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .merge(help_center)
        .merge(surveys)
        .merge(inbound_mail)
        .fallback(|| async { error::ApiError::new(helpdesk_runtime::ErrorKind::NotFound, "no such endpoint") })
        .with_state(state)
        .layer(middleware::from_fn(record_duration))
        .layer(cors(&config.cors_allowed_origins))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default();
            telemetry::http_span(request.method(), loggable_path(request.uri().path()), id, request.headers())
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid)))
}

/// The path as logs and traces show it: a survey link's token is a credential, so it is left out.
fn loggable_path(path: &str) -> &str {
    if path.starts_with("/v1/surveys/") { "/v1/surveys/{token}" } else { path }
}

/// Records each request's duration by route template, method and status.
async fn record_duration(request: axum::extract::Request, next: middleware::Next) -> axum::response::Response {
    let started = std::time::Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(request).await;
    telemetry::request_metrics().record_http(
        method.as_str(),
        &route,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}

/// Ready when the ticketing service reports SERVING.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let mut health = state.health.clone();
    let request = tonic_health::pb::HealthCheckRequest { service: String::new() };
    match tokio::time::timeout(Duration::from_secs(2), health.check(request)).await {
        Ok(Ok(response))
            if response.get_ref().status == tonic_health::pb::health_check_response::ServingStatus::Serving as i32 =>
        {
            (StatusCode::OK, "ready")
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, "not ready"),
    }
}

fn cors(origins: &[String]) -> CorsLayer {
    let layer = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::PATCH, Method::PUT, Method::DELETE])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([HeaderName::from_static("x-request-id"), axum::http::header::RETRY_AFTER]);
    if origins.iter().any(|origin| origin == "*") {
        layer.allow_origin(AllowOrigin::any())
    } else {
        let origins: Vec<HeaderValue> = origins.iter().filter_map(|origin| origin.parse().ok()).collect();
        layer.allow_origin(AllowOrigin::list(origins))
    }
}
