//! Every HTTP error is `application/problem+json` with a stable `code` from one table.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use concierge_core::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// The error table: code, HTTP status, title. Codes are stable API; never rename one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    MalformedJson,
    InvalidBody,
    UnsupportedMediaType,
    PayloadTooLarge,
    InvalidId,
    InvalidParameter,
    InvalidIdempotencyKey,
    IdempotencyKeyReused,
    Unauthorized,
    InvalidCredentials,
    Forbidden,
    WorkspaceNotFound,
    ConversationNotFound,
    NotFound,
    MethodNotAllowed,
    InvalidStatusTransition,
    NotOwner,
    AccountExists,
    ConversationClosed,
    RequestTimeout,
    Internal,
    Unavailable,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 22] = [
        ErrorCode::MalformedJson,
        ErrorCode::InvalidBody,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidId,
        ErrorCode::InvalidParameter,
        ErrorCode::InvalidIdempotencyKey,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::Unauthorized,
        ErrorCode::InvalidCredentials,
        ErrorCode::Forbidden,
        ErrorCode::WorkspaceNotFound,
        ErrorCode::ConversationNotFound,
        ErrorCode::NotFound,
        ErrorCode::MethodNotAllowed,
        ErrorCode::InvalidStatusTransition,
        ErrorCode::NotOwner,
        ErrorCode::AccountExists,
        ErrorCode::ConversationClosed,
        ErrorCode::RequestTimeout,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
    ];

    pub fn info(self) -> (&'static str, StatusCode, &'static str) {
        use ErrorCode::*;
        match self {
            MalformedJson => (
                "malformed_json",
                StatusCode::BAD_REQUEST,
                "The request body is not valid JSON",
            ),
            InvalidBody => (
                "invalid_body",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The request body does not match the expected schema",
            ),
            UnsupportedMediaType => (
                "unsupported_media_type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Send the body as application/json",
            ),
            PayloadTooLarge => (
                "payload_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "The request body is too large",
            ),
            InvalidId => (
                "invalid_id",
                StatusCode::BAD_REQUEST,
                "An id in the path is malformed",
            ),
            InvalidParameter => (
                "invalid_parameter",
                StatusCode::BAD_REQUEST,
                "A query parameter is invalid",
            ),
            InvalidIdempotencyKey => (
                "invalid_idempotency_key",
                StatusCode::BAD_REQUEST,
                "The Idempotency-Key header is invalid",
            ),
            IdempotencyKeyReused => (
                "idempotency_key_reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "The Idempotency-Key was already used with a different request",
            ),
            Unauthorized => (
                "unauthorized",
                StatusCode::UNAUTHORIZED,
                "Authentication is required",
            ),
            InvalidCredentials => (
                "invalid_credentials",
                StatusCode::UNAUTHORIZED,
                "The credentials are invalid or revoked",
            ),
            Forbidden => (
                "forbidden",
                StatusCode::FORBIDDEN,
                "These credentials do not grant access to this resource",
            ),
            WorkspaceNotFound => (
                "workspace_not_found",
                StatusCode::NOT_FOUND,
                "No such workspace",
            ),
            ConversationNotFound => (
                "conversation_not_found",
                StatusCode::NOT_FOUND,
                "No such conversation",
            ),
            NotFound => ("not_found", StatusCode::NOT_FOUND, "No such resource"),
            MethodNotAllowed => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "This method is not allowed on this resource",
            ),
            NotOwner => (
                "not_owner",
                StatusCode::CONFLICT,
                "Someone else owns the conversation",
            ),
            AccountExists => (
                "account_exists",
                StatusCode::CONFLICT,
                "An account with this email exists in the workspace",
            ),
            InvalidStatusTransition => (
                "invalid_status_transition",
                StatusCode::CONFLICT,
                "The conversation cannot move to that status from its current one",
            ),
            ConversationClosed => (
                "conversation_closed",
                StatusCode::CONFLICT,
                "The conversation is closed",
            ),
            RequestTimeout => (
                "request_timeout",
                StatusCode::REQUEST_TIMEOUT,
                "The request took too long",
            ),
            Internal => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ),
            Unavailable => (
                "unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is temporarily unavailable",
            ),
        }
    }

    pub fn code(self) -> &'static str {
        self.info().0
    }

    pub fn status(self) -> StatusCode {
        self.info().1
    }

    /// The generic code for a status produced outside our handlers (router, middleware).
    pub fn for_status(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
            StatusCode::FORBIDDEN => ErrorCode::Forbidden,
            StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidBody,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
            s if s.is_client_error() => ErrorCode::InvalidParameter,
            _ => ErrorCode::Internal,
        }
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the problem type (`urn:concierge:error:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What exactly was wrong with this request.
    pub detail: String,
    /// Stable, machine-readable error code.
    pub code: String,
    /// Correlates with server logs; filled in by the request middleware.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    pub code: ErrorCode,
    pub detail: String,
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }

    pub fn problem(&self) -> Problem {
        let (code, status, title) = self.code.info();
        Problem {
            kind: format!("urn:concierge:error:{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: self.detail.clone(),
            code: code.to_string(),
            request_id: None,
        }
    }

    pub fn internal(err: impl std::fmt::Display) -> Self {
        // 5xx hide internals: the detail is logged, the client gets a generic message.
        tracing::error!(error = %err, "internal error");
        Self::new(
            ErrorCode::Internal,
            "An unexpected error occurred; it has been logged with this request id.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let problem = self.problem();
        let body = serde_json::to_vec(&problem).unwrap_or_default();
        let mut response = (self.code.status(), body).into_response();
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound("conversation") => {
                Self::new(ErrorCode::ConversationNotFound, "no such conversation")
            }
            StoreError::NotFound(what) => Self::new(ErrorCode::NotFound, format!("no such {what}")),
            StoreError::Conflict(message) => Self::new(ErrorCode::IdempotencyKeyReused, message),
            StoreError::InvalidTransition { from, to } => Self::new(
                ErrorCode::InvalidStatusTransition,
                format!("the conversation is {from}; it cannot move to {to}"),
            ),
            StoreError::NotOwner(message) => Self::new(ErrorCode::NotOwner, message),
            StoreError::Backend(message) => Self::internal(message),
        }
    }
}

impl From<concierge_agent::ServiceError> for ApiError {
    fn from(err: concierge_agent::ServiceError) -> Self {
        match err {
            concierge_agent::ServiceError::Store(e) => e.into(),
            concierge_agent::ServiceError::Closed => Self::new(
                ErrorCode::ConversationClosed,
                "the conversation is closed; start a new one",
            ),
            concierge_agent::ServiceError::Invalid(detail) => {
                Self::new(ErrorCode::InvalidBody, detail)
            }
            other => Self::internal(other),
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let (name, status, title) = code.info();
            assert!(seen.insert(name), "duplicate code {name}");
            assert!(
                name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{name}"
            );
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{name}"
            );
            assert!(!title.is_empty());
        }
    }
}
