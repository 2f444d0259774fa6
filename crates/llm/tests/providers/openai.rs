//! The OpenAI-compatible adapter against a fake Chat Completions server that validates every
//! request with the official `CreateChatCompletionRequest` schema and replays the official SDK's
//! recorded streams.

use crate::fake::{Chunking, Deltas, Reply, cut, fixture, order_tools, spawn};
pub use crate::openai_wire::*;
use axum::http::HeaderMap;
use concierge_core::{
    LlmError, LlmErrorKind, LlmMessage, LlmProvider, LlmRequest, LlmResponse, LlmTool, LlmToolCall,
    StopReason, Usage,
};
use concierge_llm::{MaxTokensField, OpenAiAuth, OpenAiConfig, OpenAiProvider, RetryPolicy};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use std::time::Duration;

/// What a recorded stream says, read independently of the adapter: the text of choice 0, its
/// finish reason and the usage.
fn oracle(sse: &[u8]) -> (String, String, Usage) {
    let mut text = String::new();
    let mut reason = String::new();
    let mut usage = Usage::default();
    for line in String::from_utf8(sse.to_vec()).expect("UTF-8").lines() {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            break;
        }
        let c: Value = serde_json::from_str(data).expect("chunk");
        for ch in c["choices"].as_array().into_iter().flatten() {
            if ch["index"] == 0 {
                text.push_str(ch["delta"]["content"].as_str().unwrap_or(""));
                if let Some(r) = ch["finish_reason"].as_str() {
                    reason = r.to_string();
                }
            }
        }
        if c["usage"].is_object() {
            usage = Usage {
                input_tokens: c["usage"]["prompt_tokens"].as_u64().expect("prompt_tokens"),
                output_tokens: c["usage"]["completion_tokens"]
                    .as_u64()
                    .expect("completion_tokens"),
            };
        }
    }
    (text, reason, usage)
}

// ---- helpers --------------------------------------------------------------------------------

pub fn provider(base: &str, configure: impl FnOnce(&mut OpenAiConfig)) -> OpenAiProvider {
    let mut c = OpenAiConfig::new(&format!("{base}/v1"), "gpt-4o-mini");
    c.auth = OpenAiAuth::Bearer("sk-test".to_string().into());
    c.timeout = Duration::from_secs(10);
    c.retry = RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
        max_retry_wait: Duration::from_secs(5),
    };
    configure(&mut c);
    OpenAiProvider::new(c).expect("provider")
}

pub fn ask(text: &str) -> LlmRequest {
    LlmRequest {
        system: Some("You are Nimbus Home's support agent.".into()),
        messages: vec![LlmMessage::user(text)],
        tools: order_tools(),
        max_tokens: 512,
        temperature: Some(0.2),
    }
}

pub async fn run(
    p: &dyn LlmProvider,
    req: &LlmRequest,
) -> (Result<LlmResponse, LlmError>, Vec<String>) {
    let deltas = Deltas::default();
    let result = p.complete(req, &|t| deltas.push(t)).await;
    (result, deltas.all())
}

pub fn text_stream(t: &str) -> Vec<u8> {
    official(&[text(t), finish("stop"), usage(20, 5)])
}

// ---- tests ----------------------------------------------------------------------------------

#[tokio::test]
async fn recorded_text_stream_cut_mid_line_streams_every_delta_and_counts_tokens() {
    let sse = fixture("openai/parse_nothing__plain_text.sse");
    let (expected_text, reason, expected_usage) = oracle(&sse);
    assert_eq!(reason, "stop");
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(sse.clone()).chunked(Chunking::Awkward)],
    )
    .await;
    let p = provider(&base, |_| {});
    let (result, deltas) = run(&p, &ask("What's the weather in San Francisco?")).await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert!(deltas.len() > 20, "streamed in many deltas: {deltas:?}");
    assert_eq!(deltas.concat(), expected_text);
    assert_eq!(response.text, expected_text);
    assert_eq!(response.stop, StopReason::EndTurn);
    assert_eq!(response.usage, expected_usage);
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 14,
            output_tokens: 30
        }
    );
    assert_eq!(response.model, "gpt-4o-2024-08-06");
    assert!(response.tool_calls.is_empty());
    assert_eq!(
        fake.header(0, "authorization").as_deref(),
        Some("Bearer sk-test")
    );
    assert_eq!(fake.query(0), None);
    assert_eq!(
        fake.body(0),
        json!({
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are Nimbus Home's support agent."},
                {"role": "user", "content": "What's the weather in San Francisco?"}
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "max_completion_tokens": 512,
            "temperature": 0.2,
            "tools": [
                {"type": "function", "function": {
                    "name": "get_order",
                    "description": "Looks up one of the customer's orders by its number.",
                    "parameters": order_tools()[0].input_schema
                }},
                {"type": "function", "function": {
                    "name": "request_human",
                    "parameters": {"type": "object", "properties": {}}
                }}
            ]
        })
    );
    assert_eq!(p.id(), "openai:gpt-4o-mini");
}

