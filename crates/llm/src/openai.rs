//! OpenAI-compatible Chat Completions: OpenAI, Azure OpenAI, Ollama (`/v1`), vLLM, llama.cpp
//! server, LM Studio.
//!
//! Emitted strictly in the shape of the official `CreateChatCompletionRequest` (tools as
//! `{"type":"function","function":{…}}`, assistant `tool_calls`, `role: tool` results), parsed
//! leniently: missing or `null` fields, chunks without choices (Azure's first chunk), extra fields
//! (Ollama's `reasoning`), tool calls arriving whole (Ollama) or as fragments keyed by `index`
//! (OpenAI), missing tool-call ids, a missing `[DONE]` after a finish reason.

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

/// How the API key is presented.
#[derive(Debug, Clone)]
pub enum OpenAiAuth {
    /// No key (a local Ollama, vLLM or llama.cpp server).
    None,
    /// `Authorization: Bearer <key>`: OpenAI and most compatible servers.
    Bearer(SecretString),
    /// `api-key: <key>`: Azure OpenAI.
    ApiKeyHeader(SecretString),
}

/// Which request field carries the output limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_completion_tokens`: OpenAI's current field, required by its reasoning models; also
    /// read by vLLM and recent Azure API versions.
    MaxCompletionTokens,
    /// `max_tokens`: the older field, the one Ollama, llama.cpp and LM Studio read.
    MaxTokens,
}

#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API base; `/chat/completions` is appended. `https://api.openai.com/v1`,
    /// `http://localhost:11434/v1` (Ollama), or for Azure
    /// `https://<resource>.openai.azure.com/openai/deployments/<deployment>`.
    pub base_url: String,
    pub model: String,
    pub auth: OpenAiAuth,
    /// Sent as the `api-version` query parameter (Azure's dated API versions).
    pub api_version: Option<String>,
    pub max_tokens_field: MaxTokensField,
    /// Most time one attempt may take, from sending to the end of the stream.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    pub pricing: Pricing,
}

impl OpenAiConfig {
    /// Defaults for the rest: no key, `max_completion_tokens`, 120 s, the SDKs' retry policy.
    pub fn new(base_url: &str, model: &str) -> Self {
        OpenAiConfig {
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            auth: OpenAiAuth::None,
            api_version: None,
            max_tokens_field: MaxTokensField::MaxCompletionTokens,
            timeout: Duration::from_secs(120),
            retry: RetryPolicy::default(),
            pricing: Pricing::default(),
        }
    }
}

pub struct OpenAiProvider {
    http: reqwest::Client,
    config: OpenAiConfig,
    url: reqwest::Url,
    id: String,
}

