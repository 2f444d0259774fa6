//! Request context: a request id on every request (taken from `X-Request-Id` or generated),
//! a log line and metrics per request, and problem+json for every error response, including
//! those produced outside our handlers (router fallbacks, body limits, timeouts).

use crate::error::{ApiError, ErrorCode, PROBLEM_JSON, Problem};
use axum::body::Body;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Instant;
use tracing::Instrument;

const REQUEST_ID: &str = "x-request-id";
const MAX_ERROR_BODY: usize = 64 * 1024;

fn valid_request_id(v: &HeaderValue) -> Option<String> {
    let s = v.to_str().ok()?;
    (!s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    .then(|| s.to_string())
}

pub async fn request_context(mut req: Request, next: Next) -> Response {
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(valid_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        req.headers_mut().insert(REQUEST_ID, v);
    }
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let span =
        tracing::info_span!("request", request_id = %request_id, method = %method, path = %path);
    let started = Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    let status = response.status();
    // The MCP transport answers in JSON-RPC (its clients parse that); everything else in
    // problem+json. Our own 401 in front of it is problem+json already.
    let transport_error = (path == "/mcp" || path.starts_with("/mcp/"))
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    let mut response = if (status.is_client_error() || status.is_server_error()) && !transport_error
    {
        as_problem(response, &request_id).await
    } else {
        response
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, v);
    }
    let elapsed = started.elapsed().as_secs_f64();
    span.in_scope(|| {
        if status.is_server_error() {
            tracing::error!(
                status = status.as_u16(),
                elapsed_ms = elapsed * 1000.0,
                "request failed"
            );
        } else {
            tracing::info!(
                status = status.as_u16(),
                elapsed_ms = elapsed * 1000.0,
                "request"
            );
        }
    });
    let labels = [
        ("method", method.to_string()),
        ("route", route),
        ("status", status.as_u16().to_string()),
    ];
    metrics::counter!("concierge_http_requests_total", &labels).increment(1);
    metrics::histogram!("concierge_http_request_duration_seconds", &labels[..2]).record(elapsed);
    response
}

/// Makes sure an error response is problem+json and carries the request id.
async fn as_problem(response: Response, request_id: &str) -> Response {
    let (mut parts, body) = response.into_parts();
    let is_problem = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_JSON));
    let bytes = axum::body::to_bytes(body, MAX_ERROR_BODY)
        .await
        .unwrap_or_default();
    let mut value: serde_json::Value = if is_problem {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| serde_json::json!({}))
    } else {
        // Produced outside our handlers: wrap whatever text it had.
        let code = ErrorCode::for_status(parts.status);
        let text = String::from_utf8_lossy(&bytes).trim().to_string();
        let detail = if text.is_empty() {
            code.info().2.to_string()
        } else {
            text
        };
        let mut problem: Problem = ApiError::new(code, detail).problem();
        problem.status = parts.status.as_u16();
        serde_json::to_value(problem).unwrap_or_default()
    };
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "request_id".into(),
            serde_json::Value::String(request_id.to_string()),
        );
    }
    let body = serde_json::to_vec(&value).unwrap_or_default();
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(body))
}

pub async fn not_found(req: Request) -> Response {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {} {}", req.method(), req.uri().path()),
    )
    .into_response()
}

pub async fn method_not_allowed(req: Request) -> Response {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
    .into_response()
}
