//! The email channel's ingest: a corpus of Korean and English mail (EUC-KR and UTF-8, plain and
//! base64, new requests and replies that thread by `In-Reply-To`) delivered over SMTP to the
//! built-in listener by concurrent clients, timed until every message is a ticket or a message on
//! one; beside it, a bare parse of the same corpus on the same cores.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use helpdesk_proto::email::v1::{
    ListInboundMailRequest, Mailbox, UpsertMailboxRequest, email_service_client::EmailServiceClient,
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
