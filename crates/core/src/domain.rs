//! Tenants, customers, conversations and messages.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered (UUIDv7) id, so ids sort by creation time and serve as cursors.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}
pub(crate) use id_type;

id_type!(
    /// A tenant.
    WorkspaceId
);
id_type!(CustomerId);
id_type!(ConversationId);
id_type!(MessageId);
id_type!(ApiKeyId);
id_type!(DocumentId);
id_type!(OrderId);
id_type!(TaskId);

/// A tenant: its own customers, conversations, knowledge and keys.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workspace {
    pub id: WorkspaceId,
    /// Stable, URL-safe name (`default`, `nimbus`).
    pub slug: String,
    pub name: String,
    /// Whether anonymous visitors may open conversations (the public web chat).
    pub public_chat: bool,
    pub created_at: DateTime<Utc>,
}

/// Validates a workspace slug: 1–64 characters of `a-z`, `0-9` and `-`, not starting with `-`.
pub fn validate_slug(slug: &str) -> Result<(), String> {
    let ok = !slug.is_empty()
        && slug.len() <= 64
        && !slug.starts_with('-')
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid workspace slug {slug:?}: use 1-64 characters a-z, 0-9 and '-', not starting with '-'"
        ))
    }
}

/// The channel a customer wrote on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Web,
    Api,
    Slack,
    Email,
}

impl Channel {
    pub const ALL: [Channel; 4] = [Channel::Web, Channel::Api, Channel::Slack, Channel::Email];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Web => "web",
            Channel::Api => "api",
            Channel::Slack => "slack",
            Channel::Email => "email",
        }
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel {s:?}"))
    }
}

/// A person who writes to support. Identities tie them to each channel's own user ids.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: CustomerId,
    pub workspace_id: WorkspaceId,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Service tier from the CRM (`standard`, `plus`, `vip`, ...).
    pub tier: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// How a customer is known on one channel (`web` visitor id, Slack user id, CRM id...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerIdentity {
    pub channel: Channel,
    pub external_id: String,
}

/// An order in the workspace's commerce data (the demo's own data until a CRM connector lands).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: OrderId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub number: String,
    pub status: String,
    pub placed_at: DateTime<Utc>,
    pub currency: String,
    pub total_cents: i64,
    /// Line items, shipping address, carrier and tracking, kept as the source gave them.
    pub details: serde_json::Value,
}

/// Who owns a conversation, expressed as a status. Transitions are explicit: see
/// [`ConversationStatus::can_transition_to`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    /// The AI answers.
    AiActive,
    /// Waiting in a queue for a person; the AI stays silent.
    PendingHuman,
    /// A person owns the conversation; the AI never posts.
    HumanActive,
    /// Solved; a new customer message reopens it.
    Resolved,
    /// Final.
    Closed,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 5] = [
        ConversationStatus::AiActive,
        ConversationStatus::PendingHuman,
        ConversationStatus::HumanActive,
        ConversationStatus::Resolved,
        ConversationStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::AiActive => "ai_active",
            ConversationStatus::PendingHuman => "pending_human",
            ConversationStatus::HumanActive => "human_active",
            ConversationStatus::Resolved => "resolved",
            ConversationStatus::Closed => "closed",
        }
    }

    /// The status machine. Self-transitions are not transitions.
    pub fn can_transition_to(self, to: ConversationStatus) -> bool {
        use ConversationStatus::*;
        matches!(
            (self, to),
            (AiActive, PendingHuman | HumanActive | Resolved | Closed)
                | (PendingHuman, HumanActive | AiActive | Resolved | Closed)
                | (HumanActive, AiActive | PendingHuman | Resolved | Closed)
                | (Resolved, AiActive | PendingHuman | Closed)
        )
    }

    /// Whether the AI may post in this status.
    pub fn ai_may_reply(self) -> bool {
        self == ConversationStatus::AiActive
    }
}

impl fmt::Display for ConversationStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ConversationStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ConversationStatus::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown status {s:?}; expected one of ai_active, pending_human, human_active, resolved, closed"
                )
            })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub status: ConversationStatus,
    pub subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Queue, priority and human owner (see `handoff::Owner`).
    pub assignment: crate::Assignment,
}

impl Conversation {
    /// The one owner right now: the AI, a queue or a named person.
    pub fn owner(&self) -> crate::Owner {
        crate::Owner::of(self.status, &self.assignment)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Author {
    Customer,
    Ai,
    Agent,
    System,
}

impl Author {
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Customer => "customer",
            Author::Ai => "ai",
            Author::Agent => "agent",
            Author::System => "system",
        }
    }
}

impl FromStr for Author {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [Author::Customer, Author::Ai, Author::Agent, Author::System]
            .into_iter()
            .find(|a| a.as_str() == s)
            .ok_or_else(|| format!("unknown author {s:?}"))
    }
}

/// A numbered source a reply relies on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The marker number used in the text (`[1]`).
    pub n: u32,
    pub document_id: DocumentId,
    pub chunk_id: String,
    pub title: String,
    pub url: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub author: Author,
    pub text: String,
    pub citations: Vec<Citation>,
    /// Customer messages: what was understood and where the message was routed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub analysis: Option<Box<crate::Analysis>>,
    /// Messages by a person: who wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<Sender>,
    pub created_at: DateTime<Utc>,
}

/// The person behind an `agent` message, as the customer sees them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    pub agent: crate::AgentId,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl TaskStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Queued => "queued",
            TaskStatus::Running => "running",
            TaskStatus::Succeeded => "succeeded",
            TaskStatus::Failed => "failed",
        }
    }
}

impl FromStr for TaskStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            TaskStatus::Queued,
            TaskStatus::Running,
            TaskStatus::Succeeded,
            TaskStatus::Failed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| format!("unknown task status {s:?}"))
    }
}

/// A background task (a knowledge sync...), run by a worker holding a lease; a crashed worker's
/// task is claimed again when its lease runs out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Task {
    pub id: TaskId,
    pub workspace_id: WorkspaceId,
    pub kind: String,
    pub params: serde_json::Value,
    pub status: TaskStatus,
    pub progress_done: u64,
    pub progress_total: u64,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A workspace API key as stored: only a hash of the secret is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// Public, non-secret part used to find the key (`ck_<prefix>_...`).
    pub prefix: String,
    /// Hex SHA-256 of the whole key.
    pub hash: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_machine_allows_handoff_and_forbids_leaving_closed() {
        use ConversationStatus::*;
        assert!(AiActive.can_transition_to(PendingHuman));
        assert!(PendingHuman.can_transition_to(HumanActive));
        assert!(HumanActive.can_transition_to(AiActive));
        assert!(Resolved.can_transition_to(AiActive));
        for s in ConversationStatus::ALL {
            assert!(!Closed.can_transition_to(s), "closed -> {s}");
            assert!(!s.can_transition_to(s), "{s} -> {s}");
        }
        assert!(!Resolved.can_transition_to(HumanActive));
    }

    #[test]
    fn status_round_trips_through_text() {
        for s in ConversationStatus::ALL {
            assert_eq!(s.as_str().parse::<ConversationStatus>(), Ok(s));
        }
        assert!("open".parse::<ConversationStatus>().is_err());
    }

    #[test]
    fn slugs_are_validated() {
        assert!(validate_slug("nimbus-home").is_ok());
        assert!(validate_slug("").is_err());
        assert!(validate_slug("-x").is_err());
        assert!(validate_slug("Nimbus").is_err());
    }
}
