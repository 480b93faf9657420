use std::{net::SocketAddr, sync::Arc};

use anyhow::Context;
use helpdesk_events::EventBus;
use helpdesk_gateway::Backends;
use helpdesk_identity::{IdentityStore, LocalResolver};
use helpdesk_runtime::{
    auth::{ApiKeySecret, Authenticator, Role, ServiceTokens},
    config::Config,
    grpc::{self, Health, ServiceLink},
    service::Service,
    shutdown::Shutdown,
};
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;

pub use helpdesk_identity::BOOTSTRAP_TENANT as DEMO_TENANT;

/// Every service in one process: one gRPC port for all services, the gateway on the HTTP port,
/// each service on its own database (one SQLite file each by default).
pub struct Platform {
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    routes: RoutesBuilder,
    health: Health,
    authenticator: Arc<Authenticator>,
    gateway_authenticator: Arc<Authenticator>,
    web_authenticator: Arc<Authenticator>,
    ticketing: helpdesk_ticketing::TicketingService,
    databases: Vec<helpdesk_runtime::db::Database>,
    gateway: axum::Router,
    identity: helpdesk_identity::IdentityService,
    bus: Arc<dyn EventBus>,
    routing: helpdesk_routing::RoutingService,
    knowledge: helpdesk_knowledge::KnowledgeService,
    feedback: helpdesk_feedback::FeedbackService,
    email: helpdesk_email::EmailService,
    grpc_config: helpdesk_runtime::config::GrpcConfig,
}

impl Platform {
    /// Opens the databases, runs migrations and binds both listeners (port 0 picks free ports).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let bus = helpdesk_events::connect(config).await.context("event bus")?;
        let identity = helpdesk_identity::open(config, bus.clone()).await?;
        let store = identity.store();
        let ticketing = helpdesk_ticketing::open(config, bus.clone()).await?;
        // Services in one process trust each other through a secret made up for this run.
        let mut auth = config.auth.clone();
        let service_secret = auth.service_secret.get_or_insert_with(|| ApiKeySecret::generate().secret.into()).clone();
        let authenticator = Arc::new(Authenticator::new(&auth, Arc::new(LocalResolver(store.clone()))));
        // The gateway counts its clients' failed logins apart from gRPC's peers, as it would in a
        // process of its own: all of its calls reach gRPC from this process's address.
        let gateway_authenticator = Arc::new(Authenticator::new(&auth, Arc::new(LocalResolver(store.clone()))));
        if let Some(key) = &config.bootstrap_api_key {
            store.ensure_tenant(DEMO_TENANT, "Demo").await?;
            store.import_api_key(DEMO_TENANT, "bootstrap admin", Role::Admin, key.expose_secret()).await?;
        }

        let grpc_listener =
            TcpListener::bind(config.grpc_addr).await.with_context(|| format!("bind {}", config.grpc_addr))?;
        let http_listener =
            TcpListener::bind(config.http_addr).await.with_context(|| format!("bind {}", config.http_addr))?;
        let channel = grpc::lazy_channel(&format!("http://{}", grpc_listener.local_addr()?))?;
        // Each service presents its own tokens to the others; in one process they share a channel.
        let link = |name: &str| ServiceLink::new(channel.clone(), Arc::new(ServiceTokens::new(name, &service_secret)));
        let routing = helpdesk_routing::open(config, bus.clone(), link("routing")).await?;
        let feedback_link = link("feedback");
        let peers = helpdesk_feedback::Peers { ticketing: feedback_link.clone(), routing: feedback_link };
        let knowledge = helpdesk_knowledge::open(config, bus.as_ref(), Some(link("knowledge"))).await?;
        // Survey links point at this process's gateway unless the address customers use is set.
        let public_url = match &config.feedback.public_url {
            Some(url) => url.clone(),
            None => {
                let mut address = http_listener.local_addr()?;
                // Bound to every interface, it is reachable on loopback at least.
                if address.ip().is_unspecified() {
                    address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
                }
                format!("http://{address}")
            }
        };
        let feedback = helpdesk_feedback::open(config, &public_url, bus.clone(), peers).await?;
        let email_link = link("email");
        let email_peers = helpdesk_email::Peers { ticketing: email_link.clone(), routing: email_link };
        let email = helpdesk_email::open(config, bus.as_ref(), email_peers).await?;

