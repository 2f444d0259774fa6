//! The storage boundary. One trait, implemented for SQLite and PostgreSQL by `concierge-store`;
//! the agent and the server only see this trait.

use crate::actions::*;
use crate::domain::*;
use crate::events::{Event, EventPayload};
use crate::handoff::*;
use crate::knowledge::{Chunk, Document, ResolvedQuestion};
use crate::triage::Analysis;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A uniqueness or state precondition failed (e.g. an idempotency key reused with another body).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The conversation is not in the status the caller expected (someone else moved it first),
    /// or the status machine forbids the transition.
    #[error("cannot change status from {from} to {to}")]
    InvalidTransition {
        from: ConversationStatus,
        to: ConversationStatus,
    },
    /// Someone else owns the conversation (an AI reply after a person took over, a person's
    /// reply after the lease ran out, a claim lost to another agent or beyond capacity).
    #[error("not the owner: {0}")]
    NotOwner(String),
    #[error("storage backend error: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An idempotency key with a fingerprint of the request it came with: the same key with the same
/// fingerprint replays the first result; with another fingerprint it is a conflict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    pub key: String,
    pub fingerprint: String,
}

#[derive(Debug, Clone)]
pub struct NewConversation {
    pub workspace_id: WorkspaceId,
    pub customer_id: CustomerId,
    pub channel: Channel,
    pub subject: Option<String>,
    pub idempotency: Option<IdempotencyKey>,
}

#[derive(Debug, Clone)]
pub struct NewMessage {
    pub conversation_id: ConversationId,
    /// Preallocated so a streamed reply and its stored message share one id.
    pub id: MessageId,
    pub author: Author,
    pub text: String,
    pub citations: Vec<Citation>,
    pub idempotency: Option<IdempotencyKey>,
    /// Queue an AI turn for this message in the same transaction (customer messages).
    pub enqueue_turn: bool,
    pub analysis: Option<Box<Analysis>>,
    /// Events appended right after `message.created`, in the same transaction.
    pub follow_up: Vec<EventPayload>,
    /// Required for `Author::Agent`: the store appends it only while that person owns the
    /// conversation, as it appends an `Author::Ai` message only while the AI does.
    pub sender: Option<Sender>,
}

/// The result of an idempotent create: `created == false` means an earlier request with the same
/// key already did the work and this is its result.
#[derive(Debug, Clone)]
pub struct Created<T> {
    pub value: T,
    pub created: bool,
    /// Events appended by the create (empty on replay).
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub status: Option<ConversationStatus>,
    /// Return conversations strictly older than this one (cursor pagination, newest first).
    pub before: Option<ConversationId>,
    pub limit: u32,
}

/// A queued AI turn: answer `message_id` in `conversation_id`.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    pub id: i64,
    pub conversation_id: ConversationId,
    pub message_id: MessageId,
    pub attempts: i32,
}

/// A model trained for one workspace (e.g. the intent classifier), serialized by its owner.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    pub kind: String,
    /// Fingerprint of what it was trained from; a changed configuration means a retrain.
    pub fingerprint: String,
    pub data: serde_json::Value,
    pub trained_at: DateTime<Utc>,
}

