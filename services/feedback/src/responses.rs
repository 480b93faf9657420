//! Answers through survey links: the signed link is the credential, a submission is checked
//! against its survey, and an answer, its follow-up when unhappy, and their events commit
//! together, so none is lost or doubled. Only whoever answered first may revise the answer.

use helpdesk_proto::{
    common::v1::AuthorKind,
    events::v1::{FollowUpOpened, SurveyAnswered, event::Payload},
    feedback::v1::{
        self as proto, Answer, FollowUp, FollowUpState, InvitationState, QuestionKind, Survey, SurveyResponse,
    },
};
use helpdesk_runtime::{
    ServiceError,
    time::{micros_to_timestamp, now_micros},
};
use prost::Message;
use sha2::Digest;

use crate::{
    Feedback,
    model::{self, MAX_COMMENT_CHARS, service_event},
    store::InvitationContext,
};

/// What a genuine, open survey link stands for.
struct Opened {
    tenant: String,
    invitation: proto::Invitation,
    survey: Survey,
    context: InvitationContext,
}

/// A submission checked against its survey.
struct Checked {
    submission_id: String,
    /// What a revision carries to show it comes from the first submitter.
    revision_key: String,
    /// In survey order.
    answers: Vec<Answer>,
    comment: String,
    score: i32,
    fingerprint: String,
}

impl Feedback {
    /// The invitation and survey a link stands for, if the link is genuine and still open.
    async fn open_invitation(&self, token: &str) -> Result<Opened, ServiceError> {
        let claims = self.signer.verify(token, chrono::Utc::now().timestamp())?;
        let mut conn = self.store.reader().await?;
        let (invitation, context) = conn
            .invitation(&claims.tenant, &claims.invitation)
            .await?
            .ok_or_else(|| ServiceError::invalid_field("token", "is not a valid survey link"))?;
        if invitation.state == InvitationState::Cancelled as i32 {
            return Err(ServiceError::failed_precondition("this survey was withdrawn: the ticket was reopened")
                .with_field("token"));
        }
        let survey = conn.survey(&claims.tenant, &invitation.survey_id).await?;
        Ok(Opened { tenant: claims.tenant, invitation, survey, context })
    }

    pub async fn survey_form(&self, token: &str) -> Result<proto::SurveyForm, ServiceError> {
        let Opened { tenant, invitation, survey, .. } = self.open_invitation(token).await?;
        let locale = invitation.locale.clone();
        let questions = survey
            .questions
            .iter()
            .map(|question| proto::FormQuestion {
                id: question.id.clone(),
                kind: question.kind,
                text: model::localized(question.text.as_ref(), &locale),
                min: question.min,
                max: question.max,
                choices: question.choices.iter().map(|choice| model::localized(Some(choice), &locale)).collect(),
                required: question.required,
            })
            .collect();
        let mut conn = self.store.reader().await?;
        let current = conn.response(&tenant, &invitation.id).await?.map(|stored| stored.response);
        Ok(proto::SurveyForm {
            survey_name: survey.name,
            kind: survey.kind,
            locale,
            questions,
            expires_at: invitation.expires_at,
            current: current.map(for_customer),
        })
    }

