//! The email channel end to end: mailboxes over REST, real mail sent over SMTP (lettre) to the
//! built-in listener, and tickets and messages observed through the platform's own API.

use std::time::Duration;

use helpdesk_tests::{TestApp, on_both_backends};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};
use serde_json::{Value, json};

pub(crate) const WEBHOOK_SECRET: &str = "a webhook secret of some length";

pub(crate) async fn create_mailbox(app: &TestApp, id: &str, address: &str) -> Value {
    let body = json!({
        "mailbox": { "id": id, "address": address, "aliases": [format!("help-{address}")], "enabled": true,
                     "group": "support", "tags": ["email"], "display_name": "Acme 고객센터" },
        "secrets": { "webhook_secret": WEBHOOK_SECRET }
    });
    let (status, mailbox) =
        app.call(reqwest::Method::PUT, &format!("/v1/mailboxes/{id}"), &app.admin_key, Some(body)).await;
    assert_eq!(status, 200, "{mailbox}");
    mailbox
}

fn smtp(app: &TestApp) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(app.smtp_addr.ip().to_string())
        .port(app.smtp_addr.port())
        .build()
}

pub(crate) async fn send(
    app: &TestApp,
    from: &str,
    to: &str,
    raw: &[u8],
) -> Result<(), lettre::transport::smtp::Error> {
    let envelope = Envelope::new(Some(from.parse().unwrap()), vec![to.parse().unwrap()]).unwrap();
    smtp(app).send_raw(&envelope, raw).await.map(|_| ())
}

