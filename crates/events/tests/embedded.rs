//! The embedded bus on a real database: what a consumer acknowledged survives a restart, what it
//! did not comes again, and what it gave up on waits as a dead letter for an operator.

// A panic is how a test reports a failure.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use futures::StreamExt;
use helpdesk_events::{EmbeddedBus, EventBus, EventStream};
use helpdesk_proto::events::v1::{Event, TicketStatusChanged, event::Payload};
use helpdesk_runtime::{
    config::DatabaseConfig,
    db::{create_scratch_database, drop_scratch_database},
};

fn event(n: usize) -> Event {
    Event {
        id: format!("event-{n}"),
        tenant_id: "demo".into(),
        aggregate_type: "ticket".into(),
        aggregate_id: format!("ticket-{n}"),
        sequence: 1,
        payload: Some(Payload::TicketStatusChanged(TicketStatusChanged {
            ticket_id: format!("ticket-{n}"),
            from: 1,
            to: 2,
        })),
        ..Event::default()
    }
}

async fn next_id(stream: &mut EventStream) -> helpdesk_events::Delivery {
    tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event within 5 s")
        .expect("stream open")
        .expect("event decodes")
}

async fn nothing_more(stream: &mut EventStream) {
    let next = tokio::time::timeout(Duration::from_millis(700), stream.next()).await;
    assert!(next.is_err(), "no further event: {:?}", next.ok().flatten().map(|d| d.map(|d| d.event.id)));
}

/// Runs `scenario` on SQLite, and on PostgreSQL when `HELPDESK_TEST_POSTGRES_URL` is set, with a
/// function that opens the bus on that database (again, to restart it).
async fn on_both_backends<Scenario, Run>(scenario: Scenario)
where
    Scenario: Fn(DatabaseConfig, std::path::PathBuf) -> Run,
    Run: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    scenario(DatabaseConfig::new(None, 4), dir.path().to_owned()).await;
    let Some(base) = std::env::var("HELPDESK_TEST_POSTGRES_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("HELPDESK_TEST_POSTGRES_URL is not set: PostgreSQL run not possible here");
        return;
    };
    let url = create_scratch_database(&base, "helpdesk_test").await.unwrap();
    scenario(DatabaseConfig::new(Some(url.clone()), 4), dir.path().to_owned()).await;
    drop_scratch_database(&base, &url).await.unwrap();
}

async fn open(database: &DatabaseConfig, dir: &std::path::Path) -> EmbeddedBus {
    EmbeddedBus::open(database, dir, "test").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_resumes_after_a_restart_with_the_first_event_it_did_not_acknowledge() {
    on_both_backends(|database, dir| async move {
        let bus = open(&database, &dir).await;
        let mut stream = bus.subscribe("surveys", Some("*.ticket.>")).await.unwrap();
        let events: Vec<Event> = (1..=10).map(event).collect();
        bus.publish(&events).await.unwrap();
        for n in 1..=4 {
            let delivery = next_id(&mut stream).await;
            assert_eq!(delivery.event.id, format!("event-{n}"));
            delivery.ack().await.unwrap();
        }
        let unfinished = next_id(&mut stream).await;
        assert_eq!(unfinished.event.id, "event-5");
        // Acknowledged after the one still in hand: the position cannot pass event 5.
        next_id(&mut stream).await.ack().await.unwrap();
        bus.close().await;
        drop((stream, unfinished, bus));

        let bus = open(&database, &dir).await;
        let mut stream = bus.subscribe("surveys", Some("*.ticket.>")).await.unwrap();
        let again: Vec<String> = {
            let mut ids = Vec::new();
            for _ in 5..=10 {
                let delivery = next_id(&mut stream).await;
                ids.push(delivery.event.id.clone());
                delivery.ack().await.unwrap();
            }
            ids
        };
        assert_eq!(again, (5..=10).map(|n| format!("event-{n}")).collect::<Vec<_>>());
        nothing_more(&mut stream).await;
        bus.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_while_a_consumer_is_away_wait_for_it() {
    on_both_backends(|database, dir| async move {
        let bus = open(&database, &dir).await;
        drop(bus.subscribe("insights", None).await.unwrap());
        let events: Vec<Event> = (1..=3).map(event).collect();
        bus.publish(&events).await.unwrap();
        bus.close().await;
        drop(bus);

        let bus = open(&database, &dir).await;
        let mut stream = bus.subscribe("insights", None).await.unwrap();
        for n in 1..=3 {
            let delivery = next_id(&mut stream).await;
            assert_eq!(delivery.event.id, format!("event-{n}"));
            delivery.ack().await.unwrap();
        }
        nothing_more(&mut stream).await;
        bus.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_waits_for_an_operator_and_is_replayed_to_its_consumer_only() {
    on_both_backends(|database, dir| async move {
        let bus = open(&database, &dir).await;
        let mut routing = bus.subscribe("routing", None).await.unwrap();
        let mut knowledge = bus.subscribe("knowledge", None).await.unwrap();
        bus.publish(&[event(1), event(2)]).await.unwrap();
        next_id(&mut routing).await.dead_letter("invalid_argument: no such queue").await.unwrap();
        next_id(&mut routing).await.ack().await.unwrap();
        for _ in 1..=2 {
            next_id(&mut knowledge).await.ack().await.unwrap();
        }

        let letters = bus.dead_letters(None, 100).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!((letters[0].consumer.as_str(), letters[0].event.id.as_str()), ("routing", "event-1"));
        assert!(letters[0].error.contains("no such queue"));
        assert!(bus.dead_letters(Some("knowledge"), 100).await.unwrap().is_empty());

        assert_eq!(bus.replay("routing", &[]).await.unwrap(), 1);
        let replayed = next_id(&mut routing).await;
        assert_eq!(replayed.event.id, "event-1");
        replayed.ack().await.unwrap();
        nothing_more(&mut knowledge).await;
        assert!(bus.dead_letters(None, 100).await.unwrap().is_empty());
        bus.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_is_deleted_once_every_consumer_has_processed_it() {
    on_both_backends(|database, dir| async move {
        let bus = open(&database, &dir).await;
        let mut fast = bus.subscribe("fast", None).await.unwrap();
        let mut slow = bus.subscribe("slow", None).await.unwrap();
        bus.publish(&[event(1), event(2)]).await.unwrap();
        for _ in 1..=2 {
            next_id(&mut fast).await.ack().await.unwrap();
        }
        next_id(&mut slow).await.ack().await.unwrap();
        bus.close().await;
        drop((fast, slow, bus));

        // The slow consumer still needs event 2; a newcomer gets what is kept, from there.
        let bus = open(&database, &dir).await;
        let mut newcomer = bus.subscribe("newcomer", None).await.unwrap();
        assert_eq!(next_id(&mut newcomer).await.event.id, "event-2");
        nothing_more(&mut newcomer).await;
        bus.close().await;
    })
    .await;
}