/// Summary figures for readiness and the knowledge API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KnowledgeStats {
    pub documents: u64,
    pub chunks: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip for readiness checks.
    async fn ping(&self) -> StoreResult<()>;
    /// `sqlite` or `postgres`.
    fn backend_name(&self) -> &'static str;

    // --- workspaces and keys
    /// Returns the workspace with this slug, creating it when missing.
    async fn ensure_workspace(
        &self,
        slug: &str,
        name: &str,
        public_chat: bool,
    ) -> StoreResult<Workspace>;
    async fn workspace_by_slug(&self, slug: &str) -> StoreResult<Option<Workspace>>;
    async fn workspace(&self, id: WorkspaceId) -> StoreResult<Option<Workspace>>;
    async fn list_workspaces(&self) -> StoreResult<Vec<Workspace>>;
    async fn insert_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    async fn api_key_by_prefix(&self, prefix: &str) -> StoreResult<Option<ApiKey>>;
    async fn list_api_keys(&self, workspace: WorkspaceId) -> StoreResult<Vec<ApiKey>>;
    /// A random secret generated once per store and shared by every replica (signs tokens).
    async fn signing_secret(&self) -> StoreResult<Vec<u8>>;

    // --- customers and their data
    /// Finds the customer with this identity or creates it with the given profile.
    /// An existing customer's profile fields are updated when the new value is present;
    /// `profile.id` and `profile.workspace_id` are ignored (ids are assigned by the store).
    async fn upsert_customer(
        &self,
        workspace: WorkspaceId,
        identity: &CustomerIdentity,
        profile: &Customer,
    ) -> StoreResult<Customer>;
    async fn customer(&self, id: CustomerId) -> StoreResult<Option<Customer>>;
    /// The customers among `ids` that exist (one query per few hundred ids).
    async fn customers(
        &self,
        ids: &[CustomerId],
    ) -> StoreResult<std::collections::HashMap<CustomerId, Customer>>;
    /// The workspace's customer known by `external_id` on any channel (the first by channel
    /// name when several channels share it).
    async fn customer_by_external_id(
        &self,
        workspace: WorkspaceId,
        external_id: &str,
    ) -> StoreResult<Option<Customer>>;
    async fn upsert_order(&self, order: &Order) -> StoreResult<()>;
    async fn orders_for_customer(&self, customer: CustomerId) -> StoreResult<Vec<Order>>;

    // --- conversations, messages, events
    async fn create_conversation(&self, new: NewConversation)
    -> StoreResult<Created<Conversation>>;
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;
    /// The conversation created with this idempotency key in the workspace, with the request
    /// fingerprint it was created with.
    async fn find_conversation_by_idempotency_key(
        &self,
        workspace: WorkspaceId,
        key: &str,
    ) -> StoreResult<Option<(Conversation, Option<String>)>>;
    async fn list_conversations(
        &self,
        workspace: WorkspaceId,
        filter: &ConversationFilter,
    ) -> StoreResult<Vec<Conversation>>;
    /// Moves the conversation to `to` if it is in `from` and the status machine allows it, and
    /// records the change as an event, atomically.
    async fn change_status(
        &self,
        id: ConversationId,
        from: ConversationStatus,
        to: ConversationStatus,
        reason: &str,
    ) -> StoreResult<(Conversation, Event)>;
    /// Stores a message, its `message.created` event and, when asked, its AI turn, atomically.
    async fn append_message(&self, new: NewMessage) -> StoreResult<Created<Message>>;
    async fn messages(&self, conversation: ConversationId) -> StoreResult<Vec<Message>>;
    async fn message(&self, id: MessageId) -> StoreResult<Option<Message>>;
    async fn append_event(
        &self,
        conversation: ConversationId,
        payload: EventPayload,
    ) -> StoreResult<Event>;
    /// The conversation's last `limit` events, oldest first.
    async fn latest_events(
        &self,
        conversation: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;
    /// Events with `seq > after`, oldest first.
    async fn events_after(
        &self,
        conversation: ConversationId,
        after: i64,
        limit: u32,
    ) -> StoreResult<Vec<Event>>;

    // --- the AI turn queue
    /// Claims the oldest queued turn whose conversation has no turn in progress; a claimed turn
    /// whose lease ran out (crashed worker) is claimable again.
    async fn claim_turn(&self, lease_until: DateTime<Utc>) -> StoreResult<Option<Turn>>;
    async fn finish_turn(&self, id: i64) -> StoreResult<()>;
    /// Puts the turn back in the queue, or marks it failed after too many attempts.
    async fn fail_turn(&self, id: i64, error: &str, max_attempts: i32) -> StoreResult<()>;

    // --- knowledge documents (the index is derived from these)
    async fn documents(&self, workspace: WorkspaceId, source: &str) -> StoreResult<Vec<Document>>;
    /// Every document of the workspace, from every source, by title.
    async fn workspace_documents(&self, workspace: WorkspaceId) -> StoreResult<Vec<Document>>;
    /// One document's chunks in order (empty for an unknown document).
    async fn document_chunks(&self, id: DocumentId) -> StoreResult<Vec<(Document, Chunk)>>;
    /// Inserts or replaces a document and all its chunks.
    async fn put_document(&self, doc: &Document, chunks: &[Chunk]) -> StoreResult<()>;
    async fn delete_document(&self, id: DocumentId) -> StoreResult<()>;
    /// Every chunk of every document, for rebuilding the search index.
    async fn all_chunks(&self) -> StoreResult<Vec<(Document, Chunk)>>;
    async fn knowledge_stats(&self, workspace: Option<WorkspaceId>) -> StoreResult<KnowledgeStats>;

    // --- resolved questions (past questions with the documents that answered them)
    /// Inserts or replaces (by workspace and key).
    async fn put_resolved_question(&self, question: &ResolvedQuestion) -> StoreResult<()>;
    /// Every resolved question of the workspace, by key.
    async fn resolved_questions(
        &self,
        workspace: WorkspaceId,
    ) -> StoreResult<Vec<ResolvedQuestion>>;
    /// How many resolved questions the workspace has, and an order-independent checksum of their
    /// write times and sizes: any write or delete changes it (whatever the writer's clock), which
    /// tells a replica to rebuild its model.
    async fn resolved_questions_version(&self, workspace: WorkspaceId) -> StoreResult<(u64, i64)>;
    /// Returns whether it existed.
    async fn delete_resolved_question(
        &self,
        workspace: WorkspaceId,
        key: &str,
    ) -> StoreResult<bool>;

    // --- embedding cache: vectors keyed by the embedding model and a hash of the embedded text
    /// The cached vectors among `hashes` for `model` (missing ones are absent from the map).
    async fn embeddings(
        &self,
        model: &str,
        hashes: &[String],
    ) -> StoreResult<std::collections::HashMap<String, Vec<f32>>>;
    async fn put_embeddings(&self, model: &str, vectors: &[(String, Vec<f32>)]) -> StoreResult<()>;

    // --- background tasks
    async fn create_task(
        &self,
        workspace: WorkspaceId,
        kind: &str,
        params: &serde_json::Value,
    ) -> StoreResult<Task>;
    async fn task(&self, id: TaskId) -> StoreResult<Option<Task>>;
    /// Claims the oldest queued task, or a running one whose lease ran out.
    async fn claim_task(&self, lease_until: DateTime<Utc>) -> StoreResult<Option<Task>>;
    /// Records progress and extends the lease.
    async fn task_progress(
        &self,
        id: TaskId,
        done: u64,
        total: u64,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn finish_task(&self, id: TaskId, result: &serde_json::Value) -> StoreResult<()>;

    // --- workspace settings (intents, routing policy) and the models trained from them
    /// Replaces a named setting of the workspace.
    async fn put_setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
        value: &serde_json::Value,
    ) -> StoreResult<()>;
    async fn setting(
        &self,
        workspace: WorkspaceId,
        name: &str,
    ) -> StoreResult<Option<serde_json::Value>>;
    /// Replaces the workspace's model of `kind`, trained from the settings with `fingerprint`.
    async fn put_model(&self, workspace: WorkspaceId, model: &StoredModel) -> StoreResult<()>;
    async fn model(&self, workspace: WorkspaceId, kind: &str) -> StoreResult<Option<StoredModel>>;
    /// The fingerprint of the stored model of `kind`, without loading it.
    async fn model_fingerprint(
        &self,
        workspace: WorkspaceId,
        kind: &str,
    ) -> StoreResult<Option<String>>;
    /// Queues the task again, or marks it failed after `max_attempts`.
    async fn fail_task(&self, id: TaskId, error: &str, max_attempts: i32) -> StoreResult<()>;

    // Agent: actions, tickets, run state.
    async fn order_by_number(
        &self,
        workspace: WorkspaceId,
        number: &str,
    ) -> StoreResult<Option<Order>>;
    /// Applies a write and records it under its key, atomically. A key seen before replays the
    /// first outcome (`replayed`); the same key with other arguments is a `Conflict`, and so is an
    /// `UpdateOrder` whose expected status no longer holds.
    async fn apply_action(&self, write: ActionWrite) -> StoreResult<Applied>;
    /// The writes made in a conversation, oldest first (the audit trail).
    async fn actions_for_conversation(
        &self,
        conversation: ConversationId,
    ) -> StoreResult<Vec<ActionRecord>>;
    async fn tickets_for_customer(&self, customer: CustomerId) -> StoreResult<Vec<Ticket>>;
    async fn ticket_by_number(
        &self,
        workspace: WorkspaceId,
        number: &str,
    ) -> StoreResult<Option<Ticket>>;
    /// The agent's paused run in a conversation (a procedure waiting for the customer).
    async fn agent_state(
        &self,
        conversation: ConversationId,
    ) -> StoreResult<Option<serde_json::Value>>;
    /// Replaces (or with `None` clears) the paused run.
    async fn put_agent_state(
        &self,
        conversation: ConversationId,
        state: Option<&serde_json::Value>,
    ) -> StoreResult<()>;

    // --- The human side (accounts, sessions, ownership, handoffs, outcomes) ---
    /// Fails with `Conflict` when the email is taken in the workspace.
    async fn create_agent(&self, agent: &AgentAccount) -> StoreResult<()>;
    /// Replaces name, role, password hash, teams, skills, capacity and availability.
    async fn update_agent(&self, agent: &AgentAccount) -> StoreResult<()>;
    async fn agent(&self, id: AgentId) -> StoreResult<Option<AgentAccount>>;
    async fn agent_by_email(
        &self,
        workspace: WorkspaceId,
        email: &str,
    ) -> StoreResult<Option<AgentAccount>>;
    async fn agents(&self, workspace: WorkspaceId) -> StoreResult<Vec<AgentAccount>>;
    /// Records that the agent is active now (console heartbeat) and renews the leases of the
    /// conversations they own to `lease_until`; returns how many leases were renewed.
    async fn touch_agent(
        &self,
        id: AgentId,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> StoreResult<u64>;
    async fn create_session(&self, session: &AgentSession) -> StoreResult<()>;
    async fn session_by_prefix(&self, prefix: &str) -> StoreResult<Option<AgentSession>>;
    async fn delete_session(&self, prefix: &str) -> StoreResult<()>;
    /// Applies a compare-and-set change of owner (see [`Transition`]).
    async fn transition(&self, t: Transition) -> StoreResult<(Conversation, Vec<Event>)>;
    /// Conversations owned by a person whose lease ended before `now`.
    async fn expired_leases(&self, now: DateTime<Utc>) -> StoreResult<Vec<Conversation>>;
    /// The workspace's conversations waiting for or owned by a person.
    async fn human_queue(&self, workspace: WorkspaceId) -> StoreResult<Vec<Conversation>>;
    /// A cheap fingerprint of the human queue (how many, latest change, total events): it
    /// changes whenever a queued conversation changes, enters or leaves the queue.
    async fn human_queue_version(&self, workspace: WorkspaceId) -> StoreResult<(i64, i64, i64)>;
    /// Stores a handoff record; a record with the same conversation and creation time is
    /// replaced (e.g. when the person hands back).
    async fn put_handoff(&self, handoff: &Handoff) -> StoreResult<()>;
    /// The latest handoff of a conversation.
    async fn handoff(&self, conversation: ConversationId) -> StoreResult<Option<Handoff>>;
    /// The latest handoff of each of `conversations` that has one (one query per few hundred).
    async fn latest_handoffs(
        &self,
        conversations: &[ConversationId],
    ) -> StoreResult<std::collections::HashMap<ConversationId, Handoff>>;
    /// Recent handoffs of the workspace with the person who resolved the conversation, newest
    /// first (for routing by similar past conversations).
    async fn resolved_handoffs(
        &self,
        workspace: WorkspaceId,
        limit: u32,
    ) -> StoreResult<Vec<(Handoff, AgentId)>>;
    /// Seconds between entering a queue and being claimed, for the team's recent claims.
    async fn queue_waits(
        &self,
        workspace: WorkspaceId,
        team: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<f64>>;
    /// Stores the customer's rating and appends `conversation.rated`.
    async fn rate(&self, conversation: ConversationId, rating: u8) -> StoreResult<Event>;
    /// Outcome facts of the workspace's conversations created in `[from, to)`.
    async fn outcome_facts(
        &self,
        workspace: WorkspaceId,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> StoreResult<Vec<OutcomeFacts>>;
}
