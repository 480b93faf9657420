//! gRPC server plumbing shared by every service: the authentication layer, standard health and
//! reflection, W3C trace-context propagation, and outgoing requests that carry credentials.

use std::{
    sync::Arc,
    task::{Context, Poll},
};

use helpdesk_proto::{
    routing::v1::{routing_service_client::RoutingServiceClient, sla_service_client::SlaServiceClient},
    ticketing::v1::{
        attachment_service_client::AttachmentServiceClient, customer_service_client::CustomerServiceClient,
        ticket_service_client::TicketServiceClient,
    },
};
use tonic::{body::Body, metadata::MetadataValue};
use tower::{Layer, Service};

use crate::{
    auth::{Authenticator, BoxFuture},
    db::Database,
    shutdown::Shutdown,
    telemetry,
};

/// Methods that answer without credentials: probes and reflection.
const OPEN_PATHS: &[&str] =
    &["/grpc.health.v1.Health/", "/grpc.reflection.v1.ServerReflection/", "/grpc.reflection.v1alpha.ServerReflection/"];

/// The public services: no credentials needed, each client address rate-limited, unless a
/// service (the gateway, which limits its own clients) calls with its token.
const PUBLIC_PATHS: &[&str] = &[
    // The public help center: published public articles only.
    "/helpdesk.knowledge.v1.HelpCenterService/",
    // Survey links: the signed token in each request is the credential.
    "/helpdesk.feedback.v1.SurveyAnswerService/",
];

type PublicLimiter = governor::RateLimiter<
    std::net::IpAddr,
    governor::state::keyed::DefaultKeyedStateStore<std::net::IpAddr>,
    governor::clock::DefaultClock,
>;

/// Runs a unary call for its authenticated caller (placed in the request by [`AuthLayer`]) and
/// turns the domain's error into a status: the whole of most handlers.
pub async fn handle<Req, Res, Fut>(
    request: tonic::Request<Req>,
    call: impl FnOnce(crate::auth::Principal, Req) -> Fut,
) -> Result<tonic::Response<Res>, tonic::Status>
where
    Fut: std::future::Future<Output = Result<Res, crate::ServiceError>>,
{
    let caller = crate::auth::principal(&request)?;
    Ok(tonic::Response::new(call(caller, request.into_inner()).await?))
}

/// Who may call a method, checked before it runs.
#[derive(Clone, Copy, Debug)]
pub enum Needs {
    /// Any authenticated caller, customers included.
    Anyone,
    /// Agents and admins.
    Staff,
    /// Admins only.
    Admin,
    /// Other services of the platform, on their own behalf.
    Service,
}

/// [`handle`] for callers with the role a method `needs`.
pub async fn handle_as<Req, Res, Fut>(
    request: tonic::Request<Req>,
    needs: Needs,
    call: impl FnOnce(crate::auth::Principal, Req) -> Fut,
) -> Result<tonic::Response<Res>, tonic::Status>
where
    Fut: std::future::Future<Output = Result<Res, crate::ServiceError>>,
{
    handle(request, |caller, request| async move {
        match needs {
            Needs::Anyone => {}
            Needs::Staff => caller.require_staff()?,
            Needs::Admin => caller.require_admin()?,
            Needs::Service if !caller.is_service() => {
                return Err(crate::ServiceError::permission_denied("services of the platform only"));
            }
            Needs::Service => {}
        }
        call(caller, request).await
    })
    .await
}

/// Authenticates every non-public request and stores the [`crate::auth::Principal`] in its
/// extensions, where handlers read it with [`crate::auth::principal`].
#[derive(Clone)]
pub struct AuthLayer {
    authenticator: Arc<Authenticator>,
    public: Arc<PublicLimiter>,
}

