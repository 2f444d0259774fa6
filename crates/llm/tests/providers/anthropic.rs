//! The Anthropic adapter against a fake Messages API that validates every request with the
//! official schema for the version it names (`CreateMessageParams`, or the
//! `CreateMessageParams_2026_10_21` overlay that forbids sampling parameters) and replays the
//! official SDK's stream fixtures.

pub use crate::anthropic_wire::*;
use crate::fake::{Chunking, Deltas, Reply, cut, fixture, order_tools, spawn};
use axum::http::HeaderMap;
use concierge_core::{
    LlmError, LlmErrorKind, LlmMessage, LlmProvider, LlmRequest, LlmResponse, LlmToolCall,
    StopReason, Usage,
};
use concierge_llm::{
    AnthropicAuth, AnthropicConfig, AnthropicProvider, AnthropicVersion, RetryPolicy,
};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use std::time::Duration;

pub fn text_stream(text: &str) -> Vec<u8> {
    official(&[
        message_start(30),
        text_start(0),
        text_delta(0, text),
        stop(0),
        message_delta("end_turn", 9),
        message_stop(),
    ])
}

pub fn overloaded_event() -> Vec<u8> {
    official(&[
        message_start(30),
        text_start(0),
        text_delta(0, "Let me"),
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}, "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}),
    ])
}

// ---- helpers --------------------------------------------------------------------------------

pub fn provider(
    base: &str,
    version: AnthropicVersion,
    configure: impl FnOnce(&mut AnthropicConfig),
) -> AnthropicProvider {
    let mut c = AnthropicConfig::new(base, "claude-sonnet-4-5", "sk-ant-test".to_string().into());
    c.version = version;
    c.timeout = Duration::from_secs(10);
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_wait: Duration::from_secs(5),
    };
    configure(&mut c);
    AnthropicProvider::new(c).expect("provider")
}

pub fn ask(text: &str) -> LlmRequest {
    LlmRequest {
        system: Some("You are Nimbus Home's support agent.".into()),
        messages: vec![LlmMessage::user(text)],
        tools: order_tools(),
        max_tokens: 1024,
        temperature: Some(0.3),
    }
}

async fn run(
    p: &dyn LlmProvider,
    req: &LlmRequest,
) -> (Result<LlmResponse, LlmError>, Vec<String>) {
    let deltas = Deltas::default();
    let result = p.complete(req, &|t| deltas.push(t)).await;
    (result, deltas.all())
}

// ---- tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn version_2026_10_21_never_sends_temperature_and_the_recorded_stream_parses() {
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(fixture("anthropic/basic_response.txt")).chunked(Chunking::Awkward)],
    )
    .await;
    let p = provider(&base, AnthropicVersion::V2026_10_21, |_| {});
    let (result, deltas) = run(&p, &ask("Hi")).await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert_eq!(deltas, vec!["Hello", " there", "!"]);
    assert_eq!(response.text, "Hello there!");
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 11,
            output_tokens: 6
        }
    );
    assert_eq!(response.model, "claude-3-opus-latest");
    assert_eq!(
        fake.header(0, "anthropic-version").as_deref(),
        Some("2026-10-21")
    );
    assert_eq!(fake.header(0, "x-api-key").as_deref(), Some("sk-ant-test"));
    assert_eq!(fake.header(0, "authorization"), None);
    assert_eq!(
        fake.body(0),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "stream": true,
            "system": "You are Nimbus Home's support agent.",
            "messages": [{"role": "user", "content": "Hi"}],
            "tools": [
                {"name": "get_order", "description": "Looks up one of the customer's orders by its number.",
                 "input_schema": order_tools()[0].input_schema},
                {"name": "request_human", "input_schema": {"type": "object", "properties": {}}}
            ]
        })
    );
    assert_eq!(p.id(), "anthropic:claude-sonnet-4-5");
}

#[tokio::test]
async fn version_2023_06_01_with_a_bearer_token_sends_temperature() {
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(text_stream("Guten Tag! Wie kann ich helfen?")).chunked(Chunking::Awkward)],
    )
    .await;
    let p = provider(&base, AnthropicVersion::V2023_06_01, |c| {
        c.auth = AnthropicAuth::Bearer("sk-ant-oat-test".to_string().into());
    });
    let (result, deltas) = run(&p, &ask("Hallo")).await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert_eq!(deltas, vec!["Guten Tag! Wie kann ich helfen?"]);
    assert_eq!(response.text, deltas.concat());
    assert_eq!(
        fake.header(0, "anthropic-version").as_deref(),
        Some("2023-06-01")
    );
    assert_eq!(
        fake.header(0, "authorization").as_deref(),
        Some("Bearer sk-ant-oat-test")
    );
    assert_eq!(fake.header(0, "x-api-key"), None);
    assert_eq!(fake.body(0)["temperature"], json!(0.3));
}

