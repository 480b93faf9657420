//! Reports computed from the in-memory facts: one pass over a tenant's tickets or responses per
//! report, bucketed in the tenant's time zone.

use chrono::{Datelike, NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;
use helpdesk_proto::{
    common::v1::Channel,
    feedback::v1::{GroupBy, ReportKind, SurveyKind},
};
use helpdesk_runtime::ServiceError;

use super::facts::{ResponseFact, TenantFacts, TicketFact};
use crate::Map;

pub(crate) const MAX_RANGE_DAYS: i64 = 400;
const DAY: i64 = 86_400;
const WEEK: i64 = 7 * DAY;
const TRENDS_LIMIT: usize = 50;

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Null,
}

#[derive(Debug)]
pub struct Table {
    pub columns: Vec<&'static str>,
    pub rows: Vec<Vec<Cell>>,
}

/// What a report covers: a period, a time zone and filters, checked.
pub struct Scope {
    pub kind: ReportKind,
    pub group_by: GroupBy,
    /// Unix seconds, `to` exclusive.
    pub from: i64,
    pub to: i64,
    pub zone: Tz,
    pub channel: i32,
    pub agent: String,
    pub team: String,
    pub tag: String,
}

impl Scope {
    /// Fills in defaults and refuses what cannot be answered, naming the field.
    pub fn check(mut self) -> Result<Self, ServiceError> {
        if self.kind == ReportKind::Unspecified {
            return Err(ServiceError::invalid_field("kind", "must name a report"));
        }
        // Unix seconds of 1970-01-01 and 2200-01-01: outside them, dates are mistakes.
        const YEARS: std::ops::Range<i64> = 0..7_258_118_400;
        for (field, at) in [("from", self.from), ("to", self.to)] {
            if !YEARS.contains(&at) {
                return Err(ServiceError::invalid_field(field, "must be between 1970 and 2200"));
            }
        }
        if self.from >= self.to {
            return Err(ServiceError::invalid_field("from", "must be before to"));
        }
        if self.to - self.from > MAX_RANGE_DAYS * DAY {
            return Err(ServiceError::invalid_field(
                "to",
                format!("the period may span at most {MAX_RANGE_DAYS} days"),
            ));
        }
        if self.channel != 0 && Channel::try_from(self.channel).is_err() {
            return Err(ServiceError::invalid_field("channel", "is not a known channel"));
        }
        self.group_by = match (self.kind, self.group_by) {
            (ReportKind::AgentScorecard, _) => GroupBy::Agent,
            (ReportKind::Backlog, GroupBy::Week | GroupBy::Month) => self.group_by,
            (ReportKind::Backlog, GroupBy::Unspecified | GroupBy::Day) => GroupBy::Day,
            (ReportKind::Backlog, _) => {
                return Err(ServiceError::invalid_field("group_by", "backlog is by day, week or month"));
            }
            (ReportKind::Volume, GroupBy::Unspecified) => GroupBy::Day,
            (_, GroupBy::Unspecified) => GroupBy::None,
            (_, group_by) => group_by,
        };
        Ok(self)
    }
}

/// Local time for the UTC instants of a period: the zone's offset is looked up once per hour of
/// the period, not once per ticket.
struct Clock {
    zone: Tz,
    first_hour: i64,
    offsets: Vec<i32>,
}

impl Clock {
    fn new(zone: Tz, from: i64, to: i64) -> Self {
        let offset_at = |at: i64| {
            chrono::DateTime::from_timestamp(at, 0)
                .map_or(0, |utc| zone.offset_from_utc_datetime(&utc.naive_utc()).fix().local_minus_utc())
        };
        let first_hour = from.div_euclid(3600);
        let hours = (to.div_euclid(3600) - first_hour + 1) as usize;
        let mut offsets = Vec::with_capacity(hours);
        for day in 0..hours.div_ceil(24) {
            let start = (first_hour + day as i64 * 24) * 3600;
            let (morning, night) = (offset_at(start), offset_at(start + 23 * 3600));
            for hour in 0..24.min(hours - day * 24) {
                // Zones change offset at most once or twice a year: hour by hour only then.
                offsets.push(if morning == night { morning } else { offset_at(start + hour as i64 * 3600) });
            }
        }
        Self { zone, first_hour, offsets }
    }