impl AuthLayer {
    pub fn new(authenticator: Arc<Authenticator>, config: &crate::config::GrpcConfig) -> Self {
        use std::num::NonZeroU32;
        let per_second = NonZeroU32::new(config.public_rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.public_rate_limit_burst).unwrap_or(per_second);
        let quota = governor::Quota::per_second(per_second).allow_burst(burst);
        Self { authenticator, public: Arc::new(governor::RateLimiter::keyed(quota)) }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService { inner, authenticator: self.authenticator.clone(), public: self.public.clone() }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    authenticator: Arc<Authenticator>,
    public: Arc<PublicLimiter>,
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that must serve this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let path = request.uri().path();
        if OPEN_PATHS.iter().any(|open| path.starts_with(open)) {
            return Box::pin(inner.call(request));
        }
        let public = PUBLIC_PATHS.iter().any(|public| path.starts_with(public));
        let (authenticator, limiter) = (self.authenticator.clone(), self.public.clone());
        Box::pin(async move {
            let header = request.headers().get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok());
            let client = peer_address(&request);
            if public && header.is_none() {
                let client = client.unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
                if limiter.check_key(&client).is_err() {
                    let error = crate::ServiceError::new(crate::ErrorKind::TooManyRequests, "too many requests");
                    return Ok(error.into_status().into_http());
                }
                if limiter.len() > 100_000 {
                    limiter.retain_recent();
                }
                return inner.call(request).await;
            }
            match authenticator.authenticate(header, client).await {
                // A public service called with credentials: only a service's skip the limit.
                Ok(principal) if public && !principal.is_service() => {
                    Ok(crate::ServiceError::permission_denied("call the public services without credentials")
                        .into_status()
                        .into_http())
                }
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                    inner.call(request).await
                }
                Err(error) => Ok(error.into_status().into_http()),
            }
        })
    }
}

/// The address a gRPC request came from.
pub fn peer_address<B>(request: &http::Request<B>) -> Option<std::net::IpAddr> {
    request
        .extensions()
        .get::<tonic::transport::server::TcpConnectInfo>()
        .and_then(|info| info.remote_addr())
        .map(|address| address.ip())
}

/// The standard health service, NOT_SERVING for every listed service until [`Health::serving`].
#[derive(Clone)]
pub struct Health {
    reporter: tonic_health::server::HealthReporter,
    services: Vec<&'static str>,
}

impl Health {
    /// Adds the health service to `routes`, reporting NOT_SERVING.
    pub async fn new(services: Vec<&'static str>, routes: &mut tonic::service::RoutesBuilder) -> Self {
        let (reporter, server) = tonic_health::server::health_reporter();
        routes.add_service(server);
        let health = Self { reporter, services };
        health.set(tonic_health::ServingStatus::NotServing).await;
        health
    }

    pub async fn serving(&self) {
        self.set(tonic_health::ServingStatus::Serving).await;
    }

    pub async fn not_serving(&self) {
        self.set(tonic_health::ServingStatus::NotServing).await;
    }

    /// Follows the databases every five seconds until `shutdown`: NOT_SERVING while any of them
    /// does not answer, so that load balancers stop sending traffic to a pod that cannot serve it.
    pub fn watch(&self, databases: Vec<Database>, shutdown: Shutdown) {
        let health = self.clone();
        tokio::spawn(async move {
            let mut healthy = true;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    () = shutdown.clone().wait() => return,
                }
                let mut all = true;
                for database in &databases {
                    all &= database.ping().await;
                }
                if all != healthy && !shutdown.is_triggered() {
                    healthy = all;
                    if healthy {
                        tracing::info!("database reachable again; serving");
                        health.serving().await;
                    } else {
                        tracing::warn!("database unreachable; reporting NOT_SERVING");
                        health.not_serving().await;
                    }
                }
            }
        });
    }

    async fn set(&self, status: tonic_health::ServingStatus) {
        // "" is the whole server, as Kubernetes' grpc probe asks by default.
        self.reporter.set_service_status("", status).await;
        for service in &self.services {
            self.reporter.set_service_status(*service, status).await;
        }
    }
}

