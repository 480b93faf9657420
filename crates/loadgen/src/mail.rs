//! The email channel's ingest: a corpus of Korean and English mail (EUC-KR and UTF-8, plain and
//! base64, new requests and replies that thread by `In-Reply-To`) delivered over SMTP to the
//! built-in listener by concurrent clients, timed until every message is a ticket or a message on
//! one; beside it, a bare parse of the same corpus on the same cores. With the mail servers of
//! `.ci/mail-servers`: a Dovecot folder fetched over IMAP, and agents' replies relayed through
//! Postfix.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use helpdesk_proto::{
    email::v1::{
        DeliveryState, GetMailboxRequest, ImapSettings, ListDeliveriesRequest, ListInboundMailRequest, Mailbox,
        MailboxSecrets, Security, SmtpSettings, UpsertMailboxRequest, email_service_client::EmailServiceClient,
    },
    ticketing::v1::{AddMessageRequest, ticket_service_client::TicketServiceClient},
};
use helpdesk_runtime::grpc::outgoing;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, address::Envelope};
use tonic::transport::Channel;

use crate::Stats;

const MAILBOX: &str = "bench";
const ADDRESS: &str = "bench@acme.test";

const KOREAN: &[&str] = &[
    "주문한 상품이 아직 도착하지 않았습니다. 배송 조회 부탁드립니다.",
    "결제가 두 번 승인되었습니다. 한 건은 취소해 주세요.",
    "환불 요청드립니다. 상품이 파손되어 도착했습니다.",
];
const ENGLISH: &[&str] = &[
    "My order has not arrived yet, could you check the tracking?",
    "I was charged twice for the same order, please refund one.",
    "The item arrived broken. I would like a replacement.",
];

