//! Row tuples as both drivers decode them, and their conversion to domain types.

use chrono::{DateTime, Utc};
use concierge_core::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) type WorkspaceRow = (String, String, String, bool, i64);
pub(crate) type ApiKeyRow = (String, String, String, String, String, i64, Option<i64>);
pub(crate) type CustomerRow = (
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    i64,
);
pub(crate) type OrderRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    String,
    i64,
    String,
);
pub(crate) type ConversationRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    i64,
    i64,
    Option<String>,
    String,
    Option<String>,
    Option<i64>,
    Option<i64>,
);
pub(crate) type MessageRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
);
pub(crate) type AgentRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    bool,
    Option<i64>,
    i64,
);
pub(crate) type OutcomeRow = (
    String,
    String,
    String,
    Option<String>,
    i64,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<String>,
    bool,
    Option<i64>,
);
pub(crate) type EventRow = (String, i64, String, i64);
pub(crate) type DocumentRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
    String,
);
pub(crate) type DocumentChunkRow = (
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<String>,
    String,
    String,
    i64,
    String,
    String,
);

fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("corrupt {what} in store: {detail}"))
}

pub(crate) fn parse_id(s: &str) -> StoreResult<uuid::Uuid> {
    uuid::Uuid::parse_str(s).map_err(|e| corrupt("id", e))
}

pub(crate) fn time(micros: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| corrupt("timestamp", micros))
}

pub(crate) fn to_json<T: Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(e.to_string()))
}

pub(crate) fn from_json<T: DeserializeOwned>(what: &str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| corrupt(what, e))
}

pub(crate) fn decode_hex(s: &str) -> StoreResult<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return Err(corrupt("secret", "odd length"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|e| corrupt("secret", e)))
        .collect()
}

pub(crate) fn workspace_from_row(r: WorkspaceRow) -> StoreResult<Workspace> {
    Ok(Workspace {
        id: WorkspaceId(parse_id(&r.0)?),
        slug: r.1,
        name: r.2,
        public_chat: r.3,
        created_at: time(r.4)?,
    })
}

pub(crate) fn api_key_from_row(r: ApiKeyRow) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: ApiKeyId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        name: r.2,
        prefix: r.3,
        hash: r.4,
        created_at: time(r.5)?,
        revoked_at: r.6.map(time).transpose()?,
    })
}

pub(crate) fn customer_from_row(r: CustomerRow) -> StoreResult<Customer> {
    Ok(Customer {
        id: CustomerId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        name: r.2,
        email: r.3,
        phone: r.4,
        tier: r.5,
        created_at: time(r.6)?,
    })
}

pub(crate) fn order_from_row(r: OrderRow) -> StoreResult<Order> {
    Ok(Order {
        id: OrderId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        customer_id: CustomerId(parse_id(&r.2)?),
        number: r.3,
        status: r.4,
        placed_at: time(r.5)?,
        currency: r.6,
        total_cents: r.7,
        details: from_json("order details", &r.8)?,
    })
}

pub(crate) fn conversation_from_row(r: ConversationRow) -> StoreResult<Conversation> {
    Ok(Conversation {
        id: ConversationId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        customer_id: CustomerId(parse_id(&r.2)?),
        channel: r.3.parse().map_err(|e| corrupt("channel", e))?,
        status: r.4.parse().map_err(|e| corrupt("status", e))?,
        subject: r.5,
        created_at: time(r.6)?,
        updated_at: time(r.7)?,
        assignment: Assignment {
            team: r.8,
            priority: r.9.parse().map_err(|e| corrupt("priority", e))?,
            agent: r.10.as_deref().map(parse_id).transpose()?.map(AgentId),
            lease_until: r.11.map(time).transpose()?,
            queued_at: r.12.map(time).transpose()?,
        },
    })
}

pub(crate) fn agent_from_row(r: AgentRow) -> StoreResult<AgentAccount> {
    Ok(AgentAccount {
        id: AgentId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        email: r.2,
        name: r.3,
        role: r.4.parse().map_err(|e| corrupt("role", e))?,
        password_hash: r.5,
        teams: from_json("teams", &r.6)?,
        skills: from_json("skills", &r.7)?,
        capacity: u32::try_from(r.8).map_err(|e| corrupt("capacity", e))?,
        available: r.9,
        last_seen_at: r.10.map(time).transpose()?,
        created_at: time(r.11)?,
    })
}