/// gRPC reflection (v1 and v1alpha) over every helpdesk contract.
pub fn reflection() -> (
    tonic_reflection::server::v1::ServerReflectionServer<impl tonic_reflection::server::v1::ServerReflection>,
    tonic_reflection::server::v1alpha::ServerReflectionServer<impl tonic_reflection::server::v1alpha::ServerReflection>,
) {
    let v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(helpdesk_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1();
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(helpdesk_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha();
    match (v1, v1alpha) {
        (Ok(v1), Ok(v1alpha)) => (v1, v1alpha),
        // The descriptor sets are compiled in; failing here is a build defect.
        (Err(error), _) | (_, Err(error)) => panic!("embedded descriptor set is invalid: {error}"),
    }
}

/// Serves `routes` (plus reflection, as configured) on `listener`, authenticating every
/// non-public call and limiting public ones per client, until `shutdown`: then health turns
/// NOT_SERVING and in-flight calls drain before the server stops.
pub async fn serve(
    listener: tokio::net::TcpListener,
    mut routes: tonic::service::RoutesBuilder,
    authenticator: Arc<Authenticator>,
    health: Health,
    config: &crate::config::GrpcConfig,
    shutdown: Shutdown,
) -> Result<(), tonic::transport::Error> {
    if config.reflection {
        let (v1, v1alpha) = reflection();
        routes.add_service(v1).add_service(v1alpha);
    }
    health.serving().await;
    tonic::transport::Server::builder()
        .trace_fn(|request| telemetry::server_span(request.uri().path(), request.headers()))
        .layer(AuthLayer::new(authenticator, config))
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming(listener), async move {
            shutdown.wait().await;
            health.not_serving().await;
        })
        .await
}

/// Accepted connections with Nagle's algorithm off: the server's own `tcp_nodelay` setting does
/// not reach connections from a listener bound by the caller, and without it small responses
/// wait for delayed ACKs (40 ms on Linux).
pub fn incoming(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(error) = stream.set_nodelay(true) {
                tracing::debug!(%error, "cannot disable nagle");
            }
        })
    })
}

/// An outgoing request carrying the caller's credentials and the current trace context.
pub fn outgoing<T>(message: T, authorization: Option<&str>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(value) = authorization.and_then(|value| MetadataValue::try_from(value).ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    telemetry::inject_trace_context(request.metadata_mut());
    request
}

/// Another service as one service reaches it on its own behalf: the channel, and the tokens it
/// presents there (admin of the tenant it acts in, `service:<name>` as subject).
#[derive(Clone)]
pub struct ServiceLink {
    pub channel: tonic::transport::Channel,
    pub tokens: Arc<crate::auth::ServiceTokens>,
}

impl ServiceLink {
    pub fn new(channel: tonic::transport::Channel, tokens: Arc<crate::auth::ServiceTokens>) -> Self {
        Self { channel, tokens }
    }

    /// A request within `tenant`, carrying the service's own token.
    pub fn request<T>(&self, tenant: &str, message: T) -> Result<tonic::Request<T>, crate::ServiceError> {
        Ok(outgoing(message, Some(&self.tokens.bearer(tenant)?)))
    }
}

/// How a channel or automation service reaches ticketing (tickets, customers) and routing
/// (agents, service levels) on its own behalf.
#[derive(Clone)]
pub struct Peers {
    pub ticketing: ServiceLink,
    pub routing: ServiceLink,
}

impl Peers {
    pub fn tickets(&self) -> TicketServiceClient<tonic::transport::Channel> {
        TicketServiceClient::new(self.ticketing.channel.clone())
    }

    /// Takes files as large as ticketing's store allows (`attachments.max_file_bytes`, at most
    /// 100 MiB).
    pub fn attachments(&self) -> AttachmentServiceClient<tonic::transport::Channel> {
        AttachmentServiceClient::new(self.ticketing.channel.clone()).max_decoding_message_size(101 * 1024 * 1024)
    }

    pub fn customers(&self) -> CustomerServiceClient<tonic::transport::Channel> {
        CustomerServiceClient::new(self.ticketing.channel.clone())
    }

    pub fn agents(&self) -> RoutingServiceClient<tonic::transport::Channel> {
        RoutingServiceClient::new(self.routing.channel.clone())
    }

    pub fn sla(&self) -> SlaServiceClient<tonic::transport::Channel> {
        SlaServiceClient::new(self.routing.channel.clone())
    }

    /// A request within `tenant` (the same token serves both peers).
    pub fn request<T>(&self, tenant: &str, message: T) -> Result<tonic::Request<T>, crate::ServiceError> {
        self.ticketing.request(tenant, message)
    }
}

/// Connects lazily, so a service may start before its peers.
pub fn lazy_channel(url: &str) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect_timeout(std::time::Duration::from_secs(5))
        .connect_lazy())
}