    /// Records an answer or its revision, and opens a follow-up for an unhappy one; returns what
    /// the customer may see of it.
    pub async fn submit_answer(&self, request: proto::SubmitAnswerRequest) -> Result<SurveyResponse, ServiceError> {
        let opened = self.open_invitation(&request.token).await?;
        let (answers, comment, score) = validate_answers(&opened.survey, request.answers, &request.comment)?;
        if request.submission_id.len() > 100 {
            return Err(ServiceError::invalid_field("submission_id", "is longer than 100 characters"));
        }
        let fingerprint = fingerprint(&answers, &comment);
        let checked = Checked {
            submission_id: request.submission_id,
            answers,
            comment,
            score,
            fingerprint,
            revision_key: request.revision_key,
        };
        // Two submissions racing for the first answer: the loser retries and becomes a revision.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = self.record_answer(&opened, &checked).await;
            match result {
                Err(error) if attempts < 3 && error.kind == helpdesk_runtime::error::ErrorKind::AlreadyExists => {
                    continue;
                }
                result => return result.map(for_customer),
            }
        }
    }

    async fn record_answer(&self, opened: &Opened, checked: &Checked) -> Result<SurveyResponse, ServiceError> {
        let Opened { tenant, invitation, survey, context } = opened;
        let Checked { submission_id, answers, comment, score, fingerprint, revision_key } = checked;
        let (tenant, score) = (tenant.as_str(), *score);
        let now = now_micros();
        let mut tx = self.store.begin().await?;
        let existing = tx.response_for_update(tenant, &invitation.id).await?;
        if !submission_id.is_empty()
            && tx.submission_seen(tenant, &invitation.id, submission_id).await?
            && let Some(stored) = &existing
        {
            return Ok(stored.response.clone());
        }
        if let Some(stored) = &existing
            && stored.fingerprint == *fingerprint
        {
            tx.remember_submission(tenant, &invitation.id, submission_id).await?;
            tx.commit().await?;
            return Ok(stored.response.clone());
        }
        if let Some(stored) = &existing
            && !self.signer.is_revision_key(&invitation.id, &stored.first_submission, revision_key)
        {
            return Err(ServiceError::permission_denied(
                "only whoever answered first may revise the answer: send the revision_key their answer returned",
            )
            .with_field("revision_key"));
        }
        // A nonce of the server's names the first submitter: only the answer that made it hears
        // the key derived from it.
        let first_submission = match &existing {
            Some(stored) => stored.first_submission.clone(),
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let unhappy = score <= survey.follow_up_at_or_below;
        let previous = existing.as_ref().map(|stored| &stored.response);
        let mut response = SurveyResponse {
            id: previous.map_or_else(|| uuid::Uuid::now_v7().to_string(), |previous| previous.id.clone()),
            survey_id: survey.id.clone(),
            kind: survey.kind,
            invitation_id: invitation.id.clone(),
            ticket_id: invitation.ticket_id.clone(),
            customer_id: invitation.customer_id.clone(),
            agent_id: context.agent_id.clone(),
            team: context.team.clone(),
            channel: invitation.channel,
            tags: context.tags.clone(),
            locale: invitation.locale.clone(),
            score,
            answers: answers.clone(),
            comment: comment.to_owned(),
            revision: previous.map_or(1, |previous| previous.revision + 1),
            submitted_at: previous.map_or(Some(micros_to_timestamp(now)), |previous| previous.submitted_at),
            updated_at: Some(micros_to_timestamp(now)),
            follow_up_id: previous.map(|previous| previous.follow_up_id.clone()).unwrap_or_default(),
            agent_rating: agent_rating(survey, answers),
            revision_key: String::new(),
        };
        let mut events = Vec::new();
        let actor = (AuthorKind::Customer, invitation.customer_id.as_str());
        if unhappy && response.follow_up_id.is_empty() {
            let follow_up = FollowUp {
                id: uuid::Uuid::now_v7().to_string(),
                response_id: response.id.clone(),
                ticket_id: invitation.ticket_id.clone(),
                linked_ticket_id: String::new(),
                assignee_id: String::new(),
                team: context.team.clone(),
                kind: survey.kind,
                score,
                state: FollowUpState::Open as i32,
                resolution_note: String::new(),
                closed_by: String::new(),
                created_at: Some(micros_to_timestamp(now)),
                closed_at: None,
            };
            tx.save_follow_up(tenant, &follow_up, false, now).await?;
            response.follow_up_id = follow_up.id.clone();
            let id = follow_up.id.clone();
            events.push(service_event(
                tenant,
                actor,
                ("follow_up", &id),
                1,
                now,
                Payload::FollowUpOpened(FollowUpOpened { follow_up: Some(follow_up) }),
            ));
        }
        // A concurrent first answer that won the unique invitation makes this one a duplicate:
        // the caller retries, as a revision.
        let first = previous.is_none().then_some(first_submission.as_str());
        tx.save_response(tenant, &response, fingerprint, unhappy || !response.follow_up_id.is_empty(), now, first)
            .await?;
        tx.mark_answered(tenant, &invitation.id).await?;
        tx.remember_submission(tenant, &invitation.id, submission_id).await?;
        events.insert(
            0,
            service_event(
                tenant,
                actor,
                ("survey_response", &response.id),
                i64::from(response.revision),
                now,
                Payload::SurveyAnswered(SurveyAnswered { response: Some(response.clone()) }),
            ),
        );
        tx.append_events(&events).await?;
        tx.commit().await?;
        self.events_written.notify_one();
        self.delivery_wake.notify_one();
        if previous.is_none() {
            response.revision_key = self.signer.revision_key(&invitation.id, &first_submission);
        }
        Ok(response)
    }

    pub async fn list_responses(
        &self,
        tenant: &str,
        request: proto::ListResponsesRequest,
    ) -> Result<Vec<SurveyResponse>, ServiceError> {
        self.store.responses(tenant, &request.ticket_id, &request.survey_id, model::list_limit(request.limit)).await
    }
}

