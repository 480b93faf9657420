//! The JetStream bus against a real NATS server: credentials, and dead letters.

// A panic is how a test reports a failure.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures::StreamExt;
use helpdesk_events::{EventBus, NatsBus};
use helpdesk_proto::events::v1::Event;
use helpdesk_runtime::config::{Config, EventsConfig};

/// The NATS server CI runs, or `None` (and why) where there is none.
fn nats_url() -> Option<String> {
    let url = std::env::var("HELPDESK_TEST_NATS_URL").ok().filter(|url| !url.is_empty());
    if url.is_none() {
        eprintln!("HELPDESK_TEST_NATS_URL is not set: NATS run not possible here");
    }
    url
}

fn events_config(variables: &[(&str, &str)]) -> EventsConfig {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut env = vec![
        ("HELPDESK_EVENTS__BUS".to_owned(), "nats".to_owned()),
        ("HELPDESK_EVENTS__STREAM".to_owned(), format!("TEST_{run}")),
        ("HELPDESK_EVENTS__SUBJECT_PREFIX".to_owned(), format!("test_{run}")),
    ];
    env.extend(variables.iter().map(|(key, value)| ((*key).to_owned(), (*value).to_owned())));
    Config::load_from(None, env).unwrap().events
}

fn event(id: &str) -> Event {
    Event {
        id: id.into(),
        tenant_id: "demo".into(),
        aggregate_type: "ticket".into(),
        aggregate_id: "t-1".into(),
        sequence: 1,
        ..Event::default()
    }
}

/// A NATS server of the test's own that wants a user and password, on a port it picks itself.
struct AuthenticatedServer {
    child: Child,
    url: String,
    _store: tempfile::TempDir,
}

impl AuthenticatedServer {
    fn start() -> Self {
        let store = tempfile::tempdir().unwrap();
        let mut child = Command::new("nats-server")
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "--user", "helpdesk", "--pass", "s3cret-for-tests"])
            .arg("-sd")
            .arg(store.path())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nats-server is installed (CI installs it)");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut url = None;
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            if let Some(address) = line.split("Listening for client connections on ").nth(1) {
                url = Some(format!("nats://{}", address.trim()));
            }
            if line.contains("Server is ready") {
                break;
            }
        }
        // Keep reading its log, or the server dies writing to a closed pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let server = Self { child, url: url.unwrap_or_default(), _store: store };
        assert!(!server.url.is_empty(), "nats-server exited before listening");
        server
    }
}

impl Drop for AuthenticatedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_connects_with_its_credentials_and_not_without() {
    if nats_url().is_none() {
        return;
    }
    let server = AuthenticatedServer::start();
    let right = events_config(&[
        ("HELPDESK_EVENTS__NATS_URL", &server.url),
        ("HELPDESK_EVENTS__NATS_USER", "helpdesk"),
        ("HELPDESK_EVENTS__NATS_PASSWORD", "s3cret-for-tests"),
    ]);
    let bus = NatsBus::connect(&right).await.expect("the right password connects");
    let mut stream = bus.subscribe("probe", None).await.unwrap();
    bus.publish(&[event("e-1")]).await.unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(delivery.event.id, "e-1");

    let wrong = events_config(&[
        ("HELPDESK_EVENTS__NATS_URL", &server.url),
        ("HELPDESK_EVENTS__NATS_USER", "helpdesk"),
        ("HELPDESK_EVENTS__NATS_PASSWORD", "guess"),
    ]);
    assert!(NatsBus::connect(&wrong).await.is_err(), "a wrong password is refused");
    let anonymous = events_config(&[("HELPDESK_EVENTS__NATS_URL", &server.url)]);
    assert!(NatsBus::connect(&anonymous).await.is_err(), "no credentials are refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_on_jetstream_waits_in_its_own_stream_and_is_replayed() {
    let Some(url) = nats_url() else { return };
    let config = events_config(&[("HELPDESK_EVENTS__NATS_URL", &url)]);
    let bus = NatsBus::connect(&config).await.unwrap();
    let mut routing = bus.subscribe("routing", None).await.unwrap();
    bus.publish(&[event("e-1")]).await.unwrap();
    let next = async |stream: &mut helpdesk_events::EventStream| {
        tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap()
    };
    next(&mut routing).await.dead_letter("invalid_argument: no such queue").await.unwrap();

    let letters = bus.dead_letters(Some("routing"), 10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!((letters[0].event.id.as_str(), letters[0].error.as_str()), ("e-1", "invalid_argument: no such queue"));
    assert!(bus.dead_letters(Some("knowledge"), 10).await.unwrap().is_empty());

    assert_eq!(bus.replay("routing", &[]).await.unwrap(), 1);
    let again = next(&mut routing).await;
    assert_eq!(again.event.id, "e-1");
    again.ack().await.unwrap();
    assert!(bus.dead_letters(None, 10).await.unwrap().is_empty());
    bus.delete_stream().await.unwrap();
}