impl OpenAiProvider {
    pub fn new(config: OpenAiConfig) -> Result<Self, LlmError> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| LlmError::new(LlmErrorKind::Network, e.to_string()))?;
        let mut url = reqwest::Url::parse(&format!(
            "{}/chat/completions",
            config.base_url.trim_end_matches('/')
        ))
        .map_err(|e| {
            LlmError::new(
                LlmErrorKind::BadRequest,
                format!("base URL {:?}: {e}", config.base_url),
            )
        })?;
        if let Some(version) = &config.api_version {
            url.query_pairs_mut().append_pair("api-version", version);
        }
        Ok(OpenAiProvider {
            id: format!("openai:{}", config.model),
            http,
            url,
            config,
        })
    }

    /// The request body for `req`, exactly as sent.
    pub fn body(&self, req: &LlmRequest) -> Value {
        let mut messages = Vec::new();
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(json!({"role": "system", "content": system}));
        }
        for message in &req.messages {
            messages.push(match message {
                LlmMessage::User { content } => json!({"role": "user", "content": content}),
                LlmMessage::Assistant { text, tool_calls } => {
                    let mut m = json!({
                        "role": "assistant",
                        "content": if text.is_empty() { Value::Null } else { json!(text) },
                    });
                    if !tool_calls.is_empty() {
                        m["tool_calls"] = tool_calls
                            .iter()
                            .map(|c| {
                                json!({
                                    "id": c.id,
                                    "type": "function",
                                    "function": {"name": c.name, "arguments": arguments_text(&c.arguments)},
                                })
                            })
                            .collect();
                    }
                    m
                }
                LlmMessage::ToolResult {
                    tool_call_id,
                    content,
                    is_error,
                } => json!({
                    "role": "tool",
                    "tool_call_id": tool_call_id,
                    // Chat Completions has no error flag: say it in the content.
                    "content": if *is_error { format!("Error: {content}") } else { content.clone() },
                }),
            });
        }
        let mut body = json!({
            "model": self.config.model,
            "messages": messages,
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let limit = match self.config.max_tokens_field {
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
            MaxTokensField::MaxTokens => "max_tokens",
        };
        body[limit] = json!(req.max_tokens);
        if let Some(t) = req.temperature {
            body["temperature"] = decimal(t);
        }
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    let mut function = json!({"name": t.name, "parameters": t.input_schema});
                    if !t.description.is_empty() {
                        function["description"] = json!(t.description);
                    }
                    json!({"type": "function", "function": function})
                })
                .collect();
        }
        body
    }

    fn request(&self, body: &Value) -> reqwest::RequestBuilder {
        let rb = self
            .http
            .post(self.url.clone())
            .header("accept", "text/event-stream")
            .json(body);
        match &self.config.auth {
            OpenAiAuth::None => rb,
            OpenAiAuth::Bearer(key) => rb.bearer_auth(key.expose_secret()),
            OpenAiAuth::ApiKeyHeader(key) => rb.header("api-key", key.expose_secret()),
        }
    }
}

/// Arguments as Chat Completions carries them: a JSON text. A `Value::String` is text the model
/// produced that was not JSON; it goes back verbatim.
fn arguments_text(arguments: &Value) -> String {
    match arguments {
        Value::String(raw) => raw.clone(),
        other => other.to_string(),
    }
}

#[async_trait]
impl LlmProvider for OpenAiProvider {
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
            if event.data.trim() == "[DONE]" {
                state.done = true;
                break;
            }
            if event.data.trim().is_empty() {
                continue;
            }
            let chunk: Chunk = serde_json::from_str(&event.data).map_err(|e| {
                LlmError::new(
                    LlmErrorKind::Protocol,
                    format!(
                        "{}: unreadable chunk ({e}): {}",
                        self.id,
                        preview(&event.data)
                    ),
                )
            })?;
            state.apply(chunk, on_text, &self.id)?;
        }
        state.finish(&self.config.model, &self.id)
    }
}

pub(crate) fn preview(text: &str) -> String {
    text.chars().take(200).collect()
}