    fn local(&self, at: i64) -> i64 {
        let hour = (at.div_euclid(3600) - self.first_hour).clamp(0, self.offsets.len() as i64 - 1);
        at + i64::from(self.offsets.get(hour as usize).copied().unwrap_or(0))
    }

    /// The UTC instant of a local midnight (the earliest, when it repeats).
    fn utc_of_local_day(&self, day: i64) -> i64 {
        let date = NaiveDate::from_num_days_from_ce_opt((day + 719_163) as i32).unwrap_or_default();
        let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
        self.zone.from_local_datetime(&midnight).earliest().map_or(day * DAY, |local| local.timestamp())
    }
}

fn month_key(local_day: i64) -> i64 {
    let date = NaiveDate::from_num_days_from_ce_opt((local_day + 719_163) as i32).unwrap_or_default();
    i64::from(date.year()) * 12 + i64::from(date.month0())
}

/// Monday of the local week, as a day number (1970-01-01 was a Thursday).
fn week_key(local_day: i64) -> i64 {
    local_day - (local_day + 3).rem_euclid(7)
}

fn day_label(day: i64) -> String {
    NaiveDate::from_num_days_from_ce_opt((day + 719_163) as i32).map_or_else(String::new, |date| date.to_string())
}

const WEEKDAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

/// What a ticket or response is grouped by.
struct Subject<'a> {
    at: i64,
    channel: i32,
    agent: u32,
    team: u32,
    tags: &'a [u32],
}

impl Subject<'_> {
    fn of_ticket(ticket: &TicketFact) -> Subject<'_> {
        Subject {
            at: ticket.created,
            channel: ticket.channel,
            agent: ticket.agent,
            team: ticket.team,
            tags: &ticket.tags,
        }
    }

    fn of_response(response: &ResponseFact) -> Subject<'_> {
        Subject {
            at: response.at,
            channel: response.channel,
            agent: response.agent,
            team: response.team,
            tags: &response.tags,
        }
    }
}

/// Filters resolved to the tenant's name numbers; a name the tenant never used matches nothing.
struct Filter {
    channel: i32,
    agent: Option<u32>,
    team: Option<u32>,
    tag: Option<u32>,
}

impl Filter {
    fn new(scope: &Scope, facts: &TenantFacts) -> Self {
        let resolve = |name: &str, names: &super::facts::Names| {
            (!name.is_empty()).then(|| names.find(&name.to_lowercase()).or(names.find(name)).unwrap_or(u32::MAX))
        };
        Self {
            channel: scope.channel,
            agent: (!scope.agent.is_empty()).then(|| facts.agents.find(&scope.agent).unwrap_or(u32::MAX)),
            team: (!scope.team.is_empty()).then(|| facts.teams.find(&scope.team).unwrap_or(u32::MAX)),
            tag: resolve(&scope.tag, &facts.tags),
        }
    }

    fn admits(&self, subject: &Subject<'_>) -> bool {
        (self.channel == 0 || subject.channel == self.channel)
            && self.agent.is_none_or(|agent| subject.agent == agent)
            && self.team.is_none_or(|team| subject.team == team)
            && self.tag.is_none_or(|tag| subject.tags.contains(&tag))
    }
}

