//! The human side: agent accounts, teams with skills, who owns a conversation, handoff records
//! and the outcome facts kept per conversation.
//!
//! Ownership: at every moment a conversation has exactly one owner, derived from its status and
//! assignment: the AI (`ai_active`, `resolved`, `closed`), a queue (`pending_human`, with its
//! team) or one named human agent (`human_active`, with a lease). The store changes owners only
//! by compare-and-set ([`Transition`]), so two agents never own the same conversation.

use crate::domain::{ConversationId, ConversationStatus, WorkspaceId, id_type};
use crate::triage::Urgency;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

id_type!(
    /// A human agent's account (a person in the console, not the AI).
    AgentId
);

/// What a signed-in person may do: agents work conversations, admins also manage accounts and
/// teams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Agent,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Admin => "admin",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "agent" => Ok(Role::Agent),
            "admin" => Ok(Role::Admin),
            other => Err(format!("unknown role {other:?} (agent or admin)")),
        }
    }
}

/// What a team or an agent is good at. Empty lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Skills {
    /// Intent names (the workspace's intents).
    #[serde(default)]
    pub intents: Vec<String>,
    /// Free tags a routing rule or a customer tier can name (`vip`, `hardware`, ...).
    #[serde(default)]
    pub tags: Vec<String>,
    /// ISO 639-1 codes.
    #[serde(default)]
    pub languages: Vec<String>,
}

/// A team of the workspace (stored in the workspace setting `teams`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Team {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub skills: Skills,
}

/// The workspace's teams; `default_team` takes what no team's skills match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamSettings {
    #[serde(default)]
    pub teams: Vec<Team>,
    #[serde(default)]
    pub default_team: Option<String>,
}

impl TeamSettings {
    /// Every problem at once: empty or duplicate names, a default that is not a team.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (i, t) in self.teams.iter().enumerate() {
            if !valid_name(&t.name) {
                problems.push(format!(
                    "teams[{i}].name {:?} must be 1-64 characters of a-z, 0-9, '-' or '_'",
                    t.name
                ));
            }
            if !seen.insert(t.name.as_str()) {
                problems.push(format!("teams[{i}].name {:?} is used twice", t.name));
            }
            for (j, l) in t.skills.languages.iter().enumerate() {
                if l.len() != 2 || !l.chars().all(|c| c.is_ascii_lowercase()) {
                    problems.push(format!(
                        "teams[{i}].skills.languages[{j}] {l:?} is not an ISO 639-1 code"
                    ));
                }
            }
        }
        if let Some(d) = &self.default_team
            && !self.teams.iter().any(|t| &t.name == d)
        {
            problems.push(format!("default_team {d:?} is not one of the teams"));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    pub fn team(&self, name: &str) -> Option<&Team> {
        self.teams.iter().find(|t| t.name == name)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// A person who works conversations in the console.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentAccount {
    pub id: AgentId,
    pub workspace_id: WorkspaceId,
    /// Lower-case; unique within the workspace; the sign-in name.
    pub email: String,
    pub name: String,
    pub role: Role,
    /// PHC string of a memory-hard hash (Argon2id); never leaves the server.
    pub password_hash: String,
    pub teams: Vec<String>,
    pub skills: Skills,
    /// At most this many conversations owned at once.
    pub capacity: u32,
    /// Takes new conversations (set by the agent in the console).
    pub available: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// A console session (`cs_<prefix>_<secret>`; only the SHA-256 of the token is stored).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentSession {
    pub prefix: String,
    pub agent_id: AgentId,
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    #[default]
    Normal,
    High,
    Urgent,
}

impl Priority {
    pub const ALL: [Priority; 4] = [
        Priority::Low,
        Priority::Normal,
        Priority::High,
        Priority::Urgent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Low => "low",
            Priority::Normal => "normal",
            Priority::High => "high",
            Priority::Urgent => "urgent",
        }
    }

    /// The queue priority for a message's urgency.
    pub fn from_urgency(u: Urgency) -> Self {
        match u {
            Urgency::Low => Priority::Low,
            Urgency::Normal => Priority::Normal,
            Urgency::High => Priority::High,
            Urgency::Critical => Priority::Urgent,
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Priority::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority {s:?}"))
    }
}

/// Where a conversation stands with the humans: its queue, its owner and the owner's lease.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assignment {
    /// The team whose queue holds it (kept after a claim, for transfers and reports).
    pub team: Option<String>,
    pub priority: Priority,
    /// The human owner; set exactly when the status is `human_active`.
    pub agent: Option<AgentId>,
    /// The owner's lease: past it, the conversation goes back to its queue.
    pub lease_until: Option<DateTime<Utc>>,
    /// When it last entered a queue (for waiting time).
    pub queued_at: Option<DateTime<Utc>>,
}

