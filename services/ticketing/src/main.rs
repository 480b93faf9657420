//! The ticketing service on its own, for Kubernetes: API keys are resolved by the identity service.

use helpdesk_runtime::{config::Config, service, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-ticketing");
    let bus = helpdesk_events::connect(&config).await?;
    let ticketing = helpdesk_ticketing::open(&config, bus.clone()).await?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "ticketing", &bus)?;
    service::run_alone(&config, authenticator, ticketing).await.map_err(anyhow::Error::from_boxed)
}
