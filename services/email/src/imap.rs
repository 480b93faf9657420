//! Fetching mailboxes over IMAP. A mailbox is fetched by one replica at a time, the holder of its
//! lease in `imap_state` (a row with an expiry, renewed while it fetches), so that N replicas
//! never fetch the same mailbox at once and a dead replica's mailboxes are taken over once its
//! leases lapse; every mailbox has its own task, so one slow server or one large message holds
//! up no other mailbox. Messages are fetched in UID order and each is stored through intake
//! (deduplicated) before the mailbox's UID mark moves past it: a crash fetches at most one batch
//! again, which the dedup key turns into nothing. A changed UIDVALIDITY (the folder was
//! recreated) starts the folder over, again with dedup keeping what was stored before. Mail is
//! read with `BODY.PEEK[]` and left as it is on the server.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_imap::{Client, Session, extensions::idle::IdleResponse};
use futures::TryStreamExt;
use helpdesk_proto::email::v1::{ImapSettings, Security, Source};
use helpdesk_runtime::{ErrorKind, ServiceError, shutdown::Shutdown, time::now_micros};
use prost::Message;
use tokio::{net::TcpStream, task::JoinSet};
use tokio_util::either::Either;

use crate::{Email, store};

type Stream = Either<TcpStream, tokio_rustls::client::TlsStream<TcpStream>>;

/// At most this many messages and bytes in one FETCH: a crash fetches no more than this again.
const BATCH_MESSAGES: usize = 100;
const BATCH_BYTES: u64 = 16 << 20;
/// How long one IMAP command may take before the connection is given up.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
/// The first wait after a failed pass; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(5);
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// Mailboxes one replica takes per scan, so that replicas starting together share them.
const CLAIMS_PER_SCAN: i64 = 32;

/// How often leases are renewed and how long they last, from configuration.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timing {
    /// A lease lapses this long after its last renewal; another replica then takes the mailbox.
    pub(crate) lease: Duration,
    /// How often a server without IDLE is asked for new mail.
    pub(crate) poll: Duration,
}

impl Timing {
    /// Renewed three times a lease, so that one slow renewal does not lose it.
    fn renew_every(self) -> Duration {
        self.lease / 3
    }

    fn lease_until(self) -> i64 {
        now_micros() + i64::try_from(self.lease.as_micros()).unwrap_or(i64::MAX)
    }
}

/// A mailbox by tenant and id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct MailboxKey {
    pub(crate) tenant_id: String,
    pub(crate) mailbox_id: String,
}

/// Takes the leases of mailboxes nobody fetches and fetches each in a task of its own, until
/// `shutdown`; then hands its leases back, so that another replica takes over at once.
pub(crate) async fn run(email: Arc<Email>, shutdown: Shutdown) {
    let mut fetchers = JoinSet::new();
    let mut running: HashMap<tokio::task::Id, MailboxKey> = HashMap::new();
    loop {
        match email.claim_mailboxes().await {
            Ok(claimed) => {
                for key in claimed {
                    if running.values().any(|held| *held == key) {
                        continue;
                    }
                    let fetcher = Fetcher { email: email.clone(), key: key.clone(), shutdown: shutdown.clone() };
                    running.insert(fetchers.spawn(fetcher.run()).id(), key);
                }
            }
            Err(error) => tracing::warn!(%error, "IMAP leases unavailable; retrying"),
        }
        tokio::select! {
            () = shutdown.clone().wait() => break,
            Some(done) = fetchers.join_next_with_id() => {
                let id = match done {
                    Ok((id, ())) => id,
                    Err(error) => {
                        tracing::error!(%error, "IMAP fetcher failed");
                        error.id()
                    }
                };
                running.remove(&id);
            }
            () = tokio::time::sleep(email.imap_timing.renew_every()) => {}
        }
    }
    while fetchers.join_next().await.is_some() {}
    if let Err(error) = store::release_imap_leases(&email.db, &email.replica).await {
        tracing::warn!(%error, "IMAP leases not released; they lapse on their own");
    }
}

impl Email {
    /// Takes the lapsed leases it can, up to [`CLAIMS_PER_SCAN`]; renewing its own is each
    /// fetcher's job.
    async fn claim_mailboxes(&self) -> Result<Vec<MailboxKey>, ServiceError> {
        let mut claimed = Vec::new();
        for key in store::lapsed_imap_leases(&self.db, now_micros(), CLAIMS_PER_SCAN).await? {
            let until = self.imap_timing.lease_until();
            if store::take_imap_lease(&self.db, &key, &self.replica, now_micros(), until).await? {
                claimed.push(key);
            }
        }
        Ok(claimed)
    }
}

