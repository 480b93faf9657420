//! The knowledge-base service: articles in Korean and English with versions, translations,
//! categories and a publishing workflow; full-text search per tenant and locale on embedded
//! tantivy indexes; answer suggestions for tickets and contact forms; and the learning loop that
//! reports what customers look for and do not find.

mod analysis;
mod articles;
mod categories;
mod follow;
mod gaps;
mod grpc;
mod index;
pub mod markdown;
mod model;
mod revisions;
mod search;
mod segments;
mod service;
mod store;
mod suggest;
mod synonyms;
mod tickets;
mod votes;

use std::{path::Path, sync::Arc};

use helpdesk_events::{EventBus, EventStream};
use helpdesk_runtime::{
    config::{Config, DatabaseConfig},
    db::{Database, Migrations},
    shutdown::Shutdown,
};

pub use model::Audience;
pub use service::Knowledge;
pub use suggest::{CONFIDENCE_PIVOT, MIN_CONFIDENCE, Scored};

/// Maps keyed by ids and terms, looked up on every query: foldhash rather than SipHash.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub static MIGRATIONS: Migrations =
    Migrations { portable: &Migrations::NONE, sqlite: &SQLITE, postgres: &POSTGRES, shared: &[], rebaselined: &[] };

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "knowledge";

/// The service, with its indexes built from the database, ready to serve.
pub struct KnowledgeService {
    knowledge: Arc<Knowledge>,
    indexes: Arc<index::Indexes>,
    activity: gaps::Activity,
    /// Ticket events, when subscribed ([`open`] does; tests and benchmarks need not).
    tickets: Option<EventStream>,
    segments: Arc<segments::Segments>,
}

impl KnowledgeService {
    pub fn knowledge(&self) -> &Arc<Knowledge> {
        &self.knowledge
    }
}

impl helpdesk_runtime::service::Service for KnowledgeService {
    const NAME: &'static str = "knowledge";
    const GRPC_SERVICES: &'static [&'static str] =
        &["helpdesk.knowledge.v1.KnowledgeService", "helpdesk.knowledge.v1.HelpCenterService"];

    fn database(&self) -> &Database {
        self.knowledge.database()
    }

    fn add_routes(&self, routes: &mut tonic::service::RoutesBuilder) {
        grpc::add_routes(&self.knowledge, &self.segments, routes);
    }

    /// Follows other replicas' changes, writes search logs and checks new tickets until
    /// shutdown.
    async fn run(self, shutdown: Shutdown) {
        let follow = tokio::spawn(follow::run(self.knowledge.database().clone(), self.indexes, shutdown.clone()));
        let activity = tokio::spawn(self.activity.run(shutdown.clone()));
        let tickets = tokio::spawn(async move {
            if let Some(events) = self.tickets {
                tickets::run(self.knowledge, events, shutdown).await;
            }
        });
        for (name, task) in [("follow", follow), ("activity", activity), ("tickets", tickets)] {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "knowledge task failed");
            }
        }
    }
}

/// Connects the knowledge database, brings its schema up to date, builds the search indexes
/// from it and subscribes to ticketing's events (before anything is published, for the
/// in-process bus). Without a link to ticketing's customers, restricted articles are for staff
/// only.
pub async fn open(
    config: &Config,
    bus: &dyn EventBus,
    customers: Option<helpdesk_runtime::grpc::ServiceLink>,
) -> Result<KnowledgeService, OpenError> {
    let mut base = open_database(&config.database, &config.data_dir).await?;
    base.activity = base.activity.with_retention(config.knowledge.search_log_retention_days);
    base.tickets = Some(tickets::subscribe(bus).await?);
    base.segments = Arc::new(segments::Segments::new(customers));
    Ok(base)
}

/// How long tests and benchmarks keep searches and clicks.
const DEFAULT_RETENTION_DAYS: u32 = 180;

/// [`open`] from the database settings alone: for tests, benchmarks and the evaluation.
pub async fn open_database(database: &DatabaseConfig, data_dir: &Path) -> Result<KnowledgeService, OpenError> {
    let db = Database::connect(database, data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    let indexes = Arc::new(index::Indexes::default());
    let started = std::time::Instant::now();
    let articles = follow::rebuild(&db, &indexes, None).await.map_err(|error| OpenError::Index(error.message))?;
    tracing::info!(articles, seconds = started.elapsed().as_secs_f64(), "knowledge indexes built");
    let activity = gaps::Activity::new(db.clone()).with_retention(DEFAULT_RETENTION_DAYS);
    let knowledge = Arc::new(Knowledge::new(db, indexes.clone(), activity.clone()));
    Ok(KnowledgeService { knowledge, indexes, activity, tickets: None, segments: Arc::default() })
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("knowledge database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("knowledge migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("knowledge indexes could not be built: {0}")]
    Index(String),
    #[error("event bus: {0}")]
    Bus(#[from] helpdesk_events::BusError),
}
