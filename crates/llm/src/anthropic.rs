//! The Anthropic Messages API (`POST /v1/messages`, streamed).
//!
//! Emitted strictly in the shape of the official `CreateMessageParams` (for `anthropic-version:
//! 2026-10-21`, without the sampling parameters that version rejects): tool calls as `tool_use`
//! blocks of the assistant, their results as `tool_result` blocks of the next user message,
//! consecutive messages of one role merged because the API wants the roles to alternate. Parsed
//! leniently: events are recognised by their `type`, unknown events and block types (thinking,
//! server tools, citations) are skipped, `ping` can come anywhere, an `error` event may arrive
//! after HTTP 200, and only complete `tool_use` blocks become tool calls.

use crate::openai::{decimal, parse_arguments, preview};
use crate::retry::{self, EventReader, RetryPolicy};
use async_trait::async_trait;
use concierge_core::{
    LlmError, LlmErrorKind, LlmMessage, LlmProvider, LlmRequest, LlmResponse, LlmToolCall, Pricing,
    StopReason, Usage,
};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// The `anthropic-version` header, which fixes the request contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnthropicVersion {
    /// The long-standing version: takes `temperature`.
    V2023_06_01,
    /// The version current SDKs send: `temperature`, `top_p` and `top_k` are rejected with 400,
    /// so they are never sent.
    V2026_10_21,
}

impl AnthropicVersion {
    pub fn as_str(self) -> &'static str {
        match self {
            AnthropicVersion::V2023_06_01 => "2023-06-01",
            AnthropicVersion::V2026_10_21 => "2026-10-21",
        }
    }

    /// The version named by `text`, if this adapter knows it.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "2023-06-01" => Some(AnthropicVersion::V2023_06_01),
            "2026-10-21" => Some(AnthropicVersion::V2026_10_21),
            _ => None,
        }
    }
}

/// How the API key is presented.
#[derive(Debug, Clone)]
pub enum AnthropicAuth {
    /// `x-api-key: <key>`.
    ApiKey(SecretString),
    /// `Authorization: Bearer <key>`, as current SDKs send it (and gateways expect).
    Bearer(SecretString),
}

#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// The API origin; `/v1/messages` is appended. `https://api.anthropic.com`.
    pub base_url: String,
    pub model: String,
    pub auth: AnthropicAuth,
    pub version: AnthropicVersion,
    /// Most time one attempt may take, from sending to the end of the stream.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub pricing: Pricing,
}

impl AnthropicConfig {
    /// Defaults for the rest: `x-api-key`, version `2026-10-21`, 120 s, the SDKs' retry policy.
    pub fn new(base_url: &str, model: &str, api_key: SecretString) -> Self {
        AnthropicConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            auth: AnthropicAuth::ApiKey(api_key),
            version: AnthropicVersion::V2026_10_21,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            pricing: Pricing::default(),
        }
    }
}

pub struct AnthropicProvider {
    http: reqwest::Client,
    config: AnthropicConfig,
    url: String,
    id: String,
}