#[tokio::test]
async fn a_stream_cut_inside_utf8_characters_decodes_exactly() {
    let sse = fixture("openai/non_pydantic_response_format__json_text.sse");
    let pieces = cut(&sse, Chunking::Awkward);
    assert!(
        pieces.iter().any(|p| std::str::from_utf8(p).is_err()),
        "some writes end inside a multi-byte character"
    );
    let (expected_text, _, expected_usage) = oracle(&sse);
    assert!(expected_text.contains("18°C"));
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(sse).chunked(Chunking::Awkward)],
    )
    .await;
    let (result, deltas) = run(&provider(&base, |_| {}), &ask("Weather as JSON?")).await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert_eq!(deltas.concat(), expected_text);
    assert_eq!(response.text, expected_text);
    assert_eq!(response.usage, expected_usage);
}

#[tokio::test]
async fn parallel_tool_calls_are_assembled_per_index_and_their_results_sent_back() {
    let first = fixture("openai/parse_multiple_pydantic_tools__parallel_tool_calls.sse");
    let (fake, base) = spawn(
        check,
        PATH,
        vec![
            Reply::sse(first).chunked(Chunking::Every(5)),
            Reply::sse(text_stream("Edinburgh is 12°C; AAPL trades at 230.")),
        ],
    )
    .await;
    let p = provider(&base, |_| {});
    let mut req = ask("Weather in Edinburgh and the AAPL price?");
    req.tools = vec![
        LlmTool {
            name: "GetWeatherArgs".into(),
            description: "Weather".into(),
            input_schema: json!({"type": "object", "properties": {"city": {"type": "string"}, "country": {"type": "string"}, "units": {"type": "string"}}}),
        },
        LlmTool {
            name: "get_stock_price".into(),
            description: "Stock price".into(),
            input_schema: json!({"type": "object", "properties": {"ticker": {"type": "string"}, "exchange": {"type": "string"}}}),
        },
    ];
    let (result, deltas) = run(&p, &req).await;
    let response = result.expect("tool calls");
    assert!(deltas.is_empty(), "no text in a tool-call turn: {deltas:?}");
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(
        response.tool_calls,
        vec![
            LlmToolCall {
                id: "call_JMW1whyEaYG438VE1OIflxA2".into(),
                name: "GetWeatherArgs".into(),
                arguments: json!({"city": "Edinburgh", "country": "GB", "units": "c"}),
            },
            LlmToolCall {
                id: "call_DNYTawLBoN8fj3KN6qU9N1Ou".into(),
                name: "get_stock_price".into(),
                arguments: json!({"ticker": "AAPL", "exchange": "NASDAQ"}),
            },
        ]
    );
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 149,
            output_tokens: 60
        }
    );

    req.messages.push(response.to_message());
    req.messages.push(LlmMessage::tool_result(
        "call_DNYTawLBoN8fj3KN6qU9N1Ou",
        "230.10 USD",
    ));
    req.messages.push(LlmMessage::tool_error(
        "call_JMW1whyEaYG438VE1OIflxA2",
        "weather service down",
    ));
    let (result, _) = run(&p, &req).await;
    let answer = result.expect("answer");
    fake.assert_clean();
    assert_eq!(answer.text, "Edinburgh is 12°C; AAPL trades at 230.");
    let sent = fake.body(1);
    assert_eq!(
        sent["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_JMW1whyEaYG438VE1OIflxA2", "type": "function", "function": {"name": "GetWeatherArgs", "arguments": "{\"city\":\"Edinburgh\",\"country\":\"GB\",\"units\":\"c\"}"}},
            {"id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "type": "function", "function": {"name": "get_stock_price", "arguments": "{\"exchange\":\"NASDAQ\",\"ticker\":\"AAPL\"}"}}
        ]})
    );
    assert_eq!(
        sent["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_DNYTawLBoN8fj3KN6qU9N1Ou", "content": "230.10 USD"})
    );
    assert_eq!(
        sent["messages"][4],
        json!({"role": "tool", "tool_call_id": "call_JMW1whyEaYG438VE1OIflxA2", "content": "Error: weather service down"})
    );
}