/// `count` messages of a run: every third a reply to the message two before it.
pub(crate) fn corpus(count: usize, run: usize) -> Vec<(String, Vec<u8>)> {
    (0..count)
        .map(|n| {
            let sender = format!("customer{}-{run}@example.com", n / 3);
            let korean = n % 2 == 0;
            let body = if korean { KOREAN[n % KOREAN.len()] } else { ENGLISH[n % ENGLISH.len()] };
            let threading =
                if n % 3 == 2 { format!("In-Reply-To: <bench-{run}-{}@example.com>\r\n", n - 2) } else { String::new() };
            let head = format!(
                "From: Customer {n} <{sender}>\r\nTo: {ADDRESS}\r\nSubject: 문의 {n} order A-{n}\r\n\
                 Message-ID: <bench-{run}-{n}@example.com>\r\n{threading}Date: Tue, 1 Dec 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n"
            );
            let mut raw = head.into_bytes();
            if korean && n % 4 == 0 {
                raw.extend(b"Content-Type: text/plain; charset=euc-kr\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
                raw.extend(encoding_rs::EUC_KR.encode(body).0.iter());
                raw.extend(b"\r\n");
            } else {
                raw.extend(b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n");
                raw.extend(body.as_bytes());
                raw.extend(format!("\r\n\r\nOn Mon, 30 Nov 2026 at 09:00, Support <{ADDRESS}> wrote:\r\n> earlier\r\n").as_bytes());
            }
            (sender, raw)
        })
        .collect()
}

/// Parses every message of the corpus on two threads, as the platform has two cores.
pub(crate) fn bare_parse(corpus: &Arc<Vec<(String, Vec<u8>)>>) -> Stats {
    let started = Instant::now();
    let threads: Vec<_> = (0..2)
        .map(|half| {
            let corpus = corpus.clone();
            std::thread::spawn(move || {
                corpus.iter().skip(half).step_by(2).filter(|(_, raw)| helpdesk_mail::parse(raw).is_ok()).count()
            })
        })
        .collect();
    let parsed: usize = threads.into_iter().map(|thread| thread.join().unwrap_or_default()).sum();
    let latency_us = Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is valid"));
    Stats {
        scenario: "parse mail (bare mail-parser)",
        concurrency: 2,
        ops: parsed as u64,
        errors: (corpus.len() - parsed) as u64,
        elapsed: started.elapsed(),
        latency_us,
    }
}

/// Creates the benchmark's mailbox.
pub(crate) async fn mailbox(grpc: Channel, auth: &str) -> anyhow::Result<()> {
    let mailbox = Mailbox {
        id: MAILBOX.into(),
        address: ADDRESS.into(),
        enabled: true,
        sender_limit_per_hour: 10_000,
        ..Mailbox::default()
    };
    let request = UpsertMailboxRequest { mailbox: Some(mailbox), secrets: None };
    EmailServiceClient::new(grpc).upsert_mailbox(outgoing(request, Some(auth))).await?;
    Ok(())
}

/// Delivers the corpus over SMTP from `concurrency` clients, then waits until none is pending.
pub(crate) async fn ingest(
    smtp: SocketAddr,
    grpc: Channel,
    auth: &str,
    corpus: Arc<Vec<(String, Vec<u8>)>>,
    concurrency: usize,
) -> anyhow::Result<Stats> {
    let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string())
        .port(smtp.port())
        .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(concurrency as u32))
        .build();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (transport, corpus, next, errors) = (transport.clone(), corpus.clone(), next.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!("valid precision"));
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some((sender, raw)) = corpus.get(n) else { return latency };
                    let (Ok(from), Ok(to)) = (sender.parse(), ADDRESS.parse()) else { continue };
                    let Ok(envelope) = Envelope::new(Some(from), vec![to]) else { continue };
                    let sent = Instant::now();
                    match transport.send_raw(&envelope, raw).await {
                        Ok(_) => {
                            let _ = latency.record(sent.elapsed().as_micros() as u64);
                        }
                        Err(error) => {
                            if errors.fetch_add(1, Ordering::Relaxed) == 0 {
                                eprintln!("mail ingest: {error}");
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let mut latency_us = Histogram::<u64>::new(3)?;
    for worker in workers {
        latency_us.add(worker.await?)?;
    }
    let mut client = EmailServiceClient::new(grpc);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let request =
            ListInboundMailRequest { mailbox_id: MAILBOX.into(), page_size: 1, pending: true, ..Default::default() };
        let pending = client.list_inbound_mail(outgoing(request, Some(auth))).await?.into_inner();
        if pending.mail.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(Stats {
        scenario: "mail ingest (SMTP until threaded)",
        concurrency,
        ops: corpus.len() as u64 - errors.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        elapsed: started.elapsed(),
        latency_us,
    })
}

/// A Dovecot user of the run's own (every user logs in with the password `.ci/mail-servers`
/// gives them).
const IMAP_PASSWORD: &str = "test-password";

/// Fills a fresh IMAP folder with `count` messages of the corpus (IMAP APPEND, untimed), then
/// times a new mailbox fetching them: until all are stored, and until all are threaded.
pub(crate) async fn imap_fetch(
    imap: SocketAddr,
    grpc: Channel,
    auth: &str,
    count: usize,
) -> anyhow::Result<Vec<Stats>> {
    let user = format!("bench-{}@imap.test", uuid::Uuid::new_v4().simple());
    let tcp = tokio::net::TcpStream::connect(imap).await?;
    let mut client = async_imap::Client::new(tcp);
    client.read_response().await?;
    let mut session = client.login(&user, IMAP_PASSWORD).await.map_err(|(error, _)| error)?;
    let appended = Instant::now();
    for (_, raw) in corpus(count, 1_000) {
        session.append("INBOX", None, None, &raw).await?;
    }
    session.logout().await?;
    eprintln!("imap fetch: {count} messages appended in {:.1} s", appended.elapsed().as_secs_f64());

    let mailbox = Mailbox {
        id: "bench-imap".into(),
        address: "bench-imap@acme.test".into(),
        enabled: true,
        sender_limit_per_hour: 10_000,
        imap: Some(ImapSettings {
            host: imap.ip().to_string(),
            port: i32::from(imap.port()),
            security: Security::None as i32,
            username: user,
            ..ImapSettings::default()
        }),
        ..Mailbox::default()
    };
    let secrets = MailboxSecrets { imap_password: IMAP_PASSWORD.into(), ..MailboxSecrets::default() };
    let mut client = EmailServiceClient::new(grpc);
    let started = Instant::now();
    let request = UpsertMailboxRequest { mailbox: Some(mailbox), secrets: Some(secrets) };
    client.upsert_mailbox(outgoing(request, Some(auth))).await?;
    let deadline = started + Duration::from_secs(600);
    let mut fetched_after = None;
    loop {
        let request = GetMailboxRequest { mailbox_id: "bench-imap".into() };
        let mailbox = client.get_mailbox(outgoing(request, Some(auth))).await?.into_inner();
        let status = mailbox.imap.and_then(|imap| imap.status).unwrap_or_default();
        if fetched_after.is_none() && status.messages_fetched >= count as i64 {
            fetched_after = Some(started.elapsed());
        }
        if fetched_after.is_some() {
            let request = ListInboundMailRequest {
                mailbox_id: "bench-imap".into(),
                page_size: 1,
                pending: true,
                ..Default::default()
            };
            if client.list_inbound_mail(outgoing(request, Some(auth))).await?.into_inner().mail.is_empty() {
                break;
            }
        }
        anyhow::ensure!(Instant::now() < deadline, "the IMAP mailbox was not fetched within 10 minutes");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = |scenario, elapsed| Stats {
        scenario,
        concurrency: 1,
        ops: count as u64,
        errors: 0,
        elapsed,
        latency_us: Histogram::new(3).unwrap_or_else(|_| unreachable!("valid precision")),
    };
    Ok(vec![
        stats("IMAP fetch (until stored)", fetched_after.unwrap_or_default()),
        stats("IMAP fetch (until threaded)", started.elapsed()),
    ])
}

/// Opens `tickets` email tickets through the listener, then posts `count` agent replies across
/// them from `concurrency` clients and times until every reply is relayed (to Postfix, which
/// delivers them to Dovecot).
pub(crate) async fn outbound(
    smtp: SocketAddr,
    relay: SocketAddr,
    grpc: Channel,
    auth: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<Stats> {
    let mailbox_id = format!("bench-out-{concurrency}");
    let address = format!("{mailbox_id}@acme.test");
    let mailbox = Mailbox {
        id: mailbox_id.clone(),
        address: address.clone(),
        enabled: true,
        sender_limit_per_hour: 10_000,
        smtp: Some(SmtpSettings {
            host: relay.ip().to_string(),
            port: i32::from(relay.port()),
            security: Security::None as i32,
            ..SmtpSettings::default()
        }),
        ..Mailbox::default()
    };
    let mut email = EmailServiceClient::new(grpc.clone());
    let request = UpsertMailboxRequest { mailbox: Some(mailbox), secrets: None };
    email.upsert_mailbox(outgoing(request, Some(auth))).await?;
    let transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.ip().to_string()).port(smtp.port()).build();
    const TICKETS: usize = 100;
    for n in 0..TICKETS {
        let sender = format!("reader{n}@out.example.com");
        let raw = format!(
            "From: Reader {n} <{sender}>\r\nTo: {address}\r\nSubject: 문의 {n}\r\nMessage-ID: <out-{concurrency}-{n}@example.com>\r\n\
             Content-Type: text/plain; charset=utf-8\r\n\r\n배송 문의드립니다.\r\n"
        );
        let envelope = Envelope::new(Some(sender.parse()?), vec![address.parse()?])?;
        transport.send_raw(&envelope, raw.as_bytes()).await?;
    }
    let mut tickets = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while tickets.len() < TICKETS {
        anyhow::ensure!(Instant::now() < deadline, "the benchmark's tickets were not opened");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let request = ListInboundMailRequest { mailbox_id: mailbox_id.clone(), page_size: 200, ..Default::default() };
        let mail = email.list_inbound_mail(outgoing(request, Some(auth))).await?.into_inner().mail;
        tickets = mail.into_iter().map(|mail| mail.ticket_id).filter(|id| !id.is_empty()).collect();
    }
    let tickets = Arc::new(tickets);

    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (grpc, auth, tickets, next) = (grpc.clone(), auth.to_owned(), tickets.clone(), next.clone());
            tokio::spawn(async move {
                let mut client = TicketServiceClient::new(grpc);
                let mut latency = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!("valid precision"));
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    if n >= count {
                        return anyhow::Ok(latency);
                    }
                    let request = AddMessageRequest {
                        ticket_id: tickets[n % tickets.len()].clone(),
                        body_text: format!("답변 {n}: 내일 도착 예정입니다."),
                        ..Default::default()
                    };
                    let sent = Instant::now();
                    client.add_message(outgoing(request, Some(&auth))).await?;
                    let _ = latency.record(sent.elapsed().as_micros() as u64);
                }
            })
        })
        .collect();
    let mut latency_us = Histogram::<u64>::new(3)?;
    for worker in workers {
        latency_us.add(worker.await??)?;
    }
    let posted = started.elapsed();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let mut sent = 0;
        for ticket_id in tickets.iter() {
            let request = ListDeliveriesRequest { ticket_id: ticket_id.clone() };
            let deliveries = email.list_deliveries(outgoing(request, Some(auth))).await?.into_inner().deliveries;
            sent += deliveries.iter().filter(|delivery| delivery.state() == DeliveryState::Sent).count();
        }
        if sent >= count || Instant::now() > deadline {
            eprintln!(
                "outbound: {count} replies posted in {:.2} s, {sent} relayed after {:.2} s",
                posted.as_secs_f64(),
                started.elapsed().as_secs_f64()
            );
            return Ok(Stats {
                scenario: "replies relayed (post until sent)",
                concurrency,
                ops: sent as u64,
                errors: (count - sent.min(count)) as u64,
                elapsed: started.elapsed(),
                latency_us,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A holiday-peak burst: `count` messages at once over SMTP from 64 clients while agents keep
/// reading tickets over REST; the reads' latency beside the same reads on a quiet platform, and
/// every message accounted for (stored and threaded, none refused).
pub(crate) async fn burst(
    smtp: SocketAddr,
    grpc: Channel,
    http: reqwest::Client,
    base: &str,
    auth: &str,
    count: usize,
) -> anyhow::Result<Vec<Stats>> {
    mailbox(grpc.clone(), auth).await?;
    // Tickets for the agents to read.
    ingest(smtp, grpc.clone(), auth, Arc::new(corpus(300, 2_000)), 8).await?;
    let listed: serde_json::Value = http
        .get(format!("{base}/v1/tickets?channel=email&page_size=100"))
        .header("authorization", auth)
        .send()
        .await?
        .json()
        .await?;
    let ids: Arc<Vec<String>> = Arc::new(
        listed["tickets"]
            .as_array()
            .map(|tickets| tickets.iter().filter_map(|ticket| ticket["id"].as_str().map(str::to_owned)).collect())
            .unwrap_or_default(),
    );
    anyhow::ensure!(!ids.is_empty(), "no tickets to read");
    let quiet = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = tokio::spawn(read_tickets(http.clone(), base.to_owned(), auth.to_owned(), ids.clone(), quiet.clone()));
    tokio::time::sleep(Duration::from_secs(5)).await;
    quiet.store(true, Ordering::Relaxed);
    let mut quiet_reads = reads.await??;
    quiet_reads.scenario = "get ticket (REST), quiet";

    let during = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reads = tokio::spawn(read_tickets(http, base.to_owned(), auth.to_owned(), ids, during.clone()));
    let corpus = Arc::new(corpus(count, 3_000));
    let mut absorbed = ingest(smtp, grpc.clone(), auth, corpus, 64).await?;
    during.store(true, Ordering::Relaxed);
    let mut burst_reads = reads.await??;
    burst_reads.scenario = "get ticket (REST), during the burst";
    absorbed.scenario = "burst over SMTP (until threaded)";
    // Every message of the burst is on record, and none is still pending.
    let mut client = EmailServiceClient::new(grpc);
    let (mut recorded, mut page_token) = (0, String::new());
    loop {
        let request = ListInboundMailRequest {
            mailbox_id: MAILBOX.into(),
            page_size: 200,
            page_token: page_token.clone(),
            ..Default::default()
        };
        let page = client.list_inbound_mail(outgoing(request, Some(auth))).await?.into_inner();
        recorded += page.mail.iter().filter(|mail| mail.subject.contains("문의")).count();
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    eprintln!("burst: {recorded} messages on record for the mailbox (300 before the burst, {count} in it)");
    Ok(vec![quiet_reads, absorbed, burst_reads])
}

/// REST ticket reads from 8 agents until `stop`.
async fn read_tickets(
    http: reqwest::Client,
    base: String,
    auth: String,
    ids: Arc<Vec<String>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> anyhow::Result<Stats> {
    let started = Instant::now();
    let workers: Vec<_> = (0..8)
        .map(|worker| {
            let (http, base, auth, ids, stop) = (http.clone(), base.clone(), auth.clone(), ids.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latency = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!("valid precision"));
                let mut n = worker;
                while !stop.load(Ordering::Relaxed) {
                    let id = &ids[(n * 7919) % ids.len()];
                    n += 8;
                    let sent = Instant::now();
                    let response =
                        http.get(format!("{base}/v1/tickets/{id}")).header("authorization", &auth).send().await?;
                    anyhow::ensure!(response.status().is_success(), "status {}", response.status());
                    response.bytes().await?;
                    let _ = latency.record(sent.elapsed().as_micros() as u64);
                }
                anyhow::Ok(latency)
            })
        })
        .collect();
    let mut latency_us = Histogram::<u64>::new(3)?;
    for worker in workers {
        latency_us.add(worker.await??)?;
    }
    Ok(Stats { scenario: "", concurrency: 8, ops: latency_us.len(), errors: 0, elapsed: started.elapsed(), latency_us })
}
