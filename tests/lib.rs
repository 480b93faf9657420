//! Test harness: starts the real platform (`helpdesk serve`'s code) on port 0 with a fresh
//! database — a temporary SQLite directory, or a new PostgreSQL database when
//! `HELPDESK_TEST_POSTGRES_URL` is set — and talks to it with real HTTP and gRPC clients.

use std::{net::SocketAddr, sync::Arc};

use helpdesk_cli::{DEMO_TENANT, Platform};
use helpdesk_events::EventBus;
use helpdesk_runtime::{
    auth::Role,
    config::Config,
    db::create_scratch_database,
    shutdown::{self, ShutdownTrigger},
};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    /// What the platform was started with.
    pub config: Config,
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// The email service's SMTP listener.
    pub smtp_addr: SocketAddr,
    /// An admin key of the `demo` tenant.
    pub admin_key: String,
    pub http: reqwest::Client,
    pub bus: Arc<dyn EventBus>,
    pub platform_identity: helpdesk_identity::IdentityStore,
    /// Routing's core, to fire SLA timers as of a later instant.
    pub router: Arc<helpdesk_routing::Router>,
    /// Each tenant's test signing key (kid, secret), which may sign customer and agent tokens.
    signing_keys: std::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
    trigger: Option<ShutdownTrigger>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    _data_dir: tempfile::TempDir,
}

pub struct Options {
    pub backend: Backend,
    pub rate_limit_per_second: u32,
    pub max_body_bytes: usize,
    /// NATS URL, stream and subject prefix, for a JetStream bus instead of the in-process one.
    pub nats: Option<(String, String, String)>,
    /// Requests per second (and burst) of one client to the public gRPC services.
    pub public_grpc_per_second: u32,
    /// Attachments in the S3-compatible server of `.ci/s3-server` rather than a folder.
    pub s3: bool,
    /// More settings, as `HELPDESK_…` variables.
    pub env: Vec<(String, String)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            backend: Backend::Sqlite,
            rate_limit_per_second: 100_000,
            max_body_bytes: 1024 * 1024,
            nats: None,
            public_grpc_per_second: 100_000,
            s3: false,
            env: Vec::new(),
        }
    }
}

/// The IMAP server (Dovecot, started by `.ci/mail-servers`) the email tests fetch from, if any:
/// every user logs in with [`IMAP_PASSWORD`].
pub fn imap_server() -> Option<SocketAddr> {
    std::env::var("HELPDESK_TEST_IMAP").ok().and_then(|addr| addr.parse().ok())
}

pub const IMAP_PASSWORD: &str = "test-password";

/// The SMTP relay (Postfix, started by `.ci/mail-servers`) that delivers to the IMAP server's
/// mailboxes, if any.
pub fn smtp_relay() -> Option<SocketAddr> {
    std::env::var("HELPDESK_TEST_SMTP_RELAY").ok().and_then(|addr| addr.parse().ok())
}

/// The largest attachment the test platform takes; a message's files may add up to twice that.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// The S3-compatible server (`.ci/s3-server`) and its test bucket and credentials.
pub struct S3Server {
    pub endpoint: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The S3-compatible server the attachment tests may use, if any.
pub fn s3_server() -> Option<S3Server> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    Some(S3Server {
        endpoint: var("HELPDESK_TEST_S3_ENDPOINT")?,
        bucket: var("HELPDESK_TEST_S3_BUCKET")?,
        access_key_id: var("HELPDESK_TEST_S3_ACCESS_KEY_ID")?,
        secret_access_key: var("HELPDESK_TEST_S3_SECRET_ACCESS_KEY")?,
    })
}

