//! A scripted fake LLM server (axum, in process, random port). Every request it receives is
//! checked by the provider's `Check` — the official JSON Schema of the request, the headers, and
//! the tool-call pairing of the history — and any violation is recorded and answered with 400,
//! so a test fails both through the adapter's error and through `assert_clean`. Replies are
//! scripted byte for byte and can be cut into awkward pieces (mid-line, mid-UTF-8) and sent with
//! pauses, so the adapter's stream parser sees them the way a real network delivers them.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde_json::Value;
use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// Validates one request: the violations found (empty when it is fine).
pub type Check = fn(&HeaderMap, Option<&str>, &Value) -> Vec<String>;

pub fn fixture(path: &str) -> Vec<u8> {
    // Through `../llm`, so the agent's tests (which include this module) find them too.
    let full: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "..",
        "llm",
        "tests",
        "fixtures",
        path,
    ]
    .iter()
    .collect();
    std::fs::read(&full).unwrap_or_else(|e| panic!("fixture {}: {e}", full.display()))
}

pub fn fixture_json(path: &str) -> Value {
    serde_json::from_slice(&fixture(path)).expect("fixture is JSON")
}

/// A validator for `$defs[def]` of a bundle: the definition with the bundle's `$defs` beside it.
pub fn validator(bundle: &Value, def: &str) -> jsonschema::Validator {
    assert!(bundle["$defs"].get(def).is_some(), "{def} is in the bundle");
    let mut schema = bundle["$defs"][def].clone();
    schema["$defs"] = bundle["$defs"].clone();
    schema["$schema"] = bundle["$schema"].clone();
    jsonschema::validator_for(&schema).expect("the schema compiles")
}

pub fn schema_errors(validator: &jsonschema::Validator, value: &Value) -> Vec<String> {
    validator
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// How the body of a reply is cut into network writes.
#[derive(Clone, Copy, Debug)]
pub enum Chunking {
    /// One write.
    Whole,
    /// Cut in the middle of every line, after the first byte of every multi-byte character and
    /// between the two newlines that end an event.
    Awkward,
    /// Writes of this many bytes.
    Every(usize),
}

#[derive(Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub chunking: Chunking,
    /// Wait before answering at all.
    pub delay: Duration,
    /// Send this many bytes of the body, then hang.
    pub stall_after: Option<usize>,
}

impl Reply {
    pub fn sse(body: impl Into<Vec<u8>>) -> Self {
        Reply {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: body.into(),
            chunking: Chunking::Whole,
            delay: Duration::ZERO,
            stall_after: None,
        }
    }