/// An answer as its customer sees it: their answers, without the handling details staff see.
fn for_customer(response: SurveyResponse) -> SurveyResponse {
    SurveyResponse {
        id: response.id,
        survey_id: response.survey_id,
        kind: response.kind,
        ticket_id: response.ticket_id,
        locale: response.locale,
        score: response.score,
        answers: response.answers,
        comment: response.comment,
        revision: response.revision,
        submitted_at: response.submitted_at,
        updated_at: response.updated_at,
        revision_key: response.revision_key,
        ..SurveyResponse::default()
    }
}

/// Control characters other than line breaks and tabs are dropped; HTML stays as typed, to be
/// rendered escaped.
fn plain_text(text: &str) -> String {
    text.chars().filter(|c| !c.is_control() || matches!(c, '\n' | '\t')).collect::<String>().trim().to_owned()
}

/// The answers in survey order, the comment, and the score; or the first field at fault.
fn validate_answers(
    survey: &Survey,
    answers: Vec<Answer>,
    comment: &str,
) -> Result<(Vec<Answer>, String, i32), ServiceError> {
    if answers.len() > model::MAX_QUESTIONS {
        return Err(ServiceError::invalid_field("answers", "has more answers than the survey has questions"));
    }
    if comment.chars().count() > MAX_COMMENT_CHARS {
        return Err(ServiceError::invalid_field("comment", "is longer than 5000 characters"));
    }
    let mut given: Vec<Option<Answer>> = vec![None; survey.questions.len()];
    for (at, answer) in answers.into_iter().enumerate() {
        let field = |name: &str| format!("answers[{at}].{name}");
        let Some(index) = survey.questions.iter().position(|question| question.id == answer.question_id) else {
            return Err(ServiceError::invalid_field(field("question_id"), "is not a question of this survey"));
        };
        if given[index].is_some() {
            return Err(ServiceError::invalid_field(field("question_id"), "is answered twice"));
        }
        let question = &survey.questions[index];
        let answer = match QuestionKind::try_from(question.kind).unwrap_or(QuestionKind::Unspecified) {
            QuestionKind::Scale => match answer.value {
                Some(value) if (question.min..=question.max).contains(&value) => {
                    Answer { question_id: answer.question_id, value: Some(value), text: String::new() }
                }
                _ => {
                    return Err(ServiceError::invalid_field(
                        field("value"),
                        format!("must be a whole number from {} to {}", question.min, question.max),
                    ));
                }
            },
            QuestionKind::Choice => match answer.value {
                Some(value) if value >= 0 && (value as usize) < question.choices.len() => {
                    Answer { question_id: answer.question_id, value: Some(value), text: String::new() }
                }
                _ => return Err(ServiceError::invalid_field(field("value"), "must be the index of a choice")),
            },
            QuestionKind::Text | QuestionKind::Unspecified => {
                if answer.text.chars().count() > MAX_COMMENT_CHARS {
                    return Err(ServiceError::invalid_field(field("text"), "is longer than 5000 characters"));
                }
                Answer { question_id: answer.question_id, value: None, text: plain_text(&answer.text) }
            }
        };
        given[index] = Some(answer);
    }
    let score_id = model::score_question(survey).map(|question| question.id.clone()).unwrap_or_default();
    let mut score = None;
    for (question, answer) in survey.questions.iter().zip(&given) {
        if answer.is_none() && (question.required || question.id == score_id) {
            return Err(ServiceError::invalid_field("answers", format!("must answer question {}", question.id)));
        }
        if question.id == score_id {
            score = answer.as_ref().and_then(|answer| answer.value);
        }
    }
    let score = score.ok_or_else(|| ServiceError::invalid_field("answers", "must include the score"))?;
    Ok((given.into_iter().flatten().collect(), plain_text(comment), score))
}

