//! Authentication and rate limiting at the edge: per credential, and per client on the public
//! help center and survey links.

use std::{net::SocketAddr, num::NonZeroU32, sync::Arc};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{Quota, RateLimiter, clock::Clock, clock::DefaultClock, state::keyed::DefaultKeyedStateStore};
use helpdesk_runtime::{auth::Authenticator, config::GatewayConfig, grpc};

use crate::{AppState, error::ApiError};

pub(crate) struct Gatekeeper {
    authenticator: Arc<Authenticator>,
    limiter: RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
}

impl Gatekeeper {
    pub(crate) fn new(authenticator: Arc<Authenticator>, config: &GatewayConfig) -> Self {
        let per_second = NonZeroU32::new(config.rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(per_second);
        Self { authenticator, limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)) }
    }

    /// Takes one request from `key`'s budget, or says how long to wait.
    pub(crate) fn check(&self, key: &str) -> Result<(), ApiError> {
        let outcome = self.limiter.check_key(&key.to_owned());
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        outcome.map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::too_many_requests(wait.as_secs_f64().ceil() as u64)
        })
    }
}

/// The last `X-Forwarded-For` address (the one the nearest proxy, the ingress, appended: a client
/// can prepend any addresses it likes, but not that one), else the peer address.
pub(crate) fn client_address(request: &Request) -> String {
    let forwarded = request
        .headers()
        .get("x-forwarded-for")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .map(str::trim)
        .filter(|address| !address.is_empty());
    match forwarded {
        Some(address) => address.to_owned(),
        None => request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_owned(), |ConnectInfo(peer)| peer.ip().to_string()),
    }
}

/// The authenticated caller of a REST request, with the credential to forward to the services.
#[derive(Clone)]
pub(crate) struct Caller {
    authorization: String,
}

impl Caller {
    /// A gRPC request on the caller's behalf.
    pub(crate) fn request<T>(&self, message: T) -> tonic::Request<T> {
        grpc::outgoing(message, Some(&self.authorization))
    }
}

pub(crate) async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let authorization = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let principal = match state.auth.authenticator.authenticate(authorization.as_deref()).await {
        Ok(principal) => principal,
        Err(error) => return ApiError::from(error).into_response(),
    };
    if let Err(error) = state.auth.check(&format!("{}/{}", principal.tenant_id, principal.subject)) {
        return error.into_response();
    }
    request.extensions_mut().insert(Caller { authorization: authorization.unwrap_or_default() });
    next.run(request).await
}
