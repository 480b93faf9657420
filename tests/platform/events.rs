use std::time::Duration;

use futures::StreamExt;
use helpdesk_proto::events::v1::event::Payload;
use helpdesk_tests::{Backend, Options, TestApp, on_both_backends, spawn_app_with};
use serde_json::json;

/// Creates a ticket, replies, and solves it; returns its id.
async fn ticket_story(app: &TestApp) -> String {
    let key = app.admin_key.clone();
    let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
    let ticket = app
        .create_ticket(&key, json!({ "subject": "events", "requester_id": customer, "assignee_id": "agent-1" }))
        .await;
    let id = ticket["id"].as_str().unwrap().to_owned();
    app.post(&format!("/v1/tickets/{id}/messages"), &key, json!({ "body_text": "on it" })).await;
    let (status, _) = app.update_ticket(&key, &id, json!({ "status": "solved" })).await;
    assert_eq!(status, 200);
    id
}

async fn collect(
    stream: &mut helpdesk_events::EventStream,
    ticket_id: &str,
    count: usize,
) -> Vec<helpdesk_proto::events::v1::Event> {
    let mut events = Vec::new();
    while events.len() < count {
        let delivery = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("events arrive within 10 s")
            .expect("stream open")
            .expect("event decodes");
        if delivery.event.aggregate_id == ticket_id {
            events.push(delivery.event.clone());
        }
        delivery.ack().await.expect("ack");
    }
    events
}

fn assert_story(events: &[helpdesk_proto::events::v1::Event]) {
    let kinds: Vec<_> = events.iter().map(helpdesk_events::event_type).collect();
    assert_eq!(kinds, ["created", "assigned", "message_added", "updated", "status_changed"]);
    let sequences: Vec<_> = events.iter().map(|event| event.sequence).collect();
    assert_eq!(sequences, [1, 2, 3, 4, 5], "in order per ticket");
    assert!(events.iter().all(|event| event.tenant_id == "demo" && !event.id.is_empty()));
    assert!(
        matches!(&events[0].payload, Some(Payload::TicketCreated(created)) if created.ticket.as_ref().is_some_and(|t| t.subject == "events"))
    );
}

on_both_backends! {
    async fn every_change_is_published_in_order_on_the_in_process_bus(app: TestApp) {
        let mut stream = app.bus.subscribe("test", Some("demo.ticket.>")).await.expect("subscribe");
        let id = ticket_story(&app).await;
        assert_story(&collect(&mut stream, &id, 5).await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_nats_jetstream_in_order() {
    let Some(nats_url) = std::env::var("HELPDESK_TEST_NATS_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("HELPDESK_TEST_NATS_URL is not set: JetStream run not possible here");
        return;
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (stream_name, prefix) = (format!("TEST_{run}"), format!("test_{run}"));
    let options = Options {
        backend: Backend::Sqlite,
        nats: Some((nats_url.clone(), stream_name.clone(), prefix.clone())),
        ..Options::default()
    };
    let app = spawn_app_with(options).await;
    let mut stream = app.bus.subscribe("test-consumer", Some("demo.ticket.>")).await.expect("subscribe");
    let id = ticket_story(&app).await;
    assert_story(&collect(&mut stream, &id, 5).await);
    app.stop().await;
    helpdesk_tests::delete_nats_streams(&nats_url, &stream_name, &prefix).await;
}