pub(crate) fn outcome_from_row(r: OutcomeRow) -> StoreResult<OutcomeFacts> {
    Ok(OutcomeFacts {
        conversation_id: ConversationId(parse_id(&r.0)?),
        channel: r.1.parse().map_err(|e| corrupt("channel", e))?,
        status: r.2.parse().map_err(|e| corrupt("status", e))?,
        intent: r.3,
        created_at: time(r.4)?,
        last_customer_at: r.5.map(time).transpose()?,
        first_response_at: r.6.map(time).transpose()?,
        handed_off_at: r.7.map(time).transpose()?,
        resolved_at: r.8.map(time).transpose()?,
        resolution: match r.9.as_deref() {
            None => None,
            Some("ai") => Some(Resolution::Ai),
            Some("human") => Some(Resolution::Human),
            Some(other) => return Err(corrupt("resolution", other)),
        },
        reopened: r.10,
        rating: r.11.and_then(|v| u8::try_from(v).ok()),
    })
}

pub(crate) fn message_from_row(r: MessageRow) -> StoreResult<Message> {
    Ok(Message {
        id: MessageId(parse_id(&r.0)?),
        conversation_id: ConversationId(parse_id(&r.1)?),
        author: r.2.parse().map_err(|e| corrupt("author", e))?,
        text: r.3,
        citations: from_json("citations", &r.4)?,
        analysis: r
            .6
            .as_deref()
            .map(|a| from_json("analysis", a))
            .transpose()?,
        sender: r.7.as_deref().map(|s| from_json("sender", s)).transpose()?,
        created_at: time(r.5)?,
    })
}

pub(crate) fn event_from_row(r: EventRow) -> StoreResult<Event> {
    Ok(Event {
        conversation_id: ConversationId(parse_id(&r.0)?),
        seq: r.1,
        payload: from_json("event payload", &r.2)?,
        created_at: time(r.3)?,
    })
}

pub(crate) fn document_from_row(r: DocumentRow) -> StoreResult<Document> {
    Ok(Document {
        id: DocumentId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        source: r.2,
        external_id: r.3,
        title: r.4,
        url: r.5,
        tags: from_json("tags", &r.6)?,
        content_hash: r.7,
        updated_at: time(r.8)?,
        source_version: r.9,
        acl: from_json("acl", &r.10)?,
    })
}

pub(crate) fn document_chunk_from_row(r: DocumentChunkRow) -> StoreResult<(Document, Chunk)> {
    let doc = document_from_row((r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9, r.10))?;
    let chunk = Chunk {
        id: r.11,
        document_id: doc.id,
        ordinal: u32::try_from(r.12).map_err(|e| corrupt("ordinal", e))?,
        heading_path: from_json("heading path", &r.13)?,
        text: r.14,
    };
    Ok((doc, chunk))
}

pub(crate) fn encode_vector(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub(crate) fn decode_vector(bytes: &[u8]) -> StoreResult<Vec<f32>> {
    if !bytes.len().is_multiple_of(4) {
        return Err(corrupt("vector", "length is not a multiple of 4"));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}

pub(crate) type TaskRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    Option<String>,
    i64,
    i64,
    i64,
);

pub(crate) const TASK_COLUMNS: &str = "id, workspace_id, kind, params, status, progress_done, progress_total, result, error, attempts, created_at, updated_at";

pub(crate) fn task_from_row(r: TaskRow) -> StoreResult<Task> {
    Ok(Task {
        id: TaskId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        kind: r.2,
        params: from_json("task params", &r.3)?,
        status: r.4.parse().map_err(|e| corrupt("task status", e))?,
        progress_done: u64::try_from(r.5).unwrap_or(0),
        progress_total: u64::try_from(r.6).unwrap_or(0),
        result: r
            .7
            .as_deref()
            .map(|t| from_json("task result", t))
            .transpose()?,
        error: r.8,
        attempts: i32::try_from(r.9).unwrap_or(i32::MAX),
        created_at: time(r.10)?,
        updated_at: time(r.11)?,
    })
}

pub(crate) type ActionRow = (String, String, Option<String>, String, String, String, i64);

pub(crate) fn action_from_row(r: ActionRow) -> StoreResult<ActionRecord> {
    Ok(ActionRecord {
        key: r.0,
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        conversation_id: r
            .2
            .as_deref()
            .map(parse_id)
            .transpose()?
            .map(ConversationId),
        tool: r.3,
        arguments: from_json("action arguments", &r.4)?,
        result: from_json("action result", &r.5)?,
        created_at: time(r.6)?,
    })
}

pub(crate) type TicketRow = (
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
);

pub(crate) fn ticket_from_row(r: TicketRow) -> StoreResult<Ticket> {
    Ok(Ticket {
        id: TicketId(parse_id(&r.0)?),
        workspace_id: WorkspaceId(parse_id(&r.1)?),
        customer_id: CustomerId(parse_id(&r.2)?),
        conversation_id: r
            .3
            .as_deref()
            .map(parse_id)
            .transpose()?
            .map(ConversationId),
        number: r.4,
        subject: r.5,
        description: r.6,
        status: r.7,
        priority: r.8,
        comments: from_json("ticket comments", &r.9)?,
        created_at: time(r.10)?,
        updated_at: time(r.11)?,
    })
}
