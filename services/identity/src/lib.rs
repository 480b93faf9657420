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
pub static MIGRATIONS: Migrations = Migrations {
    sqlite: &MIGRATOR,
    postgres: &MIGRATOR,
};

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "identity";
