//! Survey links: the customer's side of a survey, without credentials. The signed token in the
//! path is the credential; each client has its own rate limit.

use axum::{
    Json,
    extract::{Path, Request, State},
    middleware::Next,
    response::{IntoResponse, Response},
};
use helpdesk_proto::feedback::v1 as proto;

use crate::{
    AppState,
    dto::{self, SubmitAnswer},
    error::{ApiError, ErrorBody, JsonBody},
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Applies the per-client limit before anything else. Keyed by client, not by token, so that
/// trying one token after another spends one budget.
pub(crate) async fn rate_limit(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match state.auth.check_client("survey", &request) {
        Ok(_) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// The survey in the customer's language, with their answer so far.
#[utoipa::path(get, path = "/v1/surveys/{token}", tag = "surveys", security(()),
    responses((status = 200, body = dto::SurveyForm), (status = 404, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub(crate) async fn survey_form(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<dto::SurveyForm> {
    let request = proto::GetSurveyFormRequest { token };
    let form = state.survey_answers.clone().get_survey_form(state.public_request(request)?).await?.into_inner();
    Ok(Json(form.into()))
}

/// Answer the survey, or revise the answer until the link expires. Repeating a submission (the
/// same `submission_id`, or the same answers) records nothing new.
#[utoipa::path(post, path = "/v1/surveys/{token}", tag = "surveys", request_body = SubmitAnswer, security(()),
    responses((status = 200, body = dto::GivenAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn submit_answer(
    State(state): State<AppState>,
    Path(token): Path<String>,
    JsonBody(body): JsonBody<SubmitAnswer>,
) -> ApiResult<dto::GivenAnswer> {
    let request = state.public_request(body.into_proto(token))?;
    let response = state.survey_answers.clone().submit_answer(request).await?.into_inner();
    Ok(Json(response.into()))
}

#[cfg(test)]
mod tests {
    use axum::{
        Router,
        body::Body,
        http::{StatusCode, header},
    };
    use tower::ServiceExt;

    use super::*;
    use crate::routes::help_center::tests::{gateway, get};

    async fn submit(gateway: &Router, forwarded_for: &str) -> (StatusCode, serde_json::Value) {
        let body = r#"{"answers": [{"question_id": "score", "value": "four"}]}"#;
        let request = Request::post("/v1/surveys/some-token")
            .header("x-forwarded-for", forwarded_for)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .expect("request");
        let response = gateway.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    #[tokio::test]
    async fn a_survey_link_needs_no_credentials_and_each_client_has_its_own_rate_limit() {
        let gateway = gateway();

        let (first, body) = submit(&gateway, "203.0.113.1").await;
        let again = submit(&gateway, "203.0.113.1").await.0;
        let other_client = submit(&gateway, "203.0.113.2").await.0;

        assert_eq!(first, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"]["fields"][0]["field"], "answers[0].value");
        assert_eq!(again, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(other_client, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_feedback_api_still_needs_credentials() {
        let gateway = gateway();

        let (status, _) = get(&gateway, "/v1/feedback/responses", "203.0.113.1").await;

        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}
