//! The email service on its own, for Kubernetes: API keys are resolved by the identity service,
//! tickets are written to the ticketing service, acknowledgements ask routing for the SLA, and
//! each replica may take SMTP.

use std::sync::Arc;

use anyhow::Context;
use helpdesk_runtime::{auth::ServiceTokens, config::Config, grpc, service, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-email");
    let secret =
        config.auth.service_secret.as_ref().context("auth.service_secret must be set (shared with ticketing)")?;
    let bus = helpdesk_events::connect(&config).await?;
    let tokens = Arc::new(ServiceTokens::new("email", secret));
    let peers = helpdesk_email::Peers {
        ticketing: grpc::ServiceLink::new(grpc::lazy_channel(&config.services.ticketing_url)?, tokens.clone()),
        routing: grpc::ServiceLink::new(grpc::lazy_channel(&config.services.routing_url)?, tokens),
    };
    let email = helpdesk_email::open(&config, bus.as_ref(), peers).await?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "email", &bus)?;
    service::run_alone(&config, authenticator, email).await.map_err(anyhow::Error::from_boxed)
}
