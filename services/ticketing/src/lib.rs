//! The ticketing service: tickets and their conversations, customers, saved replies and custom
//! fields. Every change commits together with its history rows and outbox events.

mod create;
mod customers;
mod fields;
mod grpc;
mod messages;
mod model;
mod query;
mod replies;
mod search;
mod tickets;

use std::sync::Arc;

use helpdesk_events::{EventBus, relay::Relay};
use helpdesk_runtime::{
    config::Config,
    db::{Database, Migrations},
};
use tokio::sync::Notify;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub static MIGRATIONS: Migrations = Migrations { sqlite: &SQLITE, postgres: &POSTGRES };

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "ticketing";

/// Names this service's outbox relay lock on PostgreSQL.
pub const RELAY_LOCK_KEY: i64 = 0x7469_636b_6574;

/// The gRPC services this crate serves, for health reporting.
pub const GRPC_SERVICES: &[&str] = &[
    "helpdesk.ticketing.v1.TicketService",
    "helpdesk.ticketing.v1.CustomerService",
    "helpdesk.ticketing.v1.SavedReplyService",
    "helpdesk.ticketing.v1.CustomFieldService",
];

/// The service's state, shared by its gRPC endpoints.
pub struct Ticketing {
    db: Database,
    field_cache: fields::FieldCache,
    /// Queues ticket creations for group commit.
    creates: helpdesk_runtime::batch::Batcher<create::NewTicket, create::Created>,
    /// Wakes the outbox relay after a commit.
    events_written: Arc<Notify>,
}

impl Ticketing {
    pub fn new(db: Database, events_written: Arc<Notify>) -> Arc<Self> {
        let writer = db.clone();
        // SQLite has one writer; PostgreSQL commits several batches at once.
        let workers = match db.backend() {
            helpdesk_runtime::db::Backend::Sqlite => 1,
            helpdesk_runtime::db::Backend::Postgres => 4,
        };
        let creates = helpdesk_runtime::batch::Batcher::spawn(create::MAX_BATCH, workers, move |jobs| {
            let db = writer.clone();
            Box::pin(async move { create::write_tickets(&db, jobs).await })
        });
        Arc::new(Self { db, events_written, creates, field_cache: fields::FieldCache::default() })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Adds the four ticketing gRPC services to `routes`.
    pub fn add_routes(self: &Arc<Self>, routes: &mut tonic::service::RoutesBuilder) {
        grpc::add_routes(self, routes);
    }
}

/// Connects the ticketing database, brings its schema up to date, and returns the service with
/// the relay that publishes its events to `bus`.
pub async fn open(config: &Config, bus: Arc<dyn EventBus>) -> Result<(Arc<Ticketing>, Relay), OpenError> {
    let db = Database::connect(&config.database, &config.data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    let events_written = Arc::new(Notify::new());
    let relay = Relay::new(db.clone(), bus, events_written.clone(), RELAY_LOCK_KEY);
    Ok((Ticketing::new(db, events_written), relay))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("ticketing database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ticketing migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}
