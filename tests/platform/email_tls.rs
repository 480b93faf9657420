//! TLS on the email channel's connections: STARTTLS on the built-in SMTP listener, with a
//! certificate of the test's own, required before any mail and refusing commands smuggled in
//! before the handshake.

use helpdesk_tests::{Options, TestApp, spawn_app_with};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    address::Envelope,
    transport::smtp::client::{Certificate, Tls, TlsParameters},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::email::{create_mailbox, first_message, settled_mail};

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
