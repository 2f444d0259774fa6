//! Retries, waits and timeouts through both adapters. The backoff is configured far longer than
//! the waits the fake asks for, so a test that passes quickly proves the server's wait was used.

use crate::fake::{Deltas, Reply, spawn};
use crate::{anthropic, openai};
use concierge_core::{LlmErrorKind, LlmProvider};
use concierge_llm::{AnthropicVersion, RetryPolicy};
use serde_json::json;
use std::time::Duration;
use tokio::time::Instant;

fn patient(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_secs(20),
        max_backoff: Duration::from_secs(20),
        max_retry_wait: Duration::from_secs(5),
    }
}

fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        initial_backoff: Duration::from_millis(60),
        max_backoff: Duration::from_millis(500),
        max_retry_wait: Duration::from_secs(5),
    }
}

fn rate_limited() -> serde_json::Value {
    json!({"error": {"message": "Rate limit reached for requests", "type": "requests", "param": null, "code": "rate_limit_exceeded"}})
}

fn anthropic_error(kind: &str, message: &str) -> serde_json::Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"})
}

async fn complete(
    p: &dyn LlmProvider,
    req: &concierge_core::LlmRequest,
) -> Result<String, concierge_core::LlmError> {
    let deltas = Deltas::default();
    let response = p.complete(req, &|t| deltas.push(t)).await?;
    assert_eq!(deltas.joined(), response.text);
    Ok(response.text)
}

#[tokio::test]
async fn a_429_is_retried_after_the_retry_after_ms_it_names() {
    let (fake, base) = spawn(
        openai::check,
        openai::PATH,
        vec![
            Reply::json(429, rate_limited()).header("retry-after-ms", "300"),
            Reply::sse(openai::text_stream("Hello")),
        ],
    )
    .await;
    let p = openai::provider(&base, |c| c.retry = patient(3));
    let started = Instant::now();
    let text = complete(&p, &openai::ask("q")).await.expect("completion");
    fake.assert_clean();
    assert_eq!(text, "Hello");
    assert_eq!(fake.request_count(), 2);
    let gap = fake.gaps()[0];
    assert!(gap >= Duration::from_millis(300), "waited {gap:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the backoff was not used"
    );
}

#[tokio::test]
async fn a_429_is_retried_after_the_retry_after_seconds_it_names() {
    let (fake, base) = spawn(
        anthropic::check,
        anthropic::PATH,
        vec![
            Reply::json(
                429,
                anthropic_error(
                    "rate_limit_error",
                    "Number of request tokens has exceeded your per-minute rate limit",
                ),
            )
            .header("retry-after", "1"),
            Reply::sse(anthropic::text_stream("Hello")),
        ],
    )
    .await;
    let p = anthropic::provider(&base, AnthropicVersion::V2026_10_21, |c| {
        c.retry = patient(3)
    });
    let started = Instant::now();
    let text = complete(&p, &anthropic::ask("q"))
        .await
        .expect("completion");
    fake.assert_clean();
    assert_eq!(text, "Hello");
    let gap = fake.gaps()[0];
    assert!(gap >= Duration::from_secs(1), "waited {gap:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the backoff was not used"
    );
}

#[tokio::test]
async fn a_529_overloaded_is_retried_with_growing_backoff() {
    let overloaded = || Reply::json(529, anthropic_error("overloaded_error", "Overloaded"));
    let (fake, base) = spawn(
        anthropic::check,
        anthropic::PATH,
        vec![
            overloaded(),
            overloaded(),
            Reply::sse(anthropic::text_stream("Back")),
        ],
    )
    .await;
    let p = anthropic::provider(&base, AnthropicVersion::V2026_10_21, |c| c.retry = quick(3));
    let text = complete(&p, &anthropic::ask("q"))
        .await
        .expect("completion");
    fake.assert_clean();
    assert_eq!(text, "Back");
    assert_eq!(fake.request_count(), 3);
    let gaps = fake.gaps();
    // 60 ms then 120 ms, each less at most a quarter of jitter.
    assert!(gaps[0] >= Duration::from_millis(45), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(90), "{gaps:?}");
}

#[tokio::test]
async fn a_500_then_success() {
    let (fake, base) = spawn(
        openai::check,
        openai::PATH,
        vec![
            Reply::json(500, json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}})),
            Reply::sse(openai::text_stream("Recovered")),
        ],
    )
    .await;
    let p = openai::provider(&base, |c| c.retry = quick(2));
    assert_eq!(
        complete(&p, &openai::ask("q")).await.expect("completion"),
        "Recovered"
    );
    fake.assert_clean();
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn an_exhausted_quota_is_not_retried_unless_the_server_names_a_time() {
    let quota = json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "param": null, "code": "insufficient_quota"}});
    let (fake, base) = spawn(
        openai::check,
        openai::PATH,
        vec![
            Reply::json(429, quota.clone()),
            Reply::json(429, quota).header("retry-after-ms", "50"),
            Reply::sse(openai::text_stream("ok")),
        ],
    )
    .await;
    let p = openai::provider(&base, |c| c.retry = quick(3));
    let err = complete(&p, &openai::ask("q")).await.expect_err("quota");
    assert_eq!(err.kind, LlmErrorKind::QuotaExhausted);
    assert_eq!(err.status, Some(429));
    assert!(err.message.contains("exceeded your current quota"), "{err}");
    assert_eq!(fake.request_count(), 1, "not retried");
    assert_eq!(
        complete(&p, &openai::ask("q")).await.expect("completion"),
        "ok"
    );
    assert_eq!(fake.request_count(), 3, "retried after the named time");
    fake.assert_clean();
}

