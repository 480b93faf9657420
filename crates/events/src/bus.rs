use futures::{StreamExt, stream::BoxStream};
use helpdesk_proto::events::v1::Event;
use helpdesk_runtime::{ErrorKind, ServiceError, auth::BoxFuture, shutdown::Shutdown};

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("event could not be decoded: {0}")]
    Decode(#[from] prost::DecodeError),
    #[error("event bus database: {0}")]
    Database(#[from] sqlx::Error),
}

/// How a bus settles one delivery: processed, or given up on.
pub(crate) trait Settle: Send + Sync {
    fn ack(&self) -> BoxFuture<'_, Result<(), BusError>>;
    /// Keeps `event` as a dead letter of this consumer with `error`, then acknowledges it.
    fn dead_letter<'a>(&'a self, event: &'a Event, error: &'a str) -> BoxFuture<'a, Result<(), BusError>>;
}

/// One delivered event; acknowledge it once handled, or it is delivered again.
pub struct Delivery {
    pub event: Event,
    settle: Option<Box<dyn Settle>>,
}

impl Delivery {
    pub(crate) fn new(event: Event, settle: Option<Box<dyn Settle>>) -> Self {
        Self { event, settle }
    }

    pub async fn ack(self) -> Result<(), BusError> {
        match &self.settle {
            Some(settle) => settle.ack().await,
            None => Ok(()),
        }
    }

    /// Gives the event up: it is kept as a dead letter of this consumer, with `error`, where an
    /// operator sees it and can send it again (`helpdesk admin dead-letters`), and the consumer
    /// moves on. On failure the delivery is still unsettled: try again.
    pub async fn dead_letter(&self, error: &str) -> Result<(), BusError> {
        tracing::error!(event = %self.event.id, error, "event dead-lettered");
        match &self.settle {
            Some(settle) => settle.dead_letter(&self.event, error).await,
            None => Ok(()),
        }
    }
}

pub type EventStream = BoxStream<'static, Result<Delivery, BusError>>;

/// An event a consumer gave up on.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub consumer: String,
    pub event: Event,
    pub error: String,
    /// Microseconds since the epoch.
    pub failed_at: i64,
}

/// The next event of `events` to handle, skipping (and logging) undeliverable ones; `None` once
/// the stream ends or `shutdown` is triggered. The head of every consumer's loop.
pub async fn next_delivery(events: &mut EventStream, shutdown: &Shutdown) -> Option<Delivery> {
    loop {
        let next = tokio::select! {
            next = events.next() => next,
            () = shutdown.clone().wait() => return None,
        };
        match next? {
            Ok(delivery) => return Some(delivery),
            Err(error) => tracing::warn!(%error, "undeliverable event skipped"),
        }
    }
}

/// Handles one delivery with `handle` and settles it. A transient failure (the database or a peer
/// away, a concurrent change) is retried with backoff for as long as the process runs; an
/// internal fault five attempts do not cure, or a refusal, makes the event a dead letter, so that
/// it cannot hold up every later event and is not lost either. On `shutdown` the delivery is left
/// unacknowledged, to come again at the next start.
pub async fn handle_delivery<Handled>(delivery: Delivery, shutdown: &Shutdown, mut handle: impl FnMut(Event) -> Handled)
where
    Handled: Future<Output = Result<(), ServiceError>>,
{
    let mut attempts = 0u32;
    loop {
        let error = match handle(delivery.event.clone()).await {
            Ok(()) => {
                if let Err(error) = delivery.ack().await {
                    tracing::warn!(%error, "event acknowledgement failed; it will be redelivered");
                }
                return;
            }
            Err(error) => error,
        };
        attempts += 1;
        if !error.kind.is_transient() && (error.kind != ErrorKind::Internal || attempts >= 5) {
            let reason = format!("{}: {}", error.kind.as_str(), error.message);
            dead_letter(delivery, reason, shutdown).await;
            return;
        }
        tracing::warn!(error = %error.message, event = %delivery.event.id, attempts, "event handling will be retried");
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempts.min(25)))) => {}
            () = shutdown.clone().wait() => return,
        }
    }
}

/// Keeps `delivery` as a dead letter, trying again while the bus cannot store it: unsettled, it
/// would hold the consumer's position back.
async fn dead_letter(delivery: Delivery, reason: String, shutdown: &Shutdown) {
    let mut attempts = 0u64;
    while let Err(error) = delivery.dead_letter(&reason).await {
        attempts += 1;
        tracing::warn!(%error, event = %delivery.event.id, attempts, "dead letter not stored; retrying");
        tokio::select! {
            () = tokio::time::sleep(std::time::Duration::from_millis(200 * attempts.min(25))) => {}
            () = shutdown.clone().wait() => return,
        }
    }
}

pub trait EventBus: Send + Sync {
    /// Publishes in order; returns once the bus has durably accepted every event.
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>>;

    /// Events since the durable consumer `name` last acknowledged (all retained events for a new
    /// one), optionally only those matching `filter`, a subject pattern after the prefix such as
    /// `<tenant>.ticket.>` or `*.customer.*`. On JetStream, replicas that subscribe with one name
    /// share its events; the embedded bus, for one process, takes one subscription per name.
    fn subscribe<'a>(&'a self, name: &'a str, filter: Option<&'a str>) -> BoxFuture<'a, Result<EventStream, BusError>>;

    /// Events published from now on to this process alone, never replayed and never
    /// acknowledged: for caches every process keeps, such as resolved credentials.
    fn tail<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Result<EventStream, BusError>>;

    /// Dead letters, of one consumer or of all, oldest first.
    fn dead_letters<'a>(
        &'a self,
        consumer: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>>;

    /// Delivers `consumer`'s dead letters (those of `event_ids`, or all when it is empty) again
    /// and removes them; returns how many.
    fn replay<'a>(&'a self, consumer: &'a str, event_ids: &'a [String]) -> BoxFuture<'a, Result<usize, BusError>>;

    /// Makes what consumers acknowledged durable; the bus is not used afterwards.
    fn close(&self) -> BoxFuture<'_, ()>;
}

/// NATS subject matching: `*` is one token, a trailing `>` one or more.
pub(crate) fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    for token in filter.split('.') {
        match (token, subject_tokens.next()) {
            (">", Some(_)) => return true,
            ("*", Some(_)) => {}
            (expected, Some(actual)) if expected == actual => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::subject_matches;

    #[test]
    fn subjects_match_like_nats_wildcards() {
        assert!(subject_matches("helpdesk.events.>", "helpdesk.events.t1.ticket.created"));
        assert!(subject_matches("helpdesk.events.*.ticket.*", "helpdesk.events.t1.ticket.created"));
        assert!(!subject_matches("helpdesk.events.*.customer.*", "helpdesk.events.t1.ticket.created"));
        assert!(!subject_matches("helpdesk.events.t1", "helpdesk.events.t1.ticket.created"));
    }
}
