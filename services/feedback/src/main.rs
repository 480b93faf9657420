//! The feedback service on its own, for Kubernetes: API keys are resolved by the identity
//! service; survey links and follow-ups are written to ticketing, supervisors read from routing.

use std::sync::Arc;

use anyhow::Context;
use helpdesk_feedback::Peers;
use helpdesk_runtime::{auth::ServiceTokens, config::Config, grpc, service, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-feedback");
    let secret = config
        .auth
        .service_secret
        .as_ref()
        .context("auth.service_secret must be set (shared with ticketing and routing)")?;
    let bus = helpdesk_events::connect(&config).await?;
    let tokens = Arc::new(ServiceTokens::new("feedback", secret));
    let peers = Peers {
        ticketing: grpc::ServiceLink::new(grpc::lazy_channel(&config.services.ticketing_url)?, tokens.clone()),
        routing: grpc::ServiceLink::new(grpc::lazy_channel(&config.services.routing_url)?, tokens),
    };
    let public_url = config
        .feedback
        .public_url
        .as_deref()
        .context("feedback.public_url must be set: the gateway's address as customers reach it")?;
    let feedback = helpdesk_feedback::open(&config, public_url, bus.clone(), peers).await?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "feedback", &bus)?;
    service::run_alone(&config, authenticator, feedback).await.map_err(anyhow::Error::from_boxed)
}
