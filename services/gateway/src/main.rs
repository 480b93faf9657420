//! The REST gateway on its own, for Kubernetes.

use anyhow::Context;
use helpdesk_gateway::Backends;
use helpdesk_runtime::{auth::ServiceTokens, config::Config, grpc, shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = Config::from_env()?;
    let _telemetry = telemetry::init(&config.telemetry, "helpdesk-gateway");
    let identity = grpc::lazy_channel(&config.services.identity_url)?;
    let ticketing = grpc::lazy_channel(&config.services.ticketing_url)?;
    let routing = grpc::lazy_channel(&config.services.routing_url)?;
    let knowledge = grpc::lazy_channel(&config.services.knowledge_url)?;
    let feedback = grpc::lazy_channel(&config.services.feedback_url)?;
    let email = grpc::lazy_channel(&config.services.email_url)?;
    // The gateway publishes nothing; it follows identity's revocations on the bus.
    let bus = helpdesk_events::connect(&config).await?;
    let authenticator = helpdesk_identity::remote_authenticator(&config, "gateway", &bus)?;
    // remote_authenticator has made sure the secret is set.
    let secret = config.auth.service_secret.as_ref().context("auth.service_secret must be set")?;
    let tokens = std::sync::Arc::new(ServiceTokens::new("gateway", secret));
    let backends = Backends { ticketing, identity, routing, knowledge, feedback, email, tokens };
    let router = helpdesk_gateway::router(&config.gateway, authenticator, backends)?;
    let listener = tokio::net::TcpListener::bind(config.http_addr).await?;
    tracing::info!(http_addr = %listener.local_addr()?, "gateway serving");
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    // The client address keys the rate limit of the public help center and survey links.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service).with_graceful_shutdown(shutdown::on_os_signal().wait()).await?;
    Ok(())
}
