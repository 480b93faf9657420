//! The ticketing service on its own, for Kubernetes: API keys are resolved by the identity service.

use std::sync::Arc;

use helpdesk_identity::RemoteResolver;
use helpdesk_runtime::{
    auth::Authenticator,
    config::Config,
    grpc::{self, Health},
    shutdown, telemetry,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-ticketing");
    let bus = helpdesk_events::connect(&config.events).await?;
    let (ticketing, relay) = helpdesk_ticketing::open(&config, bus).await?;
    let identity = grpc::lazy_channel(&config.services.identity_url)?;
    let authenticator = Arc::new(Authenticator::new(&config.auth, Arc::new(RemoteResolver::new(identity)))?);
    let mut routes = tonic::service::RoutesBuilder::default();
    let health = Health::new(helpdesk_ticketing::GRPC_SERVICES.to_vec(), &mut routes).await;
    ticketing.add_routes(&mut routes);
    let listener = tokio::net::TcpListener::bind(config.grpc_addr).await?;
    tracing::info!(grpc_addr = %listener.local_addr()?, "ticketing serving");
    let shutdown = shutdown::on_os_signal();
    let relay = tokio::spawn(relay.run(shutdown.clone()));
    health.watch(vec![ticketing.database().clone()], shutdown.clone());
    grpc::serve(listener, routes, authenticator, health, shutdown).await?;
    relay.await?;
    Ok(())
}