/// The PostgreSQL server tests may use, if any.
pub fn postgres_url() -> Option<String> {
    std::env::var("HELPDESK_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty())
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(Options { backend, ..Options::default() }).await
}

pub async fn spawn_app_with(options: Options) -> TestApp {
    helpdesk_runtime::telemetry::init_for_tests();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut env = vec![
        ("HELPDESK_GRPC_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("HELPDESK_HTTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ("HELPDESK_DATA_DIR".to_owned(), data_dir.path().display().to_string()),
        ("HELPDESK_GATEWAY__RATE_LIMIT_PER_SECOND".to_owned(), options.rate_limit_per_second.to_string()),
        ("HELPDESK_GATEWAY__RATE_LIMIT_BURST".to_owned(), options.rate_limit_per_second.to_string()),
        ("HELPDESK_GATEWAY__MAX_BODY_BYTES".to_owned(), options.max_body_bytes.to_string()),
        ("HELPDESK_GRPC__PUBLIC_RATE_LIMIT_PER_SECOND".to_owned(), options.public_grpc_per_second.to_string()),
        ("HELPDESK_GRPC__PUBLIC_RATE_LIMIT_BURST".to_owned(), options.public_grpc_per_second.to_string()),
        ("HELPDESK_EMAIL__SMTP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        // Short IMAP leases, so that a takeover is seen within a test.
        ("HELPDESK_EMAIL__IMAP_LEASE_SECONDS".to_owned(), "3".to_owned()),
        ("HELPDESK_EMAIL__IMAP_POLL_SECONDS".to_owned(), "1".to_owned()),
        // Small, so that the limits are reached within a test.
        ("HELPDESK_ATTACHMENTS__MAX_FILE_BYTES".to_owned(), MAX_FILE_BYTES.to_string()),
        ("HELPDESK_ATTACHMENTS__MAX_MESSAGE_BYTES".to_owned(), (2 * MAX_FILE_BYTES).to_string()),
    ];
    env.extend(options.env);
    if options.s3 {
        let server = s3_server().expect("S3 tests need HELPDESK_TEST_S3_ENDPOINT");
        env.extend([
            ("HELPDESK_ATTACHMENTS__STORE".to_owned(), "s3".to_owned()),
            ("HELPDESK_ATTACHMENTS__S3_ENDPOINT".to_owned(), server.endpoint),
            ("HELPDESK_ATTACHMENTS__S3_BUCKET".to_owned(), server.bucket),
            ("HELPDESK_ATTACHMENTS__S3_PATH_STYLE".to_owned(), "true".to_owned()),
            ("HELPDESK_ATTACHMENTS__S3_ACCESS_KEY_ID".to_owned(), server.access_key_id),
            ("HELPDESK_ATTACHMENTS__S3_SECRET_ACCESS_KEY".to_owned(), server.secret_access_key),
        ]);
    }
    if options.backend == Backend::Postgres {
        let base = postgres_url().expect("postgres tests need HELPDESK_TEST_POSTGRES_URL");
        env.push((
            "HELPDESK_DATABASE__URL".to_owned(),
            create_scratch_database(&base, "helpdesk_test").await.expect("test database"),
        ));
        env.push(("HELPDESK_DATABASE__MAX_CONNECTIONS".to_owned(), "8".to_owned()));
    }
    if let Some((url, stream, prefix)) = options.nats {
        env.push(("HELPDESK_EVENTS__BUS".to_owned(), "nats".to_owned()));
        env.push(("HELPDESK_EVENTS__NATS_URL".to_owned(), url));
        env.push(("HELPDESK_EVENTS__STREAM".to_owned(), stream));
        env.push(("HELPDESK_EVENTS__SUBJECT_PREFIX".to_owned(), prefix));
    }
    let config = Config::load_from(None, env).expect("test configuration is valid");
    let platform = Platform::build(&config).await.expect("platform starts");
    let identity = platform.identity().clone();
    identity.ensure_tenant(DEMO_TENANT, "Demo").await.expect("tenant");
    let admin_key = identity.create_api_key(DEMO_TENANT, "test admin", Role::Admin).await.expect("key").token;
    let signing_keys =
        std::sync::Mutex::new([(DEMO_TENANT.to_owned(), staff_signing_key(&identity, DEMO_TENANT).await)].into());
    let (http_addr, grpc_addr, bus, router) =
        (platform.http_addr(), platform.grpc_addr(), platform.bus(), platform.router());
    let smtp_addr = platform.smtp_addr().expect("the test platform takes SMTP");
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(platform.run(shutdown));
    TestApp {
        config,
        http_addr,
        grpc_addr,
        smtp_addr,
        admin_key,
        http: reqwest::Client::new(),
        bus,
        platform_identity: identity,
        router,
        signing_keys,
        trigger: Some(trigger),
        task: Some(task),
        _data_dir: data_dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http_addr)
    }

    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(format!("http://{}", self.grpc_addr))
            .expect("valid endpoint")
            .connect()
            .await
            .expect("grpc connects")
    }

    /// A gRPC request carrying `key` as its bearer credential.
    pub fn grpc_request<T>(&self, key: &str, message: T) -> tonic::Request<T> {
        helpdesk_runtime::grpc::outgoing(message, Some(&format!("Bearer {key}")))
    }

    /// Creates another tenant with its own admin key (returned) and signing key.
    pub async fn new_tenant(&self, id: &str) -> String {
        self.platform_identity.ensure_tenant(id, id).await.expect("tenant");
        let signing = staff_signing_key(&self.platform_identity, id).await;
        self.signing_keys.lock().expect("keys").insert(id.to_owned(), signing);
        self.platform_identity.create_api_key(id, "admin", Role::Admin).await.expect("key").token
    }

    /// Sends a JSON request with `key`; returns the status and the parsed body.
    pub async fn call(&self, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
        send(self.http.request(method, self.url(path)).bearer_auth(key), body).await
    }

    /// A request without credentials (help center, survey links); returns the status and the
    /// parsed body.
    pub async fn public(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        send(self.http.request(method, self.url(path)).header("user-agent", "helpdesk-tests"), body).await
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, key, Some(body)).await
    }

    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, key, None).await
    }

    pub async fn patch(&self, path: &str, key: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::PATCH, path, key, Some(body)).await
    }

    /// Changes a ticket as a client should under optimistic concurrency: with the version it just
    /// read, reading again when a consumer (routing's write-back) changed the ticket in between.
    pub async fn update_ticket(&self, key: &str, id: &str, mut changes: Value) -> (u16, Value) {
        let path = format!("/v1/tickets/{id}");
        for _ in 0..5 {
            let (_, current) = self.get(&path, key).await;
            changes["expected_version"] = current["version"].clone();
            let (status, body) = self.patch(&path, key, changes.clone()).await;
            if status != 409 {
                return (status, body);
            }
        }
        self.patch(&path, key, changes).await
    }

    pub async fn create_customer(&self, key: &str, name: &str, email: &str) -> String {
        let (status, body) = self.post("/v1/customers", key, json!({ "name": name, "emails": [email] })).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().expect("customer id").to_owned()
    }

    pub async fn create_ticket(&self, key: &str, body: Value) -> Value {
        let (status, body) = self.post("/v1/tickets", key, body).await;
        assert_eq!(status, 201, "{body}");
        body
    }

    /// A customer's JWT, signed with the tenant's test key.
    pub fn customer_token(&self, tenant: &str, customer_id: &str) -> String {
        self.token(tenant, customer_id, "customer", 3600)
    }

    /// A JWT with the given claims signed with `tenant`'s test key (customer and agent allowed),
    /// expiring `ttl_seconds` from now (negative: expired).
    pub fn token(&self, tenant: &str, subject: &str, role: &str, ttl_seconds: i64) -> String {
        let (kid, secret) =
            self.signing_keys.lock().expect("keys").get(tenant).cloned().expect("tenant has a test key");
        let now = chrono::Utc::now().timestamp();
        sign(
            &kid,
            &secret,
            json!({ "sub": subject, "tenant_id": tenant, "role": role, "iat": now, "exp": now + ttl_seconds }),
        )
    }

    /// The (kid, secret) of `tenant`'s test signing key.
    pub fn signing_key(&self, tenant: &str) -> (String, String) {
        self.signing_keys.lock().expect("keys").get(tenant).cloned().expect("tenant has a test key")
    }

    pub async fn stop(mut self) {
        if let Some(trigger) = self.trigger.take() {
            trigger.trigger();
        }
        if let Some(task) = self.task.take() {
            task.await.expect("platform task").expect("platform stops cleanly");
        }
    }
}

