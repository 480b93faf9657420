//! The email channel: support mailboxes per tenant, mail taken in over the built-in SMTP
//! listener, a signed webhook and IMAP fetching (leased per mailbox across replicas), stored
//! before it is acknowledged, then threaded into tickets through ticketing's gRPC API on the service's own
//! behalf; agents' public replies go back to the customer over the mailbox's relay. It owns its
//! data: mailboxes, the raw messages and what became of them, the keys that tie mail to tickets,
//! where fetching each IMAP folder stands, and the replies on their way out.

mod grpc;
mod imap;
mod intake;
mod mailboxes;
mod outbound;
mod relay;
mod secrets;
mod smtp;
mod store;
mod threading;

pub use intake::sign_webhook;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use helpdesk_events::{EventBus, EventStream};
use helpdesk_runtime::{
    config::Config,
    db::{Database, Migrations},
    shutdown::Shutdown,
};
use tokio::{net::TcpListener, sync::Notify};

static PORTABLE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");
static SQLITE: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub static MIGRATIONS: Migrations =
    Migrations { portable: &PORTABLE, sqlite: &SQLITE, postgres: &POSTGRES, shared: &[], rebaselined: &[] };

/// The name of this service's database (SQLite file or PostgreSQL schema).
pub const DATABASE: &str = "email";

/// Mailboxes, intake and threading over the store, shared by the gRPC endpoints, the SMTP
/// listener and the threading worker.
pub(crate) struct Email {
    db: Database,
    secret_box: secrets::SecretBox,
    peers: Peers,
    hostname: String,
    /// The platform's ceiling on a message; each mailbox may set a lower one.
    max_message_bytes: i64,
    /// What one mail's files may weigh, each and together, as ticketing takes them: files past
    /// these stay in the raw message only.
    attachment_limits: threading::AttachmentLimits,
    /// Wakes the threading worker when a message is stored.
    mail_arrived: Notify,
    /// Wakes the sending worker when a reply is queued.
    reply_queued: Notify,
    /// Names this replica in the IMAP leases it holds.
    replica: String,
    imap_timing: imap::Timing,
    /// Checks the certificates of IMAP servers.
    tls: tokio_rustls::TlsConnector,
    relays: relay::Relays,
}

pub use helpdesk_runtime::grpc::Peers;

/// The service, with its SMTP listener bound when one is configured.
pub struct EmailService {
    email: Arc<Email>,
    smtp: Option<TcpListener>,
    smtp_tls: Option<smtp::ListenerTls>,
    /// Ticket events, for the replies to send.
    events: EventStream,
}

impl EmailService {
    /// Where the SMTP listener took its port, if it runs.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.smtp.as_ref().and_then(|listener| listener.local_addr().ok())
    }
}

impl helpdesk_runtime::service::Service for EmailService {
    const NAME: &'static str = "email";
    const GRPC_SERVICES: &'static [&'static str] =
        &["helpdesk.email.v1.EmailService", "helpdesk.email.v1.MailIntakeService"];

    fn database(&self) -> &Database {
        &self.email.db
    }

    fn add_routes(&self, routes: &mut tonic::service::RoutesBuilder) {
        grpc::add_routes(&self.email, routes);
    }

    /// Threads stored mail into tickets, queues and sends replies, and serves SMTP until
    /// shutdown.
    async fn run(self, shutdown: Shutdown) {
        let tasks = [
            ("threading", tokio::spawn(threading::run(self.email.clone(), shutdown.clone()))),
            ("replies", tokio::spawn(outbound::queue(self.email.clone(), self.events, shutdown.clone()))),
            ("sending", tokio::spawn(outbound::send(self.email.clone(), shutdown.clone()))),
            ("imap", tokio::spawn(imap::run(self.email.clone(), shutdown.clone()))),
        ];
        if let Some(listener) = self.smtp {
            smtp::serve(self.email.clone(), listener, self.smtp_tls.clone(), shutdown).await;
        }
        for (name, task) in tasks {
            if let Err(error) = task.await {
                tracing::error!(task = name, %error, "email task failed");
            }
        }
    }
}

