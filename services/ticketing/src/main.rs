//! The ticketing service on its own, for Kubernetes: API keys are resolved by the identity service.

use helpdesk_runtime::{config::Config, grpc, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-ticketing");
    let bus = helpdesk_events::connect(&config).await?;
    let (ticketing, relay) = helpdesk_ticketing::open(&config, bus.clone()).await?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "ticketing", &bus)?;
    let mut routes = tonic::service::RoutesBuilder::default();
    ticketing.add_routes(&mut routes);
    let databases = vec![ticketing.database().clone()];
    grpc::run_standalone(
        "ticketing",
        &config,
        authenticator,
        helpdesk_ticketing::GRPC_SERVICES.to_vec(),
        databases,
        routes,
        |shutdown| relay.run(shutdown),
    )
    .await
    .map_err(anyhow::Error::from_boxed)
}
