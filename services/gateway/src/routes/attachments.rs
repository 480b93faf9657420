//! Files over REST: an upload is the file itself as the request body (not base64 inside JSON),
//! and a download is the file as the response, with the headers that keep a browser from
//! running what someone attached.

use axum::{
    Extension, Json,
    body::Bytes,
    extract::{Path, RawQuery, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use helpdesk_proto::ticketing::v1 as proto;

use crate::{
    AppState,
    auth::Caller,
    error::{ApiError, ErrorBody},
    rest::json_of,
};

/// The largest file the routes carry: the highest `attachments.max_file_bytes` allows; each
/// deployment's own limit is checked by the ticketing service.
pub(crate) const MAX_FILE_BYTES: usize = 100 * 1024 * 1024;

#[derive(serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadQuery {
    /// The file's name, such as `screenshot.png` or `영수증.pdf`.
    name: String,
}

/// Upload a file: the body is its content and `Content-Type` its type. The answer names it by
/// its SHA-256; put that in a message's or new ticket's `attachments` to attach it. The same
/// file uploaded twice is stored once.
#[utoipa::path(post, path = "/v1/attachments", tag = "tickets", params(UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses((status = 201, body = ref("#/components/schemas/Attachment")), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub(crate) async fn upload(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    // Read here rather than by axum's extractor, so that a missing name is a JSON error naming it.
    let query: UploadQuery = serde_urlencoded::from_str(query.as_deref().unwrap_or_default())
        .map_err(|_| ApiError::field("name", "the file's name is needed: ?name=<file name>"))?;
    let request = proto::UploadAttachmentRequest {
        name: query.name,
        content_type: content_type.to_owned(),
        content: body.to_vec(),
    };
    let attachment = state.attachments.clone().upload_attachment(caller.request(request)).await?.into_inner();
    Ok((StatusCode::CREATED, json_of(&attachment)?))
}

/// Download a file of the ticket's description or of one of its messages the caller may read
/// (customers: their own tickets' public messages).
#[utoipa::path(get, path = "/v1/tickets/{ticket_id}/attachments/{sha256}", tag = "tickets",
    params(("ticket_id" = String, Path, description = "The ticket"),
        ("sha256" = String, Path, description = "The file's hex SHA-256, as its attachment names it")),
    responses((status = 200, content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub(crate) async fn download(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((ticket_id, sha256)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let request = proto::GetAttachmentRequest { ticket_id, sha256 };
    let file = state.attachments.clone().get_attachment(caller.request(request)).await?.into_inner();
    let attachment = file.attachment.unwrap_or_default();
    let headers =
        helpdesk_runtime::download::file_headers(&attachment.name, &attachment.content_type, &attachment.sha256);
    Ok((headers, file.content).into_response())
}
