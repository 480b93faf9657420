//! Routing at holiday-peak scale, on a real database: 1,000 agents, 100 queues, 100,000 open
//! tickets routed through the router's API (each call durable before it returns), then a restart,
//! then SLA timers held and fired.
//!
//! `cargo bench -p helpdesk-routing --bench routing -- [--tickets N] [--timers N] [--concurrency N]
//! [--postgres URL]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use helpdesk_proto::{
    common::v1::{Channel, Priority},
    routing::v1::{
        Agent, BusinessCalendar, ChannelCapacity, Presence, Queue, RouteTicketRequest, Skill, SlaPolicy, Strategy,
        WeeklyShift,
    },
};
use helpdesk_routing::{Router, RouterSettings, open_router};
use helpdesk_runtime::config::DatabaseConfig;

const TENANT: &str = "bench";
const AGENTS: usize = 1_000;
const QUEUES: usize = 100;
/// Every this many tickets, one has a short SLA target and fires during the run.
const SOON: usize = 10;

struct Options {
    tickets: usize,
    timers: usize,
    concurrency: usize,
    postgres: Option<String>,
}

fn options() -> Options {
    let mut options = Options { tickets: 100_000, timers: 1_000_000, concurrency: 64, postgres: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--tickets" => options.tickets = args.next().and_then(|n| n.parse().ok()).expect("--tickets N"),
            "--timers" => options.timers = args.next().and_then(|n| n.parse().ok()).expect("--timers N"),
            "--concurrency" => options.concurrency = args.next().and_then(|n| n.parse().ok()).expect("--concurrency N"),
            "--postgres" => options.postgres = args.next(),
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

fn language(n: usize) -> &'static str {
    if n.is_multiple_of(3) { "en" } else { "ko" }
}

async fn configure(router: &Router) {
    let shifts = (1..=7).map(|weekday| WeeklyShift { weekday, start: "00:00".into(), end: "24:00".into() });
    let calendar = BusinessCalendar {
        id: "always".into(),
        time_zone: "Asia/Seoul".into(),
        shifts: shifts.collect(),
        ..Default::default()
    };
    router.upsert_calendar(TENANT, calendar).await.unwrap();
    // One ticket in ten has a two-minute first-response target, so its warning (at 75 %) comes due
    // 90 s after it arrives; the rest hold timers hours ahead.
    for policy in [
        SlaPolicy {
            id: "soon".into(),
            position: 1,
            tags: vec!["soon".into()],
            calendar_id: "always".into(),
            first_response_minutes: 2,
            ..SlaPolicy::default()
        },
        SlaPolicy {
            id: "standard".into(),
            position: 2,
            calendar_id: "always".into(),
            first_response_minutes: 600,
            resolution_minutes: 6000,
            ..SlaPolicy::default()
        },
    ] {
        router.upsert_policy(TENANT, policy).await.unwrap();
    }
    let strategies = [Strategy::RoundRobin, Strategy::LeastLoaded, Strategy::BestSkill];
    for q in 0..QUEUES {
        let queue = Queue {
            id: format!("q{q}"),
            position: q as i32,
            language: language(q).into(),
            match_tags: vec![format!("topic{q}")],
            required_skills: vec![Skill { name: format!("skill{}", q % 10), level: 3 }],
            strategy: strategies[q % 3] as i32,
            ..Queue::default()
        };
        router.upsert_queue(TENANT, queue).await.unwrap();
    }
    for a in 0..AGENTS {
        let agent = Agent {
            id: format!("agent{a}"),
            languages: vec![language(a).into()],
            skills: (0..3)
                .map(|k| Skill { name: format!("skill{}", (a + k * 3) % 10), level: 3 + (a % 7) as i32 })
                .collect(),
            capacities: vec![
                ChannelCapacity { channel: Channel::Email as i32, capacity: 40 },
                ChannelCapacity { channel: Channel::Chat as i32, capacity: 3 },
            ],
            ..Agent::default()
        };
        router.upsert_agent(TENANT, agent).await.unwrap();
        router.set_presence(TENANT, &format!("agent{a}"), Presence::Online as i32).await.unwrap();
    }
}

fn request(n: usize) -> RouteTicketRequest {
    let q = n % QUEUES;
    RouteTicketRequest {
        ticket_id: format!("t{n}"),
        channel: if n.is_multiple_of(5) { Channel::Chat } else { Channel::Email } as i32,
        priority: [Priority::Low, Priority::Normal, Priority::High, Priority::Urgent][n % 4] as i32,
        language: language(q).into(),
        tags: if n.is_multiple_of(SOON) { vec![format!("topic{q}"), "soon".into()] } else { vec![format!("topic{q}")] },
        ..RouteTicketRequest::default()
    }
}

/// Routes tickets `range` with `concurrency` callers; returns the latency histogram and elapsed.
async fn route_all(
    router: &Arc<Router>,
    range: std::ops::Range<usize>,
    concurrency: usize,
) -> (Histogram<u64>, Duration) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(range.start));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (router, next, end) = (router.clone(), next.clone(), range.end);
            tokio::spawn(async move {
                let mut latencies = Histogram::<u64>::new(3).unwrap();
                loop {
                    let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if n >= end {
                        return latencies;
                    }
                    let call = Instant::now();
                    router.route_ticket(TENANT, request(n)).await.unwrap();
                    latencies.record(call.elapsed().as_micros() as u64).unwrap();
                }
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new(3).unwrap();
    for worker in workers {
        all.add(worker.await.unwrap()).unwrap();
    }
    (all, started.elapsed())
}

fn ms(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

async fn open(options: &Options, dir: &std::path::Path) -> Arc<Router> {
    let config = DatabaseConfig::new(options.postgres.clone(), 8);
    open_router(&config, dir, RouterSettings::default()).await.unwrap()
}

#[tokio::main]
async fn main() {
    let mut options = options();
    let dir = tempfile::tempdir().unwrap();
    let base = options.postgres.clone();
    if let Some(base) = &base {
        options.postgres = Some(helpdesk_runtime::db::create_scratch_database(base, "helpdesk_bench").await.unwrap());
    }
    let backend = if options.postgres.is_some() { "PostgreSQL" } else { "SQLite" };
    println!("routing benchmark on {backend}: {AGENTS} agents, {QUEUES} queues, concurrency {}", options.concurrency);

    let router = open(&options, dir.path()).await;
    let setup = Instant::now();
    configure(&router).await;
    println!("configured in {:.1} s", setup.elapsed().as_secs_f64());

    let (latency, elapsed) = route_all(&router, 0..options.tickets, options.concurrency).await;
    println!(
        "enqueue-and-assign: {} tickets in {:.1} s = {:.0}/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        options.tickets,
        elapsed.as_secs_f64(),
        options.tickets as f64 / elapsed.as_secs_f64(),
        ms(latency.value_at_quantile(0.5)),
        ms(latency.value_at_quantile(0.99)),
        ms(latency.max())
    );
    // A single caller: the decision plus its commit, without queueing behind other callers.
    let (single, _) = route_all(&router, options.tickets..options.tickets + 2_000, 1).await;
    println!(
        "routing decision (one caller, {} open tickets): p50 {:.2} ms, p99 {:.2} ms",
        router.open_items(),
        ms(single.value_at_quantile(0.5)),
        ms(single.value_at_quantile(0.99))
    );
    let open_items = router.open_items();
    drop(router);

    let restart = Instant::now();
    let router = open(&options, dir.path()).await;
    println!(
        "restart to serving: {:.2} s with {} open tickets and {} timers loaded",
        restart.elapsed().as_secs_f64(),
        open_items,
        router.pending_timers()
    );

    // Hold `timers` pending SLA timers and fire those that come due as the clock reaches them:
    // every 100 ms, as the service does, while more tickets keep arriving.
    let from = options.tickets + 2_000;
    let more = options.timers.saturating_sub(router.pending_timers());
    let expected = (0..from + more).filter(|n| n.is_multiple_of(SOON)).count();
    let firing = {
        let router = router.clone();
        tokio::spawn(async move {
            let mut lags = Histogram::<u64>::new(3).unwrap();
            let deadline = Instant::now() + Duration::from_secs(400);
            while Instant::now() < deadline {
                for lag in router.fire_due(chrono::Utc::now().timestamp_millis()).await.unwrap() {
                    lags.record(lag.max(0) as u64).unwrap();
                }
                if lags.len() as usize >= expected {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            lags
        })
    };
    let (_, elapsed) = route_all(&router, from..from + more, options.concurrency).await;
    println!(
        "{} pending SLA timers after routing {more} more tickets in {:.1} s",
        router.pending_timers(),
        elapsed.as_secs_f64()
    );
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| status.lines().find(|line| line.starts_with("VmRSS")).map(str::to_owned))
        .unwrap_or_default();
    println!("memory: {rss}");
    let lags = firing.await.unwrap();
    println!(
        "fired {} of {expected} first-response warnings due: lag p50 {} ms, p99 {} ms, max {} ms",
        lags.len(),
        lags.value_at_quantile(0.5),
        lags.value_at_quantile(0.99),
        lags.max()
    );
    drop(router);
    if let (Some(base), Some(url)) = (base, options.postgres) {
        helpdesk_runtime::db::drop_scratch_database(&base, &url).await.unwrap();
    }
}
