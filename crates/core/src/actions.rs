//! What the agent changes in the world: tickets in the local ticket store and writes to the
//! workspace's commerce data, each applied together with its idempotency record so a retried or
//! duplicated turn never performs an action twice.

use crate::domain::{ConversationId, CustomerId, Order, OrderId, WorkspaceId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

crate::domain::id_type!(
    /// A ticket in the local ticket store.
    TicketId
);

/// A ticket in the local ticket store (until the Jira connector takes this role).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: TicketId,
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub conversation_id: Option<ConversationId>,
    /// Human-friendly number, `T-1001` upwards per workspace; assigned by the store.
    pub number: String,
    pub subject: String,
    pub description: String,
    /// `open`, `pending` or `solved`.
    pub status: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    pub comments: Vec<TicketComment>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TicketComment {
    /// `customer`, `ai` or a person's name.
    pub author: String,
    pub text: String,
    pub at: DateTime<Utc>,
}

pub const TICKET_STATUSES: [&str; 3] = ["open", "pending", "solved"];
pub const TICKET_PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];

/// The change a write makes, applied by the store in the same transaction as its record.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Replace an order's status and details, only if its status is still `expected_status`
    /// (compare-and-set: two concurrent writes cannot both succeed).
    UpdateOrder {
        order_id: OrderId,
        expected_status: String,
        status: String,
        details: serde_json::Value,
    },
    /// Create a ticket; the store assigns its number.
    CreateTicket(Box<Ticket>),
    /// Change a ticket's status and/or add a comment.
    UpdateTicket {
        ticket_id: TicketId,
        status: Option<String>,
        comment: Option<TicketComment>,
    },
    /// Nothing to change in the store; the record itself is the outcome (e.g. an e-mail to send).
    RecordOnly,
}

/// One write performed by a tool on behalf of a customer.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionWrite {
    pub workspace_id: WorkspaceId,
    pub conversation_id: Option<ConversationId>,
    /// Unique per workspace; the same key replays the first outcome.
    pub key: String,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub effect: Effect,
    /// What the tool returns; for `CreateTicket` the store adds `"number"`.
    pub result: serde_json::Value,
}

/// The stored record of a write (the audit trail).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionRecord {
    pub key: String,
    pub workspace_id: WorkspaceId,
    pub conversation_id: Option<ConversationId>,
    pub tool: String,
    pub arguments: serde_json::Value,
    pub result: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The outcome of [`crate::Store::apply_action`].
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub record: ActionRecord,
    /// An earlier write with the same key did the work; nothing changed now.
    pub replayed: bool,
}

impl Ticket {
    /// A new open ticket; `number` is assigned when the store creates it.
    pub fn new(
        workspace_id: WorkspaceId,
        customer_id: CustomerId,
        conversation_id: Option<ConversationId>,
        subject: String,
        description: String,
        priority: String,
    ) -> Self {
        let now = Utc::now();
        Ticket {
            id: TicketId(Uuid::now_v7()),
            workspace_id,
            customer_id,
            conversation_id,
            number: String::new(),
            subject,
            description,
            status: "open".into(),
            priority,
            comments: vec![],
            created_at: now,
            updated_at: now,
        }
    }
}

/// Whether an order number the customer typed denotes `order` (`A-1043`, `a1043`, `#1043`,
/// `1043` all match `A-1043`).
pub fn order_number_matches(order: &Order, typed: &str) -> bool {
    fn norm(s: &str) -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .flat_map(|c| c.to_lowercase())
            .collect()
    }
    let (want, have) = (norm(typed), norm(&order.number));
    !want.is_empty()
        && (want == have
            || (want.chars().all(|c| c.is_ascii_digit())
                && have.ends_with(&want)
                && have[..have.len() - want.len()]
                    .chars()
                    .all(|c| c.is_ascii_alphabetic())))
}