/// Waits until the mailbox lists `count` messages all threaded; returns them, newest first.
pub(crate) async fn settled_mail(app: &TestApp, mailbox: &str, count: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = app.get(&format!("/v1/mailboxes/{mailbox}/mail"), &app.admin_key).await;
        assert_eq!(status, 200, "{body}");
        let mail = body["mail"].as_array().cloned().unwrap_or_default();
        let settled = mail.iter().all(|m| m["outcome"].as_str().is_some_and(|o| o != "unspecified"));
        if mail.len() >= count && settled {
            return mail;
        }
        assert!(tokio::time::Instant::now() < deadline, "mail not settled: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn euc_kr(text: &str) -> Vec<u8> {
    encoding_rs::EUC_KR.encode(text).0.into_owned()
}

/// A first message from a Korean client: EUC-KR body, RFC 2047 EUC-KR subject.
pub(crate) fn first_message() -> Vec<u8> {
    let subject = format!("=?EUC-KR?B?{}?=", base64(&euc_kr("환불 요청드립니다")));
    let mut raw = format!(
        "From: =?UTF-8?B?6rmA66+87IiY?= <kim@example.com>\r\nTo: support@acme.test\r\nSubject: {subject}\r\n\
         Message-ID: <first-1@example.com>\r\nDate: Tue, 1 Dec 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=euc-kr\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    raw.extend(euc_kr("주문번호 A-1042 결제가 두 번 되었습니다. 환불 부탁드립니다.\r\n"));
    raw
}

fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() { TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

pub(crate) async fn messages(app: &TestApp, ticket: &str) -> Vec<Value> {
    let (status, body) = app.get(&format!("/v1/tickets/{ticket}/messages"), &app.admin_key).await;
    assert_eq!(status, 200, "{body}");
    body["messages"].as_array().cloned().unwrap_or_default()
}

on_both_backends! {
    async fn mail_over_smtp_opens_a_ticket_and_replies_thread_into_it(app: TestApp) {
        let mailbox = create_mailbox(&app, "support", "support@acme.test").await;
        assert_eq!(mailbox["has_webhook_secret"], true);
        assert!(mailbox.get("secrets").is_none() && !mailbox.to_string().contains(WEBHOOK_SECRET));

        send(&app, "kim@example.com", "support@acme.test", &first_message()).await.unwrap();
        let mail = settled_mail(&app, "support", 1).await;
        assert_eq!(mail[0]["outcome"], "ticket_created", "{mail:?}");
        assert_eq!(mail[0]["source"], "smtp");
        let ticket_id = mail[0]["ticket_id"].as_str().unwrap().to_owned();
        let (_, ticket) = app.get(&format!("/v1/tickets/{ticket_id}"), &app.admin_key).await;
        assert_eq!(ticket["subject"], "환불 요청드립니다");
        assert_eq!(ticket["channel"], "email");
        assert_eq!(ticket["group"], "support");
        assert!(ticket["description"].as_str().unwrap().contains("주문번호 A-1042"), "{ticket}");
        let (_, customer) = app.get(&format!("/v1/customers/{}", ticket["requester_id"].as_str().unwrap()), &app.admin_key).await;
        assert_eq!((customer["name"].as_str(), customer["emails"][0].as_str()), (Some("김민수"), Some("kim@example.com")));
        assert_eq!(customer["language"], "ko");

        // A reply with a changed subject, tied by In-Reply-To, quoting the history.
        let reply = "From: kim@example.com\r\nTo: support@acme.test\r\nSubject: Re: 다른 제목\r\n\
                     Message-ID: <reply-2@example.com>\r\nIn-Reply-To: <first-1@example.com>\r\n\
                     References: <first-1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
                     아직 환불이 안 되었어요.\r\n\r\n2026년 12월 1일 (화) 오전 10:00, 고객센터 <support@acme.test>님이 작성:\r\n> 확인 중입니다.\r\n";
        send(&app, "kim@example.com", "support@acme.test", reply.as_bytes()).await.unwrap();
        let mail = settled_mail(&app, "support", 2).await;
        assert_eq!(mail[0]["outcome"], "message_added", "{mail:?}");
        assert_eq!(mail[0]["ticket_id"], ticket_id.as_str());
        let conversation = messages(&app, &ticket_id).await;
        let last = conversation.last().unwrap();
        assert_eq!(last["body_text"], "아직 환불이 안 되었어요.");
        assert_eq!(last["author_kind"], "customer");
        assert_eq!(last["author_id"], customer["id"]);

        // The first message again, through the alias: stored once, one ticket.
        send(&app, "kim@example.com", "help-support@acme.test", &first_message()).await.unwrap();
        let mail = settled_mail(&app, "support", 3).await;
        assert_eq!(mail[0]["outcome"], "duplicate", "{mail:?}");
        let (_, tickets) = app.get("/v1/tickets?channel=email", &app.admin_key).await;
        assert_eq!(tickets["tickets"].as_array().unwrap().len(), 1, "{tickets}");
    }

    async fn automatic_mail_opens_nothing_and_unknown_recipients_are_refused(app: TestApp) {
        create_mailbox(&app, "support", "support@acme.test").await;
        let auto_reply = "From: away@example.com\r\nTo: support@acme.test\r\nSubject: Out of office\r\n\
                          Auto-Submitted: auto-replied\r\nMessage-ID: <oof-1@example.com>\r\n\r\nI am away.\r\n";
        send(&app, "away@example.com", "support@acme.test", auto_reply.as_bytes()).await.unwrap();
        let bounce = "From: MAILER-DAEMON@mx.example.com\r\nTo: support@acme.test\r\nSubject: Undelivered\r\n\
                      Message-ID: <dsn-1@mx.example.com>\r\n\r\nMessage-ID: <reply-9@acme.test>\r\n";
        send(&app, "mailer-daemon@mx.example.com", "support@acme.test", bounce.as_bytes()).await.unwrap();
        let mail = settled_mail(&app, "support", 2).await;
        assert!(mail.iter().all(|m| m["outcome"] == "ignored"), "{mail:?}");
        assert!(mail.iter().any(|m| m["reason"].as_str().unwrap().contains("reply-9@acme.test")));
        let (_, tickets) = app.get("/v1/tickets", &app.admin_key).await;
        assert_eq!(tickets["tickets"].as_array().unwrap().len(), 0, "{tickets}");

        let refused = send(&app, "kim@example.com", "nobody@acme.test", b"Subject: x\r\n\r\nx\r\n").await.unwrap_err();
        assert!(refused.to_string().contains("550") || refused.is_permanent(), "{refused}");
    }
}

async fn webhook(app: &TestApp, tenant: &str, mailbox: &str, raw: &[u8], signature: &str) -> (u16, Value) {
    let response = app
        .http
        .post(app.url(&format!("/v1/inbound-mail/{tenant}/{mailbox}")))
        .header("content-type", "message/rfc822")
        .header("x-helpdesk-signature", signature)
        .body(raw.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

on_both_backends! {
    async fn the_webhook_takes_signed_mail_only(app: TestApp) {
        create_mailbox(&app, "support", "support@acme.test").await;
        let raw = "From: Lee <lee@example.com>\r\nTo: support@acme.test\r\nSubject: Outlook question\r\n\
                   Message-ID: <ol-1@example.com>\r\nThread-Index: AdbH5nSpQ8b0D4hGSm6xAgfNnzGtOQ==\r\n\r\nHello\r\n";
        let signature = helpdesk_email::sign_webhook(WEBHOOK_SECRET, raw.as_bytes());
        let (status, delivered) = webhook(&app, "demo", "support", raw.as_bytes(), &signature).await;
        assert_eq!(status, 202, "{delivered}");
        assert_eq!(delivered["duplicate"], false);
        let (status, again) = webhook(&app, "demo", "support", raw.as_bytes(), &signature).await;
        assert_eq!((status, &again["duplicate"], &again["mail_id"]), (202, &json!(true), &delivered["mail_id"]));

        let (status, refused) = webhook(&app, "demo", "support", raw.as_bytes(), "sha256=00").await;
        assert_eq!(status, 401, "{refused}");
        let wrong = helpdesk_email::sign_webhook("not the mailbox's secret", raw.as_bytes());
        assert_eq!(webhook(&app, "demo", "support", raw.as_bytes(), &wrong).await.0, 401);
        assert_eq!(webhook(&app, "demo", "nosuch", raw.as_bytes(), &signature).await.0, 404);
        assert_eq!(webhook(&app, "Not A Tenant", "support", raw.as_bytes(), &signature).await.0, 400);

        // A later message of the same Outlook conversation, with no other header to tie it.
        let next = "From: Lee <lee@example.com>\r\nTo: support@acme.test\r\nSubject: RE: something new\r\n\
                    Message-ID: <ol-2@example.com>\r\nThread-Index: AdbH5nSpQ8b0D4hGSm6xAgfNnzGtOQAAAbBQ\r\n\r\nAnd more\r\n";
        let signature = helpdesk_email::sign_webhook(WEBHOOK_SECRET, next.as_bytes());
        assert_eq!(webhook(&app, "demo", "support", next.as_bytes(), &signature).await.0, 202);
        let mail = settled_mail(&app, "support", 3).await;
        let outcomes: Vec<&str> = mail.iter().map(|m| m["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["message_added", "duplicate", "ticket_created"], "{mail:?}");
        assert_eq!(mail[0]["ticket_id"], mail[2]["ticket_id"]);
        assert_eq!(mail[0]["source"], "webhook");
    }

    async fn a_colleague_in_copy_replies_to_the_same_ticket_and_floods_are_set_aside(app: TestApp) {
        let body = json!({ "mailbox": { "id": "sales", "address": "sales@acme.test", "enabled": true,
                                        "sender_limit_per_hour": 2, "max_message_bytes": 4096 },
                     "secrets": { "webhook_secret": WEBHOOK_SECRET } });
        let (status, _) = app.call(reqwest::Method::PUT, "/v1/mailboxes/sales", &app.admin_key, Some(body)).await;
        assert_eq!(status, 200);
        let first = "From: kim@example.com\r\nTo: sales@acme.test\r\nCc: park@example.com\r\nSubject: Quote\r\n\
                     Message-ID: <q-1@example.com>\r\n\r\nPlease send a quote.\r\n";
        send(&app, "kim@example.com", "sales@acme.test", first.as_bytes()).await.unwrap();
        let colleague = "From: Park <park@example.com>\r\nTo: sales@acme.test\r\nSubject: Re: Quote\r\n\
                         Message-ID: <q-2@example.com>\r\nReferences: <q-1@example.com>\r\n\r\nFor 20 seats, please.\r\n";
        send(&app, "park@example.com", "sales@acme.test", colleague.as_bytes()).await.unwrap();
        let mail = settled_mail(&app, "sales", 2).await;
        assert_eq!(mail[0]["outcome"], "message_added", "{mail:?}");
        let conversation = messages(&app, mail[1]["ticket_id"].as_str().unwrap()).await;
        let (_, park) = app.get(&format!("/v1/customers/{}", conversation.last().unwrap()["author_id"].as_str().unwrap()), &app.admin_key).await;
        assert_eq!(park["emails"][0], "park@example.com");

        for n in 3..=4 {
            let raw = format!("From: kim@example.com\r\nTo: sales@acme.test\r\nSubject: again {n}\r\nMessage-ID: <q-{n}@example.com>\r\n\r\nhello {n}\r\n");
            send(&app, "kim@example.com", "sales@acme.test", raw.as_bytes()).await.unwrap();
        }
        let mail = settled_mail(&app, "sales", 4).await;
        assert_eq!(mail[0]["outcome"], "rejected", "{mail:?}");
        assert!(mail[0]["reason"].as_str().unwrap().contains("limit"));

        let large = format!("From: kim@example.com\r\nTo: sales@acme.test\r\nSubject: big\r\n\r\n{}\r\n", "x".repeat(8000));
        let signature = helpdesk_email::sign_webhook(WEBHOOK_SECRET, large.as_bytes());
        let (status, refused) = webhook(&app, "demo", "sales", large.as_bytes(), &signature).await;
        assert_eq!(status, 400, "{refused}");
        assert_eq!(refused["error"]["fields"][0]["field"], "raw");
    }
}

/// The customer's side (another tenant whose mailbox is kim@example.com, on the same listener,
/// so that mail to the customer can be read back as it arrived) and the `support` mailbox
/// relaying through that listener, with `settings` on top; returns the other tenant's key.
pub(crate) async fn relaying_to_the_customer_side(app: &TestApp, settings: Value) -> String {
    let customer_key = app.new_tenant("customer-side").await;
    let body = json!({ "mailbox": { "id": "inbox", "address": "kim@example.com", "enabled": true } });
    let (status, _) = app.call(reqwest::Method::PUT, "/v1/mailboxes/inbox", &customer_key, Some(body)).await;
    assert_eq!(status, 200);
    let mut mailbox = json!({ "id": "support", "address": "support@acme.test", "enabled": true,
                              "smtp": { "host": "127.0.0.1", "port": app.smtp_addr.port(), "security": "none" } });
    for (field, value) in settings.as_object().unwrap() {
        mailbox[field] = value.clone();
    }
    let (status, mailbox) = app
        .call(reqwest::Method::PUT, "/v1/mailboxes/support", &app.admin_key, Some(json!({ "mailbox": mailbox })))
        .await;
    assert_eq!(status, 200, "{mailbox}");
    customer_key
}

/// Polls `path` with `key` until `done` holds for its body.
pub(crate) async fn poll(app: &TestApp, key: &str, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (status, body) = app.get(path, key).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_backends! {
    async fn an_agents_reply_reaches_the_customer_and_their_answer_threads_back(app: TestApp) {
        let customer_key = relaying_to_the_customer_side(&app, json!({ "display_name": "Acme 고객센터" })).await;

        send(&app, "kim@example.com", "support@acme.test", &first_message()).await.unwrap();
        let ticket_id = settled_mail(&app, "support", 1).await[0]["ticket_id"].as_str().unwrap().to_owned();
        let note = json!({ "body_text": "내부 메모: 결제 확인 필요", "visibility": "internal" });
        let (status, _) = app.post(&format!("/v1/tickets/{ticket_id}/messages"), &app.admin_key, note).await;
        assert_eq!(status, 201);
        let reply = json!({ "body_text": "환불 처리했습니다. 3영업일 안에 입금됩니다." });
        let (status, _) = app.post(&format!("/v1/tickets/{ticket_id}/messages"), &app.admin_key, reply).await;
        assert_eq!(status, 201);

        let deliveries = poll(&app, &app.admin_key, &format!("/v1/tickets/{ticket_id}/deliveries"), |body| {
            body["deliveries"][0]["state"] == "sent"
        })
        .await;
        let deliveries = deliveries["deliveries"].as_array().unwrap().clone();
        assert_eq!(deliveries.len(), 1, "the internal note is not mailed: {deliveries:?}");
        assert_eq!(deliveries[0]["recipient"], "kim@example.com");
        let email_message_id = deliveries[0]["email_message_id"].as_str().unwrap().to_owned();

        // The reply as the customer's mail server got it.
        let received = poll(&app, &customer_key, "/v1/mailboxes/inbox/mail", |body| {
            body["mail"].as_array().is_some_and(|mail| !mail.is_empty())
        })
        .await;
        let received = &received["mail"][0];
        assert_eq!(received["from"], "support@acme.test");
        assert_eq!(received["message_id"], email_message_id.as_str());
        let subject = received["subject"].as_str().unwrap();
        assert!(subject.starts_with("Re: 환불 요청드립니다 [#hd"), "{subject}");
        let token = subject.rsplit("[#").next().unwrap().trim_end_matches(']').to_owned();

        // The customer answers it, naming only the reply's Message-ID.
        let answer = format!("From: kim@example.com\r\nTo: support@acme.test\r\nSubject: thanks\r\n\
                              Message-ID: <answer-1@example.com>\r\nIn-Reply-To: <{email_message_id}>\r\n\r\n감사합니다\r\n");
        send(&app, "kim@example.com", "support@acme.test", answer.as_bytes()).await.unwrap();
        // And again from a client that dropped every header but kept the subject's token.
        let by_token = format!("From: kim@example.com\r\nTo: support@acme.test\r\nSubject: 추가 문의 [#{token}]\r\n\
                                Message-ID: <answer-2@example.com>\r\n\r\n하나 더 여쭤봅니다\r\n");
        send(&app, "kim@example.com", "support@acme.test", by_token.as_bytes()).await.unwrap();
        let mail = settled_mail(&app, "support", 3).await;
        for answer in &mail[..2] {
            assert_eq!((answer["outcome"].as_str(), answer["ticket_id"].as_str()), (Some("message_added"), Some(ticket_id.as_str())), "{mail:?}");
        }

        // The customer's server later bounces the reply: its delivery shows failed, on the ticket.
        let bounce = format!(
            "From: MAILER-DAEMON@example.com\r\nTo: support@acme.test\r\nSubject: Undelivered Mail\r\n\
             Message-ID: <dsn-7@example.com>\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=r\r\n\r\n\
             --r\r\nContent-Type: text/plain\r\n\r\nmailbox full\r\n\
             --r\r\nContent-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; kim@example.com\r\n\
             Action: failed\r\nStatus: 5.2.2\r\n\r\n\
             --r\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: <{email_message_id}>\r\n--r--\r\n"
        );
        let envelope = lettre::address::Envelope::new(None, vec!["support@acme.test".parse().unwrap()]).unwrap();
        smtp(&app).send_raw(&envelope, bounce.as_bytes()).await.unwrap();
        let deliveries = poll(&app, &app.admin_key, &format!("/v1/tickets/{ticket_id}/deliveries"), |body| {
            body["deliveries"][0]["state"] == "failed"
        })
        .await;
        assert!(deliveries["deliveries"][0]["last_error"].as_str().unwrap().contains("5.2.2"), "{deliveries}");
    }
}

on_both_backends! {
    async fn people_copied_on_mail_follow_the_ticket_and_get_its_replies(app: TestApp) {
        let customer_key = relaying_to_the_customer_side(&app, json!({})).await;
        let body = json!({ "mailbox": { "id": "park", "address": "park@example.com", "enabled": true } });
        let (status, _) = app.call(reqwest::Method::PUT, "/v1/mailboxes/park", &customer_key, Some(body)).await;
        assert_eq!(status, 200);
        let first = "From: kim@example.com\r\nTo: support@acme.test, Park <park@example.com>\r\n\
                     Cc: KIM@example.com, undisclosed-recipients:;\r\nSubject: 견적 요청\r\n\
                     Message-ID: <cc-1@example.com>\r\n\r\n20석 견적 부탁드립니다.\r\n";
        send(&app, "kim@example.com", "support@acme.test", first.as_bytes()).await.unwrap();
        let mail = settled_mail(&app, "support", 1).await;
        assert_eq!(mail[0]["outcome"], "ticket_created", "{mail:?}");
        let ticket_id = mail[0]["ticket_id"].as_str().unwrap().to_owned();
        let (_, ticket) = app.get(&format!("/v1/tickets/{ticket_id}"), &app.admin_key).await;
        let collaborators = ticket["collaborator_ids"].as_array().cloned().unwrap_or_default();
        assert_eq!(collaborators.len(), 1, "only Park: not the sender, not our mailbox: {ticket}");
        let (_, park) = app.get(&format!("/v1/customers/{}", collaborators[0].as_str().unwrap()), &app.admin_key).await;
        assert_eq!((park["name"].as_str(), park["emails"][0].as_str()), (Some("Park"), Some("park@example.com")));

        let reply = json!({ "body_text": "견적서를 보내드립니다." });
        let (status, _) = app.post(&format!("/v1/tickets/{ticket_id}/messages"), &app.admin_key, reply).await;
        assert_eq!(status, 201);
        for mailbox in ["inbox", "park"] {
            let received = poll(&app, &customer_key, &format!("/v1/mailboxes/{mailbox}/mail"), |body| {
                body["mail"].as_array().is_some_and(|mail| !mail.is_empty())
            })
            .await;
            assert!(received["mail"][0]["subject"].as_str().unwrap().starts_with("Re: 견적 요청"), "{mailbox}: {received}");
        }

        // Agents change who follows a ticket; only customers of the tenant can.
        let path = format!("/v1/tickets/{ticket_id}");
        let (status, error) = app.update_ticket(&app.admin_key, &ticket_id, json!({ "collaborator_ids": ["no-such-customer"] })).await;
        assert_eq!((status, &error["error"]["fields"][0]["field"]), (400, &json!("collaborator_ids")), "{error}");
        let (status, updated) = app.update_ticket(&app.admin_key, &ticket_id, json!({ "collaborator_ids": [] })).await;
        assert_eq!(status, 200, "{updated}");
        assert_eq!(app.get(&path, &app.admin_key).await.1["collaborator_ids"], json!([]));
        let requester = ticket["requester_id"].as_str().unwrap();
        let (status, _) = app
            .post("/v1/tickets", &app.customer_token("demo", requester),
                  json!({ "subject": "mine", "collaborator_ids": [collaborators[0]] }))
            .await;
        assert_eq!(status, 403);
    }

    async fn a_new_email_ticket_is_acknowledged_in_the_customers_language_and_no_autoresponder_answers(app: TestApp) {
        let customer_key = relaying_to_the_customer_side(&app, json!({ "acknowledge": true, "default_language": "en" })).await;

        send(&app, "kim@example.com", "support@acme.test", &first_message()).await.unwrap();
        let ticket_id = settled_mail(&app, "support", 1).await[0]["ticket_id"].as_str().unwrap().to_owned();
        let deliveries = poll(&app, &app.admin_key, &format!("/v1/tickets/{ticket_id}/deliveries"), |body| {
            body["deliveries"][0]["state"] == "sent"
        })
        .await;
        assert_eq!(deliveries["deliveries"][0]["message_id"], format!("ack:{ticket_id}"));

        // The customer's side got it in Korean (the customer writes Korean), marked automatic, so
        // that side's helpdesk opens nothing and answers nothing.
        let received = poll(&app, &customer_key, "/v1/mailboxes/inbox/mail", |body| {
            body["mail"][0]["outcome"].as_str().is_some_and(|outcome| outcome != "unspecified")
        })
        .await;
        let ack = &received["mail"][0];
        assert!(ack["subject"].as_str().unwrap().starts_with("[접수] 환불 요청드립니다 [#hd"), "{ack}");
        assert_eq!(ack["outcome"], "ignored", "{ack}");
        assert!(ack["reason"].as_str().unwrap().contains("Auto-Submitted"), "{ack}");
    }
}

on_both_backends! {
    async fn the_survey_link_of_a_solved_email_ticket_reaches_the_customer_by_mail(app: TestApp) {
        let customer_key = relaying_to_the_customer_side(&app, json!({})).await;
        let (status, survey) = app.post("/v1/feedback/surveys", &app.admin_key, json!({
            "name": "After solve", "kind": "csat", "active": true, "trigger": { "on_solved": true, "channels": ["email"] }
        })).await;
        assert_eq!(status, 201, "{survey}");

        send(&app, "kim@example.com", "support@acme.test", &first_message()).await.unwrap();
        let ticket_id = settled_mail(&app, "support", 1).await[0]["ticket_id"].as_str().unwrap().to_owned();
        let (status, _) = app.update_ticket(&app.admin_key, &ticket_id, json!({ "status": "solved" })).await;
        assert_eq!(status, 200);

        // The invitation is mailed with the customer's own link (staff see it redacted); the
        // customer's side threads it into a ticket whose text is the mail's.
        let received = poll(&app, &customer_key, "/v1/mailboxes/inbox/mail", |body| {
            body["mail"][0]["ticket_id"].as_str().is_some_and(|id| !id.is_empty())
        })
        .await;
        let (_, invitation) = app.get(&format!("/v1/tickets/{}", received["mail"][0]["ticket_id"].as_str().unwrap()), &customer_key).await;
        let text = invitation["description"].as_str().unwrap();
        let at = text.find("/v1/surveys/").expect("a survey link in the mail");
        let link = text[at..].split_whitespace().next().unwrap();
        let (status, form) = app.public(reqwest::Method::GET, link, None).await;
        assert_eq!(status, 200, "{link}: {form}");
    }
}