#[tokio::test]
async fn a_two_turn_tool_loop_through_the_real_adapter() {
    let call = official(&[
        delta(json!({"role": "assistant", "content": null}), None),
        tool_start(0, "call_order_1", "get_order"),
        tool_args(0, "{\"order_"),
        tool_args(0, "number\": \"A-"),
        tool_args(0, "1043\"}"),
        finish("tool_calls"),
        usage(310, 18),
    ]);
    let answer = official(&[
        delta(json!({"role": "assistant", "content": ""}), None),
        text("Your order A-1043 "),
        text("shipped on Monday — it arrives Thursday."),
        finish("stop"),
        usage(352, 14),
    ]);
    let (fake, base) = spawn(
        check,
        PATH,
        vec![
            Reply::sse(call).chunked(Chunking::Awkward),
            Reply::sse(answer).chunked(Chunking::Awkward),
        ],
    )
    .await;
    let p = provider(&base, |_| {});
    let mut req = ask("Where is my order A-1043?");
    let mut total = Usage::default();

    let (result, deltas) = run(&p, &req).await;
    let turn = result.expect("first turn");
    assert!(deltas.is_empty());
    assert_eq!(turn.stop, StopReason::ToolUse);
    assert_eq!(
        turn.tool_calls,
        vec![LlmToolCall {
            id: "call_order_1".into(),
            name: "get_order".into(),
            arguments: json!({"order_number": "A-1043"}),
        }]
    );
    total += turn.usage;
    req.messages.push(turn.to_message());
    req.messages.push(LlmMessage::tool_result(
        "call_order_1",
        r#"{"number":"A-1043","status":"shipped"}"#,
    ));

    let (result, deltas) = run(&p, &req).await;
    let reply = result.expect("second turn");
    total += reply.usage;
    fake.assert_clean();
    assert_eq!(
        deltas,
        vec![
            "Your order A-1043 ",
            "shipped on Monday — it arrives Thursday."
        ]
    );
    assert_eq!(reply.text, deltas.concat());
    assert_eq!(reply.stop, StopReason::EndTurn);
    assert_eq!(
        total,
        Usage {
            input_tokens: 662,
            output_tokens: 32
        }
    );
    assert_eq!(fake.request_count(), 2);
    let second = fake.body(1);
    assert_eq!(second["messages"].as_array().map(Vec::len), Some(4));
    assert_eq!(second["messages"][3]["tool_call_id"], "call_order_1");
}

#[tokio::test]
async fn a_refusal_is_reported_and_not_streamed() {
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(fixture(
            "openai/parse_pydantic_model_refusal.sse",
        ))],
    )
    .await;
    let (result, deltas) = run(&provider(&base, |_| {}), &ask("Something harmful")).await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert_eq!(response.stop, StopReason::Refusal);
    assert_eq!(
        response.text,
        "I'm sorry, I can't assist with that request."
    );
    assert!(deltas.is_empty(), "a refusal is not streamed: {deltas:?}");
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 79,
            output_tokens: 11
        }
    );
}

