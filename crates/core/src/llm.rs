//! The provider-neutral face of a large language model: a request (system prompt, history, tools),
//! a streamed completion assembled into a response, and the one trait every adapter implements.
//!
//! The agent core speaks only these types. Each adapter (crate `concierge-llm`) translates them to
//! one vendor's wire format and back, so nothing above it knows whether OpenAI, Azure, Ollama or
//! Anthropic answered. The history is kept in the shape both APIs need: an assistant turn carries
//! its text and tool calls, and each tool result names the call it answers.

use async_trait::async_trait;
use std::collections::HashSet;
use std::fmt;
use std::ops::AddAssign;
use std::time::Duration;

/// One call to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmRequest {
    /// Instructions that frame the whole conversation.
    pub system: Option<String>,
    /// The conversation so far, oldest first. Starts with a user message and ends with a user
    /// message or with the results of the last assistant turn's tool calls.
    pub messages: Vec<LlmMessage>,
    /// Tools the model may call; empty for none.
    pub tools: Vec<LlmTool>,
    /// Most tokens the model may generate.
    pub max_tokens: u32,
    /// Sampling temperature, when the model still takes one (Anthropic's `2026-10-21` API does
    /// not: the adapter leaves it out there).
    pub temperature: Option<f32>,
}

/// One message of the history (serialisable: a run paused for a confirmation keeps its history).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum LlmMessage {
    /// What the customer (or the agent on their behalf) said.
    User { content: String },
    /// A previous model turn: its text and the tools it called, as returned.
    Assistant {
        text: String,
        tool_calls: Vec<LlmToolCall>,
    },
    /// The outcome of one tool call of the previous assistant turn.
    ToolResult {
        tool_call_id: String,
        content: String,
        /// The tool failed; `content` says why (a tool failure is data for the model).
        is_error: bool,
    },
}

impl LlmMessage {
    pub fn user(content: impl Into<String>) -> Self {
        LlmMessage::User {
            content: content.into(),
        }
    }

    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        LlmMessage::ToolResult {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
            is_error: false,
        }
    }

    pub fn tool_error(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        LlmMessage::ToolResult {
            tool_call_id: tool_call_id.into(),
            content: content.into(),
            is_error: true,
        }
    }
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmTool {
    /// `[A-Za-z0-9_-]{1,64}`: the intersection of what OpenAI and Anthropic accept.
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments; an object schema (`"type": "object"`).
    pub input_schema: serde_json::Value,
}

/// A tool call the model made.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LlmToolCall {
    /// The provider's id; the tool result must carry it back.
    pub id: String,
    pub name: String,
    /// The arguments as parsed JSON. When the model produced text that is not JSON, this is a
    /// `Value::String` holding that text, so the caller can answer with a tool error and let the
    /// model try again instead of failing the turn.
    pub arguments: serde_json::Value,
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// A complete answer.
    EndTurn,
    /// It wants the tool calls run and their results sent back.
    ToolUse,
    /// Cut off at `max_tokens`; the text is incomplete (and unfinished tool calls are dropped).
    MaxTokens,
    /// The model or the provider's filter declined to answer.
    Refusal,
    /// Anything else the provider reported, verbatim.
    Other(String),
}

/// Tokens one call consumed. `input_tokens` counts the whole prompt, cached parts included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
}

impl AddAssign for Usage {
    fn add_assign(&mut self, other: Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
    }
}

/// Prices per million tokens, from configuration (model price tables change too often to be
/// compiled in). The default is free, as for a local model.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Pricing {
    pub usd_per_mtok_input: f64,
    pub usd_per_mtok_output: f64,
}

impl Pricing {
    /// What `usage` cost in US dollars.
    pub fn cost_usd(&self, usage: &Usage) -> f64 {
        (usage.input_tokens as f64 * self.usd_per_mtok_input
            + usage.output_tokens as f64 * self.usd_per_mtok_output)
            / 1_000_000.0
    }
}