impl AnthropicProvider {
    pub fn new(config: AnthropicConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::new(LlmErrorKind::Network, e.to_string()))?;
        let url = format!("{}/v1/messages", config.base_url.trim_end_matches('/'));
        Ok(AnthropicProvider {
            id: format!("anthropic:{}", config.model),
            http,
            url,
            config,
        })
    }

    /// The request body for `req`, exactly as sent.
    pub fn body(&self, req: &LlmRequest) -> Value {
        // (role, content blocks); a message of the same role as the previous one joins it.
        let mut turns: Vec<(&str, Vec<Value>)> = Vec::new();
        for message in &req.messages {
            let (role, blocks) = match message {
                LlmMessage::User { content } => ("user", vec![text_block(content)]),
                LlmMessage::Assistant { text, tool_calls } => {
                    let mut blocks = Vec::new();
                    if !text.trim().is_empty() {
                        blocks.push(text_block(text));
                    }
                    for call in tool_calls {
                        blocks.push(json!({
                            "type": "tool_use",
                            "id": block_id(&call.id),
                            "name": call.name,
                            // Arguments that were not a JSON object cannot be replayed as one.
                            "input": if call.arguments.is_object() { call.arguments.clone() } else { json!({}) },
                        }));
                    }
                    ("assistant", blocks)
                }
                LlmMessage::ToolResult {
                    tool_call_id,
                    content,
                    is_error,
                } => {
                    let mut block =
                        json!({"type": "tool_result", "tool_use_id": block_id(tool_call_id)});
                    if !content.is_empty() {
                        block["content"] = json!(content);
                    }
                    if *is_error {
                        block["is_error"] = json!(true);
                    }
                    ("user", vec![block])
                }
            };
            match turns.last_mut() {
                Some((last, existing)) if *last == role => existing.extend(blocks),
                _ => turns.push((role, blocks)),
            }
        }
        let messages: Vec<Value> = turns
            .into_iter()
            .map(|(role, blocks)| {
                let content = match blocks.as_slice() {
                    [only] if only["type"] == "text" => only["text"].clone(),
                    _ => Value::Array(blocks),
                };
                json!({"role": role, "content": content})
            })
            .collect();
        let mut body = json!({
            "model": self.config.model,
            "max_tokens": req.max_tokens,
            "messages": messages,
            "stream": true,
        });
        if let Some(system) = req.system.as_deref().filter(|s| !s.trim().is_empty()) {
            body["system"] = json!(system);
        }
        if let Some(t) = req.temperature
            && self.config.version == AnthropicVersion::V2023_06_01
        {
            // Anthropic's range is 0..=1 (OpenAI's 0..=2).
            body["temperature"] = decimal(t.clamp(0.0, 1.0));
        }
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    let mut tool = json!({"name": t.name, "input_schema": t.input_schema});
                    if !t.description.is_empty() {
                        tool["description"] = json!(t.description);
                    }
                    tool
                })
                .collect();
        }
        body
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let rb = self
            .http
            .post(&self.url)
            .header("anthropic-version", self.config.version.as_str())
            .header("accept", "text/event-stream")
            .json(body);
        match &self.config.auth {
            AnthropicAuth::ApiKey(key) => rb.header("x-api-key", key.expose_secret()),
            AnthropicAuth::Bearer(key) => rb.bearer_auth(key.expose_secret()),
        }
    }
}

fn text_block(text: &str) -> Value {
    json!({"type": "text", "text": text})
}

/// Tool-use ids must match `[a-zA-Z0-9_-]+`; ids minted by another provider may not. The same
/// mapping is applied to the call and to its result, so they still pair up.
fn block_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait]
impl LlmProvider for AnthropicProvider {
    fn id(&self) -> &str {
        &self.id
    }

    fn pricing(&self) -> Pricing {
        self.config.pricing
    }