/// Connects the email database, brings its schema up to date, opens the key for mailbox
/// credentials, subscribes to ticketing's events (before anything is published, for the
/// in-process bus) and binds the SMTP listener, if configured.
pub async fn open(config: &Config, bus: &dyn EventBus, peers: Peers) -> Result<EmailService, OpenError> {
    let db = Database::connect(&config.database, &config.data_dir, DATABASE).await?;
    db.migrate(&MIGRATIONS).await?;
    let secret_box =
        secrets::SecretBox::open(config.email.secrets_key.as_ref(), &config.data_dir).map_err(OpenError::SecretsKey)?;
    let smtp = match config.email.smtp_addr {
        Some(addr) => Some(TcpListener::bind(addr).await.map_err(|error| OpenError::Smtp(addr, error))?),
        None => None,
    };
    let extra_roots = match &config.email.tls_ca_file {
        Some(path) => {
            std::fs::read(path).map_err(|error| OpenError::TlsRoots(format!("{}: {error}", path.display())))?
        }
        None => Vec::new(),
    };
    let tls = tls_connector(&extra_roots).map_err(OpenError::TlsRoots)?;
    let smtp_tls = match (&config.email.smtp_tls_cert_file, &config.email.smtp_tls_key_file) {
        (Some(cert), Some(key)) => Some(smtp::ListenerTls {
            acceptor: tls_acceptor(cert, key).map_err(OpenError::ListenerTls)?,
            required: config.email.smtp_require_tls,
        }),
        _ => None,
    };
    let email = Email {
        db,
        secret_box,
        peers,
        hostname: config.email.hostname.clone(),
        max_message_bytes: i64::try_from(config.email.max_message_bytes).unwrap_or(i64::MAX),
        attachment_limits: threading::AttachmentLimits {
            per_file: config.attachments.max_file_bytes,
            per_message: config.attachments.max_message_bytes,
        },
        mail_arrived: Notify::new(),
        reply_queued: Notify::new(),
        replica: uuid::Uuid::new_v4().to_string(),
        imap_timing: imap::Timing {
            lease: Duration::from_secs(config.email.imap_lease_seconds),
            poll: Duration::from_secs(config.email.imap_poll_seconds),
        },
        tls: tls.clone(),
        relays: relay::Relays::new(tls, extra_roots, &config.email.hostname),
    };
    let events = outbound::subscribe(bus).await?;
    Ok(EmailService { email: Arc::new(email), smtp, smtp_tls, events })
}

/// Trusts the public roots and the PEM certificates of `extra_roots` (a private CA), if any.
fn tls_connector(extra_roots: &[u8]) -> Result<tokio_rustls::TlsConnector, String> {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    for certificate in CertificateDer::pem_slice_iter(extra_roots) {
        roots.add(certificate.map_err(|error| error.to_string())?).map_err(|error| error.to_string())?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

/// The SMTP listener's TLS from its PEM certificate chain and key.
fn tls_acceptor(cert: &std::path::Path, key: &std::path::Path) -> Result<tokio_rustls::TlsAcceptor, String> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certificates| certificates.collect::<Result<Vec<_>, _>>())
        .map_err(|error| format!("{}: {error}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| format!("{}: {error}", key.display()))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|error| error.to_string())?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| error.to_string())?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("email database unavailable: {0}")]
    Database(#[from] sqlx::Error),
    #[error("email migrations failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("email.secrets_key unusable: {0}")]
    SecretsKey(std::io::Error),
    #[error("email.tls_ca_file unusable: {0}")]
    TlsRoots(String),
    #[error("email.smtp_tls_cert_file or its key unusable: {0}")]
    ListenerTls(String),
    #[error("email.smtp_addr {0} cannot be bound: {1}")]
    Smtp(SocketAddr, std::io::Error),
    #[error("event bus: {0}")]
    Bus(#[from] helpdesk_events::BusError),
}
