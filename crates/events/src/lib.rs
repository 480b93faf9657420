//! Events leave a service through a transactional outbox: the change and its events commit in one
//! transaction ([`outbox::append`]), and a [`relay::Relay`] publishes committed events in order to
//! an [`EventBus`], deleting them only once the bus has stored them durably: NATS JetStream, or
//! the [`EmbeddedBus`] in the platform's own database. Delivery is therefore at least once and in
//! order per aggregate; consumers de-duplicate by event id, and an event a consumer gives up on
//! becomes a [`DeadLetter`] that an operator can replay.

mod bus;
mod embedded;
mod nats;
pub mod outbox;
pub mod relay;

pub use bus::{BusError, DeadLetter, Delivery, EventBus, EventStream, handle_delivery, next_delivery};
pub use embedded::EmbeddedBus;
pub use nats::NatsBus;

use std::sync::Arc;

use helpdesk_proto::events::v1::{Event, event::Payload};
use helpdesk_runtime::config::{BusKind, Config};

/// The bus the configuration names: embedded (in the platform's own database) or NATS JetStream.
pub async fn connect(config: &Config) -> Result<Arc<dyn EventBus>, BusError> {
    let events = &config.events;
    Ok(match events.bus {
        BusKind::InProcess => {
            Arc::new(EmbeddedBus::open(&config.database, &config.data_dir, &events.subject_prefix).await?)
        }
        BusKind::Nats => Arc::new(NatsBus::connect(events).await?),
    })
}

/// The bus subject of an event: `<prefix>.<tenant>.<aggregate type>.<event type>`, so consumers
/// can filter by tenant, aggregate or kind of event.
pub fn subject(prefix: &str, event: &Event) -> String {
    format!("{prefix}.{}.{}.{}", event.tenant_id, event.aggregate_type, event_type(event))
}

/// A short lowercase name for the kind of event.
pub fn event_type(event: &Event) -> &'static str {
    match &event.payload {
        Some(Payload::TicketCreated(_)) => "created",
        Some(Payload::TicketUpdated(_)) => "updated",
        Some(Payload::TicketStatusChanged(_)) => "status_changed",
        Some(Payload::MessageAdded(_)) => "message_added",
        Some(Payload::TicketAssigned(_)) => "assigned",
        Some(Payload::TicketMerged(_)) => "merged",
        Some(Payload::CustomerFlagged(_)) => "flagged",
        Some(Payload::TicketRouted(_)) => "routed",
        Some(Payload::TicketEscalated(_)) => "escalated",
        Some(Payload::SlaAlert(_)) => "sla_alert",
        Some(Payload::SurveyAnswered(_)) => "answered",
        Some(Payload::FollowUpOpened(_)) => "opened",
        Some(Payload::FollowUpClosed(_)) => "closed",
        Some(Payload::CredentialRevoked(_)) => "revoked",
        None => "unknown",
    }
}