/// Calls `emit` with each group key of `subject`: a tag report counts a ticket under each tag.
fn keys(group_by: GroupBy, clock: &Clock, subject: &Subject<'_>, mut emit: impl FnMut(i64)) {
    let local = || clock.local(subject.at);
    match group_by {
        GroupBy::None | GroupBy::Unspecified => emit(0),
        GroupBy::Channel => emit(i64::from(subject.channel)),
        GroupBy::HourOfDay => emit(local().rem_euclid(DAY) / 3600),
        GroupBy::DayOfWeek => emit((local().div_euclid(DAY) + 3).rem_euclid(7)),
        GroupBy::Day => emit(local().div_euclid(DAY)),
        GroupBy::Week => emit(week_key(local().div_euclid(DAY))),
        GroupBy::Month => emit(month_key(local().div_euclid(DAY))),
        GroupBy::Agent => emit(i64::from(subject.agent)),
        GroupBy::Team => emit(i64::from(subject.team)),
        GroupBy::Tag if subject.tags.is_empty() => emit(0),
        GroupBy::Tag => subject.tags.iter().for_each(|tag| emit(i64::from(*tag))),
    }
}

fn label(group_by: GroupBy, key: i64, facts: &TenantFacts) -> String {
    let named = |name: &str, none: &str| if name.is_empty() { none.to_owned() } else { name.to_owned() };
    match group_by {
        GroupBy::None | GroupBy::Unspecified => "all".to_owned(),
        GroupBy::Channel => Channel::try_from(key as i32).map_or_else(
            |_| "unknown".to_owned(),
            |channel| channel.as_str_name().trim_start_matches("CHANNEL_").to_lowercase(),
        ),
        GroupBy::HourOfDay => format!("{key:02}"),
        GroupBy::DayOfWeek => WEEKDAYS[key.clamp(0, 6) as usize].to_owned(),
        GroupBy::Day | GroupBy::Week => day_label(key),
        GroupBy::Month => format!("{}-{:02}", key.div_euclid(12), key.rem_euclid(12) + 1),
        GroupBy::Agent => named(facts.agents.name(key as u32), "(unassigned)"),
        GroupBy::Team => named(facts.teams.name(key as u32), "(no team)"),
        GroupBy::Tag => named(facts.tags.name(key as u32), "(untagged)"),
    }
}

/// Time groups sort by time and weekdays from Monday; the rest by name.
fn sorted<A>(group_by: GroupBy, groups: Map<i64, A>, facts: &TenantFacts) -> Vec<(String, A)> {
    let mut rows: Vec<(i64, String, A)> =
        groups.into_iter().map(|(key, acc)| (key, label(group_by, key, facts), acc)).collect();
    match group_by {
        GroupBy::Agent | GroupBy::Team | GroupBy::Tag | GroupBy::Channel => rows.sort_by(|a, b| a.1.cmp(&b.1)),
        _ => rows.sort_by_key(|row| row.0),
    }
    rows.into_iter().map(|(_, label, acc)| (label, acc)).collect()
}

fn number(value: Option<f64>) -> Cell {
    match value {
        Some(value) if value.is_finite() => Cell::Number((value * 100.0).round() / 100.0),
        _ => Cell::Null,
    }
}

fn count(value: usize) -> Cell {
    Cell::Number(value as f64)
}

fn ratio(part: usize, whole: usize) -> Cell {
    number((whole > 0).then(|| part as f64 / whole as f64))
}

fn quantile(values: &mut [f32], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let at = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, value, _) = values.select_nth_unstable_by(at, f32::total_cmp);
    Some(f64::from(*value))
}

/// Ticket measures of one group.
#[derive(Default)]
struct Handling {
    created: usize,
    solved: usize,
    reopened: usize,
    first_contact: usize,
    first_response_minutes: Vec<f32>,
    resolution_hours: Vec<f32>,
    with_sla: usize,
    sla_met: usize,
}

impl Handling {
    fn add(&mut self, ticket: &TicketFact) {
        self.created += 1;
        if let Some(first) = ticket.first_response {
            self.first_response_minutes.push((first - ticket.created).max(0) as f32 / 60.0);
        }
        if let Some(solved) = ticket.first_solved {
            self.solved += 1;
            self.resolution_hours.push((solved - ticket.created).max(0) as f32 / 3600.0);
            if ticket.reopens == 0 && ticket.replies_before_solve <= 1 {
                self.first_contact += 1;
            }
        }
        if ticket.reopens > 0 {
            self.reopened += 1;
        }
        if ticket.has_sla {
            self.with_sla += 1;
            self.sla_met += usize::from(!ticket.sla_breached);
        }
    }
}

