//! The production bus: NATS JetStream. The event id doubles as `Nats-Msg-Id`, so a relay that
//! republishes after a crash is de-duplicated by the server within its duplicate window.

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use helpdesk_proto::events::v1::Event;
use helpdesk_runtime::auth::BoxFuture;
use prost::Message;

use crate::{BusError, Delivery, EventBus, EventStream};

pub struct NatsBus {
    jetstream: jetstream::Context,
    stream: String,
    prefix: String,
}

fn unavailable(error: impl std::fmt::Display) -> BusError {
    BusError::Unavailable(error.to_string())
}

impl NatsBus {
    /// Connects and makes sure the stream exists.
    pub async fn connect(url: &str, stream_name: &str, subject_prefix: &str) -> Result<Self, BusError> {
        let client = async_nats::connect(url).await.map_err(unavailable)?;
        let jetstream = jetstream::new(client);
        jetstream
            .get_or_create_stream(stream::Config {
                name: stream_name.to_owned(),
                subjects: vec![format!("{subject_prefix}.>")],
                duplicate_window: Duration::from_secs(300),
                ..Default::default()
            })
            .await
            .map_err(unavailable)?;
        Ok(Self { jetstream, stream: stream_name.to_owned(), prefix: subject_prefix.to_owned() })
    }

    /// Deletes the stream and everything in it: for tests and decommissioning.
    pub async fn delete_stream(&self) -> Result<(), BusError> {
        self.jetstream.delete_stream(&self.stream).await.map_err(unavailable)?;
        Ok(())
    }
}

impl EventBus for NatsBus {
    fn publish<'a>(&'a self, events: &'a [Event]) -> BoxFuture<'a, Result<(), BusError>> {
        Box::pin(async move {
            // Pipeline the publishes, then wait for every acknowledgement: order is kept because
            // one connection delivers them to the server in sequence.
            let mut acks = Vec::with_capacity(events.len());
            for event in events {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", event.id.as_str());
                headers.insert("Content-Type", "application/protobuf");
                let ack = self
                    .jetstream
                    .publish_with_headers(crate::subject(&self.prefix, event), headers, event.encode_to_vec().into())
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
            let deliveries = messages.map(|message| {
                let message = message.map_err(unavailable)?;
                let event = Event::decode(message.payload.as_ref())?;
                let ack: BoxFuture<'static, Result<(), BusError>> =
                    Box::pin(async move { message.ack().await.map_err(unavailable) });
                Ok(Delivery::new(event, Some(ack)))
            });
            Ok(Box::pin(deliveries) as EventStream)
        })
    }
}
