//! The JSON error body every endpoint returns, and extractors that reject bad input with it.

use axum::{
    Json,
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Query, Request, rejection::BytesRejection},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use helpdesk_runtime::{ErrorKind, ServiceError, error::FieldViolation};
use serde::{Serialize, de::DeserializeOwned};
use utoipa::ToSchema;

/// `{"error": {"code": "invalid_argument", "message": "...", "fields": [...]}}`
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable machine-readable code, such as `invalid_argument`, `conflict` or `not_found`.
    pub(crate) code: String,
    pub(crate) message: String,
    /// The fields that were wrong, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) fields: Vec<FieldError>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct FieldError {
    pub(crate) field: String,
    pub(crate) description: String,
}

#[derive(Debug)]
pub(crate) struct ApiError {
    error: ServiceError,
    retry_after_seconds: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ServiceError::new(kind, message).into()
    }

    pub(crate) fn field(field: impl Into<String>, description: impl Into<String>) -> Self {
        ServiceError::invalid_field(field, description).into()
    }

    pub(crate) fn too_many_requests(retry_after_seconds: u64) -> Self {
        Self {
            error: ServiceError::new(ErrorKind::TooManyRequests, "rate limit exceeded"),
            retry_after_seconds: Some(retry_after_seconds),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        Self { error, retry_after_seconds: None }
    }
}

impl From<tonic::Status> for ApiError {
    fn from(status: tonic::Status) -> Self {
        let error = ServiceError::from_status(&status);
        match error.kind {
            // Transport and internal failures are logged here, not described to the client.
            ErrorKind::Unavailable | ErrorKind::Internal => {
                tracing::warn!(code = ?status.code(), message = status.message(), "backend call failed");
                ServiceError::new(error.kind, error.kind.as_str().replace('_', " ")).into()
            }
            _ => error.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.error.kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.error.kind.as_str().to_owned(),
                message: self.error.message,
                fields: self
                    .error
                    .field_violations
                    .into_iter()
                    .map(|FieldViolation { field, description }| FieldError { field, description })
                    .collect(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
        response
    }
}

/// A JSON body, strictly parsed: wrong types, unknown fields and unknown enum values are refused
/// with the path of the offending field.
pub(crate) struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if !declares_json(request.headers()) {
            return Err(ApiError::field("content-type", "must be application/json"));
        }
        parse_json(&body_bytes(request).await?).map(JsonBody)
    }
}

pub(crate) fn declares_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"))
}

/// The body's bytes; one over the configured limit is a 413.
pub(crate) async fn body_bytes(request: Request) -> Result<Bytes, ApiError> {
    Bytes::from_request(request, &()).await.map_err(|rejection| match rejection {
        BytesRejection::FailedToBufferBody(_) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(ErrorKind::PayloadTooLarge, "request body is too large")
        }
        other => ApiError::field("body", other.body_text()),
    })
}

/// Strict JSON: a failure names the path of the offending field.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let deserializer = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(deserializer).map_err(|error| {
        let path = error.path().to_string();
        let field = if path == "." { "body".to_owned() } else { path };
        ApiError::field(field, error.into_inner().to_string())
    })
}

/// Query parameters with the same error body as every other failure.
pub(crate) struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryParams(value))
            .map_err(|rejection| ApiError::field("query", rejection.body_text()))
    }
}
