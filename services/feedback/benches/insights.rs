//! Insights at scale, on a real database: the events of 1,000,000 generated tickets (created,
//! answered, solved, some reopened, routed with SLAs) and 200,000 survey answers are recorded
//! through the ingestion path, the projections are rebuilt from the log, and every report runs
//! over a month and a year of them.
//!
//! `cargo bench -p helpdesk-feedback --bench insights -- [--tickets N] [--responses N]
//! [--runs N] [--postgres URL]`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{sync::Arc, time::Instant};

use hdrhistogram::Histogram;
use helpdesk_events::EmbeddedBus;
use helpdesk_feedback::{Insights, Scope};
use helpdesk_proto::{
    common::v1::{AuthorKind, Channel},
    events::v1::{
        Event, FollowUpClosed, FollowUpOpened, MessageAdded, SlaAlert, SurveyAnswered, TicketCreated, TicketRouted,
        TicketStatusChanged, event::Payload,
    },
    feedback::v1::{FollowUp, GroupBy, ReportKind, SurveyKind, SurveyResponse},
    routing::v1::WorkItem,
    ticketing::v1::{Message, Status, Ticket, Visibility},
};
use helpdesk_runtime::{config::DatabaseConfig, service::Service};

const TENANT: &str = "bench";
const DAY: i64 = 86_400;

struct Options {
    tickets: usize,
    responses: usize,
    runs: usize,
    postgres: Option<String>,
}

fn options() -> Options {
    let mut options = Options { tickets: 1_000_000, responses: 200_000, runs: 40, postgres: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || args.next().and_then(|n| n.parse().ok()).expect("a number");
        match arg.as_str() {
            "--tickets" => options.tickets = number(),
            "--responses" => options.responses = number(),
            "--runs" => options.runs = number(),
            "--postgres" => options.postgres = args.next(),
            _ => {} // cargo bench passes --bench
        }
    }
    options
}

/// A small deterministic generator (xorshift), so every run sees the same tickets.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const SUBJECTS: &[&str] = &[
    "Refund not received for my order",
    "Cannot log in to my account",
    "Package delivery delayed",
    "Charged twice on my card",
    "App crashes on startup",
    "Change my shipping address",
    "환불이 아직 안 들어왔어요",
    "로그인이 안 됩니다",
    "배송 지연 문의",
    "카드 이중 결제",
];
const TAGS: &[&str] =
    &["billing", "refund", "login", "shipping", "bug", "vip", "account", "payment", "mobile", "delay"];
const CHANNELS: &[Channel] = &[Channel::Email, Channel::Chat, Channel::Phone, Channel::Web, Channel::Social];

fn at(seconds: i64) -> Option<pbjson_types::Timestamp> {
    Some(pbjson_types::Timestamp { seconds, nanos: 0 })
}

/// Event ids are unique across runs' tickets by construction: ticket number and step.
fn event(id: String, aggregate: (&str, &str), sequence: i64, occurred: i64, payload: Payload) -> Event {
    Event {
        id,
        tenant_id: TENANT.to_owned(),
        aggregate_type: aggregate.0.to_owned(),
        aggregate_id: aggregate.1.to_owned(),
        sequence,
        occurred_at: at(occurred),
        actor_kind: AuthorKind::System as i32,
        actor_id: String::new(),
        payload: Some(payload),
    }
}

fn status(ticket: &str, from: Status, to: Status) -> Payload {
    Payload::TicketStatusChanged(TicketStatusChanged { ticket_id: ticket.to_owned(), from: from as i32, to: to as i32 })
}

/// The events of ticket `n`, created within the year before `now`.
/// What an answer carries from its ticket: id, agent, team, channel, tags and when it was solved.
type Handled = (String, String, String, i32, Vec<String>, i64);