/// Why a pass over a mailbox stopped.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Imap(#[from] async_imap::error::Error),
    #[error("cannot connect: {0}")]
    Connect(std::io::Error),
    #[error("TLS: {0}")]
    Tls(std::io::Error),
    #[error("the server refused the login: {0}")]
    Login(async_imap::error::Error),
    #[error("the server did not answer within {COMMAND_TIMEOUT:?}")]
    Timeout,
    #[error("the server closed the connection")]
    Closed,
    #[error("{0}")]
    Service(#[from] ServiceError),
    /// Another replica holds the mailbox now.
    #[error("the lease passed to another replica")]
    LeaseLost,
}

/// A command that must answer within [`COMMAND_TIMEOUT`].
async fn within<T, E>(command: impl Future<Output = Result<T, E>>) -> Result<T, Failure>
where
    Failure: From<E>,
{
    match tokio::time::timeout(COMMAND_TIMEOUT, command).await {
        Ok(answer) => Ok(answer?),
        Err(_) => Err(Failure::Timeout),
    }
}

/// A logged-in connection and what it was opened with, to notice changed settings.
struct Connection {
    session: Session<Stream>,
    opened_with: Vec<u8>,
    idle: bool,
}

/// One mailbox's fetching, while this replica holds its lease.
struct Fetcher {
    email: Arc<Email>,
    key: MailboxKey,
    shutdown: Shutdown,
}

impl Fetcher {
    async fn run(self) {
        let mut connection: Option<Connection> = None;
        let mut failures = 0u32;
        while !self.shutdown.is_triggered() {
            match self.pass(&mut connection).await {
                Ok(()) => failures = 0,
                Err(Failure::LeaseLost) => return,
                Err(error) => {
                    connection = None;
                    tracing::warn!(tenant = %self.key.tenant_id, mailbox = %self.key.mailbox_id, %error, "IMAP fetch failed");
                    let recorded = store::imap_failed(
                        &self.email.db,
                        &self.key,
                        &self.email.replica,
                        &error.to_string(),
                        now_micros(),
                    )
                    .await;
                    if matches!(recorded, Ok(false)) {
                        return;
                    }
                    let backoff = FIRST_BACKOFF.saturating_mul(1 << failures.min(6)).min(MAX_BACKOFF);
                    failures += 1;
                    if !self.hold_for(backoff).await {
                        return;
                    }
                    continue;
                }
            }
            let waited = match connection.take() {
                Some(open) if open.idle => self.idle(open).await.map(Some),
                open => {
                    connection = open;
                    if self.hold_for(self.email.imap_timing.poll).await { Ok(connection.take()) } else { return }
                }
            };
            match waited {
                Ok(open) => connection = open,
                Err(error) => {
                    tracing::debug!(mailbox = %self.key.mailbox_id, %error, "IMAP IDLE ended; reconnecting");
                }
            }
        }
        if let Some(mut open) = connection {
            let _ = tokio::time::timeout(Duration::from_secs(5), open.session.logout()).await;
        }
    }

    /// Renews the lease and fetches what is new: connects (again) when there is no connection
    /// or the mailbox's settings changed.
    async fn pass(&self, connection: &mut Option<Connection>) -> Result<(), Failure> {
        self.renew().await?;
        let opened = match self.email.open_mailbox(&self.key.tenant_id, &self.key.mailbox_id).await {
            Err(error) if error.kind == ErrorKind::NotFound => return Err(Failure::LeaseLost),
            opened => opened?,
        };
        let Some(settings) = opened.mailbox.imap.as_ref().filter(|_| opened.mailbox.enabled) else {
            *connection = None;
            return Ok(());
        };
        let opened_with = [settings.encode_to_vec(), opened.secrets.imap_password.clone().into_bytes()].concat();
        if connection.as_ref().is_none_or(|open| open.opened_with != opened_with) {
            *connection = None;
            let mut session = connect(&self.email.tls, settings, &opened.secrets.imap_password).await?;
            let idle = within(session.capabilities()).await?.has_str("IDLE");
            *connection = Some(Connection { session, opened_with, idle });
        }
        let Some(open) = connection.as_mut() else { return Err(Failure::Closed) };
        self.fetch_new(&mut open.session, &opened.mailbox, settings).await
    }

    async fn renew(&self) -> Result<(), Failure> {
        let until = self.email.imap_timing.lease_until();
        if store::renew_imap_lease(&self.email.db, &self.key, &self.email.replica, until).await? {
            Ok(())
        } else {
            Err(Failure::LeaseLost)
        }
    }

