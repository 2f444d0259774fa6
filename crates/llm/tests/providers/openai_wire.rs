//! The OpenAI Chat Completions contract as the fakes enforce it: the official request schema
//! (made strict: undeclared fields are errors), the tool-call pairing of the history, and
//! builders of stream chunks in the official shape (each validated before it is sent). Shared
//! by the adapter's tests and the agent's.
#![allow(dead_code)]

use crate::fake::{fixture_json, schema_errors, validator};
use axum::http::HeaderMap;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::OnceLock;

pub const PATH: &str = "/v1/chat/completions";

pub struct Schemas {
    pub bundle: Value,
    pub request: jsonschema::Validator,
    pub chunk: jsonschema::Validator,
    pub error: jsonschema::Validator,
}

pub fn schemas() -> &'static Schemas {
    static SCHEMAS: OnceLock<Schemas> = OnceLock::new();
    SCHEMAS.get_or_init(|| {
        let bundle = fixture_json("openai/chat-embeddings.schema.json");
        Schemas {
            request: validator(&bundle, "CreateChatCompletionRequest"),
            chunk: validator(&bundle, "CreateChatCompletionStreamResponse"),
            error: validator(&bundle, "ErrorResponse"),
            bundle,
        }
    })
}

/// Property names a definition declares, through `$ref` and `allOf`.
pub fn declared(bundle: &Value, schema: &Value, out: &mut HashSet<String>) {
    if let Some(name) = schema
        .get("$ref")
        .and_then(|r| r.as_str())
        .and_then(|r| r.strip_prefix("#/$defs/"))
    {
        declared(bundle, &bundle["$defs"][name], out);
    }
    if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
        out.extend(props.keys().cloned());
    }
    for part in schema
        .get("allOf")
        .and_then(|a| a.as_array())
        .into_iter()
        .flatten()
    {
        declared(bundle, part, out);
    }
}

/// Keys of `value` that `def` does not declare. OpenAI's request schemas allow additional
/// properties, so a misspelt field would pass the schema and be silently ignored by the API;
/// this makes the check strict.
pub fn undeclared(def: &str, value: &Value, at: &str) -> Vec<String> {
    let bundle = &schemas().bundle;
    let mut known = HashSet::new();
    declared(bundle, &bundle["$defs"][def], &mut known);
    value
        .as_object()
        .map(|o| {
            o.keys()
                .filter(|k| !known.contains(*k))
                .map(|k| format!("{at}.{k} is not a field of {def}"))
                .collect()
        })
        .unwrap_or_default()
}

/// Each `role: tool` message answers a call of the closest assistant message before it, with
/// nothing else in between, and every call is answered before the conversation moves on.
pub fn tool_pairing_violations(messages: &[Value]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let role = m["role"].as_str().unwrap_or("");
        if role == "tool" {
            let id = m["tool_call_id"].as_str().unwrap_or("");
            match pending.iter().position(|p| p == id) {
                Some(at) => {
                    pending.remove(at);
                }
                None => problems.push(format!(
                    "messages[{i}]: tool result {id:?} answers no tool call of the previous assistant turn"
                )),
            }
            continue;
        }
        if !pending.is_empty() {
            problems.push(format!(
                "messages[{i}]: tool calls {pending:?} were never answered"
            ));
            pending.clear();
        }
        if role == "assistant" {
            pending = m["tool_calls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| c["id"].as_str().unwrap_or("").to_string())
                .collect();
        }
    }
    if !pending.is_empty() {
        problems.push(format!("tool calls {pending:?} were never answered"));
    }
    problems
}

/// What the fake checks on every request.
pub fn check(headers: &HeaderMap, _query: Option<&str>, body: &Value) -> Vec<String> {
    let s = schemas();
    let mut problems = schema_errors(&s.request, body);
    problems.extend(undeclared("CreateChatCompletionRequest", body, "body"));
    for (i, m) in body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let def = match m["role"].as_str() {
            Some("system") => "ChatCompletionRequestSystemMessage",
            Some("user") => "ChatCompletionRequestUserMessage",
            Some("assistant") => "ChatCompletionRequestAssistantMessage",
            Some("tool") => "ChatCompletionRequestToolMessage",
            other => {
                problems.push(format!("messages[{i}]: unexpected role {other:?}"));
                continue;
            }
        };
        problems.extend(undeclared(def, m, &format!("messages[{i}]")));
    }
    for (i, t) in body["tools"].as_array().into_iter().flatten().enumerate() {
        problems.extend(undeclared("ChatCompletionTool", t, &format!("tools[{i}]")));
        problems.extend(undeclared(
            "FunctionObject",
            &t["function"],
            &format!("tools[{i}].function"),
        ));
    }
    if body["stream"] != json!(true) {
        problems.push("stream must be true".into());
    }
    if body["stream_options"] != json!({"include_usage": true}) {
        problems.push("stream_options must ask for usage".into());
    }
    if !headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
    {
        problems.push("content-type must be application/json".into());
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

/// A chunk in the official shape (hand-made; each one is validated before it is sent).
pub fn chunk(choices: Value) -> Value {
    json!({
        "id": "chatcmpl-fake0001",
        "object": "chat.completion.chunk",
        "created": 1764201600,
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_fake",
        "choices": choices,
    })
}

pub fn delta(delta: Value, finish: Option<&str>) -> Value {
    chunk(json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]))
}

pub fn text(t: &str) -> Value {
    delta(json!({"content": t}), None)
}

pub fn tool_start(index: u32, id: &str, name: &str) -> Value {
    delta(
        json!({"tool_calls": [{"index": index, "id": id, "type": "function", "function": {"name": name, "arguments": ""}}]}),
        None,
    )
}

pub fn tool_args(index: u32, fragment: &str) -> Value {
    delta(
        json!({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}),
        None,
    )
}

pub fn finish(reason: &str) -> Value {
    delta(json!({}), Some(reason))
}

pub fn usage(prompt: u64, completion: u64) -> Value {
    let mut c = chunk(json!([]));
    c["usage"] = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    c
}

/// `data:` lines for `chunks`, each checked against the official stream schema, then `[DONE]`.
pub fn official(chunks: &[Value]) -> Vec<u8> {
    let mut out = String::new();
    for c in chunks {
        let errors = if c.get("error").is_some() {
            schema_errors(&schemas().error, c)
        } else {
            schema_errors(&schemas().chunk, c)
        };
        assert!(
            errors.is_empty(),
            "the fake would send an invalid chunk: {errors:?}\n{c}"
        );
        out.push_str(&format!("data: {c}\n\n"));
    }
    out.push_str("data: [DONE]\n\n");
    out.into_bytes()
}