/// The mean of the answers to the survey's questions about the agent.
fn agent_rating(survey: &Survey, answers: &[Answer]) -> Option<f64> {
    let ratings: Vec<f64> = answers
        .iter()
        .filter(|answer| {
            survey.questions.iter().any(|question| question.about_agent && question.id == answer.question_id)
        })
        .filter_map(|answer| answer.value.map(f64::from))
        .collect();
    (!ratings.is_empty()).then(|| ratings.iter().sum::<f64>() / ratings.len() as f64)
}

fn fingerprint(answers: &[Answer], comment: &str) -> String {
    let mut hasher = sha2::Sha256::new();
    for answer in answers {
        hasher.update(answer.encode_to_vec());
        hasher.update([0xff]);
    }
    hasher.update(comment.as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use helpdesk_proto::feedback::v1::SurveyKind;

    use super::*;

    fn csat() -> Survey {
        model::normalize(Survey { name: "CSAT".into(), kind: SurveyKind::Csat as i32, ..Survey::default() }).unwrap()
    }

    fn answer(question: &str, value: i32) -> Answer {
        Answer { question_id: question.into(), value: Some(value), text: String::new() }
    }

    #[test]
    fn answers_are_checked_against_the_survey() {
        let survey = csat();
        let field = |answers: Vec<Answer>, comment: &str| {
            validate_answers(&survey, answers, comment).unwrap_err().field_violations[0].field.clone()
        };
        assert_eq!(field(vec![answer("score", 6)], ""), "answers[0].value");
        assert_eq!(field(vec![answer("score", 0)], ""), "answers[0].value");
        assert_eq!(field(vec![answer("nope", 3)], ""), "answers[0].question_id");
        assert_eq!(field(vec![answer("score", 3), answer("score", 4)], ""), "answers[1].question_id");
        assert_eq!(field(vec![answer("agent_clarity", 3)], ""), "answers");
        assert_eq!(field(vec![answer("score", 3)], &"x".repeat(5_001)), "comment");
        let (answers, comment, score) =
            validate_answers(&survey, vec![answer("agent_clarity", 5), answer("score", 2)], "<b>bad</b>\u{0}").unwrap();
        assert_eq!((answers[0].question_id.as_str(), score, comment.as_str()), ("score", 2, "<b>bad</b>"));
    }

    #[test]
    fn the_same_answers_have_the_same_fingerprint() {
        let one = fingerprint(&[answer("score", 2)], "slow");
        assert_eq!(one, fingerprint(&[answer("score", 2)], "slow"));
        assert_ne!(one, fingerprint(&[answer("score", 3)], "slow"));
    }
}