    async fn complete(
        &self,
        req: &LlmRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<LlmResponse, LlmError> {
        req.validate()
            .map_err(|e| LlmError::new(LlmErrorKind::BadRequest, e))?;
        let body = self.body(req);
        let make = || self.request(&body);
        let (response, deadline) =
            retry::send(&make, &self.config.retry, self.config.timeout, &self.id).await?;
        let mut events = EventReader::new(response, deadline, &self.id);
        let mut state = StreamState::default();
        while let Some(event) = events.next().await? {
            if event.data.trim().is_empty() {
                continue;
            }
            let data: Value = serde_json::from_str(&event.data).map_err(|e| {
                LlmError::new(
                    LlmErrorKind::Protocol,
                    format!(
                        "{}: unreadable event ({e}): {}",
                        self.id,
                        preview(&event.data)
                    ),
                )
            })?;
            if state.apply(data, event.event.as_deref(), on_text, &self.id)? {
                break;
            }
        }
        state.finish(&self.config.model, &self.id)
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    input_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

enum Block {
    Text(String),
    ToolUse {
        id: String,
        name: String,
        start_input: Value,
        json: String,
        complete: bool,
    },
    /// Thinking, server tools and whatever comes next: not ours to interpret.
    Other,
}

#[derive(Default)]
struct StreamState {
    model: Option<String>,
    blocks: BTreeMap<u64, Block>,
    start_usage: WireUsage,
    delta_usage: WireUsage,
    stop_reason: Option<String>,
    stopped: bool,
}

fn field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(|v| v.as_str())
}

impl StreamState {
    /// Applies one event; `true` once the message is complete.
    fn apply(
        &mut self,
        data: Value,
        event_name: Option<&str>,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
        who: &str,
    ) -> Result<bool, LlmError> {
        let kind = field(&data, "type").or(event_name).unwrap_or("");
        let index = data.get("index").and_then(|i| i.as_u64());
        match kind {
            "message_start" => {
                let message = data.get("message").unwrap_or(&Value::Null);
                if let Some(model) = field(message, "model").filter(|m| !m.is_empty()) {
                    self.model = Some(model.to_string());
                }
                if let Some(usage) = message.get("usage") {
                    self.start_usage = WireUsage::deserialize(usage).unwrap_or_default();
                }
            }
            "content_block_start" => {
                let block = data.get("content_block").unwrap_or(&Value::Null);
                let parsed = match field(block, "type") {
                    Some("text") => {
                        let text = field(block, "text").unwrap_or("").to_string();
                        if !text.is_empty() {
                            on_text(&text);
                        }
                        Block::Text(text)
                    }
                    Some("tool_use") => Block::ToolUse {
                        id: field(block, "id").unwrap_or("").to_string(),
                        name: field(block, "name").unwrap_or("").to_string(),
                        start_input: block.get("input").cloned().unwrap_or_else(|| json!({})),
                        json: String::new(),
                        complete: false,
                    },
                    _ => Block::Other,
                };
                if let Some(index) = index {
                    self.blocks.insert(index, parsed);
                }
            }
            "content_block_delta" => {
                let delta = data.get("delta").unwrap_or(&Value::Null);
                match (
                    index.and_then(|i| self.blocks.get_mut(&i)),
                    field(delta, "type"),
                ) {
                    (Some(Block::Text(text)), Some("text_delta")) => {
                        if let Some(piece) = field(delta, "text").filter(|t| !t.is_empty()) {
                            on_text(piece);
                            text.push_str(piece);
                        }
                    }
                    (Some(Block::ToolUse { json, .. }), Some("input_json_delta")) => {
                        json.push_str(field(delta, "partial_json").unwrap_or(""));
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some(Block::ToolUse { complete, .. }) =
                    index.and_then(|i| self.blocks.get_mut(&i))
                {
                    *complete = true;
                }
            }
            "message_delta" => {
                if let Some(reason) = data
                    .get("delta")
                    .and_then(|d| field(d, "stop_reason"))
                    .filter(|r| !r.is_empty())
                {
                    self.stop_reason = Some(reason.to_string());
                }
                if let Some(usage) = data.get("usage") {
                    self.delta_usage = WireUsage::deserialize(usage).unwrap_or_default();
                }
            }
            "message_stop" => {
                self.stopped = true;
                return Ok(true);
            }
            "error" => {
                let (error_type, message) = retry::error_details(&data);
                return Err(LlmError::new(
                    error_type
                        .as_deref()
                        .and_then(retry::kind_of_error_type)
                        .unwrap_or(LlmErrorKind::Server),
                    format!(
                        "{who}: error in the stream: {}",
                        message.unwrap_or_else(|| "(no message)".into())
                    ),
                ));
            }
            // `ping` and event types newer than this adapter.
            _ => {}
        }
        Ok(false)
    }

    fn finish(self, configured_model: &str, who: &str) -> Result<LlmResponse, LlmError> {
        let reason = match (self.stop_reason, self.stopped) {
            (Some(reason), _) => reason,
            (None, true) => {
                let tools = self
                    .blocks
                    .values()
                    .any(|b| matches!(b, Block::ToolUse { complete: true, .. }));
                if tools { "tool_use" } else { "end_turn" }.to_string()
            }
            (None, false) => {
                return Err(LlmError::new(
                    LlmErrorKind::Protocol,
                    format!("{who}: the stream ended before the answer was complete"),
                ));
            }
        };
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in self.blocks.into_values() {
            match block {
                Block::Text(t) => text.push_str(&t),
                Block::ToolUse {
                    id,
                    name,
                    start_input,
                    json,
                    complete: true,
                } => tool_calls.push(LlmToolCall {
                    id,
                    name,
                    arguments: if json.trim().is_empty() {
                        start_input
                    } else {
                        parse_arguments(&json)
                    },
                }),
                _ => {}
            }
        }
        let stop = match reason.as_str() {
            "end_turn" => StopReason::EndTurn,
            "tool_use" => StopReason::ToolUse,
            "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
            "refusal" => StopReason::Refusal,
            other => StopReason::Other(other.to_string()),
        };
        if matches!(stop, StopReason::MaxTokens | StopReason::Refusal) {
            tool_calls.clear();
        }
        // Counts in `message_delta` are cumulative and win; `message_start` has the rest.
        let pick = |d: Option<u64>, s: Option<u64>| d.or(s).unwrap_or(0);
        let (d, s) = (self.delta_usage, self.start_usage);
        let usage = Usage {
            input_tokens: pick(d.input_tokens, s.input_tokens)
                + pick(d.cache_creation_input_tokens, s.cache_creation_input_tokens)
                + pick(d.cache_read_input_tokens, s.cache_read_input_tokens),
            output_tokens: pick(d.output_tokens, s.output_tokens),
        };
        Ok(LlmResponse {
            text,
            tool_calls,
            stop,
            usage,
            model: self.model.unwrap_or_else(|| configured_model.to_string()),
        })
    }
}