#[test]
fn the_2026_overlay_is_what_rejects_temperature() {
    // If this failed, the test above would prove nothing about the 2026-10-21 contract.
    let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 10, "stream": true, "temperature": 0.3,
                      "messages": [{"role": "user", "content": "Hi"}]});
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    headers.insert("x-api-key", "k".parse().expect("value"));
    headers.insert("anthropic-version", "2023-06-01".parse().expect("value"));
    assert_eq!(check(&headers, None, &body), Vec::<String>::new());
    headers.insert("anthropic-version", "2026-10-21".parse().expect("value"));
    assert!(!check(&headers, None, &body).is_empty());
}

#[tokio::test]
async fn a_recorded_tool_use_stream_gives_text_and_the_tool_call() {
    let sse = fixture("anthropic/tool_use_response.txt");
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(sse).chunked(Chunking::Every(3))],
    )
    .await;
    let (result, deltas) = run(
        &provider(&base, AnthropicVersion::V2026_10_21, |_| {}),
        &ask("Weather in Paris?"),
    )
    .await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert_eq!(
        deltas.concat(),
        "I'll check the current weather in Paris for you."
    );
    assert_eq!(response.text, deltas.concat());
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(
        response.tool_calls,
        vec![LlmToolCall {
            id: "toolu_01NRLabsLyVHZPKxbKvkfSMn".into(),
            name: "get_weather".into(),
            arguments: json!({"location": "Paris"}),
        }]
    );
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 377,
            output_tokens: 65
        }
    );
}

#[tokio::test]
async fn a_two_turn_loop_with_parallel_tool_calls_merges_results_into_one_user_turn() {
    let calls = official(&[
        message_start(420),
        ping(),
        text_start(0),
        text_delta(0, "Ich sehe nach – "),
        text_delta(0, "einen Moment."),
        stop(0),
        tool_start(1, "toolu_01Order", "get_order"),
        json_delta(1, ""),
        json_delta(1, "{\"order_num"),
        ping(),
        json_delta(1, "ber\": \"A-1043\"}"),
        stop(1),
        tool_start(2, "toolu_01Human", "request_human"),
        stop(2),
        message_delta("tool_use", 71),
        message_stop(),
    ]);
    let answer = official(&[
        message_start(520),
        text_start(0),
        text_delta(0, "Ihre Bestellung A-1043 ist unterwegs. "),
        text_delta(0, "Ein Kollege meldet sich gleich. 👋"),
        stop(0),
        message_delta("end_turn", 24),
        message_stop(),
    ]);
    let (fake, base) = spawn(
        check,
        PATH,
        vec![
            Reply::sse(calls).chunked(Chunking::Awkward),
            Reply::sse(answer).chunked(Chunking::Awkward),
        ],
    )
    .await;
    let p = provider(&base, AnthropicVersion::V2026_10_21, |_| {});
    let mut req = ask("Wo ist A-1043? Und ich will mit jemandem sprechen.");
    let (result, deltas) = run(&p, &req).await;
    let turn = result.expect("first turn");
    assert_eq!(deltas, vec!["Ich sehe nach – ", "einen Moment."]);
    assert_eq!(turn.stop, StopReason::ToolUse);
    assert_eq!(
        turn.tool_calls,
        vec![
            LlmToolCall {
                id: "toolu_01Order".into(),
                name: "get_order".into(),
                arguments: json!({"order_number": "A-1043"}),
            },
            LlmToolCall {
                id: "toolu_01Human".into(),
                name: "request_human".into(),
                arguments: json!({}),
            },
        ]
    );
    req.messages.push(turn.to_message());
    req.messages
        .push(LlmMessage::tool_result("toolu_01Order", "shipped"));
    req.messages.push(LlmMessage::tool_error(
        "toolu_01Human",
        "no one is available",
    ));
    req.messages.push(LlmMessage::user("Danke!"));
    let (result, deltas) = run(&p, &req).await;
    let reply = result.expect("second turn");
    fake.assert_clean();
    assert_eq!(
        reply.text,
        "Ihre Bestellung A-1043 ist unterwegs. Ein Kollege meldet sich gleich. 👋"
    );
    assert_eq!(deltas.concat(), reply.text);
    assert_eq!(
        reply.usage,
        Usage {
            input_tokens: 520,
            output_tokens: 24
        }
    );
    let sent = fake.body(1);
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "user", "content": "Wo ist A-1043? Und ich will mit jemandem sprechen."},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Ich sehe nach – einen Moment."},
                {"type": "tool_use", "id": "toolu_01Order", "name": "get_order", "input": {"order_number": "A-1043"}},
                {"type": "tool_use", "id": "toolu_01Human", "name": "request_human", "input": {}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01Order", "content": "shipped"},
                {"type": "tool_result", "tool_use_id": "toolu_01Human", "content": "no one is available", "is_error": true},
                {"type": "text", "text": "Danke!"}
            ]}
        ])
    );
}

