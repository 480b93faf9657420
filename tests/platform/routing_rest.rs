use std::time::Duration;

use helpdesk_tests::{TestApp, on_both_backends};
use serde_json::{Value, json};

async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    app.call(reqwest::Method::PUT, path, &app.admin_key, Some(body)).await
}

/// Reads `path` until `done` holds for its body, for up to five seconds; returns the last body.
async fn poll(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (status, body) = app.get(path, &app.admin_key).await;
        if (status == 200 && done(&body)) || tokio::time::Instant::now() >= deadline {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn fields(error: &Value) -> Vec<&str> {
    error["error"]["fields"]
        .as_array()
        .map(|fields| fields.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default()
}

on_both_backends! {
    async fn a_ticket_created_over_rest_is_assigned_to_the_online_agent_of_its_queue(app: TestApp) {
        let key = app.admin_key.clone();
        let (status, queue) = put(&app, "/v1/queues/general", json!({
            "name": "General", "channels": ["email"], "required_skills": [{"name": "billing", "level": 3}],
            "strategy": "least_loaded", "description": " 배송·환불 문의 (orders and refunds) "
        }))
        .await;
        assert_eq!(status, 200, "{queue}");
        assert_eq!(queue["strategy"], "least_loaded");
        assert_eq!(queue["description"], "배송·환불 문의 (orders and refunds)");
        assert_eq!(queue["channels"], json!(["email"]));
        let (status, agent) = put(&app, "/v1/agents/agent-1", json!({
            "name": "Jiyoon", "skills": [{"name": "billing", "level": 5}], "languages": ["en", "ko"],
            "capacities": [{"channel": "email", "capacity": 5}], "tier": "L1"
        }))
        .await;
        assert_eq!(status, 200, "{agent}");
        assert_eq!(agent["capacities"], json!([{"channel": "email", "capacity": 5}]));
        let (status, agent) = app.post("/v1/agents/agent-1/presence", &key, json!({ "presence": "online" })).await;
        assert_eq!(status, 200, "{agent}");
        assert_eq!(agent["presence"], "online");
        let (status, online) = app.get("/v1/agents?presence=online", &key).await;
        assert_eq!(status, 200, "{online}");
        assert_eq!(online["agents"][0]["id"], "agent-1");

        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let ticket = app
            .create_ticket(&key, json!({
                "subject": "Refund for my order", "description": "The parcel arrived broken, please refund it",
                "requester_id": customer, "channel": "email"
            }))
            .await;
        let id = ticket["id"].as_str().unwrap().to_owned();

        let routing = poll(&app, &format!("/v1/tickets/{id}/routing"), |body| body["state"] == "assigned").await;
        assert_eq!(routing["state"], "assigned", "{routing}");
        assert_eq!(routing["assignee_id"], "agent-1");
        assert_eq!(routing["queue_id"], "general");
        assert_eq!(routing["channel"], "email");
        assert!(routing["assigned_at"].is_string(), "{routing}");
        assert!(routing["sla"]["targets"].is_array(), "{routing}");
        assert_eq!(routing["wait"]["position"], 0, "an assigned ticket waits no more");
        // Routing writes the assignment back to the ticket: its group becomes the queue id.
        let written = poll(&app, &format!("/v1/tickets/{id}"), |body| body["assignee_id"] == "agent-1").await;
        assert_eq!(written["assignee_id"], "agent-1", "{written}");
        assert_eq!(written["group"], "general");

        let escalations = format!("/v1/tickets/{id}/escalations");
        let reason = json!({ "reason": "customer asked for a manager" });
        let (status, escalation) = app.post(&escalations, &key, reason).await;
        assert_eq!(status, 201, "{escalation}");
        assert_eq!(escalation["trigger"], "manual");
        let (status, history) = app.get(&escalations, &key).await;
        assert_eq!(status, 200, "{history}");
        assert_eq!(history["escalations"][0]["id"], escalation["id"]);
    }

    async fn looping_overflow_queues_and_reasonless_escalations_are_refused_naming_the_field(app: TestApp) {
        let key = app.admin_key.clone();
        let never = json!(["never-matches"]);
        let (status, body) = put(&app, "/v1/queues/x", json!({ "match_tags": never })).await;
        assert_eq!(status, 200, "{body}");
        let (status, body) = put(&app, "/v1/queues/y", json!({
            "match_tags": never, "overflow_queue_id": "x", "overflow_after_seconds": 60
        }))
        .await;
        assert_eq!(status, 200, "{body}");
        let (status, error) = put(&app, "/v1/queues/x", json!({
            "match_tags": never, "overflow_queue_id": "y", "overflow_after_seconds": 60
        }))
        .await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(fields(&error), ["queue.overflow_queue_id"], "{error}");
        let (_, queues) = app.get("/v1/queues", &key).await;
        let x = queues["queues"].as_array().unwrap().iter().find(|queue| queue["id"] == "x").cloned().unwrap();
        assert!(x["overflow_queue_id"].is_null(), "the refused change was not kept: {x}");
        let (status, error) = put(&app, "/v1/queues/x", json!({ "description": "긴".repeat(501) })).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(fields(&error), ["queue.description"], "{error}");

        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let ticket = app.create_ticket(&key, json!({ "subject": "Cannot log in", "requester_id": customer })).await;
        let path = format!("/v1/tickets/{}/escalations", ticket["id"].as_str().unwrap());
        let (status, error) = app.post(&path, &key, json!({ "reason": "" })).await;
        assert_eq!(status, 400, "{error}");
        assert_eq!(fields(&error), ["reason"], "{error}");
        assert_eq!(app.get("/v1/agents?presence=busy", &key).await.0, 400);
    }
}

/// A forecast of `intervals` half hours, each with `contacts` chats of four minutes.
fn forecast(intervals: usize, contacts: f64) -> Value {
    let intervals: Vec<Value> =
        (0..intervals).map(|n| json!({ "label": format!("slot {n}"), "contacts": contacts })).collect();
    json!({ "intervals": intervals, "interval_seconds": 1800, "average_handle_seconds": 240,
        "service_level": 0.8, "answer_within_seconds": 20 })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staffing_forecasts_are_bounded_and_health_answers_while_the_largest_run() {
    let app = helpdesk_tests::spawn_app(helpdesk_tests::Backend::Sqlite).await;
    // Fifty thousand Erlangs in each of 10,000 intervals: minutes of arithmetic, refused at once.
    let (status, error) = app.post("/v1/staffing/forecast", &app.admin_key, forecast(10_000, 375_000.0)).await;
    assert_eq!(status, 400, "{error}");
    assert_eq!(fields(&error), ["intervals"]);

    // The largest accepted (160 Erlangs in each of 10,000 intervals), four at once.
    let largest = forecast(10_000, 1_200.0);
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let request = app.http.post(app.url("/v1/staffing/forecast")).bearer_auth(&app.admin_key).json(&largest);
            tokio::spawn(request.send())
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let health = app.http.get(app.url("/healthz")).send().await.unwrap();
        assert_eq!(health.status().as_u16(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "healthz took {:?} beside the forecasts",
            started.elapsed()
        );
    }
    for run in runs {
        let response = run.await.unwrap().unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let plan: Value = response.json().await.unwrap();
        assert_eq!(plan["intervals"].as_array().unwrap().len(), 10_000);
        assert!(plan["peak_agents"].as_i64().unwrap() > 160, "{}", plan["peak_agents"]);
    }
    app.stop().await;
}