/// Survey measures of one group.
#[derive(Default)]
struct Satisfaction {
    responses: usize,
    csat_sum: f64,
    csat: usize,
    satisfied: usize,
    nps: usize,
    promoters: usize,
    detractors: usize,
    ces_sum: f64,
    ces: usize,
    rating_sum: f64,
    ratings: usize,
    follow_ups: usize,
    follow_ups_closed: usize,
}

impl Satisfaction {
    fn add(&mut self, response: &ResponseFact, facts: &TenantFacts) {
        self.responses += 1;
        let score = f64::from(response.score);
        match SurveyKind::try_from(response.kind).unwrap_or(SurveyKind::Unspecified) {
            SurveyKind::Csat => {
                self.csat += 1;
                self.csat_sum += score;
                self.satisfied += usize::from(response.score >= 4);
            }
            SurveyKind::Nps => {
                self.nps += 1;
                self.promoters += usize::from(response.score >= 9);
                self.detractors += usize::from(response.score <= 6);
            }
            SurveyKind::Ces => {
                self.ces += 1;
                self.ces_sum += score;
            }
            SurveyKind::Custom | SurveyKind::Unspecified => {}
        }
        if let Some(rating) = response.agent_rating {
            self.ratings += 1;
            self.rating_sum += f64::from(rating);
        }
        if let Some(follow_up) = response.follow_up {
            self.follow_ups += 1;
            self.follow_ups_closed += usize::from(facts.closed_follow_ups.contains(&follow_up));
        }
    }

    fn mean(sum: f64, n: usize) -> Cell {
        number((n > 0).then(|| sum / n as f64))
    }

    fn satisfied_percent(&self) -> Cell {
        number((self.csat > 0).then(|| 100.0 * self.satisfied as f64 / self.csat as f64))
    }

    fn net_promoter_score(&self) -> Cell {
        number((self.nps > 0).then(|| 100.0 * (self.promoters as f64 - self.detractors as f64) / self.nps as f64))
    }
}

fn tickets_in<'a>(
    facts: &'a TenantFacts,
    scope: &'a Scope,
    filter: &'a Filter,
) -> impl Iterator<Item = &'a TicketFact> {
    facts.tickets.iter().filter(move |ticket| {
        ticket.created != 0
            && !ticket.merged
            && (scope.from..scope.to).contains(&ticket.created)
            && filter.admits(&Subject::of_ticket(ticket))
    })
}

fn responses_in<'a>(
    facts: &'a TenantFacts,
    scope: &'a Scope,
    filter: &'a Filter,
) -> impl Iterator<Item = &'a ResponseFact> {
    facts.responses.iter().filter(move |response| {
        (scope.from..scope.to).contains(&response.at) && filter.admits(&Subject::of_response(response))
    })
}

pub(crate) fn run(scope: &Scope, facts: &TenantFacts) -> Table {
    let clock = Clock::new(scope.zone, scope.from, scope.to);
    let filter = Filter::new(scope, facts);
    match scope.kind {
        ReportKind::Volume | ReportKind::Unspecified => volume(scope, facts, &clock, &filter),
        ReportKind::Performance => performance(scope, facts, &clock, &filter),
        ReportKind::Backlog => backlog(scope, facts, &clock, &filter),
        ReportKind::Satisfaction => satisfaction(scope, facts, &clock, &filter),
        ReportKind::AgentScorecard => scorecard(scope, facts, &clock, &filter),
        ReportKind::Trends => trends(scope, facts, &filter),
    }
}

fn handling_by_group(scope: &Scope, facts: &TenantFacts, clock: &Clock, filter: &Filter) -> Map<i64, Handling> {
    let mut groups: Map<i64, Handling> = Map::default();
    for ticket in tickets_in(facts, scope, filter) {
        keys(scope.group_by, clock, &Subject::of_ticket(ticket), |key| groups.entry(key).or_default().add(ticket));
    }
    groups
}

