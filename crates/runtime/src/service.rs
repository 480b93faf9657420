//! The shape every service crate has, so that its own binary and `helpdesk serve` start it the
//! same way: opened (database connected and migrated, state loaded) by the crate's `open`, then
//! its gRPC services added to a server, then its background work run until shutdown.

use std::{future::Future, sync::Arc};

use tonic::service::RoutesBuilder;

use crate::{
    auth::Authenticator,
    config::Config,
    db::Database,
    grpc::{Health, serve},
    shutdown::Shutdown,
};

pub trait Service: Send + Sized + 'static {
    /// The service's name, for logs and its service token.
    const NAME: &'static str;
    /// The fully qualified gRPC services it serves, for health reporting.
    const GRPC_SERVICES: &'static [&'static str];

    /// The database whose reachability its health follows.
    fn database(&self) -> &Database;

    /// Adds its gRPC services to `routes`.
    fn add_routes(&self, routes: &mut RoutesBuilder);

    /// Its background work (consumers, timers, the outbox relay) until `shutdown`.
    fn run(self, shutdown: Shutdown) -> impl Future<Output = ()> + Send + 'static;
}

/// What a service's own `main` does once the service is open: health for its gRPC services
/// (following its database), its routes (plus reflection, as configured) on the configured gRPC
/// address, and its background work until a signal; then health turns NOT_SERVING, calls drain
/// and the background work ends.
pub async fn run_alone<S: Service>(
    config: &Config,
    authenticator: Arc<Authenticator>,
    service: S,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut routes = RoutesBuilder::default();
    let health = Health::new(S::GRPC_SERVICES.to_vec(), &mut routes).await;
    service.add_routes(&mut routes);
    let listener = tokio::net::TcpListener::bind(config.grpc_addr).await?;
    tracing::info!(service = S::NAME, grpc_addr = %listener.local_addr()?, "serving");
    let shutdown = crate::shutdown::on_os_signal();
    health.watch(vec![service.database().clone()], shutdown.clone());
    let background = tokio::spawn(service.run(shutdown.clone()));
    serve(listener, routes, authenticator, health, &config.grpc, shutdown).await?;
    background.await?;
    Ok(())
}
