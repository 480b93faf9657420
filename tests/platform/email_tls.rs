//! TLS on the email channel's connections: STARTTLS on the built-in SMTP listener, with a
//! certificate of the test's own, required before any mail and refusing commands smuggled in
//! before the handshake; and IMAP over TLS and STARTTLS to Dovecot, whose certificate comes from
//! a private CA (`.ci/mail-servers`) that only `email.tls_ca_file` makes trusted.

use helpdesk_tests::{Options, TestApp, spawn_app_with};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    address::Envelope,
    transport::smtp::client::{Certificate, Tls, TlsParameters},
};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{
    email::{create_mailbox, first_message, poll, settled_mail},
    email_servers::{append, imap_mailbox, unique_address},
};

/// The platform with a listener that offers STARTTLS with a fresh certificate for `localhost`
/// and takes mail only over it; returns the certificate (PEM) with it.
async fn platform_with_starttls(dir: &std::path::Path) -> (TestApp, String) {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert, key) = (dir.join("mx.pem"), dir.join("mx.key"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let env = vec![
        ("HELPDESK_EMAIL__SMTP_TLS_CERT_FILE".to_owned(), cert.display().to_string()),
        ("HELPDESK_EMAIL__SMTP_TLS_KEY_FILE".to_owned(), key.display().to_string()),
        ("HELPDESK_EMAIL__SMTP_REQUIRE_TLS".to_owned(), "true".to_owned()),
    ];
    (spawn_app_with(Options { env, ..Options::default() }).await, certified.cert.pem())
}

fn transport(app: &TestApp, tls: Tls) -> AsyncSmtpTransport<Tokio1Executor> {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1").port(app.smtp_addr.port()).tls(tls).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_smtp_listener_takes_mail_over_starttls_only() {
    let dir = tempfile::tempdir().unwrap();
    let (app, cert) = platform_with_starttls(dir.path()).await;
    create_mailbox(&app, "support", "support@acme.test").await;
    let envelope =
        Envelope::new(Some("kim@example.com".parse().unwrap()), vec!["support@acme.test".parse().unwrap()]).unwrap();

    let refused = transport(&app, Tls::None).send_raw(&envelope, &first_message()).await.unwrap_err();
    assert!(refused.to_string().contains("STARTTLS"), "{refused}");

    let parameters = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(cert.as_bytes()).unwrap())
        .build_rustls()
        .unwrap();
    transport(&app, Tls::Required(parameters)).send_raw(&envelope, &first_message()).await.unwrap();
    let mail = settled_mail(&app, "support", 1).await;
    assert_eq!(mail[0]["outcome"], "ticket_created", "{mail:?}");

    // A certificate the client does not trust: no mail goes.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let untrusting = TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(Certificate::from_pem(other.cert.pem().as_bytes()).unwrap())
        .build_rustls()
        .unwrap();
    assert!(transport(&app, Tls::Required(untrusting)).send_raw(&envelope, &first_message()).await.is_err());

    // Commands sent along with STARTTLS, before the handshake, are not taken as encrypted ones.
    let mut raw = tokio::net::TcpStream::connect(app.smtp_addr).await.unwrap();
    raw.write_all(b"EHLO attacker\r\nSTARTTLS\r\nMAIL FROM:<a@example.com>\r\n").await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(std::time::Duration::from_secs(5), raw.read_to_string(&mut answer)).await.unwrap().unwrap();
    assert!(answer.contains("250-STARTTLS"), "{answer}");
    assert!(answer.contains("501 5.5.4"), "{answer}");
    assert!(!answer.contains("220 2.0.0"), "no handshake after smuggled commands: {answer}");
    assert_eq!(settled_mail(&app, "support", 1).await.len(), 1);
    app.stop().await;
}

/// Dovecot's IMAPS address and the private CA its certificate is from, if `.ci/mail-servers`
/// started it; the plain IMAP address (for APPEND) comes with them.
fn tls_servers() -> Option<(std::net::SocketAddr, std::net::SocketAddr, String)> {
    let imaps = std::env::var("HELPDESK_TEST_IMAPS").ok().and_then(|addr| addr.parse().ok());
    let ca = std::env::var("HELPDESK_TEST_MAIL_CA").ok();
    let servers = helpdesk_tests::imap_server().zip(imaps).zip(ca).map(|((imap, imaps), ca)| (imap, imaps, ca));
    if servers.is_none() {
        eprintln!("HELPDESK_TEST_IMAPS / HELPDESK_TEST_MAIL_CA are not set: run `eval \"$(bash .ci/mail-servers)\"`");
    }
    servers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imap_over_tls_and_starttls_trusts_the_configured_ca_and_nothing_else() {
    let Some((imap, imaps, ca)) = tls_servers() else { return };
    // Dovecot's certificate names localhost: the mailbox must too, for the name to be checked.
    let localhost = |port: u16| std::net::SocketAddr::from(([127, 0, 0, 1], port));

    // Without the CA, the certificate is refused and shown to admins; nothing is fetched.
    let untrusting = spawn_app_with(Options::default()).await;
    let user = unique_address("tls");
    append(imap, &user, &[&first_message()]).await;
    let mailbox = json!({ "imap": { "host": "localhost", "port": imaps.port(), "security": "tls", "username": user } });
    imap_mailbox(&untrusting, localhost(imaps.port()), &user, helpdesk_tests::IMAP_PASSWORD, mailbox.clone()).await;
    let refused = poll(&untrusting, &untrusting.admin_key, "/v1/mailboxes/support", |mailbox| {
        mailbox["imap"]["status"]["last_error"].as_str().is_some_and(|error| !error.is_empty())
    })
    .await;
    let error = refused["imap"]["status"]["last_error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("certificate") || error.contains("issuer"), "{refused}");
    assert_eq!(untrusting.get("/v1/mailboxes/support/mail", &untrusting.admin_key).await.1["mail"], json!([]));
    untrusting.stop().await;

    // With it, over implicit TLS and over STARTTLS alike.
    let env = vec![("HELPDESK_EMAIL__TLS_CA_FILE".to_owned(), ca)];
    let app = spawn_app_with(Options { env, ..Options::default() }).await;
    imap_mailbox(&app, localhost(imaps.port()), &user, helpdesk_tests::IMAP_PASSWORD, mailbox).await;
    let mail = settled_mail(&app, "support", 1).await;
    assert_eq!(mail[0]["outcome"], "ticket_created", "{mail:?}");

    let other = unique_address("starttls");
    append(imap, &other, &[&first_message()]).await;
    let starttls = json!({ "id": "starttls", "address": "starttls@acme.test", "enabled": true,
        "imap": { "host": "localhost", "port": imap.port(), "security": "starttls", "username": other } });
    let body = json!({ "mailbox": starttls, "secrets": { "imap_password": helpdesk_tests::IMAP_PASSWORD } });
    let (status, created) = app.call(reqwest::Method::PUT, "/v1/mailboxes/starttls", &app.admin_key, Some(body)).await;
    assert_eq!(status, 200, "{created}");
    let fetched = poll(&app, &app.admin_key, "/v1/mailboxes/starttls", |mailbox| {
        mailbox["imap"]["status"]["messages_fetched"].as_i64() == Some(1)
    })
    .await;
    assert!(fetched["imap"]["status"]["last_error"].is_null(), "{fetched}");
    // The same message as the first mailbox's: still one ticket in the tenant.
    let (_, tickets) = app.get("/v1/tickets?channel=email", &app.admin_key).await;
    assert_eq!(tickets["tickets"].as_array().map(Vec::len), Some(1), "{tickets}");
    app.stop().await;
}
