use helpdesk_tests::on_both_backends;
use serde_json::json;

on_both_backends! {
    async fn creating_a_ticket_over_rest_returns_it_with_lowercase_enums(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "김민수", "minsu@example.kr").await;
        let ticket = app
            .create_ticket(&key, json!({
                "subject": "환불 요청", "requester_id": customer, "priority": "high", "channel": "email",
                "tags": ["Refund"], "external_refs": {"order_id": "A-1"}
            }))
            .await;
        assert_eq!(ticket["priority"], "high");
        assert_eq!(ticket["channel"], "email");
        assert_eq!(ticket["status"], "new");
        assert_eq!(ticket["tags"], json!(["refund"]));
        assert_eq!(ticket["version"], 1);
        let (status, read) = app.get(&format!("/v1/tickets/{}", ticket["id"].as_str().unwrap()), &key).await;
        assert_eq!(status, 200);
        assert_eq!(read["external_refs"]["order_id"], "A-1");
    }

    async fn retrying_a_create_with_one_idempotency_key_returns_the_first_ticket(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let body = json!({ "subject": "Cannot log in", "requester_id": customer });
        let send = |body: serde_json::Value| {
            app.http.post(app.url("/v1/tickets")).bearer_auth(&key).header("Idempotency-Key", "retry-1").json(&body).send()
        };
        let first: serde_json::Value = send(body.clone()).await.unwrap().json().await.unwrap();
        let second: serde_json::Value = send(body.clone()).await.unwrap().json().await.unwrap();
        assert_eq!(first["id"], second["id"]);
        let (_, list) = app.get("/v1/tickets", &key).await;
        assert_eq!(list["tickets"].as_array().unwrap().len(), 1);

        let reused = send(json!({ "subject": "Something else", "requester_id": customer })).await.unwrap();
        assert_eq!(reused.status().as_u16(), 422);
    }

    async fn a_stale_expected_version_is_rejected_and_changes_nothing(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let ticket = app.create_ticket(&key, json!({ "subject": "Printer on fire", "requester_id": customer })).await;
        let path = format!("/v1/tickets/{}", ticket["id"].as_str().unwrap());
        let (status, updated) = app.patch(&path, &key, json!({ "expected_version": 1, "priority": "urgent" })).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["version"], 2);
        let (status, error) = app.patch(&path, &key, json!({ "expected_version": 1, "priority": "low" })).await;
        assert_eq!(status, 409, "{error}");
        assert_eq!(error["error"]["code"], "conflict");
        let (_, current) = app.get(&path, &key).await;
        assert_eq!(current["priority"], "urgent");
    }

    async fn the_status_lifecycle_rejects_invalid_transitions_and_customer_replies_reopen(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let ticket = app.create_ticket(&key, json!({ "subject": "Refund", "requester_id": customer })).await;
        let id = ticket["id"].as_str().unwrap().to_owned();
        let path = format!("/v1/tickets/{id}");
        let (status, solved) = app.patch(&path, &key, json!({ "expected_version": 1, "status": "solved" })).await;
        assert_eq!(status, 200, "{solved}");
        assert!(solved["solved_at"].is_string());

        let customer_token = app.customer_token("demo", &customer);
        let (status, _) = app.post(&format!("{path}/messages"), &customer_token, json!({ "body_text": "Still broken" })).await;
        assert_eq!(status, 201);
        let (_, reopened) = app.get(&path, &key).await;
        assert_eq!(reopened["status"], "open");
        assert!(reopened["solved_at"].is_null());

        let version = reopened["version"].as_i64().unwrap();
        let (status, _) = app.patch(&path, &key, json!({ "expected_version": version, "status": "closed" })).await;
        assert_eq!(status, 422, "open cannot jump to closed");
        let (status, solved) = app.patch(&path, &key, json!({ "expected_version": version, "status": "solved" })).await;
        assert_eq!(status, 200);
        let version = solved["version"].as_i64().unwrap();
        let (status, _) = app.patch(&path, &key, json!({ "expected_version": version, "status": "closed" })).await;
        assert_eq!(status, 200);
        let (status, error) = app.post(&format!("{path}/messages"), &customer_token, json!({ "body_text": "Hello?" })).await;
        assert_eq!(status, 422, "{error}");

        let follow_up = app
            .create_ticket(&key, json!({ "subject": "Refund again", "requester_id": customer, "follow_up_of_id": id }))
            .await;
        assert_eq!(follow_up["linked_ticket_ids"], json!([id]));
    }

    async fn keyword_search_finds_korean_and_english_tickets(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "김민수", "minsu@example.kr").await;
        let korean = app
            .create_ticket(&key, json!({ "subject": "배송 지연", "description": "환불을 요청합니다", "requester_id": customer }))
            .await;
        let english = app
            .create_ticket(&key, json!({ "subject": "Refund please", "description": "Order arrived broken", "requester_id": customer }))
            .await;
        let (status, found) = app.get("/v1/tickets?q=%ED%99%98%EB%B6%88", &key).await; // 환불
        assert_eq!(status, 200);
        let ids: Vec<_> = found["tickets"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect();
        assert_eq!(ids, vec![korean["id"].clone()]);

        let (_, found) = app.get("/v1/tickets?q=REFUND%20broken", &key).await;
        let ids: Vec<_> = found["tickets"].as_array().unwrap().iter().map(|t| t["id"].clone()).collect();
        assert_eq!(ids, vec![english["id"].clone()]);

        let path = format!("/v1/tickets/{}/messages", english["id"].as_str().unwrap());
        app.post(&path, &key, json!({ "body_text": "고객에게 교환 안내함", "visibility": "internal" })).await;
        let (_, found) = app.get("/v1/tickets?q=%EA%B5%90%ED%99%98", &key).await; // 교환
        assert_eq!(found["tickets"].as_array().unwrap().len(), 1);
    }

    async fn listing_pages_through_filtered_tickets_without_repeats(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        for n in 0..5 {
            app.create_ticket(&key, json!({ "subject": format!("ticket {n}"), "requester_id": customer, "tags": ["bulk"] })).await;
        }
        app.create_ticket(&key, json!({ "subject": "other", "requester_id": customer, "priority": "urgent" })).await;
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let (status, page) = app.get(&format!("/v1/tickets?tag=bulk&page_size=2&page_token={token}"), &key).await;
            assert_eq!(status, 200, "{page}");
            seen.extend(page["tickets"].as_array().unwrap().iter().map(|t| t["subject"].as_str().unwrap().to_owned()));
            match page["next_page_token"].as_str() {
                Some(next) => token = next.to_owned(),
                None => break,
            }
        }
        assert_eq!(seen, ["ticket 4", "ticket 3", "ticket 2", "ticket 1", "ticket 0"]);
        let (_, urgent) = app.get("/v1/tickets?priority=urgent,high&status=new", &key).await;
        assert_eq!(urgent["tickets"].as_array().unwrap().len(), 1);
    }

    async fn merging_moves_messages_and_closes_the_source_with_a_link(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let source = app.create_ticket(&key, json!({ "subject": "dup", "requester_id": customer })).await;
        let target = app.create_ticket(&key, json!({ "subject": "main", "requester_id": customer })).await;
        let (source_id, target_id) = (source["id"].as_str().unwrap(), target["id"].as_str().unwrap());
        app.post(&format!("/v1/tickets/{source_id}/messages"), &key, json!({ "body_text": "first words" })).await;
        let (status, merged) = app.post(&format!("/v1/tickets/{source_id}/merge"), &key, json!({ "target_id": target_id })).await;
        assert_eq!(status, 200, "{merged}");
        let (_, closed) = app.get(&format!("/v1/tickets/{source_id}"), &key).await;
        assert_eq!(closed["status"], "closed");
        assert_eq!(closed["merged_into_id"], target_id);
        let (_, messages) = app.get(&format!("/v1/tickets/{target_id}/messages"), &key).await;
        let texts: Vec<_> = messages["messages"].as_array().unwrap().iter().map(|m| m["body_text"].as_str().unwrap().to_owned()).collect();
        assert_eq!(texts.len(), 2);
        assert_eq!(texts[0], "first words");
    }

    async fn every_field_change_is_in_the_history(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let ticket = app.create_ticket(&key, json!({ "subject": "history", "requester_id": customer })).await;
        let path = format!("/v1/tickets/{}", ticket["id"].as_str().unwrap());
        app.patch(&path, &key, json!({ "expected_version": 1, "assignee_id": "agent-7", "priority": "high" })).await;
        let (status, history) = app.get(&format!("{path}/history"), &key).await;
        assert_eq!(status, 200);
        let fields: Vec<_> = history["changes"].as_array().unwrap().iter().map(|c| c["field"].as_str().unwrap().to_owned()).collect();
        assert!(fields.contains(&"assignee_id".to_owned()), "{history}");
        assert!(fields.contains(&"priority".to_owned()));
        assert!(fields.contains(&"status".to_owned()), "assigning a new ticket opens it");
    }

    async fn html_in_messages_is_sanitized(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let ticket = app.create_ticket(&key, json!({ "subject": "xss", "requester_id": customer })).await;
        let path = format!("/v1/tickets/{}/messages", ticket["id"].as_str().unwrap());
        let (status, message) = app
            .post(&path, &key, json!({ "body_html": "<p onclick=\"steal()\">Hi <script>alert(1)</script><b>there</b><img src=\"https://track.example/p.gif\"></p>" }))
            .await;
        assert_eq!(status, 201, "{message}");
        let html = message["body_html"].as_str().unwrap();
        assert!(!html.contains("script") && !html.contains("onclick") && !html.contains("track.example"), "{html}");
        assert!(html.contains("<b>there</b>"));
        assert_eq!(message["body_text"], "Hi there");
    }

    async fn a_flagged_customer_is_shown_on_their_later_tickets(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "박지영", "jy@example.kr").await;
        let (status, _) = app
            .call(reqwest::Method::PUT, &format!("/v1/customers/{customer}/flag"), &key, Some(json!({ "kind": "legal_threat", "reason": "소비자원 신고 언급" })))
            .await;
        assert_eq!(status, 200);
        let ticket = app.create_ticket(&key, json!({ "subject": "이중 결제", "requester_id": customer })).await;
        assert_eq!(ticket["requester_flag"]["kind"], "legal_threat");
        let (_, own) = app.get(&format!("/v1/tickets/{}", ticket["id"].as_str().unwrap()), &app.customer_token("demo", &customer)).await;
        assert!(own["requester_flag"].is_null(), "customers never see their own flag");
    }

    async fn saved_replies_fill_placeholders_from_the_ticket(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "김민수", "minsu@example.kr").await;
        let ticket = app.create_ticket(&key, json!({ "subject": "환불", "requester_id": customer, "external_refs": {"order_id": "A-9"} })).await;
        let (status, reply) = app
            .post("/v1/saved_replies", &key, json!({ "title": "환불", "body": "{{customer.name}}님, 주문 {{ticket.external_refs.order_id}} {{unknown}}" }))
            .await;
        assert_eq!(status, 201);
        let (status, rendered) = app
            .post(&format!("/v1/saved_replies/{}/render", reply["id"].as_str().unwrap()), &key, json!({ "ticket_id": ticket["id"] }))
            .await;
        assert_eq!(status, 200, "{rendered}");
        assert_eq!(rendered["body"], "김민수님, 주문 A-9 {{unknown}}");
        assert_eq!(rendered["unresolved"], json!(["unknown"]));
    }

    async fn custom_fields_are_typed_and_required_ones_enforced(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Emily", "emily@example.com").await;
        let (status, _) = app
            .post("/v1/custom_fields", &key, json!({ "key": "product", "label": "Product", "type": "dropdown", "options": ["laptop", "phone"], "required": true }))
            .await;
        assert_eq!(status, 200);
        let (status, error) = app.post("/v1/tickets", &key, json!({ "subject": "x", "requester_id": customer })).await;
        assert_eq!(status, 400);
        assert_eq!(error["error"]["fields"][0]["field"], "custom_fields.product");
        let (status, _) = app.post("/v1/tickets", &key, json!({ "subject": "x", "requester_id": customer, "custom_fields": {"product": "car"} })).await;
        assert_eq!(status, 400);
        let ticket = app.create_ticket(&key, json!({ "subject": "x", "requester_id": customer, "custom_fields": {"product": "phone"} })).await;
        assert_eq!(ticket["custom_fields"]["product"], "phone");
    }
}