#[tokio::test]
async fn max_tokens_and_extra_choices() {
    let (fake, base) = spawn(
        check,
        PATH,
        vec![
            Reply::sse(fixture(
                "openai/parse_max_tokens_reached__finish_length.sse",
            )),
            Reply::sse(fixture(
                "openai/parse_pydantic_model_multiple_choices__n3.sse",
            )),
            Reply::sse(fixture(
                "openai/allows_non_strict_tools__tool_call_with_usage_chunk.sse",
            ))
            .chunked(Chunking::Every(7)),
        ],
    )
    .await;
    let p = provider(&base, |_| {});
    let (result, _) = run(&p, &ask("q")).await;
    let cut_off = result.expect("completion");
    assert_eq!(cut_off.stop, StopReason::MaxTokens);
    assert_eq!(cut_off.text, "{\"");
    assert_eq!(
        cut_off.usage,
        Usage {
            input_tokens: 79,
            output_tokens: 1
        }
    );

    let (result, deltas) = run(&p, &ask("q")).await;
    let first_choice = result.expect("completion");
    assert_eq!(
        first_choice.text, r#"{"city":"San Francisco","temperature":65,"units":"f"}"#,
        "only choice 0 is read"
    );
    assert_eq!(deltas.concat(), first_choice.text);

    let (result, _) = run(&p, &ask("q")).await;
    let tool = result.expect("completion");
    fake.assert_clean();
    assert_eq!(tool.stop, StopReason::ToolUse);
    assert_eq!(tool.tool_calls[0].name, "get_weather");
    assert_eq!(
        tool.tool_calls[0].arguments,
        json!({"city": "New York City"})
    );
    assert_eq!(
        tool.usage,
        Usage {
            input_tokens: 44,
            output_tokens: 16
        }
    );
}

#[tokio::test]
async fn azure_sends_its_key_header_and_api_version_and_its_quirky_chunks_parse() {
    // Azure's stream (hand-made after its documented shape, so not validated): a first chunk
    // with no choices and empty ids carrying the prompt filter results, content filter results
    // on every choice, and no usage chunk.
    let body = [
        r#"data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
        r#"data: {"choices":[{"content_filter_results":{},"delta":{"content":"","refusal":null,"role":"assistant"},"finish_reason":null,"index":0,"logprobs":null}],"created":1764201600,"id":"chatcmpl-az1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_az"}"#,
        r#"data: {"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{"content":"Hallo, wie kann ich helfen?"},"finish_reason":null,"index":0,"logprobs":null}],"created":1764201600,"id":"chatcmpl-az1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_az"}"#,
        r#"data: {"choices":[{"content_filter_results":{},"delta":{},"finish_reason":"stop","index":0,"logprobs":null}],"created":1764201600,"id":"chatcmpl-az1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_az"}"#,
        "data: [DONE]",
    ]
    .join("\n\n")
        + "\n\n";
    let (fake, base) = spawn(
        check,
        "/openai/deployments/support-gpt4o/chat/completions",
        vec![Reply::sse(body).chunked(Chunking::Awkward)],
    )
    .await;
    let mut c = OpenAiConfig::new(
        &format!("{base}/openai/deployments/support-gpt4o/"),
        "gpt-4o",
    );
    c.auth = OpenAiAuth::ApiKeyHeader("azure-key".to_string().into());
    c.api_version = Some("2024-10-21".into());
    let p = OpenAiProvider::new(c).expect("provider");
    let (result, deltas) = run(&p, &ask("Hallo")).await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert_eq!(deltas, vec!["Hallo, wie kann ich helfen?"]);
    assert_eq!(response.model, "gpt-4o-2024-11-20");
    assert_eq!(
        response.usage,
        Usage::default(),
        "no usage chunk: nothing counted"
    );
    assert_eq!(fake.header(0, "api-key").as_deref(), Some("azure-key"));
    assert_eq!(fake.header(0, "authorization"), None);
    assert_eq!(fake.query(0).as_deref(), Some("api-version=2024-10-21"));
}

