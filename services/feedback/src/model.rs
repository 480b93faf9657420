//! Surveys as admins define them: templates fill in the score question, validation names the
//! field at fault, and the score decides whether an answer needs a follow-up. Also what every
//! resource shares: list sizes and the envelope of feedback's events.

use helpdesk_proto::{
    common::v1::AuthorKind,
    events::v1::{Event, event::Payload},
    feedback::v1::{LocalizedText, Question, QuestionKind, Survey, SurveyKind, TriggerRule},
};
use helpdesk_runtime::{ServiceError, time::micros_to_timestamp};

pub(crate) const MAX_QUESTIONS: usize = 20;
pub(crate) const MAX_TEXT_CHARS: usize = 500;
/// Comments and text answers: long enough for a complaint, short enough to refuse a paste bomb.
pub(crate) const MAX_COMMENT_CHARS: usize = 5_000;
const DEFAULT_LINK_TTL_HOURS: i32 = 14 * 24;
const MAX_LINK_TTL_HOURS: i32 = 90 * 24;
const DEFAULT_LIST: i64 = 50;
const MAX_LIST: i64 = 500;

/// The score question's id in the templates.
pub(crate) const SCORE_QUESTION: &str = "score";

fn text(en: &str, ko: &str) -> Option<LocalizedText> {
    Some(LocalizedText { en: en.to_owned(), ko: ko.to_owned() })
}

/// The range and wording of a template's score question.
fn template(kind: SurveyKind) -> Option<Question> {
    let (min, max, wording) = match kind {
        SurveyKind::Csat => {
            (1, 5, text("How satisfied were you with our support?", "상담 서비스에 얼마나 만족하셨나요?"))
        }
        SurveyKind::Nps => (
            0,
            10,
            text(
                "How likely are you to recommend us to a friend or colleague?",
                "친구나 동료에게 저희를 추천할 가능성은 얼마나 되나요?",
            ),
        ),
        SurveyKind::Ces => {
            (1, 7, text("How easy was it to get your issue resolved?", "문제를 해결하기가 얼마나 쉬웠나요?"))
        }
        SurveyKind::Custom | SurveyKind::Unspecified => return None,
    };
    Some(Question {
        id: SCORE_QUESTION.to_owned(),
        kind: QuestionKind::Scale as i32,
        text: wording,
        min,
        max,
        choices: Vec::new(),
        about_agent: false,
        required: true,
    })
}

/// Questions about the agent a CSAT survey asks when the admin gives no questions of their own.
fn agent_questions() -> Vec<Question> {
    let scale = |id: &str, en: &str, ko: &str| Question {
        id: id.to_owned(),
        kind: QuestionKind::Scale as i32,
        text: text(en, ko),
        min: 1,
        max: 5,
        choices: Vec::new(),
        about_agent: true,
        required: false,
    };
    vec![
        scale("agent_knowledge", "How knowledgeable was the agent?", "상담원의 전문성은 어떠셨나요?"),
        scale("agent_clarity", "Did the agent communicate clearly?", "상담원의 설명은 명확했나요?"),
    ]
}

/// The default follow-up threshold: CSAT 1–2, NPS detractors (0–6), CES 1–3.
fn default_threshold(kind: SurveyKind) -> i32 {
    match kind {
        SurveyKind::Csat => 2,
        SurveyKind::Nps => 6,
        SurveyKind::Ces => 3,
        SurveyKind::Custom | SurveyKind::Unspecified => 0,
    }
}

