//! The supervisor's view: queue depths and expected waits as they change, agents and their
//! presence, today's SLA attainment, follow-ups from unhappy survey answers, and the staffing a
//! peak needs (Erlang C from routing) as a chart.

use askama::Template;
use axum::{
    extract::{Query, State},
    http::HeaderMap,
    response::Response,
};
use chrono::{Duration, Utc};
use helpdesk_proto::{
    feedback::v1::{FollowUpState, GroupBy, ListFollowUpsRequest, ReportKind, ReportRequest},
    routing::v1::{
        ForecastInterval, ForecastStaffingRequest, GetQueueStatsRequest, ListAgentsRequest, ListQueuesRequest, Presence,
    },
};
use serde::Deserialize;

use crate::{
    Web,
    chart::BarChart,
    i18n,
    pages::{failed, render, to_sign_in},
    view,
};

/// How many times the usual volume a forecast may plan for.
const PEAKS: [u32; 4] = [1, 2, 5, 10];
/// Days of history the usual hourly volume is taken from.
const HISTORY_DAYS: i64 = 28;
/// The handle time a forecast assumes when no queue has measured one yet.
const DEFAULT_HANDLE_SECONDS: f64 = 600.0;

pub(crate) struct QueueLine {
    name: String,
    waiting: i32,
    online: i32,
    available: i32,
    expected_wait: String,
    oldest: String,
}

pub(crate) struct AgentLine {
    name: String,
    presence: &'static str,
    presence_word: &'static str,
    team: String,
    load: String,
}

pub(crate) struct FollowUpLine {
    ticket_id: String,
    score: i32,
    since: String,
}

#[derive(Template)]
#[template(path = "supervisor.html")]
struct SupervisorPage<'a> {
    t: &'a i18n::Text,
    agent_id: String,
    csrf: String,
    queues: Vec<QueueLine>,
    waiting_total: i32,
    agents: Vec<AgentLine>,
    online: usize,
    sla_today: String,
    follow_ups: Vec<FollowUpLine>,
    peak: u32,
    peaks: [u32; 4],
    peak_agents: i32,
    forecast: String,
}

#[derive(Deserialize, Default)]
pub(crate) struct SupervisorQuery {
    #[serde(default)]
    peak: u32,
}

