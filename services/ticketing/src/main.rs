//! The ticketing service on its own, for Kubernetes: API keys are resolved by the identity service.

use std::sync::Arc;

use helpdesk_identity::RemoteResolver;
use helpdesk_runtime::{auth::Authenticator, config::Config, grpc, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-ticketing");
    let bus = helpdesk_events::connect(&config.events).await?;
    let (ticketing, relay) = helpdesk_ticketing::open(&config, bus).await?;
    let identity = grpc::lazy_channel(&config.services.identity_url)?;
    let authenticator = Arc::new(Authenticator::new(&config.auth, Arc::new(RemoteResolver::new(identity)))?);
    let mut routes = tonic::service::RoutesBuilder::default();
    ticketing.add_routes(&mut routes);
    let databases = vec![ticketing.database().clone()];
    grpc::run_standalone(
        "ticketing",
        config.grpc_addr,
        authenticator,
        helpdesk_ticketing::GRPC_SERVICES.to_vec(),
        databases,
        routes,
        |shutdown| relay.run(shutdown),
    )
    .await
    .map_err(anyhow::Error::from_boxed)
}
