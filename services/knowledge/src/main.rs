//! The knowledge-base service on its own, for Kubernetes: API keys are resolved by the identity
//! service. Replicas may run side by side; each follows the database.

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
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-knowledge");
    let bus = helpdesk_events::connect(&config.events).await?;
    let knowledge = helpdesk_knowledge::open(&config, bus.as_ref()).await?;
    let identity = grpc::lazy_channel(&config.services.identity_url)?;
    let authenticator = Arc::new(Authenticator::new(&config.auth, Arc::new(RemoteResolver::new(identity)))?);
    let mut routes = tonic::service::RoutesBuilder::default();
    let health = Health::new(helpdesk_knowledge::GRPC_SERVICES.to_vec(), &mut routes).await;
    knowledge.add_routes(&mut routes);
    let listener = tokio::net::TcpListener::bind(config.grpc_addr).await?;
    tracing::info!(grpc_addr = %listener.local_addr()?, "knowledge serving");
    let shutdown = shutdown::on_os_signal();
    health.watch(vec![knowledge.database().clone()], shutdown.clone());
    let background = tokio::spawn(knowledge.run(shutdown.clone()));
    grpc::serve(listener, routes, authenticator, health, shutdown).await?;
    background.await?;
    Ok(())
}
