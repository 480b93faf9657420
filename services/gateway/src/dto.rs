//! The REST representation: snake_case fields, lowercase enum words, RFC 3339 timestamps.
//! Request types refuse unknown fields.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use helpdesk_proto::{
    common::v1 as common, feedback::v1 as feedback, knowledge::v1 as knowledge, routing::v1 as routing,
    ticketing::v1 as ticketing,
};
use helpdesk_runtime::time::{micros_to_timestamp, now_micros, timestamp_to_micros};
use pbjson_types::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// A REST enum mirroring a proto enum: lowercase words on the wire.
macro_rules! rest_enum {
    ($(#[$meta:meta])* $name:ident => $proto:ty { $($variant:ident),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub(crate) enum $name { $($variant),+ }

        impl From<$name> for $proto {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => <$proto>::$variant),+ }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> Self {
                <$proto>::from(value) as i32
            }
        }

        // Each enum gets both directions; not every enum is both returned and parsed from a query.
        #[allow(dead_code)]
        impl $name {
            pub(crate) fn from_proto(value: i32) -> Option<Self> {
                match <$proto>::try_from(value).ok()? {
                    $(<$proto>::$variant => Some(Self::$variant),)+
                    #[allow(unreachable_patterns)]
                    _ => None,
                }
            }

            /// Parses one lowercase word, as used in query strings.
            pub(crate) fn parse(field: &str, word: &str) -> Result<Self, ApiError> {
                serde_json::from_value(serde_json::Value::String(word.trim().to_owned()))
                    .map_err(|error| ApiError::field(field, error.to_string()))
            }
        }
    };
}

rest_enum!(Priority => common::Priority { Low, Normal, High, Urgent });
rest_enum!(Channel => common::Channel { Email, Chat, Phone, Social, Web, Api, InPerson });
rest_enum!(WorkState => routing::WorkState { Unrouted, Waiting, Offered, Assigned, Done });
rest_enum!(Presence => routing::Presence { Online, Away, Offline });
rest_enum!(Strategy => routing::Strategy { RoundRobin, LeastLoaded, BestSkill });
rest_enum!(SlaKind => routing::SlaKind { FirstResponse, NextResponse, Resolution });
rest_enum!(TargetState => routing::TargetState { Running, Paused, Met, Breached });
rest_enum!(Trigger => routing::Trigger {
    SlaWarning, SlaBreach, SupervisorRequested, CustomerFlagged, ThreatDetected, ReassignmentLimit, VipCustomer, Manual
});
rest_enum!(ArticleStatus => knowledge::ArticleStatus { Draft, InReview, Published, Archived });
rest_enum!(
    /// Who may read an article: everyone (also the public help center), agents and admins only, or
    /// agents, admins and customers in one of its segments.
    ArticleVisibility => knowledge::Visibility { Public, Internal, Restricted }
);
rest_enum!(DiffChange => knowledge::diff_line::Change { Equal, Insert, Delete });
rest_enum!(SurveyKind => feedback::SurveyKind { Csat, Nps, Ces, Custom });
rest_enum!(QuestionKind => feedback::QuestionKind { Scale, Text, Choice });
rest_enum!(InvitationState => feedback::InvitationState { Scheduled, Sent, Answered, Cancelled });
rest_enum!(FollowUpState => feedback::FollowUpState { Open, Closed });
rest_enum!(ReportKind => feedback::ReportKind { Volume, Performance, Backlog, Satisfaction, AgentScorecard, Trends });
rest_enum!(GroupBy => feedback::GroupBy { None, Channel, HourOfDay, DayOfWeek, Day, Week, Month, Agent, Team, Tag });

pub(crate) fn format_time(timestamp: Option<Timestamp>) -> Option<String> {
    let micros = timestamp_to_micros(&timestamp?);
    DateTime::<Utc>::from_timestamp_micros(micros).map(|time| time.to_rfc3339_opts(SecondsFormat::Micros, true))
}

pub(crate) fn parse_time(field: &str, value: &str) -> Result<Timestamp, ApiError> {
    let time = DateTime::parse_from_rfc3339(value)
        .map_err(|_| ApiError::field(field, "an RFC 3339 time such as 2026-11-22T09:00:00+09:00"))?;
    Ok(micros_to_timestamp(time.timestamp_micros()))
}

fn non_empty(value: String) -> Option<String> {
    (!value.is_empty()).then_some(value)
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Clone)]
#[serde(deny_unknown_fields)]
pub(crate) struct Attachment {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) content_type: String,
    pub(crate) size_bytes: i64,
    /// Hex SHA-256 of the content.
    pub sha256: String,
    pub(crate) storage_key: String,
}

impl From<Attachment> for ticketing::Attachment {
    fn from(a: Attachment) -> Self {
        Self {
            name: a.name,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            storage_key: a.storage_key,
        }
    }
}

impl From<ticketing::Attachment> for Attachment {
    fn from(a: ticketing::Attachment) -> Self {
        Self {
            name: a.name,
            content_type: a.content_type,
            size_bytes: a.size_bytes,
            sha256: a.sha256,
            storage_key: a.storage_key,
        }
    }
}

/// A ticket as routing sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WorkItem {
    pub(crate) ticket_id: String,
    pub(crate) state: Option<WorkState>,
    pub(crate) queue_id: Option<String>,
    pub(crate) assignee_id: Option<String>,
    /// The agent holding an open chat or phone offer.
    pub(crate) offered_to: Option<String>,
    pub(crate) priority: Option<Priority>,
    pub(crate) channel: Option<Channel>,
    pub(crate) language: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) enqueued_at: Option<String>,
    pub(crate) assigned_at: Option<String>,
    /// The earliest running SLA target.
    pub(crate) sla_due_at: Option<String>,
    pub(crate) reassignments: i32,
    /// The tier escalations have moved it to.
    pub(crate) tier: Option<String>,
}

