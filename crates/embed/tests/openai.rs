//! The OpenAI-compatible provider against a fake server that validates every request with the
//! official `CreateEmbeddingRequest` schema (vendored from ../shared/specs/llm/openai) and answers in the
//! official response shape.

// An integration test is not `cfg(test)`, so the workspace's `expect_used` denial reaches it;
// here a failed expectation is the test's failure message.
#![allow(clippy::expect_used)]

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use concierge_embed::OpenAiEmbedder;
use concierge_knowledge::embed::Embedder;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn request_schema() -> Option<jsonschema::Validator> {
    // A subset of the official bundle, vendored with its license (see tests/fixtures).
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openai-embeddings.schema.json"
    );
    let bundle: Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    let mut schema = bundle["$defs"]["CreateEmbeddingRequest"].clone();
    schema["$defs"] = bundle["$defs"].clone();
    jsonschema::validator_for(&schema).ok()
}

#[derive(Default)]
struct Fake {
    requests: Mutex<Vec<(Option<String>, Value)>>,
    fail_first: Mutex<u32>,
}

async fn embeddings(
    State(fake): State<Arc<Fake>>,
    headers: axum::http::HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if let Some(validator) = request_schema() {
        let errors: Vec<String> = validator
            .iter_errors(&body)
            .map(|e| e.to_string())
            .collect();
        assert!(
            errors.is_empty(),
            "request violates the OpenAI schema: {errors:?}\n{body}"
        );
    }
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    fake.requests
        .lock()
        .expect("lock")
        .push((auth, body.clone()));
    {
        let mut fail = fake.fail_first.lock().expect("lock");
        if *fail > 0 {
            *fail -= 1;
            return (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], Json(json!({"error": {"message": "Rate limit", "type": "requests", "code": "rate_limit_exceeded", "param": null}}))).into_response();
        }
    }
    let inputs = body["input"].as_array().cloned().unwrap_or_default();
    // Deterministic, non-normalized vectors: [len, 1, 0] per input, returned in reverse order
    // to check that `index` is honoured.
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .rev()
        .map(|(i, t)| json!({"object": "embedding", "index": i, "embedding": [t.as_str().unwrap_or("").len() as f32, 1.0, 0.0]}))
        .collect();
    Json(json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 3, "total_tokens": 3}})).into_response()
}

async fn spawn(fake: Arc<Fake>) -> String {
    let app = axum::Router::new()
        .route("/v1/embeddings", axum::routing::post(embeddings))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn batches_are_sent_in_the_official_shape_normalized_and_ordered() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    assert!(
        request_schema().is_some(),
        "the official schema bundle is readable"
    );
    let fake = Arc::new(Fake::default());
    *fake.fail_first.lock().expect("lock") = 1;
    let base = spawn(fake.clone()).await;
    let embedder = OpenAiEmbedder::new(
        &base,
        "nomic-embed-text",
        Some("sk-test".to_string().into()),
        3,
        Duration::from_secs(5),
    )
    .expect("embedder");
    let texts: Vec<String> = (0..70).map(|i| "x".repeat(i + 1)).collect();
    let vectors = embedder.embed(&texts).await.expect("embed");
    assert_eq!(vectors.len(), 70);
    // Input i has length i+1: vector ∝ [i+1, 1, 0].
    for (i, v) in vectors.iter().enumerate() {
        let n = ((i + 1) as f32).hypot(1.0);
        assert!(
            (v[0] - (i + 1) as f32 / n).abs() < 1e-5 && (v[1] - 1.0 / n).abs() < 1e-5,
            "{i}: {v:?}"
        );
    }
    let requests = fake.requests.lock().expect("lock");
    assert_eq!(
        requests.len(),
        3,
        "one retried 429, then batches of 64 and 6"
    );
    assert!(
        requests
            .iter()
            .all(|(auth, _)| auth.as_deref() == Some("Bearer sk-test"))
    );
    assert_eq!(requests[2].1["input"].as_array().map(Vec::len), Some(6));
    assert_eq!(embedder.dims(), 3);
    assert!(embedder.model_id().contains("nomic-embed-text"));
}

#[tokio::test]
async fn wrong_dimensions_and_errors_are_reported() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = Arc::new(Fake::default());
    let base = spawn(fake).await;
    let embedder =
        OpenAiEmbedder::new(&base, "m", None, 384, Duration::from_secs(5)).expect("embedder");
    let err = embedder
        .embed(&["hello".to_string()])
        .await
        .expect_err("dimension mismatch");
    assert!(err.0.contains("expected 384 dimensions"), "{err}");
    let missing = OpenAiEmbedder::new(
        &format!("{base}/nope"),
        "m",
        None,
        3,
        Duration::from_secs(5),
    )
    .expect("embedder");
    let err = missing
        .embed(&["hello".to_string()])
        .await
        .expect_err("404");
    assert!(err.0.contains("404"), "{err}");
}
