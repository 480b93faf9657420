use helpdesk_tests::{TestApp, on_both_backends};
use serde_json::{Value, json};

const TENANT: &str = "demo";

async fn public_get(app: &TestApp, path: &str) -> (u16, Value) {
    app.public(reqwest::Method::GET, path, None).await
}

fn fields(error: &Value) -> Vec<&str> {
    error["error"]["fields"]
        .as_array()
        .map(|fields| fields.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default()
}

/// Creates and publishes an article as the admin; returns it.
async fn publish(app: &TestApp, article: Value) -> Value {
    let (status, created) = app.post("/v1/kb/articles", &app.admin_key, article).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "draft");
    let path = format!("/v1/kb/articles/{}/status", created["id"].as_str().unwrap());
    let (status, published) = app.post(&path, &app.admin_key, json!({ "status": "published" })).await;
    assert_eq!(status, 200, "{published}");
    published
}

fn hit_ids(results: &Value) -> Vec<String> {
    results["hits"].as_array().unwrap().iter().map(|hit| hit["article_id"].as_str().unwrap().to_owned()).collect()
}

on_both_backends! {
    async fn restricted_articles_reach_only_customers_of_their_segments(app: TestApp) {
        let key = app.admin_key.clone();
        let gold = publish(&app, json!({
            "locale": "en", "title": "Priority refund line for gold members", "visibility": "restricted",
            "segments": ["gold"], "body_markdown": "Gold members call the priority refund line."
        })).await;
        let (status, member) = app.post("/v1/customers", &key, json!({ "name": "Gold member", "emails": ["g@example.com"], "tier": "Gold" })).await;
        assert_eq!(status, 201, "{member}");
        let (_, other) = app.post("/v1/customers", &key, json!({ "name": "Someone", "emails": ["s@example.com"] })).await;
        let search = "/v1/kb/search?q=priority%20refund&locale=en";
        let member = app.customer_token(TENANT, member["id"].as_str().unwrap());
        let (status, results) = app.get(search, &member).await;
        assert_eq!(status, 200, "{results}");
        assert_eq!(hit_ids(&results), [gold["id"].as_str().unwrap()], "{results}");
        let (status, article) = app.get(&format!("/v1/kb/articles/{}", gold["id"].as_str().unwrap()), &member).await;
        assert_eq!(status, 200, "{article}");
        // Not for other customers, nor for the public help center.
        let other = app.customer_token(TENANT, other["id"].as_str().unwrap());
        let (_, results) = app.get(search, &other).await;
        assert!(hit_ids(&results).is_empty(), "{results}");
        let (status, _) = app.get(&format!("/v1/kb/articles/{}", gold["id"].as_str().unwrap()), &other).await;
        assert_eq!(status, 404);
        let (_, results) = public_get(&app, &format!("/v1/help/{TENANT}/search?q=priority%20refund&locale=en")).await;
        assert!(hit_ids(&results).is_empty(), "{results}");
    }

    async fn korean_and_english_articles_are_found_from_the_public_help_center(app: TestApp) {
        let refund = publish(&app, json!({
            "locale": "en", "title": "How do I get a refund?", "category_id": "billing", "tags": ["refund"],
            "body_markdown": "Ask for a **refund** within 14 days of delivery. <script>alert('x')</script>",
            "questions": ["I want my money back", "refund my order"]
        })).await;
        let refund_id = refund["id"].as_str().unwrap();
        assert!(!refund["body_html"].as_str().unwrap().contains("<script"), "{refund}");
        let korean = publish(&app, json!({
            "locale": "ko", "title": "환불은 어떻게 받나요?", "translation_of": refund_id, "category_id": "billing",
            "body_markdown": "배송 후 14일 이내에 환불을 요청할 수 있습니다.",
            "questions": ["돈을 돌려받고 싶어요", "환불 요청합니다"]
        })).await;
        let korean_id = korean["id"].as_str().unwrap();
        assert_eq!(korean["translations"][0]["article_id"], refund_id, "{korean}");
        let internal = publish(&app, json!({
            "locale": "en", "title": "Refund fraud checks", "visibility": "internal",
            "body_markdown": "Agents check refund requests over 500 dollars with billing."
        })).await;
        let (status, draft) = app.post("/v1/kb/articles", &app.admin_key, json!({
            "locale": "en", "title": "Refund policy draft", "body_markdown": "Unpublished refund text"
        })).await;
        assert_eq!(status, 201, "{draft}");

        // English, with a highlighted snippet; internal and draft articles stay hidden.
        let (status, results) = public_get(&app, &format!("/v1/help/{TENANT}/search?q=refund%20delivery&locale=en")).await;
        assert_eq!(status, 200, "{results}");
        assert_eq!(hit_ids(&results), [refund_id], "{results}");
        assert!(results["hits"][0]["snippet_html"].as_str().unwrap().contains("<mark>"), "{results}");
        assert!(!results["hits"][0]["snippet_html"].as_str().unwrap().contains("<script"), "{results}");
        // Korean: the particle after 환불 does not matter; the locale is detected from the query.
        let (status, results) = public_get(&app, &format!("/v1/help/{TENANT}/search?q=%ED%99%98%EB%B6%88%EC%9D%84")).await;
        assert_eq!(status, 200, "{results}");
        assert_eq!(results["locale"], "ko");
        assert_eq!(hit_ids(&results), [korean_id], "{results}");
        // A typo still finds the article, and says so.
        let (_, results) = public_get(&app, &format!("/v1/help/{TENANT}/search?q=refnud&locale=en")).await;
        assert_eq!(results["fuzzy"], true, "{results}");
        assert_eq!(hit_ids(&results)[0], refund_id, "{results}");
        // Agents see the internal article too.
        let agent = app.token(TENANT, "agent-1", "agent", 600);
        let (status, results) = app.get("/v1/kb/search?q=refund&locale=en", &agent).await;
        assert_eq!(status, 200, "{results}");
        assert!(hit_ids(&results).contains(&internal["id"].as_str().unwrap().to_owned()), "{results}");
        assert!(!hit_ids(&results).contains(&draft["id"].as_str().unwrap().to_owned()), "{results}");

        // Tenant synonyms.
        let (status, _) = app.call(reqwest::Method::PUT, "/v1/kb/synonyms/en", &app.admin_key,
            Some(json!({ "groups": [["refund", "reimbursement"]] }))).await;
        assert_eq!(status, 200);
        let (_, results) = public_get(&app, &format!("/v1/help/{TENANT}/search?q=reimbursement&locale=en")).await;
        assert_eq!(hit_ids(&results), [refund_id], "{results}");

        // Reading by slug counts a view; the same visitor's second vote replaces the first.
        let slug = refund["slug"].as_str().unwrap();
        let (status, read) = public_get(&app, &format!("/v1/help/{TENANT}/articles/{slug}?locale=en")).await;
        assert_eq!(status, 200, "{read}");
        assert_eq!(read["id"], refund_id);
        let (status, _) = public_get(&app, &format!("/v1/help/{TENANT}/articles/{}", internal["id"].as_str().unwrap())).await;
        assert_eq!(status, 404, "internal articles are not public");
        // The first vote names the visitor with a cookie; voting again with it replaces the vote.
        let vote_path = format!("/v1/help/{TENANT}/articles/{refund_id}/votes");
        let first = app.http.post(app.url(&vote_path)).json(&json!({ "helpful": false })).send().await.unwrap();
        assert_eq!(first.status().as_u16(), 200);
        let cookie = first.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        assert!(cookie.starts_with("hd_visitor="), "{cookie}");
        let again = app.http.post(app.url(&vote_path)).header("cookie", &cookie).json(&json!({ "helpful": true })).send().await.unwrap();
        assert!(again.headers().get("set-cookie").is_none(), "the visitor keeps its cookie");
        let stats: Value = again.json().await.unwrap();
        assert_eq!((stats["helpful_votes"].as_i64(), stats["unhelpful_votes"].as_i64()), (Some(1), Some(0)), "{stats}");

        // Contact-form deflection: a confident answer, or nothing.
        let suggestions = format!("/v1/help/{TENANT}/suggestions");
        let (status, answer) = app.public(reqwest::Method::POST, &suggestions,
            Some(json!({ "subject": "I want my money back", "body": "please refund my order" }))).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["suggestions"][0]["article_id"], refund_id, "{answer}");
        let (_, nothing) = app.public(reqwest::Method::POST, &suggestions,
            Some(json!({ "subject": "what is the weather like on mars tomorrow" }))).await;
        assert_eq!(nothing["suggestions"], json!([]), "{nothing}");

        // Agents see suggestions beside a new Korean ticket.
        let customer = app.create_customer(&app.admin_key, "지영", "jiyoung@example.com").await;
        let ticket = app.create_ticket(&app.admin_key, json!({
            "subject": "환불 요청합니다", "description": "돈을 돌려받고 싶어요", "requester_id": customer, "channel": "email"
        })).await;
        let path = format!("/v1/tickets/{}/suggestions", ticket["id"].as_str().unwrap());
        let (status, beside) = app.get(&path, &agent).await;
        assert_eq!(status, 200, "{beside}");
        assert_eq!(beside["locale"], "ko");
        assert_eq!(beside["suggestions"][0]["article_id"], korean_id, "{beside}");

        // What people look for and do not find.
        for _ in 0..2 {
            let (status, _) = public_get(&app, &format!("/v1/help/{TENANT}/search?q=warranty%20extension&locale=en")).await;
            assert_eq!(status, 200);
        }
        let (status, gaps) = app.get("/v1/kb/gaps", &agent).await;
        assert_eq!(status, 200, "{gaps}");
        assert_eq!(gaps["zero_result_queries"][0]["query"], "warranty extension", "{gaps}");
        assert_eq!(gaps["zero_result_queries"][0]["searches"], 2, "{gaps}");

        // A new ticket no article answers shows up as an uncovered topic, by its words.
        let blender = app.create_ticket(&app.admin_key, json!({
            "subject": "Blender warranty claim", "description": "My blender broke after a week.",
            "requester_id": customer, "channel": "email"
        })).await;
        let blender_id = blender["id"].as_str().unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let (_, gaps) = app.get("/v1/kb/gaps", &agent).await;
            let topics = gaps["uncovered_topics"].as_array().unwrap();
            if let Some(topic) = topics.iter().find(|t| t["example_ticket_ids"].to_string().contains(blender_id)) {
                assert!(topic["topic"].as_str().unwrap().contains("blender"), "{gaps}");
                assert!(!gaps.to_string().contains(ticket["id"].as_str().unwrap()), "the refund ticket is covered: {gaps}");
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                let (_, suggested) = app.get(&format!("/v1/tickets/{blender_id}/suggestions"), &agent).await;
                panic!("no uncovered topic for the blender ticket: {gaps}; its suggestions: {suggested}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn versions_can_be_compared_and_restored_and_bad_input_is_refused(app: TestApp) {
        let key = app.admin_key.clone();
        let (status, created) = app.post("/v1/kb/articles", &key, json!({
            "locale": "en", "title": "Shipping times", "body_markdown": "Parcels take 2 days.\nTracking is by email."
        })).await;
        assert_eq!(status, 201, "{created}");
        let id = created["id"].as_str().unwrap();
        let (status, updated) = app.patch(&format!("/v1/kb/articles/{id}"), &key, json!({
            "body_markdown": "Parcels take 3 days.\nTracking is by email.", "change_note": "slower carrier",
            "expected_version": 1
        })).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(updated["version"], 2);
        let (status, stale) = app.patch(&format!("/v1/kb/articles/{id}"), &key, json!({
            "title": "Lost edit", "expected_version": 1
        })).await;
        assert_eq!(status, 409, "{stale}");

        let (status, diff) = app.get(&format!("/v1/kb/articles/{id}/diff?from=1&to=2"), &key).await;
        assert_eq!(status, 200, "{diff}");
        let changes: Vec<(String, String)> = diff["lines"].as_array().unwrap().iter()
            .map(|line| (line["change"].as_str().unwrap().to_owned(), line["text"].as_str().unwrap().to_owned()))
            .collect();
        assert!(changes.contains(&("delete".into(), "Parcels take 2 days.".into())), "{diff}");
        assert!(changes.contains(&("insert".into(), "Parcels take 3 days.".into())), "{diff}");
        assert!(changes.contains(&("equal".into(), "Tracking is by email.".into())), "{diff}");

        let (status, restored) = app.post(&format!("/v1/kb/articles/{id}/versions/1/restore"), &key, json!({})).await;
        assert_eq!(status, 200, "{restored}");
        assert_eq!(restored["version"], 3);
        assert_eq!(restored["body_markdown"], "Parcels take 2 days.\nTracking is by email.");
        let (status, versions) = app.get(&format!("/v1/kb/articles/{id}/versions"), &key).await;
        assert_eq!(status, 200);
        let notes: Vec<&str> = versions["versions"].as_array().unwrap().iter().map(|v| v["change_note"].as_str().unwrap_or_default()).collect();
        assert_eq!(notes, ["restored version 1", "slower carrier", ""], "{versions}");
        let (status, _) = app.post(&format!("/v1/kb/articles/{id}/versions/99/restore"), &key, json!({})).await;
        assert_eq!(status, 404);

        // Publishing needs a body; agents may not publish at all.
        let (_, empty) = app.post("/v1/kb/articles", &key, json!({ "locale": "ko", "title": "빈 글" })).await;
        let empty_status = format!("/v1/kb/articles/{}/status", empty["id"].as_str().unwrap());
        let (status, error) = app.post(&empty_status, &key, json!({ "status": "published" })).await;
        assert_eq!((status, fields(&error)), (400, vec!["body_markdown"]), "{error}");
        let agent = app.token(TENANT, "agent-1", "agent", 600);
        let (status, _) = app.post(&format!("/v1/kb/articles/{id}/status"), &agent, json!({ "status": "published" })).await;
        assert_eq!(status, 403);
        let (status, review) = app.post(&format!("/v1/kb/articles/{id}/status"), &agent, json!({ "status": "in_review" })).await;
        assert_eq!((status, review["status"].as_str()), (200, Some("in_review")), "{review}");

        // Bad input: named fields, nothing changed, never a crash.
        let (status, error) = app.post("/v1/kb/articles", &key, json!({ "locale": "fr", "title": "Bonjour" })).await;
        assert_eq!((status, fields(&error)), (400, vec!["locale"]), "{error}");
        let (status, error) = app.post("/v1/kb/articles", &key, json!({ "locale": "en", "title": "  " })).await;
        assert_eq!((status, fields(&error)), (400, vec!["title"]), "{error}");
        let long = "a".repeat(600);
        let (status, error) = app.get(&format!("/v1/kb/search?q={long}"), &key).await;
        assert_eq!(status, 400, "{error}");
        for odd in ["%22unbalanced", "AND%20OR%20NOT", "title:(%5B", "%2A%3F~%5E2", "%E2%80%8B"] {
            let (status, body) = app.get(&format!("/v1/kb/search?q={odd}&locale=en"), &key).await;
            assert!(status == 200 || status == 400, "{odd}: {status} {body}");
        }
        let (status, error) = app.get("/v1/kb/search", &key).await;
        assert_eq!((status, fields(&error)), (400, vec!["q"]), "{error}");

        // Another tenant sees none of it.
        let other = app.new_tenant("other-kb").await;
        let (status, _) = app.get(&format!("/v1/kb/articles/{id}"), &other).await;
        assert_eq!(status, 404);
        let (_, results) = app.get("/v1/kb/search?q=parcels&locale=en", &other).await;
        assert_eq!(results["hits"], json!([]), "{results}");
    }
}

on_both_backends! {
    async fn an_agents_edit_of_a_published_article_waits_for_an_admin_to_publish_it(app: TestApp) {
        let key = app.admin_key.clone();
        let live = publish(&app, json!({
            "locale": "en", "title": "Refund policy", "body_markdown": "Refunds take five business days."
        })).await;
        let id = live["id"].as_str().unwrap().to_owned();
        let slug = live["slug"].as_str().unwrap().to_owned();
        let path = format!("/v1/kb/articles/{id}");
        let help = format!("/v1/help/{TENANT}/articles/{slug}?locale=en");
        let agent = app.token(TENANT, "agent-1", "agent", 600);

        // The review's reproduction: an agent rewrote a published article, live at once.
        let (status, edited) = app.patch(&path, &agent, json!({ "body_markdown": "Refunds take one hour, guaranteed." })).await;
        assert_eq!(status, 200, "{edited}");
        assert_eq!(edited["body_markdown"], "Refunds take five business days.", "the live article is unchanged");
        assert_eq!(edited["pending_revision"]["body_markdown"], "Refunds take one hour, guaranteed.");
        assert_eq!(edited["pending_revision"]["author"], "agent-1");
        assert_eq!(edited["pending_revision"]["based_on_version"], live["version"]);
        let (status, public) = public_get(&app, &help).await;
        assert_eq!(status, 200);
        assert_eq!(public["body_markdown"], "Refunds take five business days.");
        assert!(public["pending_revision"].is_null(), "{public}");
        let (_, found) = public_get(&app, &format!("/v1/help/{TENANT}/search?q=guaranteed&locale=en")).await;
        assert_eq!(found["hits"], json!([]), "the proposal is not searchable");

        // An agent cannot publish it; an admin can, as the next version.
        let publish_path = format!("{path}/revision/publish");
        assert_eq!(app.post(&publish_path, &agent, json!({})).await.0, 403);
        let (status, published) = app.post(&publish_path, &key, json!({ "change_note": "faster refunds" })).await;
        assert_eq!(status, 200, "{published}");
        assert_eq!(published["body_markdown"], "Refunds take one hour, guaranteed.");
        assert_eq!(published["version"], live["version"].as_i64().unwrap() + 1);
        assert!(published["pending_revision"].is_null());
        assert_eq!(public_get(&app, &help).await.1["body_markdown"], "Refunds take one hour, guaranteed.");

        // Restoring an old version is a proposal too; a proposal the article outran is refused.
        let (status, restored) = app.post(&format!("{path}/versions/1/restore"), &agent, json!({})).await;
        assert_eq!(status, 200, "{restored}");
        assert_eq!(restored["pending_revision"]["body_markdown"], "Refunds take five business days.");
        let (status, _) = app.patch(&path, &key, json!({ "title": "Refund policy (2027)" })).await;
        assert_eq!(status, 200);
        let (status, stale) = app.post(&publish_path, &key, json!({})).await;
        assert_eq!(status, 409, "{stale}");
        let (status, discarded) = app.call(reqwest::Method::DELETE, &format!("{path}/revision"), &agent, None).await;
        assert_eq!(status, 200, "{discarded}");
        assert!(discarded["pending_revision"].is_null());
        assert_eq!(app.call(reqwest::Method::DELETE, &format!("{path}/revision"), &agent, None).await.0, 404);

        // An internal article cannot be made public by an agent either.
        let internal = publish(&app, json!({
            "locale": "en", "title": "Escalation phone numbers", "visibility": "internal",
            "body_markdown": "Call the duty manager on 010-0000-0000."
        })).await;
        let internal_path = format!("/v1/kb/articles/{}", internal["id"].as_str().unwrap());
        let (status, _) = app.patch(&internal_path, &agent, json!({ "visibility": "public" })).await;
        assert_eq!(status, 200);
        let (status, _) = public_get(&app, &format!("/v1/help/{TENANT}/articles/{}", internal["id"].as_str().unwrap())).await;
        assert_eq!(status, 404, "still internal");

        // Drafts are not live: agents edit them directly.
        let (_, draft) = app.post("/v1/kb/articles", &agent, json!({ "locale": "en", "title": "Gift cards" })).await;
        let (status, edited) = app
            .patch(&format!("/v1/kb/articles/{}", draft["id"].as_str().unwrap()), &agent, json!({ "body_markdown": "Gift cards never expire." }))
            .await;
        assert_eq!((status, edited["body_markdown"].as_str()), (200, Some("Gift cards never expire.")), "{edited}");
    }

    async fn the_help_center_shows_neither_unpublished_translations_nor_staff_names(app: TestApp) {
        let key = app.admin_key.clone();
        let english = publish(&app, json!({ "locale": "en", "title": "Delivery times", "body_markdown": "Two to three days." })).await;
        let (status, korean) = app
            .post("/v1/kb/articles", &key, json!({ "locale": "ko", "title": "배송 기간 (작성 중)", "translation_of": english["id"] }))
            .await;
        assert_eq!(status, 201, "{korean}");
        let (status, public) = public_get(&app, &format!("/v1/help/{TENANT}/articles/{}", english["id"].as_str().unwrap())).await;
        assert_eq!(status, 200);
        assert_eq!(public["translations"], json!([]), "the Korean draft is not listed: {public}");
        assert_eq!(public["author"], Value::Null, "no staff id in public: {public}");
        let (_, staff) = app.get(&format!("/v1/kb/articles/{}", english["id"].as_str().unwrap()), &key).await;
        assert_eq!(staff["translations"].as_array().unwrap().len(), 1, "staff see the draft translation");
        assert!(staff["author"].as_str().is_some_and(|author| !author.is_empty()));
    }
}
