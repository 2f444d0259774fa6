//! What Concierge understood of a customer message (triage) and where it sent it (route).
//! Both are stored with the message and recorded as events, so a person sees why.

use serde::{Deserialize, Serialize};

/// Why a triage field has its value: a named rule or model and the text that triggered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// What produced it, e.g. `lexicon:urgent`, `intent:lost_card`, `punctuation:!!`.
    pub source: String,
    /// The words of the message (or the value) behind it.
    pub evidence: String,
}

impl Signal {
    pub fn new(source: impl Into<String>, evidence: impl Into<String>) -> Self {
        Self {
            source: source.into(),
            evidence: evidence.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentScore {
    pub name: String,
    /// Calibrated probability in [0, 1].
    pub confidence: f32,
}

/// How a configured intent is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Handling {
    /// Answered from the knowledge base.
    #[default]
    Knowledge,
    /// A procedure with tools (an action on the customer's account).
    Procedure,
    /// Always a person.
    Human,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntentResult {
    /// The best in-scope intent (also set when the message is out of scope: the nearest one).
    pub best: Option<IntentScore>,
    pub alternatives: Vec<IntentScore>,
    /// The best intent's handling, from the workspace's intent configuration.
    pub handling: Option<Handling>,
    /// Learned out-of-scope decision: `oos_score` at or above `threshold`.
    pub out_of_scope: bool,
    pub oos_score: f32,
    pub threshold: Option<f32>,
    /// Fingerprint of the intent configuration the model was trained on.
    pub model: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    Low,
    #[default]
    Normal,
    High,
    Critical,
}

impl Urgency {
    pub fn as_str(self) -> &'static str {
        match self {
            Urgency::Low => "low",
            Urgency::Normal => "normal",
            Urgency::High => "high",
            Urgency::Critical => "critical",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SentimentLabel {
    Negative,
    #[default]
    Neutral,
    Positive,
}

impl SentimentLabel {
    pub fn as_str(self) -> &'static str {
        match self {
            SentimentLabel::Negative => "negative",
            SentimentLabel::Neutral => "neutral",
            SentimentLabel::Positive => "positive",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UrgencyResult {
    pub level: Urgency,
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SentimentResult {
    pub label: SentimentLabel,
    /// VADER compound score in [-1, 1].
    pub score: f32,
    pub frustrated: bool,
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ComplexityResult {
    /// Two or more separate requests in one message.
    pub multiple_requests: bool,
    /// The request needs something done (a change, a cancellation, a refund), not only an answer.
    pub needs_action: bool,
    /// A person should weigh in (a dispute, an exception, a complaint, legal matters).
    pub needs_human_judgment: bool,
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LanguageResult {
    /// ISO 639-1 code, e.g. `en`.
    pub code: String,
    pub confidence: f32,
    pub reliable: bool,
}

/// Everything understood of one customer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Triage {
    /// Absent when the workspace has no trained intents.
    pub intent: Option<IntentResult>,
    pub urgency: UrgencyResult,
    pub sentiment: SentimentResult,
    pub complexity: ComplexityResult,
    /// Absent when the text is too short or not in a known script.
    pub language: Option<LanguageResult>,
    /// Money amounts found in the message (for rules such as "refunds above 100 go to a person").
    pub amounts: Vec<f64>,
    pub latency_ms: f64,
    /// The input guardrail's verdict (absent on messages stored before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guard: Option<GuardCheck>,
}

impl Triage {
    pub fn out_of_scope(&self) -> bool {
        self.intent.as_ref().is_some_and(|i| i.out_of_scope)
    }

    /// The input guardrail blocked the message: no model, tool or procedure sees it.
    pub fn blocked(&self) -> bool {
        self.guard.as_ref().is_some_and(|g| g.blocked)
    }
}

/// The prompt-injection and jailbreak check of one text, with what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GuardCheck {
    pub blocked: bool,
    /// Attack probability of the most suspicious window (1 when a strong pattern matched).
    pub score: f32,
    pub threshold: f32,
    /// Set when blocked: `instruction_override`, `role_play_jailbreak`, `prompt_extraction`,
    /// `obfuscation`, `code_injection`, `harmful_request` or `unspecified`.
    pub category: Option<String>,
    pub signals: Vec<Signal>,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum RouteAction {
    /// The AI answers.
    Answer,
    /// The AI answers, and a team is asked to keep an eye on the conversation.
    Assist { team: Option<String> },
    /// The AI asks one clarifying question.
    Clarify,
    /// The AI says it could not understand and offers a person (after a clarifying question).
    OfferHuman,
    /// A person takes over.
    Handoff { team: Option<String> },
    /// The input guardrail blocked the message: the AI declines without reading it further.
    Refuse,
}

/// The routing decision and the rules that produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Route {
    pub action: RouteAction,
    /// The rule that decided (`default:…` when no configured rule matched).
    pub rule: String,
    /// Every configured rule whose conditions held, in policy order (the first one decides).
    pub matched: Vec<String>,
}

/// Triage and route, stored with the customer message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Analysis {
    pub triage: Triage,
    pub route: Route,
}
