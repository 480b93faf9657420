//! One typed configuration: defaults, then an optional TOML file, then `HELPDESK_*` environment
//! variables (`__` separates nested keys, e.g. `HELPDESK_DATABASE__URL`), then [`Config::validate`].

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use secrecy::SecretString;
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Read(#[from] config::ConfigError),
    #[error("invalid configuration `{field}`: {reason}")]
    Invalid { field: &'static str, reason: String },
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where embedded SQLite databases live when no database URL is given.
    pub data_dir: PathBuf,
    pub grpc_addr: SocketAddr,
    pub grpc: GrpcConfig,
    pub http_addr: SocketAddr,
    /// An admin API key for the demo tenant, created at start-up if it does not exist.
    #[cfg_attr(test, serde(serialize_with = "tests::expose"))]
    pub bootstrap_api_key: Option<SecretString>,
    pub database: DatabaseConfig,
    pub events: EventsConfig,
    pub auth: AuthConfig,
    pub gateway: GatewayConfig,
    pub services: ServiceUrls,
    pub feedback: FeedbackConfig,
    pub knowledge: KnowledgeConfig,
    pub email: EmailConfig,
    pub attachments: AttachmentsConfig,
    pub web: WebConfig,
    pub telemetry: TelemetryConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `postgres://…` for production. Empty: one SQLite file per service under `data_dir`.
    pub url: Option<String>,
    pub max_connections: u32,
    /// When SQLite waits for the disk. `normal`: a commit survives a killed process, but the
    /// last commits before a power loss or kernel crash may be lost. `full`: every commit is on
    /// disk before it is acknowledged (see docs/operations.md for what it costs).
    pub sqlite_synchronous: SqliteSynchronous,
}

impl DatabaseConfig {
    /// A database of `max_connections` with the default durability: for tests and benchmarks.
    pub fn new(url: Option<String>, max_connections: u32) -> Self {
        Self { url, max_connections, sqlite_synchronous: SqliteSynchronous::Normal }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case")]
pub enum SqliteSynchronous {
    Normal,
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    InProcess,
    Nats,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    pub bus: BusKind,
    pub nats_url: String,
    /// JetStream stream that holds every helpdesk event.
    pub stream: String,
    /// First tokens of every event subject: `<prefix>.<tenant>.<aggregate>.<event>`.
    pub subject_prefix: String,
    /// NATS credentials: a user and password, a token, an nkey seed, or a `.creds` file (JWT and
    /// nkey, as `nsc` writes them) — at most one of them.
    pub nats_user: Option<String>,
    #[cfg_attr(test, serde(serialize_with = "tests::expose"))]
    pub nats_password: Option<SecretString>,
    #[cfg_attr(test, serde(serialize_with = "tests::expose"))]
    pub nats_token: Option<SecretString>,
    #[cfg_attr(test, serde(serialize_with = "tests::expose"))]
    pub nats_nkey_seed: Option<SecretString>,
    pub nats_credentials_file: Option<PathBuf>,
    /// Refuse a connection that is not TLS.
    pub nats_require_tls: bool,
    /// PEM file of the CAs that sign the NATS server's certificate, when not a public CA.
    pub nats_ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// How long a resolved API key or JWT is trusted before it is looked up again, at most: a
    /// revocation reaches every process through the event bus sooner.
    pub credential_cache_seconds: u64,
    /// Clock skew allowed when checking a JWT's `exp` and `nbf`.
    pub jwt_leeway_seconds: u64,
    /// Failed authentications one client address may make in a minute before it is refused.
    pub failed_attempts_per_minute: u32,
    /// Signs the short-lived tokens one service presents to another (routing writing assignments
    /// to ticketing). Every service of a deployment needs the same value; the all-in-one process
    /// makes one up when unset.
    #[cfg_attr(test, serde(serialize_with = "tests::expose"))]
    pub service_secret: Option<SecretString>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct GrpcConfig {
    /// Whether gRPC servers answer reflection (service and message descriptions for grpcurl):
    /// handy in development, off in production.
    pub reflection: bool,
    /// Requests per second one client address may make to the public gRPC services (help center,
    /// survey links) without a service's token; the gateway, which limits its own clients, is
    /// not counted.
    pub public_rate_limit_per_second: u32,
    pub public_rate_limit_burst: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Sustained requests per second allowed to one credential.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    pub max_body_bytes: usize,
    /// Origins allowed by CORS; `*` allows any.
    pub cors_allowed_origins: Vec<String>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` names the client: the ingress.
    /// None by default, so a client cannot pick its own rate-limit bucket.
    pub trusted_proxies: Vec<String>,
}

impl GatewayConfig {
    /// [`Self::trusted_proxies`] parsed; [`Config::validate`] refused any that do not parse.
    pub fn trusted_proxy_ranges(&self) -> Vec<crate::net::IpRange> {
        self.trusted_proxies.iter().filter_map(|range| crate::net::IpRange::parse(range)).collect()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct FeedbackConfig {
    /// The gateway's address as customers reach it: survey links start with it. `helpdesk
    /// serve` defaults to the address its HTTP listener is bound to; the feedback service on its
    /// own needs it set.
    pub public_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct KnowledgeConfig {
    /// Days searches and clicks (what visitors typed) are kept for the content-gap report.
    pub search_log_retention_days: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// Where the built-in SMTP listener takes mail (as the MX, or forwarded); unset, no listener.
    pub smtp_addr: Option<SocketAddr>,
    /// The name the listener greets with and writes into the Message-IDs it makes.
    pub hostname: String,
    /// 64 hex digits (32 bytes) that encrypt mailbox credentials at rest. Unset, a key file is
    /// made in `data_dir` and used: fine on one machine, not for replicas.
    #[cfg_attr(test, serde(serialize_with = "tests::expose"))]
    pub secrets_key: Option<SecretString>,
    /// The largest message taken over SMTP or the webhook, in bytes.
    pub max_message_bytes: u64,
    /// How long a replica's hold on an IMAP mailbox lasts unrenewed: a stopped replica's
    /// mailboxes are fetched by another within this time.
    pub imap_lease_seconds: u64,
    /// How often a mailbox on a server without IDLE is asked for new mail.
    pub imap_poll_seconds: u64,
    /// PEM certificates trusted besides the public roots for IMAP servers (a private CA).
    pub tls_ca_file: Option<PathBuf>,
    /// The SMTP listener's certificate chain (PEM): set with its key, the listener offers
    /// STARTTLS.
    pub smtp_tls_cert_file: Option<PathBuf>,
    /// The private key (PEM) of `smtp_tls_cert_file`.
    pub smtp_tls_key_file: Option<PathBuf>,
    /// Take mail only after STARTTLS (for a listener that only trusted relays reach).
    pub smtp_require_tls: bool,
}

/// The agent workspace under `/app`.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct WebConfig {
    /// Mark the session cookies `Secure`: set it whenever people reach the workspace over HTTPS.
    pub secure_cookies: bool,
    /// The workspace (tenant) the sign-in form suggests.
    pub default_tenant: String,
}

/// Where attachments' contents are kept (outside the database), and how large they may be. The
/// S3 settings are checked where the store is opened (ticketing), so that the other services can
/// share one configuration without its credentials.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct AttachmentsConfig {
    pub store: BlobStoreKind,
    /// The filesystem store's folder; unset, `blobs` under `data_dir`.
    pub dir: Option<PathBuf>,
    /// The largest file, in bytes.
    pub max_file_bytes: u64,
    /// The most all of one message's files may add up to, in bytes.
    pub max_message_bytes: u64,
    /// The S3 (or S3-compatible) endpoint, such as `https://s3.ap-northeast-2.amazonaws.com`.
    pub s3_endpoint: Option<String>,
    pub s3_bucket: Option<String>,
    pub s3_region: String,
    /// `true`: `<endpoint>/<bucket>/<key>` (MinIO, Ceph); `false`: `<bucket>.<endpoint host>`.
    pub s3_path_style: bool,
    pub s3_access_key_id: Option<String>,
    #[cfg_attr(test, serde(serialize_with = "tests::expose"))]
    pub s3_secret_access_key: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case")]
pub enum BlobStoreKind {
    Filesystem,
    S3,
}

/// Where a service finds the others when they run as separate processes.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct ServiceUrls {
    pub identity_url: String,
    pub ticketing_url: String,
    pub routing_url: String,
    pub knowledge_url: String,
    pub feedback_url: String,
    pub email_url: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Pretty on a terminal, JSON otherwise.
    Auto,
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(serde::Serialize))]
#[serde(deny_unknown_fields)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// `tracing` filter directives; `RUST_LOG` wins when set.
    pub log_filter: String,
}

const DEFAULTS: &str = r#"
data_dir = "./data"
grpc_addr = "127.0.0.1:50051"
http_addr = "127.0.0.1:8080"

[grpc]
reflection = true
public_rate_limit_per_second = 50
public_rate_limit_burst = 100

[database]
max_connections = 16
sqlite_synchronous = "normal"

[events]
bus = "in_process"
nats_url = "nats://127.0.0.1:4222"
stream = "HELPDESK_EVENTS"
subject_prefix = "helpdesk.events"
nats_require_tls = false

[auth]
credential_cache_seconds = 30
jwt_leeway_seconds = 30
failed_attempts_per_minute = 30

[gateway]
rate_limit_per_second = 200
rate_limit_burst = 400
max_body_bytes = 1048576
cors_allowed_origins = []
trusted_proxies = []

[services]
identity_url = "http://127.0.0.1:50051"
ticketing_url = "http://127.0.0.1:50051"
routing_url = "http://127.0.0.1:50051"
knowledge_url = "http://127.0.0.1:50051"
feedback_url = "http://127.0.0.1:50051"
email_url = "http://127.0.0.1:50051"

[feedback]

[knowledge]
search_log_retention_days = 180

[email]
smtp_addr = "127.0.0.1:2525"
hostname = "localhost"
max_message_bytes = 26214400
imap_lease_seconds = 20
imap_poll_seconds = 60
smtp_require_tls = false

[attachments]
store = "filesystem"
max_file_bytes = 26214400
max_message_bytes = 52428800
s3_region = "us-east-1"
s3_path_style = false

[web]
secure_cookies = false
default_tenant = ""

[telemetry]
log_format = "auto"
log_filter = "info"
"#;

impl Config {
    /// Loads the layers from the process environment, with the file named by `HELPDESK_CONFIG`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let file = std::env::var_os("HELPDESK_CONFIG").map(PathBuf::from);
        Self::load(file.as_deref())
    }

    /// Loads the layers from the process environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, std::env::vars())
    }

    /// Loads the layers with the given environment, so tests need not touch the process's.
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env = env.into_iter().filter(|(key, _)| is_config_variable(key)).collect();
        let mut builder =
            config::Config::builder().add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
        if let Some(file) = file {
            builder = builder.add_source(config::File::from(file).required(true));
        }
        let config: Config = builder
            .add_source(
                config::Environment::with_prefix("HELPDESK")
                    .prefix_separator("_")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("gateway.cors_allowed_origins")
                    .with_list_parse_key("gateway.trusted_proxies")
                    .source(Some(env)),
            )
            .build()?
            .try_deserialize()?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, reason: &str| ConfigError::Invalid { field, reason: reason.to_owned() };
        if let Some(url) = &self.database.url
            && !(url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err(invalid("database.url", "must be a postgres:// URL or unset for SQLite"));
        }
        let prefix_ok = !self.events.subject_prefix.is_empty()
            && self.events.subject_prefix.split('.').all(|token| {
                !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            });
        if !prefix_ok {
            return Err(invalid("events.subject_prefix", "dot-separated tokens of letters, digits, _ or -"));
        }
        let events = &self.events;
        if events.nats_user.is_some() != events.nats_password.is_some() {
            return Err(invalid("events.nats_password", "a NATS user and password go together"));
        }
        let credentials = [
            events.nats_user.is_some(),
            events.nats_token.is_some(),
            events.nats_nkey_seed.is_some(),
            events.nats_credentials_file.is_some(),
        ];
        if credentials.iter().filter(|set| **set).count() > 1 {
            return Err(invalid("events.nats_token", "give one kind of NATS credentials"));
        }
        if self.database.max_connections == 0 {
            return Err(invalid("database.max_connections", "must be at least 1"));
        }
        if self.grpc.public_rate_limit_per_second == 0 || self.grpc.public_rate_limit_burst == 0 {
            return Err(invalid("grpc.public_rate_limit_per_second", "rate limits must be at least 1"));
        }
        if self.gateway.rate_limit_per_second == 0 || self.gateway.rate_limit_burst == 0 {
            return Err(invalid("gateway.rate_limit_per_second", "rate limits must be at least 1"));
        }
        if self.gateway.max_body_bytes < 1024 {
            return Err(invalid("gateway.max_body_bytes", "must be at least 1024"));
        }
        if self.gateway.trusted_proxies.iter().any(|range| crate::net::IpRange::parse(range).is_none()) {
            return Err(invalid("gateway.trusted_proxies", "each must be an IP address or CIDR range"));
        }
        if let Some(url) = &self.feedback.public_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid("feedback.public_url", "must be an http:// or https:// URL"));
        }
        if let Some(key) = &self.email.secrets_key {
            use secrecy::ExposeSecret;
            let key = key.expose_secret();
            if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid("email.secrets_key", "must be 64 hex digits (32 bytes)"));
            }
        }
        if !(1024..=52_428_800).contains(&self.email.max_message_bytes) {
            return Err(invalid("email.max_message_bytes", "must be 1024 to 52428800 (50 MiB)"));
        }
        if self.email.smtp_tls_cert_file.is_some() != self.email.smtp_tls_key_file.is_some() {
            return Err(invalid("email.smtp_tls_key_file", "a certificate and its key go together"));
        }
        if self.email.smtp_require_tls && self.email.smtp_tls_cert_file.is_none() {
            return Err(invalid("email.smtp_require_tls", "needs email.smtp_tls_cert_file and its key"));
        }
        if !(3..=600).contains(&self.email.imap_lease_seconds) {
            return Err(invalid("email.imap_lease_seconds", "must be 3 to 600"));
        }
        if !(1..=3600).contains(&self.email.imap_poll_seconds) {
            return Err(invalid("email.imap_poll_seconds", "must be 1 to 3600"));
        }
        let attachments = &self.attachments;
        if !(1024..=104_857_600).contains(&attachments.max_file_bytes) {
            return Err(invalid("attachments.max_file_bytes", "must be 1024 to 104857600 (100 MiB)"));
        }
        if attachments.max_message_bytes < attachments.max_file_bytes {
            return Err(invalid("attachments.max_message_bytes", "must be at least attachments.max_file_bytes"));
        }
        if !(1..=3650).contains(&self.knowledge.search_log_retention_days) {
            return Err(invalid("knowledge.search_log_retention_days", "must be 1 to 3650"));
        }
        if self.auth.jwt_leeway_seconds > 300 {
            return Err(invalid("auth.jwt_leeway_seconds", "at most 300: clocks that far apart need fixing"));
        }
        if self.auth.failed_attempts_per_minute == 0 {
            return Err(invalid("auth.failed_attempts_per_minute", "must be at least 1"));
        }
        if let Some(secret) = &self.auth.service_secret
            && secrecy::ExposeSecret::expose_secret(secret).len() < 32
        {
            return Err(invalid("auth.service_secret", "must be at least 32 bytes"));
        }
        if let Some(key) = &self.bootstrap_api_key
            && !crate::auth::ApiKeySecret::is_well_formed(secrecy::ExposeSecret::expose_secret(key))
        {
            return Err(invalid(
                "bootstrap_api_key",
                "must look like hdk_<8 to 32 letters or digits>_<at least 32 letters or digits>",
            ));
        }
        Ok(())
    }
}