impl Assignment {
    /// The queue and priority kept, no owner (leaving a person: a release, a hand-back, a
    /// resolution, an expired lease). `queued_at`: when it (re-)enters a queue.
    pub fn kept(&self, queued_at: Option<DateTime<Utc>>) -> Assignment {
        Assignment {
            team: self.team.clone(),
            priority: self.priority,
            queued_at,
            ..Assignment::default()
        }
    }
}

/// The one owner of a conversation at a given moment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Owner {
    Ai,
    Queue { team: Option<String> },
    Agent { agent: AgentId },
}

impl Owner {
    /// Derived from the status and the assignment (see the module docs).
    pub fn of(status: ConversationStatus, assignment: &Assignment) -> Owner {
        match (status, assignment.agent) {
            (ConversationStatus::HumanActive, Some(agent)) => Owner::Agent { agent },
            (ConversationStatus::PendingHuman, _) | (ConversationStatus::HumanActive, None) => {
                Owner::Queue {
                    team: assignment.team.clone(),
                }
            }
            _ => Owner::Ai,
        }
    }
}

/// What started a handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HandoffTrigger {
    /// A routing rule sent the message to a person.
    RoutingPolicy,
    /// The customer asked for a person (the chat's button or the API).
    Customer,
    /// The AI gave up: weak evidence twice, repeated tool failures, a worsening mood, a
    /// guardrail, a procedure's handoff step.
    Agent,
    /// A person picked the conversation up from the AI.
    Human,
    /// A staff API call.
    Api,
}

impl HandoffTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            HandoffTrigger::RoutingPolicy => "routing_policy",
            HandoffTrigger::Customer => "customer",
            HandoffTrigger::Agent => "agent",
            HandoffTrigger::Human => "human",
            HandoffTrigger::Api => "api",
        }
    }
}

/// A cited source the AI used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRef {
    pub document_id: String,
    pub title: String,
    pub url: Option<String>,
}

/// What the human needs to take over without asking the customer again. Every line comes from
/// the conversation or from a system the agent read (profile, orders, tickets, tool results).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HandoffSummary {
    /// What the customer wants, in their words, with the understood intent.
    pub wants: String,
    /// What was tried and with what result (tool calls, answers, procedures).
    pub tried: Vec<String>,
    pub sources: Vec<SourceRef>,
    /// The customer's profile, recent orders and tickets, one line each.
    pub customer: Vec<String>,
    /// The summary as one text for the human (the model's when one wrote it and it passed the
    /// grounding check, else assembled from the lines above).
    pub text: String,
    /// `extractive`, or `llm:<model>`.
    pub generated_by: String,
}

/// One handoff: why, for whom, and what the human should know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Handoff {
    pub conversation_id: ConversationId,
    pub trigger: HandoffTrigger,
    pub reason: String,
    pub team: Option<String>,
    pub priority: Priority,
    /// The agent expert routing picked, when one is free.
    pub suggested_agent: Option<AgentId>,
    /// Why that team and agent (skills, similar past conversations, load).
    pub routing: Vec<String>,
    pub summary: HandoffSummary,
    pub created_at: DateTime<Utc>,
    /// The sentence vector of what the customer wrote (for routing later conversations to the
    /// people who resolved similar ones); empty without an embedder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vector: Vec<f32>,
    /// Set when the person handed the conversation back to the AI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handed_back: Option<HandBack>,
}

