//! The agent workspace on its own: `/app` on the HTTP port, the services over gRPC.

use std::sync::Arc;

use anyhow::Context;
use helpdesk_runtime::{auth::ServiceTokens, config::Config, grpc, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-web");
    let bus = helpdesk_events::connect(&config).await.context("event bus")?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "web", &bus)?;
    let secret = config.auth.service_secret.as_ref().context("auth.service_secret must be set")?;
    let backends = helpdesk_web::Backends {
        ticketing: grpc::lazy_channel(&config.services.ticketing_url)?,
        identity: grpc::lazy_channel(&config.services.identity_url)?,
        routing: grpc::lazy_channel(&config.services.routing_url)?,
        knowledge: grpc::lazy_channel(&config.services.knowledge_url)?,
        feedback: grpc::lazy_channel(&config.services.feedback_url)?,
        authenticator,
        tokens: Arc::new(ServiceTokens::new("web", secret)),
        bus,
    };
    let app = helpdesk_web::router(backends, helpdesk_web::Settings::from(&config));
    let listener =
        tokio::net::TcpListener::bind(config.http_addr).await.with_context(|| format!("bind {}", config.http_addr))?;
    tracing::info!(http_addr = %listener.local_addr()?, "helpdesk-web serving");
    axum::serve(listener, app).with_graceful_shutdown(shutdown::on_os_signal().wait()).await?;
    Ok(())
}