/// Whether `key` configures the platform: `HELPDESK_<field of Config>` or
/// `HELPDESK_<field>__<nested key>`, the fields read off [`Config`] itself so that no section can
/// be forgotten. Other `HELPDESK_*` variables — `HELPDESK_CONFIG`, `HELPDESK_TEST_*`, Kubernetes
/// service links for a service named helpdesk — are not ours; a misspelt key inside a section is
/// still refused.
fn is_config_variable(key: &str) -> bool {
    key.strip_prefix("HELPDESK_")
        .map(|rest| rest.split("__").next().unwrap_or(rest))
        .is_some_and(|section| field_names::<Config>().iter().any(|field| field.eq_ignore_ascii_case(section)))
}

/// The field names serde knows for the struct `T`, as its derived `Deserialize` declares them.
fn field_names<T: serde::de::DeserializeOwned>() -> &'static [&'static str] {
    /// Asks for nothing but a struct's fields, then stops.
    struct Fields<'a>(&'a mut &'static [&'static str]);

    impl<'de> serde::Deserializer<'de> for Fields<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: serde::de::Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(serde::de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Fields(&mut fields));
    fields
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// Secrets are written out here only, to compare what was set with what was read.
    pub(super) fn expose<S: serde::Serializer>(
        secret: &Option<SecretString>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::Serialize;
        secret.as_ref().map(secrecy::ExposeSecret::expose_secret).serialize(serializer)
    }

    /// A valid value for every key that has none by default, and for keys whose values are
    /// words or ranges that a generic change would make invalid.
    fn sample(path: &str) -> Option<Value> {
        Some(match path {
            "bootstrap_api_key" => json!("hdk_sample01_0123456789abcdefghij0123456789ab"),
            "database.url" => json!("postgres://sample.internal/helpdesk"),
            "auth.service_secret" => json!("a-sample-service-secret-of-32-bytes-or-more"),
            "events.nats_user" => json!("helpdesk"),
            "events.nats_password" => json!("sample-password"),
            "events.nats_ca_file" => json!("/etc/helpdesk/nats-ca.pem"),
            "events.nats_token" => json!("sample-token"),
            "events.nats_nkey_seed" => json!("SUAsampleseed"),
            "events.nats_credentials_file" => json!("/etc/helpdesk/nats.creds"),
            "feedback.public_url" => json!("https://support.example.com"),
            "email.secrets_key" => json!("ab".repeat(32)),
            "email.tls_ca_file" => json!("/etc/helpdesk/mail-ca.pem"),
            "email.smtp_tls_cert_file" => json!("/etc/helpdesk/mx.pem"),
            "email.smtp_tls_key_file" => json!("/etc/helpdesk/mx.key"),
            "events.bus" => json!("nats"),
            "attachments.store" => json!("s3"),
            "attachments.dir" => json!("/var/lib/helpdesk/blobs"),
            "attachments.s3_endpoint" => json!("https://s3.ap-northeast-2.amazonaws.com"),
            "attachments.s3_bucket" => json!("helpdesk-attachments"),
            "attachments.s3_access_key_id" => json!("AKIASAMPLE"),
            "attachments.s3_secret_access_key" => json!("sample-secret"),
            "telemetry.log_format" => json!("json"),
            "database.sqlite_synchronous" => json!("full"),
            "gateway.trusted_proxies" => json!(["10.0.0.0/8", "192.0.2.7"]),
            _ => return None,
        })
    }

    /// A different valid value of the same kind as `default`.
    fn changed(path: &str, default: &Value) -> Value {
        if let Some(value) = sample(path) {
            return value;
        }
        match default {
            Value::Bool(flag) => json!(!flag),
            Value::Number(number) => json!(number.as_u64().expect("numeric settings are counts") + 1),
            Value::String(text) => match text.parse::<SocketAddr>() {
                Ok(address) => json!(SocketAddr::new(address.ip(), address.port() + 1).to_string()),
                Err(_) => json!(format!("{text}-changed")),
            },
            Value::Array(_) => json!(["https://a.example", "https://b.example"]),
            other => panic!("{path} has no default and no sample value: add one to sample() ({other})"),
        }
    }

    /// Every leaf of `value`, with its dotted path.
    fn leaves(prefix: &str, value: &Value, into: &mut Vec<(String, Value)>) {
        match value {
            Value::Object(fields) => {
                for (name, field) in fields {
                    let path = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
                    leaves(&path, field, into);
                }
            }
            leaf => into.push((prefix.to_owned(), leaf.clone())),
        }
    }

    fn pointer(path: &str) -> String {
        format!("/{}", path.replace('.', "/"))
    }

    /// Every key of [`Config`], found by writing the defaults out, is set through its environment
    /// variable and read back: a key the environment cannot reach fails here.
    #[test]
    fn every_key_can_be_set_through_the_environment() {
        let defaults = serde_json::to_value(Config::load_from(None, env(&[])).expect("defaults")).expect("serializes");
        let mut keys = Vec::new();
        leaves("", &defaults, &mut keys);
        assert!(keys.len() > 25, "{keys:?}");
        let expected: Vec<(String, Value)> =
            keys.iter().map(|(path, default)| (path.clone(), changed(path, default))).collect();
        // Other kinds of NATS credentials than a user and password: one at a time.
        let alternatives = ["events.nats_token", "events.nats_nkey_seed", "events.nats_credentials_file"];
        let (one_by_one, together): (Vec<_>, Vec<_>) =
            expected.into_iter().partition(|(path, _)| alternatives.contains(&path.as_str()));
        assert_eq!(one_by_one.len(), alternatives.len());
        set_and_read_back(&together);
        for alternative in one_by_one {
            set_and_read_back(&[alternative]);
        }
    }

    /// Loads a configuration with `settings` in the environment and checks each was read.
    fn set_and_read_back(settings: &[(String, Value)]) {
        let variables: Vec<(String, String)> = settings
            .iter()
            .map(|(path, value)| {
                let name = format!("HELPDESK_{}", path.replace('.', "__").to_uppercase());
                let text = match value {
                    Value::String(text) => text.clone(),
                    Value::Array(items) => {
                        items.iter().map(|item| item.as_str().expect("lists of strings")).collect::<Vec<_>>().join(",")
                    }
                    other => other.to_string(),
                };
                (name, text)
            })
            .collect();
        let config =
            Config::load_from(None, variables.clone()).unwrap_or_else(|error| panic!("{error}: {variables:?}"));
        let read = serde_json::to_value(config).expect("serializes");
        for (path, value) in settings {
            assert_eq!(read.pointer(&pointer(path)), Some(value), "{path} was not set through the environment");
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_serve_on_loopback_with_sqlite() {
        let config = Config::load_from(None, env(&[])).expect("defaults are valid");
        assert_eq!(config.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(config.http_addr.to_string(), "127.0.0.1:8080");
        assert!(config.database.url.is_none());
        assert_eq!(config.events.bus, BusKind::InProcess);
    }

    #[test]
    fn environment_overrides_nested_keys_and_lists() {
        let config = Config::load_from(
            None,
            env(&[
                ("HELPDESK_DATABASE__URL", "postgres://localhost/test"),
                ("HELPDESK_GATEWAY__CORS_ALLOWED_ORIGINS", "https://a.example,https://b.example"),
                ("HELPDESK_EVENTS__BUS", "nats"),
            ]),
        )
        .expect("valid overrides");
        assert_eq!(config.database.url.as_deref(), Some("postgres://localhost/test"));
        assert_eq!(config.gateway.cors_allowed_origins.len(), 2);
        assert_eq!(config.events.bus, BusKind::Nats);
    }

    #[test]
    fn unrelated_helpdesk_variables_are_ignored_but_misspelt_keys_are_not() {
        let config = Config::load_from(
            None,
            env(&[("HELPDESK_TEST_POSTGRES_URL", "postgres://x/y"), ("HELPDESK_CONFIG", "/etc/helpdesk.toml")]),
        );
        assert!(config.is_ok(), "{config:?}");
        let error = Config::load_from(None, env(&[("HELPDESK_DATABASE__URLL", "postgres://x/y")]))
            .expect_err("typo in a known section");
        assert!(error.to_string().contains("urll"), "{error}");
    }

    #[test]
    fn validation_names_the_offending_field() {
        let err = Config::load_from(None, env(&[("HELPDESK_DATABASE__URL", "mysql://x")]))
            .expect_err("mysql is not supported");
        assert!(err.to_string().contains("database.url"), "{err}");
        let err = Config::load_from(None, env(&[("HELPDESK_BOOTSTRAP_API_KEY", "short")])).expect_err("malformed key");
        assert!(err.to_string().contains("bootstrap_api_key"), "{err}");
    }
}
