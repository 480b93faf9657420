//! One error table for the platform: each [`ErrorKind`] maps to a gRPC code and an HTTP status,
//! so the services and the gateway agree. Validation failures carry field violations as standard
//! gRPC `BadRequest` details, which the gateway turns into a JSON body naming the fields.

use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Malformed or out-of-range input.
    InvalidArgument,
    /// Well-formed input that the current state does not allow, such as a closed ticket.
    FailedPrecondition,
    Unauthenticated,
    PermissionDenied,
    NotFound,
    AlreadyExists,
    /// A concurrent change won: retry with the current version.
    Conflict,
    TooManyRequests,
    /// The gateway's own limit on request bodies; no service sends it.
    PayloadTooLarge,
    Unavailable,
    Internal,
}

impl ErrorKind {
    /// Whether trying again later may succeed: a database or a peer away, a concurrent change.
    pub fn is_transient(self) -> bool {
        matches!(self, Self::Unavailable | Self::Conflict)
    }

    pub fn grpc_code(self) -> Code {
        match self {
            Self::InvalidArgument => Code::InvalidArgument,
            Self::FailedPrecondition => Code::FailedPrecondition,
            Self::Unauthenticated => Code::Unauthenticated,
            Self::PermissionDenied => Code::PermissionDenied,
            Self::NotFound => Code::NotFound,
            Self::AlreadyExists => Code::AlreadyExists,
            Self::Conflict => Code::Aborted,
            Self::TooManyRequests => Code::ResourceExhausted,
            // Never crosses gRPC; if it did, it is bad input.
            Self::PayloadTooLarge => Code::InvalidArgument,
            Self::Unavailable => Code::Unavailable,
            Self::Internal => Code::Internal,
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            Self::InvalidArgument => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::AlreadyExists | Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::FailedPrecondition => 422,
            Self::TooManyRequests => 429,
            Self::Internal => 500,
            Self::Unavailable => 503,
        }
    }

    pub fn from_grpc_code(code: Code) -> Self {
        match code {
            Code::InvalidArgument | Code::OutOfRange => Self::InvalidArgument,
            Code::FailedPrecondition => Self::FailedPrecondition,
            Code::Unauthenticated => Self::Unauthenticated,
            Code::PermissionDenied => Self::PermissionDenied,
            Code::NotFound => Self::NotFound,
            Code::AlreadyExists => Self::AlreadyExists,
            Code::Aborted => Self::Conflict,
            Code::ResourceExhausted => Self::TooManyRequests,
            Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => Self::Unavailable,
            _ => Self::Internal,
        }
    }

    /// The stable lowercase name used in JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::FailedPrecondition => "failed_precondition",
            Self::Unauthenticated => "unauthenticated",
            Self::PermissionDenied => "permission_denied",
            Self::NotFound => "not_found",
            Self::AlreadyExists => "already_exists",
            Self::Conflict => "conflict",
            Self::TooManyRequests => "too_many_requests",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    pub kind: ErrorKind,
    pub message: String,
    pub field_violations: Vec<FieldViolation>,
}

impl ServiceError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), field_violations: Vec::new() }
    }

    /// An invalid field, named so that clients can point at it.
    pub fn invalid_field(field: impl Into<String>, description: impl Into<String>) -> Self {
        let field = field.into();
        let description = description.into();
        Self {
            kind: ErrorKind::InvalidArgument,
            message: format!("invalid {field}: {description}"),
            field_violations: vec![FieldViolation { field, description }],
        }
    }

    /// Names the field a non-validation error is about, such as a duplicate email.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field_violations.push(FieldViolation { field: field.into(), description: self.message.clone() });
        self
    }

    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found"))
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::FailedPrecondition, message)
    }

    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthenticated, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// Logs the cause and returns an error that does not leak it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorKind::Internal, "internal error")
    }

    pub fn into_status(self) -> tonic::Status {
        let code = self.kind.grpc_code();
        if self.field_violations.is_empty() {
            return tonic::Status::new(code, self.message);
        }
        let mut details = ErrorDetails::new();
        for violation in &self.field_violations {
            details.add_bad_request_violation(&violation.field, &violation.description);
        }
        tonic::Status::with_error_details(code, self.message, details)
    }

    /// Recovers the kind and field violations from a status returned by a service.
    pub fn from_status(status: &tonic::Status) -> Self {
        let field_violations = status
            .get_details_bad_request()
            .map(|bad_request| {
                bad_request
                    .field_violations
                    .into_iter()
                    .map(|v| FieldViolation { field: v.field, description: v.description })
                    .collect()
            })
            .unwrap_or_default();
        Self { kind: ErrorKind::from_grpc_code(status.code()), message: status.message().to_owned(), field_violations }
    }
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        error.into_status()
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        crate::db::classify(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_violations_survive_a_round_trip_through_grpc_status() {
        let error = ServiceError::invalid_field("subject", "must not be empty");
        let status = error.clone().into_status();
        assert_eq!(status.code(), Code::InvalidArgument);
        let back = ServiceError::from_status(&status);
        assert_eq!(back.kind, ErrorKind::InvalidArgument);
        assert_eq!(back.field_violations, error.field_violations);
        assert_eq!(back.kind.http_status(), 400);
    }

    #[test]
    fn an_out_of_range_from_a_service_is_bad_input_not_a_large_body() {
        assert_eq!(ErrorKind::from_grpc_code(Code::OutOfRange), ErrorKind::InvalidArgument);
        assert_eq!(ErrorKind::from_grpc_code(Code::OutOfRange).http_status(), 400);
    }

    #[test]
    fn every_kind_but_the_gateways_own_maps_back_from_its_own_grpc_code() {
        use ErrorKind::*;
        for kind in [
            InvalidArgument,
            FailedPrecondition,
            Unauthenticated,
            PermissionDenied,
            NotFound,
            AlreadyExists,
            Conflict,
            TooManyRequests,
            Unavailable,
            Internal,
        ] {
            assert_eq!(ErrorKind::from_grpc_code(kind.grpc_code()), kind);
        }
    }
}
