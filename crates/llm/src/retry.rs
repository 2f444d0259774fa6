//! Sending a request with retries, and reading its event stream under a deadline. Shared by both
//! adapters.
//!
//! Retries follow the official SDKs: 408, 409, 429, 5xx (Anthropic's 529 "overloaded" included),
//! timeouts and connection failures are tried again; the wait is the server's `retry-after-ms` or
//! `retry-after` (seconds or an HTTP date) when it gives one, else a capped exponential backoff
//! with jitter. A 429 saying the quota is used up is final unless the server names a time to come
//! back. An `x-should-retry` header overrides the decision either way.
//!
//! Only the request is retried, never a stream: once a 2xx response is handed over, its bytes are
//! the caller's, and a failure while reading them is reported as is. That keeps the text passed to
//! `on_text` free of repeats.

use crate::sse::{SseDecoder, SseEvent};
use concierge_core::{LlmError, LlmErrorKind};
use futures::{Stream, StreamExt};
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// How often and how patiently a call is tried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    pub initial_backoff: Duration,
    /// Cap of the computed wait.
    pub max_backoff: Duration,
    /// The longest wait a server may ask for: a longer `Retry-After` ends the call with the error
    /// (carrying `retry_after`) so the caller can reschedule instead of holding a worker.
    pub max_retry_wait: Duration,
}

impl Default for RetryPolicy {
    /// The official SDKs' values: 2 retries, 0.5 s doubling to at most 8 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(8),
            max_retry_wait: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The computed wait before attempt `attempt + 1`: `initial · 2^(attempt-1)`, capped, less up
    /// to a quarter of random jitter so that many clients do not retry in step.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let base = exp.min(self.max_backoff);
        base.mul_f64(1.0 - 0.25 * random_unit())
    }
}

