//! Extractors that turn every malformed request into our problem format instead of axum's text.

use crate::error::{ApiError, ErrorCode};
use axum::extract::FromRequestParts;
use axum::extract::rejection::QueryRejection;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

/// JSON body. Besides the value it keeps a fingerprint of the raw body for idempotency checks.
pub struct ApiJson<T> {
    pub value: T,
    pub fingerprint: String,
}

impl<T: DeserializeOwned> ApiJson<T> {
    /// Parses a JSON body already read (after authentication and content-type checks).
    pub fn from_bytes(method: &str, route: &str, bytes: &[u8]) -> Result<Self, ApiError> {
        let mut hasher = Sha256::new();
        hasher.update(method.as_bytes());
        hasher.update(b" ");
        hasher.update(route.as_bytes());
        hasher.update(b"\n");
        hasher.update(bytes);
        let fingerprint = hex::encode(hasher.finalize());
        Ok(Self {
            value: parse_json(bytes)?,
            fingerprint,
        })
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = T::deserialize(&mut de).map_err(|e| {
        if e.is_syntax() || e.is_eof() {
            ApiError::new(ErrorCode::MalformedJson, format!("invalid JSON: {e}"))
        } else {
            ApiError::new(ErrorCode::InvalidBody, e.to_string())
        }
    })?;
    de.end().map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("trailing characters after JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// Requires `Content-Type: application/json` before the body is read.
pub fn require_json_content_type(headers: &axum::http::HeaderMap) -> Result<(), ApiError> {
    let ok = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|v| {
            v == "application/json" || (v.starts_with("application/") && v.ends_with("+json"))
        });
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "send the body with `Content-Type: application/json`",
        ))
    }
}

/// Query string with our error format.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|e: QueryRejection| ApiError::new(ErrorCode::InvalidParameter, e.body_text()))
    }
}

/// Parses an id from the path.
pub fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidId,
            format!("{raw:?} is not a valid {what} id (a UUID)"),
        )
    })
}

/// The `Idempotency-Key` header, validated: 1–255 visible ASCII characters.
pub fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidIdempotencyKey,
            "Idempotency-Key must be 1-255 visible ASCII characters",
        )
    };
    let s = value.to_str().map_err(|_| bad())?.trim();
    if s.is_empty() || s.len() > 255 || !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad());
    }
    Ok(Some(s.to_string()))
}
