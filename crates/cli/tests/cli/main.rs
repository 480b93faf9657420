//! The `helpdesk` binary as an operator runs it: killed mid-load it loses no accepted ticket, and
//! SIGTERM stops it cleanly.

// A panic is how a test reports a failure.
#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

const KEY: &str = "hdk_durability01_0123456789abcdefghijABCDEFGHIJ0123";

/// Starts `helpdesk serve` on free ports over `data_dir`; returns the child and its HTTP address.
fn start(data_dir: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
        .arg("serve")
        .env("HELPDESK_GRPC_ADDR", "127.0.0.1:0")
        .env("HELPDESK_HTTP_ADDR", "127.0.0.1:0")
        .env("HELPDESK_DATA_DIR", data_dir)
        .env("HELPDESK_BOOTSTRAP_API_KEY", KEY)
        .env("HELPDESK_TELEMETRY__LOG_FORMAT", "json")
        .env("HELPDESK_GATEWAY__RATE_LIMIT_PER_SECOND", "100000")
        .env("HELPDESK_GATEWAY__RATE_LIMIT_BURST", "100000")
        .env("HELPDESK_EMAIL__SMTP_ADDR", "127.0.0.1:0")
        .env_remove("HELPDESK_DATABASE__URL")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("helpdesk starts");
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Ok(log) = serde_json::from_str::<Value>(&line)
            && log["fields"]["message"] == "helpdesk serving"
        {
            let http = log["fields"]["http_addr"].as_str().unwrap().to_owned();
            return (child, http);
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("helpdesk exited before serving:\n{}", seen.join("\n"));
}

async fn create_customer(client: &reqwest::Client, http: &str) -> String {
    let response = client
        .post(format!("http://{http}/v1/customers"))
        .bearer_auth(KEY)
        .json(&json!({ "name": "Durable" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// Sixteen writers create tickets with `body(writer, n)` until the process is SIGKILLed, which
/// happens once 100 creates were acknowledged, with more in flight. Returns every acknowledged id.
async fn create_until_killed(
    child: &mut Child,
    client: &reqwest::Client,
    http: &str,
    body: impl Fn(usize, usize) -> Value + Send + Sync + 'static,
) -> Vec<String> {
    let body = std::sync::Arc::new(body);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    for writer in 0..16 {
        let (client, http, sender, body) = (client.clone(), http.to_owned(), sender.clone(), body.clone());
        tokio::spawn(async move {
            for n in 0.. {
                let response = client
                    .post(format!("http://{http}/v1/tickets"))
                    .bearer_auth(KEY)
                    .json(&body(writer, n))
                    .send()
                    .await;
                let Ok(response) = response else { return };
                if response.status().as_u16() != 201 {
                    return;
                }
                let Ok(body) = response.json::<Value>().await else { return };
                if sender.send(body["id"].as_str().unwrap().to_owned()).is_err() {
                    return;
                }
            }
        });
    }
    drop(sender);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < 100 {
        acknowledged.push(receiver.recv().await.expect("writers keep going"));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    while let Some(id) = receiver.recv().await {
        acknowledged.push(id);
    }
    acknowledged
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tickets_acknowledged_before_a_kill_survive_the_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let (mut child, http) = start(data_dir.path());
    let client = reqwest::Client::new();
    let customer = create_customer(&client, &http).await;
    let acknowledged = create_until_killed(
        &mut child,
        &client,
        &http,
        move |writer, n| json!({ "subject": format!("writer {writer} ticket {n}"), "requester_id": customer }),
    )
    .await;

    let (mut child, http) = start(data_dir.path());
    for id in &acknowledged {
        let response = client.get(format!("http://{http}/v1/tickets/{id}")).bearer_auth(KEY).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "acknowledged ticket {id} was lost");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_and_exits_cleanly() {
    let data_dir = tempfile::tempdir().unwrap();
    let (mut child, http) = start(data_dir.path());
    let ready = reqwest::get(format!("http://{http}/readyz")).await.unwrap();
    assert_eq!(ready.status().as_u16(), 200);
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(exit) = child.try_wait().unwrap() {
            assert!(exit.success(), "exit status {exit}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "helpdesk did not stop within 15 s of SIGTERM");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_ticket_acknowledged_before_a_kill_is_routed_after_the_restart() {
    let data_dir = tempfile::tempdir().unwrap();
    let (mut child, http) = start(data_dir.path());
    let client = reqwest::Client::new();
    for (path, body) in [
        ("/v1/queues/all", json!({ "name": "everything" })),
        ("/v1/agents/a1", json!({ "languages": ["en", "ko"], "capacities": [{ "channel": "web", "capacity": 1000 }] })),
    ] {
        let response = client.put(format!("http://{http}{path}")).bearer_auth(KEY).json(&body).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "PUT {path}");
    }
    let online = client
        .post(format!("http://{http}/v1/agents/a1/presence"))
        .bearer_auth(KEY)
        .json(&json!({ "presence": "online" }))
        .send()
        .await
        .unwrap();
    assert_eq!(online.status().as_u16(), 200);
    let customer = create_customer(&client, &http).await;
    // The process is killed with creates, events and routing decisions in flight.
    let acknowledged = create_until_killed(&mut child, &client, &http, move |writer, n| {
        json!({ "subject": format!("routed {writer}-{n}"), "requester_id": customer, "channel": "web" })
    })
    .await;

    let (mut child, http) = start(data_dir.path());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    for id in &acknowledged {
        loop {
            let response =
                client.get(format!("http://{http}/v1/tickets/{id}/routing")).bearer_auth(KEY).send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or_default();
            if status == 200 && body["state"] == "assigned" && body["assignee_id"] == "a1" {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "ticket {id} was never routed: {status} {body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Sixteen workers solve the tickets in `queue` until `stop` has run, which happens once `until`
/// solves were acknowledged, with more in flight. Returns every ticket acknowledged as solved.
async fn solve_until(
    client: &reqwest::Client,
    http: &str,
    queue: Vec<String>,
    until: usize,
    stop: impl FnOnce(),
) -> Vec<String> {
    let queue = std::sync::Arc::new(std::sync::Mutex::new(std::collections::VecDeque::from(queue)));
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel::<String>();
    for _ in 0..16 {
        let (client, http, sender, queue) = (client.clone(), http.to_owned(), sender.clone(), queue.clone());
        tokio::spawn(async move {
            loop {
                let Some(id) = queue.lock().unwrap().pop_front() else { return };
                let url = format!("http://{http}/v1/tickets/{id}");
                let Ok(response) = client.get(&url).bearer_auth(KEY).send().await else { return };
                let Ok(ticket) = response.json::<Value>().await else { return };
                if ticket["status"] == "solved" {
                    let _ = sender.send(id);
                    continue;
                }
                let body = json!({ "expected_version": ticket["version"], "status": "solved" });
                let Ok(response) = client.patch(&url).bearer_auth(KEY).json(&body).send().await else { return };
                match response.status().as_u16() {
                    200 if response.json::<Value>().await.is_ok() => {
                        let _ = sender.send(id);
                    }
                    // Routing wrote an assignment in between: read it again.
                    409 => queue.lock().unwrap().push_back(id),
                    _ => return,
                }
            }
        });
    }
    drop(sender);
    let mut acknowledged = Vec::new();
    while acknowledged.len() < until {
        match receiver.recv().await {
            Some(id) => acknowledged.push(id),
            None => break,
        }
    }
    stop();
    while let Some(id) = receiver.recv().await {
        acknowledged.push(id);
    }
    acknowledged
}

fn terminate(child: &mut Child) {
    let status = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_solve_acknowledged_across_a_kill_and_a_stop_gets_its_survey_and_its_insight_row() {
    const TICKETS: usize = 2_000;
    let data_dir = tempfile::tempdir().unwrap();
    let (mut child, http) = start(data_dir.path());
    let client = reqwest::Client::new();
    let survey = json!({
        "name": "After solve", "kind": "csat", "active": true,
        "trigger": { "on_solved": true, "channels": ["web"], "throttle_days": 0 }
    });
    let response =
        client.post(format!("http://{http}/v1/feedback/surveys")).bearer_auth(KEY).json(&survey).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let customer = create_customer(&client, &http).await;
    let mut tickets = Vec::with_capacity(TICKETS);
    for chunk in 0..TICKETS / 100 {
        let creates = (0..100).map(|n| {
            let body =
                json!({ "subject": format!("solve me {chunk}-{n}"), "requester_id": customer, "channel": "web" });
            client.post(format!("http://{http}/v1/tickets")).bearer_auth(KEY).json(&body).send()
        });
        for response in futures::future::join_all(creates).await {
            let response = response.unwrap();
            assert_eq!(response.status().as_u16(), 201);
            tickets.push(response.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
        }
    }

    // Killed with solves, their events and the surveys they trigger in flight...
    let mut solved = solve_until(&client, &http, tickets.clone(), 600, || {
        child.kill().unwrap();
        child.wait().unwrap();
    })
    .await;
    let remaining = |solved: &[String]| tickets.iter().filter(|id| !solved.contains(id)).cloned().collect::<Vec<_>>();
    // ...then stopped with SIGTERM in the middle of the next batch...
    let (mut child, http) = start(data_dir.path());
    solved.extend(solve_until(&client, &http, remaining(&solved), 600, || terminate(&mut child)).await);
    // ...and the rest solved after a clean start.
    let (mut child, http) = start(data_dir.path());
    let rest = remaining(&solved);
    let rest_count = rest.len();
    solved.extend(solve_until(&client, &http, rest, rest_count, || {}).await);
    assert!(remaining(&solved).is_empty());

    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let get = |path: String| {
        let client = client.clone();
        async move { client.get(path).bearer_auth(KEY).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    for id in &tickets {
        loop {
            let invitations = get(format!("http://{http}/v1/feedback/invitations?ticket_id={id}")).await;
            if invitations["invitations"].as_array().is_some_and(|list| list.len() == 1) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "ticket {id} never got its survey: {invitations}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    loop {
        let report = get(format!("http://{http}/v1/insights/reports/volume?group_by=none")).await;
        // Columns: group, created, solved, reopened, unsolved.
        if report["rows"][0][1] == TICKETS as f64 && report["rows"][0][2] == TICKETS as f64 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "insights never counted every solve: {report}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate(&mut child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_sees_a_dead_letter_and_delivers_it_again() {
    use futures::StreamExt;
    use helpdesk_events::EventBus;
    let data_dir = tempfile::tempdir().unwrap();
    let database = helpdesk_runtime::config::DatabaseConfig::new(None, 2);
    let bus = helpdesk_events::EmbeddedBus::open(&database, data_dir.path(), "helpdesk.events").await.unwrap();
    let mut probe = bus.subscribe("probe", None).await.unwrap();
    let event = helpdesk_proto::events::v1::Event {
        id: "event-1".into(),
        tenant_id: "demo".into(),
        aggregate_type: "ticket".into(),
        aggregate_id: "ticket-1".into(),
        sequence: 1,
        ..Default::default()
    };
    bus.publish(std::slice::from_ref(&event)).await.unwrap();
    let delivery = probe.next().await.unwrap().unwrap();
    delivery.dead_letter("invalid_argument: no such queue").await.unwrap();
    let admin = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_helpdesk"))
            .arg("admin")
            .args(args)
            .env("HELPDESK_DATA_DIR", data_dir.path())
            .env("HELPDESK_TELEMETRY__LOG_FORMAT", "json")
            .env_remove("HELPDESK_DATABASE__URL")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).unwrap()
    };

    let listed = admin(&["dead-letters"]);
    assert!(
        listed.contains("\tprobe\tevent-1\thelpdesk.events.demo.ticket.unknown\tinvalid_argument: no such queue"),
        "{listed}"
    );
    assert!(admin(&["dead-letters", "--consumer", "routing-tickets"]).is_empty());
    assert_eq!(
        admin(&["replay-dead-letters", "--consumer", "probe"]).trim(),
        "1 dead letter(s) of probe delivered again"
    );

    let again = tokio::time::timeout(Duration::from_secs(5), probe.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(again.event.id, "event-1");
    assert!(admin(&["dead-letters"]).is_empty());
}