#[tokio::test]
async fn ollama_style_whole_tool_calls_extra_fields_and_max_tokens() {
    // Ollama's /v1 stream (hand-made after openai/openai.go): a `reasoning` field, each tool
    // call whole in one chunk, a separate finish chunk, `fp_ollama`.
    let body = [
        r#"data: {"id":"chatcmpl-42","object":"chat.completion.chunk","created":1764201600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","reasoning":"The customer wants an order."},"finish_reason":null}]}"#,
        r#"data: {"id":"chatcmpl-42","object":"chat.completion.chunk","created":1764201600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":"","tool_calls":[{"id":"call_k2x9","index":0,"type":"function","function":{"name":"get_order","arguments":"{\"order_number\":\"A-1043\"}"}}]},"finish_reason":null}]}"#,
        r#"data: {"id":"chatcmpl-42","object":"chat.completion.chunk","created":1764201600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"tool_calls"}]}"#,
        r#"data: {"id":"chatcmpl-42","object":"chat.completion.chunk","created":1764201600,"model":"qwen3:8b","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":200,"completion_tokens":25,"total_tokens":225}}"#,
        "data: [DONE]",
    ]
    .join("\n\n")
        + "\n\n";
    let (fake, base) = spawn(check, PATH, vec![Reply::sse(body)]).await;
    let p = provider(&base, |c| {
        c.auth = OpenAiAuth::None;
        c.max_tokens_field = MaxTokensField::MaxTokens;
        c.model = "qwen3:8b".into();
    });
    let (result, deltas) = run(&p, &ask("Where is A-1043?")).await;
    let response = result.expect("completion");
    fake.assert_clean();
    assert!(deltas.is_empty(), "reasoning is not text: {deltas:?}");
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(
        response.tool_calls,
        vec![LlmToolCall {
            id: "call_k2x9".into(),
            name: "get_order".into(),
            arguments: json!({"order_number": "A-1043"}),
        }]
    );
    assert_eq!(
        response.usage,
        Usage {
            input_tokens: 200,
            output_tokens: 25
        }
    );
    let sent = fake.body(0);
    assert_eq!(sent["max_tokens"], 512);
    assert!(sent.get("max_completion_tokens").is_none());
    assert_eq!(fake.header(0, "authorization"), None);
}

#[tokio::test]
async fn tool_calls_without_ids_or_indexes_and_a_stop_finish_still_pair_up() {
    // A minimal server: no tool-call id or index, finish reason "stop", no [DONE].
    let body = [
        r#"data: {"choices":[{"delta":{"tool_calls":[{"function":{"name":"get_order","arguments":"{\"order_"}}]}}]}"#,
        r#"data: {"choices":[{"delta":{"tool_calls":[{"function":{"arguments":"number\":\"A-7\"}"}}]}}]}"#,
        r#"data: {"choices":[{"delta":{},"finish_reason":"stop"}]}"#,
    ]
    .join("\n\n")
        + "\n\n";
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(body), Reply::sse(text_stream("ok"))],
    )
    .await;
    let p = provider(&base, |_| {});
    let mut req = ask("A-7?");
    let (result, _) = run(&p, &req).await;
    let response = result.expect("completion");
    assert_eq!(response.stop, StopReason::ToolUse);
    assert_eq!(
        response.model, "gpt-4o-mini",
        "the configured model when none is named"
    );
    assert_eq!(
        response.tool_calls,
        vec![LlmToolCall {
            id: "call_0".into(),
            name: "get_order".into(),
            arguments: json!({"order_number": "A-7"}),
        }]
    );
    req.messages.push(response.to_message());
    req.messages
        .push(LlmMessage::tool_result("call_0", "delivered"));
    let (result, _) = run(&p, &req).await;
    assert_eq!(result.expect("answer").text, "ok");
    fake.assert_clean();
}

#[tokio::test]
async fn arguments_that_are_not_json_are_kept_as_text_and_replayed_verbatim() {
    let call = official(&[
        tool_start(0, "call_bad", "get_order"),
        tool_args(0, "{\"order_number\": A-1043"),
        finish("tool_calls"),
    ]);
    let (fake, base) = spawn(
        check,
        PATH,
        vec![Reply::sse(call), Reply::sse(text_stream("Which order?"))],
    )
    .await;
    let p = provider(&base, |_| {});
    let mut req = ask("A-1043?");
    let (result, _) = run(&p, &req).await;
    let response = result.expect("completion");
    assert_eq!(
        response.tool_calls[0].arguments,
        Value::String("{\"order_number\": A-1043".into())
    );
    req.messages.push(response.to_message());
    req.messages.push(LlmMessage::tool_error(
        "call_bad",
        "arguments are not valid JSON",
    ));
    let (result, _) = run(&p, &req).await;
    result.expect("answer");
    fake.assert_clean();
    assert_eq!(
        fake.body(1)["messages"][2]["tool_calls"][0]["function"]["arguments"],
        "{\"order_number\": A-1043"
    );
}