/// The assembled result of one streamed call.
#[derive(Debug, Clone, PartialEq)]
pub struct LlmResponse {
    /// All text the model wrote: exactly the concatenation of the deltas passed to `on_text`,
    /// except for an OpenAI refusal, whose message is returned here but never streamed.
    pub text: String,
    pub tool_calls: Vec<LlmToolCall>,
    pub stop: StopReason,
    pub usage: Usage,
    /// The model that answered, as the provider named it.
    pub model: String,
}

impl LlmResponse {
    /// This turn as it goes back into the history of the next request.
    pub fn to_message(&self) -> LlmMessage {
        LlmMessage::Assistant {
            text: self.text.clone(),
            tool_calls: self.tool_calls.clone(),
        }
    }
}

/// What went wrong, in the terms a caller decides on (retry later, hand over, fix configuration).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LlmErrorKind {
    /// 401/403: the key is missing, wrong or lacks permission.
    Auth,
    /// 429 after the retries (or with a wait longer than the adapter may sleep).
    RateLimited,
    /// 429 because the account's quota or spend limit is used up: retrying will not help.
    QuotaExhausted,
    /// 503/529 or an `overloaded_error`: the provider is busy.
    Overloaded,
    /// Another 5xx, or a server error event in the stream.
    Server,
    /// The request was refused as invalid (4xx), or failed local validation before sending.
    BadRequest,
    /// No complete answer within the configured time.
    Timeout,
    /// Connecting or reading failed.
    Network,
    /// The provider answered something this adapter cannot understand.
    Protocol,
}

impl LlmErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LlmErrorKind::Auth => "auth",
            LlmErrorKind::RateLimited => "rate_limited",
            LlmErrorKind::QuotaExhausted => "quota_exhausted",
            LlmErrorKind::Overloaded => "overloaded",
            LlmErrorKind::Server => "server",
            LlmErrorKind::BadRequest => "bad_request",
            LlmErrorKind::Timeout => "timeout",
            LlmErrorKind::Network => "network",
            LlmErrorKind::Protocol => "protocol",
        }
    }
}

impl fmt::Display for LlmErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failed call, after the adapter's own retries.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct LlmError {
    pub kind: LlmErrorKind,
    pub message: String,
    /// The HTTP status, when the provider answered with one.
    pub status: Option<u16>,
    /// How long the provider asked to wait before trying again, if it said.
    pub retry_after: Option<Duration>,
}

impl LlmError {
    pub fn new(kind: LlmErrorKind, message: impl Into<String>) -> Self {
        LlmError {
            kind,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }
}

/// A chat model that streams.
///
/// One method on purpose: every call streams (so replies can be shown as they are written and a
/// slow answer is not mistaken for a dead connection), and the caller gets both the text deltas
/// as they arrive and the assembled response at the end. Retries and timeouts are the adapter's
/// business and happen only before the first byte of an answer is consumed, so `on_text` never
/// sees the same text twice.
#[async_trait]
pub trait LlmProvider: Send + Sync {
    /// Names the provider and model, e.g. `openai:gpt-4o-mini`, for logs and events.
    fn id(&self) -> &str;

    /// What this provider's tokens cost (free unless configured).
    fn pricing(&self) -> Pricing {
        Pricing::default()
    }

    /// Runs one completion, calling `on_text` with each text delta as it arrives.
    ///
    /// (`for<'t> Fn(&'t str)` is just `Fn(&str)`, spelled out because `#[async_trait]` would
    /// otherwise tie the elided lifetime to the call; implementations spell it the same way.)
    async fn complete(
        &self,
        req: &LlmRequest,
        on_text: &(dyn for<'t> Fn(&'t str) + Send + Sync),
    ) -> Result<LlmResponse, LlmError>;
}