        let mut routes = RoutesBuilder::default();
        let mut services = helpdesk_identity::IdentityService::GRPC_SERVICES.to_vec();
        services.extend(helpdesk_ticketing::TicketingService::GRPC_SERVICES);
        services.extend(helpdesk_routing::RoutingService::GRPC_SERVICES);
        services.extend(helpdesk_knowledge::KnowledgeService::GRPC_SERVICES);
        services.extend(helpdesk_feedback::FeedbackService::GRPC_SERVICES);
        services.extend(helpdesk_email::EmailService::GRPC_SERVICES);
        let health = Health::new(services, &mut routes).await;
        identity.add_routes(&mut routes);
        ticketing.add_routes(&mut routes);
        routing.add_routes(&mut routes);
        knowledge.add_routes(&mut routes);
        feedback.add_routes(&mut routes);
        email.add_routes(&mut routes);

        // The workspace counts failed sign-ins apart from the gateway's clients, as in its own process.
        let web_authenticator = Arc::new(Authenticator::new(&auth, Arc::new(LocalResolver(store.clone()))));
        let web = helpdesk_web::router(
            helpdesk_web::Backends {
                ticketing: channel.clone(),
                identity: channel.clone(),
                routing: channel.clone(),
                knowledge: channel.clone(),
                feedback: channel.clone(),
                authenticator: web_authenticator.clone(),
                tokens: Arc::new(ServiceTokens::new("web", &service_secret)),
                bus: bus.clone(),
            },
            // Article links in replies point where survey links do.
            helpdesk_web::Settings { public_url: public_url.clone(), ..helpdesk_web::Settings::from(config) },
        );
        let gateway = helpdesk_gateway::router(
            &config.gateway,
            gateway_authenticator.clone(),
            Backends {
                ticketing: channel.clone(),
                identity: channel.clone(),
                routing: channel.clone(),
                knowledge: channel.clone(),
                feedback: channel.clone(),
                email: channel,
                tokens: Arc::new(ServiceTokens::new("gateway", &service_secret)),
            },
        )?
        .merge(web);
        let databases = vec![
            identity.database().clone(),
            ticketing.database().clone(),
            routing.database().clone(),
            knowledge.database().clone(),
            feedback.database().clone(),
            email.database().clone(),
        ];
        Ok(Self {
            grpc_listener,
            http_listener,
            routes,
            health,
            authenticator,
            gateway_authenticator,
            web_authenticator,
            ticketing,
            databases,
            gateway,
            identity,
            bus,
            routing,
            knowledge,
            feedback,
            email,
            grpc_config: config.grpc.clone(),
        })
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn http_addr(&self) -> SocketAddr {
        self.http_listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The tenants and API keys, for admin commands and tests.
    pub fn identity(&self) -> &IdentityStore {
        self.identity.store()
    }

    /// The routing service's core, for tests that move its clock.
    pub fn router(&self) -> Arc<helpdesk_routing::Router> {
        self.routing.router().clone()
    }

    /// The feedback service's core, for tests that drive surveys and reports directly.
    pub fn feedback(&self) -> Arc<helpdesk_feedback::Feedback> {
        self.feedback.feedback().clone()
    }

    /// Where the email service's SMTP listener took mail, if it runs.
    pub fn smtp_addr(&self) -> Option<SocketAddr> {
        self.email.smtp_addr()
    }

    /// The bus the platform publishes its events to.
    pub fn bus(&self) -> Arc<dyn EventBus> {
        self.bus.clone()
    }

    /// Serves until `shutdown`, then drains in-flight requests and the event outbox.
    pub async fn run(self, shutdown: Shutdown) -> anyhow::Result<()> {
        let ticketing = tokio::spawn(self.ticketing.run(shutdown.clone()));
        let routing = tokio::spawn(self.routing.run(shutdown.clone()));
        let knowledge = tokio::spawn(self.knowledge.run(shutdown.clone()));
        let feedback = tokio::spawn(self.feedback.run(shutdown.clone()));
        let email = tokio::spawn(self.email.run(shutdown.clone()));
        self.health.watch(self.databases, shutdown.clone());
        for authenticator in [&self.authenticator, &self.gateway_authenticator, &self.web_authenticator] {
            helpdesk_identity::follow_revocations(self.bus.clone(), authenticator.clone(), shutdown.clone());
        }
        let grpc = grpc::serve(
            self.grpc_listener,
            self.routes,
            self.authenticator,
            self.health,
            &self.grpc_config,
            shutdown.clone(),
        );
        let listener = axum::serve::ListenerExt::tap_io(self.http_listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        // The client address keys the public help center's rate limit.
        let gateway = self.gateway.into_make_service_with_connect_info::<SocketAddr>();
        let http = axum::serve(listener, gateway).with_graceful_shutdown(shutdown.wait());
        let (grpc, http) = tokio::join!(grpc, http);
        grpc.context("grpc server")?;
        http.context("http server")?;
        ticketing.await.context("ticketing")?;
        routing.await.context("routing")?;
        knowledge.await.context("knowledge")?;
        feedback.await.context("feedback")?;
        email.await.context("email")?;
        self.bus.close().await;
        Ok(())
    }
}