fn volume(scope: &Scope, facts: &TenantFacts, clock: &Clock, filter: &Filter) -> Table {
    let mut groups: Map<i64, [usize; 4]> = Map::default();
    for ticket in tickets_in(facts, scope, filter) {
        keys(scope.group_by, clock, &Subject::of_ticket(ticket), |key| {
            let acc = groups.entry(key).or_default();
            acc[0] += 1;
            acc[1] += usize::from(ticket.first_solved.is_some());
            acc[2] += usize::from(ticket.reopens > 0);
            acc[3] += usize::from(ticket.solved.is_none());
        });
    }
    Table {
        columns: vec!["group", "created", "solved", "reopened", "unsolved"],
        rows: sorted(scope.group_by, groups, facts)
            .into_iter()
            .map(|(label, acc)| vec![Cell::Text(label), count(acc[0]), count(acc[1]), count(acc[2]), count(acc[3])])
            .collect(),
    }
}

fn performance(scope: &Scope, facts: &TenantFacts, clock: &Clock, filter: &Filter) -> Table {
    let groups = handling_by_group(scope, facts, clock, filter);
    Table {
        columns: vec![
            "group",
            "tickets",
            "first_response_median_minutes",
            "first_response_p90_minutes",
            "resolution_median_hours",
            "resolution_p90_hours",
            "first_contact_resolution_rate",
            "reopen_rate",
            "sla_attainment",
        ],
        rows: sorted(scope.group_by, groups, facts)
            .into_iter()
            .map(|(label, mut acc)| {
                vec![
                    Cell::Text(label),
                    count(acc.created),
                    number(quantile(&mut acc.first_response_minutes, 0.5)),
                    number(quantile(&mut acc.first_response_minutes, 0.9)),
                    number(quantile(&mut acc.resolution_hours, 0.5)),
                    number(quantile(&mut acc.resolution_hours, 0.9)),
                    ratio(acc.first_contact, acc.solved),
                    ratio(acc.reopened, acc.solved),
                    ratio(acc.sla_met, acc.with_sla),
                ]
            })
            .collect(),
    }
}

/// Unsolved tickets at the end of each local day, week or month of the period.
fn backlog(scope: &Scope, facts: &TenantFacts, clock: &Clock, filter: &Filter) -> Table {
    let (first_day, last_day) = (clock.local(scope.from).div_euclid(DAY), clock.local(scope.to - 1).div_euclid(DAY));
    let bucket = |day: i64| match scope.group_by {
        GroupBy::Week => week_key(day),
        GroupBy::Month => month_key(day),
        _ => day,
    };
    // Each period ends where the next begins: (key, UTC instant of its end).
    let mut periods: Vec<(i64, i64)> = Vec::new();
    for day in first_day..=last_day {
        let key = bucket(day);
        let end = clock.utc_of_local_day(day + 1);
        match periods.last_mut() {
            Some(last) if last.0 == key => last.1 = end,
            _ => periods.push((key, end)),
        }
    }
    let mut open = vec![0_i64; periods.len() + 1];
    let period_of = |at: i64| periods.partition_point(|period| period.1 <= at);
    for ticket in facts.tickets.iter().filter(|ticket| {
        ticket.created != 0 && !ticket.merged && ticket.created < scope.to && filter.admits(&Subject::of_ticket(ticket))
    }) {
        // Open from the first period ending after its creation to the first ending after its
        // solve.
        let start = period_of(ticket.created);
        let stop = ticket.solved.map_or(periods.len(), period_of);
        if start < stop {
            open[start] += 1;
            open[stop] -= 1;
        }
    }
    let mut running = 0;
    let rows = periods
        .iter()
        .enumerate()
        .map(|(at, (key, _))| {
            running += open[at];
            let label = match scope.group_by {
                GroupBy::Month => format!("{}-{:02}", key.div_euclid(12), key.rem_euclid(12) + 1),
                _ => day_label(*key),
            };
            vec![Cell::Text(label), Cell::Number(running as f64)]
        })
        .collect();
    Table { columns: vec!["period", "unsolved_at_end"], rows }
}

