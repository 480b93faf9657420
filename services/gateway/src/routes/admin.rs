//! Saved replies, custom fields, API keys and JWT signing keys.

use axum::{
    Extension, Json,
    extract::{Path, State},
    http::StatusCode,
};
use helpdesk_proto::{identity::v1 as identity, ticketing::v1 as proto};

use crate::{
    AppState,
    auth::Caller,
    dto::{self, CreateApiKey, CreateSavedReply, CreateSigningKey, CustomField, RenderSavedReply, RetireSigningKey},
    error::{ApiError, ErrorBody, JsonBody},
};

type ApiResult<T> = Result<Json<T>, ApiError>;

#[utoipa::path(post, path = "/v1/saved_replies", tag = "saved replies", request_body = CreateSavedReply,
    responses((status = 201, body = dto::SavedReply)))]
pub(crate) async fn create_saved_reply(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateSavedReply>,
) -> Result<(StatusCode, Json<dto::SavedReply>), ApiError> {
    let request = proto::CreateSavedReplyRequest { title: body.title, body: body.body, personal: body.personal };
    let reply = state.saved_replies.clone().create_saved_reply(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, Json(reply.into())))
}

#[utoipa::path(get, path = "/v1/saved_replies", tag = "saved replies", responses((status = 200, body = dto::SavedReplyList)))]
pub(crate) async fn list_saved_replies(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::SavedReplyList> {
    let response = state
        .saved_replies
        .clone()
        .list_saved_replies(caller.request(proto::ListSavedRepliesRequest {}))
        .await?
        .into_inner();
    Ok(Json(dto::SavedReplyList {
        saved_replies: response.saved_replies.into_iter().map(dto::SavedReply::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/saved_replies/{id}", tag = "saved replies", responses((status = 204)))]
pub(crate) async fn delete_saved_reply(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.saved_replies.clone().delete_saved_reply(caller.request(proto::DeleteSavedReplyRequest { id })).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Fill a saved reply's placeholders from a ticket and its requester.
#[utoipa::path(post, path = "/v1/saved_replies/{id}/render", tag = "saved replies", request_body = RenderSavedReply,
    responses((status = 200, body = dto::RenderedReply)))]
pub(crate) async fn render_saved_reply(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(saved_reply_id): Path<String>,
    JsonBody(body): JsonBody<RenderSavedReply>,
) -> ApiResult<dto::RenderedReply> {
    let request = proto::RenderSavedReplyRequest { saved_reply_id, ticket_id: body.ticket_id };
    let rendered = state.saved_replies.clone().render_saved_reply(caller.request(request)).await?.into_inner();
    Ok(Json(dto::RenderedReply { body: rendered.body, unresolved: rendered.unresolved }))
}

/// Define (or redefine) a typed custom ticket field. Admins only.
#[utoipa::path(post, path = "/v1/custom_fields", tag = "custom fields", request_body = CustomField,
    responses((status = 200, body = CustomField), (status = 403, body = ErrorBody)))]
pub(crate) async fn define_custom_field(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CustomField>,
) -> ApiResult<CustomField> {
    let request = proto::DefineCustomFieldRequest { field: Some(body.into()) };
    let field = state.custom_fields.clone().define_custom_field(caller.request(request)).await?.into_inner();
    CustomField::from_proto(field)
        .map(Json)
        .ok_or_else(|| ApiError::new(helpdesk_runtime::ErrorKind::Internal, "unknown field type"))
}

#[utoipa::path(get, path = "/v1/custom_fields", tag = "custom fields", responses((status = 200, body = dto::CustomFieldList)))]
pub(crate) async fn list_custom_fields(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::CustomFieldList> {
    let response = state
        .custom_fields
        .clone()
        .list_custom_fields(caller.request(proto::ListCustomFieldsRequest {}))
        .await?
        .into_inner();
    Ok(Json(dto::CustomFieldList { fields: response.fields.into_iter().filter_map(CustomField::from_proto).collect() }))
}

/// Issue an API key for this tenant; the secret is returned once. Admins only.
#[utoipa::path(post, path = "/v1/api_keys", tag = "api keys", request_body = CreateApiKey,
    responses((status = 201, body = dto::IssuedApiKey), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateApiKey>,
) -> Result<(StatusCode, Json<dto::IssuedApiKey>), ApiError> {
    let request = identity::CreateApiKeyRequest { name: body.name, role: body.role.into() };
    let issued = state.identity.clone().create_api_key(caller.request(request)).await?.into_inner();
    Ok((
        StatusCode::CREATED,
        Json(dto::IssuedApiKey { api_key: issued.api_key.map(dto::ApiKey::from), secret: issued.secret }),
    ))
}

#[utoipa::path(get, path = "/v1/api_keys", tag = "api keys", responses((status = 200, body = dto::ApiKeyList)))]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::ApiKeyList> {
    let response =
        state.identity.clone().list_api_keys(caller.request(identity::ListApiKeysRequest {})).await?.into_inner();
    Ok(Json(dto::ApiKeyList { api_keys: response.api_keys.into_iter().map(dto::ApiKey::from).collect() }))
}

#[utoipa::path(delete, path = "/v1/api_keys/{id}", tag = "api keys", responses((status = 200, body = dto::ApiKey)))]
pub(crate) async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<dto::ApiKey> {
    let key =
        state.identity.clone().revoke_api_key(caller.request(identity::RevokeApiKeyRequest { id })).await?.into_inner();
    Ok(Json(key.into()))
}

/// Add a key that signs this tenant's JWTs: an HS256 secret (returned once) or an RS256 public
/// key. Its tokens may carry only the listed roles (customer unless more are listed). Admins only.
#[utoipa::path(post, path = "/v1/signing_keys", tag = "api keys", request_body = CreateSigningKey,
    responses((status = 201, body = dto::IssuedSigningKey), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(crate) async fn create_signing_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(body): JsonBody<CreateSigningKey>,
) -> Result<(StatusCode, Json<dto::IssuedSigningKey>), ApiError> {
    let request = identity::CreateSigningKeyRequest {
        name: body.name,
        algorithm: body.algorithm.into(),
        roles: body.roles.into_iter().map(i32::from).collect(),
        issuer: body.issuer,
        audience: body.audience,
        public_key_pem: body.public_key_pem,
    };
    let issued = state.identity.clone().create_signing_key(caller.request(request)).await?.into_inner();
    Ok((
        StatusCode::CREATED,
        Json(dto::IssuedSigningKey {
            signing_key: issued.signing_key.map(dto::SigningKey::from),
            secret: issued.secret,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/signing_keys", tag = "api keys", responses((status = 200, body = dto::SigningKeyList)))]
pub(crate) async fn list_signing_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<dto::SigningKeyList> {
    let response = state
        .identity
        .clone()
        .list_signing_keys(caller.request(identity::ListSigningKeysRequest {}))
        .await?
        .into_inner();
    Ok(Json(dto::SigningKeyList {
        signing_keys: response.signing_keys.into_iter().map(dto::SigningKey::from).collect(),
    }))
}

/// Stop a signing key verifying tokens, now or after an overlap for a rotation. Admins only.
#[utoipa::path(post, path = "/v1/signing_keys/{id}/retire", tag = "api keys", request_body = RetireSigningKey,
    responses((status = 200, body = dto::SigningKey), (status = 404, body = ErrorBody)))]
pub(crate) async fn retire_signing_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<RetireSigningKey>,
) -> ApiResult<dto::SigningKey> {
    let request = identity::RetireSigningKeyRequest { id, overlap_seconds: body.overlap_seconds };
    let key = state.identity.clone().retire_signing_key(caller.request(request)).await?.into_inner();
    Ok(Json(key.into()))
}