    /// Waits `duration` (less at shutdown), renewing the lease; false when the lease was lost.
    async fn hold_for(&self, duration: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + duration;
        loop {
            let step = deadline.saturating_duration_since(tokio::time::Instant::now());
            if step.is_zero() || self.shutdown.is_triggered() {
                return true;
            }
            tokio::select! {
                () = self.shutdown.clone().wait() => return true,
                () = tokio::time::sleep(step.min(self.email.imap_timing.renew_every())) => {}
            }
            match self.renew().await {
                Ok(()) => {}
                Err(Failure::LeaseLost) => return false,
                Err(error) => tracing::warn!(%error, "IMAP lease not renewed; retrying"),
            }
        }
    }

    /// Waits in IDLE until the server reports a change, a renewal is due, or shutdown.
    async fn idle(&self, open: Connection) -> Result<Connection, Failure> {
        let Connection { session, opened_with, idle } = open;
        let mut handle = session.idle();
        within(handle.init()).await?;
        {
            let (wait, _stop) = handle.wait_with_timeout(self.email.imap_timing.renew_every());
            tokio::select! {
                answer = wait => match answer? {
                    IdleResponse::NewData(_) | IdleResponse::Timeout | IdleResponse::ManualInterrupt => {}
                },
                () = self.shutdown.clone().wait() => {}
            }
        }
        let session = within(handle.done()).await?;
        Ok(Connection { session, opened_with, idle })
    }

    /// Fetches every message above the folder's UID mark, in batches, storing each batch before
    /// the mark moves past it.
    async fn fetch_new(
        &self,
        session: &mut Session<Stream>,
        mailbox: &helpdesk_proto::email::v1::Mailbox,
        settings: &ImapSettings,
    ) -> Result<(), Failure> {
        let selected = within(session.select(&settings.folder)).await?;
        let validity = i64::from(selected.uid_validity.unwrap_or(0));
        let db = &self.email.db;
        let replica = &self.email.replica;
        let mut last_uid = store::imap_position(db, &self.key, replica, validity).await?.ok_or(Failure::LeaseLost)?;
        let limit = mailbox.max_message_bytes.min(self.email.max_message_bytes);
        loop {
            let mut listing: Vec<(u32, u64)> = within(async {
                session
                    .uid_fetch(format!("{}:*", last_uid + 1), "(UID RFC822.SIZE)")
                    .await?
                    .try_filter_map(|fetch| async move {
                        Ok(fetch.uid.map(|uid| (uid, u64::from(fetch.size.unwrap_or(0)))))
                    })
                    .try_collect()
                    .await
            })
            .await?;
            // `n:*` names the last message even when its UID is below n.
            listing.retain(|&(uid, _)| i64::from(uid) > last_uid);
            listing.sort_unstable();
            if listing.is_empty() {
                store::imap_fetched(db, &self.key, replica, last_uid, 0, now_micros()).await?;
                return Ok(());
            }
            for batch in batches(&listing) {
                self.store_batch(session, mailbox, batch, limit).await?;
                let high = i64::from(batch[batch.len() - 1].0);
                let count = i64::try_from(batch.len()).unwrap_or(i64::MAX);
                if !store::imap_fetched(db, &self.key, replica, high, count, now_micros()).await? {
                    return Err(Failure::LeaseLost);
                }
                last_uid = high;
            }
        }
    }
}

impl Fetcher {
    /// Fetches one batch and stores its messages in UID order; a message over `limit` is left
    /// on the server and recorded as rejected, for admins to see.
    async fn store_batch(
        &self,
        session: &mut Session<Stream>,
        mailbox: &helpdesk_proto::email::v1::Mailbox,
        batch: &[(u32, u64)],
        limit: i64,
    ) -> Result<(), Failure> {
        let fits = |size: u64| i64::try_from(size).is_ok_and(|size| size <= limit);
        let wanted: Vec<String> =
            batch.iter().filter(|(_, size)| fits(*size)).map(|(uid, _)| uid.to_string()).collect();
        let mut bodies: HashMap<u32, Vec<u8>> = HashMap::new();
        if !wanted.is_empty() {
            bodies = within(async {
                session
                    .uid_fetch(wanted.join(","), "(UID BODY.PEEK[])")
                    .await?
                    .try_filter_map(|fetch| async move { Ok(fetch.uid.zip(fetch.body().map(<[u8]>::to_vec))) })
                    .try_collect()
                    .await
            })
            .await?;
        }
        let tenant_id = &self.key.tenant_id;
        let fetched: Vec<(u32, &[u8])> =
            batch.iter().filter_map(|(uid, _)| bodies.get(uid).map(|raw| (*uid, raw.as_slice()))).collect();
        let raws: Vec<&[u8]> = fetched.iter().map(|(_, raw)| *raw).collect();
        let answers = self.email.store_fetched(tenant_id, mailbox, &raws).await?;
        // Gone between the listing and the fetch (expunged): nothing to store, nothing to record.
        let mut refused: HashMap<u32, String> = fetched
            .iter()
            .zip(answers)
            .filter_map(|((uid, _), answer)| match answer {
                Err(error) if error.kind == ErrorKind::InvalidArgument => Some(Ok((*uid, error.message))),
                Err(error) => Some(Err(error)),
                Ok(_) => None,
            })
            .collect::<Result<_, _>>()?;
        for &(uid, size) in batch {
            let reason = match refused.remove(&uid) {
                Some(reason) => reason,
                None if !fits(size) => format!("larger than the mailbox's {limit} bytes ({size} bytes)"),
                None => continue,
            };
            let reason = format!("{reason}; IMAP UID {uid} left on the server");
            self.email.record_rejection(tenant_id, &mailbox.id, Source::Imap, size, &reason).await?;
        }
        Ok(())
    }
}

