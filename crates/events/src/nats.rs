//! The production bus: NATS JetStream. The event id doubles as `Nats-Msg-Id`, so a relay that
//! republishes after a crash is de-duplicated by the server within its duplicate window. Dead
//! letters go to a stream of their own, `<stream>_DEAD_LETTERS`, one subject per consumer.

use std::{sync::Arc, time::Duration};

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use helpdesk_proto::events::v1::Event;
use helpdesk_runtime::auth::BoxFuture;
use prost::Message;

use helpdesk_runtime::config::EventsConfig;
use secrecy::ExposeSecret;

use crate::{BusError, DeadLetter, Delivery, EventBus, EventStream, bus::Settle};

pub struct NatsBus {
    client: async_nats::Client,
    jetstream: jetstream::Context,
    stream: String,
    prefix: String,
}

/// Header of a dead letter naming the consumer that gave it up, and the one saying why.
const CONSUMER_HEADER: &str = "Helpdesk-Consumer";
const ERROR_HEADER: &str = "Helpdesk-Error";

fn unavailable(error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(error.to_string())
}

impl NatsBus {
    /// Connects with the configured credentials and makes sure the streams exist.
    pub async fn connect(config: &EventsConfig) -> Result<Self, BusError> {
        let (stream_name, subject_prefix) = (config.stream.as_str(), config.subject_prefix.as_str());
        let mut options = async_nats::ConnectOptions::new().require_tls(config.nats_require_tls);
        if let (Some(user), Some(password)) = (&config.nats_user, &config.nats_password) {
            options = options.user_and_password(user.clone(), password.expose_secret().to_owned());
        }
        if let Some(token) = &config.nats_token {
            options = options.token(token.expose_secret().to_owned());
        }
        if let Some(seed) = &config.nats_nkey_seed {
            options = options.nkey(seed.expose_secret().to_owned());
        }
        if let Some(path) = &config.nats_credentials_file {
            options = options.credentials_file(path).await.map_err(unavailable)?;
        }
        if let Some(path) = &config.nats_ca_file {
            options = options.add_root_certificates(path.clone());
        }
        let client = options.connect(&config.nats_url).await.map_err(unavailable)?;
        let jetstream = jetstream::new(client.clone());
        jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name.to_owned(),
                subjects: vec![format!("{subject_prefix}.>")],
                duplicate_window: Duration::from_secs(300),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        jetstream
            .get_or_create_stream(stream::Config {
                name: dead_letter_stream(stream_name),
                subjects: vec![format!("{}.>", dead_letter_prefix(subject_prefix))],
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Self { client, jetstream, stream: stream_name.to_owned(), prefix: subject_prefix.to_owned() })
    }

    /// Deletes the streams and everything in them: for tests and decommissioning.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.jetstream.delete_stream(&self.stream).await.map_err(unavailable)?;
        self.jetstream.delete_stream(dead_letter_stream(&self.stream)).await.map_err(unavailable)?;
        Ok(())
    }

    async fn publish_event(&self, subject: String, message_id: &str, event: &Event) -> Result<(), BusError> {
        self.jetstream
            .publish_with_headers(subject, event_headers(message_id), event.encode_to_vec().into())
            .await
            .map_err(unavailable)?
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    /// Every stored dead letter of `consumer` (or of all), with its stream sequence.
    async fn stored_dead_letters(
        &self,
        consumer: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(u64, DeadLetter)>, BusError> {
        let mut stream = self.jetstream.get_stream(dead_letter_stream(&self.stream)).await.map_err(unavailable)?;
        let state = stream.info().await.map_err(unavailable)?.state.clone();
        let mut letters = Vec::new();
        for sequence in state.first_sequence..=state.last_sequence {
            if letters.len() >= limit || state.messages == 0 {
                break;
            }
            // Deleted (replayed) letters leave holes in the sequence.
            let Ok(message) = stream.get_raw_message(sequence).await else { continue };
            let header =
                |name: &str| message.headers.get(name).map(|value| value.as_str().to_owned()).unwrap_or_default();
            let owner = header(CONSUMER_HEADER);
            if consumer.is_some_and(|consumer| consumer != owner) {
                continue;
            }
            let event = Event::decode(message.payload.as_ref())?;
            let failed_at = message.time.unix_timestamp_nanos() / 1_000;
            letters.push((
                sequence,
                DeadLetter { consumer: owner, event, error: header(ERROR_HEADER), failed_at: failed_at as i64 },
            ));
        }
        Ok(letters)
    }
}

/// `message_id` is what JetStream de-duplicates by.
fn event_headers(message_id: &str) -> async_nats::HeaderMap {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", message_id);
    headers.insert("Content-Type", "application/protobuf");
    headers
}

fn dead_letter_stream(stream: &str) -> String {
    format!("{stream}_DEAD_LETTERS")
}

fn dead_letter_prefix(prefix: &str) -> String {
    format!("{prefix}_dead")
}

/// Settles a JetStream message: acknowledges it, or parks it on the dead-letter stream first.
struct NatsSettle {
    message: jetstream::Message,
    jetstream: jetstream::Context,
    consumer: Arc<str>,
    dead_letter_subject: Arc<str>,
}

impl Settle for NatsSettle {
    fn ack(&self) -> BoxFuture<'_, Result<(), BusError>> {
        Box::pin(async move { self.message.ack().await.map_err(unavailable) })
    }

    fn dead_letter<'a>(&'a self, event: &'a Event, error: &'a str) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            // Unique per failure: the same event failing again after a replay is a new letter,
            // not a duplicate for the stream to drop.
            let id = format!("{}:{}:{}", self.consumer, event.id, helpdesk_runtime::time::now_micros());
            let mut headers = event_headers(&id);
            headers.insert(CONSUMER_HEADER, &*self.consumer);
            // Header values are one line.
            headers.insert(ERROR_HEADER, error.replace(['\r', '\n'], " ").as_str());
            self.jetstream
                .publish_with_headers(self.dead_letter_subject.to_string(), headers, event.encode_to_vec().into())
                .await
                .map_err(unavailable)?
                .await
                .map_err(unavailable)?;
            self.message.ack().await.map_err(unavailable)
        })
    }
}