#[derive(Deserialize)]
struct Chunk {
    model: Option<String>,
    choices: Option<Vec<Choice>>,
    usage: Option<ChunkUsage>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    index: Option<u32>,
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    content: Option<String>,
    refusal: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: Option<u32>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct ChunkUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[derive(Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

#[derive(Default)]
struct StreamState {
    model: Option<String>,
    text: String,
    refusal: String,
    calls: BTreeMap<u32, PartialCall>,
    last_index: Option<u32>,
    finish: Option<String>,
    usage: Option<Usage>,
    done: bool,
}

impl StreamState {
    fn apply(
        &mut self,
        chunk: Chunk,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
        who: &str,
    ) -> Result<(), LlmError> {
        if let Some(error) = chunk.error {
            let (kind, message) = retry::error_details(&json!({ "error": error }));
            return Err(LlmError::new(
                kind.as_deref()
                    .and_then(retry::kind_of_error_type)
                    .unwrap_or(LlmErrorKind::Server),
                format!(
                    "{who}: error in the stream: {}",
                    message.unwrap_or_else(|| "(no message)".into())
                ),
            ));
        }
        if let Some(model) = chunk.model.filter(|m| !m.is_empty()) {
            self.model = Some(model);
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(Usage {
                input_tokens: usage.prompt_tokens.unwrap_or(0),
                output_tokens: usage.completion_tokens.unwrap_or(0),
            });
        }
        // Only the first choice: the adapter never asks for more than one.
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index.unwrap_or(0) != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    on_text(&text);
                    self.text.push_str(&text);
                }
                if let Some(refusal) = delta.refusal {
                    self.refusal.push_str(&refusal);
                }
                for call in delta.tool_calls.unwrap_or_default() {
                    self.apply_call(call);
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|r| !r.is_empty()) {
                self.finish = Some(reason);
            }
        }
        Ok(())
    }

    fn apply_call(&mut self, call: ToolCallDelta) {
        // Fragments name their call by `index`. A server that leaves it out sends each call whole
        // or continues the last one: a new id starts a new call.
        let index = match call.index {
            Some(i) => i,
            None => {
                let next = self.calls.keys().next_back().map_or(0, |k| k + 1);
                match call.id.as_deref().filter(|id| !id.is_empty()) {
                    Some(id) => self
                        .calls
                        .iter()
                        .find(|(_, c)| c.id == id)
                        .map_or(next, |(i, _)| *i),
                    None => self.last_index.unwrap_or(0),
                }
            }
        };
        self.last_index = Some(index);
        let partial = self.calls.entry(index).or_default();
        if let Some(id) = call.id.filter(|id| !id.is_empty())
            && partial.id.is_empty()
        {
            partial.id = id;
        }
        if let Some(function) = call.function {
            if let Some(name) = function.name.filter(|n| !n.is_empty())
                && partial.name != name
            {
                partial.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments {
                partial.arguments.push_str(&arguments);
            }
        }
    }

    fn finish(self, configured_model: &str, who: &str) -> Result<LlmResponse, LlmError> {
        let Some(reason) = self.finish else {
            let what = if self.done {
                "the stream ended without a finish reason"
            } else {
                "the stream ended before the answer was complete"
            };
            return Err(LlmError::new(
                LlmErrorKind::Protocol,
                format!("{who}: {what}"),
            ));
        };
        let mut tool_calls: Vec<LlmToolCall> = self
            .calls
            .into_iter()
            .map(|(index, call)| LlmToolCall {
                id: if call.id.is_empty() {
                    format!("call_{index}")
                } else {
                    call.id
                },
                name: call.name,
                arguments: parse_arguments(&call.arguments),
            })
            .collect();
        let mut text = self.text;
        let mut stop = match reason.as_str() {
            "stop" => StopReason::EndTurn,
            "tool_calls" | "function_call" => StopReason::ToolUse,
            "length" => StopReason::MaxTokens,
            "content_filter" => StopReason::Refusal,
            other => StopReason::Other(other.to_string()),
        };
        if !self.refusal.is_empty() {
            stop = StopReason::Refusal;
            text.push_str(&self.refusal);
        }
        match stop {
            // Some servers say `stop` although the turn is tool calls.
            StopReason::EndTurn if !tool_calls.is_empty() => stop = StopReason::ToolUse,
            StopReason::MaxTokens | StopReason::Refusal => tool_calls.clear(),
            _ => {}
        }
        Ok(LlmResponse {
            text,
            tool_calls,
            stop,
            usage: self.usage.unwrap_or_default(),
            model: self.model.unwrap_or_else(|| configured_model.to_string()),
        })
    }
}

/// An `f32` as the decimal it was written as (`0.2`, not `0.20000000298023224`).
pub(crate) fn decimal(x: f32) -> Value {
    x.to_string()
        .parse::<f64>()
        .map_or(Value::Null, |v| json!(v))
}

/// Tool arguments: empty means none, JSON is parsed, anything else is kept as text.
pub(crate) fn parse_arguments(text: &str) -> Value {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return json!({});
    }
    serde_json::from_str(trimmed).unwrap_or_else(|_| Value::String(text.to_string()))
}