fn satisfaction_by_group(scope: &Scope, facts: &TenantFacts, clock: &Clock, filter: &Filter) -> Map<i64, Satisfaction> {
    let mut groups: Map<i64, Satisfaction> = Map::default();
    for response in responses_in(facts, scope, filter) {
        keys(scope.group_by, clock, &Subject::of_response(response), |key| {
            groups.entry(key).or_default().add(response, facts)
        });
    }
    groups
}

fn satisfaction(scope: &Scope, facts: &TenantFacts, clock: &Clock, filter: &Filter) -> Table {
    let groups = satisfaction_by_group(scope, facts, clock, filter);
    Table {
        columns: vec![
            "group",
            "responses",
            "csat_average",
            "csat_satisfied_percent",
            "nps",
            "ces_average",
            "agent_rating_average",
            "follow_ups",
            "follow_ups_closed",
        ],
        rows: sorted(scope.group_by, groups, facts)
            .into_iter()
            .map(|(label, acc)| {
                vec![
                    Cell::Text(label),
                    count(acc.responses),
                    Satisfaction::mean(acc.csat_sum, acc.csat),
                    acc.satisfied_percent(),
                    acc.net_promoter_score(),
                    Satisfaction::mean(acc.ces_sum, acc.ces),
                    Satisfaction::mean(acc.rating_sum, acc.ratings),
                    count(acc.follow_ups),
                    count(acc.follow_ups_closed),
                ]
            })
            .collect(),
    }
}

fn scorecard(scope: &Scope, facts: &TenantFacts, clock: &Clock, filter: &Filter) -> Table {
    let mut handling = handling_by_group(scope, facts, clock, filter);
    let mut satisfaction = satisfaction_by_group(scope, facts, clock, filter);
    let agents: std::collections::BTreeSet<i64> = handling.keys().chain(satisfaction.keys()).copied().collect();
    let mut rows: Vec<Vec<Cell>> = agents
        .into_iter()
        .map(|agent| {
            let mut work = handling.remove(&agent).unwrap_or_default();
            let said = satisfaction.remove(&agent).unwrap_or_default();
            vec![
                Cell::Text(label(GroupBy::Agent, agent, facts)),
                count(work.created),
                count(work.solved),
                number(quantile(&mut work.first_response_minutes, 0.5)),
                number(quantile(&mut work.resolution_hours, 0.5)),
                ratio(work.first_contact, work.solved),
                ratio(work.reopened, work.solved),
                ratio(work.sla_met, work.with_sla),
                count(said.responses),
                Satisfaction::mean(said.csat_sum, said.csat),
                said.satisfied_percent(),
                said.net_promoter_score(),
                Satisfaction::mean(said.rating_sum, said.ratings),
                count(said.follow_ups),
            ]
        })
        .collect();
    rows.sort_by(|a, b| match (&a[0], &b[0]) {
        (Cell::Text(a), Cell::Text(b)) => a.cmp(b),
        _ => std::cmp::Ordering::Equal,
    });
    Table {
        columns: vec![
            "agent",
            "tickets",
            "solved",
            "first_response_median_minutes",
            "resolution_median_hours",
            "first_contact_resolution_rate",
            "reopen_rate",
            "sla_attainment",
            "responses",
            "csat_average",
            "csat_satisfied_percent",
            "nps",
            "agent_rating_average",
            "follow_ups",
        ],
        rows,
    }
}

