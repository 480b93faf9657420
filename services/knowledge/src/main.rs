//! The knowledge-base service on its own, for Kubernetes: API keys are resolved by the identity
//! service. Replicas may run side by side; each follows the database.

use std::sync::Arc;

use anyhow::Context;
use helpdesk_runtime::{auth::ServiceTokens, config::Config, grpc, service, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-knowledge");
    let bus = helpdesk_events::connect(&config).await?;
    // Customers' segments come from ticketing, asked with the service's own token.
    let secret = config.auth.service_secret.as_ref().context("auth.service_secret must be set")?;
    let customers = Some(grpc::ServiceLink::new(
        grpc::lazy_channel(&config.services.ticketing_url)?,
        Arc::new(ServiceTokens::new("knowledge", secret)),
    ));
    let knowledge = helpdesk_knowledge::open(&config, bus.as_ref(), customers).await?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "knowledge", &bus)?;
    service::run_alone(&config, authenticator, knowledge).await.map_err(anyhow::Error::from_boxed)
}