impl From<routing::WorkItem> for WorkItem {
    fn from(w: routing::WorkItem) -> Self {
        Self {
            ticket_id: w.ticket_id,
            state: WorkState::from_proto(w.state),
            queue_id: non_empty(w.queue_id),
            assignee_id: non_empty(w.assignee_id),
            offered_to: non_empty(w.offered_to),
            priority: Priority::from_proto(w.priority),
            channel: Channel::from_proto(w.channel),
            language: non_empty(w.language),
            tags: w.tags,
            enqueued_at: format_time(w.enqueued_at),
            assigned_at: format_time(w.assigned_at),
            sla_due_at: format_time(w.sla_due_at),
            reassignments: w.reassignments,
            tier: non_empty(w.tier),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SlaTarget {
    pub(crate) kind: Option<SlaKind>,
    pub(crate) state: Option<TargetState>,
    /// When it breaches if the clock keeps running.
    pub(crate) due_at: Option<String>,
    pub(crate) warn_at: Option<String>,
    /// The target in business minutes.
    pub(crate) target_minutes: i64,
    pub(crate) met_at: Option<String>,
    pub(crate) breached_at: Option<String>,
}

impl From<routing::SlaTarget> for SlaTarget {
    fn from(t: routing::SlaTarget) -> Self {
        Self {
            kind: SlaKind::from_proto(t.kind),
            state: TargetState::from_proto(t.state),
            due_at: format_time(t.due_at),
            warn_at: format_time(t.warn_at),
            target_minutes: t.target_minutes,
            met_at: format_time(t.met_at),
            breached_at: format_time(t.breached_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketSla {
    /// Absent when no SLA policy applies.
    pub(crate) policy_id: Option<String>,
    pub(crate) targets: Vec<SlaTarget>,
}

impl From<routing::TicketSla> for TicketSla {
    fn from(s: routing::TicketSla) -> Self {
        Self { policy_id: non_empty(s.policy_id), targets: s.targets.into_iter().map(SlaTarget::from).collect() }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WaitEstimate {
    /// 1 for the next ticket to be assigned; 0 once assigned.
    pub(crate) position: i32,
    pub(crate) expected_wait_seconds: f64,
    /// In the ticket's language: "about 2 hours", "약 2시간".
    pub(crate) expected_wait_text: String,
}

impl From<routing::WaitEstimate> for WaitEstimate {
    fn from(w: routing::WaitEstimate) -> Self {
        Self {
            position: w.position,
            expected_wait_seconds: w.expected_wait_seconds,
            expected_wait_text: w.expected_wait_text,
        }
    }
}

/// A ticket's work item with its SLA clocks and expected wait.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TicketRouting {
    #[serde(flatten)]
    pub(crate) work_item: WorkItem,
    pub(crate) sla: TicketSla,
    pub(crate) wait: WaitEstimate,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Escalation {
    pub(crate) id: String,
    pub(crate) ticket_id: String,
    /// Absent for a manual escalation no rule matched.
    pub(crate) rule_id: Option<String>,
    pub(crate) trigger: Option<Trigger>,
    pub(crate) reason: String,
    /// `agent:<id>`, `sla`, `message:<id>` or `customer`.
    pub(crate) triggered_by: String,
    /// What was done, such as `priority urgent` or `queue billing-l2`.
    pub(crate) actions: Vec<String>,
    pub(crate) occurred_at: Option<String>,
}

impl From<routing::Escalation> for Escalation {
    fn from(e: routing::Escalation) -> Self {
        Self {
            id: e.id,
            ticket_id: e.ticket_id,
            rule_id: non_empty(e.rule_id),
            trigger: Trigger::from_proto(e.trigger),
            reason: e.reason,
            triggered_by: e.triggered_by,
            actions: e.actions,
            occurred_at: format_time(e.occurred_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EscalationList {
    /// Oldest first.
    pub(crate) escalations: Vec<Escalation>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscalateTicket {
    /// Why, in 1 to 2000 characters.
    pub(crate) reason: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AssignTicket {
    pub(crate) agent_id: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TransferTicket {
    /// Exactly one of `to_agent_id` and `to_queue_id`.
    #[serde(default)]
    pub(crate) to_agent_id: String,
    #[serde(default)]
    pub(crate) to_queue_id: String,
    /// Recorded on the ticket as an internal note.
    #[serde(default)]
    pub(crate) note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Skill {
    pub(crate) name: String,
    /// 1 (basic) to 10 (expert). In a queue: the lowest level it accepts.
    pub(crate) level: i32,
}

impl From<Skill> for routing::Skill {
    fn from(s: Skill) -> Self {
        Self { name: s.name, level: s.level }
    }
}

impl From<routing::Skill> for Skill {
    fn from(s: routing::Skill) -> Self {
        Self { name: s.name, level: s.level }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChannelCapacity {
    pub(crate) channel: Channel,
    /// How many tickets of this channel the agent handles at once.
    pub(crate) capacity: i32,
}

impl From<ChannelCapacity> for routing::ChannelCapacity {
    fn from(c: ChannelCapacity) -> Self {
        Self { channel: c.channel.into(), capacity: c.capacity }
    }
}

impl ChannelCapacity {
    pub(crate) fn from_proto(c: routing::ChannelCapacity) -> Option<Self> {
        Some(Self { channel: Channel::from_proto(c.channel)?, capacity: c.capacity })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ChannelLoad {
    pub(crate) channel: Option<Channel>,
    pub(crate) active: i32,
    pub(crate) capacity: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Agent {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) skills: Vec<Skill>,
    /// BCP 47 primary tags such as `ko` or `en`.
    pub(crate) languages: Vec<String>,
    pub(crate) capacities: Vec<ChannelCapacity>,
    pub(crate) team: Option<String>,
    pub(crate) tier: Option<String>,
    pub(crate) supervisor_id: Option<String>,
    pub(crate) presence: Option<Presence>,
    pub(crate) last_active_at: Option<String>,
    pub(crate) load: Vec<ChannelLoad>,
}

impl From<routing::Agent> for Agent {
    fn from(a: routing::Agent) -> Self {
        Self {
            id: a.id,
            name: a.name,
            skills: a.skills.into_iter().map(Skill::from).collect(),
            languages: a.languages,
            capacities: a.capacities.into_iter().filter_map(ChannelCapacity::from_proto).collect(),
            team: non_empty(a.team),
            tier: non_empty(a.tier),
            supervisor_id: non_empty(a.supervisor_id),
            presence: Presence::from_proto(a.presence),
            last_active_at: format_time(a.last_active_at),
            load: a
                .load
                .into_iter()
                .map(|l| ChannelLoad {
                    channel: Channel::from_proto(l.channel),
                    active: l.active,
                    capacity: l.capacity,
                })
                .collect(),
        }
    }
}

/// An agent's profile; presence and current work are kept.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertAgent {
    /// Defaults to the id.
    #[serde(default)]
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) skills: Vec<Skill>,
    /// BCP 47 primary tags such as `ko` or `en`.
    #[serde(default)]
    pub(crate) languages: Vec<String>,
    /// The channels served and how many at once; unlisted channels are not served.
    #[serde(default)]
    pub(crate) capacities: Vec<ChannelCapacity>,
    #[serde(default)]
    pub(crate) team: String,
    /// L1, L2, L3 or a specialist tier such as billing or legal.
    #[serde(default)]
    pub(crate) tier: String,
    /// The agent escalations go to.
    #[serde(default)]
    pub(crate) supervisor_id: String,
}

impl UpsertAgent {
    pub(crate) fn into_proto(self, id: String) -> routing::UpsertAgentRequest {
        routing::UpsertAgentRequest {
            agent: Some(routing::Agent {
                id,
                name: self.name,
                skills: self.skills.into_iter().map(routing::Skill::from).collect(),
                languages: self.languages,
                capacities: self.capacities.into_iter().map(routing::ChannelCapacity::from).collect(),
                team: self.team,
                tier: self.tier,
                supervisor_id: self.supervisor_id,
                ..Default::default()
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AgentList {
    pub(crate) agents: Vec<Agent>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListAgentsQuery {
    /// online, away or offline; all agents when absent.
    pub(crate) presence: Option<String>,
}

impl ListAgentsQuery {
    pub(crate) fn into_proto(self) -> Result<routing::ListAgentsRequest, ApiError> {
        let presence = self.presence.map(|word| Presence::parse("presence", &word)).transpose()?;
        Ok(routing::ListAgentsRequest { presence: presence.map(i32::from).unwrap_or_default() })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetPresence {
    pub(crate) presence: Presence,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Queue {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) position: i32,
    /// Empty for all channels.
    pub(crate) channels: Vec<Channel>,
    pub(crate) language: Option<String>,
    pub(crate) match_tags: Vec<String>,
    pub(crate) required_skills: Vec<Skill>,
    pub(crate) strategy: Option<Strategy>,
    pub(crate) overflow_queue_id: Option<String>,
    pub(crate) overflow_after_seconds: i32,
    pub(crate) offer_timeout_seconds: i32,
    pub(crate) team: Option<String>,
    pub(crate) tier: Option<String>,
}

impl From<routing::Queue> for Queue {
    fn from(q: routing::Queue) -> Self {
        Self {
            id: q.id,
            name: q.name,
            position: q.position,
            channels: q.channels.into_iter().filter_map(Channel::from_proto).collect(),
            language: non_empty(q.language),
            match_tags: q.match_tags,
            required_skills: q.required_skills.into_iter().map(Skill::from).collect(),
            strategy: Strategy::from_proto(q.strategy),
            overflow_queue_id: non_empty(q.overflow_queue_id),
            overflow_after_seconds: q.overflow_after_seconds,
            offer_timeout_seconds: q.offer_timeout_seconds,
            team: non_empty(q.team),
            tier: non_empty(q.tier),
        }
    }
}

/// A queue's definition. Overflow chains must not loop.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertQueue {
    /// Defaults to the id.
    #[serde(default)]
    pub(crate) name: String,
    /// Lower positions are tried first when a ticket names no queue.
    #[serde(default)]
    pub(crate) position: i32,
    /// Channels it takes; empty for all.
    #[serde(default)]
    pub(crate) channels: Vec<Channel>,
    /// Language it takes (`ko`, `en`); empty for any.
    #[serde(default)]
    pub(crate) language: String,
    /// Tickets with any of these tags go here; empty matches any ticket.
    #[serde(default)]
    pub(crate) match_tags: Vec<String>,
    /// Skills, with minimum levels, an agent needs to take its tickets.
    #[serde(default)]
    pub(crate) required_skills: Vec<Skill>,
    pub(crate) strategy: Option<Strategy>,
    /// After `overflow_after_seconds` unassigned, a ticket moves to this wider queue.
    #[serde(default)]
    pub(crate) overflow_queue_id: String,
    #[serde(default)]
    pub(crate) overflow_after_seconds: i32,
    /// How long a chat or phone offer waits for the agent (0 for 30 s).
    #[serde(default)]
    pub(crate) offer_timeout_seconds: i32,
    /// Team and tier whose agents it is for; empty for any.
    #[serde(default)]
    pub(crate) team: String,
    #[serde(default)]
    pub(crate) tier: String,
}

impl UpsertQueue {
    pub(crate) fn into_proto(self, id: String) -> routing::UpsertQueueRequest {
        routing::UpsertQueueRequest {
            queue: Some(routing::Queue {
                id,
                name: self.name,
                position: self.position,
                channels: self.channels.into_iter().map(i32::from).collect(),
                language: self.language,
                match_tags: self.match_tags,
                required_skills: self.required_skills.into_iter().map(routing::Skill::from).collect(),
                strategy: self.strategy.map(i32::from).unwrap_or_default(),
                overflow_queue_id: self.overflow_queue_id,
                overflow_after_seconds: self.overflow_after_seconds,
                offer_timeout_seconds: self.offer_timeout_seconds,
                team: self.team,
                tier: self.tier,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueList {
    pub(crate) queues: Vec<Queue>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueueStats {
    pub(crate) queue_id: String,
    /// Tickets not yet assigned.
    pub(crate) waiting: i32,
    /// Agents online who qualify for the queue.
    pub(crate) agents_online: i32,
    /// Of those, agents with capacity left.
    pub(crate) agents_available: i32,
    /// Mean handle time of recently completed tickets.
    pub(crate) average_handle_seconds: f64,
    /// Expected wait of a ticket joining now.
    pub(crate) expected_wait_seconds: f64,
    pub(crate) oldest_waiting_since: Option<String>,
}

impl From<routing::QueueStats> for QueueStats {
    fn from(s: routing::QueueStats) -> Self {
        Self {
            queue_id: s.queue_id,
            waiting: s.waiting,
            agents_online: s.agents_online,
            agents_available: s.agents_available,
            average_handle_seconds: s.average_handle_seconds,
            expected_wait_seconds: s.expected_wait_seconds,
            oldest_waiting_since: format_time(s.oldest_waiting_since),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForecastInterval {
    /// A label such as `2026-12-24T10:00`.
    pub(crate) label: String,
    /// Contacts expected in the interval.
    pub(crate) contacts: f64,
}

/// A contact forecast to staff with Erlang C.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForecastStaffing {
    pub(crate) intervals: Vec<ForecastInterval>,
    /// Length of each interval (0 for 1800).
    #[serde(default)]
    pub(crate) interval_seconds: i32,
    pub(crate) average_handle_seconds: f64,
    /// Share of contacts to answer within `answer_within_seconds`, such as 0.8.
    pub(crate) service_level: f64,
    pub(crate) answer_within_seconds: f64,
    /// Highest share of time agents may be busy (0 for 0.85).
    #[serde(default)]
    pub(crate) max_occupancy: f64,
}

impl From<ForecastStaffing> for routing::ForecastStaffingRequest {
    fn from(f: ForecastStaffing) -> Self {
        Self {
            intervals: f
                .intervals
                .into_iter()
                .map(|i| routing::ForecastInterval { label: i.label, contacts: i.contacts })
                .collect(),
            interval_seconds: f.interval_seconds,
            average_handle_seconds: f.average_handle_seconds,
            service_level: f.service_level,
            answer_within_seconds: f.answer_within_seconds,
            max_occupancy: f.max_occupancy,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct IntervalStaffing {
    pub(crate) label: String,
    pub(crate) agents: i32,
    /// Offered load in Erlangs.
    pub(crate) traffic: f64,
    pub(crate) service_level: f64,
    pub(crate) occupancy: f64,
    pub(crate) probability_of_waiting: f64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StaffingForecast {
    pub(crate) intervals: Vec<IntervalStaffing>,
    pub(crate) peak_agents: i32,
}

impl From<routing::ForecastStaffingResponse> for StaffingForecast {
    fn from(r: routing::ForecastStaffingResponse) -> Self {
        Self {
            intervals: r
                .intervals
                .into_iter()
                .map(|i| IntervalStaffing {
                    label: i.label,
                    agents: i.agents,
                    traffic: i.traffic,
                    service_level: i.service_level,
                    occupancy: i.occupancy,
                    probability_of_waiting: i.probability_of_waiting,
                })
                .collect(),
            peak_agents: r.peak_agents,
        }
    }
}

// Knowledge base

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticleStats {
    pub(crate) views: i64,
    pub(crate) helpful_votes: i64,
    pub(crate) unhelpful_votes: i64,
}

impl From<knowledge::ArticleStats> for ArticleStats {
    fn from(s: knowledge::ArticleStats) -> Self {
        Self { views: s.views, helpful_votes: s.helpful_votes, unhelpful_votes: s.unhelpful_votes }
    }
}

/// Another locale's version of an article.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Translation {
    pub(crate) article_id: String,
    pub(crate) locale: String,
    pub(crate) slug: String,
    pub(crate) title: String,
    pub(crate) status: Option<ArticleStatus>,
}

impl From<knowledge::Translation> for Translation {
    fn from(t: knowledge::Translation) -> Self {
        Self {
            article_id: t.article_id,
            locale: t.locale,
            slug: t.slug,
            title: t.title,
            status: ArticleStatus::from_proto(t.status),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Article {
    pub(crate) id: String,
    /// Shared by an article and its translations.
    pub(crate) translation_group: String,
    /// `ko` or `en`.
    pub(crate) locale: String,
    pub(crate) slug: String,
    /// The stable address in the help center: `/help/{locale}/articles/{slug}`.
    pub(crate) url_path: String,
    pub(crate) title: String,
    pub(crate) body_markdown: String,
    /// Rendered from the Markdown and sanitized: safe to insert into a page.
    pub(crate) body_html: String,
    pub(crate) category_id: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) visibility: Option<ArticleVisibility>,
    /// Customer segments (tier or customer tags) that may see a restricted article.
    pub(crate) segments: Vec<String>,
    pub(crate) status: Option<ArticleStatus>,
    /// The current content version, from 1. Send it back as `expected_version` when updating.
    pub(crate) version: i32,
    /// Customer phrasings the article answers; they weigh in search and suggestions.
    pub(crate) questions: Vec<String>,
    pub(crate) author: String,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    pub(crate) published_at: Option<String>,
    pub(crate) stats: ArticleStats,
    pub(crate) translations: Vec<Translation>,
    /// Staff only: what an agent proposed for this published article, not yet live.
    pub(crate) pending_revision: Option<ArticleRevision>,
}

/// Content an agent proposed for a published article; an admin publishes it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticleRevision {
    /// The version it was proposed on; publishing refuses it once the article moved on.
    pub(crate) based_on_version: i32,
    pub(crate) title: String,
    pub(crate) body_markdown: String,
    pub(crate) body_html: String,
    pub(crate) category_id: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) visibility: Option<ArticleVisibility>,
    pub(crate) segments: Vec<String>,
    pub(crate) questions: Vec<String>,
    pub(crate) slug: String,
    pub(crate) author: String,
    pub(crate) change_note: String,
    pub(crate) proposed_at: Option<String>,
}

impl From<knowledge::ArticleRevision> for ArticleRevision {
    fn from(r: knowledge::ArticleRevision) -> Self {
        Self {
            based_on_version: r.based_on_version,
            title: r.title,
            body_markdown: r.body_markdown,
            body_html: r.body_html,
            category_id: non_empty(r.category_id),
            tags: r.tags,
            visibility: ArticleVisibility::from_proto(r.visibility),
            segments: r.segments,
            questions: r.questions,
            slug: r.slug,
            author: r.author,
            change_note: r.change_note,
            proposed_at: format_time(r.proposed_at),
        }
    }
}

impl From<knowledge::Article> for Article {
    fn from(a: knowledge::Article) -> Self {
        Self {
            id: a.id,
            translation_group: a.translation_group,
            locale: a.locale,
            slug: a.slug,
            url_path: a.url_path,
            title: a.title,
            body_markdown: a.body_markdown,
            body_html: a.body_html,
            category_id: non_empty(a.category_id),
            tags: a.tags,
            visibility: ArticleVisibility::from_proto(a.visibility),
            segments: a.segments,
            status: ArticleStatus::from_proto(a.status),
            version: a.version,
            questions: a.questions,
            author: a.author,
            created_at: format_time(a.created_at),
            updated_at: format_time(a.updated_at),
            published_at: format_time(a.published_at),
            stats: a.stats.unwrap_or_default().into(),
            translations: a.translations.into_iter().map(Translation::from).collect(),
            pending_revision: a.pending_revision.map(ArticleRevision::from),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateArticle {
    /// `ko` or `en`.
    pub(crate) locale: String,
    pub(crate) title: String,
    /// Markdown; a published article needs one.
    #[serde(default)]
    pub(crate) body_markdown: String,
    #[serde(default)]
    pub(crate) category_id: String,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    pub(crate) visibility: Option<ArticleVisibility>,
    /// Customer segments that may see a restricted article.
    #[serde(default)]
    pub(crate) segments: Vec<String>,
    /// Customer phrasings the article answers.
    #[serde(default)]
    pub(crate) questions: Vec<String>,
    /// Derived from the title when empty.
    #[serde(default)]
    pub(crate) slug: String,
    /// Makes the new article a translation of this one, which must be in another locale.
    #[serde(default)]
    pub(crate) translation_of: String,
    #[serde(default)]
    pub(crate) change_note: String,
}

impl From<CreateArticle> for knowledge::CreateArticleRequest {
    fn from(a: CreateArticle) -> Self {
        Self {
            locale: a.locale,
            title: a.title,
            body_markdown: a.body_markdown,
            category_id: a.category_id,
            tags: a.tags,
            visibility: a.visibility.map(i32::from).unwrap_or_default(),
            segments: a.segments,
            questions: a.questions,
            slug: a.slug,
            translation_of: a.translation_of,
            change_note: a.change_note,
        }
    }
}

/// Fields left out keep their value; every change is a new version.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpdateArticle {
    /// When set, the update is refused with 409 unless the article is still at this version.
    pub(crate) expected_version: Option<i32>,
    pub(crate) title: Option<String>,
    pub(crate) body_markdown: Option<String>,
    pub(crate) category_id: Option<String>,
    /// Replaces every tag.
    pub(crate) tags: Option<Vec<String>>,
    pub(crate) visibility: Option<ArticleVisibility>,
    /// Replaces every segment.
    pub(crate) segments: Option<Vec<String>>,
    /// Replaces every question.
    pub(crate) questions: Option<Vec<String>>,
    pub(crate) slug: Option<String>,
    /// Recorded with the new version.
    #[serde(default)]
    pub(crate) change_note: String,
}

impl UpdateArticle {
    pub(crate) fn into_proto(self, id: String) -> knowledge::UpdateArticleRequest {
        let list = |values: Option<Vec<String>>| values.map(|values| knowledge::StringList { values });
        knowledge::UpdateArticleRequest {
            id,
            expected_version: self.expected_version.unwrap_or_default(),
            title: self.title,
            body_markdown: self.body_markdown,
            category_id: self.category_id,
            tags: list(self.tags),
            visibility: self.visibility.map(i32::from),
            segments: list(self.segments),
            questions: list(self.questions),
            slug: self.slug,
            change_note: self.change_note,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListArticlesQuery {
    /// `ko` or `en`; all locales when absent.
    pub(crate) locale: Option<String>,
    /// draft, in_review, published or archived; all when absent.
    pub(crate) status: Option<String>,
    pub(crate) category_id: Option<String>,
    pub(crate) tag: Option<String>,
    pub(crate) page_size: Option<i32>,
    pub(crate) page_token: Option<String>,
}

impl ListArticlesQuery {
    pub(crate) fn into_proto(self) -> Result<knowledge::ListArticlesRequest, ApiError> {
        let status = self.status.map(|word| ArticleStatus::parse("status", &word)).transpose()?;
        Ok(knowledge::ListArticlesRequest {
            locale: self.locale.unwrap_or_default(),
            status: status.map(i32::from).unwrap_or_default(),
            category_id: self.category_id.unwrap_or_default(),
            tag: self.tag.unwrap_or_default(),
            page_size: self.page_size.unwrap_or_default(),
            page_token: self.page_token.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticlePage {
    pub(crate) articles: Vec<Article>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub(crate) next_page_token: Option<String>,
}

impl From<knowledge::ListArticlesResponse> for ArticlePage {
    fn from(response: knowledge::ListArticlesResponse) -> Self {
        Self {
            articles: response.articles.into_iter().map(Article::from).collect(),
            next_page_token: non_empty(response.next_page_token),
        }
    }
}

/// A step in the workflow: draft, in review, published, archived.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetArticleStatus {
    pub(crate) status: ArticleStatus,
    #[serde(default)]
    pub(crate) note: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ArticleVersion {
    pub(crate) article_id: String,
    pub(crate) version: i32,
    pub(crate) title: String,
    /// Absent in version lists.
    pub(crate) body_markdown: Option<String>,
    pub(crate) category_id: Option<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) questions: Vec<String>,
    pub(crate) author: String,
    pub(crate) change_note: String,
    pub(crate) created_at: Option<String>,
}

impl From<knowledge::ArticleVersion> for ArticleVersion {
    fn from(v: knowledge::ArticleVersion) -> Self {
        Self {
            article_id: v.article_id,
            version: v.version,
            title: v.title,
            body_markdown: non_empty(v.body_markdown),
            category_id: non_empty(v.category_id),
            tags: v.tags,
            questions: v.questions,
            author: v.author,
            change_note: v.change_note,
            created_at: format_time(v.created_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionList {
    /// Newest first, without bodies.
    pub(crate) versions: Vec<ArticleVersion>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DiffQuery {
    /// The older version.
    pub(crate) from: Option<i32>,
    /// The newer version.
    pub(crate) to: Option<i32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DiffLine {
    pub(crate) change: Option<DiffChange>,
    pub(crate) text: String,
}

/// Line by line differences between two versions' bodies.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VersionDiff {
    pub(crate) article_id: String,
    pub(crate) from_version: i32,
    pub(crate) to_version: i32,
    pub(crate) title_changed: bool,
    pub(crate) lines: Vec<DiffLine>,
}

impl From<knowledge::VersionDiff> for VersionDiff {
    fn from(d: knowledge::VersionDiff) -> Self {
        Self {
            article_id: d.article_id,
            from_version: d.from_version,
            to_version: d.to_version,
            title_changed: d.title_changed,
            lines: d
                .lines
                .into_iter()
                .map(|l| DiffLine { change: DiffChange::from_proto(l.change), text: l.text })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RestoreVersion {
    #[serde(default)]
    pub(crate) change_note: String,
}

/// "Was this helpful?"; voting again replaces the vote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vote {
    pub(crate) helpful: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Category {
    pub(crate) id: String,
    /// Absent for a top-level category.
    pub(crate) parent_id: Option<String>,
    /// Names by locale, e.g. `{"ko": "결제", "en": "Billing"}`.
    pub(crate) names: HashMap<String, String>,
    pub(crate) position: i32,
}

impl From<knowledge::Category> for Category {
    fn from(c: knowledge::Category) -> Self {
        Self { id: c.id, parent_id: non_empty(c.parent_id), names: c.names, position: c.position }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CategoryList {
    /// Parents before children, by position.
    pub(crate) categories: Vec<Category>,
}

impl From<knowledge::ListCategoriesResponse> for CategoryList {
    fn from(response: knowledge::ListCategoriesResponse) -> Self {
        Self { categories: response.categories.into_iter().map(Category::from).collect() }
    }
}

/// A category's definition. Parents must not loop.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertCategory {
    /// Empty or absent for a top-level category.
    #[serde(default)]
    pub(crate) parent_id: String,
    /// Names by locale, e.g. `{"ko": "결제", "en": "Billing"}`; at least one.
    pub(crate) names: HashMap<String, String>,
    /// Lower positions come first among siblings.
    #[serde(default)]
    pub(crate) position: i32,
}

impl UpsertCategory {
    pub(crate) fn into_proto(self, id: String) -> knowledge::UpsertCategoryRequest {
        knowledge::UpsertCategoryRequest {
            category: Some(knowledge::Category {
                id,
                parent_id: self.parent_id,
                names: self.names,
                position: self.position,
            }),
        }
    }
}

/// A locale's synonym groups: a query for any term of a group also finds the others.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Synonyms {
    pub(crate) locale: String,
    pub(crate) groups: Vec<Vec<String>>,
}

impl From<knowledge::Synonyms> for Synonyms {
    fn from(s: knowledge::Synonyms) -> Self {
        Self { locale: s.locale, groups: s.groups.into_iter().map(|group| group.terms).collect() }
    }
}

/// Replaces every synonym group of the locale.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SetSynonyms {
    /// Each group has two terms or more, e.g. `[["환불", "반품"], ["배송", "택배"]]`.
    pub(crate) groups: Vec<Vec<String>>,
}

impl SetSynonyms {
    pub(crate) fn into_proto(self, locale: String) -> knowledge::SetSynonymsRequest {
        knowledge::SetSynonymsRequest {
            locale,
            groups: self.groups.into_iter().map(|terms| knowledge::SynonymGroup { terms }).collect(),
        }
    }
}

/// The `q` a search needs, trimmed.
fn required_query(q: Option<String>) -> Result<String, ApiError> {
    match q.map(|q| q.trim().to_owned()) {
        Some(q) if !q.is_empty() => Ok(q),
        _ => Err(ApiError::field("q", "is required")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct SearchQuery {
    /// Keywords, Korean or English. Required.
    pub(crate) q: Option<String>,
    /// Which locale's articles to search; detected from the query when absent.
    pub(crate) locale: Option<String>,
    pub(crate) category_id: Option<String>,
    pub(crate) tag: Option<String>,
    /// At most 50; 10 when absent.
    pub(crate) limit: Option<i32>,
}

impl SearchQuery {
    pub(crate) fn into_proto(self) -> Result<knowledge::SearchRequest, ApiError> {
        Ok(knowledge::SearchRequest {
            query: required_query(self.q)?,
            locale: self.locale.unwrap_or_default(),
            category_id: self.category_id.unwrap_or_default(),
            tag: self.tag.unwrap_or_default(),
            limit: self.limit.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublicSearchQuery {
    /// Keywords, Korean or English. Required.
    pub(crate) q: Option<String>,
    /// Which locale's articles to search; detected from the query when absent.
    pub(crate) locale: Option<String>,
    pub(crate) category_id: Option<String>,
    /// At most 50; 10 when absent.
    pub(crate) limit: Option<i32>,
}

impl PublicSearchQuery {
    pub(crate) fn into_proto(self, tenant_id: String) -> Result<knowledge::PublicSearchRequest, ApiError> {
        Ok(knowledge::PublicSearchRequest {
            tenant_id,
            query: required_query(self.q)?,
            locale: self.locale.unwrap_or_default(),
            category_id: self.category_id.unwrap_or_default(),
            limit: self.limit.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SearchHit {
    pub(crate) article_id: String,
    pub(crate) title: String,
    pub(crate) slug: String,
    pub(crate) url_path: String,
    pub(crate) category_id: Option<String>,
    /// A fragment of the body with the matched terms in `<mark>`; everything else escaped.
    pub(crate) snippet_html: String,
    pub(crate) score: f64,
    pub(crate) visibility: Option<ArticleVisibility>,
}

/// Published articles the caller may see, best first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SearchResults {
    pub(crate) hits: Vec<SearchHit>,
    /// The locale searched.
    pub(crate) locale: String,
    /// Send it with `/clicks` when a hit is opened.
    pub(crate) search_id: String,
    /// Whether the query was corrected for typos.
    pub(crate) fuzzy: bool,
}

impl From<knowledge::SearchResponse> for SearchResults {
    fn from(r: knowledge::SearchResponse) -> Self {
        Self {
            hits: r
                .hits
                .into_iter()
                .map(|h| SearchHit {
                    article_id: h.article_id,
                    title: h.title,
                    slug: h.slug,
                    url_path: h.url_path,
                    category_id: non_empty(h.category_id),
                    snippet_html: h.snippet_html,
                    score: h.score,
                    visibility: ArticleVisibility::from_proto(h.visibility),
                })
                .collect(),
            locale: r.locale,
            search_id: r.search_id,
            fuzzy: r.fuzzy,
        }
    }
}

/// The text to find answering articles for, such as a contact form before it is sent.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SuggestArticles {
    /// Subject or body (or both) is required.
    #[serde(default)]
    pub(crate) subject: String,
    #[serde(default)]
    pub(crate) body: String,
    /// Detected from the text when absent.
    #[serde(default)]
    pub(crate) locale: String,
    /// At most 10; 3 when absent.
    #[serde(default)]
    pub(crate) limit: i32,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Suggestion {
    pub(crate) article_id: String,
    pub(crate) title: String,
    pub(crate) url_path: String,
    pub(crate) score: f64,
    /// 0 to 1: how sure the match is.
    pub(crate) confidence: f64,
}

/// The articles that most likely answer; empty when none is a confident match.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Suggestions {
    pub(crate) suggestions: Vec<Suggestion>,
    pub(crate) locale: String,
    /// The best match's confidence, also when it was too low to suggest anything.
    pub(crate) confidence: f64,
    /// Send it with `/clicks` when a suggestion is opened.
    pub(crate) search_id: String,
}

impl From<knowledge::SuggestResponse> for Suggestions {
    fn from(r: knowledge::SuggestResponse) -> Self {
        Self {
            suggestions: r
                .suggestions
                .into_iter()
                .map(|s| Suggestion {
                    article_id: s.article_id,
                    title: s.title,
                    url_path: s.url_path,
                    score: s.score,
                    confidence: s.confidence,
                })
                .collect(),
            locale: r.locale,
            confidence: r.confidence,
            search_id: r.search_id,
        }
    }
}

/// A search hit or suggestion that was opened.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordClick {
    pub(crate) search_id: String,
    pub(crate) article_id: String,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ContentGapsQuery {
    /// RFC 3339; defaults to 30 days before `until`.
    pub(crate) since: Option<String>,
    /// RFC 3339; defaults to now.
    pub(crate) until: Option<String>,
    /// `ko` or `en`; both when absent.
    pub(crate) locale: Option<String>,
    /// Rows per list, at most 200; 20 when absent.
    pub(crate) limit: Option<i32>,
}

impl ContentGapsQuery {
    pub(crate) fn into_proto(self) -> Result<knowledge::ContentGapsRequest, ApiError> {
        let time = |field: &str, value: Option<String>| value.map(|value| parse_time(field, &value)).transpose();
        Ok(knowledge::ContentGapsRequest {
            since: time("since", self.since)?,
            until: time("until", self.until)?,
            locale: self.locale.unwrap_or_default(),
            limit: self.limit.unwrap_or_default(),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct QueryStat {
    pub(crate) query: String,
    pub(crate) locale: String,
    pub(crate) searches: i64,
    pub(crate) clicks: i64,
    pub(crate) average_results: f64,
}

impl From<knowledge::QueryStat> for QueryStat {
    fn from(q: knowledge::QueryStat) -> Self {
        Self {
            query: q.query,
            locale: q.locale,
            searches: q.searches,
            clicks: q.clicks,
            average_results: q.average_results,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TopicStat {
    /// The words the tickets share.
    pub(crate) topic: String,
    pub(crate) locale: String,
    pub(crate) tickets: i64,
    pub(crate) example_ticket_ids: Vec<String>,
}

impl From<knowledge::TopicStat> for TopicStat {
    fn from(t: knowledge::TopicStat) -> Self {
        Self { topic: t.topic, locale: t.locale, tickets: t.tickets, example_ticket_ids: t.example_ticket_ids }
    }
}

/// What to write next.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ContentGaps {
    /// Searches that found nothing.
    pub(crate) zero_result_queries: Vec<QueryStat>,
    /// Searched often, results shown, rarely opened.
    pub(crate) low_click_queries: Vec<QueryStat>,
    /// Tickets that got no confident suggestion, grouped by their words.
    pub(crate) uncovered_topics: Vec<TopicStat>,
}

impl From<knowledge::ContentGapsResponse> for ContentGaps {
    fn from(r: knowledge::ContentGapsResponse) -> Self {
        Self {
            zero_result_queries: r.zero_result_queries.into_iter().map(QueryStat::from).collect(),
            low_click_queries: r.low_click_queries.into_iter().map(QueryStat::from).collect(),
            uncovered_topics: r.uncovered_topics.into_iter().map(TopicStat::from).collect(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Reindexed {
    /// Articles indexed.
    pub(crate) articles: i64,
    pub(crate) seconds: f64,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct PublicArticleQuery {
    /// The slug's locale, `ko` or `en`; needed when the path names a slug.
    pub(crate) locale: Option<String>,
}

// Feedback

/// Text in each supported language; a customer reads theirs, else English, else Korean.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct LocalizedText {
    pub(crate) en: String,
    pub(crate) ko: String,
}

impl From<LocalizedText> for feedback::LocalizedText {
    fn from(t: LocalizedText) -> Self {
        Self { en: t.en, ko: t.ko }
    }
}

impl From<feedback::LocalizedText> for LocalizedText {
    fn from(t: feedback::LocalizedText) -> Self {
        Self { en: t.en, ko: t.ko }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Question {
    /// Lowercase letters, digits and underscores; unique within the survey.
    pub(crate) id: String,
    pub(crate) kind: QuestionKind,
    pub(crate) text: LocalizedText,
    /// The range of a scale question.
    #[serde(default)]
    pub(crate) min: i32,
    #[serde(default)]
    pub(crate) max: i32,
    /// A choice question's choices; its answers give an index.
    #[serde(default)]
    pub(crate) choices: Vec<LocalizedText>,
    /// A question about the agent ("how knowledgeable was the agent?"), reported per agent.
    #[serde(default)]
    pub(crate) about_agent: bool,
    #[serde(default)]
    pub(crate) required: bool,
}

impl From<Question> for feedback::Question {
    fn from(q: Question) -> Self {
        Self {
            id: q.id,
            kind: q.kind.into(),
            text: Some(q.text.into()),
            min: q.min,
            max: q.max,
            choices: q.choices.into_iter().map(feedback::LocalizedText::from).collect(),
            about_agent: q.about_agent,
            required: q.required,
        }
    }
}

impl Question {
    pub(crate) fn from_proto(q: feedback::Question) -> Option<Self> {
        Some(Self {
            kind: QuestionKind::from_proto(q.kind)?,
            id: q.id,
            text: q.text.unwrap_or_default().into(),
            min: q.min,
            max: q.max,
            choices: q.choices.into_iter().map(LocalizedText::from).collect(),
            about_agent: q.about_agent,
            required: q.required,
        })
    }
}

/// When a survey is sent.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct TriggerRule {
    /// Send when a ticket is solved.
    pub(crate) on_solved: bool,
    /// Minutes to wait after solving; the survey is dropped if the ticket reopens meanwhile.
    pub(crate) delay_minutes: i32,
    /// Only tickets from these channels; every channel when empty.
    pub(crate) channels: Vec<Channel>,
    /// Share of eligible tickets surveyed, 1 to 100.
    pub(crate) sampling_percent: i32,
    /// At most one survey per customer in this many days; 0 for no limit.
    pub(crate) throttle_days: i32,
}

impl From<TriggerRule> for feedback::TriggerRule {
    fn from(t: TriggerRule) -> Self {
        Self {
            on_solved: t.on_solved,
            delay_minutes: t.delay_minutes,
            channels: t.channels.into_iter().map(i32::from).collect(),
            sampling_percent: t.sampling_percent,
            throttle_days: t.throttle_days,
        }
    }
}

impl From<feedback::TriggerRule> for TriggerRule {
    fn from(t: feedback::TriggerRule) -> Self {
        Self {
            on_solved: t.on_solved,
            delay_minutes: t.delay_minutes,
            channels: t.channels.into_iter().filter_map(Channel::from_proto).collect(),
            sampling_percent: t.sampling_percent,
            throttle_days: t.throttle_days,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Survey {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) kind: Option<SurveyKind>,
    pub(crate) questions: Vec<Question>,
    pub(crate) trigger: TriggerRule,
    /// A score at or below this opens a follow-up.
    pub(crate) follow_up_at_or_below: i32,
    /// How long a link may be answered and revised.
    pub(crate) link_ttl_hours: i32,
    pub(crate) active: bool,
    pub(crate) created_at: Option<String>,
    pub(crate) updated_at: Option<String>,
}

impl From<feedback::Survey> for Survey {
    fn from(s: feedback::Survey) -> Self {
        Self {
            id: s.id,
            name: s.name,
            kind: SurveyKind::from_proto(s.kind),
            questions: s.questions.into_iter().filter_map(Question::from_proto).collect(),
            trigger: s.trigger.unwrap_or_default().into(),
            follow_up_at_or_below: s.follow_up_at_or_below,
            link_ttl_hours: s.link_ttl_hours,
            active: s.active,
            created_at: format_time(s.created_at),
            updated_at: format_time(s.updated_at),
        }
    }
}

/// A survey's definition: its questions, when it is sent and which scores open a follow-up.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct UpsertSurvey {
    pub(crate) name: String,
    pub(crate) kind: SurveyKind,
    /// For csat, nps and ces the score question comes first and is filled in when omitted; a
    /// custom survey's first scale question is its score.
    #[serde(default)]
    pub(crate) questions: Vec<Question>,
    #[serde(default)]
    pub(crate) trigger: TriggerRule,
    /// A score at or below this opens a follow-up. Defaults: csat 2, nps 6, ces 3.
    #[serde(default)]
    pub(crate) follow_up_at_or_below: i32,
    /// How long a link may be answered and revised.
    #[serde(default)]
    pub(crate) link_ttl_hours: i32,
    /// Only active surveys are sent.
    #[serde(default)]
    pub(crate) active: bool,
}

impl UpsertSurvey {
    /// The request to create a survey (`id` empty) or replace one.
    pub(crate) fn into_proto(self, id: String) -> feedback::UpsertSurveyRequest {
        feedback::UpsertSurveyRequest {
            survey: Some(feedback::Survey {
                id,
                name: self.name,
                kind: self.kind.into(),
                questions: self.questions.into_iter().map(feedback::Question::from).collect(),
                trigger: Some(self.trigger.into()),
                follow_up_at_or_below: self.follow_up_at_or_below,
                link_ttl_hours: self.link_ttl_hours,
                active: self.active,
                created_at: None,
                updated_at: None,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SurveyList {
    pub(crate) surveys: Vec<Survey>,
}

/// The tenant's time zone for reports and the lead of each team for follow-ups.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub(crate) struct Settings {
    /// IANA zone report buckets use, such as `Asia/Seoul`.
    pub(crate) time_zone: String,
    /// Team (ticket group) → agent id of its lead, who receives follow-ups when the agent has no
    /// supervisor in routing.
    pub(crate) team_leads: HashMap<String, String>,
}

impl From<Settings> for feedback::Settings {
    fn from(s: Settings) -> Self {
        Self { time_zone: s.time_zone, team_leads: s.team_leads }
    }
}

impl From<feedback::Settings> for Settings {
    fn from(s: feedback::Settings) -> Self {
        Self { time_zone: s.time_zone, team_leads: s.team_leads }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListInvitationsQuery {
    /// Only this ticket's invitations.
    pub(crate) ticket_id: Option<String>,
    pub(crate) limit: Option<i32>,
}

impl From<ListInvitationsQuery> for feedback::ListInvitationsRequest {
    fn from(q: ListInvitationsQuery) -> Self {
        Self { ticket_id: q.ticket_id.unwrap_or_default(), limit: q.limit.unwrap_or_default() }
    }
}

/// A survey sent or scheduled for a ticket; the link itself is never shown.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Invitation {
    pub(crate) id: String,
    pub(crate) survey_id: String,
    pub(crate) ticket_id: String,
    pub(crate) customer_id: String,
    /// `en` or `ko`.
    pub(crate) locale: String,
    pub(crate) channel: Option<Channel>,
    pub(crate) state: Option<InvitationState>,
    pub(crate) send_at: Option<String>,
    pub(crate) sent_at: Option<String>,
    pub(crate) expires_at: Option<String>,
}

impl From<feedback::Invitation> for Invitation {
    fn from(i: feedback::Invitation) -> Self {
        Self {
            id: i.id,
            survey_id: i.survey_id,
            ticket_id: i.ticket_id,
            customer_id: i.customer_id,
            locale: i.locale,
            channel: Channel::from_proto(i.channel),
            state: InvitationState::from_proto(i.state),
            send_at: format_time(i.send_at),
            sent_at: format_time(i.sent_at),
            expires_at: format_time(i.expires_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct InvitationList {
    /// Newest first.
    pub(crate) invitations: Vec<Invitation>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Answer {
    pub(crate) question_id: String,
    /// For scale questions the number, for choice questions the choice's index.
    pub(crate) value: Option<i32>,
    /// For text questions; plain text.
    #[serde(default)]
    pub(crate) text: String,
}

impl From<Answer> for feedback::Answer {
    fn from(a: Answer) -> Self {
        Self { question_id: a.question_id, value: a.value, text: a.text }
    }
}

impl From<feedback::Answer> for Answer {
    fn from(a: feedback::Answer) -> Self {
        Self { question_id: a.question_id, value: a.value, text: a.text }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListResponsesQuery {
    pub(crate) ticket_id: Option<String>,
    pub(crate) survey_id: Option<String>,
    pub(crate) limit: Option<i32>,
}

impl From<ListResponsesQuery> for feedback::ListResponsesRequest {
    fn from(q: ListResponsesQuery) -> Self {
        Self {
            ticket_id: q.ticket_id.unwrap_or_default(),
            survey_id: q.survey_id.unwrap_or_default(),
            limit: q.limit.unwrap_or_default(),
        }
    }
}

/// A customer's answer to a survey, with the ticket as it was when the survey was sent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SurveyResponse {
    pub(crate) id: String,
    pub(crate) survey_id: String,
    pub(crate) kind: Option<SurveyKind>,
    pub(crate) invitation_id: String,
    pub(crate) ticket_id: String,
    pub(crate) customer_id: String,
    /// Who handled the ticket.
    pub(crate) agent_id: Option<String>,
    pub(crate) team: Option<String>,
    pub(crate) channel: Option<Channel>,
    pub(crate) tags: Vec<String>,
    pub(crate) locale: String,
    /// The answer to the score question.
    pub(crate) score: i32,
    pub(crate) answers: Vec<Answer>,
    /// Plain text; render it escaped.
    pub(crate) comment: String,
    /// 1 for the first answer, incremented by each revision.
    pub(crate) revision: i32,
    pub(crate) submitted_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    /// The follow-up this answer opened.
    pub(crate) follow_up_id: Option<String>,
}

impl From<feedback::SurveyResponse> for SurveyResponse {
    fn from(r: feedback::SurveyResponse) -> Self {
        Self {
            id: r.id,
            survey_id: r.survey_id,
            kind: SurveyKind::from_proto(r.kind),
            invitation_id: r.invitation_id,
            ticket_id: r.ticket_id,
            customer_id: r.customer_id,
            agent_id: non_empty(r.agent_id),
            team: non_empty(r.team),
            channel: Channel::from_proto(r.channel),
            tags: r.tags,
            locale: r.locale,
            score: r.score,
            answers: r.answers.into_iter().map(Answer::from).collect(),
            comment: r.comment,
            revision: r.revision,
            submitted_at: format_time(r.submitted_at),
            updated_at: format_time(r.updated_at),
            follow_up_id: non_empty(r.follow_up_id),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ResponseList {
    pub(crate) responses: Vec<SurveyResponse>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListFollowUpsQuery {
    /// open or closed; both when absent.
    pub(crate) state: Option<String>,
    pub(crate) assignee_id: Option<String>,
    pub(crate) limit: Option<i32>,
}

impl ListFollowUpsQuery {
    pub(crate) fn into_proto(self) -> Result<feedback::ListFollowUpsRequest, ApiError> {
        let state = self.state.map(|word| FollowUpState::parse("state", &word)).transpose()?;
        Ok(feedback::ListFollowUpsRequest {
            state: state.map(i32::from).unwrap_or_default(),
            assignee_id: self.assignee_id.unwrap_or_default(),
            limit: self.limit.unwrap_or_default(),
        })
    }
}

/// A low score's follow-up, for the lead of the agent's team.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FollowUp {
    pub(crate) id: String,
    pub(crate) response_id: String,
    /// The surveyed ticket.
    pub(crate) ticket_id: String,
    /// The ticket opened for the follow-up, linked to the surveyed one; absent until ticketing has
    /// accepted it.
    pub(crate) linked_ticket_id: Option<String>,
    /// The team lead it is for.
    pub(crate) assignee_id: String,
    pub(crate) team: Option<String>,
    pub(crate) kind: Option<SurveyKind>,
    pub(crate) score: i32,
    pub(crate) state: Option<FollowUpState>,
    pub(crate) resolution_note: Option<String>,
    pub(crate) closed_by: Option<String>,
    pub(crate) created_at: Option<String>,
    pub(crate) closed_at: Option<String>,
}

impl From<feedback::FollowUp> for FollowUp {
    fn from(f: feedback::FollowUp) -> Self {
        Self {
            id: f.id,
            response_id: f.response_id,
            ticket_id: f.ticket_id,
            linked_ticket_id: non_empty(f.linked_ticket_id),
            assignee_id: f.assignee_id,
            team: non_empty(f.team),
            kind: SurveyKind::from_proto(f.kind),
            score: f.score,
            state: FollowUpState::from_proto(f.state),
            resolution_note: non_empty(f.resolution_note),
            closed_by: non_empty(f.closed_by),
            created_at: format_time(f.created_at),
            closed_at: format_time(f.closed_at),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FollowUpList {
    pub(crate) follow_ups: Vec<FollowUp>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseFollowUp {
    /// What was done for the customer.
    pub(crate) resolution_note: String,
}

/// "You said, we did": what changed, for every respondent whose answer carries the theme.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnnounceChange {
    /// The ticket tag whose respondents are told.
    pub(crate) theme: String,
    /// Each respondent reads it in their language.
    pub(crate) message: LocalizedText,
    /// RFC 3339: only respondents who answered at or after this time; 90 days ago when absent.
    pub(crate) since: Option<String>,
    /// Only respondents whose score opened a follow-up.
    #[serde(default)]
    pub(crate) only_unhappy: bool,
}

impl AnnounceChange {
    pub(crate) fn into_proto(self) -> Result<feedback::AnnounceChangeRequest, ApiError> {
        Ok(feedback::AnnounceChangeRequest {
            theme: self.theme,
            message: Some(self.message.into()),
            since: self.since.map(|since| parse_time("since", &since)).transpose()?,
            only_unhappy: self.only_unhappy,
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Announcement {
    pub(crate) id: String,
    pub(crate) theme: String,
    pub(crate) message: LocalizedText,
    /// Respondents it is being delivered to, one message each on their latest ticket.
    pub(crate) recipients: i32,
    pub(crate) created_at: Option<String>,
}

impl From<feedback::Announcement> for Announcement {
    fn from(a: feedback::Announcement) -> Self {
        Self {
            id: a.id,
            theme: a.theme,
            message: a.message.unwrap_or_default().into(),
            recipients: a.recipients,
            created_at: format_time(a.created_at),
        }
    }
}

/// A survey as its link shows it, in the customer's language.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SurveyForm {
    pub(crate) survey_name: String,
    pub(crate) kind: Option<SurveyKind>,
    /// The language the questions are in.
    pub(crate) locale: String,
    pub(crate) questions: Vec<FormQuestion>,
    /// Until then the answer may be given and revised.
    pub(crate) expires_at: Option<String>,
    /// The answer given so far, when there is one.
    pub(crate) current: Option<GivenAnswer>,
}

impl From<feedback::SurveyForm> for SurveyForm {
    fn from(f: feedback::SurveyForm) -> Self {
        Self {
            survey_name: f.survey_name,
            kind: SurveyKind::from_proto(f.kind),
            locale: f.locale,
            questions: f
                .questions
                .into_iter()
                .map(|q| FormQuestion {
                    id: q.id,
                    kind: QuestionKind::from_proto(q.kind),
                    text: q.text,
                    min: q.min,
                    max: q.max,
                    choices: q.choices,
                    required: q.required,
                })
                .collect(),
            expires_at: format_time(f.expires_at),
            current: f.current.map(GivenAnswer::from),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FormQuestion {
    pub(crate) id: String,
    pub(crate) kind: Option<QuestionKind>,
    pub(crate) text: String,
    /// The range of a scale question.
    pub(crate) min: i32,
    pub(crate) max: i32,
    /// A choice question's choices; answer with an index.
    pub(crate) choices: Vec<String>,
    pub(crate) required: bool,
}

/// A customer's answer as their link shows it. Only what they gave: the ticket's agent, team,
/// tags and follow-up are the staff's business.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct GivenAnswer {
    pub(crate) answers: Vec<Answer>,
    pub(crate) comment: String,
    /// 1 for the first answer, incremented by each revision.
    pub(crate) revision: i32,
    pub(crate) submitted_at: Option<String>,
    pub(crate) updated_at: Option<String>,
    /// Only in the response to the request that made the first answer: keep it, a revision must
    /// send it, so nobody else holding the link can change the answer.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub(crate) revision_key: String,
}

impl From<feedback::SurveyResponse> for GivenAnswer {
    fn from(r: feedback::SurveyResponse) -> Self {
        Self {
            answers: r.answers.into_iter().map(Answer::from).collect(),
            comment: r.comment,
            revision: r.revision,
            submitted_at: format_time(r.submitted_at),
            updated_at: format_time(r.updated_at),
            revision_key: r.revision_key,
        }
    }
}

/// An answer to a survey link, or a revision of it until the link expires.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct SubmitAnswer {
    /// The same for repeats of one submission (a double click, a retry), which record nothing new.
    #[serde(default)]
    pub(crate) submission_id: String,
    pub(crate) answers: Vec<Answer>,
    /// Plain text.
    #[serde(default)]
    pub(crate) comment: String,
    /// Required to revise an answer: the `revision_key` the first answer returned.
    #[serde(default)]
    pub(crate) revision_key: String,
}

impl SubmitAnswer {
    pub(crate) fn into_proto(self, token: String) -> feedback::SubmitAnswerRequest {
        feedback::SubmitAnswerRequest {
            token,
            submission_id: self.submission_id,
            answers: self.answers.into_iter().map(feedback::Answer::from).collect(),
            comment: self.comment,
            revision_key: self.revision_key,
        }
    }
}

// Insights

impl ReportKind {
    /// A kind as report paths spell it, with hyphens: `agent-scorecard`.
    pub(crate) fn from_path(word: &str) -> Result<Self, ApiError> {
        Self::parse("kind", &word.replace('-', "_")).ok().filter(|_| !word.contains('_')).ok_or_else(|| {
            ApiError::field("kind", "one of volume, performance, backlog, satisfaction, agent-scorecard, trends")
        })
    }
}

/// Reports cover this many days up to `to` unless `from` says otherwise.
const DEFAULT_REPORT_DAYS: i64 = 30;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    /// RFC 3339; 30 days before `to` when absent. The period is at most 400 days; tickets count
    /// by when they were created, answers by when they were given.
    pub(crate) from: Option<String>,
    /// RFC 3339; now when absent.
    pub(crate) to: Option<String>,
    /// none, channel, hour_of_day, day_of_week, day, week, month, agent, team or tag.
    pub(crate) group_by: Option<String>,
    /// IANA zone for this report's buckets, such as `Asia/Seoul`; the tenant's when absent.
    pub(crate) time_zone: Option<String>,
    /// Only tickets from this channel.
    pub(crate) channel: Option<String>,
    pub(crate) agent_id: Option<String>,
    pub(crate) team: Option<String>,
    pub(crate) tag: Option<String>,
    /// `json` (the default) or `csv`; `Accept: text/csv` also asks for CSV.
    pub(crate) format: Option<String>,
}

impl ReportQuery {
    pub(crate) fn into_proto(self, kind: ReportKind) -> Result<feedback::ReportRequest, ApiError> {
        let to = match self.to {
            Some(to) => parse_time("to", &to)?,
            None => micros_to_timestamp(now_micros()),
        };
        let from = match self.from {
            Some(from) => parse_time("from", &from)?,
            None => micros_to_timestamp(timestamp_to_micros(&to) - DEFAULT_REPORT_DAYS * 86_400 * 1_000_000),
        };
        let group_by = self.group_by.map(|word| GroupBy::parse("group_by", &word)).transpose()?;
        let channel = self.channel.map(|word| Channel::parse("channel", &word)).transpose()?;
        Ok(feedback::ReportRequest {
            kind: kind.into(),
            from: Some(from),
            to: Some(to),
            group_by: group_by.map(i32::from).unwrap_or_default(),
            time_zone: self.time_zone.unwrap_or_default(),
            channel: channel.map(i32::from).unwrap_or_default(),
            agent_id: self.agent_id.unwrap_or_default(),
            team: self.team.unwrap_or_default(),
            tag: self.tag.unwrap_or_default(),
        })
    }
}

/// A report: the first column names the group, the others the measures.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Report {
    pub(crate) kind: Option<ReportKind>,
    pub(crate) time_zone: String,
    pub(crate) columns: Vec<String>,
    /// One value per column: the group as a string, measures as numbers, null where nothing was
    /// measured.
    #[schema(value_type = Vec<Vec<Value>>)]
    pub(crate) rows: Vec<Vec<serde_json::Value>>,
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
}

impl From<feedback::Report> for Report {
    fn from(r: feedback::Report) -> Self {
        let cell = |value: pbjson_types::Value| serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        Self {
            kind: ReportKind::from_proto(r.kind),
            time_zone: r.time_zone,
            columns: r.columns,
            rows: r.rows.into_iter().map(|row| row.cells.into_iter().map(cell).collect()).collect(),
            from: format_time(r.from),
            to: format_time(r.to),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ProjectionsRebuilt {
    /// Events replayed.
    pub(crate) events: i64,
    /// Tickets projected.
    pub(crate) tickets: i64,
    pub(crate) seconds: f64,
}