/// Checks `survey` and fills in what the template implies, or names the first field at fault.
pub(crate) fn normalize(mut survey: Survey) -> Result<Survey, ServiceError> {
    survey.name = survey.name.trim().to_owned();
    if survey.name.is_empty() || survey.name.chars().count() > 200 {
        return Err(ServiceError::invalid_field("survey.name", "must be 1 to 200 characters"));
    }
    let kind = SurveyKind::try_from(survey.kind).unwrap_or(SurveyKind::Unspecified);
    if kind == SurveyKind::Unspecified {
        return Err(ServiceError::invalid_field("survey.kind", "must be CSAT, NPS, CES or CUSTOM"));
    }
    if let Some(score) = template(kind) {
        match survey.questions.iter().position(|question| question.id == SCORE_QUESTION) {
            // The template's range is the kind's definition; only the wording may change.
            Some(at) => {
                let given = survey.questions.remove(at);
                survey.questions.insert(0, Question { text: given.text.or(score.text.clone()), ..score });
            }
            None => survey.questions.insert(0, score),
        }
        if kind == SurveyKind::Csat && survey.questions.len() == 1 {
            survey.questions.extend(agent_questions());
        }
    }
    if survey.questions.is_empty() || survey.questions.len() > MAX_QUESTIONS {
        return Err(ServiceError::invalid_field(
            "survey.questions",
            format!("must hold 1 to {MAX_QUESTIONS} questions"),
        ));
    }
    let mut ids = std::collections::HashSet::new();
    for (at, question) in survey.questions.iter().enumerate() {
        validate_question(question, &format!("survey.questions[{at}]"))?;
        if !ids.insert(question.id.as_str()) {
            return Err(ServiceError::invalid_field(format!("survey.questions[{at}].id"), "is repeated"));
        }
    }
    if score_question(&survey).is_none() {
        return Err(ServiceError::invalid_field("survey.questions", "need a scale question for the score"));
    }
    let trigger = survey.trigger.get_or_insert_with(TriggerRule::default);
    if trigger.sampling_percent == 0 {
        trigger.sampling_percent = 100;
    }
    if !(1..=100).contains(&trigger.sampling_percent) {
        return Err(ServiceError::invalid_field("survey.trigger.sampling_percent", "must be 1 to 100"));
    }
    if !(0..=30 * 24 * 60).contains(&trigger.delay_minutes) {
        return Err(ServiceError::invalid_field("survey.trigger.delay_minutes", "must be 0 to 43200 (30 days)"));
    }
    if !(0..=365).contains(&trigger.throttle_days) {
        return Err(ServiceError::invalid_field("survey.trigger.throttle_days", "must be 0 to 365"));
    }
    if trigger
        .channels
        .iter()
        .any(|channel| *channel <= 0 || helpdesk_proto::common::v1::Channel::try_from(*channel).is_err())
    {
        return Err(ServiceError::invalid_field("survey.trigger.channels", "must name known channels"));
    }
    if survey.link_ttl_hours == 0 {
        survey.link_ttl_hours = DEFAULT_LINK_TTL_HOURS;
    }
    if !(1..=MAX_LINK_TTL_HOURS).contains(&survey.link_ttl_hours) {
        return Err(ServiceError::invalid_field("survey.link_ttl_hours", "must be 1 to 2160 (90 days)"));
    }
    if survey.follow_up_at_or_below == 0 {
        survey.follow_up_at_or_below = default_threshold(kind);
    }
    Ok(survey)
}

fn validate_question(question: &Question, field: &str) -> Result<(), ServiceError> {
    let valid_id = !question.id.is_empty()
        && question.id.len() <= 40
        && question.id.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !valid_id {
        return Err(ServiceError::invalid_field(format!("{field}.id"), "must be 1 to 40 of a-z, 0-9 and _"));
    }
    let wording = question.text.as_ref();
    if wording.is_none_or(|text| text.en.trim().is_empty() && text.ko.trim().is_empty()) {
        return Err(ServiceError::invalid_field(format!("{field}.text"), "needs English or Korean wording"));
    }
    if wording.is_some_and(|text| text.en.chars().count() > MAX_TEXT_CHARS || text.ko.chars().count() > MAX_TEXT_CHARS)
    {
        return Err(ServiceError::invalid_field(format!("{field}.text"), "is longer than 500 characters"));
    }
    match QuestionKind::try_from(question.kind).unwrap_or(QuestionKind::Unspecified) {
        QuestionKind::Scale if question.min < question.max && question.min >= 0 && question.max <= 100 => Ok(()),
        QuestionKind::Scale => Err(ServiceError::invalid_field(format!("{field}.max"), "needs 0 <= min < max <= 100")),
        QuestionKind::Choice if (2..=20).contains(&question.choices.len()) => Ok(()),
        QuestionKind::Choice => {
            Err(ServiceError::invalid_field(format!("{field}.choices"), "must hold 2 to 20 choices"))
        }
        QuestionKind::Text => Ok(()),
        QuestionKind::Unspecified => {
            Err(ServiceError::invalid_field(format!("{field}.kind"), "must be SCALE, TEXT or CHOICE"))
        }
    }
}

/// The question whose answer is the survey's score: the first scale question.
pub(crate) fn score_question(survey: &Survey) -> Option<&Question> {
    survey.questions.iter().find(|question| question.kind == QuestionKind::Scale as i32)
}

/// The customer's language among those surveys speak: Korean for `ko…`, else English.
pub(crate) fn locale_for(language: &str) -> &'static str {
    if language.trim().to_ascii_lowercase().starts_with("ko") { "ko" } else { "en" }
}