fn random_unit() -> f64 {
    let mut bytes = [0u8; 8];
    // Jitter only; a failed random source just means no jitter.
    if getrandom::fill(&mut bytes).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

/// The wait a response asks for: `retry-after-ms` (milliseconds), else `retry-after` as seconds
/// or as an HTTP date (relative to `now`).
pub fn retry_after(headers: &reqwest::header::HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Whether a status is worth another attempt.
fn retryable_status(status: u16) -> bool {
    matches!(status, 408 | 409 | 429) || status >= 500
}

/// The error kind for an HTTP status, refined by the error body's `type`/`code` when that is
/// more specific (a quota, an overload or a rate limit); generic types such as `server_error` or
/// `invalid_request_error` leave the status to decide.
fn kind_of(status: u16, error_type: Option<&str>) -> LlmErrorKind {
    use LlmErrorKind::*;
    if let Some(kind @ (QuotaExhausted | Overloaded | RateLimited | Auth)) =
        error_type.and_then(kind_of_error_type)
    {
        return kind;
    }
    match status {
        401 | 403 => LlmErrorKind::Auth,
        408 => LlmErrorKind::Timeout,
        429 => LlmErrorKind::RateLimited,
        503 | 529 => LlmErrorKind::Overloaded,
        s if s >= 500 => LlmErrorKind::Server,
        409 => LlmErrorKind::Server,
        _ => LlmErrorKind::BadRequest,
    }
}

/// The error kind for an error `type` or `code` of either vendor (used for mid-stream errors
/// too), or `None` when it says nothing specific.
pub(crate) fn kind_of_error_type(error_type: &str) -> Option<LlmErrorKind> {
    Some(match error_type {
        "insufficient_quota" | "billing_error" => LlmErrorKind::QuotaExhausted,
        "overloaded_error" | "overloaded" | "server_overloaded" => LlmErrorKind::Overloaded,
        "rate_limit_error" | "rate_limit_exceeded" => LlmErrorKind::RateLimited,
        "authentication_error" | "permission_error" | "invalid_api_key" => LlmErrorKind::Auth,
        "api_error" | "server_error" | "internal_error" => LlmErrorKind::Server,
        "timeout_error" => LlmErrorKind::Timeout,
        "invalid_request_error" | "not_found_error" | "request_too_large" => {
            LlmErrorKind::BadRequest
        }
        _ => return None,
    })
}

/// `(type or code, message)` from the error bodies both vendors and their imitators send:
/// `{"error": {"type", "code", "message"}}`, `{"type": "error", "error": {...}}` or Ollama's
/// `{"error": "text"}`.
pub(crate) fn error_details(body: &serde_json::Value) -> (Option<String>, Option<String>) {
    let error = body.get("error").unwrap_or(body);
    if let Some(text) = error.as_str() {
        return (None, Some(text.to_string()));
    }
    let code = error.get("code").and_then(|c| c.as_str());
    let kind = error.get("type").and_then(|c| c.as_str());
    // The more specific of the two: OpenAI's quota error is type and code `insufficient_quota`,
    // its rate limit type `requests` with code `rate_limit_exceeded`.
    let chosen = [code, kind]
        .into_iter()
        .flatten()
        .find(|t| kind_of_error_type(t).is_some())
        .or(kind)
        .or(code);
    let message = error
        .get("message")
        .and_then(|m| m.as_str())
        .map(str::to_string);
    (chosen.map(str::to_string), message)
}

/// Builds a fresh request for each attempt.
pub(crate) type MakeRequest<'a> = &'a (dyn Fn() -> reqwest::RequestBuilder + Send + Sync);

/// Sends the request until it succeeds, fails for good or runs out of attempts. On success, the
/// response (its status 2xx, its body unread) and the deadline its reading must meet.
pub(crate) async fn send(
    make: MakeRequest<'_>,
    policy: &RetryPolicy,
    timeout: Duration,
    what: &str,
) -> Result<(reqwest::Response, Instant), LlmError> {
    let attempts = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let deadline = Instant::now() + timeout;
        let (error, retry, wait) = match tokio::time::timeout_at(deadline, make().send()).await {
            Err(_) => (
                LlmError::new(
                    LlmErrorKind::Timeout,
                    format!("{what}: no response within {timeout:?}"),
                ),
                true,
                None,
            ),
            Ok(Err(e)) => {
                let kind = if e.is_timeout() {
                    LlmErrorKind::Timeout
                } else {
                    LlmErrorKind::Network
                };
                (
                    LlmError::new(kind, format!("{what}: {}", error_chain(&e))),
                    true,
                    None,
                )
            }
            Ok(Ok(response)) if response.status().is_success() => return Ok((response, deadline)),
            Ok(Ok(response)) => failed_response(response, deadline, what).await,
        };
        if !retry || attempt >= attempts {
            return Err(error);
        }
        let wait = match wait {
            Some(w) if w > policy.max_retry_wait => return Err(error),
            Some(w) => w,
            None => policy.backoff(attempt),
        };
        tracing::warn!(
            attempt,
            kind = %error.kind,
            wait_ms = wait.as_millis() as u64,
            "{}; retrying",
            error.message
        );
        tokio::time::sleep(wait).await;
    }
}

/// Reads an error response: the error, whether to retry, and the wait the server asked for.
async fn failed_response(
    response: reqwest::Response,
    deadline: Instant,
    what: &str,
) -> (LlmError, bool, Option<Duration>) {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let wait = retry_after(&headers, SystemTime::now());
    let request_id = ["request-id", "x-request-id", "apim-request-id"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .map(str::to_string);
    // Error bodies are small; a slow or huge one is not worth waiting for.
    let body = match tokio::time::timeout_at(deadline, response.bytes()).await {
        Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes[..bytes.len().min(64 * 1024)]).into_owned(),
        _ => String::new(),
    };
    let json: serde_json::Value = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
    let (error_type, message) = error_details(&json);
    let mut kind = kind_of(status, error_type.as_deref());
    if status == 429 && kind == LlmErrorKind::BadRequest {
        kind = LlmErrorKind::RateLimited;
    }
    let mut retry = retryable_status(status);
    if kind == LlmErrorKind::QuotaExhausted && wait.is_none() {
        retry = false;
    }
    match headers.get("x-should-retry").and_then(|v| v.to_str().ok()) {
        Some("true") => retry = true,
        Some("false") => retry = false,
        _ => {}
    }
    let detail = message.unwrap_or_else(|| body.chars().take(300).collect());
    let mut text = format!("{what} answered {status}: {detail}");
    if let Some(id) = request_id {
        text.push_str(&format!(" (request id {id})"));
    }
    let error = LlmError {
        kind,
        message: text,
        status: Some(status),
        retry_after: wait,
    };
    (error, retry, wait)
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

type ByteStream = Pin<Box<dyn Stream<Item = Result<Vec<u8>, reqwest::Error>> + Send>>;

/// The events of a streamed response, read under the attempt's deadline.
pub(crate) struct EventReader {
    body: ByteStream,
    decoder: SseDecoder,
    ready: VecDeque<SseEvent>,
    deadline: Instant,
    ended: bool,
    what: String,
}

impl EventReader {
    pub(crate) fn new(response: reqwest::Response, deadline: Instant, what: &str) -> Self {
        EventReader {
            body: Box::pin(response.bytes_stream().map(|r| r.map(|b| b.to_vec()))),
            decoder: SseDecoder::new(),
            ready: VecDeque::new(),
            deadline,
            ended: false,
            what: what.to_string(),
        }
    }

    /// The next event, or `None` at the end of the stream.
    pub(crate) async fn next(&mut self) -> Result<Option<SseEvent>, LlmError> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            if self.ended {
                return Ok(None);
            }
            let mut out = Vec::new();
            match tokio::time::timeout_at(self.deadline, self.body.next()).await {
                Err(_) => {
                    return Err(LlmError::new(
                        LlmErrorKind::Timeout,
                        format!("{}: the answer did not finish in time", self.what),
                    ));
                }
                Ok(Some(Err(e))) => {
                    let kind = if e.is_timeout() {
                        LlmErrorKind::Timeout
                    } else {
                        LlmErrorKind::Network
                    };
                    return Err(LlmError::new(
                        kind,
                        format!("{}: reading the stream: {}", self.what, error_chain(&e)),
                    ));
                }
                Ok(Some(Ok(bytes))) => self
                    .decoder
                    .push(&bytes, &mut out)
                    .map_err(|e| LlmError::new(LlmErrorKind::Protocol, e))?,
                Ok(None) => {
                    self.ended = true;
                    self.decoder.finish(&mut out);
                }
            }
            self.ready.extend(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn retry_after_in_all_three_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(
            retry_after(
                &headers(&[("retry-after-ms", "250"), ("retry-after", "9")]),
                now
            ),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "2")]), now),
            Some(Duration::from_secs(2))
        );
        assert_eq!(
            retry_after(&headers(&[("retry-after", "1.5")]), now),
            Some(Duration::from_millis(1500))
        );
        let date = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &date)]), now),
            Some(Duration::from_secs(7))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(7));
        assert_eq!(
            retry_after(&headers(&[("retry-after", &past)]), now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after(&headers(&[("retry-after", "soon")]), now), None);
        assert_eq!(retry_after(&headers(&[("retry-after", "-3")]), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            max_retry_wait: Duration::from_secs(60),
        };
        for (attempt, base) in [(1, 100), (2, 200), (3, 400), (4, 800), (5, 1000), (9, 1000)] {
            for _ in 0..20 {
                let wait = policy.backoff(attempt).as_secs_f64() * 1000.0;
                assert!(
                    wait <= base as f64 + 1e-6 && wait >= base as f64 * 0.75 - 1e-6,
                    "attempt {attempt}: {wait} ms not within 75-100% of {base} ms"
                );
            }
        }
    }

    #[test]
    fn error_bodies_of_both_vendors() {
        let openai_quota = serde_json::json!({"error": {"message": "You exceeded your current quota", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
        let (t, m) = error_details(&openai_quota);
        assert_eq!(kind_of(429, t.as_deref()), LlmErrorKind::QuotaExhausted);
        assert!(m.is_some_and(|m| m.contains("quota")));
        let openai_rate = serde_json::json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}});
        let (t, _) = error_details(&openai_rate);
        assert_eq!(kind_of(429, t.as_deref()), LlmErrorKind::RateLimited);
        let anthropic = serde_json::json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
        let (t, m) = error_details(&anthropic);
        assert_eq!(kind_of(529, t.as_deref()), LlmErrorKind::Overloaded);
        assert_eq!(m.as_deref(), Some("Overloaded"));
        let ollama = serde_json::json!({"error": "model \"x\" not found"});
        let (t, m) = error_details(&ollama);
        assert_eq!(kind_of(404, t.as_deref()), LlmErrorKind::BadRequest);
        assert!(m.is_some_and(|m| m.contains("not found")));
        assert_eq!(kind_of(401, None), LlmErrorKind::Auth);
        assert_eq!(kind_of(502, None), LlmErrorKind::Server);
        assert_eq!(kind_of(503, None), LlmErrorKind::Overloaded);
    }
}
