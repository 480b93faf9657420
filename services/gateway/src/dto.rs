//! The JSON of the hand-written routes (the public help center, survey links, reports): snake_case
//! fields, lowercase enum words, RFC 3339 timestamps, as the derived routes write them. Request
//! types refuse unknown fields.

use chrono::{DateTime, SecondsFormat, Utc};
use helpdesk_proto::{common::v1 as common, feedback::v1 as feedback, knowledge::v1 as knowledge};
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

rest_enum!(Channel => common::Channel { Email, Chat, Phone, Social, Web, Api, InPerson });
rest_enum!(ArticleStatus => knowledge::ArticleStatus { Draft, InReview, Published, Archived });
rest_enum!(
    /// Who may read an article: everyone (also the public help center), agents and admins only, or
    /// agents, admins and customers in one of its segments.
    ArticleVisibility => knowledge::Visibility { Public, Internal, Restricted }
);
rest_enum!(SurveyKind => feedback::SurveyKind { Csat, Nps, Ces, Custom });
rest_enum!(QuestionKind => feedback::QuestionKind { Scale, Text, Choice });
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

// Knowledge base

/// "Was this helpful?"; voting again replaces the vote.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Vote {
    pub(crate) helpful: bool,
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
pub(crate) struct PublicArticleQuery {
    /// The slug's locale, `ko` or `en`; needed when the path names a slug.
    pub(crate) locale: Option<String>,
}

// Feedback

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