/// `text` in `locale`, falling back to the other language when it has no wording there.
pub(crate) fn localized(text: Option<&LocalizedText>, locale: &str) -> String {
    let Some(text) = text else { return String::new() };
    let (first, second) = if locale == "ko" { (&text.ko, &text.en) } else { (&text.en, &text.ko) };
    if first.trim().is_empty() { second.clone() } else { first.clone() }
}

/// Whether a ticket is surveyed at `percent` sampling: a stable draw per ticket, so a
/// redelivered event decides the same way.
pub(crate) fn sampled(ticket_id: &str, percent: i32) -> bool {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(ticket_id.as_bytes());
    i32::from(u16::from_be_bytes([digest[0], digest[1]]) % 100) < percent
}

/// The rows a list request gets: `requested`, at most [`MAX_LIST`]; [`DEFAULT_LIST`] when it asks
/// for none.
pub(crate) fn list_limit(requested: i32) -> i64 {
    if requested <= 0 { DEFAULT_LIST } else { i64::from(requested).min(MAX_LIST) }
}

/// An event of feedback's: `actor` (kind, id) changed `aggregate` (type, id) at `at`.
pub(crate) fn service_event(
    tenant: &str,
    actor: (AuthorKind, &str),
    aggregate: (&str, &str),
    sequence: i64,
    at: i64,
    payload: Payload,
) -> Event {
    Event {
        id: uuid::Uuid::now_v7().to_string(),
        tenant_id: tenant.to_owned(),
        aggregate_type: aggregate.0.to_owned(),
        aggregate_id: aggregate.1.to_owned(),
        sequence,
        occurred_at: Some(micros_to_timestamp(at)),
        actor_kind: actor.0 as i32,
        actor_id: actor.1.to_owned(),
        payload: Some(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn survey(kind: SurveyKind) -> Survey {
        Survey { name: "After solve".into(), kind: kind as i32, ..Survey::default() }
    }

    #[test]
    fn templates_fill_in_the_score_question_and_its_threshold() {
        let csat = normalize(survey(SurveyKind::Csat)).unwrap();
        assert_eq!((csat.questions[0].min, csat.questions[0].max), (1, 5));
        assert!(csat.questions.iter().any(|question| question.about_agent));
        assert_eq!(csat.follow_up_at_or_below, 2);
        let nps = normalize(survey(SurveyKind::Nps)).unwrap();
        assert_eq!((nps.questions[0].min, nps.questions[0].max, nps.follow_up_at_or_below), (0, 10, 6));
        assert_eq!(nps.trigger.unwrap().sampling_percent, 100);
    }

    #[test]
    fn a_template_range_cannot_be_redefined() {
        let mut nps = survey(SurveyKind::Nps);
        nps.questions.push(Question {
            id: SCORE_QUESTION.into(),
            min: 1,
            max: 3,
            ..template(SurveyKind::Nps).unwrap()
        });
        let nps = normalize(nps).unwrap();
        assert_eq!((nps.questions[0].min, nps.questions[0].max), (0, 10));
    }

    #[test]
    fn bad_surveys_name_their_field() {
        let field = |survey: Survey| normalize(survey).unwrap_err().field_violations[0].field.clone();
        assert_eq!(field(survey(SurveyKind::Unspecified)), "survey.kind");
        assert_eq!(field(survey(SurveyKind::Custom)), "survey.questions");
        let mut sampled = survey(SurveyKind::Csat);
        sampled.trigger = Some(TriggerRule { sampling_percent: 101, ..TriggerRule::default() });
        assert_eq!(field(sampled), "survey.trigger.sampling_percent");
        let mut bad_id = survey(SurveyKind::Csat);
        bad_id.questions.push(Question { id: "Bad Id".into(), ..agent_questions()[0].clone() });
        assert_eq!(field(bad_id), "survey.questions[1].id");
    }

    #[test]
    fn the_language_falls_back_when_a_wording_is_missing() {
        assert_eq!(locale_for("ko-KR"), "ko");
        assert_eq!(locale_for(""), "en");
        let only_english = LocalizedText { en: "Hi".into(), ko: String::new() };
        assert_eq!(localized(Some(&only_english), "ko"), "Hi");
    }

    #[test]
    fn sampling_is_stable_and_roughly_proportional() {
        let hits = (0..10_000).filter(|n| sampled(&format!("ticket-{n}"), 30)).count();
        assert!((2_700..3_300).contains(&hits), "{hits}");
        assert_eq!(sampled("t-1", 30), sampled("t-1", 30));
        assert!((0..100).all(|n| sampled(&format!("t{n}"), 100)));
    }
}
