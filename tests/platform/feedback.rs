use std::time::{Duration, Instant};

use helpdesk_tests::{Options, TestApp, on_both_backends, spawn_app_with};
use serde_json::{Value, json};

fn field(error: &Value) -> &str {
    error["error"]["fields"][0]["field"].as_str().unwrap_or_default()
}

/// Polls `path` until `ready` holds, for work done in the background (delivery, projections).
async fn eventually(app: &TestApp, path: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = app.get(path, &app.admin_key).await;
        if status == 200 && ready(&body) {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never got there: {status} {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn solve(app: &TestApp, id: &str) {
    let (status, solved) = app.update_ticket(&app.admin_key, id, json!({ "status": "solved" })).await;
    assert_eq!(status, 200, "{solved}");
}

/// The survey link posted on the ticket, once delivery has sent it, as `customer` reads it;
/// staff read it redacted.
async fn survey_link(app: &TestApp, ticket: &str, customer: &str) -> (String, String) {
    let survey_text = |messages: &Value| {
        messages["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|m| m["body_text"].as_str().filter(|text| text.contains("/v1/surveys/")))
            .map(str::to_owned)
    };
    let staff =
        eventually(app, &format!("/v1/tickets/{ticket}/messages"), |messages| survey_text(messages).is_some()).await;
    let redacted = survey_text(&staff).unwrap();
    assert!(redacted.contains(".[redacted]"), "staff never see a usable link: {redacted}");
    let (status, own) = app.get(&format!("/v1/tickets/{ticket}/messages"), &app.customer_token("demo", customer)).await;
    assert_eq!(status, 200, "{own}");
    let text = survey_text(&own).expect("the customer's link");
    let at = text.find("/v1/surveys/").unwrap();
    let path = text[at..].split_whitespace().next().unwrap().to_owned();
    assert!(!path.contains("redacted"));
    // What staff see answers nothing.
    let staff_path = redacted[redacted.find("/v1/surveys/").unwrap()..].split_whitespace().next().unwrap().to_owned();
    let (status, _) = app.public(reqwest::Method::GET, &staff_path, None).await;
    assert_eq!(status, 400, "a redacted link opens nothing");
    (path, text)
}

async fn ticket_for(app: &TestApp, customer: &str, channel: &str, tags: Value) -> String {
    let ticket = app
        .create_ticket(
            &app.admin_key,
            json!({
                "subject": "환불이 아직 안 들어왔어요", "description": "주문 1234", "requester_id": customer,
                "channel": channel, "group": "billing", "assignee_id": "agent-1", "tags": tags
            }),
        )
        .await;
    ticket["id"].as_str().unwrap().to_owned()
}

on_both_backends! {
    async fn a_solved_ticket_gets_a_survey_and_a_low_score_opens_a_follow_up_that_reports_show(app: TestApp) {
        let key = app.admin_key.clone();
        let (status, settings) = app
            .call(reqwest::Method::PUT, "/v1/feedback/settings", &key, Some(json!({
                "time_zone": "Asia/Seoul", "team_leads": { "billing": "lead-1" }
            })))
            .await;
        assert_eq!(status, 200, "{settings}");
        let (status, csat) = app.post("/v1/feedback/surveys", &key, json!({
            "name": "After solve", "kind": "csat", "active": true,
            "trigger": { "on_solved": true, "channels": ["email", "web", "api"], "throttle_days": 30 }
        })).await;
        assert_eq!(status, 201, "{csat}");
        assert_eq!(csat["questions"][0]["id"], "score", "{csat}");
        // Chat tickets get a later survey, so a reopen can withdraw it.
        let (status, _) = app.post("/v1/feedback/surveys", &key, json!({
            "name": "Chat", "kind": "nps", "active": true,
            "trigger": { "on_solved": true, "channels": ["chat"], "delay_minutes": 60 }
        })).await;
        assert_eq!(status, 201);

        let (status, customer) = app
            .post("/v1/customers", &key, json!({ "name": "김민지", "emails": ["minji@example.com"], "language": "ko" }))
            .await;
        assert_eq!(status, 201, "{customer}");
        let customer = customer["id"].as_str().unwrap().to_owned();
        let ticket = ticket_for(&app, &customer, "email", json!(["refund"])).await;
        let (status, _) = app.post(&format!("/v1/tickets/{ticket}/messages"), &key, json!({ "body_text": "확인해 보겠습니다." })).await;
        assert_eq!(status, 201);
        solve(&app, &ticket).await;

        // The link arrives on the ticket in the customer's language and answers without credentials.
        let (link, text) = survey_link(&app, &ticket, &customer).await;
        assert!(text.contains("만족"), "{text}");
        let (status, form) = app.public(reqwest::Method::GET, &link, None).await;
        assert_eq!(status, 200, "{form}");
        assert_eq!(form["locale"], "ko");
        assert_eq!(form["questions"][0]["text"], "상담 서비스에 얼마나 만족하셨나요?");

        // Bad answers change nothing.
        let answer = |score: i64, submission: &str| json!({
            "submission_id": submission,
            "answers": [{ "question_id": "score", "value": score }, { "question_id": "agent_clarity", "value": 2 }],
            "comment": "<script>alert(1)</script> 너무 느려요"
        });
        let (status, error) = app.public(reqwest::Method::POST, &link, Some(answer(9, "a"))).await;
        assert_eq!((status, field(&error)), (400, "answers[0].value"), "{error}");
        let long = json!({ "answers": [{ "question_id": "score", "value": 1 }], "comment": "x".repeat(5_001) });
        let (status, error) = app.public(reqwest::Method::POST, &link, Some(long)).await;
        assert_eq!((status, field(&error)), (400, "comment"), "{error}");
        let last = if link.ends_with('0') { "1" } else { "0" };
        let forged = format!("{}{last}", &link[..link.len() - 1]);
        let (status, error) = app.public(reqwest::Method::POST, &forged, Some(answer(1, "a"))).await;
        assert_eq!((status, field(&error)), (400, "token"), "{error}");

        // A double click records one answer; the HTML comes back as the text it was.
        let (status, first) = app.public(reqwest::Method::POST, &link, Some(answer(1, "click-1"))).await;
        assert_eq!(status, 200, "{first}");
        let (status, again) = app.public(reqwest::Method::POST, &link, Some(answer(1, "click-1"))).await;
        assert_eq!(status, 200, "{again}");
        assert_eq!((first["revision"].as_i64(), again["revision"].as_i64()), (Some(1), Some(1)));
        assert_eq!(first["comment"], "<script>alert(1)</script> 너무 느려요");
        let revision_key = first["revision_key"].as_str().expect("the first submitter's key").to_owned();
        assert!(again["revision_key"].is_null(), "only the answer that made the key carries it: {again}");

        // The low score opens a follow-up for the team lead, with a linked ticket in ticketing.
        let follow_ups = eventually(&app, "/v1/feedback/follow-ups?state=open", |list| {
            list["follow_ups"][0]["linked_ticket_id"].as_str().is_some_and(|id| !id.is_empty())
        })
        .await;
        let follow_up = follow_ups["follow_ups"][0].clone();
        assert_eq!((follow_up["ticket_id"].as_str(), follow_up["assignee_id"].as_str()), (Some(ticket.as_str()), Some("lead-1")));
        // Routing takes the new ticket in too, and keeps the lead and the team ticketing was given.
        let linked = eventually(&app, &format!("/v1/tickets/{}", follow_up["linked_ticket_id"].as_str().unwrap()), |linked| {
            linked["assignee_id"] == "lead-1" && linked["group"] == "billing"
        })
        .await;
        assert!(linked["linked_ticket_ids"].as_array().unwrap().iter().any(|id| id == ticket.as_str()), "{linked}");

        // Only the first submitter may revise: whoever else holds the link is refused.
        let (status, forged) = app.public(reqwest::Method::POST, &link, Some(answer(5, "someone-else"))).await;
        assert_eq!((status, field(&forged)), (403, "revision_key"), "{forged}");
        let mut wrong = answer(5, "someone-else");
        wrong["revision_key"] = json!("00".repeat(32));
        assert_eq!(app.public(reqwest::Method::POST, &link, Some(wrong)).await.0, 403);
        let (_, form) = app.public(reqwest::Method::GET, &link, None).await;
        assert!(form["current"]["revision_key"].is_null(), "the form never shows the key: {form}");

        // A revision is a new revision of the same answer, and opens no second follow-up.
        let mut revision = answer(2, "click-2");
        revision["revision_key"] = json!(revision_key);
        let (status, revised) = app.public(reqwest::Method::POST, &link, Some(revision)).await;
        assert_eq!(status, 200, "{revised}");
        assert_eq!(revised["revision"], 2);
        assert!(revised["revision_key"].is_null(), "{revised}");
        let (_, form) = app.public(reqwest::Method::GET, &link, None).await;
        assert_eq!(form["current"]["revision"], 2, "{form}");

        // The reports show the answer, the follow-up and the ticket's times, in CSV too.
        let satisfaction = eventually(&app, "/v1/insights/reports/satisfaction?group_by=agent", |report| {
            report["rows"][0][0] == "agent-1" && report["rows"][0][2] == 2.0
        })
        .await;
        let columns: Vec<&str> = satisfaction["columns"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
        let cell = |name: &str| satisfaction["rows"][0][columns.iter().position(|c| *c == name).unwrap()].clone();
        assert_eq!((cell("responses"), cell("follow_ups"), cell("agent_rating_average")), (json!(1.0), json!(1.0), json!(2.0)));
        assert_eq!(satisfaction["time_zone"], "Asia/Seoul");
        let performance = eventually(&app, "/v1/insights/reports/performance?tag=refund", |report| {
            report["rows"][0][1] == 1.0 && report["rows"][0][4].is_number()
        })
        .await;
        assert!(performance["rows"][0][2].is_number(), "first response time: {performance}");
        let response = app
            .http
            .get(app.url("/v1/insights/reports/agent-scorecard?format=csv"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
        let csv = response.text().await.unwrap();
        assert!(csv.starts_with("agent,tickets,solved,"), "{csv}");
        assert!(csv.lines().any(|line| line.starts_with("agent-1,")), "{csv}");

        // The customer's side of the follow-up ticket says nothing of the score; the lead's note does.
        let (_, messages) = app.get(&format!("/v1/tickets/{}/messages", linked["id"].as_str().unwrap()), &key).await;
        let notes: Vec<&Value> = messages["messages"].as_array().unwrap().iter().filter(|m| m["body_text"].as_str().unwrap().contains("CSAT 1")).collect();
        assert_eq!(notes.len(), 1, "{messages}");
        assert_eq!(notes[0]["visibility"], "internal", "{messages}");
        assert!(!linked["description"].as_str().unwrap().contains("CSAT"), "{linked}");

        // Closed with a note, once, by the lead (or an admin), not by another agent.
        let close = format!("/v1/feedback/follow-ups/{}/close", follow_up["id"].as_str().unwrap());
        let other_agent = app.token("demo", "agent-2", "agent", 600);
        let (status, _) = app.post(&close, &other_agent, json!({ "resolution_note": "not mine" })).await;
        assert_eq!(status, 403);
        let (status, error) = app.post(&close, &key, json!({ "resolution_note": " " })).await;
        assert_eq!((status, field(&error)), (400, "resolution_note"), "{error}");
        let (status, closed) = app.post(&close, &key, json!({ "resolution_note": "Refunded and apologised by phone" })).await;
        assert_eq!(status, 200, "{closed}");
        assert_eq!(closed["state"], "closed");
        let (status, _) = app.post(&close, &key, json!({ "resolution_note": "again" })).await;
        assert_eq!(status, 422);
        eventually(&app, "/v1/insights/reports/satisfaction", |report| report["rows"][0][8] == 1.0).await;

        // "You said, we did": the respondent hears about the fix in Korean, on their ticket. Only
        // admins speak to every respondent.
        let (status, _) = app.post("/v1/feedback/announcements", &other_agent, json!({
            "theme": "refund", "message": { "en": "Hi" }
        })).await;
        assert_eq!(status, 403);
        let (status, announcement) = app.post("/v1/feedback/announcements", &key, json!({
            "theme": "refund", "message": { "en": "Refunds now arrive within 2 days.", "ko": "이제 환불이 2일 안에 처리됩니다." }
        })).await;
        assert_eq!(status, 201, "{announcement}");
        assert_eq!(announcement["recipients"], 1);
        eventually(&app, &format!("/v1/tickets/{ticket}/messages"), |messages| {
            messages["messages"].as_array().unwrap().iter().any(|m| m["body_text"] == "이제 환불이 2일 안에 처리됩니다.")
        })
        .await;
        // Once the ticket is closed, the next announcement comes on a solved ticket that follows it
        // up; it is neither surveyed nor counted as a request.
        let (status, closed) = app.update_ticket(&key, &ticket, json!({ "status": "closed" })).await;
        assert_eq!(status, 200, "{closed}");
        let (status, _) = app.post("/v1/feedback/announcements", &key, json!({
            "theme": "refund", "message": { "en": "Refunds are now instant.", "ko": "이제 환불이 바로 처리됩니다." }
        })).await;
        assert_eq!(status, 201);
        let carriers = eventually(&app, "/v1/tickets?tag=feedback-message", |list| {
            list["tickets"].as_array().is_some_and(|tickets| tickets.len() == 1 && tickets[0]["status"] == "solved")
        })
        .await;
        let carrier = &carriers["tickets"][0];
        assert_eq!((carrier["description"].as_str(), carrier["follow_up_of_id"].as_str()), (Some("이제 환불이 바로 처리됩니다."), Some(ticket.as_str())), "{carrier}");
        let (_, invitations) = app.get(&format!("/v1/feedback/invitations?ticket_id={}", carrier["id"].as_str().unwrap()), &key).await;
        assert_eq!(invitations["invitations"].as_array().unwrap().len(), 0, "{invitations}");

        // Throttled: the same customer's next solved ticket within 30 days gets no survey.
        let second = ticket_for(&app, &customer, "email", json!([])).await;
        solve(&app, &second).await;
        // A chat ticket's survey waits an hour; reopening withdraws it.
        let (_, other) = app.post("/v1/customers", &key, json!({ "name": "Sam", "emails": ["sam@example.com"] })).await;
        let chat = ticket_for(&app, other["id"].as_str().unwrap(), "chat", json!([])).await;
        solve(&app, &chat).await;
        let invitations = eventually(&app, &format!("/v1/feedback/invitations?ticket_id={chat}"), |list| {
            list["invitations"].as_array().is_some_and(|list| !list.is_empty())
        })
        .await;
        assert_eq!(invitations["invitations"][0]["state"], "scheduled", "{invitations}");
        let (status, _) = app.update_ticket(&key, &chat, json!({ "status": "open" })).await;
        assert_eq!(status, 200);
        eventually(&app, &format!("/v1/feedback/invitations?ticket_id={chat}"), |list| {
            list["invitations"][0]["state"] == "cancelled"
        })
        .await;
        let (_, throttled) = app.get(&format!("/v1/feedback/invitations?ticket_id={second}"), &key).await;
        assert_eq!(throttled["invitations"].as_array().unwrap().len(), 0, "{throttled}");

        // This week's three tickets about 환불 make it a rising key phrase, from Korean subjects.
        let trends = eventually(&app, "/v1/insights/reports/trends", |report| {
            report["rows"].as_array().unwrap().iter().any(|row| row[0] == "환불" && row[1] == "phrase" && row[2] == 3.0)
        })
        .await;
        assert!(trends["rows"].as_array().unwrap().iter().all(|row| row[0] != "아직"), "{trends}");

        // A rebuild from the event log gives the same reports.
        let (_, before) = app.get("/v1/insights/reports/satisfaction?group_by=agent", &key).await;
        let (status, rebuilt) = app.post("/v1/insights/rebuild", &key, json!({})).await;
        assert_eq!(status, 200, "{rebuilt}");
        assert!(rebuilt["events"].as_i64().unwrap() > 5, "{rebuilt}");
        let (_, after) = app.get("/v1/insights/reports/satisfaction?group_by=agent", &key).await;
        assert_eq!(after["rows"], before["rows"]);
    }

    async fn reports_and_answers_refuse_bad_input_and_other_tenants(app: TestApp) {
        let key = app.admin_key.clone();
        for (query, name) in [
            ("?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
            ("?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "to"),
            ("?group_by=fortnight", "group_by"),
            ("?time_zone=Mars/Olympus", "time_zone"),
            ("?channel=pigeon", "channel"),
            ("?from=yesterday", "from"),
            ("?from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z", "from"),
            ("?from=2199-12-31T00:00:00Z&to=9999-12-31T00:00:00Z", "to"),
        ] {
            let (status, error) = app.get(&format!("/v1/insights/reports/volume{query}"), &key).await;
            assert_eq!((status, field(&error)), (400, name), "{query}: {error}");
        }
        let (status, error) = app.get("/v1/insights/reports/everything", &key).await;
        assert_eq!((status, field(&error)), (400, "kind"), "{error}");
        let (status, error) = app.post("/v1/feedback/surveys", &key, json!({ "name": "x", "kind": "csat", "trigger": { "sampling_percent": 500 } })).await;
        assert_eq!((status, field(&error)), (400, "survey.trigger.sampling_percent"), "{error}");
        let (status, error) = app.call(reqwest::Method::PUT, "/v1/feedback/settings", &key, Some(json!({ "time_zone": "Seoul" }))).await;
        assert_eq!((status, field(&error)), (400, "settings.time_zone"), "{error}");
        for token in ["nonsense", "demo.inv.99999999999.00", &"a".repeat(400)] {
            let (status, error) = app.public(reqwest::Method::GET, &format!("/v1/surveys/{token}"), None).await;
            assert_eq!((status, field(&error)), (400, "token"), "{token}: {error}");
        }

        // Customers see no reports or answers; another tenant sees none of this one's.
        let customer = app.customer_token("demo", "cust-1");
        let (status, _) = app.get("/v1/insights/reports/volume", &customer).await;
        assert_eq!(status, 403);
        let (status, _) = app.get("/v1/feedback/responses", &customer).await;
        assert_eq!(status, 403);
        let other = app.new_tenant("other-co").await;
        let (status, surveys) = app.get("/v1/feedback/surveys", &other).await;
        assert_eq!(status, 200);
        assert_eq!(surveys["surveys"].as_array().unwrap().len(), 0);
        let (_, report) = app.get("/v1/insights/reports/volume?group_by=none", &other).await;
        assert_eq!(report["rows"].as_array().unwrap().len(), 0, "{report}");
    }
}

/// The survey loop with every service's events on NATS JetStream, as deployed: durable
/// consumers for the survey trigger and the insight projections.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_survey_loop_runs_over_nats_jetstream() {
    let Some(nats_url) = std::env::var("HELPDESK_TEST_NATS_URL").ok().filter(|url| !url.is_empty()) else {
        eprintln!("HELPDESK_TEST_NATS_URL is not set: JetStream run not possible here");
        return;
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (stream, prefix) = (format!("TEST_{run}"), format!("test_{run}"));
    let options = Options { nats: Some((nats_url.clone(), stream.clone(), prefix.clone())), ..Options::default() };
    let app = spawn_app_with(options).await;
    let key = app.admin_key.clone();
    let (status, _) = app
        .post(
            "/v1/feedback/surveys",
            &key,
            json!({ "name": "CES", "kind": "ces", "active": true, "trigger": { "on_solved": true } }),
        )
        .await;
    assert_eq!(status, 201);
    let (_, customer) =
        app.post("/v1/customers", &key, json!({ "name": "Alex", "emails": ["alex@example.com"] })).await;
    let ticket = ticket_for(&app, customer["id"].as_str().unwrap(), "web", json!(["login"])).await;
    solve(&app, &ticket).await;
    let (link, text) = survey_link(&app, &ticket, customer["id"].as_str().unwrap()).await;
    assert!(text.starts_with("How did we do?"), "{text}");
    let (status, answer) = app
        .public(reqwest::Method::POST, &link, Some(json!({ "answers": [{ "question_id": "score", "value": 2 }] })))
        .await;
    assert_eq!(status, 200, "{answer}");
    eventually(&app, "/v1/feedback/follow-ups", |list| {
        list["follow_ups"][0]["linked_ticket_id"].as_str().is_some_and(|id| !id.is_empty())
    })
    .await;
    eventually(&app, "/v1/insights/reports/satisfaction?channel=web", |report| {
        let row = &report["rows"][0];
        row[1] == 1.0 && row[5] == 2.0 && row[7] == 1.0
    })
    .await;
    app.stop().await;
    helpdesk_tests::delete_nats_streams(&nats_url, &stream, &prefix).await;
}
