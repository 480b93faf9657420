//! Connections to the mailboxes' outgoing relays, kept open between replies and shared by the
//! senders. They are opened here rather than by lettre's transport for two reasons: TCP_NODELAY
//! (lettre writes a message's closing `.` on its own, which Nagle's algorithm holds until the
//! body is acknowledged: 40 ms of delayed ACK per message with most servers), and the TLS roots
//! of configuration (`email.tls_ca_file`) for implicit TLS.

use std::{
    collections::HashMap,
    pin::Pin,
    sync::Mutex,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use helpdesk_proto::email::v1::{Security, SmtpSettings};
use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, AsyncTokioStream, Certificate, TlsParameters},
        extension::ClientId,
    },
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// How long a connection or one command may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// Idle connections kept per relay, and for how long: servers close idle sessions after a few
/// minutes (Postfix after 300 s).
const IDLE_PER_RELAY: usize = 16;
const IDLE_FOR: Duration = Duration::from_secs(60);

/// A relay and the login used on it; connections are shared only between equal ones.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Relay {
    host: String,
    port: u16,
    security: Security,
    username: String,
    password: String,
}

/// Why a message was not handed to the relay.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RelayError {
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    #[error("cannot connect to the relay: {0}")]
    Connect(std::io::Error),
    #[error("the relay did not answer within {TIMEOUT:?}")]
    Timeout,
}

impl RelayError {
    /// Whether the relay refused the message for good (a 5xx answer); anything else may pass.
    pub(crate) fn is_permanent(&self) -> bool {
        matches!(self, Self::Smtp(error) if error.is_permanent())
    }
}

pub(crate) struct Relays {
    idle: Mutex<HashMap<Relay, Vec<(Instant, AsyncSmtpConnection)>>>,
    tls: tokio_rustls::TlsConnector,
    /// The PEM certificates of `email.tls_ca_file`, for STARTTLS (upgraded by lettre).
    extra_roots: Vec<u8>,
    hello: ClientId,
}

impl Relays {
    pub(crate) fn new(tls: tokio_rustls::TlsConnector, extra_roots: Vec<u8>, hostname: &str) -> Self {
        Self { idle: Mutex::default(), tls, extra_roots, hello: ClientId::Domain(hostname.to_owned()) }
    }

    /// Sends `raw` through the relay, on an idle connection when one is open (a fresh one when
    /// that has gone stale); the connection is kept for the next message.
    pub(crate) async fn send(
        &self,
        settings: &SmtpSettings,
        password: &str,
        envelope: &Envelope,
        raw: &[u8],
    ) -> Result<(), RelayError> {
        let security = Security::try_from(settings.security).unwrap_or(Security::Tls);
        let port = match (u16::try_from(settings.port).unwrap_or(0), security) {
            (0, Security::Tls | Security::Unspecified) => 465,
            (0, Security::Starttls) => 587,
            (0, Security::None) => 25,
            (port, _) => port,
        };
        let relay = Relay {
            host: settings.host.clone(),
            port,
            security,
            username: settings.username.clone(),
            password: password.to_owned(),
        };
        if let Some(mut connection) = self.take_idle(&relay) {
            match within(connection.send(envelope, raw)).await.map(drop) {
                Ok(()) => {
                    self.keep(relay, connection);
                    return Ok(());
                }
                Err(error) if error.is_permanent() => {
                    if !connection.has_broken() {
                        self.keep(relay, connection);
                    }
                    return Err(error);
                }
                // Closed by the server while idle: try once on a fresh connection.
                Err(error) => tracing::debug!(%error, "idle relay connection unusable; reconnecting"),
            }
        }
        let mut connection = self.connect(&relay).await?;
        let sent = within(connection.send(envelope, raw)).await.map(drop);
        if !connection.has_broken() {
            self.keep(relay, connection);
        }
        sent
    }

    fn take_idle(&self, relay: &Relay) -> Option<AsyncSmtpConnection> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let connections = idle.get_mut(relay)?;
        connections.retain(|(since, _)| since.elapsed() < IDLE_FOR);
        connections.pop().map(|(_, connection)| connection)
    }

    fn keep(&self, relay: Relay, connection: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let connections = idle.entry(relay).or_default();
        if connections.len() < IDLE_PER_RELAY {
            connections.push((Instant::now(), connection));
        }
    }

    async fn connect(&self, relay: &Relay) -> Result<AsyncSmtpConnection, RelayError> {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect((relay.host.as_str(), relay.port)))
            .await
            .map_err(|_| RelayError::Timeout)?
            .map_err(RelayError::Connect)?;
        tcp.set_nodelay(true).map_err(RelayError::Connect)?;
        let stream: Box<dyn AsyncTokioStream> = match relay.security {
            Security::Tls | Security::Unspecified => {
                let name = rustls::pki_types::ServerName::try_from(relay.host.clone())
                    .map_err(|error| RelayError::Connect(std::io::Error::other(error)))?;
                let tls = tokio::time::timeout(TIMEOUT, self.tls.connect(name, tcp))
                    .await
                    .map_err(|_| RelayError::Timeout)?
                    .map_err(RelayError::Connect)?;
                Box::new(TlsRelayStream(tls))
            }
            Security::Starttls | Security::None => Box::new(tcp),
        };
        let mut connection = within(AsyncSmtpConnection::connect_with_transport(stream, &self.hello)).await?;
        if relay.security == Security::Starttls {
            let mut parameters = TlsParameters::builder(relay.host.clone());
            if !self.extra_roots.is_empty() {
                for certificate in pem_certificates(&self.extra_roots) {
                    parameters = parameters.add_root_certificate(certificate?);
                }
            }
            let parameters = parameters.build_rustls()?;
            within(connection.starttls(parameters, &self.hello)).await?;
        }
        if !relay.username.is_empty() {
            let credentials = Credentials::new(relay.username.clone(), relay.password.clone());
            within(connection.auth(&[Mechanism::Plain, Mechanism::Login], &credentials)).await?;
        }
        Ok(connection)
    }
}

/// Each certificate of a PEM bundle, for lettre's TLS parameters.
fn pem_certificates(pem: &[u8]) -> impl Iterator<Item = Result<Certificate, RelayError>> + '_ {
    use rustls::pki_types::{CertificateDer, pem::PemObject};
    CertificateDer::pem_slice_iter(pem).map(|certificate| {
        let der = certificate.map_err(|error| RelayError::Connect(std::io::Error::other(error)))?;
        Ok(Certificate::from_der(der.to_vec())?)
    })
}

async fn within<T, E>(command: impl Future<Output = Result<T, E>>) -> Result<T, RelayError>
where
    RelayError: From<E>,
{
    match tokio::time::timeout(TIMEOUT, command).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(RelayError::Timeout),
    }
}

/// A TLS connection lettre can speak SMTP over.
#[derive(Debug)]
struct TlsRelayStream(tokio_rustls::client::TlsStream<TcpStream>);

impl AsyncTokioStream for TlsRelayStream {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.0.get_ref().0.peer_addr()
    }
}

impl AsyncRead for TlsRelayStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsRelayStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
