//! Reports with charts: volume by day, channel and hour, first-response and resolution times,
//! SLA attainment, satisfaction by agent and over time, trending topics — all from insights'
//! projections, in the agent's time zone, each downloadable as CSV.

use askama::Template;
use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{Duration, Utc};
use helpdesk_proto::feedback::v1::{GroupBy, Report, ReportKind, ReportRequest};
use serde::Deserialize;

use crate::{
    Web,
    chart::BarChart,
    i18n,
    pages::{failed, render, to_sign_in},
    session::Agent,
};

/// Periods a report covers, in days.
const PERIODS: [i64; 3] = [7, 30, 90];

#[derive(Deserialize, Default)]
pub(crate) struct ReportQuery {
    #[serde(default)]
    days: i64,
    #[serde(default)]
    group: String,
}

impl ReportQuery {
    fn days(&self) -> i64 {
        if PERIODS.contains(&self.days) { self.days } else { 30 }
    }
}

/// A report over the last `days` days up to now, in the agent's time zone.
fn request(agent: &Agent, kind: ReportKind, group_by: GroupBy, days: i64) -> ReportRequest {
    let now = Utc::now();
    let at = |time: chrono::DateTime<Utc>| pbjson_types::Timestamp { seconds: time.timestamp(), nanos: 0 };
    ReportRequest {
        kind: kind as i32,
        from: Some(at(now - Duration::days(days))),
        to: Some(at(now)),
        group_by: group_by as i32,
        time_zone: agent.time_zone.name().to_owned(),
        ..ReportRequest::default()
    }
}

/// One column of a report beside each row's group: the values as numbers (`None` where nothing
/// was measured).
fn column(report: &Report, name: &str) -> Vec<(String, Option<f64>)> {
    use pbjson_types::value::Kind;
    let Some(index) = report.columns.iter().position(|column| column == name) else { return Vec::new() };
    report
        .rows
        .iter()
        .map(|row| {
            let cell = |at: usize| row.cells.get(at).and_then(|cell| cell.kind.as_ref());
            let group = match cell(0) {
                Some(Kind::StringValue(group)) => group.clone(),
                _ => String::new(),
            };
            let value = match cell(index) {
                Some(Kind::NumberValue(value)) => Some(*value),
                _ => None,
            };
            (group, value)
        })
        .collect()
}

/// The values of `name` under each of `groups` in order, 0 for a group the report has no row for
/// (reports leave out days and hours without tickets).
pub(crate) fn filled(report: &Report, name: &str, groups: impl IntoIterator<Item = String>) -> Vec<(String, f64)> {
    let values: std::collections::HashMap<String, f64> =
        column(report, name).into_iter().map(|(group, value)| (group, value.unwrap_or(0.0))).collect();
    groups.into_iter().map(|group| (group.clone(), values.get(&group).copied().unwrap_or(0.0))).collect()
}

/// The value of `name` in a report without groups.
pub(crate) fn single(report: &Report, name: &str) -> Option<f64> {
    column(report, name).first().and_then(|(_, value)| *value)
}

/// A figure as a tile shows it, or a dash.
fn shown(value: Option<f64>, unit: &str, scale: f64) -> String {
    value.map_or_else(|| "—".to_owned(), |value| format!("{:.1}{unit}", value * scale))
}

/// A headline figure.
pub(crate) struct Tile {
    name: &'static str,
    value: String,
}

/// A row of a table of words and figures.
pub(crate) struct Line {
    cells: Vec<String>,
}

fn lines(report: &Report) -> Vec<Line> {
    use pbjson_types::value::Kind;
    report
        .rows
        .iter()
        .map(|row| Line {
            cells: row
                .cells
                .iter()
                .map(|cell| match &cell.kind {
                    Some(Kind::StringValue(text)) => text.clone(),
                    Some(Kind::NumberValue(number)) => {
                        if number.fract() == 0.0 {
                            format!("{number:.0}")
                        } else {
                            format!("{number:.2}")
                        }
                    }
                    _ => "—".to_owned(),
                })
                .collect(),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "reports.html")]
struct ReportsPage<'a> {
    t: &'a i18n::Text,
    agent_id: String,
    csrf: String,
    days: i64,
    periods: [i64; 3],
    tiles: Vec<Tile>,
    created_total: String,
    solved_total: String,
    charts: Vec<(String, String)>,
    agents: Vec<Line>,
    trends: Vec<Line>,
}