    pub fn json(status: u16, body: Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string().into_bytes(),
            chunking: Chunking::Whole,
            delay: Duration::ZERO,
            stall_after: None,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn chunked(mut self, chunking: Chunking) -> Self {
        self.chunking = chunking;
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    pub fn stalling_after(mut self, bytes: usize) -> Self {
        self.stall_after = Some(bytes);
        self
    }
}

/// The pieces `chunking` cuts `body` into.
pub fn cut(body: &[u8], chunking: Chunking) -> Vec<Vec<u8>> {
    let mut cuts: Vec<usize> = match chunking {
        Chunking::Whole => vec![],
        Chunking::Every(n) => (1..body.len()).filter(|i| i % n.max(1) == 0).collect(),
        Chunking::Awkward => {
            let mut cuts = Vec::new();
            let mut line_start = 0;
            for (i, &b) in body.iter().enumerate() {
                if b >= 0xC0 {
                    cuts.push(i + 1);
                }
                if b == b'\n' {
                    cuts.push(line_start + (i - line_start) / 2);
                    if body.get(i + 1) == Some(&b'\n') {
                        cuts.push(i + 1);
                    }
                    line_start = i + 1;
                }
            }
            cuts
        }
    };
    cuts.retain(|&c| c > 0 && c < body.len());
    cuts.sort_unstable();
    cuts.dedup();
    let mut pieces = Vec::new();
    let mut start = 0;
    for c in cuts.into_iter().chain(std::iter::once(body.len())) {
        pieces.push(body[start..c].to_vec());
        start = c;
    }
    pieces
}

pub struct Captured {
    pub headers: HeaderMap,
    pub query: Option<String>,
    pub body: Value,
    pub at: Instant,
}

pub struct Fake {
    pub requests: Mutex<Vec<Captured>>,
    script: Mutex<VecDeque<Reply>>,
    violations: Mutex<Vec<String>>,
    check: Check,
}

impl Fake {
    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("lock").len()
    }

    pub fn body(&self, i: usize) -> Value {
        self.requests.lock().expect("lock")[i].body.clone()
    }

    pub fn header(&self, i: usize, name: &str) -> Option<String> {
        self.requests.lock().expect("lock")[i]
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }

    pub fn query(&self, i: usize) -> Option<String> {
        self.requests.lock().expect("lock")[i].query.clone()
    }

    /// Times between consecutive requests.
    pub fn gaps(&self) -> Vec<Duration> {
        let requests = self.requests.lock().expect("lock");
        requests.windows(2).map(|w| w[1].at - w[0].at).collect()
    }

    /// Fails the test if any request broke the contract or the script was not used up.
    pub fn assert_clean(&self) {
        let violations = self.violations.lock().expect("lock");
        assert!(
            violations.is_empty(),
            "requests broke the contract:\n{}",
            violations.join("\n")
        );
        let left = self.script.lock().expect("lock").len();
        assert_eq!(left, 0, "{left} scripted replies were never requested");
    }
}

async fn handle(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Response {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => Value::String(format!("(not JSON: {e})")),
    };
    let mut problems = (fake.check)(&headers, query.as_deref(), &parsed);
    if !parsed.is_object() {
        problems.push("the body is not a JSON object".into());
    }
    let n = {
        let mut requests = fake.requests.lock().expect("lock");
        requests.push(Captured {
            headers,
            query,
            body: parsed.clone(),
            at: Instant::now(),
        });
        requests.len()
    };
    if !problems.is_empty() {
        let text = format!("request {n}: {}\n{parsed:#}", problems.join("; "));
        fake.violations.lock().expect("lock").push(text.clone());
        return plain(400, text);
    }
    let Some(reply) = fake.script.lock().expect("lock").pop_front() else {
        let text = format!("request {n}: no scripted reply left");
        fake.violations.lock().expect("lock").push(text.clone());
        return plain(500, text);
    };
    tokio::time::sleep(reply.delay).await;
    let mut pieces = cut(&reply.body, reply.chunking);
    let stall = reply.stall_after;
    if let Some(limit) = stall {
        let mut kept = Vec::new();
        let mut sent = 0;
        for piece in pieces {
            if sent >= limit {
                break;
            }
            let take = piece.len().min(limit - sent);
            kept.push(piece[..take].to_vec());
            sent += take;
        }
        pieces = kept;
    }
    let paced = pieces.len() > 1;
    let stream = futures::stream::unfold(
        (pieces.into_iter(), false),
        move |(mut rest, started)| async move {
            if started && paced {
                // A pause between writes, so they reach the client as separate reads.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            match rest.next() {
                Some(piece) => Some((Ok::<_, std::io::Error>(Bytes::from(piece)), (rest, true))),
                None if stall.is_some() => {
                    futures::future::pending::<()>().await;
                    None
                }
                None => None,
            }
        },
    );
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name, value);
    }
    response
        .body(Body::from_stream(stream))
        .expect("a valid response")
}

fn plain(status: u16, text: String) -> Response {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("status"))
        .header("content-type", "text/plain")
        .body(Body::from(text))
        .expect("a valid response")
}

/// Starts a fake answering POST `path`; returns it and its base URL (`http://127.0.0.1:port`).
pub async fn spawn(check: Check, path: &str, script: Vec<Reply>) -> (Arc<Fake>, String) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let fake = Arc::new(Fake {
        requests: Mutex::new(Vec::new()),
        script: Mutex::new(script.into()),
        violations: Mutex::new(Vec::new()),
        check,
    });
    let app = axum::Router::new()
        .route(path, axum::routing::post(handle))
        .with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (fake, format!("http://{addr}"))
}

/// The text deltas an adapter streamed, collected for assertions.
#[derive(Default)]
pub struct Deltas(pub Mutex<Vec<String>>);

impl Deltas {
    pub fn push(&self, text: &str) {
        self.0.lock().expect("lock").push(text.to_string());
    }

    pub fn all(&self) -> Vec<String> {
        self.0.lock().expect("lock").clone()
    }

    pub fn joined(&self) -> String {
        self.all().concat()
    }
}

/// The tool names both adapters are offered in the tests, with schemas as the agent's registry
/// produces them (schemars output keeps `$schema` and `title`).
pub fn order_tools() -> Vec<concierge_core::LlmTool> {
    vec![
        concierge_core::LlmTool {
            name: "get_order".into(),
            description: "Looks up one of the customer's orders by its number.".into(),
            input_schema: serde_json::json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "title": "GetOrderArgs",
                "type": "object",
                "properties": {"order_number": {"type": "string"}},
                "required": ["order_number"],
                "additionalProperties": false
            }),
        },
        concierge_core::LlmTool {
            name: "request_human".into(),
            description: String::new(),
            input_schema: serde_json::json!({"type": "object", "properties": {}}),
        },
    ]
}
