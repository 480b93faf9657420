//! Attachments end to end: files uploaded over REST as themselves, named by their SHA-256 on
//! tickets and messages, downloaded only by who may see them, and mail's files and inline images
//! kept the same way; on the folder store, and on an S3-compatible server that checks signatures.

use helpdesk_tests::{Backend, MAX_FILE_BYTES, Options, TestApp, on_both_backends, spawn_app_with};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::email::{create_mailbox, first_message, poll, relaying_to_the_customer_side, send, settled_mail};

async fn upload(app: &TestApp, key: &str, name: &str, content_type: &str, content: &[u8]) -> (u16, Value) {
    let response = app
        .http
        .post(app.url("/v1/attachments"))
        .query(&[("name", name)])
        .bearer_auth(key)
        .header("content-type", content_type)
        .body(content.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Downloads a file: the status, the headers that matter, and the bytes.
async fn download(app: &TestApp, key: &str, ticket: &str, sha256: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let path = format!("/v1/tickets/{ticket}/attachments/{sha256}");
    let response = app.http.get(app.url(&path)).bearer_auth(key).send().await.unwrap();
    let status = response.status().as_u16();
    let headers = ["content-type", "content-disposition", "x-content-type-options", "content-security-policy"]
        .iter()
        .map(|name| {
            let value = response.headers().get(*name).and_then(|value| value.to_str().ok()).unwrap_or_default();
            ((*name).to_owned(), value.to_owned())
        })
        .collect();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers.iter().find(|(key, _)| key == name).map_or("", |(_, value)| value.as_str())
}

fn sha256(content: &[u8]) -> String {
    hex::encode(Sha256::digest(content))
}

/// Uploads, attaches to a new ticket, a public reply and an internal note, and checks who may
/// download what.
async fn files_reach_only_those_who_may_see_them(app: &TestApp) {
    let key = app.admin_key.clone();
    let pdf = "%PDF-1.4 영수증".as_bytes();
    let (status, receipt) = upload(app, &key, "영수증.pdf", "application/pdf", pdf).await;
    assert_eq!(status, 201, "{receipt}");
    assert_eq!(receipt["sha256"], sha256(pdf));
    assert_eq!(receipt["size_bytes"], pdf.len() as i64);
    assert_eq!(receipt["storage_key"], format!("demo/{}", sha256(pdf)));
    assert_eq!(receipt["name"], "영수증.pdf");

    let customer = app.create_customer(&key, "김민수", "minsu@example.kr").await;
    let ticket = app
        .create_ticket(&key, json!({ "subject": "환불", "requester_id": customer,
            "attachments": [{ "name": "영수증.pdf", "content_type": "application/pdf", "sha256": receipt["sha256"] }] }))
        .await;
    let ticket_id = ticket["id"].as_str().unwrap().to_owned();
    assert_eq!(ticket["attachments"][0]["size_bytes"], pdf.len() as i64, "{ticket}");

    let png = b"\x89PNG\r\n\x1a\n screenshot";
    let (_, shot) = upload(app, &key, "C:\\Users\\kim\\shot.png", "image/png", png).await;
    assert_eq!(shot["name"], "shot.png", "folders are not part of a name");
    let messages = format!("/v1/tickets/{ticket_id}/messages");
    let (status, reply) = app
        .post(&messages, &key, json!({ "body_html": "<p>보세요</p><img src=\"cid:shot-1\"><img src=\"https://tracker.example/p.gif\">",
            "attachments": [{ "name": "shot.png", "content_type": "image/png", "sha256": shot["sha256"], "content_id": "shot-1" }] }))
        .await;
    assert_eq!(status, 201, "{reply}");
    let html = reply["body_html"].as_str().unwrap();
    assert!(html.contains(&format!("src=\"/v1/tickets/{ticket_id}/attachments/{}\"", sha256(png))), "{html}");
    assert!(!html.contains("tracker.example"), "{html}");

    let secret = b"internal: refund approved by finance";
    let (_, note_file) = upload(app, &key, "approval.txt", "text/plain", secret).await;
    let (status, _) = app
        .post(
            &messages,
            &key,
            json!({ "visibility": "internal", "body_text": "finance ok",
            "attachments": [{ "name": "approval.txt", "sha256": note_file["sha256"] }] }),
        )
        .await;
    assert_eq!(status, 201);

    let (status, headers, body) = download(app, &key, &ticket_id, &sha256(pdf)).await;
    assert_eq!((status, body.as_slice()), (200, pdf));
    assert_eq!(header(&headers, "content-type"), "application/pdf");
    assert!(
        header(&headers, "content-disposition").contains("filename*=UTF-8''%EC%98%81%EC%88%98%EC%A6%9D.pdf"),
        "{headers:?}"
    );
    assert_eq!(header(&headers, "x-content-type-options"), "nosniff");
    assert!(header(&headers, "content-security-policy").contains("sandbox"), "{headers:?}");
    assert_eq!(download(app, &key, &ticket_id, &sha256(secret)).await.2, secret);

    // The customer: their ticket's files and public messages' files, not the internal note's.
    let own = app.customer_token("demo", &customer);
    assert_eq!(download(app, &own, &ticket_id, &sha256(pdf)).await.0, 200);
    assert_eq!(download(app, &own, &ticket_id, &sha256(png)).await.2, png);
    assert_eq!(download(app, &own, &ticket_id, &sha256(secret)).await.0, 404);
    let someone_else = app.create_customer(&key, "Lee", "lee@example.kr").await;
    assert_eq!(download(app, &app.customer_token("demo", &someone_else), &ticket_id, &sha256(pdf)).await.0, 404);
    let other_tenant = app.new_tenant("globex").await;
    assert_eq!(download(app, &other_tenant, &ticket_id, &sha256(pdf)).await.0, 404);
    // Another tenant's upload of the very same file is its own, and names nothing of demo's.
    let (status, theirs) = upload(app, &other_tenant, "영수증.pdf", "application/pdf", pdf).await;
    assert_eq!((status, theirs["storage_key"].as_str()), (201, Some(format!("globex/{}", sha256(pdf)).as_str())));
}

on_both_backends! {
    async fn files_are_uploaded_attached_and_downloaded_only_by_who_may_see_the_ticket(app: TestApp) {
        files_reach_only_those_who_may_see_them(&app).await;
    }

    async fn attachments_must_be_uploads_of_the_tenant_within_the_limits(app: TestApp) {
        let key = app.admin_key.clone();
        let customer = app.create_customer(&key, "Kim", "kim@example.com").await;
        let ticket = app.create_ticket(&key, json!({ "subject": "files", "requester_id": customer })).await;
        let messages = format!("/v1/tickets/{}/messages", ticket["id"].as_str().unwrap());
        let attach = |file: Value| json!({ "body_text": "see file", "attachments": [file] });

        let (status, error) = app.post(&messages, &key, attach(json!({ "name": "a.pdf", "sha256": "a".repeat(64) }))).await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("attachments[0].sha256")), "{error}");
        let (status, error) = app.post(&messages, &key, attach(json!({ "name": "a.pdf", "sha256": "xyz" }))).await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("attachments[0].sha256")), "{error}");
        // Another tenant's upload does not exist here.
        let other = app.new_tenant("globex").await;
        let (_, foreign) = upload(&app, &other, "theirs.txt", "text/plain", b"globex only").await;
        let (status, error) = app.post(&messages, &key, attach(json!({ "name": "t.txt", "sha256": foreign["sha256"] }))).await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("attachments[0].sha256")), "{error}");
        // Over gRPC a storage key can be given; only the file's own is taken.
        let (_, mine) = upload(&app, &key, "mine.txt", "text/plain", b"mine").await;
        let mut client = helpdesk_proto::ticketing::v1::ticket_service_client::TicketServiceClient::new(app.channel().await);
        let request = helpdesk_proto::ticketing::v1::AddMessageRequest {
            ticket_id: ticket["id"].as_str().unwrap().to_owned(),
            body_text: "see file".to_owned(),
            attachments: vec![helpdesk_proto::ticketing::v1::Attachment {
                name: "mine.txt".to_owned(),
                sha256: mine["sha256"].as_str().unwrap().to_owned(),
                storage_key: format!("globex/{}", mine["sha256"].as_str().unwrap()),
                ..Default::default()
            }],
            ..Default::default()
        };
        let refused = client.add_message(app.grpc_request(&key, request)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
        assert!(refused.message().contains("attachments[0].storage_key"), "{refused:?}");

        let (status, error) = upload(&app, &key, "big.bin", "application/octet-stream", &vec![7; MAX_FILE_BYTES + 1]).await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("content")), "{error}");
        let nameless = app.http.post(app.url("/v1/attachments")).bearer_auth(&key).body("x").send().await.unwrap();
        assert_eq!(nameless.status().as_u16(), 400);
        let error: Value = nameless.json().await.unwrap();
        assert_eq!(error["error"]["fields"][0]["field"], "name", "{error}");
        let (status, error) = upload(&app, &key, "..", "text/plain", b"x").await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("name")), "{error}");
        let (status, error) = upload(&app, &key, "x.txt", "not a type", b"x").await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("content_type")), "{error}");
        let mut files = Vec::new();
        for fill in 1..=3u8 {
            let (status, file) = upload(&app, &key, "part.bin", "application/octet-stream", &vec![fill; MAX_FILE_BYTES]).await;
            assert_eq!(status, 201, "{file}");
            files.push(json!({ "name": "part.bin", "sha256": file["sha256"] }));
        }
        let (status, error) = app.post(&messages, &key, json!({ "body_text": "three", "attachments": files })).await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("attachments")), "{error}");

        // What a browser would run is only ever downloaded.
        let (_, page) = upload(&app, &key, "invoice.html", "text/html", b"<script>alert(1)</script>").await;
        let (status, added) = app.post(&messages, &key, attach(json!({ "name": "invoice.html", "content_type": "text/html", "sha256": page["sha256"] }))).await;
        assert_eq!(status, 201, "{added}");
        let (status, headers, _) = download(&app, &key, ticket["id"].as_str().unwrap(), page["sha256"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "content-type"), "application/octet-stream");
        assert!(header(&headers, "content-disposition").starts_with("attachment;"), "{headers:?}");
        let (status, _, _) = download(&app, &key, ticket["id"].as_str().unwrap(), "not-a-hash").await;
        assert_eq!(status, 400);
    }

    async fn mail_attachments_and_inline_images_come_with_the_ticket(app: TestApp) {
        create_mailbox(&app, "support", "support@acme.test").await;
        // Base64 of zeros, in lines of 76: just over the test platform's limit once decoded.
        let big = format!("{}\r\n", "A".repeat(76)).repeat(MAX_FILE_BYTES / 57 + 100);
        let raw = format!(
            "From: Kim <kim@example.com>\r\nTo: support@acme.test\r\nSubject: =?UTF-8?B?7JiB7IiY7KadIOyyqOu2gA==?=\r\n\
             Message-ID: <files-1@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
             --outer\r\nContent-Type: multipart/related; boundary=\"inner\"\r\n\r\n\
             --inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>영수증 첨부합니다 <img src=\"cid:logo@example.com\"></p>\r\n\
             --inner\r\nContent-Type: image/png\r\nContent-ID: <logo@example.com>\r\nContent-Disposition: inline\r\n\
             Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--inner--\r\n\
             --outer\r\nContent-Type: application/pdf; name=\"=?UTF-8?B?7JiB7IiY7KadLnBkZg==?=\"\r\n\
             Content-Disposition: attachment; filename*=UTF-8''%EC%98%81%EC%88%98%EC%A6%9D.pdf\r\n\
             Content-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQ=\r\n\
             --outer\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"huge.bin\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{big}\
             --outer--\r\n"
        );
        send(&app, "kim@example.com", "support@acme.test", raw.as_bytes()).await.unwrap();
        let mail = settled_mail(&app, "support", 1).await;
        assert_eq!(mail[0]["outcome"], "ticket_created", "{mail:?}");
        assert!(mail[0]["reason"].as_str().unwrap().contains("huge.bin"), "the file left out is named: {mail:?}");
        let ticket_id = mail[0]["ticket_id"].as_str().unwrap().to_owned();
        let (_, ticket) = app.get(&format!("/v1/tickets/{ticket_id}"), &app.admin_key).await;
        let files = ticket["attachments"].as_array().unwrap();
        let names: Vec<&str> = files.iter().map(|file| file["name"].as_str().unwrap()).collect();
        assert_eq!(names.len(), 2, "{ticket}");
        assert!(names.contains(&"영수증.pdf"), "{names:?}");
        let pdf = files.iter().find(|file| file["name"] == "영수증.pdf").unwrap();
        let (status, _, body) = download(&app, &app.admin_key, &ticket_id, pdf["sha256"].as_str().unwrap()).await;
        assert_eq!((status, body.as_slice()), (200, b"%PDF-1.4".as_slice()));
        let logo = files.iter().find(|file| file["content_id"] == "logo@example.com").expect("the inline image, by its Content-ID");
        assert_eq!(logo["content_type"], "image/png");

        // A reply's inline image shows through its download path.
        let reply = "From: kim@example.com\r\nTo: support@acme.test\r\nSubject: Re: files\r\n\
            Message-ID: <files-2@example.com>\r\nIn-Reply-To: <files-1@example.com>\r\nMIME-Version: 1.0\r\n\
            Content-Type: multipart/related; boundary=\"r\"\r\n\r\n\
            --r\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>화면입니다 <img src=\"cid:screen@example.com\"></p>\r\n\
            --r\r\nContent-Type: image/gif\r\nContent-ID: <screen@example.com>\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAAAAACw=\r\n--r--\r\n";
        send(&app, "kim@example.com", "support@acme.test", reply.as_bytes()).await.unwrap();
        let mail = settled_mail(&app, "support", 2).await;
        assert_eq!(mail[0]["outcome"], "message_added", "{mail:?}");
        let conversation = crate::email::messages(&app, &ticket_id).await;
        let last = conversation.last().unwrap();
        let gif = &last["attachments"][0];
        let src = format!("/v1/tickets/{ticket_id}/attachments/{}", gif["sha256"].as_str().unwrap());
        assert!(last["body_html"].as_str().unwrap().contains(&src), "{last}");
        let customer_token = app.customer_token("demo", ticket["requester_id"].as_str().unwrap());
        assert_eq!(download(&app, &customer_token, &ticket_id, gif["sha256"].as_str().unwrap()).await.0, 200);
    }

    async fn an_agents_reply_carries_its_files_and_inline_images_to_the_customer(app: TestApp) {
        let customer_key = relaying_to_the_customer_side(&app, json!({})).await;
        send(&app, "kim@example.com", "support@acme.test", &first_message()).await.unwrap();
        let ticket_id = settled_mail(&app, "support", 1).await[0]["ticket_id"].as_str().unwrap().to_owned();
        let key = app.admin_key.clone();
        let guide = "환불 안내서\n1. 계좌 확인".as_bytes();
        let (_, manual) = upload(&app, &key, "환불 안내.txt", "text/plain; charset=utf-8", guide).await;
        let png = b"\x89PNG\r\n\x1a\n refund screen";
        let (_, screen) = upload(&app, &key, "screen.png", "image/png", png).await;
        let reply = json!({ "body_text": "안내서를 첨부합니다", "body_html": "<p>안내서를 첨부합니다 <img src=\"cid:screen-1\"></p>",
            "attachments": [{ "name": "환불 안내.txt", "content_type": "text/plain; charset=utf-8", "sha256": manual["sha256"] },
                            { "name": "screen.png", "content_type": "image/png", "sha256": screen["sha256"], "content_id": "screen-1" }] });
        let (status, sent) = app.post(&format!("/v1/tickets/{ticket_id}/messages"), &key, reply).await;
        assert_eq!(status, 201, "{sent}");

        // The customer's side gets the mail, and with it the same files and the image inline.
        let received = poll(&app, &customer_key, "/v1/mailboxes/inbox/mail", |body| {
            body["mail"][0]["outcome"] == "ticket_created"
        })
        .await;
        let their_ticket = received["mail"][0]["ticket_id"].as_str().unwrap().to_owned();
        let (_, ticket) = app.get(&format!("/v1/tickets/{their_ticket}"), &customer_key).await;
        let files = ticket["attachments"].as_array().unwrap();
        assert_eq!(files.len(), 2, "{ticket}");
        let text = files.iter().find(|file| file["name"] == "환불 안내.txt").expect("the file, by its Korean name");
        assert_eq!(text["sha256"], sha256(guide));
        let image = files.iter().find(|file| file["content_id"] == "screen-1").expect("the image, inline");
        assert_eq!(image["sha256"], sha256(png));
        assert_eq!(download(&app, &customer_key, &their_ticket, &sha256(png)).await.2, png);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachments_are_kept_in_an_s3_compatible_store() {
    if helpdesk_tests::s3_server().is_none() {
        eprintln!("HELPDESK_TEST_S3_ENDPOINT is not set: S3 run not possible here (bash .ci/s3-server starts one)");
        return;
    }
    let backend = if helpdesk_tests::postgres_url().is_some() { Backend::Postgres } else { Backend::Sqlite };
    let app = spawn_app_with(Options { backend, s3: true, ..Options::default() }).await;
    files_reach_only_those_who_may_see_them(&app).await;
    app.stop().await;
}