pub(crate) async fn page(State(web): State<Web>, headers: HeaderMap, Query(query): Query<ReportQuery>) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    let days = query.days();
    let text = agent.text;
    let report = |kind, group_by| {
        let mut insights = web.insights.clone();
        let request = agent.request(request(&agent, kind, group_by, days));
        async move { insights.get_report(request).await.map(tonic::Response::into_inner) }
    };
    let (by_day, by_channel, by_hour, performance, by_agent, satisfaction, trends) = tokio::join!(
        report(ReportKind::Volume, GroupBy::Day),
        report(ReportKind::Volume, GroupBy::Channel),
        report(ReportKind::Volume, GroupBy::HourOfDay),
        report(ReportKind::Performance, GroupBy::None),
        report(ReportKind::Satisfaction, GroupBy::Agent),
        report(ReportKind::Satisfaction, GroupBy::Week),
        report(ReportKind::Trends, GroupBy::None),
    );
    let reports = [by_day, by_channel, by_hour, performance, by_agent, satisfaction, trends];
    if let Some(Err(status)) = reports.iter().find(|report| report.is_err()) {
        return failed(status);
    }
    let [by_day, by_channel, by_hour, performance, by_agent, satisfaction, trends] =
        reports.map(Result::unwrap_or_default);

    let today = Utc::now().with_timezone(&agent.time_zone).date_naive();
    let dates = (0..=days).rev().map(|back| (today - Duration::days(back)).to_string());
    let created = filled(&by_day, "created", dates.clone());
    let solved = filled(&by_day, "solved", dates);
    let sum = |values: &[(String, f64)]| format!("{:.0}", values.iter().map(|(_, value)| value).sum::<f64>());
    // Days as `12-04`: the year is in the period already.
    let short = |values: Vec<(String, f64)>| -> Vec<(String, f64)> {
        values.into_iter().map(|(day, value)| (day.get(5..).unwrap_or(&day).to_owned(), value)).collect()
    };
    let hours = (0..24).map(|hour| format!("{hour:02}"));
    let channels: Vec<(String, f64)> =
        column(&by_channel, "created").into_iter().map(|(channel, value)| (channel, value.unwrap_or(0.0))).collect();
    let csat: Vec<(String, f64)> = column(&satisfaction, "csat_average")
        .into_iter()
        .filter_map(|(week, value)| Some((week.get(5..).unwrap_or(&week).to_owned(), value?)))
        .collect();
    let charts = vec![
        ("volume", "day", BarChart::new(text.created_per_day, &short(created.clone()))),
        ("volume", "day", BarChart::new(text.solved_per_day, &short(solved.clone()))),
        ("volume", "channel", BarChart::new(text.created_by_channel, &channels)),
        ("volume", "hour", BarChart::new(text.created_by_hour, &filled(&by_hour, "created", hours))),
        ("satisfaction", "week", BarChart::new(text.csat_by_week, &csat).without_total()),
    ]
    .into_iter()
    .map(|(kind, group, chart)| (chart.svg(), format!("/app/reports/{kind}.csv?days={days}&group={group}")))
    .collect();
    let tickets = single(&performance, "tickets").map_or_else(|| "—".to_owned(), |count| format!("{count:.0}"));
    let tiles = vec![
        Tile { name: text.tickets, value: tickets },
        Tile {
            name: text.first_response_median,
            value: shown(single(&performance, "first_response_median_minutes"), text.minutes_unit, 1.0),
        },
        Tile {
            name: text.resolution_median,
            value: shown(single(&performance, "resolution_median_hours"), text.hours_unit, 1.0),
        },
        Tile { name: text.sla_attainment, value: shown(single(&performance, "sla_attainment"), "%", 100.0) },
        Tile {
            name: text.first_contact_resolution,
            value: shown(single(&performance, "first_contact_resolution_rate"), "%", 100.0),
        },
    ];
    render(&ReportsPage {
        t: text,
        agent_id: agent.principal.subject.clone(),
        csrf: agent.csrf(),
        days,
        periods: PERIODS,
        tiles,
        created_total: sum(&created),
        solved_total: sum(&solved),
        charts,
        agents: lines(&by_agent),
        trends: lines(&trends),
    })
}

