//! The identity service: tenants and their API keys. Keys are stored only as hashes; other
//! services resolve a presented key through [`LocalResolver`] (same process) or
//! [`RemoteResolver`] (over gRPC).

mod resolver;
mod service;
mod store;

pub use resolver::{LocalResolver, RemoteResolver};
pub use service::IdentityGrpc;
pub use store::{IdentityStore, IssuedKey, validate_tenant_id};

use helpdesk_runtime::db::Migrations;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The schema is portable, so both backends run the same migrations.
pub static MIGRATIONS: Migrations = Migrations { sqlite: &MIGRATOR, postgres: &MIGRATOR };

/// The tenant that `HELPDESK_BOOTSTRAP_API_KEY` (and the demo) set up.
pub const BOOTSTRAP_TENANT: &str = "demo";

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "identity";

/// Connects the identity database and brings its schema up to date.
pub async fn open(config: &helpdesk_runtime::config::Config) -> Result<IdentityStore, OpenError> {
    let db = helpdesk_runtime::db::Database::connect(&config.database, &config.data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    Ok(IdentityStore::new(db))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("identity database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("identity migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
