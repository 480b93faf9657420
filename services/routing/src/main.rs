//! The routing service on its own, for Kubernetes: API keys are resolved by the identity service
//! and assignments are written to the ticketing service.

use std::sync::Arc;

use anyhow::Context;
use helpdesk_runtime::{auth::ServiceTokens, config::Config, grpc, service, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-routing");
    let secret =
        config.auth.service_secret.as_ref().context("auth.service_secret must be set (shared with ticketing)")?;
    let bus = helpdesk_events::connect(&config).await?;
    let ticketing = grpc::ServiceLink::new(
        grpc::lazy_channel(&config.services.ticketing_url)?,
        Arc::new(ServiceTokens::new("routing", secret)),
    );
    let routing = helpdesk_routing::open(&config, bus.clone(), ticketing).await?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "routing", &bus)?;
    service::run_alone(&config, authenticator, routing).await.map_err(anyhow::Error::from_boxed)
}
