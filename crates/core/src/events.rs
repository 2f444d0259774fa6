//! The append-only event log of a conversation: every step the system takes is recorded here,
//! so a conversation can be audited and replayed, and live clients resume from a sequence number.

use crate::domain::{ConversationId, ConversationStatus, Message, MessageId};
use crate::triage::{Route, Triage};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One retrieved passage as recorded in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetrievedRef {
    pub chunk_id: String,
    pub document_id: String,
    pub score: f32,
}

/// Why the AI answered the way it did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyKind {
    /// Built from cited passages.
    Grounded,
    /// The evidence was too weak: the reply says so and offers a person.
    NoAnswer,
    /// A fixed system acknowledgement (e.g. a person is coming).
    Notice,
    /// A step of a procedure: a question, a confirmation request or an action's outcome.
    Procedure,
}

impl ReplyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyKind::Grounded => "grounded",
            ReplyKind::NoAnswer => "no_answer",
            ReplyKind::Notice => "notice",
            ReplyKind::Procedure => "procedure",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventPayload {
    /// A message was stored (any author).
    #[serde(rename = "message.created")]
    MessageCreated { message: Message },
    /// Knowledge retrieval for a customer message finished.
    #[serde(rename = "retrieval.done")]
    RetrievalDone {
        message_id: MessageId,
        query: String,
        hits: Vec<RetrievedRef>,
        /// Evidence strength of the best passage in [0, 1] and the threshold it was compared to.
        evidence: f32,
        threshold: f32,
        latency_ms: f64,
    },
    /// The AI sent a reply.
    #[serde(rename = "reply.sent")]
    ReplySent {
        message_id: MessageId,
        in_reply_to: MessageId,
        kind: ReplyKind,
        /// Human-readable reason, e.g. why no answer was given.
        reason: String,
    },
    /// The conversation changed owner.
    #[serde(rename = "status.changed")]
    StatusChanged {
        from: ConversationStatus,
        to: ConversationStatus,
        reason: String,
        /// The person who owns the conversation after the change (`human_active`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        owner: Option<crate::Sender>,
        /// The queue it is in after the change (`pending_human`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        team: Option<String>,
    },
    /// A customer message arrived while a person owns the conversation: the AI stays silent.
    #[serde(rename = "ai.silenced")]
    AiSilenced {
        message_id: MessageId,
        status: ConversationStatus,
    },
    /// What was understood of a customer message (intent, urgency, sentiment, ...).
    #[serde(rename = "message.triaged")]
    MessageTriaged {
        message_id: MessageId,
        triage: Box<Triage>,
    },
    /// Where the routing policy sent a customer message, and the rules that matched.
    #[serde(rename = "routing.decided")]
    RoutingDecided { message_id: MessageId, route: Route },
    /// One step of the agent's run for a customer message: what was decided and, for a tool
    /// call, with which arguments, the result and the latency (the audit trail of a run).
    #[serde(rename = "agent.step")]
    AgentStep {
        message_id: MessageId,
        /// The procedure (or planner) that took the step.
        run: String,
        /// Position of the step within this turn, from 1.
        step: u32,
        action: Box<StepRecord>,
    },
    /// The conversation went to the human queue: the handoff record with its summary and the
    /// expert routing's decision and reasons.
    #[serde(rename = "handoff.requested")]
    HandoffRequested { handoff: Box<crate::Handoff> },
    /// What the customer is told while waiting (position and expected wait).
    #[serde(rename = "queue.position")]
    QueuePosition {
        position: u32,
        /// Median recent wait of this queue, when there is history.
        expected_wait_seconds: Option<u64>,
    },
    /// An internal note by a person: staff only, never shown to the customer.
    #[serde(rename = "note.added")]
    NoteAdded { author: crate::Sender, text: String },
    /// A person gave the conversation back to the AI, with an optional note it resumes with.
    #[serde(rename = "handed_back")]
    HandedBack {
        author: crate::Sender,
        note: Option<String>,
    },
    /// The customer rated the conversation (1 to 5).
    #[serde(rename = "conversation.rated")]
    Rated { rating: u8 },
}