#[tokio::test]
async fn an_error_in_the_stream_or_an_unfinished_stream_fails_the_call_once() {
    let error = official(&[
        text("Let me "),
        json!({"error": {"message": "The server had an error while processing your request.", "type": "server_error", "param": null, "code": null}}),
    ]);
    let truncated = {
        let mut b = official(&[text("Half an ans")]);
        b.truncate(b.len() - "data: [DONE]\n\n".len());
        b
    };
    let (fake, base) = spawn(check, PATH, vec![Reply::sse(error), Reply::sse(truncated)]).await;
    let p = provider(&base, |_| {});
    let (result, deltas) = run(&p, &ask("q")).await;
    let err = result.expect_err("stream error");
    assert_eq!(err.kind, LlmErrorKind::Server);
    assert!(err.message.contains("The server had an error"), "{err}");
    assert_eq!(deltas, vec!["Let me "]);
    let (result, _) = run(&p, &ask("q")).await;
    let err = result.expect_err("truncated");
    assert_eq!(err.kind, LlmErrorKind::Protocol);
    fake.assert_clean();
    assert_eq!(fake.request_count(), 2, "neither is retried");
}

#[tokio::test]
async fn a_history_with_an_unanswered_or_stray_tool_result_is_refused_before_sending() {
    let (fake, base) = spawn(check, PATH, vec![]).await;
    let p = provider(&base, |_| {});
    let mut req = ask("q");
    req.messages.push(LlmMessage::Assistant {
        text: String::new(),
        tool_calls: vec![LlmToolCall {
            id: "call_1".into(),
            name: "get_order".into(),
            arguments: json!({}),
        }],
    });
    req.messages.push(LlmMessage::tool_result("call_2", "x"));
    let (result, _) = run(&p, &req).await;
    let err = result.expect_err("invalid history");
    assert_eq!(err.kind, LlmErrorKind::BadRequest);
    assert!(err.message.contains("call_2"), "{err}");
    assert_eq!(fake.request_count(), 0);
    fake.assert_clean();
}

#[test]
fn the_fake_rejects_what_the_api_would() {
    let headers = {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().expect("value"));
        h
    };
    // The official hand-written round trip passes.
    let good = json!({
        "model": "gpt-4o-mini", "stream": true, "stream_options": {"include_usage": true},
        "messages": [
            {"role": "system", "content": "You are a customer-support agent."},
            {"role": "user", "content": "Where is order 42?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_abc123", "type": "function", "function": {"name": "get_order_status", "arguments": "{\"order_id\":\"42\"}"}}]},
            {"role": "tool", "tool_call_id": "call_abc123", "content": "shipped"}
        ]
    });
    assert_eq!(check(&headers, None, &good), Vec::<String>::new());
    let broken = |edit: &dyn Fn(&mut Value)| {
        let mut body = good.clone();
        edit(&mut body);
        check(&headers, None, &body)
    };
    assert!(!broken(&|b| b["messages"][3]["tool_call_id"] = json!("call_zzz")).is_empty());
    assert!(!broken(&|b| b["messages"][3] = json!({"role": "user", "content": "hm"})).is_empty());
    assert!(
        !broken(&|b| b["max_token"] = json!(10)).is_empty(),
        "a misspelt field"
    );
    assert!(!broken(&|b| b["messages"][1]["contents"] = json!("x")).is_empty());
    assert!(!broken(&|b| b["messages"][1]["role"] = json!("customer")).is_empty());
    assert!(!broken(&|b| b["stream"] = json!(false)).is_empty());
    assert!(
        !broken(&|b| b["temperature"] = json!("warm")).is_empty(),
        "schema types"
    );
    assert!(
        !check(&HeaderMap::new(), None, &good).is_empty(),
        "content type"
    );
}
