//! The identity service: tenants, their API keys (stored only as hashes) and the keys that sign
//! their JWTs. Other services resolve a presented credential through [`LocalResolver`] (same
//! process) or [`RemoteResolver`] (over gRPC).

mod accounts;
mod grpc;
mod resolver;
mod store;
pub mod tokens;

pub use accounts::{Account, AccountChange, OpenedSession};
pub use resolver::{LocalResolver, RemoteResolver};
pub use store::{IdentityStore, IssuedKey, validate_tenant_id};

use std::sync::Arc;

use helpdesk_events::EventBus;
use helpdesk_runtime::{
    db::{Database, Migrations},
    shutdown::Shutdown,
};

static PORTABLE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema is portable, so both backends run the same migrations.
pub static MIGRATIONS: Migrations = Migrations {
    portable: &PORTABLE,
    sqlite: &Migrations::NONE,
    postgres: &Migrations::NONE,
    shared: &[],
    rebaselined: &[],
};

/// The tenant that `HELPDESK_BOOTSTRAP_API_KEY` (and the demo) set up.
pub const BOOTSTRAP_TENANT: &str = "demo";

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "identity";

/// The service: tenants and keys on the database, revocations announced on the bus so that
/// every authenticator forgets them at once.
pub struct IdentityService {
    store: IdentityStore,
    bus: Arc<dyn EventBus>,
}

impl IdentityService {
    pub fn store(&self) -> &IdentityStore {
        &self.store
    }
}

impl helpdesk_runtime::service::Service for IdentityService {
    const NAME: &'static str = "identity";
    const GRPC_SERVICES: &'static [&'static str] = &["helpdesk.identity.v1.IdentityService"];

    fn database(&self) -> &Database {
        self.store.database()
    }

    fn add_routes(&self, routes: &mut tonic::service::RoutesBuilder) {
        routes.add_service(grpc::IdentityGrpc::new(self.store.clone(), self.bus.clone()).into_server());
    }

    /// Nothing runs in the background: every change is a call.
    async fn run(self, _shutdown: Shutdown) {}
}

/// Opens the store and announces revocations on `bus`.
pub async fn open(
    config: &helpdesk_runtime::config::Config,
    bus: Arc<dyn EventBus>,
) -> Result<IdentityService, OpenError> {
    Ok(IdentityService { store: open_store(config).await?, bus })
}

/// Connects the identity database and brings its schema up to date: the store alone, for admin
/// commands and the first step of [`open`].
pub async fn open_store(config: &helpdesk_runtime::config::Config) -> Result<IdentityStore, OpenError> {
    let db = helpdesk_runtime::db::Database::connect(&config.database, &config.data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    Ok(IdentityStore::new(db, config.auth.jwt_leeway_seconds))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("identity database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("identity migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("auth.service_secret must be set: services that run apart ask identity with their own tokens")]
    ServiceSecret,
    #[error("services.identity_url is invalid: {0}")]
    IdentityUrl(String),
}

/// The authenticator of a service deployed on its own: credentials are resolved by the identity
/// service at `services.identity_url`, which the service asks with its own token, so the service
/// secret must be configured; revocations announced on `bus` are forgotten at once.
pub fn remote_authenticator(
    config: &helpdesk_runtime::config::Config,
    service: &str,
    bus: &std::sync::Arc<dyn helpdesk_events::EventBus>,
) -> Result<std::sync::Arc<helpdesk_runtime::auth::Authenticator>, OpenError> {
    let secret = config.auth.service_secret.as_ref().ok_or(OpenError::ServiceSecret)?;
    let channel = helpdesk_runtime::grpc::lazy_channel(&config.services.identity_url)
        .map_err(|error| OpenError::IdentityUrl(error.to_string()))?;
    let tokens = std::sync::Arc::new(helpdesk_runtime::auth::ServiceTokens::new(service, secret));
    let resolver = RemoteResolver::new(helpdesk_runtime::grpc::ServiceLink::new(channel, tokens));
    let authenticator =
        std::sync::Arc::new(helpdesk_runtime::auth::Authenticator::new(&config.auth, std::sync::Arc::new(resolver)));
    follow_revocations(bus.clone(), authenticator.clone(), helpdesk_runtime::shutdown::on_os_signal());
    Ok(authenticator)
}

/// Makes `authenticator` forget every resolved credential whenever identity announces a
/// revocation on `bus`, until `shutdown`. Should the announcements stop (the bus away, or this
/// process too slow to keep up), it forgets everything too, to be safe.
pub fn follow_revocations(
    bus: std::sync::Arc<dyn helpdesk_events::EventBus>,
    authenticator: std::sync::Arc<helpdesk_runtime::auth::Authenticator>,
    shutdown: helpdesk_runtime::shutdown::Shutdown,
) {
    use futures::StreamExt;
    tokio::spawn(async move {
        loop {
            match bus.tail("*.credential.>").await {
                Ok(mut revocations) => loop {
                    tokio::select! {
                        next = revocations.next() => match next {
                            Some(Ok(_)) => authenticator.forget_credentials(),
                            Some(Err(error)) => {
                                tracing::warn!(%error, "revocations may have been missed; forgetting every credential");
                                authenticator.forget_credentials();
                            }
                            None => break,
                        },
                        () = shutdown.clone().wait() => return,
                    }
                },
                Err(error) => tracing::warn!(%error, "cannot follow revocations; retrying"),
            }
            authenticator.forget_credentials();
            tokio::select! {
                () = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                () = shutdown.clone().wait() => return,
            }
        }
    });
}
