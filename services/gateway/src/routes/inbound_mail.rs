//! The inbound-mail webhook, for mail services that push messages rather than being fetched
//! from: the raw message is the body, and the signature over it (the mailbox's webhook secret)
//! is the credential. Each client has its own rate limit per tenant.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, Request, State},
    http::{HeaderMap, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};
use helpdesk_proto::email::v1::{DeliverMailRequest, Outcome, Source};

use crate::{
    AppState,
    error::{ApiError, ErrorBody},
};

/// The largest message the route takes: the email service's own ceiling; each mailbox's limit
/// is checked there.
pub(crate) const MAX_MAIL_BYTES: usize = 50 * 1024 * 1024;

/// The header that carries the signature.
const SIGNATURE: &str = "x-helpdesk-signature";

/// What the platform did with a delivered message.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub(crate) struct DeliveredMail {
    /// The stored message; a repeated delivery names the first one.
    mail_id: String,
    /// Whether the same message was delivered before (then nothing new happens).
    duplicate: bool,
}

/// Applies the per-client limit before the body is read.
pub(crate) async fn rate_limit(
    State(state): State<AppState>,
    Path((tenant, _mailbox)): Path<(String, String)>,
    request: Request,
    next: Next,
) -> Response {
    match state.auth.check_client(&format!("mail/{tenant}"), &request) {
        Ok(_) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

/// Deliver one message (RFC 5322, `message/rfc822`) to a mailbox. Sign it:
/// `X-Helpdesk-Signature: sha256=<hex HMAC-SHA256 of the body under the mailbox's webhook secret>`.
/// The answer, 202, comes once the message is stored; it becomes a ticket or a message on one
/// shortly after (`GET /v1/mailboxes/{mailbox_id}/mail` shows what became of it).
#[utoipa::path(post, path = "/v1/inbound-mail/{tenant}/{mailbox_id}", tag = "email", security(()),
    params(("tenant" = String, Path, description = "The tenant the mailbox belongs to"),
        ("mailbox_id" = String, Path, description = "The mailbox"),
        ("X-Helpdesk-Signature" = String, Header, description = "sha256= and the hex HMAC-SHA256 of the body")),
    request_body(content = String, content_type = "application/octet-stream",
        description = "The raw message (RFC 5322); sent as message/rfc822 or application/octet-stream"),
    responses((status = 202, body = DeliveredMail), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
pub(crate) async fn deliver(
    State(state): State<AppState>,
    Path((tenant, mailbox_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<DeliveredMail>), ApiError> {
    // The tenant only names whose mailbox it is: the signature is checked against that mailbox.
    helpdesk_identity::validate_tenant_id(&tenant).map_err(|_| ApiError::field("tenant", "not a tenant id"))?;
    let signature = headers.get(SIGNATURE).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
    let request = DeliverMailRequest { mailbox_id, raw: body.to_vec(), source: Source::Webhook as i32, signature };
    let request = helpdesk_runtime::grpc::outgoing(request, Some(&state.tokens.bearer(&tenant)?));
    let delivered = state.mail_intake.clone().deliver_mail(request).await?.into_inner();
    let duplicate = delivered.outcome == Outcome::Duplicate as i32;
    Ok((StatusCode::ACCEPTED, Json(DeliveredMail { mail_id: delivered.mail_id, duplicate })))
}