/// A report as CSV, as insights exports it: `/app/reports/volume.csv?days=30&group=day`.
pub(crate) async fn csv(
    State(web): State<Web>,
    headers: HeaderMap,
    Path(report): Path<String>,
    Query(query): Query<ReportQuery>,
) -> Response {
    let Some(agent) = web.agent(&headers).await else { return to_sign_in() };
    let kind = match report.strip_suffix(".csv") {
        Some("volume") => ReportKind::Volume,
        Some("performance") => ReportKind::Performance,
        Some("backlog") => ReportKind::Backlog,
        Some("satisfaction") => ReportKind::Satisfaction,
        Some("agents") => ReportKind::AgentScorecard,
        Some("trends") => ReportKind::Trends,
        _ => return (StatusCode::NOT_FOUND, "no such report").into_response(),
    };
    let group_by = match query.group.as_str() {
        "channel" => GroupBy::Channel,
        "hour" => GroupBy::HourOfDay,
        "weekday" => GroupBy::DayOfWeek,
        "day" => GroupBy::Day,
        "week" => GroupBy::Week,
        "month" => GroupBy::Month,
        "agent" => GroupBy::Agent,
        "team" => GroupBy::Team,
        "tag" => GroupBy::Tag,
        _ => GroupBy::Unspecified,
    };
    let request = agent.request(request(&agent, kind, group_by, query.days()));
    match web.insights.clone().export_report(request).await {
        Ok(export) => {
            let export = export.into_inner();
            let disposition = format!("attachment; filename=\"{}\"", export.filename.replace(['"', '\\'], ""));
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                export.content,
            )
                .into_response()
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => {
            (StatusCode::BAD_REQUEST, status.message().to_owned()).into_response()
        }
        Err(status) => failed(&status),
    }
}

#[cfg(test)]
mod tests {
    use pbjson_types::{Value, value::Kind};

    use super::*;
    use helpdesk_proto::feedback::v1::ReportRow;

    fn report(rows: &[(&str, f64)]) -> Report {
        let cell = |kind| Value { kind: Some(kind) };
        Report {
            columns: vec!["group".into(), "created".into()],
            rows: rows
                .iter()
                .map(|(group, value)| ReportRow {
                    cells: vec![cell(Kind::StringValue((*group).into())), cell(Kind::NumberValue(*value))],
                })
                .collect(),
            ..Report::default()
        }
    }

    #[test]
    fn groups_a_report_leaves_out_are_drawn_as_zero_in_order() {
        let report = report(&[("2026-12-03", 4.0), ("2026-12-01", 1.0)]);
        let days = ["2026-12-01", "2026-12-02", "2026-12-03"].map(str::to_owned);
        let values = filled(&report, "created", days);
        assert_eq!(values, [("2026-12-01".into(), 1.0), ("2026-12-02".into(), 0.0), ("2026-12-03".into(), 4.0)]);
        assert!(filled(&report, "no such column", ["x".to_owned()]).iter().all(|(_, value)| *value == 0.0));
    }

    #[test]
    fn periods_are_the_offered_ones() {
        assert_eq!(ReportQuery { days: 7, ..Default::default() }.days(), 7);
        assert_eq!(ReportQuery { days: 100_000, ..Default::default() }.days(), 30);
    }
}
