use helpdesk_tests::{Backend, Options, on_both_backends, spawn_app_with};
use serde_json::json;

async fn raw_post(app: &helpdesk_tests::TestApp, content_type: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let response = app
        .http
        .post(app.url("/v1/tickets"))
        .bearer_auth(&app.admin_key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

on_both_backends! {
    async fn malformed_requests_get_a_400_naming_the_problem_and_create_nothing(app: TestApp) {
        let customer = app.create_customer(&app.admin_key, "Emily", "emily@example.com").await;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{\"subject\": ".to_vec(), "subject"),
            (b"not json".to_vec(), "body"),
            (json!({ "subject": "x", "requester_id": customer, "colour": "red" }).to_string().into_bytes(), "colour"),
            (json!({ "subject": 42, "requester_id": customer }).to_string().into_bytes(), "subject"),
            (json!({ "subject": "x", "requester_id": customer, "priority": "critical" }).to_string().into_bytes(), "priority"),
            (json!({ "subject": "x", "requester_id": customer, "channel": "fax" }).to_string().into_bytes(), "channel"),
            (json!({ "subject": "   ", "requester_id": customer }).to_string().into_bytes(), "subject"),
            (json!({ "subject": "x", "requester_id": customer, "tags": ["two words"] }).to_string().into_bytes(), "tags[0]"),
            (b"{\"subject\": \"\xff\xfe\"}".to_vec(), "subject"),
        ];
        for (body, field) in cases {
            let (status, error) = raw_post(&app, "application/json", body).await;
            assert_eq!(status, 400, "{error}");
            assert_eq!(error["error"]["code"], "invalid_argument");
            let named = error["error"]["fields"].as_array().unwrap().iter().any(|f| f["field"].as_str().unwrap().starts_with(field));
            assert!(named, "expected field {field} in {error}");
        }
        let (status, _) = raw_post(&app, "text/plain", b"subject=x".to_vec()).await;
        assert_eq!(status, 400);
        assert_eq!(app.get("/v1/tickets?status=bogus", &app.admin_key).await.0, 400);
        assert_eq!(app.get("/v1/tickets?page_token=zzz", &app.admin_key).await.0, 400);
        assert_eq!(app.get("/v1/tickets?page_size=5000", &app.admin_key).await.0, 400);
        assert_eq!(app.get("/v1/tickets?q=%21%21%21", &app.admin_key).await.0, 400);
        assert_eq!(app.get("/v1/tickets?created_after=yesterday", &app.admin_key).await.0, 400);
        assert_eq!(app.get("/v1/tickets/does-not-exist", &app.admin_key).await.0, 404);
        let (_, list) = app.get("/v1/tickets", &app.admin_key).await;
        assert_eq!(list["tickets"].as_array().unwrap().len(), 0, "nothing was created");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_body_gets_413_and_creates_nothing() {
    let app = spawn_app_with(Options { backend: Backend::Sqlite, max_body_bytes: 4096, ..Options::default() }).await;
    let body = json!({ "subject": "big", "description": "x".repeat(10_000) }).to_string().into_bytes();
    let (status, error) = raw_post(&app, "application/json", body).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(error["error"]["code"], "payload_too_large");
    let (_, list) = app.get("/v1/tickets", &app.admin_key).await;
    assert_eq!(list["tickets"].as_array().unwrap().len(), 0);
}