fn ticket_events(n: usize, now: i64, random: &mut Random, out: &mut Vec<Event>) -> Handled {
    let id = format!("t{n}");
    // A rising share of shipping trouble in the last week, for the trends report.
    let recent = random.chance(3);
    let created =
        if recent { now - random.below(7 * DAY as u64) as i64 } else { now - random.below(365 * DAY as u64) as i64 };
    let subject = if recent { "배송 지연 문의" } else { SUBJECTS[random.below(SUBJECTS.len() as u64) as usize] };
    let channel = CHANNELS[random.below(CHANNELS.len() as u64) as usize] as i32;
    let agent = format!("agent-{}", random.below(60));
    let team = format!("team-{}", random.below(8));
    let mut tags = vec![TAGS[random.below(TAGS.len() as u64) as usize].to_owned()];
    if random.chance(30) {
        tags.push(TAGS[random.below(TAGS.len() as u64) as usize].to_owned());
    }
    let ticket = Ticket {
        id: id.clone(),
        tenant_id: TENANT.to_owned(),
        subject: subject.to_owned(),
        assignee_id: agent.clone(),
        group: team.clone(),
        channel,
        status: Status::New as i32,
        tags: tags.clone(),
        created_at: at(created),
        ..Ticket::default()
    };
    let mut sequence = 0;
    let mut push = |out: &mut Vec<Event>, occurred: i64, payload: Payload| {
        sequence += 1;
        out.push(event(format!("{id}-{sequence}"), ("ticket", &id), sequence, occurred, payload));
    };
    push(out, created, Payload::TicketCreated(TicketCreated { ticket: Some(ticket) }));
    let replied = created + 60 + random.below(8 * 3600) as i64;
    let reply = Message {
        ticket_id: id.clone(),
        author_kind: AuthorKind::Agent as i32,
        author_id: agent.clone(),
        visibility: Visibility::Public as i32,
        created_at: at(replied),
        ..Message::default()
    };
    push(out, replied, Payload::MessageAdded(MessageAdded { ticket_id: id.clone(), message: Some(reply) }));
    let solved = replied + random.below(3 * DAY as u64) as i64;
    // A tenth of tickets are still open.
    if random.chance(90) && solved < now {
        push(out, solved, status(&id, Status::Open, Status::Solved));
        if random.chance(8) {
            push(out, solved + 3600, status(&id, Status::Solved, Status::Open));
            push(out, solved + 7200, status(&id, Status::Open, Status::Solved));
        }
    }
    if random.chance(50) {
        let item = WorkItem {
            ticket_id: id.clone(),
            assignee_id: agent.clone(),
            sla_due_at: at(created + 4 * 3600),
            ..WorkItem::default()
        };
        out.push(event(
            format!("{id}-r1"),
            ("routing", &id),
            1,
            created + 1,
            Payload::TicketRouted(TicketRouted { item: Some(item) }),
        ));
        if random.chance(12) {
            let alert = SlaAlert { ticket_id: id.clone(), target: None, breached: true };
            out.push(event(format!("{id}-r2"), ("routing", &id), 2, created + 4 * 3600, Payload::SlaAlert(alert)));
        }
    }
    (id, agent, team, channel, tags, solved.min(now))
}

fn answer_events(n: usize, ticket: &Handled, random: &mut Random, out: &mut Vec<Event>) {
    let (ticket_id, agent, team, channel, tags, solved) = ticket;
    let (kind, score) = match random.below(20) {
        0..12 => (SurveyKind::Csat, 1 + random.below(5) as i32),
        12..17 => (SurveyKind::Nps, random.below(11) as i32),
        _ => (SurveyKind::Ces, 1 + random.below(7) as i32),
    };
    let unhappy = match kind {
        SurveyKind::Csat => score <= 2,
        SurveyKind::Nps => score <= 6,
        _ => score <= 3,
    };
    let id = format!("r{n}");
    let answered = solved + 3600;
    let follow_up_id = if unhappy { format!("f{n}") } else { String::new() };
    let response = SurveyResponse {
        id: id.clone(),
        kind: kind as i32,
        ticket_id: ticket_id.clone(),
        agent_id: agent.clone(),
        team: team.clone(),
        channel: *channel,
        tags: tags.clone(),
        score,
        revision: 1,
        submitted_at: at(answered),
        follow_up_id: follow_up_id.clone(),
        agent_rating: random.chance(70).then(|| 1.0 + random.below(5) as f64),
        ..SurveyResponse::default()
    };
    out.push(event(
        format!("{id}-1"),
        ("survey_response", &id),
        1,
        answered,
        Payload::SurveyAnswered(SurveyAnswered { response: Some(response) }),
    ));
    if unhappy {
        let follow_up = FollowUp {
            id: follow_up_id.clone(),
            ticket_id: ticket_id.clone(),
            team: team.clone(),
            score,
            ..FollowUp::default()
        };
        out.push(event(
            format!("{follow_up_id}-1"),
            ("follow_up", &follow_up_id),
            1,
            answered,
            Payload::FollowUpOpened(FollowUpOpened { follow_up: Some(follow_up.clone()) }),
        ));
        if random.chance(60) {
            out.push(event(
                format!("{follow_up_id}-2"),
                ("follow_up", &follow_up_id),
                2,
                answered + DAY,
                Payload::FollowUpClosed(FollowUpClosed { follow_up: Some(follow_up) }),
            ));
        }
    }
}

