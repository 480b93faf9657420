//! Authentication and rate limiting at the edge: per credential, and per client on the public
//! help center and survey links.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
};

use axum::{
    extract::{ConnectInfo, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use governor::{Quota, RateLimiter, clock::Clock, clock::DefaultClock, state::keyed::DefaultKeyedStateStore};
use helpdesk_runtime::{auth::Authenticator, config::GatewayConfig, grpc, net::IpRange};

use crate::{AppState, error::ApiError};

pub(crate) struct Gatekeeper {
    authenticator: Arc<Authenticator>,
    limiter: RateLimiter<String, DefaultKeyedStateStore<String>, DefaultClock>,
    /// Votes of the public help center per client address: they weigh in ranking.
    votes: RateLimiter<IpAddr, DefaultKeyedStateStore<IpAddr>, DefaultClock>,
    trusted_proxies: Vec<IpRange>,
}

/// How many help-center votes one client address may cast a minute.
const VOTES_PER_MINUTE: u32 = 10;

impl Gatekeeper {
    pub(crate) fn new(authenticator: Arc<Authenticator>, config: &GatewayConfig) -> Self {
        let per_second = NonZeroU32::new(config.rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(per_second);
        Self {
            authenticator,
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            votes: RateLimiter::keyed(Quota::per_minute(NonZeroU32::new(VOTES_PER_MINUTE).unwrap_or(NonZeroU32::MIN))),
            trusted_proxies: config.trusted_proxy_ranges(),
        }
    }

    /// Takes one vote from `client`'s budget, or says how long to wait.
    pub(crate) fn check_vote(&self, client: IpAddr) -> Result<(), ApiError> {
        take(&self.votes, client)
    }

    /// The client's address: the peer's, or the one the trusted proxies in front of us saw.
    pub(crate) fn client_address(&self, request: &Request) -> IpAddr {
        let peer = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(peer)| peer.ip());
        let forwarded = request.headers().get("x-forwarded-for").and_then(|value| value.to_str().ok());
        helpdesk_runtime::net::client_address(peer, forwarded, &self.trusted_proxies)
    }

    /// Takes one request from `key`'s budget, or says how long to wait.
    pub(crate) fn check(&self, key: &str) -> Result<(), ApiError> {
        take(&self.limiter, key.to_owned())
    }

    /// Takes one request from the budget of the client of `request` within `scope` (the help
    /// center of a tenant, survey links), before anything else; returns the client.
    pub(crate) fn check_client(&self, scope: &str, request: &Request) -> Result<IpAddr, ApiError> {
        let client = self.client_address(request);
        self.check(&format!("{scope}/{client}"))?;
        Ok(client)
    }
}

/// Takes one from `key`'s budget in `limiter`, or says how long to wait; forgets idle keys once
/// there are many, so that a flood of addresses cannot grow the table without bound.
fn take<K: Clone + Eq + std::hash::Hash>(
    limiter: &RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>,
    key: K,
) -> Result<(), ApiError> {
    let outcome = limiter.check_key(&key);
    if limiter.len() > 100_000 {
        limiter.retain_recent();
    }
    outcome.map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::too_many_requests(wait.as_secs_f64().ceil() as u64)
    })
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
    let client = state.auth.client_address(&request);
    let principal = match state.auth.authenticator.authenticate(authorization.as_deref(), Some(client)).await {
        Ok(principal) => principal,
        Err(error) => return ApiError::from(error).into_response(),
    };
    if let Err(error) = state.auth.check(&format!("{}/{}", principal.tenant_id, principal.subject)) {
        return error.into_response();
    }
    request.extensions_mut().insert(Caller { authorization: authorization.unwrap_or_default() });
    next.run(request).await
}