#[tokio::test]
async fn consecutive_user_messages_are_merged_and_foreign_ids_made_valid() {
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(text_stream("ok")), Reply::sse(text_stream("ok"))],
    )
    .await;
    let p = provider(&base, AnthropicVersion::V2026_10_21, |_| {});
    let mut req = ask("First line");
    req.messages.push(LlmMessage::user("Second line"));
    run(&p, &req).await.0.expect("completion");
    assert_eq!(
        fake.body(0)["messages"],
        json!([{"role": "user", "content": [
            {"type": "text", "text": "First line"},
            {"type": "text", "text": "Second line"}
        ]}])
    );
    // A history started on another provider: its tool-call id has characters Anthropic refuses.
    req.messages.push(LlmMessage::Assistant {
        text: String::new(),
        tool_calls: vec![LlmToolCall {
            id: "call:7/x".into(),
            name: "get_order".into(),
            arguments: json!({"order_number": "A-7"}),
        }],
    });
    req.messages
        .push(LlmMessage::tool_result("call:7/x", "delivered"));
    run(&p, &req).await.0.expect("completion");
    fake.assert_clean();
    let sent = fake.body(1);
    assert_eq!(sent["messages"][1]["content"][0]["id"], "call_7_x");
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], "call_7_x");
}

#[tokio::test]
async fn refusals_unknown_events_and_server_tools() {
    let toolrefusal = fixture("anthropic/fable-fallback__stream-a-toolrefusal.sse");
    assert!(
        cut(&toolrefusal, Chunking::Awkward)
            .iter()
            .any(|p| std::str::from_utf8(p).is_err()),
        "some writes end inside a multi-byte character"
    );
    let (fake, base) = spawn(
        check,
        PATH,
        vec![
            Reply::sse(fixture("anthropic/refusal_response.txt")),
            Reply::sse(fixture("anthropic/unknown_events_response.txt")).chunked(Chunking::Awkward),
            Reply::sse(toolrefusal).chunked(Chunking::Awkward),
        ],
    )
    .await;
    let p = provider(&base, AnthropicVersion::V2026_10_21, |_| {});
    let (result, deltas) = run(&p, &ask("q")).await;
    let refused = result.expect("completion");
    assert_eq!(refused.stop, StopReason::Refusal);
    assert_eq!(refused.text, "");
    assert!(deltas.is_empty());
    assert_eq!(
        refused.usage,
        Usage {
            input_tokens: 20,
            output_tokens: 0
        }
    );

    let (result, deltas) = run(&p, &ask("q")).await;
    let unknown = result.expect("completion");
    assert_eq!(unknown.text, "Hello there!");
    assert_eq!(deltas.concat(), "Hello there!");
    assert_eq!(unknown.stop, StopReason::EndTurn);
    assert_eq!(
        unknown.usage,
        Usage {
            input_tokens: 11,
            output_tokens: 6
        },
        "a future event's usage is not counted"
    );

    let (result, deltas) = run(&p, &ask("q")).await;
    let server_tools = result.expect("completion");
    fake.assert_clean();
    assert_eq!(server_tools.stop, StopReason::Refusal);
    assert!(
        server_tools.tool_calls.is_empty(),
        "a server tool is not ours to run"
    );
    assert_eq!(
        server_tools.text,
        "Here's a summary of this year's solar eclipses and how"
    );
    assert_eq!(deltas.concat(), server_tools.text);
}