/// Tags and subject words of the week before `to`, against the week before that, rising first.
fn trends(scope: &Scope, facts: &TenantFacts, filter: &Filter) -> Table {
    let (this_week, last_week) = (scope.to - WEEK..scope.to, scope.to - 2 * WEEK..scope.to - WEEK);
    let mut counts: Map<(bool, u32), [usize; 2]> = Map::default();
    for ticket in facts.tickets.iter().filter(|ticket| {
        ticket.created != 0
            && (last_week.start..this_week.end).contains(&ticket.created)
            && filter.admits(&Subject::of_ticket(ticket))
    }) {
        let week = usize::from(last_week.contains(&ticket.created));
        for tag in &ticket.tags {
            counts.entry((true, *tag)).or_default()[week] += 1;
        }
        for term in &ticket.terms {
            counts.entry((false, *term)).or_default()[week] += 1;
        }
    }
    let mut rising: Vec<((bool, u32), [usize; 2])> =
        counts.into_iter().filter(|(_, [now, before])| *now >= 2 && now > before).collect();
    rising.sort_by(|(a_key, a), (b_key, b)| {
        let growth = |[now, before]: [usize; 2]| now as i64 - before as i64;
        growth(*b).cmp(&growth(*a)).then(b[0].cmp(&a[0])).then(a_key.cmp(b_key))
    });
    rising.truncate(TRENDS_LIMIT);
    let rows = rising
        .into_iter()
        .map(|((is_tag, id), [now, before])| {
            let (kind, name) = if is_tag { ("tag", facts.tags.name(id)) } else { ("phrase", facts.terms.name(id)) };
            vec![
                Cell::Text(name.to_owned()),
                Cell::Text(kind.to_owned()),
                count(now),
                count(before),
                number((before > 0).then(|| 100.0 * (now as f64 - before as f64) / before as f64)),
            ]
        })
        .collect();
    Table { columns: vec!["item", "kind", "this_week", "last_week", "change_percent"], rows }
}

/// The table as CSV (RFC 4180). Text that a spreadsheet would run as a formula is prefixed
/// with an apostrophe, since tags and subjects come from customers.
pub(crate) fn csv(table: &Table) -> String {
    fn field(text: &str) -> String {
        let text =
            if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text.to_owned() };
        if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text }
    }
    let mut out = table.columns.join(",");
    out.push_str("\r\n");
    for row in &table.rows {
        let cells: Vec<String> = row
            .iter()
            .map(|cell| match cell {
                Cell::Text(text) => field(text),
                Cell::Number(number) => number.to_string(),
                Cell::Null => String::new(),
            })
            .collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seoul_buckets_by_its_own_hours_and_days() {
        let zone: Tz = "Asia/Seoul".parse().unwrap();
        // 2026-11-22T15:30:00Z is 00:30 on Monday the 23rd in Seoul.
        let at = 1_795_361_400;
        let clock = Clock::new(zone, at - DAY, at + DAY);
        let local = clock.local(at);
        assert_eq!(local.rem_euclid(DAY) / 3600, 0);
        assert_eq!(WEEKDAYS[(local.div_euclid(DAY) + 3).rem_euclid(7) as usize], "Mon");
        assert_eq!(day_label(local.div_euclid(DAY)), "2026-11-23");
        assert_eq!(clock.utc_of_local_day(local.div_euclid(DAY)), at - 1800);
    }

    #[test]
    fn offsets_change_at_daylight_saving() {
        let zone: Tz = "America/New_York".parse().unwrap();
        // 2026-03-08T06:00Z is 01:00 EST; an hour later clocks show 03:00 EDT.
        let at = 1_772_949_600;
        let clock = Clock::new(zone, at - DAY, at + DAY);
        assert_eq!((clock.local(at) - at) / 3600, -5);
        assert_eq!((clock.local(at + 3600) - at - 3600) / 3600, -4);
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let table = Table {
            columns: vec!["group", "n"],
            rows: vec![
                vec![Cell::Text("=HYPERLINK(\"x\")".into()), Cell::Number(1.5)],
                vec![Cell::Text("a,b".into()), Cell::Null],
            ],
        };
        assert_eq!(csv(&table), "group,n\r\n\"'=HYPERLINK(\"\"x\"\")\",1.5\r\n\"a,b\",\r\n");
    }

    #[test]
    fn quantiles_pick_from_the_sorted_order() {
        let mut values = [5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut values, 0.5), Some(3.0));
        assert_eq!(quantile(&mut values, 0.9), Some(5.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }
}