#[tokio::test]
async fn retries_stop_at_max_attempts_and_at_long_waits() {
    let unavailable = || {
        Reply::json(
            503,
            json!({"error": {"message": "Service Unavailable", "type": "server_error", "param": null, "code": null}}),
        )
    };
    let (fake, base) = spawn(
        openai::check,
        openai::PATH,
        vec![
            unavailable(),
            unavailable(),
            unavailable(),
            Reply::json(429, rate_limited()).header("retry-after", "120"),
        ],
    )
    .await;
    let p = openai::provider(&base, |c| c.retry = quick(3));
    let err = complete(&p, &openai::ask("q"))
        .await
        .expect_err("unavailable");
    assert_eq!(err.kind, LlmErrorKind::Overloaded);
    assert_eq!(err.status, Some(503));
    assert_eq!(fake.request_count(), 3);

    let started = Instant::now();
    let err = complete(&p, &openai::ask("q"))
        .await
        .expect_err("rate limited");
    assert_eq!(err.kind, LlmErrorKind::RateLimited);
    assert_eq!(
        err.retry_after,
        Some(Duration::from_secs(120)),
        "for the caller to reschedule"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "did not sleep two minutes"
    );
    assert_eq!(fake.request_count(), 4);
    fake.assert_clean();
}

#[tokio::test]
async fn client_errors_are_final_and_x_should_retry_overrides() {
    let (fake, base) = spawn(
        anthropic::check,
        anthropic::PATH,
        vec![
            Reply::json(
                401,
                anthropic_error("authentication_error", "invalid x-api-key"),
            ),
            Reply::json(
                400,
                anthropic_error("invalid_request_error", "messages: roles must alternate"),
            ),
            Reply::json(400, anthropic_error("invalid_request_error", "transient"))
                .header("x-should-retry", "true"),
            Reply::sse(anthropic::text_stream("ok")),
            Reply::json(500, anthropic_error("api_error", "Internal server error"))
                .header("x-should-retry", "false"),
        ],
    )
    .await;
    let p = anthropic::provider(&base, AnthropicVersion::V2026_10_21, |c| c.retry = quick(3));
    let err = complete(&p, &anthropic::ask("q")).await.expect_err("auth");
    assert_eq!((err.kind, err.status), (LlmErrorKind::Auth, Some(401)));
    let err = complete(&p, &anthropic::ask("q"))
        .await
        .expect_err("bad request");
    assert_eq!(err.kind, LlmErrorKind::BadRequest);
    assert!(err.message.contains("roles must alternate"), "{err}");
    assert_eq!(fake.request_count(), 2, "neither retried");
    assert_eq!(
        complete(&p, &anthropic::ask("q"))
            .await
            .expect("completion"),
        "ok"
    );
    let err = complete(&p, &anthropic::ask("q"))
        .await
        .expect_err("server said no retry");
    assert_eq!(err.kind, LlmErrorKind::Server);
    assert_eq!(fake.request_count(), 5);
    fake.assert_clean();
}

#[tokio::test]
async fn an_error_event_after_http_200_is_reported_without_retry() {
    let (fake, base) = spawn(
        anthropic::check,
        anthropic::PATH,
        vec![Reply::sse(anthropic::overloaded_event())],
    )
    .await;
    let p = anthropic::provider(&base, AnthropicVersion::V2026_10_21, |c| c.retry = quick(3));
    let deltas = Deltas::default();
    let err = p
        .complete(&anthropic::ask("q"), &|t| deltas.push(t))
        .await
        .expect_err("overloaded mid-stream");
    fake.assert_clean();
    assert_eq!(err.kind, LlmErrorKind::Overloaded);
    assert_eq!(deltas.all(), vec!["Let me"]);
    assert_eq!(
        fake.request_count(),
        1,
        "text was already streamed: no retry"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_retried_only_before_streaming() {
    let (fake, base) = spawn(
        openai::check,
        openai::PATH,
        vec![
            Reply::sse(openai::text_stream("late")).delayed(Duration::from_secs(3)),
            Reply::sse(openai::text_stream("in time")),
            Reply::sse(openai::text_stream("This answer never finishes")).stalling_after(60),
        ],
    )
    .await;
    let p = openai::provider(&base, |c| {
        c.timeout = Duration::from_millis(700);
        c.retry = quick(2);
    });
    let started = Instant::now();
    assert_eq!(
        complete(&p, &openai::ask("q")).await.expect("completion"),
        "in time"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(fake.request_count(), 2);

    let deltas = Deltas::default();
    let err = p
        .complete(&openai::ask("q"), &|t| deltas.push(t))
        .await
        .expect_err("stalled");
    assert_eq!(err.kind, LlmErrorKind::Timeout);
    assert_eq!(fake.request_count(), 3, "a started stream is not retried");
    fake.assert_clean();
}

#[tokio::test]
async fn a_refused_connection_is_a_network_error_after_the_retries() {
    // A port nothing listens on: bind, note the port, close.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let p = openai::provider(&format!("http://127.0.0.1:{port}"), |c| c.retry = quick(2));
    let started = Instant::now();
    let err = complete(&p, &openai::ask("q")).await.expect_err("refused");
    assert_eq!(err.kind, LlmErrorKind::Network);
    assert!(
        started.elapsed() >= Duration::from_millis(45),
        "one backoff before giving up"
    );
}
