use helpdesk_tests::{Backend, Options, on_both_backends, sign, spawn_app_with};
use serde_json::{Value, json};

on_both_backends! {
    async fn one_tenant_cannot_see_or_touch_another_tenants_tickets(app: TestApp) {
        let acme = app.admin_key.clone();
        let globex = app.new_tenant("globex").await;
        let customer = app.create_customer(&acme, "Emily", "emily@example.com").await;
        let ticket = app.create_ticket(&acme, json!({ "subject": "secret", "requester_id": customer })).await;
        let path = format!("/v1/tickets/{}", ticket["id"].as_str().unwrap());
        assert_eq!(app.get(&path, &globex).await.0, 404);
        assert_eq!(app.patch(&path, &globex, json!({ "expected_version": 1, "subject": "pwned" })).await.0, 404);
        assert_eq!(app.post(&format!("{path}/messages"), &globex, json!({ "body_text": "hi" })).await.0, 404);
        let (_, list) = app.get("/v1/tickets?q=secret", &globex).await;
        assert_eq!(list["tickets"].as_array().unwrap().len(), 0);
        assert_eq!(app.get(&format!("/v1/customers/{customer}"), &globex).await.0, 404);
        // The same email may exist once per tenant.
        app.create_customer(&globex, "Emily", "emily@example.com").await;
    }

    async fn a_customer_sees_only_their_own_tickets_and_never_internal_notes(app: TestApp) {
        let key = app.admin_key.clone();
        let alice = app.create_customer(&key, "Alice", "alice@example.com").await;
        let bob = app.create_customer(&key, "Bob", "bob@example.com").await;
        let alices = app
            .create_ticket(&key, json!({ "subject": "alice's", "requester_id": alice, "tags": ["angry"], "group": "billing" }))
            .await;
        let bobs = app.create_ticket(&key, json!({ "subject": "bob's", "requester_id": bob })).await;
        let alice_path = format!("/v1/tickets/{}", alices["id"].as_str().unwrap());
        app.post(&format!("{alice_path}/messages"), &key, json!({ "body_text": "customer seems upset", "visibility": "internal" })).await;
        app.post(&format!("{alice_path}/messages"), &key, json!({ "body_text": "We are on it" })).await;

        let alice_token = app.customer_token("demo", &alice);
        let (_, list) = app.get("/v1/tickets", &alice_token).await;
        let subjects: Vec<_> = list["tickets"].as_array().unwrap().iter().map(|t| t["subject"].clone()).collect();
        assert_eq!(subjects, vec![json!("alice's")]);
        assert_eq!(app.get(&format!("/v1/tickets/{}", bobs["id"].as_str().unwrap()), &alice_token).await.0, 404);
        let (_, messages) = app.get(&format!("{alice_path}/messages"), &alice_token).await;
        let texts: Vec<_> = messages["messages"].as_array().unwrap().iter().map(|m| m["body_text"].clone()).collect();
        assert_eq!(texts, vec![json!("We are on it")]);
        let (_, own) = app.get(&alice_path, &alice_token).await;
        assert_eq!(own["tags"], json!([]), "internal classification stays inside");
        assert!(own["group"].is_null());
        let (_, found) = app.get("/v1/tickets?q=upset", &alice_token).await;
        assert_eq!(found["tickets"].as_array().unwrap().len(), 0, "internal note words do not match for customers");

        assert_eq!(app.post(&format!("{alice_path}/messages"), &alice_token, json!({ "body_text": "x", "visibility": "internal" })).await.0, 403);
        assert_eq!(app.get(&format!("{alice_path}/history"), &alice_token).await.0, 403);
        assert_eq!(app.post("/v1/api_keys", &alice_token, json!({ "name": "mine", "role": "admin" })).await.0, 403);
        let (status, own) = app.post("/v1/tickets", &alice_token, json!({ "subject": "from the widget" })).await;
        assert_eq!(status, 201, "{own}");
        assert_eq!(own["requester_id"], alice.as_str());
        assert_eq!(own["channel"], "web");
    }

    async fn bad_missing_and_expired_credentials_are_refused(app: TestApp) {
        assert_eq!(app.http.get(app.url("/v1/tickets")).send().await.unwrap().status().as_u16(), 401);
        assert_eq!(app.get("/v1/tickets", "hdk_abcdefgh_0123456789abcdefghij0123456789abcdef").await.0, 401);
        assert_eq!(app.get("/v1/tickets", "not-a-jwt").await.0, 401);
        let expired = app.token("demo", "someone", "agent", -3600);
        let (status, body) = app.get("/v1/tickets", &expired).await;
        assert_eq!(status, 401);
        assert!(body["error"]["message"].as_str().unwrap().contains("expired"), "{body}");
        assert_eq!(app.get("/v1/tickets", &app.token("demo", "someone", "superuser", 3600)).await.0, 401);
        assert_eq!(app.get("/v1/tickets", &app.token("demo", " ", "customer", 3600)).await.0, 401);
        let (kid, secret) = app.signing_key("demo");
        let unsigned_kid = sign("sk_nosuchkey", &secret, json!({ "sub": "a", "exp": 4_102_444_800u64 }));
        assert_eq!(app.get("/v1/tickets", &unsigned_kid).await.0, 401);
        let forged = sign(&kid, "another-secret-of-the-same-length-abcdefghij", json!({ "sub": "a", "exp": 4_102_444_800u64 }));
        assert_eq!(app.get("/v1/tickets", &forged).await.0, 401);
        assert_eq!(app.get("/v1/tickets", &app.token("demo", "agent-1", "agent", 3600)).await.0, 200);
    }

    async fn a_signing_key_mints_only_the_roles_an_admin_gave_it(app: TestApp) {
        // The review's exploit: a token naming itself admin, signed with the widget's key.
        let (status, widget) = app
            .post("/v1/signing_keys", &app.admin_key, json!({ "name": "web widget", "algorithm": "hs256" }))
            .await;
        assert_eq!(status, 201, "{widget}");
        assert_eq!(widget["signing_key"]["roles"], json!(["customer"]), "customer only unless more are listed");
        let (kid, secret) = (widget["signing_key"]["id"].as_str().unwrap(), widget["secret"].as_str().unwrap());
        let admin = sign(kid, secret, json!({ "sub": "x", "tenant_id": "demo", "role": "admin", "exp": 4_102_444_800u64 }));
        let (status, body) = app.get("/v1/api_keys", &admin).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("role not allowed"), "{body}");
        assert_eq!(app.post("/v1/api_keys", &admin, json!({ "name": "mine", "role": "admin" })).await.0, 401);
        let agent = sign(kid, secret, json!({ "sub": "x", "role": "agent", "exp": 4_102_444_800u64 }));
        assert_eq!(app.get("/v1/tickets", &agent).await.0, 401);
        // Without a role claim a token is a customer's.
        let customer = sign(kid, secret, json!({ "sub": "c-1", "exp": 4_102_444_800u64 }));
        assert_eq!(app.get("/v1/tickets", &customer).await.0, 200);
        assert_eq!(app.get("/v1/api_keys", &customer).await.0, 403);
        // Staff tokens only from keys an admin explicitly allowed to mint them.
        let (status, console) = app
            .post("/v1/signing_keys", &app.admin_key, json!({ "name": "sso", "algorithm": "hs256", "roles": ["agent"] }))
            .await;
        assert_eq!(status, 201, "{console}");
        let sso = sign(console["signing_key"]["id"].as_str().unwrap(), console["secret"].as_str().unwrap(),
            json!({ "sub": "agent-9", "role": "agent", "exp": 4_102_444_800u64 }));
        assert_eq!(app.get("/v1/tickets", &sso).await.0, 200);
        assert_eq!(app.post("/v1/signing_keys", &sso, json!({ "name": "x", "algorithm": "hs256" })).await.0, 403);
    }

    async fn a_tenants_signing_key_is_trusted_for_that_tenant_only(app: TestApp) {
        let globex = app.new_tenant("globex").await;
        let customer = app.create_customer(&app.admin_key, "Alice", "alice@example.com").await;
        app.create_ticket(&app.admin_key, json!({ "subject": "demo's secret", "requester_id": customer })).await;
        let (kid, secret) = app.signing_key("globex");
        let claims_demo = sign(&kid, &secret, json!({ "sub": customer, "tenant_id": "demo", "exp": 4_102_444_800u64 }));
        let (status, body) = app.get("/v1/tickets", &claims_demo).await;
        assert_eq!(status, 401, "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("tenant_id"), "{body}");
        // A token that names no tenant belongs to its key's.
        let unnamed = sign(&kid, &secret, json!({ "sub": "agent-1", "role": "agent", "exp": 4_102_444_800u64 }));
        let (status, list) = app.get("/v1/tickets", &unnamed).await;
        assert_eq!(status, 200);
        assert_eq!(list["tickets"], json!([]), "globex sees none of demo's tickets");
        let (_, keys) = app.get("/v1/signing_keys", &globex).await;
        assert_eq!(keys["signing_keys"].as_array().unwrap().len(), 1, "demo's keys are not listed for globex");
    }

    async fn signing_keys_rotate_with_an_overlap_and_require_their_issuer_and_audience(app: TestApp) {
        let (status, strict) = app
            .post("/v1/signing_keys", &app.admin_key, json!({
                "name": "shop", "algorithm": "hs256", "issuer": "https://shop.example", "audience": "helpdesk"
            }))
            .await;
        assert_eq!(status, 201, "{strict}");
        let (kid, secret) = (strict["signing_key"]["id"].as_str().unwrap(), strict["secret"].as_str().unwrap());
        let bare = sign(kid, secret, json!({ "sub": "c-1", "exp": 4_102_444_800u64 }));
        let (status, body) = app.get("/v1/tickets", &bare).await;
        assert_eq!(status, 401);
        assert!(body["error"]["message"].as_str().unwrap().contains("missing"), "{body}");
        let claims = json!({ "sub": "c-1", "iss": "https://shop.example", "aud": "helpdesk", "exp": 4_102_444_800u64 });
        assert_eq!(app.get("/v1/tickets", &sign(kid, secret, claims.clone())).await.0, 200);

        let retire = format!("/v1/signing_keys/{kid}/retire");
        let (status, retiring) = app.post(&retire, &app.admin_key, json!({ "overlap_seconds": 3600 })).await;
        assert_eq!(status, 200, "{retiring}");
        assert!(retiring["retires_at"].is_string());
        let mut fresh = claims.clone();
        fresh["sub"] = json!("c-2");
        assert_eq!(app.get("/v1/tickets", &sign(kid, secret, fresh.clone())).await.0, 200, "within the overlap");
        assert_eq!(app.post(&retire, &app.admin_key, json!({ "overlap_seconds": 0 })).await.0, 200);
        refused_within_a_second(&app, &sign(kid, secret, claims)).await;
        fresh["sub"] = json!("c-3");
        let (status, body) = app.get("/v1/tickets", &sign(kid, secret, fresh)).await;
        assert_eq!(status, 401);
        assert!(body["error"]["message"].as_str().unwrap().contains("retired"), "{body}");
        let (status, body) = app.post(&retire, &app.admin_key, json!({ "overlap_seconds": 99_999_999 })).await;
        assert_eq!((status, body["error"]["fields"][0]["field"].as_str()), (400, Some("overlap_seconds")));
    }

    async fn signing_keys_are_validated_naming_the_field(app: TestApp) {
        let cases = [
            (json!({ "name": "x", "algorithm": "rs256" }), "public_key_pem"),
            (json!({ "name": "x", "algorithm": "hs256", "public_key_pem": "-----BEGIN PUBLIC KEY-----" }), "public_key_pem"),
            (json!({ "name": "", "algorithm": "hs256" }), "name"),
            (json!({ "name": "x", "algorithm": "none" }), "algorithm"),
            (json!({ "name": "x", "algorithm": "hs256", "roles": ["superuser"] }), "roles"),
        ];
        for (body, field) in cases {
            let (status, error) = app.post("/v1/signing_keys", &app.admin_key, body.clone()).await;
            assert_eq!(status, 400, "{body} -> {error}");
            assert!(error["error"]["message"].as_str().unwrap().contains(field) || error["error"]["fields"][0]["field"] == field, "{body} -> {error}");
        }
        let agent = app.token("demo", "agent-1", "agent", 600);
        assert_eq!(app.get("/v1/signing_keys", &agent).await.0, 403);
    }

    async fn customers_cannot_steer_their_tickets_or_probe_what_they_do_not_see(app: TestApp) {
        let customer = app.create_customer(&app.admin_key, "Alice", "alice@example.com").await;
        let token = app.customer_token("demo", &customer);
        for (field, value) in [
            ("priority", json!("urgent")),
            ("channel", json!("phone")),
            ("custom_fields", json!({ "order_total": "1" })),
            ("external_refs", json!({ "order_id": "42" })),
        ] {
            let mut body = json!({ "subject": "jump the queue" });
            body[field] = value;
            let (status, error) = app.post("/v1/tickets", &token, body).await;
            assert_eq!(status, 403, "{field}: {error}");
            assert_eq!(error["error"]["fields"][0]["field"], field, "{error}");
        }
        for filter in ["tag=vip", "group=billing", "assignee_id=agent-1", "unassigned=true"] {
            let (status, error) = app.get(&format!("/v1/tickets?{filter}"), &token).await;
            assert_eq!(status, 403, "{filter}: {error}");
        }
        // A customer's suggestions record no uncovered topic for a ticket, theirs or anybody's.
        let mut knowledge = helpdesk_proto::knowledge::v1::knowledge_service_client::KnowledgeServiceClient::new(app.channel().await);
        let forged = helpdesk_proto::knowledge::v1::SuggestRequest {
            subject: "llama grooming appointments".into(),
            ticket_id: "someone-elses-ticket".into(),
            ..Default::default()
        };
        knowledge.suggest(app.grpc_request(&token, forged)).await.expect("suggestions answer");
        let (_, gaps) = app.get("/v1/kb/gaps", &app.admin_key).await;
        assert!(!gaps.to_string().contains("someone-elses-ticket"), "{gaps}");
        // Searching the help center of a tenant nobody published for keeps nothing.
        let (status, results) = app.public(reqwest::Method::GET, "/v1/help/no-such-tenant/search?q=refund", None).await;
        assert_eq!(status, 200, "{results}");
        assert_eq!(results["search_id"], Value::Null, "no search log for a made-up tenant: {results}");
    }

    async fn merging_tickets_of_different_requesters_is_refused(app: TestApp) {
        let key = app.admin_key.clone();
        let alice = app.create_customer(&key, "Alice", "alice@example.com").await;
        let bob = app.create_customer(&key, "Bob", "bob@example.com").await;
        let alices = app.create_ticket(&key, json!({ "subject": "a", "requester_id": alice })).await;
        let bobs = app.create_ticket(&key, json!({ "subject": "b", "requester_id": bob })).await;
        let path = format!("/v1/tickets/{}/merge", alices["id"].as_str().unwrap());
        let (status, error) = app.post(&path, &key, json!({ "target_id": bobs["id"] })).await;
        assert_eq!(status, 422, "{error}");
    }

    async fn idempotency_keys_belong_to_their_caller(app: TestApp) {
        let key = app.admin_key.clone();
        let alice = app.create_customer(&key, "Alice", "alice@example.com").await;
        let bob = app.create_customer(&key, "Bob", "bob@example.com").await;
        let mut ids = Vec::new();
        for customer in [&alice, &bob] {
            let response = app
                .http
                .post(app.url("/v1/tickets"))
                .bearer_auth(app.customer_token("demo", customer))
                .header("Idempotency-Key", "submit-1")
                .json(&json!({ "subject": "Where is my order?" }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 201);
            let ticket: serde_json::Value = response.json().await.unwrap();
            assert_eq!(ticket["requester_id"], customer.as_str());
            ids.push(ticket["id"].clone());
        }
        assert_ne!(ids[0], ids[1], "the same key from two customers makes two tickets");
    }

    async fn a_revoked_api_key_stops_working(app: TestApp) {
        let (status, issued) = app.post("/v1/api_keys", &app.admin_key, json!({ "name": "crm", "role": "agent" })).await;
        assert_eq!(status, 201, "{issued}");
        let secret = issued["secret"].as_str().unwrap().to_owned();
        assert_eq!(app.get("/v1/tickets", &secret).await.0, 200);
        assert_eq!(app.post("/v1/api_keys", &secret, json!({ "name": "escalate", "role": "admin" })).await.0, 403);
        let id = issued["api_key"]["id"].as_str().unwrap();
        let (status, revoked) = app.call(reqwest::Method::DELETE, &format!("/v1/api_keys/{id}"), &app.admin_key, None).await;
        assert_eq!(status, 200);
        assert!(revoked["revoked_at"].is_string());
        // The key was resolved and cached above; the revocation reaches the cache through the bus.
        refused_within_a_second(&app, &secret).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_rate_limit_get_429_with_retry_after() {
    let app =
        spawn_app_with(Options { backend: Backend::Sqlite, rate_limit_per_second: 3, ..Options::default() }).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..10 {
        let response = app.http.get(app.url("/v1/tickets")).bearer_auth(&app.admin_key).send().await.unwrap();
        if response.status().as_u16() == 429 {
            retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        }
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    assert_eq!(statuses[0], 200);
    assert!(retry_after.is_some_and(|seconds| seconds.parse::<u64>().unwrap() >= 1));
    // Another credential has its own budget.
    let other = app.new_tenant("other").await;
    assert_eq!(app.get("/v1/tickets", &other).await.0, 200);
}

/// Polls until `credential` is refused, for at most a second.
async fn refused_within_a_second(app: &helpdesk_tests::TestApp, credential: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let (status, _) = app.get("/v1/tickets", credential).await;
        if status == 401 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "still {status} a second after the revocation");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_pick_its_own_rate_limit_bucket_with_x_forwarded_for() {
    let app =
        spawn_app_with(Options { backend: Backend::Sqlite, rate_limit_per_second: 3, ..Options::default() }).await;
    let mut statuses = Vec::new();
    for n in 0..10 {
        let response = app
            .http
            .get(app.url("/v1/help/demo/search?q=refund"))
            .header("x-forwarded-for", format!("203.0.113.{n}"))
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
    }
    // No proxy is trusted by default: every request is the peer's, whatever it claims.
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_grpc_services_limit_each_client_and_count_a_callers_votes_once() {
    use helpdesk_proto::knowledge::v1::{
        PublicSearchRequest, PublicVoteRequest, help_center_service_client::HelpCenterServiceClient,
    };
    let app = spawn_app_with(Options { public_grpc_per_second: 5, ..Options::default() }).await;
    let (_, article) = app
        .post(
            "/v1/kb/articles",
            &app.admin_key,
            json!({ "locale": "en", "title": "Refunds", "body_markdown": "Five days." }),
        )
        .await;
    let id = article["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/kb/articles/{id}/status");
    assert_eq!(app.post(&path, &app.admin_key, json!({ "status": "published" })).await.0, 200);
    let mut help = HelpCenterServiceClient::new(app.channel().await);

    // The review's finding: a direct caller chose a fresh visitor_id per vote.
    let vote = |visitor: &str, helpful| PublicVoteRequest {
        tenant_id: "demo".into(),
        article_id: id.clone(),
        helpful,
        visitor_id: visitor.into(),
    };
    help.vote(vote("first-identity", true)).await.expect("vote");
    let stats = help.vote(vote("second-identity", false)).await.expect("vote").into_inner();
    assert_eq!((stats.helpful_votes, stats.unhelpful_votes), (0, 1), "one caller, one vote: {stats:?}");

    let mut codes = Vec::new();
    for _ in 0..10 {
        let search = PublicSearchRequest { tenant_id: "demo".into(), query: "refund".into(), ..Default::default() };
        codes.push(help.search_articles(search).await.map(|_| tonic::Code::Ok).unwrap_or_else(|status| status.code()));
    }
    assert!(codes.contains(&tonic::Code::ResourceExhausted), "{codes:?}");
    // The gateway limits its own clients: its calls are not counted against its address.
    for _ in 0..10 {
        assert_eq!(app.public(reqwest::Method::GET, "/v1/help/demo/search?q=refund", None).await.0, 200);
    }
    // Credentials that are not a service's are refused on the public services.
    let search = PublicSearchRequest { tenant_id: "demo".into(), query: "refund".into(), ..Default::default() };
    let refused = help.search_articles(app.grpc_request(&app.admin_key, search)).await.expect_err("not a service");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_failing_to_authenticate_is_refused_for_a_while() {
    let app = spawn_app_with(Options::default()).await;
    for _ in 0..30 {
        let guess = format!("hdk_guess{:04}_{}", rand_digits(), "0".repeat(40));
        assert_eq!(app.get("/v1/tickets", &guess).await.0, 401);
    }
    let (status, body) = app.get("/v1/tickets", &app.admin_key).await;
    assert_eq!(status, 429, "even a valid key waits: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("failed authentications"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_client_address_casts_a_few_help_center_votes_a_minute() {
    let app = spawn_app_with(Options::default()).await;
    let (_, article) = app
        .post(
            "/v1/kb/articles",
            &app.admin_key,
            json!({ "locale": "en", "title": "Refunds", "body_markdown": "Five days." }),
        )
        .await;
    let id = article["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.post(&format!("/v1/kb/articles/{id}/status"), &app.admin_key, json!({ "status": "published" })).await.0,
        200
    );
    let mut statuses = Vec::new();
    for _ in 0..12 {
        // No cookie: each vote would be a new visitor.
        let vote = app
            .public(
                reqwest::Method::POST,
                &format!("/v1/help/demo/articles/{id}/votes"),
                Some(json!({ "helpful": true })),
            )
            .await;
        statuses.push(vote.0);
    }
    assert_eq!(&statuses[..10], &[200; 10]);
    assert!(statuses[10..].iter().all(|status| *status == 429), "{statuses:?}");
}

fn rand_digits() -> u32 {
    uuid::Uuid::new_v4().as_u128() as u32 % 10_000
}
