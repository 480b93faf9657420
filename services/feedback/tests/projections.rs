//! Projections are idempotent and every replica agrees: two service instances on one database,
//! events recorded twice through one of them, followed by the other, and rebuilt from the log.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use helpdesk_events::EmbeddedBus;
use helpdesk_feedback::{Cell, FeedbackService, Scope};
use helpdesk_proto::{
    events::v1::{Event, MessageAdded, TicketCreated, TicketStatusChanged, event::Payload},
    feedback::v1::{GroupBy, ReportKind},
    ticketing::v1::{Message, Status, Ticket, Visibility},
};
use helpdesk_runtime::config::DatabaseConfig;

const HOUR: i64 = 3_600;

fn at(seconds: i64) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds, nanos: 0 })
}

fn event(tenant: &str, id: &str, occurred: i64, payload: Payload) -> Event {
    Event {
        id: id.into(),
        tenant_id: tenant.into(),
        occurred_at: at(occurred),
        payload: Some(payload),
        ..Event::default()
    }
}

/// A ticket created at `created`, answered an hour later, solved an hour after that, reopened and
/// solved again.
fn ticket_events(tenant: &str, ticket: &str, created: i64) -> Vec<Event> {
    let status = |from: Status, to: Status| {
        Payload::TicketStatusChanged(TicketStatusChanged { ticket_id: ticket.into(), from: from as i32, to: to as i32 })
    };
    let reply = Message {
        author_kind: helpdesk_proto::common::v1::AuthorKind::Agent as i32,
        author_id: "agent-1".into(),
        visibility: Visibility::Public as i32,
        created_at: at(created + HOUR),
        ..Message::default()
    };
    let created_ticket = Ticket {
        id: ticket.into(),
        subject: "배송 지연".into(),
        assignee_id: "agent-1".into(),
        created_at: at(created),
        ..Ticket::default()
    };
    vec![
        event(
            tenant,
            &format!("{ticket}-1"),
            created,
            Payload::TicketCreated(TicketCreated { ticket: Some(created_ticket) }),
        ),
        event(
            tenant,
            &format!("{ticket}-2"),
            created + HOUR,
            Payload::MessageAdded(MessageAdded { ticket_id: ticket.into(), message: Some(reply) }),
        ),
        event(tenant, &format!("{ticket}-3"), created + 2 * HOUR, status(Status::Open, Status::Solved)),
        event(tenant, &format!("{ticket}-4"), created + 3 * HOUR, status(Status::Solved, Status::Open)),
        event(tenant, &format!("{ticket}-5"), created + 4 * HOUR, status(Status::Open, Status::Solved)),
    ]
}

async fn open(dir: &std::path::Path) -> FeedbackService {
    let config = DatabaseConfig::new(None, 4);
    let bus = EmbeddedBus::open(&config, dir, "test").await.unwrap();
    helpdesk_feedback::open_database(&config, dir, "http://test", Arc::new(bus)).await.unwrap()
}

async fn performance(service: &FeedbackService, tenant: &str, now: i64) -> Vec<Vec<Cell>> {
    let scope = Scope {
        kind: ReportKind::Performance,
        group_by: GroupBy::Agent,
        from: now - 30 * 24 * HOUR,
        to: now,
        zone: chrono_tz::UTC,
        channel: 0,
        agent: String::new(),
        team: String::new(),
        tag: String::new(),
    }
    .check()
    .unwrap();
    service.insights().report(tenant, scope).await.unwrap().1.rows
}

#[tokio::test]
async fn every_replica_applies_each_event_once_and_a_rebuild_agrees() {
    let dir = tempfile::tempdir().unwrap();
    let (first, second) = (open(dir.path()).await, open(dir.path()).await);
    let now = chrono::Utc::now().timestamp();
    let mut events = ticket_events("acme", "t1", now - 48 * HOUR);
    events.extend(ticket_events("other", "t2", now - 24 * HOUR));
    first.insights().record(&events).await.unwrap();
    // Redelivered by the bus: recorded again, applied never.
    first.insights().record(&events[..3]).await.unwrap();

    let expected = vec![vec![
        Cell::Text("agent-1".into()),
        Cell::Number(1.0),
        Cell::Number(60.0),
        Cell::Number(60.0),
        Cell::Number(2.0),
        Cell::Number(2.0),
        Cell::Number(0.0),
        Cell::Number(1.0),
        Cell::Null,
    ]];
    assert_eq!(performance(&first, "acme", now).await, expected);
    // The other replica follows the log and answers alike; each tenant sees its own tickets.
    second.insights().catch_up().await.unwrap();
    assert_eq!(performance(&second, "acme", now).await, expected);
    assert_eq!(performance(&second, "nobody", now).await, Vec::<Vec<Cell>>::new());

    let rebuilt = second.insights().rebuild("acme").await.unwrap();
    assert_eq!((rebuilt.events, rebuilt.tickets), (5, 1));
    assert_eq!(performance(&second, "acme", now).await, expected);
    let all = first.insights().rebuild_all().await.unwrap();
    assert_eq!((all.events, all.tickets), (10, 2));
    assert_eq!(performance(&first, "acme", now).await, expected);
}
