//! The Anthropic Messages contract as the fakes enforce it: the official request schema of
//! the version a request names, the role alternation and tool-result pairing of the history,
//! and builders of stream events in the official shape (each validated before it is sent).
//! Shared by the adapter's tests and the agent's.
#![allow(dead_code)]

use crate::fake::{fixture_json, schema_errors, validator};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::OnceLock;

pub const PATH: &str = "/v1/messages";

pub struct Schemas {
    pub request_2023: jsonschema::Validator,
    pub request_2026: jsonschema::Validator,
    pub event: jsonschema::Validator,
    pub error: jsonschema::Validator,
}

pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let bundle = fixture_json("anthropic/messages.schema.json");
        Schemas {
            request_2023: validator(&bundle, "CreateMessageParams"),
            request_2026: validator(&bundle, "CreateMessageParams_2026_10_21"),
            event: validator(&bundle, "MessageStreamEvent"),
            error: validator(&bundle, "ErrorResponse"),
        }
    })
}

/// Roles alternate starting with the user; every `tool_result` block answers a `tool_use` of the
/// assistant message right before, all of them are answered there, and they come first.
pub fn tool_pairing_violations(messages: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let blocks = |m: &Value| -> Vec<Value> {
        match &m["content"] {
            Value::Array(blocks) => blocks.clone(),
            _ => vec![],
        }
    };
    let ids = |m: &Value, kind: &str, key: &str| -> BTreeSet<String> {
        blocks(m)
            .iter()
            .filter(|b| b["type"] == kind)
            .map(|b| b[key].as_str().unwrap_or("").to_string())
            .collect()
    };
    let mut expected_role = "user";
    let mut open_calls: BTreeSet<String> = BTreeSet::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        if role != expected_role {
            problems.push(format!(
                "messages[{i}]: role {role:?} where {expected_role:?} must come"
            ));
        }
        if role == "user" {
            let results = ids(m, "tool_result", "tool_use_id");
            if results != open_calls {
                problems.push(format!(
                    "messages[{i}]: tool results {results:?} do not answer exactly the previous turn's tool calls {open_calls:?}"
                ));
            }
            let content = blocks(m);
            let first_other = content.iter().position(|b| b["type"] != "tool_result");
            if let Some(at) = first_other
                && content[at..].iter().any(|b| b["type"] == "tool_result")
            {
                problems.push(format!("messages[{i}]: tool results must come first"));
            }
            open_calls.clear();
        } else {
            open_calls = ids(m, "tool_use", "id");
        }
        expected_role = if role == "user" { "assistant" } else { "user" };
    }
    if !open_calls.is_empty() {
        problems.push(format!("tool calls {open_calls:?} are never answered"));
    }
    problems
}

pub fn check(headers: &HeaderMap, _query: Option<&str>, body: &Value) -> Vec<String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let mut problems = match header("anthropic-version") {
        Some("2023-06-01") => schema_errors(&schemas().request_2023, body),
        Some("2026-10-21") => schema_errors(&schemas().request_2026, body),
        other => vec![format!("unknown anthropic-version {other:?}")],
    };
    let x_api_key = header("x-api-key").is_some();
    let bearer = header("authorization").is_some_and(|v| v.starts_with("Bearer "));
    if x_api_key == bearer {
        problems.push("exactly one of x-api-key and Authorization: Bearer must be sent".into());
    }
    if !header("content-type").is_some_and(|v| v.starts_with("application/json")) {
        problems.push("content-type must be application/json".into());
    }
    if body["stream"] != json!(true) {
        problems.push("stream must be true".into());
    }
    problems.extend(tool_pairing_violations(
        body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[]),
    ));
    problems
}

// ---- streams --------------------------------------------------------------------------------

/// Named events in the official shape (hand-made; each is validated before it is sent).
pub fn official(events: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for e in events {
        let errors = if e["type"] == "error" {
            schema_errors(&schemas().error, e)
        } else {
            schema_errors(&schemas().event, e)
        };
        assert!(
            errors.is_empty(),
            "the fake would send an invalid event: {errors:?}\n{e}"
        );
        out.push_str(&format!(
            "event: {}\ndata: {e}\n\n",
            e["type"].as_str().expect("type")
        ));
    }
    out.into_bytes()
}

pub fn message_start(input_tokens: u64) -> Value {
    json!({"type": "message_start", "message": {
        "id": "msg_01FakeMessage", "type": "message", "role": "assistant", "content": [],
        "model": "claude-sonnet-4-5-20250929", "stop_reason": null, "stop_sequence": null,
        "stop_details": null, "container": null,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "cache_creation": null, "inference_geo": null,
                  "output_tokens": 1, "server_tool_use": null, "service_tier": "standard"}
    }})
}

pub fn text_start(index: u64) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": "", "citations": null}})
}

pub fn text_delta(index: u64, text: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})
}

pub fn tool_start(index: u64, id: &str, name: &str) -> Value {
    json!({"type": "content_block_start", "index": index, "content_block": {"type": "tool_use", "id": id, "name": name, "input": {}, "caller": {"type": "direct"}}})
}

pub fn json_delta(index: u64, fragment: &str) -> Value {
    json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": fragment}})
}

pub fn stop(index: u64) -> Value {
    json!({"type": "content_block_stop", "index": index})
}

pub fn message_delta(reason: &str, output_tokens: u64) -> Value {
    json!({"type": "message_delta",
           "delta": {"stop_reason": reason, "stop_sequence": null, "stop_details": null, "container": null},
           "usage": {"input_tokens": null, "cache_creation_input_tokens": null, "cache_read_input_tokens": null,
                     "output_tokens": output_tokens, "server_tool_use": null}})
}

pub fn ping() -> Value {
    json!({"type": "ping"})
}

pub fn message_stop() -> Value {
    json!({"type": "message_stop"})
}
