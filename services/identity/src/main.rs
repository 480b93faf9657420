//! The identity service on its own, for Kubernetes.

use std::sync::Arc;

use helpdesk_identity::{IdentityGrpc, LocalResolver};
use helpdesk_runtime::{
    auth::{Authenticator, Role},
    config::Config,
    grpc, telemetry,
};
use secrecy::ExposeSecret;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-identity");
    let store = helpdesk_identity::open(&config).await?;
    if let Some(key) = &config.bootstrap_api_key {
        store.ensure_tenant(helpdesk_identity::BOOTSTRAP_TENANT, "Demo").await?;
        store
            .import_api_key(helpdesk_identity::BOOTSTRAP_TENANT, "bootstrap admin", Role::Admin, key.expose_secret())
            .await?;
    }
    let databases = vec![store.database().clone()];
    let bus = helpdesk_events::connect(&config).await?;
    let authenticator = Arc::new(Authenticator::new(&config.auth, Arc::new(LocalResolver(store.clone()))));
    let mut routes = tonic::service::RoutesBuilder::default();
    routes.add_service(IdentityGrpc::new(store, bus.clone()).into_server());
    let follower = authenticator.clone();
    grpc::run_standalone(
        "identity",
        &config,
        authenticator,
        vec!["helpdesk.identity.v1.IdentityService"],
        databases,
        routes,
        |shutdown| async move { helpdesk_identity::follow_revocations(bus, follower, shutdown) },
    )
    .await
    .map_err(anyhow::Error::from_boxed)
}