/// `[A-Za-z0-9_-]{1,64}`: a tool name both OpenAI and Anthropic accept.
pub fn is_valid_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl LlmRequest {
    /// Checks what every provider requires of a request, so an adapter can refuse a malformed
    /// one without a round trip: a non-empty history that starts with the user and ends with the
    /// user or tool results; no empty messages; valid, unique tool names with object schemas; and
    /// the tool-call pairing both APIs enforce — the results following an assistant turn answer
    /// exactly its calls, each once, before anything else is said.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_tokens == 0 {
            return Err("max_tokens must be at least 1".into());
        }
        if let Some(t) = self.temperature
            && !(t.is_finite() && (0.0..=2.0).contains(&t))
        {
            return Err(format!("temperature {t} is outside 0..=2"));
        }
        let mut names = HashSet::new();
        for tool in &self.tools {
            if !is_valid_tool_name(&tool.name) {
                return Err(format!(
                    "tool name {:?} must match [A-Za-z0-9_-]{{1,64}}",
                    tool.name
                ));
            }
            if !names.insert(tool.name.as_str()) {
                return Err(format!("tool {:?} is offered twice", tool.name));
            }
            if tool.input_schema.get("type").and_then(|t| t.as_str()) != Some("object") {
                return Err(format!(
                    "tool {:?}: input_schema must be an object schema",
                    tool.name
                ));
            }
        }
        match self.messages.first() {
            None => return Err("messages must not be empty".into()),
            Some(LlmMessage::User { .. }) => {}
            Some(_) => return Err("the first message must be from the user".into()),
        }
        // Tool calls of the last assistant turn that still await their result.
        let mut pending: Vec<&str> = Vec::new();
        let mut answered: HashSet<&str> = HashSet::new();
        for (i, message) in self.messages.iter().enumerate() {
            match message {
                LlmMessage::User { content } => {
                    if !pending.is_empty() {
                        return Err(format!(
                            "message {i}: tool calls {pending:?} have no result before the next message"
                        ));
                    }
                    if content.trim().is_empty() {
                        return Err(format!("message {i}: user content is empty"));
                    }
                }
                LlmMessage::Assistant { text, tool_calls } => {
                    if !pending.is_empty() {
                        return Err(format!(
                            "message {i}: tool calls {pending:?} have no result before the next message"
                        ));
                    }
                    if text.trim().is_empty() && tool_calls.is_empty() {
                        return Err(format!(
                            "message {i}: assistant turn has no text and no tool calls"
                        ));
                    }
                    answered.clear();
                    for call in tool_calls {
                        if call.id.is_empty() {
                            return Err(format!("message {i}: a tool call has an empty id"));
                        }
                        if !is_valid_tool_name(&call.name) {
                            return Err(format!(
                                "message {i}: tool call name {:?} is invalid",
                                call.name
                            ));
                        }
                        if pending.contains(&call.id.as_str()) {
                            return Err(format!("message {i}: tool call id {:?} repeats", call.id));
                        }
                        pending.push(&call.id);
                    }
                }
                LlmMessage::ToolResult { tool_call_id, .. } => {
                    if let Some(at) = pending.iter().position(|id| *id == tool_call_id) {
                        pending.remove(at);
                        answered.insert(tool_call_id);
                    } else if answered.contains(tool_call_id.as_str()) {
                        return Err(format!(
                            "message {i}: tool call {tool_call_id:?} is answered twice"
                        ));
                    } else {
                        return Err(format!(
                            "message {i}: tool result {tool_call_id:?} answers no tool call of the previous assistant turn"
                        ));
                    }
                }
            }
        }
        if !pending.is_empty() {
            return Err(format!("tool calls {pending:?} have no result"));
        }
        if matches!(self.messages.last(), Some(LlmMessage::Assistant { .. })) {
            return Err("the last message must be from the user or a tool result".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(id: &str) -> LlmToolCall {
        LlmToolCall {
            id: id.into(),
            name: "get_order".into(),
            arguments: json!({}),
        }
    }

    fn request(messages: Vec<LlmMessage>) -> LlmRequest {
        LlmRequest {
            system: None,
            messages,
            tools: vec![LlmTool {
                name: "get_order".into(),
                description: "Looks up an order".into(),
                input_schema: json!({"type": "object"}),
            }],
            max_tokens: 100,
            temperature: None,
        }
    }

    fn assistant(calls: &[&str]) -> LlmMessage {
        LlmMessage::Assistant {
            text: String::new(),
            tool_calls: calls.iter().map(|id| call(id)).collect(),
        }
    }

    #[test]
    fn a_complete_tool_round_trip_is_valid() {
        let req = request(vec![
            LlmMessage::user("Where is A-1043?"),
            assistant(&["a", "b"]),
            LlmMessage::tool_result("b", "shipped"),
            LlmMessage::tool_error("a", "not found"),
            LlmMessage::user("thanks"),
        ]);
        assert_eq!(req.validate(), Ok(()));
    }

    #[test]
    fn tool_results_must_answer_the_previous_turn_exactly_once() {
        let missing = request(vec![
            LlmMessage::user("q"),
            assistant(&["a", "b"]),
            LlmMessage::tool_result("a", "x"),
            LlmMessage::user("next"),
        ]);
        assert!(missing.validate().is_err_and(|e| e.contains("\"b\"")));
        let stray = request(vec![
            LlmMessage::user("q"),
            assistant(&["a"]),
            LlmMessage::tool_result("z", "x"),
        ]);
        assert!(
            stray
                .validate()
                .is_err_and(|e| e.contains("answers no tool call"))
        );
        let twice = request(vec![
            LlmMessage::user("q"),
            assistant(&["a"]),
            LlmMessage::tool_result("a", "x"),
            LlmMessage::tool_result("a", "x"),
        ]);
        assert!(twice.validate().is_err_and(|e| e.contains("twice")));
        let stale = request(vec![
            LlmMessage::user("q"),
            assistant(&["a"]),
            LlmMessage::tool_result("a", "x"),
            LlmMessage::Assistant {
                text: "ok".into(),
                tool_calls: vec![],
            },
            LlmMessage::tool_result("a", "x"),
        ]);
        assert!(stale.validate().is_err(), "a result of an older turn");
        let unanswered = request(vec![LlmMessage::user("q"), assistant(&["a"])]);
        assert!(unanswered.validate().is_err());
    }

    #[test]
    fn shape_rules() {
        assert!(request(vec![]).validate().is_err());
        assert!(request(vec![LlmMessage::user("  ")]).validate().is_err());
        assert!(request(vec![assistant(&["a"])]).validate().is_err());
        let mut bad_tool = request(vec![LlmMessage::user("q")]);
        bad_tool.tools[0].name = "orders.get".into();
        assert!(bad_tool.validate().is_err());
        let mut bad_schema = request(vec![LlmMessage::user("q")]);
        bad_schema.tools[0].input_schema = json!({"type": "string"});
        assert!(bad_schema.validate().is_err());
        let mut hot = request(vec![LlmMessage::user("q")]);
        hot.temperature = Some(3.0);
        assert!(hot.validate().is_err());
        hot.temperature = Some(0.2);
        assert_eq!(hot.validate(), Ok(()));
    }

    #[test]
    fn usage_adds_up_and_costs() {
        let mut total = Usage::default();
        total += Usage {
            input_tokens: 1_000,
            output_tokens: 200,
        };
        total += Usage {
            input_tokens: 500,
            output_tokens: 100,
        };
        assert_eq!(
            total,
            Usage {
                input_tokens: 1_500,
                output_tokens: 300
            }
        );
        let price = Pricing {
            usd_per_mtok_input: 3.0,
            usd_per_mtok_output: 15.0,
        };
        assert!((price.cost_usd(&total) - (0.0045 + 0.0045)).abs() < 1e-12);
        assert_eq!(Pricing::default().cost_usd(&total), 0.0);
    }
}
