//! The identity service on its own, for Kubernetes.

use std::sync::Arc;

use helpdesk_identity::LocalResolver;
use helpdesk_runtime::{
    auth::{Authenticator, Role},
    config::Config,
    service, shutdown, telemetry,
};
use secrecy::ExposeSecret;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-identity");
    let bus = helpdesk_events::connect(&config).await?;
    let identity = helpdesk_identity::open(&config, bus.clone()).await?;
    let store = identity.store();
    if let Some(key) = &config.bootstrap_api_key {
        store.ensure_tenant(helpdesk_identity::BOOTSTRAP_TENANT, "Demo").await?;
        store
            .import_api_key(helpdesk_identity::BOOTSTRAP_TENANT, "bootstrap admin", Role::Admin, key.expose_secret())
            .await?;
    }
    let authenticator = Arc::new(Authenticator::new(&config.auth, Arc::new(LocalResolver(store.clone()))));
    helpdesk_identity::follow_revocations(bus, authenticator.clone(), shutdown::on_os_signal());
    service::run_alone(&config, authenticator, identity).await.map_err(anyhow::Error::from_boxed)
}