fn scope(kind: ReportKind, group_by: GroupBy, days: i64, now: i64) -> Scope {
    Scope {
        kind,
        group_by,
        from: now - days * DAY,
        to: now,
        zone: chrono_tz::Asia::Seoul,
        channel: 0,
        agent: String::new(),
        team: String::new(),
        tag: String::new(),
    }
    .check()
    .unwrap()
}

#[tokio::main]
async fn main() {
    let options = options();
    let dir = tempfile::tempdir().unwrap();
    let url = match &options.postgres {
        Some(base) => Some(helpdesk_runtime::db::create_scratch_database(base, "helpdesk_bench").await.unwrap()),
        None => None,
    };
    let config = DatabaseConfig::new(url.clone(), 8);
    let bus = EmbeddedBus::open(&config, dir.path(), "bench").await.unwrap();
    let service = helpdesk_feedback::open_database(&config, dir.path(), "http://bench", Arc::new(bus)).await.unwrap();
    let insights: Arc<Insights> = service.insights().clone();
    println!(
        "backend: {}; {} tickets and {} survey answers, one tenant",
        if url.is_some() { "PostgreSQL" } else { "SQLite" },
        options.tickets,
        options.responses
    );

    // Ingestion: batches of 500, as the bus consumer records them.
    let now = chrono::Utc::now().timestamp();
    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let answer_every = (options.tickets / options.responses.max(1)).max(1);
    let (mut events, mut recorded, mut answers) = (Vec::with_capacity(1_000), 0_usize, 0_usize);
    let started = Instant::now();
    let mut ingest_time = std::time::Duration::ZERO;
    for n in 0..options.tickets {
        let ticket = ticket_events(n, now, &mut random, &mut events);
        if n % answer_every == 0 && answers < options.responses {
            answer_events(answers, &ticket, &mut random, &mut events);
            answers += 1;
        }
        if events.len() >= 500 || n + 1 == options.tickets {
            let batch = Instant::now();
            insights.record(&events).await.unwrap();
            ingest_time += batch.elapsed();
            recorded += events.len();
            events.clear();
        }
    }
    println!(
        "ingestion: {recorded} events recorded and applied in {:.1} s: {:.0} events/s ({:.1} s with generation)",
        ingest_time.as_secs_f64(),
        recorded as f64 / ingest_time.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );

    let bytes: i64 = if url.is_some() {
        sqlx::query_scalar("SELECT CAST(pg_total_relation_size('event_log') AS BIGINT)")
    } else {
        sqlx::query_scalar("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
    }
    .fetch_one(service.database().writer())
    .await
    .unwrap();
    println!(
        "event log on disk: {:.0} MB, {:.0} bytes per event{}",
        bytes as f64 / 1e6,
        bytes as f64 / recorded as f64,
        if url.is_some() { " (table and indexes)" } else { " (the whole database file)" }
    );

    let rebuilt = insights.rebuild_all().await.unwrap();
    println!(
        "full rebuild from the event log: {} events, {} tickets in {:.1} s ({:.0} events/s)",
        rebuilt.events,
        rebuilt.tickets,
        rebuilt.seconds,
        rebuilt.events as f64 / rebuilt.seconds
    );
    let tenant_rebuild = insights.rebuild(TENANT).await.unwrap();
    println!(
        "one tenant's rebuild (RebuildProjections): {} events in {:.1} s",
        tenant_rebuild.events, tenant_rebuild.seconds
    );

    let reports = [
        (ReportKind::Volume, GroupBy::Day),
        (ReportKind::Volume, GroupBy::HourOfDay),
        (ReportKind::Volume, GroupBy::DayOfWeek),
        (ReportKind::Volume, GroupBy::Channel),
        (ReportKind::Performance, GroupBy::None),
        (ReportKind::Performance, GroupBy::Team),
        (ReportKind::Performance, GroupBy::Week),
        (ReportKind::Backlog, GroupBy::Day),
        (ReportKind::Satisfaction, GroupBy::Agent),
        (ReportKind::Satisfaction, GroupBy::Tag),
        (ReportKind::Satisfaction, GroupBy::Month),
        (ReportKind::AgentScorecard, GroupBy::Agent),
        (ReportKind::Trends, GroupBy::None),
    ];
    println!("\n| report | group | 30 days p50 / p99 ms | 365 days p50 / p99 ms | rows (365 days) |");
    println!("| --- | --- | --- | --- | --- |");
    let mut worst: f64 = 0.0;
    for (kind, group_by) in reports {
        let mut cells = Vec::new();
        let mut rows = 0;
        for days in [30, 365] {
            let mut latencies = Histogram::<u64>::new(3).unwrap();
            for _ in 0..options.runs {
                let started = Instant::now();
                let (_, table) = insights.report(TENANT, scope(kind, group_by, days, now)).await.unwrap();
                latencies.record(started.elapsed().as_micros() as u64).unwrap();
                rows = table.rows.len();
            }
            let ms = |q: f64| latencies.value_at_quantile(q) as f64 / 1000.0;
            worst = worst.max(ms(0.99));
            cells.push(format!("{:.1} / {:.1}", ms(0.5), ms(0.99)));
        }
        println!("| {} | {} | {} | {} | {rows} |", kind.as_str_name(), group_by.as_str_name(), cells[0], cells[1]);
    }
    println!("\nslowest report p99: {worst:.1} ms ({} runs each)", options.runs);

    // The same reports while new tickets keep arriving: ingestion holds the projection's lock only
    // while it applies a batch.
    let ingesting = {
        let insights = insights.clone();
        let first = options.tickets;
        tokio::spawn(async move {
            let (mut random, mut events, mut recorded) = (Random(0x2545_f491_4f6c_dd1d), Vec::with_capacity(1_000), 0);
            let started = Instant::now();
            for n in first..first + 50_000 {
                ticket_events(n, now, &mut random, &mut events);
                if events.len() >= 500 {
                    insights.record(&events).await.unwrap();
                    recorded += events.len();
                    events.clear();
                }
            }
            (recorded, started.elapsed())
        })
    };
    let mut latencies = Histogram::<u64>::new(3).unwrap();
    while !ingesting.is_finished() {
        for (kind, group_by) in reports {
            let started = Instant::now();
            insights.report(TENANT, scope(kind, group_by, 365, now)).await.unwrap();
            latencies.record(started.elapsed().as_micros() as u64).unwrap();
        }
    }
    let (recorded, took) = ingesting.await.unwrap();
    println!(
        "every report over 365 days while ingesting {recorded} events ({:.0} events/s meanwhile): {} reports, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        recorded as f64 / took.as_secs_f64(),
        latencies.len(),
        latencies.value_at_quantile(0.5) as f64 / 1000.0,
        latencies.value_at_quantile(0.99) as f64 / 1000.0,
        latencies.max() as f64 / 1000.0
    );
    if let Some(url) = url {
        drop(service);
        helpdesk_runtime::db::drop_scratch_database(options.postgres.as_deref().unwrap(), &url).await.ok();
    }
}