#[tokio::test]
async fn cut_off_and_malformed_tool_input() {
    let (fake, base) = spawn(
        check,
        PATH,
        vec![
            Reply::sse(fixture("anthropic/incomplete_partial_json_response.txt")),
            Reply::sse(fixture("anthropic/tool_use_invalid_json_response.txt")),
            Reply::sse(text_stream("Which unit?")),
            Reply::sse(fixture("anthropic/message_delta_fields_response.txt")),
        ],
    )
    .await;
    let p = provider(&base, AnthropicVersion::V2026_10_21, |_| {});
    let (result, _) = run(&p, &ask("q")).await;
    let cut_off = result.expect("completion");
    assert_eq!(cut_off.stop, StopReason::MaxTokens);
    assert!(
        cut_off.tool_calls.is_empty(),
        "an unfinished tool call is dropped"
    );
    assert!(cut_off.text.ends_with("Let me do that for you now."));
    assert_eq!(
        cut_off.usage,
        Usage {
            input_tokens: 450,
            output_tokens: 124
        }
    );

    let mut req = ask("Weather in Paris?");
    let (result, _) = run(&p, &req).await;
    let malformed = result.expect("completion");
    assert_eq!(malformed.stop, StopReason::ToolUse);
    assert_eq!(
        malformed.tool_calls[0].arguments,
        Value::String("{\"location\": \"Paris\", \"unit\": celsius}".into()),
        "kept as text for the caller to answer with a tool error"
    );
    req.messages.push(malformed.to_message());
    req.messages.push(LlmMessage::tool_error(
        "toolu_01NRLabsLyVHZPKxbKvkfSMn",
        "arguments are not valid JSON",
    ));
    run(&p, &req).await.0.expect("the history still validates");
    assert_eq!(
        fake.body(2)["messages"][1]["content"][1]["input"],
        json!({})
    );

    let (result, _) = run(&p, &ask("q")).await;
    let counted = result.expect("completion");
    fake.assert_clean();
    assert_eq!(
        counted.usage,
        Usage {
            input_tokens: 40 + 12 + 7,
            output_tokens: 8
        },
        "cumulative message_delta usage, cache reads and writes included"
    );
}

#[tokio::test]
async fn an_unfinished_stream_is_a_protocol_error() {
    let mut body = fixture("anthropic/basic_response.txt");
    let cut_at = String::from_utf8(body.clone())
        .expect("UTF-8")
        .find("event: message_delta")
        .expect("has message_delta");
    body.truncate(cut_at);
    let (fake, base) = spawn(check, PATH, vec![Reply::sse(body)]).await;
    let (result, deltas) = run(
        &provider(&base, AnthropicVersion::V2026_10_21, |_| {}),
        &ask("q"),
    )
    .await;
    let err = result.expect_err("incomplete");
    fake.assert_clean();
    assert_eq!(err.kind, LlmErrorKind::Protocol);
    assert_eq!(deltas.concat(), "Hello there!");
}

#[test]
fn the_fake_rejects_what_the_api_would() {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", "application/json".parse().expect("value"));
    headers.insert("x-api-key", "k".parse().expect("value"));
    headers.insert("anthropic-version", "2026-10-21".parse().expect("value"));
    // The official hand-written round trip passes.
    let good = json!({
        "model": "claude-sonnet-4-5", "max_tokens": 1024, "stream": true,
        "system": "You are a customer-support agent.",
        "tools": [{"name": "get_order_status", "description": "Look up an order by id",
                   "input_schema": {"type": "object", "properties": {"order_id": {"type": "string"}}, "required": ["order_id"]}}],
        "messages": [
            {"role": "user", "content": "Where is order 42?"},
            {"role": "assistant", "content": [{"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_order_status", "input": {"order_id": "42"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "shipped", "is_error": false}]}
        ]
    });
    assert_eq!(check(&headers, None, &good), Vec::<String>::new());
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        edit(&mut body);
        check(&headers, None, &body)
    };
    assert!(
        !broken(&|b| b["messages"][2]["content"][0]["tool_use_id"] = json!("toolu_x")).is_empty()
    );
    assert!(
        !broken(&|b| b["messages"][2] = json!({"role": "user", "content": "never mind"}))
            .is_empty()
    );
    assert!(!broken(&|b| b["messages"][2]["role"] = json!("assistant")).is_empty());
    assert!(
        !broken(&|b| {
            b["messages"][2]["content"] = json!([{"type": "text", "text": "hm"},
                {"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "shipped"}]);
        })
        .is_empty(),
        "tool results after text"
    );
    assert!(
        !broken(&|b| b["max_token"] = json!(10)).is_empty(),
        "a misspelt field"
    );
    assert!(
        !broken(&|b| b["messages"][0]["content"] = json!([{"type": "text", "text": ""}]))
            .is_empty()
    );
    let mut no_version = headers.clone();
    no_version.remove("anthropic-version");
    assert!(!check(&no_version, None, &good).is_empty());
    let mut both_keys = headers.clone();
    both_keys.insert("authorization", "Bearer k".parse().expect("value"));
    assert!(!check(&both_keys, None, &good).is_empty());
}