impl Handoff {
    /// The record without its vector (for events and views).
    pub fn without_vector(mut self) -> Self {
        self.vector = Vec::new();
        self
    }
}

/// A person returned the conversation to the AI, with a note the AI resumes with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HandBack {
    pub by: crate::Sender,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

/// A compare-and-set change of owner. The store applies it only if the conversation is still in
/// `from` (and, when `owner` is set, still owned by that agent; when `lease_expired_at` is set,
/// with a lease that ended before it), writes the new status and assignment, and appends
/// `status.changed` followed by `events`, all in one transaction.
#[derive(Debug, Clone)]
pub struct Transition {
    pub conversation: ConversationId,
    pub from: ConversationStatus,
    pub owner: Option<AgentId>,
    pub lease_expired_at: Option<DateTime<Utc>>,
    pub to: ConversationStatus,
    /// The assignment after the change (`agent` and `lease_until` exactly when `to` is
    /// `human_active`).
    pub assignment: Assignment,
    /// A claim: the new owner may hold at most this many conversations.
    pub capacity: Option<u32>,
    pub reason: String,
    pub events: Vec<crate::EventPayload>,
}

impl Transition {
    pub fn new(
        conversation: ConversationId,
        from: ConversationStatus,
        to: ConversationStatus,
        reason: impl Into<String>,
    ) -> Self {
        Transition {
            conversation,
            from,
            owner: None,
            lease_expired_at: None,
            to,
            assignment: Assignment::default(),
            capacity: None,
            reason: reason.into(),
            events: vec![],
        }
    }

    /// Checks the shape before the store runs it: the status machine allows it
    /// (`InvalidTransition` otherwise), a person's conversation is moved by that person or by
    /// lease expiry, and an owner and a lease are named exactly for `human_active` (`NotOwner`
    /// otherwise).
    pub fn check(&self) -> Result<(), crate::StoreError> {
        use crate::StoreError;
        if !self.from.can_transition_to(self.to) && !self.is_owner_change() {
            return Err(StoreError::InvalidTransition {
                from: self.from,
                to: self.to,
            });
        }
        if self.from == ConversationStatus::HumanActive
            && self.owner.is_none()
            && self.lease_expired_at.is_none()
        {
            return Err(StoreError::NotOwner(
                "a conversation a person owns is moved only by that person or by lease expiry"
                    .into(),
            ));
        }
        let human = self.to == ConversationStatus::HumanActive;
        if human != self.assignment.agent.is_some()
            || human != self.assignment.lease_until.is_some()
        {
            return Err(StoreError::NotOwner(
                "an owner and a lease are set exactly for human_active".into(),
            ));
        }
        Ok(())
    }

    /// `human_active` to `human_active` (a lease renewal or a transfer to another agent) and
    /// `pending_human` to `pending_human` (a transfer between queues) are owner changes.
    pub fn is_owner_change(&self) -> bool {
        self.from == self.to
            && matches!(
                self.from,
                ConversationStatus::HumanActive | ConversationStatus::PendingHuman
            )
    }
}

/// How a conversation ended, for the outcome report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Resolved without a person (contained).
    Ai,
    /// Resolved after a handoff.
    Human,
}

impl Resolution {
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::Ai => "ai",
            Resolution::Human => "human",
        }
    }
}

/// The facts the outcome report is computed from, one row per conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct OutcomeFacts {
    pub conversation_id: ConversationId,
    pub channel: crate::Channel,
    pub status: ConversationStatus,
    /// The intent of the first customer message that had one.
    pub intent: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The last customer message.
    pub last_customer_at: Option<DateTime<Utc>>,
    pub first_response_at: Option<DateTime<Utc>>,
    pub handed_off_at: Option<DateTime<Utc>>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolution: Option<Resolution>,
    /// Reopened by the customer within 7 days of a resolution.
    pub reopened: bool,
    /// 1 to 5, given by the customer at the end.
    pub rating: Option<u8>,
}

/// Days after a resolution within which a new customer message counts as a reopening.
pub const REOPEN_WINDOW_DAYS: i64 = 7;