/// Splits a listing into batches of at most [`BATCH_MESSAGES`] messages and about
/// [`BATCH_BYTES`] (a single larger message is a batch of its own).
fn batches(listing: &[(u32, u64)]) -> Vec<&[(u32, u64)]> {
    let mut batches = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (index, &(_, size)) in listing.iter().enumerate() {
        if index > start && (index - start == BATCH_MESSAGES || bytes + size > BATCH_BYTES) {
            batches.push(&listing[start..index]);
            (start, bytes) = (index, 0);
        }
        bytes += size;
    }
    if start < listing.len() {
        batches.push(&listing[start..]);
    }
    batches
}

/// Connects and logs in as the settings say: TLS from the first byte, STARTTLS before the
/// credentials, or (for a server on the same host or network) none.
async fn connect(
    tls: &tokio_rustls::TlsConnector,
    settings: &ImapSettings,
    password: &str,
) -> Result<Session<Stream>, Failure> {
    let security = Security::try_from(settings.security).unwrap_or(Security::Tls);
    let port = match (u16::try_from(settings.port).unwrap_or(0), security) {
        (0, Security::Tls | Security::Unspecified) => 993,
        (0, _) => 143,
        (port, _) => port,
    };
    let tcp = tokio::time::timeout(COMMAND_TIMEOUT, TcpStream::connect((settings.host.as_str(), port)))
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(Failure::Connect)?;
    let _ = tcp.set_nodelay(true);
    let stream = match security {
        Security::None => Either::Left(tcp),
        Security::Tls | Security::Unspecified => Either::Right(handshake(tls, &settings.host, tcp).await?),
        Security::Starttls => {
            let mut client = Client::new(tcp);
            greeting(&mut client).await?;
            within(client.run_command_and_check_ok("STARTTLS", None)).await?;
            Either::Right(handshake(tls, &settings.host, client.into_inner()).await?)
        }
    };
    let mut client = Client::new(stream);
    if security != Security::Starttls {
        greeting(&mut client).await?;
    }
    match tokio::time::timeout(COMMAND_TIMEOUT, client.login(&settings.username, password)).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err((error, _))) => Err(Failure::Login(error)),
        Ok(Ok(session)) => Ok(session),
    }
}

async fn greeting<T>(client: &mut Client<T>) -> Result<(), Failure>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match tokio::time::timeout(COMMAND_TIMEOUT, client.read_response()).await {
        Err(_) => Err(Failure::Timeout),
        Ok(Err(error)) => Err(Failure::Connect(error)),
        Ok(Ok(None)) => Err(Failure::Closed),
        Ok(Ok(Some(_))) => Ok(()),
    }
}

async fn handshake(
    tls: &tokio_rustls::TlsConnector,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Failure> {
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|error| Failure::Tls(std::io::Error::new(std::io::ErrorKind::InvalidInput, error)))?;
    tokio::time::timeout(COMMAND_TIMEOUT, tls.connect(name, tcp))
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(Failure::Tls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_a_hundred_messages_or_sixteen_mebibytes() {
        let small: Vec<(u32, u64)> = (1..=250).map(|uid| (uid, 1000)).collect();
        let sizes: Vec<usize> = batches(&small).iter().map(|batch| batch.len()).collect();
        assert_eq!(sizes, [100, 100, 50]);
        let large = [(1, 10 << 20), (2, 10 << 20), (3, 40 << 20), (4, 1)];
        let sizes: Vec<usize> = batches(&large).iter().map(|batch| batch.len()).collect();
        assert_eq!(sizes, [1, 1, 1, 1]);
        assert!(batches(&[]).is_empty());
    }
}
