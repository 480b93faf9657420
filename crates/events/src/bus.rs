use std::sync::Mutex;

use futures::{StreamExt, stream::BoxStream};
use helpdesk_proto::events::v1::Event;
use helpdesk_runtime::{auth::BoxFuture, shutdown::Shutdown};
use tokio::sync::mpsc;

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error("event bus unavailable: {0}")]
    Unavailable(String),
    #[error("event could not be decoded: {0}")]
    Decode(#[from] prost::DecodeError),
}

/// One delivered event; acknowledge it once handled, or it is delivered again.
pub struct Delivery {
    pub event: Event,
    ack: Option<BoxFuture<'static, Result<(), BusError>>>,
}

impl Delivery {
    pub(crate) fn new(event: Event, ack: Option<BoxFuture<'static, Result<(), BusError>>>) -> Self {
        Self { event, ack }
    }

    pub async fn ack(mut self) -> Result<(), BusError> {
        match self.ack.take() {
            Some(ack) => ack.await,
            None => Ok(()),
        }
    }
}

pub type EventStream = BoxStream<'static, Result<Delivery, BusError>>;

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

pub trait EventBus: Send + Sync {
    /// Publishes in order; returns once the bus has accepted every event.
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>>;

    /// Events from now on (in-process) or since the durable consumer `name` last acknowledged
    /// (JetStream), optionally only those matching `filter`, a subject pattern after the prefix
    /// such as `<tenant>.ticket.>` or `*.customer.*`.
    fn subscribe<'a>(&'a self, name: &'a str, filter: Option<&'a str>) -> BoxFuture<'a, Result<EventStream, BusError>>;
}

/// The embedded bus: hands events straight to the subscribers of this process, waiting while a
/// subscriber's queue is full. It keeps no history: an event published before a consumer
/// subscribed is not replayed to it (in-process consumers subscribe at start-up, before the relay
/// runs); use JetStream where consumers must catch up after a restart.
pub struct InProcessBus {
    prefix: String,
    subscribers: Mutex<Vec<(Option<String>, mpsc::Sender<Event>)>>,
}

impl InProcessBus {
    pub fn new(subject_prefix: &str) -> Self {
        Self { prefix: subject_prefix.to_owned(), subscribers: Mutex::new(Vec::new()) }
    }
}

const SUBSCRIBER_QUEUE: usize = 1024;

impl EventBus for InProcessBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            let subscribers: Vec<_> = {
                let mut guard = self.subscribers.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                guard.retain(|(_, sender)| !sender.is_closed());
                guard.clone()
            };
            for event in events {
                let subject = crate::subject(&self.prefix, event);
                for (filter, sender) in &subscribers {
                    if filter.as_deref().is_none_or(|filter| subject_matches(filter, &subject)) {
                        // A subscriber that went away just misses the event; others still get it.
                        let _ = sender.send(event.clone()).await;
                    }
                }
            }
            Ok(())
        })
    }

    fn subscribe<'a>(
        &'a self,
        _name: &'a str,
        filter: Option<&'a str>,
    ) -> BoxFuture<'a, Result<EventStream, BusError>> {
        Box::pin(async move {
            let (sender, receiver) = mpsc::channel(SUBSCRIBER_QUEUE);
            self.subscribers
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push((filter.map(|filter| format!("{}.{filter}", self.prefix)), sender));
            let stream = futures::stream::unfold(receiver, |mut receiver| async move {
                let event = receiver.recv().await?;
                Some((Ok(Delivery::new(event, None)), receiver))
            });
            Ok(Box::pin(stream) as EventStream)
        })
    }
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
