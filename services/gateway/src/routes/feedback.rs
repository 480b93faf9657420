//! Surveys and the closed loop as staff use them: survey definitions and settings (admins),
//! invitations, answers, follow-ups and "you said, we did" announcements.

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
};
use helpdesk_proto::feedback::v1 as proto;

use crate::{
    AppState,
    auth::Caller,
    dto::{
        self, AnnounceChange, CloseFollowUp, ListFollowUpsQuery, ListInvitationsQuery, ListResponsesQuery, Settings,
        UpsertSurvey,
    },
    error::{ApiError, ErrorBody, JsonBody, QueryParams},
};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Define a survey: its questions, when it is sent and which scores open a follow-up. Admins only.
#[utoipa::path(post, path = "/v1/feedback/surveys", tag = "feedback", request_body = UpsertSurvey,
    responses((status = 201, body = dto::Survey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_survey(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<UpsertSurvey>,
) -> Result<(StatusCode, Json<dto::Survey>), ApiError> {
    let request = body.into_proto(String::new());
    let survey = state.feedback.clone().upsert_survey(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(survey.into())))
}

/// Replace a survey's definition. Admins only.
#[utoipa::path(put, path = "/v1/feedback/surveys/{id}", tag = "feedback", request_body = UpsertSurvey,
    responses((status = 200, body = dto::Survey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub(crate) async fn upsert_survey(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<UpsertSurvey>,
) -> ApiResult<dto::Survey> {
    let survey = state.feedback.clone().upsert_survey(caller.request(body.into_proto(id))).await?.into_inner();
    Ok(Json(survey.into()))
}

#[utoipa::path(get, path = "/v1/feedback/surveys", tag = "feedback",
    responses((status = 200, body = dto::SurveyList)))]
pub(crate) async fn list_surveys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::SurveyList> {
    let request = proto::ListSurveysRequest {};
    let response = state.feedback.clone().list_surveys(caller.request(request)).await?.into_inner();
    Ok(Json(dto::SurveyList { surveys: response.surveys.into_iter().map(dto::Survey::from).collect() }))
}

#[utoipa::path(get, path = "/v1/feedback/settings", tag = "feedback",
    responses((status = 200, body = Settings)))]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Settings> {
    let request = proto::GetSettingsRequest {};
    let settings = state.feedback.clone().get_settings(caller.request(request)).await?.into_inner();
    Ok(Json(settings.into()))
}

/// Replace the settings. Admins only.
#[utoipa::path(put, path = "/v1/feedback/settings", tag = "feedback", request_body = Settings,
    responses((status = 200, body = Settings), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn set_settings(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<Settings>,
) -> ApiResult<Settings> {
    let request = proto::SetSettingsRequest { settings: Some(body.into()) };
    let settings = state.feedback.clone().set_settings(caller.request(request)).await?.into_inner();
    Ok(Json(settings.into()))
}

/// Invitations sent or scheduled, newest first; the links themselves are never listed.
#[utoipa::path(get, path = "/v1/feedback/invitations", tag = "feedback", params(ListInvitationsQuery),
    responses((status = 200, body = dto::InvitationList), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_invitations(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListInvitationsQuery>,
) -> ApiResult<dto::InvitationList> {
    let request = proto::ListInvitationsRequest::from(query);
    let response = state.feedback.clone().list_invitations(caller.request(request)).await?.into_inner();
    Ok(Json(dto::InvitationList { invitations: response.invitations.into_iter().map(dto::Invitation::from).collect() }))
}

/// Customers' answers to surveys.
#[utoipa::path(get, path = "/v1/feedback/responses", tag = "feedback", params(ListResponsesQuery),
    responses((status = 200, body = dto::ResponseList), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_responses(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListResponsesQuery>,
) -> ApiResult<dto::ResponseList> {
    let request = proto::ListResponsesRequest::from(query);
    let response = state.feedback.clone().list_responses(caller.request(request)).await?.into_inner();
    Ok(Json(dto::ResponseList { responses: response.responses.into_iter().map(dto::SurveyResponse::from).collect() }))
}

/// Follow-ups that low scores opened.
#[utoipa::path(get, path = "/v1/feedback/follow-ups", tag = "feedback", params(ListFollowUpsQuery),
    responses((status = 200, body = dto::FollowUpList), (status = 400, body = ErrorBody)))]
pub(crate) async fn list_follow_ups(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    QueryParams(query): QueryParams<ListFollowUpsQuery>,
) -> ApiResult<dto::FollowUpList> {
    let response = state.feedback.clone().list_follow_ups(caller.request(query.into_proto()?)).await?.into_inner();
    Ok(Json(dto::FollowUpList { follow_ups: response.follow_ups.into_iter().map(dto::FollowUp::from).collect() }))
}

/// Close a follow-up with what was done for the customer.
#[utoipa::path(post, path = "/v1/feedback/follow-ups/{id}/close", tag = "feedback", request_body = CloseFollowUp,
    responses((status = 200, body = dto::FollowUp), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn close_follow_up(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<CloseFollowUp>,
) -> ApiResult<dto::FollowUp> {
    let request = proto::CloseFollowUpRequest { id, resolution_note: body.resolution_note };
    let follow_up = state.feedback.clone().close_follow_up(caller.request(request)).await?.into_inner();
    Ok(Json(follow_up.into()))
}

/// "You said, we did": tell every respondent whose answer carries a theme (a ticket tag) what
/// changed, in their language, on their latest ticket.
#[utoipa::path(post, path = "/v1/feedback/announcements", tag = "feedback", request_body = AnnounceChange,
    responses((status = 201, body = dto::Announcement), (status = 400, body = ErrorBody)))]
pub(crate) async fn announce_change(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<AnnounceChange>,
) -> Result<(StatusCode, Json<dto::Announcement>), ApiError> {
    let announcement = state.feedback.clone().announce_change(caller.request(body.into_proto()?)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(announcement.into())))
}