/// Sends `request` with `body` as JSON; returns the status and the body, parsed when it is JSON.
async fn send(mut request: reqwest::RequestBuilder, body: Option<Value>) -> (u16, Value) {
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request is sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body is read");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// Deletes a test's JetStream streams once its platform has stopped.
pub async fn delete_nats_streams(url: &str, stream: &str, prefix: &str) {
    let env = [
        ("HELPDESK_EVENTS__BUS".to_owned(), "nats".to_owned()),
        ("HELPDESK_EVENTS__NATS_URL".to_owned(), url.to_owned()),
        ("HELPDESK_EVENTS__STREAM".to_owned(), stream.to_owned()),
        ("HELPDESK_EVENTS__SUBJECT_PREFIX".to_owned(), prefix.to_owned()),
    ];
    let config = Config::load_from(None, env).expect("nats configuration");
    let bus = helpdesk_events::NatsBus::connect(&config.events).await.expect("nats");
    bus.delete_stream().await.expect("test streams deleted");
}

/// `claims` signed with HS256 `secret`, naming `kid`.
pub fn sign(kid: &str, secret: &str, claims: Value) -> String {
    let header = jsonwebtoken::Header { kid: Some(kid.to_owned()), ..jsonwebtoken::Header::default() };
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()))
        .expect("token encodes")
}

/// A signing key for `tenant` that an admin allowed to sign customer and agent tokens.
async fn staff_signing_key(identity: &helpdesk_identity::IdentityStore, tenant: &str) -> (String, String) {
    use helpdesk_identity::tokens::{NewSigningKey, SigningAlgorithm};
    let new = NewSigningKey {
        name: "test widget and agent console".to_owned(),
        algorithm: SigningAlgorithm::Hs256,
        roles: vec![Role::Customer, Role::Agent],
        issuer: String::new(),
        audience: String::new(),
        public_key_pem: String::new(),
    };
    let (key, secret) = identity.create_signing_key(tenant, new).await.expect("signing key");
    (key.id, secret.expect("hs256 secret"))
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(trigger) = self.trigger.take() {
            trigger.trigger();
        }
    }
}

/// Runs each scenario once on SQLite and once on PostgreSQL. The PostgreSQL run needs
/// `HELPDESK_TEST_POSTGRES_URL` (CI always sets it) and says so when it is absent.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                async fn scenario($app: $crate::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    scenario($crate::spawn_app($crate::Backend::Sqlite).await).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if $crate::postgres_url().is_none() {
                        eprintln!("HELPDESK_TEST_POSTGRES_URL is not set: PostgreSQL run not possible here");
                        return;
                    }
                    scenario($crate::spawn_app($crate::Backend::Postgres).await).await;
                }
            }
        )*
    };
}
