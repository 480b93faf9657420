//! The email channel against real mail servers: Dovecot (IMAP) that mailboxes are fetched from
//! and Postfix (SMTP) that replies are relayed through, into Dovecot mailboxes the tests read
//! back over IMAP. `.ci/mail-servers` starts both on loopback; without them these tests say so
//! and pass (CI always starts them, and fails when it cannot).

use std::{net::SocketAddr, time::Duration};

use futures::TryStreamExt;
use helpdesk_tests::{IMAP_PASSWORD, TestApp, imap_server, on_both_backends, smtp_relay};
use serde_json::{Value, json};

use crate::email::{first_message, messages, poll, send, settled_mail};

/// The servers, or `None` (said on stderr) when `.ci/mail-servers` has not started them.
fn servers() -> Option<(SocketAddr, SocketAddr)> {
    let servers = imap_server().zip(smtp_relay());
    if servers.is_none() {
        eprintln!("HELPDESK_TEST_IMAP / HELPDESK_TEST_SMTP_RELAY are not set: run `eval \"$(bash .ci/mail-servers)\"`");
    }
    servers
}

/// A Dovecot user of this test's own, so that tests running side by side share no folder.
pub(crate) fn unique_address(name: &str) -> String {
    format!("{name}-{}@imap.test", uuid::Uuid::new_v4().simple())
}

async fn imap_session(server: SocketAddr, user: &str) -> async_imap::Session<tokio::net::TcpStream> {
    let tcp = tokio::net::TcpStream::connect(server).await.unwrap();
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await.unwrap().expect("a greeting");
    client.login(user, IMAP_PASSWORD).await.map_err(|(error, _)| error).unwrap()
}

/// Puts messages into the user's INBOX with IMAP APPEND, as a mail server delivering them would.
pub(crate) async fn append(server: SocketAddr, user: &str, messages: &[&[u8]]) {
    let mut session = imap_session(server, user).await;
    for raw in messages {
        session.append("INBOX", None, None, raw).await.unwrap();
    }
    session.logout().await.unwrap();
}

/// The messages in the user's INBOX, oldest first.
async fn inbox(server: SocketAddr, user: &str) -> Vec<Vec<u8>> {
    let mut session = imap_session(server, user).await;
    let selected = session.select("INBOX").await.unwrap();
    if selected.exists == 0 {
        return Vec::new();
    }
    let fetched: Vec<_> = session.uid_fetch("1:*", "BODY.PEEK[]").await.unwrap().try_collect().await.unwrap();
    fetched.iter().filter_map(|fetch| fetch.body().map(<[u8]>::to_vec)).collect()
}

pub(crate) async fn imap_mailbox(app: &TestApp, server: SocketAddr, user: &str, password: &str, extra: Value) -> Value {
    let mut mailbox = json!({
        "id": "support", "address": "support@acme.test", "enabled": true,
        "imap": { "host": server.ip().to_string(), "port": server.port(), "security": "none", "username": user }
    });
    for (field, value) in extra.as_object().unwrap() {
        mailbox[field] = value.clone();
    }
    let body = json!({ "mailbox": mailbox, "secrets": { "imap_password": password } });
    let (status, mailbox) = app.call(reqwest::Method::PUT, "/v1/mailboxes/support", &app.admin_key, Some(body)).await;
    assert_eq!(status, 200, "{mailbox}");
    mailbox
}

fn plain(from: &str, subject: &str, message_id: &str, extra_headers: &str, body: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: support@acme.test\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n{extra_headers}\
         Content-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n"
    )
    .into_bytes()
}