pub(crate) async fn page(State(web): State<Web>, headers: HeaderMap, Query(query): Query<SupervisorQuery>) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    let text = agent.text;
    let peak = if PEAKS.contains(&query.peak) { query.peak } else { 1 };
    let zone = agent.time_zone.name().to_owned();
    let at = |time: chrono::DateTime<Utc>| Some(pbjson_types::Timestamp { seconds: time.timestamp(), nanos: 0 });
    let now = Utc::now();
    let midnight = now.with_timezone(&agent.time_zone).date_naive().and_hms_opt(0, 0, 0).unwrap_or_default();
    let today_from = midnight.and_local_timezone(agent.time_zone).earliest().map_or(now, |start| start.to_utc());
    let history = ReportRequest {
        kind: ReportKind::Volume as i32,
        from: at(now - Duration::days(HISTORY_DAYS)),
        to: at(now),
        group_by: GroupBy::HourOfDay as i32,
        time_zone: zone.clone(),
        ..ReportRequest::default()
    };
    let today = ReportRequest {
        kind: ReportKind::Performance as i32,
        from: at(today_from),
        to: at(now),
        group_by: GroupBy::None as i32,
        time_zone: zone,
        ..ReportRequest::default()
    };
    let follow_ups = ListFollowUpsRequest { state: FollowUpState::Open as i32, limit: 20, ..Default::default() };
    let (mut routing, mut agents_client, mut insights, mut today_client, mut feedback) =
        (web.routing.clone(), web.routing.clone(), web.insights.clone(), web.insights.clone(), web.feedback.clone());
    let (queues, agents, history, today, follow_ups) = tokio::join!(
        routing.list_queues(agent.request(ListQueuesRequest::default())),
        agents_client.list_agents(agent.request(ListAgentsRequest::default())),
        insights.get_report(agent.request(history)),
        today_client.get_report(agent.request(today)),
        feedback.list_follow_ups(agent.request(follow_ups)),
    );
    let queues = match queues {
        Ok(queues) => queues.into_inner().queues,
        Err(status) => return failed(&status),
    };
    let stats = futures::future::join_all(queues.iter().map(|queue| {
        let mut routing = web.routing.clone();
        let request = agent.request(GetQueueStatsRequest { queue_id: queue.id.clone() });
        async move { routing.get_queue_stats(request).await.map(tonic::Response::into_inner).unwrap_or_default() }
    }))
    .await;
    let handle_times: Vec<f64> =
        stats.iter().map(|stats| stats.average_handle_seconds).filter(|seconds| *seconds > 0.0).collect();
    let handle_seconds = if handle_times.is_empty() {
        DEFAULT_HANDLE_SECONDS
    } else {
        handle_times.iter().sum::<f64>() / handle_times.len() as f64
    };
    let queues: Vec<QueueLine> = queues
        .iter()
        .zip(&stats)
        .map(|(queue, stats)| QueueLine {
            name: queue.name.clone(),
            waiting: stats.waiting,
            online: stats.agents_online,
            available: stats.agents_available,
            expected_wait: view::duration(text, stats.expected_wait_seconds as i64),
            oldest: view::time(agent.time_zone, stats.oldest_waiting_since.as_ref()),
        })
        .collect();
    let agents: Vec<AgentLine> = agents
        .map(|listed| listed.into_inner().agents)
        .unwrap_or_default()
        .into_iter()
        .map(|other| {
            let presence = Presence::try_from(other.presence).unwrap_or(Presence::Unspecified);
            let (presence, presence_word) = match presence {
                Presence::Online => ("online", text.online),
                Presence::Away => ("away", text.away),
                Presence::Offline | Presence::Unspecified => ("offline", text.offline),
            };
            let load = other
                .load
                .iter()
                .map(|load| format!("{} {}/{}", view::channel(load.channel), load.active, load.capacity));
            AgentLine {
                name: other.name,
                presence,
                presence_word,
                team: other.team,
                load: load.collect::<Vec<_>>().join(", "),
            }
        })
        .collect();
    let sla_today = today
        .ok()
        .and_then(|report| crate::reports::single(&report.into_inner(), "sla_attainment"))
        .map_or_else(|| "—".to_owned(), |share| format!("{:.0}%", share * 100.0));

    // The usual contacts per hour of day over the history, times the peak, staffed by Erlang C.
    let usual = history.map(|report| report.into_inner()).unwrap_or_default();
    let hours = (0..24).map(|hour| format!("{hour:02}"));
    let intervals: Vec<ForecastInterval> = crate::reports::filled(&usual, "created", hours)
        .into_iter()
        .map(|(label, created)| ForecastInterval { label, contacts: created / HISTORY_DAYS as f64 * f64::from(peak) })
        .collect();
    let forecast = ForecastStaffingRequest {
        intervals,
        interval_seconds: 3600,
        average_handle_seconds: handle_seconds,
        service_level: 0.8,
        answer_within_seconds: 3600.0,
        max_occupancy: 0.85,
    };
    let staffing = web.routing.clone().forecast_staffing(agent.request(forecast)).await.map(|r| r.into_inner());
    let staffing = staffing.unwrap_or_default();
    let needed: Vec<(String, f64)> =
        staffing.intervals.iter().map(|interval| (interval.label.clone(), f64::from(interval.agents))).collect();
    let title = format!("{} ×{peak}", text.agents_needed);
    let follow_ups = follow_ups
        .map(|listed| listed.into_inner().follow_ups)
        .unwrap_or_default()
        .into_iter()
        .map(|follow_up| FollowUpLine {
            since: view::time(agent.time_zone, follow_up.created_at.as_ref()),
            ticket_id: follow_up.ticket_id,
            score: follow_up.score,
        })
        .collect();
    render(&SupervisorPage {
        t: text,
        agent_id: agent.principal.subject.clone(),
        csrf: agent.csrf(),
        waiting_total: queues.iter().map(|queue| queue.waiting).sum(),
        queues,
        online: agents.iter().filter(|other| other.presence == "online").count(),
        agents,
        sla_today,
        follow_ups,
        peak,
        peaks: PEAKS,
        peak_agents: staffing.peak_agents,
        forecast: BarChart::new(&title, &needed).without_total().svg(),
    })
}