/// What one agent step did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepRecord {
    /// A procedure started for the message's intent.
    Started { intent: String },
    /// A tool ran. `ok == false` is a tool failure the agent saw and handled.
    ToolCall {
        tool: String,
        arguments: serde_json::Value,
        ok: bool,
        result: serde_json::Value,
        latency_ms: f64,
        /// Writes only: the idempotency key, which links the step to its record in the store.
        idempotency_key: Option<String>,
    },
    /// A write was refused by policy (e.g. not confirmed by the customer) before it ran.
    ToolRefused { tool: String, reason: String },
    /// A slot was filled from the customer's words.
    SlotFilled { slot: String, value: String },
    /// The agent asked the customer for a slot and waits.
    AskedFor { slot: String },
    /// The agent asked the customer to confirm a write and waits.
    AwaitingConfirmation { summary: String },
    /// The customer answered a confirmation.
    Confirmation { confirmed: bool },
    /// A condition was evaluated.
    Branch { condition: String, taken: bool },
    /// The agent handed the conversation to a person.
    Handoff { reason: String },
    /// The run ended (`completed`, `declined`, `abandoned`, `failed`, `gave_up`, `budget_exhausted`).
    Finished { outcome: String },
    /// The input guardrail withheld a text: the customer's message (`origin` `message`), or a
    /// retrieved passage or tool result (`retrieved`, `source` names the chunk or the tool).
    GuardBlocked {
        origin: String,
        source: String,
        category: String,
        score: f32,
    },
    /// One call to the language model, with what it consumed.
    LlmCall {
        model: String,
        /// `end_turn`, `tool_use`, `max_tokens`, `refusal` or the provider's own reason.
        stop: String,
        tool_calls: Vec<String>,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: f64,
        latency_ms: f64,
        /// Set when the call failed (then no tokens are counted).
        error: Option<String>,
    },
    /// The grounding check of a drafted answer: each unsupported sentence, and whether the
    /// draft was sent.
    Grounding {
        sent: bool,
        sentences: u32,
        unsupported: Vec<String>,
    },
}

impl EventPayload {
    pub fn type_name(&self) -> &'static str {
        match self {
            EventPayload::MessageCreated { .. } => "message.created",
            EventPayload::RetrievalDone { .. } => "retrieval.done",
            EventPayload::ReplySent { .. } => "reply.sent",
            EventPayload::StatusChanged { .. } => "status.changed",
            EventPayload::AiSilenced { .. } => "ai.silenced",
            EventPayload::MessageTriaged { .. } => "message.triaged",
            EventPayload::RoutingDecided { .. } => "routing.decided",
            EventPayload::AgentStep { .. } => "agent.step",
            EventPayload::HandoffRequested { .. } => "handoff.requested",
            EventPayload::QueuePosition { .. } => "queue.position",
            EventPayload::NoteAdded { .. } => "note.added",
            EventPayload::HandedBack { .. } => "handed_back",
            EventPayload::Rated { .. } => "conversation.rated",
        }
    }

    /// Whether the customer who holds the conversation token sees this event. Internal steps
    /// (retrieval scores, decisions) are for workspace staff only.
    pub fn is_customer_visible(&self) -> bool {
        matches!(
            self,
            EventPayload::MessageCreated { .. }
                | EventPayload::StatusChanged { .. }
                | EventPayload::QueuePosition { .. }
                | EventPayload::Rated { .. }
        )
    }
}

/// A stored event. `seq` increases strictly within the whole store, so it doubles as an SSE id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub seq: i64,
    pub conversation_id: ConversationId,
    pub payload: EventPayload,
    pub created_at: DateTime<Utc>,
}

/// Live, not-stored notifications: the reply streaming in and typing indicators.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveEvent {
    /// A stored event was appended; listeners read it from the store.
    Appended(Event),
    /// A piece of reply text for the message that will be stored with `message_id`.
    Delta {
        message_id: MessageId,
        delta: String,
    },
    Typing,
}