on_both_backends! {
    async fn mail_waiting_in_an_imap_folder_and_mail_arriving_later_are_fetched_once_each(app: TestApp) {
        let Some((server, _)) = servers() else { return };
        let user = unique_address("support");
        let reply = plain("kim@example.com", "Re: 다른 제목", "reply-2@example.com",
                          "In-Reply-To: <first-1@example.com>\r\n", "아직 환불이 안 되었어요.");
        let large = plain("kim@example.com", "photos", "large-1@example.com", "", &"x".repeat(8000));
        // What waited in the folder before the mailbox was set up: a message, its reply, the
        // same message delivered again, and one over the mailbox's size limit.
        append(server, &user, &[&first_message(), &reply, &first_message(), &large]).await;
        imap_mailbox(&app, server, &user, IMAP_PASSWORD, json!({ "max_message_bytes": 4096 })).await;

        let mail = settled_mail(&app, "support", 4).await;
        let outcomes: Vec<&str> = mail.iter().map(|m| m["outcome"].as_str().unwrap()).collect();
        assert_eq!(outcomes, ["rejected", "duplicate", "message_added", "ticket_created"], "{mail:?}");
        assert!(mail.iter().all(|m| m["source"] == "imap"), "{mail:?}");
        assert!(mail[0]["reason"].as_str().unwrap().contains("left on the server"), "{mail:?}");
        let ticket_id = mail[3]["ticket_id"].as_str().unwrap().to_owned();
        assert_eq!(mail[2]["ticket_id"], ticket_id.as_str());
        let (_, ticket) = app.get(&format!("/v1/tickets/{ticket_id}"), &app.admin_key).await;
        assert_eq!(ticket["subject"], "환불 요청드립니다", "EUC-KR subject decoded: {ticket}");

        // A message arriving while the fetcher waits in IDLE.
        let later = plain("lee@example.com", "배송 문의", "later-1@example.com", "", "언제 도착하나요?");
        append(server, &user, &[&later]).await;
        let mail = settled_mail(&app, "support", 5).await;
        assert_eq!((mail[0]["outcome"].as_str(), mail[0]["message_id"].as_str()), (Some("ticket_created"), Some("later-1@example.com")), "{mail:?}");

        let (_, mailbox) = app.get("/v1/mailboxes/support", &app.admin_key).await;
        let status = &mailbox["imap"]["status"];
        assert_eq!((status["last_uid"].as_i64(), status["messages_fetched"].as_i64()), (Some(5), Some(5)), "{mailbox}");
        assert_eq!((status["fetching"].as_bool(), status["last_error"].as_str().unwrap_or("")), (Some(true), ""), "{mailbox}");
        assert!(status["uid_validity"].as_i64().unwrap() > 0 && mailbox["imap"]["has_password"] == true, "{mailbox}");
        assert!(!mailbox.to_string().contains(IMAP_PASSWORD));
        let (_, tickets) = app.get("/v1/tickets?channel=email", &app.admin_key).await;
        assert_eq!(tickets["tickets"].as_array().unwrap().len(), 2, "{tickets}");
    }

    async fn a_refused_imap_login_is_shown_to_admins_and_fetches_nothing(app: TestApp) {
        let Some((server, _)) = servers() else { return };
        let user = unique_address("support");
        append(server, &user, &[&first_message()]).await;
        imap_mailbox(&app, server, &user, "not the password", json!({})).await;
        let mailbox = poll(&app, &app.admin_key, "/v1/mailboxes/support", |mailbox| {
            mailbox["imap"]["status"]["last_error"].as_str().is_some_and(|error| !error.is_empty())
        })
        .await;
        let error = mailbox["imap"]["status"]["last_error"].as_str().unwrap();
        assert!(error.contains("refused the login"), "{mailbox}");
        assert!(!error.contains("not the password"), "{mailbox}");
        let (_, mail) = app.get("/v1/mailboxes/support/mail", &app.admin_key).await;
        assert_eq!(mail["mail"].as_array().map_or(0, Vec::len), 0, "{mail}");

        // The right password, given later, is used at the next attempt.
        imap_mailbox(&app, server, &user, IMAP_PASSWORD, json!({})).await;
        let mail = tokio::time::timeout(Duration::from_secs(30), settled_mail(&app, "support", 1)).await.unwrap();
        assert_eq!(mail[0]["outcome"], "ticket_created", "{mail:?}");
    }

    async fn a_mailbox_another_replica_holds_is_left_alone_until_its_lease_lapses(app: TestApp) {
        let Some((server, _)) = servers() else { return };
        let user = unique_address("support");
        append(server, &user, &[&first_message()]).await;
        // Another replica takes the mailbox's lease the moment it exists, then stops renewing.
        let db = helpdesk_runtime::db::Database::connect(&app.config.database, &app.config.data_dir, "email").await.unwrap();
        imap_mailbox(&app, server, &user, IMAP_PASSWORD, json!({ "enabled": false })).await;
        let held_until = helpdesk_runtime::time::now_micros() + 4_000_000;
        sqlx::query("UPDATE imap_state SET holder = 'a replica that died', lease_until = $1 WHERE mailbox_id = 'support'")
            .bind(held_until)
            .execute(db.writer())
            .await
            .unwrap();
        imap_mailbox(&app, server, &user, IMAP_PASSWORD, json!({})).await;

        tokio::time::sleep(Duration::from_secs(2)).await;
        let (_, mail) = app.get("/v1/mailboxes/support/mail", &app.admin_key).await;
        assert_eq!(mail["mail"].as_array().map_or(0, Vec::len), 0, "fetched while another replica held it: {mail}");
        // Taken over after the lease lapses: within the lease time (3 s here, 20 s by default).
        let mail = tokio::time::timeout(Duration::from_secs(10), settled_mail(&app, "support", 1)).await.unwrap();
        assert_eq!(mail[0]["outcome"], "ticket_created", "{mail:?}");
        let holder: String = sqlx::query_scalar("SELECT holder FROM imap_state WHERE mailbox_id = 'support'")
            .fetch_one(db.reader())
            .await
            .unwrap();
        assert_ne!(holder, "a replica that died");
    }

    async fn an_agents_reply_is_relayed_by_postfix_into_the_customers_mailbox_and_threads_there(app: TestApp) {
        let Some((server, relay)) = servers() else { return };
        let customer = unique_address("kim");
        let body = json!({ "mailbox": { "id": "support", "address": "support@acme.test", "enabled": true,
                                        "display_name": "Acme 고객센터",
                                        "smtp": { "host": relay.ip().to_string(), "port": relay.port(), "security": "none" } } });
        let (status, _) = app.call(reqwest::Method::PUT, "/v1/mailboxes/support", &app.admin_key, Some(body)).await;
        assert_eq!(status, 200);
        let question = plain(&format!("김민수 <{customer}>"), "환불 문의", "question-1@imap.test", "", "결제가 두 번 되었습니다.");
        send(&app, &customer, "support@acme.test", &question).await.unwrap();
        let ticket_id = settled_mail(&app, "support", 1).await[0]["ticket_id"].as_str().unwrap().to_owned();

        let reply = json!({ "body_text": "환불 처리했습니다. 3영업일 안에 입금됩니다.", "body_html": "<p>환불 <b>처리</b>했습니다.</p>" });
        let (status, added) = app.post(&format!("/v1/tickets/{ticket_id}/messages"), &app.admin_key, reply).await;
        assert_eq!(status, 201, "{added}");
        let deliveries = poll(&app, &app.admin_key, &format!("/v1/tickets/{ticket_id}/deliveries"), |body| {
            body["deliveries"][0]["state"] == "sent"
        })
        .await;
        let email_message_id = deliveries["deliveries"][0]["email_message_id"].as_str().unwrap().to_owned();

        // Postfix delivers into Dovecot; read it as the customer's mail client would.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let received = loop {
            if let Some(raw) = inbox(server, &customer).await.pop() {
                break raw;
            }
            assert!(tokio::time::Instant::now() < deadline, "the reply never reached the customer's mailbox");
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let parsed = helpdesk_mail::parse(&received).unwrap();
        assert_eq!(parsed.message_id.as_deref(), Some(email_message_id.as_str()));
        assert_eq!(parsed.in_reply_to, ["question-1@imap.test"]);
        assert!(parsed.references.contains(&"question-1@imap.test".to_owned()), "{:?}", parsed.references);
        assert!(parsed.subject.starts_with("Re: 환불 문의 [#hd"), "{}", parsed.subject);
        let from = parsed.from.unwrap();
        assert_eq!((from.name.as_str(), from.address.as_str()), ("Acme 고객센터", "support@acme.test"));
        assert!(parsed.text.contains("3영업일"), "{}", parsed.text);
        assert!(parsed.html.unwrap_or_default().contains("<b>처리</b>"));
        let conversation = messages(&app, &ticket_id).await;
        assert!(conversation.last().unwrap()["body_text"].as_str().unwrap().contains("3영업일"), "{conversation:?}");
    }
}
