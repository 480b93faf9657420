//! The feedback and insights service: CSAT, NPS and CES surveys sent when tickets are solved,
//! answered through signed links; unhappy answers opened as follow-ups for the team lead in
//! ticketing; "you said, we did" announcements; and reports over projections of ticketing's,
//! routing's and feedback's events.

mod announcements;
mod delivery;
mod follow_ups;
mod grpc;
mod insights;
mod invitations;
mod model;
mod responses;
mod store;
mod surveys;
pub mod token;
mod trigger;

use std::{path::Path, sync::Arc};

use helpdesk_events::{EventBus, EventStream, relay::Relay};
use helpdesk_runtime::{
    config::{Config, DatabaseConfig},
    db::{Database, Migrations, Rebaselined},
    shutdown::Shutdown,
};
use tokio::sync::Notify;

use crate::{store::Store, token::LinkSigner};

pub use delivery::{CARRIER_TAG, FOLLOW_UP_TAG};
pub use insights::{
    Insights, Rebuilt,
    reports::{Cell, Scope, Table},
};

/// Maps and sets keyed by ids and names, looked up for every event: foldhash, not SipHash.
pub(crate) type Map<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
pub(crate) type Set<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

static PORTABLE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub static MIGRATIONS: Migrations = Migrations {
    portable: &PORTABLE,
    sqlite: &SQLITE,
    postgres: &POSTGRES,
    shared: &[&helpdesk_events::outbox::MIGRATIONS],
    rebaselined: &Rebaselined::outbox_in_first(
        "854b08156f330ed672b698de954e1c62c3b4927dbf6c4c95fbdb8e92b02d207056b71e188fe95dd30baf7133b3dfdd40",
        "9599f030601e21084628b2c0b2e176aa7e35262571f7cb2f64ed626c8dcb28bd8346adcc0e3b5fe154c1f0c9fe5f4c63",
    ),
};

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "feedback";

/// Names this service's outbox relay lock on PostgreSQL.
pub const RELAY_LOCK_KEY: i64 = 0x6665_6564_6261;

/// Surveys, invitations, answers, follow-ups and announcements, one module each over the store:
/// every write is one transaction with the events it causes, so an accepted answer and its
/// follow-up are never lost or doubled.
pub struct Feedback {
    store: Store,
    signer: LinkSigner,
    /// Where customers reach the gateway, for survey links.
    public_url: String,
    pub(crate) events_written: Arc<Notify>,
    pub(crate) delivery_wake: Arc<Notify>,
}

impl Feedback {
    pub(crate) fn new(store: Store, signing_key: &[u8], public_url: &str) -> Self {
        Self {
            store,
            signer: LinkSigner::new(signing_key),
            public_url: public_url.trim_end_matches('/').to_owned(),
            events_written: Arc::new(Notify::new()),
            delivery_wake: Arc::new(Notify::new()),
        }
    }

    pub fn database(&self) -> &Database {
        self.store.database()
    }
}

pub use helpdesk_runtime::grpc::Peers;

/// The service: surveys and follow-ups on the database, projections loaded from the event log.
pub struct FeedbackService {
    feedback: Arc<Feedback>,
    insights: Arc<Insights>,
    relay: Relay,
    /// Absent for tests and benchmarks that drive the service directly.
    wiring: Option<Wiring>,
}

struct Wiring {
    peers: Peers,
    solved: EventStream,
    all_events: EventStream,
}

impl FeedbackService {
    pub fn feedback(&self) -> &Arc<Feedback> {
        &self.feedback
    }

    pub fn insights(&self) -> &Arc<Insights> {
        &self.insights
    }
}

impl helpdesk_runtime::service::Service for FeedbackService {
    const NAME: &'static str = "feedback";
    const GRPC_SERVICES: &'static [&'static str] = &[
        "helpdesk.feedback.v1.FeedbackService",
        "helpdesk.feedback.v1.SurveyAnswerService",
        "helpdesk.feedback.v1.InsightsService",
    ];

    fn database(&self) -> &Database {
        self.feedback.database()
    }

    fn add_routes(&self, routes: &mut tonic::service::RoutesBuilder) {
        grpc::add_routes(&self.feedback, &self.insights, routes);
    }

    /// Runs the survey trigger, delivery to ticketing, event recording and the outbox relay
    /// until shutdown.
    async fn run(self, shutdown: Shutdown) {
        let mut tasks = vec![("relay", tokio::spawn(self.relay.run(shutdown.clone())))];
        if let Some(wiring) = self.wiring {
            tasks.push((
                "trigger",
                tokio::spawn(trigger::run(
                    self.feedback.clone(),
                    wiring.peers.clone(),
                    wiring.solved,
                    shutdown.clone(),
                )),
            ));
            tasks
                .push(("delivery", tokio::spawn(delivery::run(self.feedback.clone(), wiring.peers, shutdown.clone()))));
            tasks.push(("insights", tokio::spawn(insights::run(self.insights.clone(), wiring.all_events, shutdown))));
        }
        for (name, task) in tasks {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "feedback task failed");
            }
        }
    }
}

/// Connects the feedback database, brings its schema up to date, loads the projections from the
/// event log, and subscribes to the bus. Survey links start with `public_url`, the gateway as
/// customers reach it.
pub async fn open(
    config: &Config,
    public_url: &str,
    bus: Arc<dyn EventBus>,
    peers: Peers,
) -> Result<FeedbackService, OpenError> {
    let mut service = open_database(&config.database, &config.data_dir, public_url, bus.clone()).await?;
    service.wiring = Some(Wiring {
        peers,
        solved: trigger::subscribe(bus.as_ref()).await?,
        all_events: insights::subscribe(bus.as_ref()).await?,
    });
    Ok(service)
}

/// [`open`] without the bus consumers and peers: for tests and benchmarks.
pub async fn open_database(
    database: &DatabaseConfig,
    data_dir: &Path,
    public_url: &str,
    bus: Arc<dyn EventBus>,
) -> Result<FeedbackService, OpenError> {
    let db = Database::connect(database, data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    let store = Store::new(db.clone());
    let fresh = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
    let key = store.signing_key(&fresh).await?;
    let feedback = Arc::new(Feedback::new(store, key.as_bytes(), public_url));
    let insights = Arc::new(Insights::new(db.clone()));
    let loaded = insights.rebuild_all().await.map_err(|error| OpenError::Load(error.message))?;
    tracing::info!(
        events = loaded.events,
        tickets = loaded.tickets,
        seconds = loaded.seconds,
        "insight projections loaded"
    );
    let relay = Relay::new(db, bus, feedback.events_written.clone(), RELAY_LOCK_KEY);
    Ok(FeedbackService { feedback, insights, relay, wiring: None })
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("feedback database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("feedback migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("insight projections could not be loaded: {0}")]
    Load(String),
    #[error("event bus: {0}")]
    Bus(#[from] helpdesk_events::BusError),
}
