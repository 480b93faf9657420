//! The ticketing service: tickets and their conversations, customers, saved replies and custom
//! fields. Every change commits together with its history rows and outbox events.

mod attachments;
mod create;
mod customers;
mod fields;
mod grpc;
mod messages;
mod model;
mod replies;
mod store;
mod tickets;

use std::sync::Arc;

use helpdesk_events::{EventBus, relay::Relay};
use helpdesk_runtime::{
    config::Config,
    db::{Database, Migrations, Rebaselined},
    shutdown::Shutdown,
};
use tokio::sync::Notify;

static PORTABLE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub static MIGRATIONS: Migrations = Migrations {
    portable: &PORTABLE,
    sqlite: &SQLITE,
    postgres: &POSTGRES,
    shared: &[&helpdesk_events::outbox::MIGRATIONS],
    rebaselined: &Rebaselined::outbox_in_first(
        "486e4054b02828aeda43366c68346e65458accf4b86e38185b2a1b73cd93cdd726e2b396cf8c56da1ff14e58819988e6",
        "444e569f71d0692701001c3bcf407b9aec45ec85b1dfdaab73e920386edead1428cc707af914483846a631e9119f81a2",
    ),
};

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "ticketing";

/// Names this service's outbox relay lock on PostgreSQL.
pub const RELAY_LOCK_KEY: i64 = 0x7469_636b_6574;

/// The service's state, shared by its gRPC endpoints.
pub struct Ticketing {
    db: Database,
    attachments: attachments::Attachments,
    field_cache: fields::FieldCache,
    /// Queues ticket creations for group commit.
    creates: helpdesk_runtime::batch::Batcher<create::NewTicket, create::Created>,
    /// Wakes the outbox relay after a commit.
    events_written: Arc<Notify>,
}

impl Ticketing {
    fn new(db: Database, attachments: attachments::Attachments, events_written: Arc<Notify>) -> Arc<Self> {
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
        Arc::new(Self { db, attachments, events_written, creates, field_cache: fields::FieldCache::default() })
    }

    pub fn database(&self) -> &Database {
        &self.db
    }
}

/// The service: its state and the relay that publishes its events.
pub struct TicketingService {
    ticketing: Arc<Ticketing>,
    relay: Relay,
}

impl helpdesk_runtime::service::Service for TicketingService {
    const NAME: &'static str = "ticketing";
    const GRPC_SERVICES: &'static [&'static str] = &[
        "helpdesk.ticketing.v1.TicketService",
        "helpdesk.ticketing.v1.AttachmentService",
        "helpdesk.ticketing.v1.CustomerService",
        "helpdesk.ticketing.v1.SavedReplyService",
        "helpdesk.ticketing.v1.CustomFieldService",
    ];

    fn database(&self) -> &Database {
        self.ticketing.database()
    }

    fn add_routes(&self, routes: &mut tonic::service::RoutesBuilder) {
        grpc::add_routes(&self.ticketing, routes);
    }

    /// Runs the outbox relay until shutdown.
    async fn run(self, shutdown: Shutdown) {
        self.relay.run(shutdown).await;
    }
}

/// Connects the ticketing database, brings its schema up to date, and returns the service with
/// the relay that publishes its events to `bus`.
pub async fn open(config: &Config, bus: Arc<dyn EventBus>) -> Result<TicketingService, OpenError> {
    let db = Database::connect(&config.database, &config.data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    let attachments = attachments::Attachments {
        blobs: helpdesk_blobs::BlobStore::open(&config.attachments, &config.data_dir)?,
        max_file_bytes: config.attachments.max_file_bytes,
        max_message_bytes: config.attachments.max_message_bytes,
    };
    let events_written = Arc::new(Notify::new());
    let relay = Relay::new(db.clone(), bus, events_written.clone(), RELAY_LOCK_KEY);
    Ok(TicketingService { ticketing: Ticketing::new(db, attachments, events_written), relay })
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("ticketing database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ticketing migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("attachment store unusable: {0}")]
    Blobs(#[from] helpdesk_blobs::BlobError),
}
