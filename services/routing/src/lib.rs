//! The routing and escalation service: tickets reach an agent with the skills, language and
//! capacity for them; SLA targets run in business hours; agreed escalation paths fire on time.
//! It consumes ticketing's events and writes assignments back to ticketing over gRPC.

mod agents;
mod consumer;
mod engine;
mod escalation;
mod grpc;
mod queues;
mod router;
mod service_levels;
mod sla;
mod store;
mod sync;
mod time;
mod validate;
mod work_items;

use std::{path::Path, sync::Arc};

use helpdesk_events::{EventBus, EventStream, relay::Relay};
use helpdesk_runtime::{
    config::{Config, DatabaseConfig},
    db::{Database, Migrations, Rebaselined},
    shutdown::Shutdown,
};
use tokio::sync::Notify;

pub use helpdesk_runtime::grpc::ServiceLink;
pub use router::{Router, RouterSettings};

/// Maps and sets of the in-memory routing state: keyed by ids and looked up on every decision,
/// so hashed with foldhash (seeded per process) rather than SipHash.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub static MIGRATIONS: Migrations = Migrations {
    portable: &Migrations::NONE,
    sqlite: &SQLITE,
    postgres: &POSTGRES,
    shared: &[&helpdesk_events::outbox::MIGRATIONS],
    rebaselined: &Rebaselined::outbox_in_first(
        "f32e8e6ae8a311a606f4ee979560f98fa812c5e23d27b6e886f4256e9bb5d850f1c725d9d40e2dca3242c75c45c078ad",
        "72250b974bf7ced045e90b0c8c2695ef3859a50fe735d9290b5cdf152be10b601371f8038445fab16f3fcf411d9f0cc2",
    ),
};

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "routing";

/// Names this service's outbox relay lock on PostgreSQL.
pub const RELAY_LOCK_KEY: i64 = 0x726f_7574_6520;

/// Who routing's own changes are attributed to, in tickets' history and events.
pub const SERVICE_SUBJECT: &str = "service:routing";

/// The service, loaded and subscribed, ready to serve.
pub struct RoutingService {
    router: Arc<Router>,
    relay: Relay,
    events: EventStream,
    ticketing: ServiceLink,
}

impl RoutingService {
    pub fn router(&self) -> &Arc<Router> {
        &self.router
    }
}

impl helpdesk_runtime::service::Service for RoutingService {
    const NAME: &'static str = "routing";
    const GRPC_SERVICES: &'static [&'static str] =
        &["helpdesk.routing.v1.RoutingService", "helpdesk.routing.v1.SlaService"];

    fn database(&self) -> &Database {
        self.router.database()
    }

    fn add_routes(&self, routes: &mut tonic::service::RoutesBuilder) {
        grpc::add_routes(&self.router, routes);
    }

    /// Runs the timers, the event consumer, the write-back to ticketing and the outbox relay
    /// until shutdown.
    async fn run(self, shutdown: Shutdown) {
        let timers = tokio::spawn(self.router.clone().run(shutdown.clone()));
        let consumer =
            tokio::spawn(consumer::run(self.router.clone(), self.ticketing.clone(), self.events, shutdown.clone()));
        let catch_up = tokio::spawn(consumer::reconcile(self.router.clone(), self.ticketing.clone(), shutdown.clone()));
        let sync = tokio::spawn(sync::run(self.router.clone(), self.ticketing, shutdown.clone()));
        let relay = tokio::spawn(self.relay.run(shutdown));
        let tasks =
            [("timers", timers), ("consumer", consumer), ("catch-up", catch_up), ("sync", sync), ("relay", relay)];
        for (name, task) in tasks {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "routing task failed");
            }
        }
    }
}

/// Connects the routing database, brings its schema up to date, loads the open work into memory
/// and subscribes to ticketing's events (before anything is published, for the in-process bus).
pub async fn open(
    config: &Config,
    bus: Arc<dyn EventBus>,
    ticketing: ServiceLink,
) -> Result<RoutingService, OpenError> {
    let router = open_router(&config.database, &config.data_dir, RouterSettings::default()).await?;
    let relay = Relay::new(router.database().clone(), bus.clone(), router.events_written.clone(), RELAY_LOCK_KEY);
    let events = consumer::subscribe(bus.as_ref()).await?;
    Ok(RoutingService { router, relay, events, ticketing })
}

/// The router alone, on its migrated database with its state loaded: for tests and benchmarks,
/// and the first step of [`open`].
pub async fn open_router(
    database: &DatabaseConfig,
    data_dir: &Path,
    settings: RouterSettings,
) -> Result<Arc<Router>, OpenError> {
    let db = Database::connect(database, data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    let router = Router::new(db, Arc::new(Notify::new()), settings);
    router.load().await.map_err(|error| OpenError::Load(error.message))?;
    Ok(router)
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("routing database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("routing migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("routing state could not be loaded: {0}")]
    Load(String),
    #[error("event bus: {0}")]
    Bus(#[from] helpdesk_events::BusError),
}
