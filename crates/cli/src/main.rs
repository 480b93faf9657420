//! `helpdesk`: run the whole platform in one process, or administer it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use helpdesk_cli::{DEMO_TENANT, Platform, demo};
use helpdesk_identity::tokens::{NewSigningKey, SigningAlgorithm};
use helpdesk_runtime::{auth::Role, config::Config, grpc, shutdown, telemetry};
use secrecy::ExposeSecret;

#[derive(Parser)]
#[command(name = "helpdesk", version, about = "Open-source customer-service platform")]
struct Cli {
    /// TOML configuration file; HELPDESK_* environment variables override it.
    #[arg(long, global = true, env = "HELPDESK_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway and every service in one process.
    Serve {
        /// Create a demo tenant with sample data and print an admin API key.
        #[arg(long)]
        demo: bool,
    },
    /// Administer tenants, keys and tokens.
    #[command(subcommand)]
    Admin(Admin),
    /// Print the REST API's OpenAPI document.
    Openapi,
    /// Print the gRPC API reference (Markdown) generated from the contracts.
    GrpcReference,
}

#[derive(Subcommand)]
enum Admin {
    /// Create a tenant (lowercase letters, digits and dashes).
    CreateTenant {
        #[arg(long)]
        id: String,
        #[arg(long)]
        name: String,
    },
    /// Issue an API key; prints the secret once.
    CreateApiKey {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value = "agent")]
        role: KeyRole,
    },
    /// Add a key that signs the tenant's JWTs; prints its id (the tokens' `kid`) and, for HS256,
    /// the secret, once. Tokens it signs may carry only the listed roles.
    CreateSigningKey {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        name: String,
        /// Roles its tokens may carry; staff roles only when listed.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "customer")]
        roles: Vec<TokenRole>,
        /// An RS256 public key (PEM file) instead of a new HS256 secret.
        #[arg(long)]
        rs256_public_key: Option<PathBuf>,
        /// `iss` every token must carry.
        #[arg(long, default_value = "")]
        issuer: String,
        /// `aud` every token must carry.
        #[arg(long, default_value = "")]
        audience: String,
    },
    /// List the events consumers gave up on (oldest first), with the reason.
    DeadLetters {
        /// Only this consumer's, e.g. routing-tickets or feedback-surveys.
        #[arg(long)]
        consumer: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Deliver a consumer's dead letters again, once what made them fail is fixed: all of them,
    /// or those named with --event-id.
    ReplayDeadLetters {
        #[arg(long)]
        consumer: String,
        #[arg(long = "event-id")]
        event_ids: Vec<String>,
    },
    /// Sign a JWT with one of the tenant's HS256 keys (the newest that allows the role, unless
    /// `--key` names one), e.g. for a customer of the web widget.
    IssueToken {
        #[arg(long)]
        tenant: String,
        #[arg(long)]
        subject: String,
        #[arg(long, value_enum, default_value = "customer")]
        role: TokenRole,
        #[arg(long, default_value_t = 60)]
        ttl_minutes: i64,
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KeyRole {
    Agent,
    Admin,
}

#[derive(Clone, Copy, ValueEnum)]
enum TokenRole {
    Customer,
    Agent,
    Admin,
}

impl TokenRole {
    fn role(self) -> Role {
        match self {
            Self::Customer => Role::Customer,
            Self::Agent => Role::Agent,
            Self::Admin => Role::Admin,
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => {
            println!("{}", helpdesk_gateway::openapi_json());
            return Ok(());
        }
        Command::GrpcReference => {
            print!("{}", helpdesk_cli::grpc_reference::markdown()?);
            return Ok(());
        }
        _ => {}
    }
    let config = Config::load(cli.config.as_deref())?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk");
    match cli.command {
        Command::Serve { demo } => serve(config, demo).await,
        Command::Admin(admin) => administer(config, admin).await,
        Command::Openapi | Command::GrpcReference => Ok(()),
    }
}

async fn serve(config: Config, demo: bool) -> anyhow::Result<()> {
    let platform = Platform::build(&config).await?;
    let (grpc_addr, http_addr, smtp_addr) = (platform.grpc_addr(), platform.http_addr(), platform.smtp_addr());
    let demo_key = if demo {
        let identity = platform.identity();
        identity.ensure_tenant(DEMO_TENANT, "Demo").await?;
        demo::ensure_widget_key(identity).await?;
        Some(match &config.bootstrap_api_key {
            Some(key) => key.expose_secret().to_owned(),
            None => identity.create_api_key(DEMO_TENANT, "demo admin", Role::Admin).await?.token,
        })
    } else {
        None
    };
    let (trigger, shutdown) = shutdown::channel();
    let mut running = tokio::spawn(platform.run(shutdown));
    tracing::info!(%grpc_addr, %http_addr, data_dir = %config.data_dir.display(), "helpdesk serving");
    if let Some(key) = demo_key {
        let channel = grpc::lazy_channel(&format!("http://{grpc_addr}"))?;
        demo::seed(channel, &key).await.context("seeding demo data")?;
        println!("demo tenant ready: tenant=demo");
        println!("  admin API key: {key}");
        println!(
            "  workspace: http://{http_addr}/app  (workspace demo, {} / {})",
            demo::DEMO_AGENT_EMAIL,
            demo::DEMO_AGENT_PASSWORD
        );
        println!("  REST:  curl -H 'Authorization: Bearer {key}' http://{http_addr}/v1/tickets");
        println!("  gRPC:  grpcurl -plaintext -H 'authorization: Bearer {key}' {grpc_addr} list");
        println!("  a customer's token: helpdesk admin issue-token --tenant demo --subject <customer id>");
        if let Some(smtp) = smtp_addr {
            println!("  mail:  swaks --server {smtp} --to {} --from you@example.com", demo::DEMO_MAILBOX_ADDRESS);
        }
    }
    tokio::select! {
        () = shutdown::os_signal() => {
            trigger.trigger();
            running.await.context("platform task")??;
        }
        // A server that fails on its own ends the process too.
        result = &mut running => result.context("platform task")??,
    }
    tracing::info!("helpdesk stopped");
    Ok(())
}

async fn administer(config: Config, admin: Admin) -> anyhow::Result<()> {
    match admin {
        Admin::CreateTenant { id, name } => {
            let identity = helpdesk_identity::open_store(&config).await?;
            let created = identity.ensure_tenant(&id, &name).await?;
            println!("{}", if created { "tenant created" } else { "tenant already exists" });
        }
        Admin::CreateApiKey { tenant, name, role } => {
            let identity = helpdesk_identity::open_store(&config).await?;
            let role = match role {
                KeyRole::Agent => Role::Agent,
                KeyRole::Admin => Role::Admin,
            };
            let issued = identity.create_api_key(&tenant, &name, role).await?;
            println!("{}", issued.token);
        }
        Admin::CreateSigningKey { tenant, name, roles, rs256_public_key, issuer, audience } => {
            let identity = helpdesk_identity::open_store(&config).await?;
            let (algorithm, public_key_pem) = match rs256_public_key {
                Some(path) => (
                    SigningAlgorithm::Rs256,
                    std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?,
                ),
                None => (SigningAlgorithm::Hs256, String::new()),
            };
            let roles = roles.into_iter().map(TokenRole::role).collect();
            let new = NewSigningKey { name, algorithm, roles, issuer, audience, public_key_pem };
            let (key, secret) = identity.create_signing_key(&tenant, new).await?;
            println!("kid: {}", key.id);
            if let Some(secret) = secret {
                println!("secret: {secret}");
            }
        }
        Admin::DeadLetters { consumer, limit } => {
            let bus = helpdesk_events::connect(&config).await?;
            let letters = bus.dead_letters(consumer.as_deref(), limit).await?;
            for letter in &letters {
                let failed_at = chrono::DateTime::from_timestamp_micros(letter.failed_at).unwrap_or_default();
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    failed_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    letter.consumer,
                    letter.event.id,
                    helpdesk_events::subject(&config.events.subject_prefix, &letter.event),
                    letter.error
                );
            }
            eprintln!("{} dead letter(s)", letters.len());
        }
        Admin::ReplayDeadLetters { consumer, event_ids } => {
            let bus = helpdesk_events::connect(&config).await?;
            let replayed = bus.replay(&consumer, &event_ids).await?;
            bus.close().await;
            println!("{replayed} dead letter(s) of {consumer} delivered again");
        }
        Admin::IssueToken { tenant, subject, role, ttl_minutes, key } => {
            let identity = helpdesk_identity::open_store(&config).await?;
            let role = role.role();
            let now = chrono::Utc::now().timestamp_micros();
            let signing = identity
                .list_signing_keys(&tenant)
                .await?
                .into_iter()
                .rev()
                .find(|candidate| {
                    key.as_ref().is_none_or(|kid| candidate.id == *kid)
                        && candidate.algorithm == SigningAlgorithm::Hs256
                        && candidate.roles.contains(&role)
                        && candidate.retires_at.is_none_or(|retires| retires > now)
                })
                .with_context(|| {
                    format!(
                        "tenant {tenant} has no live HS256 signing key for {}: add one with create-signing-key",
                        role.as_str()
                    )
                })?;
            let mut claims = serde_json_claims(&tenant, &subject, role.as_str(), ttl_minutes);
            // What the key requires, the token carries.
            claims.iss = Some(signing.issuer.clone()).filter(|issuer| !issuer.is_empty());
            claims.aud = Some(signing.audience.clone()).filter(|audience| !audience.is_empty());
            let header = jsonwebtoken::Header { kid: Some(signing.id.clone()), ..jsonwebtoken::Header::default() };
            let token = jsonwebtoken::encode(
                &header,
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(signing.secret.expose_secret().as_bytes()),
            )?;
            println!("{token}");
        }
    }
    Ok(())
}

#[derive(serde::Serialize)]
struct Claims<'a> {
    sub: &'a str,
    tenant_id: &'a str,
    role: &'a str,
    iat: i64,
    exp: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
}

fn serde_json_claims<'a>(tenant: &'a str, subject: &'a str, role: &'a str, ttl_minutes: i64) -> Claims<'a> {
    let now = chrono::Utc::now().timestamp();
    Claims { sub: subject, tenant_id: tenant, role, iat: now, exp: now + ttl_minutes * 60, iss: None, aud: None }
}
