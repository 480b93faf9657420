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