impl EventBus for NatsBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            // Pipeline the publishes, then wait for every acknowledgement: order is kept because
            // one connection delivers them to the server in sequence.
            let mut acks = Vec::with_capacity(events.len());
            for event in events {
                let ack = self
                    .jetstream
                    .publish_with_headers(
                        crate::subject(&self.prefix, event),
                        event_headers(&event.id),
                        event.encode_to_vec().into(),
                    )
                    .await
                    .map_err(unavailable)?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await.map_err(unavailable)?;
            }
            Ok(())
        })
    }

    fn subscribe<'a>(&'a self, name: &'a str, filter: Option<&'a str>) -> BoxFuture<'a, Result<EventStream, BusError>> {
        Box::pin(async move {
            let stream = self.jetstream.get_stream(&self.stream).await.map_err(unavailable)?;
            let consumer = stream
                .get_or_create_consumer(
                    name,
                    pull::Config {
                        durable_name: Some(name.to_owned()),
                        filter_subject: filter.map(|filter| format!("{}.{filter}", self.prefix)).unwrap_or_default(),
                        ack_policy: jetstream::consumer::AckPolicy::Explicit,
                        ..Default::default()
                    },
                )
                .await
                .map_err(unavailable)?;
            let messages = consumer.messages().await.map_err(unavailable)?;
            let jetstream = self.jetstream.clone();
            let consumer: Arc<str> = name.into();
            let dead_letter_subject: Arc<str> = format!("{}.{name}", dead_letter_prefix(&self.prefix)).into();
            let deliveries = messages.map(move |message| {
                let message = message.map_err(unavailable)?;
                let event = Event::decode(message.payload.as_ref())?;
                let settle = NatsSettle {
                    message,
                    jetstream: jetstream.clone(),
                    consumer: consumer.clone(),
                    dead_letter_subject: dead_letter_subject.clone(),
                };
                Ok(Delivery::new(event, Some(Box::new(settle))))
            });
            Ok(Box::pin(deliveries) as EventStream)
        })
    }

    fn tail<'a>(&'a self, filter: &'a str) -> BoxFuture<'a, Result<EventStream, BusError>> {
        Box::pin(async move {
            // JetStream publishes are ordinary NATS messages too: a core subscription sees them
            // as they arrive, without a consumer on the server.
            let subscriber = self.client.subscribe(format!("{}.{filter}", self.prefix)).await.map_err(unavailable)?;
            let deliveries =
                subscriber.map(|message| Ok(Delivery::new(Event::decode(message.payload.as_ref())?, None)));
            Ok(Box::pin(deliveries) as EventStream)
        })
    }

    fn dead_letters<'a>(
        &'a self,
        consumer: Option<&'a str>,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<DeadLetter>, BusError>> {
        Box::pin(async move {
            Ok(self.stored_dead_letters(consumer, limit).await?.into_iter().map(|(_, letter)| letter).collect())
        })
    }

    /// Publishes the letters on their original subjects again, so every consumer of the subject
    /// sees them once more (handlers are idempotent), then deletes them.
    fn replay<'a>(&'a self, consumer: &'a str, event_ids: &'a [String]) -> BoxFuture<'a, Result<usize, BusError>> {
        Box::pin(async move {
            let letters = self.stored_dead_letters(Some(consumer), usize::MAX).await?;
            let stream = self.jetstream.get_stream(dead_letter_stream(&self.stream)).await.map_err(unavailable)?;
            let mut replayed = 0;
            for (sequence, letter) in letters {
                if !event_ids.is_empty() && !event_ids.contains(&letter.event.id) {
                    continue;
                }
                let message_id = format!("{}:replay:{sequence}", letter.event.id);
                self.publish_event(crate::subject(&self.prefix, &letter.event), &message_id, &letter.event).await?;
                stream.delete_message(sequence).await.map_err(unavailable)?;
                replayed += 1;
            }
            Ok(replayed)
        })
    }

    fn close(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            if let Err(error) = self.client.flush().await {
                tracing::warn!(%error, "nats flush at shutdown failed");
            }
        })
    }
}
