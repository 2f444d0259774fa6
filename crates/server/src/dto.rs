//! The wire format of API v1. Domain types are converted by hand, so a change in the domain
//! never silently changes the public contract.

use chrono::{DateTime, Utc};
use concierge_core as core;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    AiActive,
    PendingHuman,
    HumanActive,
    Resolved,
    Closed,
}

impl From<core::ConversationStatus> for Status {
    fn from(s: core::ConversationStatus) -> Self {
        match s {
            core::ConversationStatus::AiActive => Status::AiActive,
            core::ConversationStatus::PendingHuman => Status::PendingHuman,
            core::ConversationStatus::HumanActive => Status::HumanActive,
            core::ConversationStatus::Resolved => Status::Resolved,
            core::ConversationStatus::Closed => Status::Closed,
        }
    }
}

impl From<Status> for core::ConversationStatus {
    fn from(s: Status) -> Self {
        match s {
            Status::AiActive => core::ConversationStatus::AiActive,
            Status::PendingHuman => core::ConversationStatus::PendingHuman,
            Status::HumanActive => core::ConversationStatus::HumanActive,
            Status::Resolved => core::ConversationStatus::Resolved,
            Status::Closed => core::ConversationStatus::Closed,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ChannelDto {
    Web,
    Api,
    Slack,
    Email,
}

impl From<ChannelDto> for core::Channel {
    fn from(c: ChannelDto) -> Self {
        match c {
            ChannelDto::Web => core::Channel::Web,
            ChannelDto::Api => core::Channel::Api,
            ChannelDto::Slack => core::Channel::Slack,
            ChannelDto::Email => core::Channel::Email,
        }
    }
}

impl From<core::Channel> for ChannelDto {
    fn from(c: core::Channel) -> Self {
        match c {
            core::Channel::Web => ChannelDto::Web,
            core::Channel::Api => ChannelDto::Api,
            core::Channel::Slack => ChannelDto::Slack,
            core::Channel::Email => ChannelDto::Email,
        }
    }
}

/// A known customer, given by a server-side integration holding a workspace API key.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// The customer's id in your systems (unique per channel).
    pub external_id: String,
    pub name: Option<String>,
    pub email: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateConversation {
    /// Workspace slug. Anonymous callers default to the server's public workspace; API-key
    /// callers to the key's workspace.
    pub workspace: Option<String>,
    /// Defaults to `web` for anonymous callers and `api` otherwise.
    pub channel: Option<ChannelDto>,
    /// Optional subject line (at most 200 characters).
    pub subject: Option<String>,
    /// Only with a workspace API key: who the customer is. Anonymous callers always get a new,
    /// anonymous customer.
    pub customer: Option<CustomerInput>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Conversation {
    pub id: Uuid,
    pub workspace_id: Uuid,
    pub customer_id: Uuid,
    pub channel: ChannelDto,
    pub status: Status,
    pub subject: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The queue (team) it is in or was last in.
    pub team: Option<String>,
    pub priority: PriorityDto,
    /// Who owns it now: the AI, a queue or a named person.
    pub owner: OwnerDto,
    /// The person's lease (`human_active`): past it, the conversation returns to its queue.
    pub lease_until: Option<DateTime<Utc>>,
    /// When it last entered a queue.
    pub queued_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum PriorityDto {
    Low,
    Normal,
    High,
    Urgent,
}

impl From<core::Priority> for PriorityDto {
    fn from(p: core::Priority) -> Self {
        match p {
            core::Priority::Low => PriorityDto::Low,
            core::Priority::Normal => PriorityDto::Normal,
            core::Priority::High => PriorityDto::High,
            core::Priority::Urgent => PriorityDto::Urgent,
        }
    }
}

/// The one owner of a conversation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OwnerDto {
    /// `ai`, `queue` or `agent`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_id: Option<Uuid>,
}

/// A person of the support team as the customer and colleagues see them.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SenderDto {
    pub agent_id: Uuid,
    pub name: String,
}

impl From<&core::Sender> for SenderDto {
    fn from(s: &core::Sender) -> Self {
        Self {
            agent_id: s.agent.0,
            name: s.name.clone(),
        }
    }
}

impl From<&core::Conversation> for Conversation {
    fn from(c: &core::Conversation) -> Self {
        Self {
            id: c.id.0,
            workspace_id: c.workspace_id.0,
            customer_id: c.customer_id.0,
            channel: c.channel.into(),
            status: c.status.into(),
            subject: c.subject.clone(),
            created_at: c.created_at,
            updated_at: c.updated_at,
            team: c.assignment.team.clone(),
            priority: c.assignment.priority.into(),
            owner: match c.owner() {
                core::Owner::Ai => OwnerDto {
                    kind: "ai".into(),
                    team: None,
                    agent_id: None,
                },
                core::Owner::Queue { team } => OwnerDto {
                    kind: "queue".into(),
                    team,
                    agent_id: None,
                },
                core::Owner::Agent { agent } => OwnerDto {
                    kind: "agent".into(),
                    team: None,
                    agent_id: Some(agent.0),
                },
            },
            lease_until: c.assignment.lease_until,
            queued_at: c.assignment.queued_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationCreated {
    pub conversation: Conversation,
    /// Bearer token for this conversation only. Keep it secret: it is the customer's key.
    pub token: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ConversationPage {
    pub items: Vec<Conversation>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only conversations in this status.
    pub status: Option<Status>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u32>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthorDto {
    Customer,
    Ai,
    Agent,
    System,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CitationDto {
    /// The marker number used in the text, `[n]`.
    pub n: u32,
    pub title: String,
    pub url: Option<String>,
    pub document_id: Uuid,
    pub chunk_id: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub author: AuthorDto,
    pub text: String,
    pub citations: Vec<CitationDto>,
    pub created_at: DateTime<Utc>,
    /// Messages by a person: who wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender: Option<SenderDto>,
    /// Customer messages, for staff only: triage and routing decision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<crate::understanding::AnalysisDto>,
}

impl Message {
    /// The message with its triage and route (for workspace staff).
    pub fn with_analysis(m: &core::Message) -> Self {
        Self {
            analysis: m.analysis.as_deref().map(Into::into),
            ..m.into()
        }
    }
}

impl From<&core::Message> for Message {
    fn from(m: &core::Message) -> Self {
        Self {
            id: m.id.0,
            conversation_id: m.conversation_id.0,
            author: match m.author {
                core::Author::Customer => AuthorDto::Customer,
                core::Author::Ai => AuthorDto::Ai,
                core::Author::Agent => AuthorDto::Agent,
                core::Author::System => AuthorDto::System,
            },
            text: m.text.clone(),
            citations: m
                .citations
                .iter()
                .map(|c| CitationDto {
                    n: c.n,
                    title: c.title.clone(),
                    url: c.url.clone(),
                    document_id: c.document_id.0,
                    chunk_id: c.chunk_id.clone(),
                })
                .collect(),
            created_at: m.created_at,
            sender: m.sender.as_ref().map(Into::into),
            analysis: None,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostMessage {
    /// The customer's message, 1–4000 characters.
    pub text: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageAccepted {
    pub message: Message,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessageList {
    pub items: Vec<Message>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HandoffRequest {
    /// Why a person is wanted (free text, at most 200 characters).
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RetrievedDto {
    pub chunk_id: String,
    pub document_id: String,
    pub score: f32,
}

/// One event of the conversation's log. `type` tells which fields are present.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDto {
    pub seq: i64,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<Status>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub in_reply_to: Option<Uuid>,
    /// `grounded`, `no_answer`, `notice` or `procedure` for `reply.sent`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hits: Option<Vec<RetrievedDto>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// `status.changed` to `human_active`: the new owner; `note.added`, `handed_back`: the
    /// person.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub person: Option<SenderDto>,
    /// `status.changed` to `pending_human`: the queue.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// `note.added`: the internal note; `handed_back`: the note for the AI.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// `queue.position`: place in the queue (1 = next) and the usual wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_wait_seconds: Option<u64>,
    /// `conversation.rated`: 1 to 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<u8>,
    /// `handoff.requested`: the record (reason, summary, team, priority, routing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handoff: Option<crate::console::HandoffDto>,
    /// `message.triaged`: what was understood of the customer message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub triage: Option<crate::understanding::TriageDto>,
    /// `routing.decided`: where the message was sent and the rules that matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub route: Option<crate::understanding::RouteDto>,
    /// `agent.step`: the procedure (or planner) that took the step.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// `agent.step`: the step's position in the turn, from 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u32>,
    /// `agent.step`: what the step did (`kind`: started, tool_call, tool_refused, slot_filled,
    /// asked_for, awaiting_confirmation, confirmation, branch, handoff, finished) with its fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub action: Option<serde_json::Value>,
}

impl From<&core::Event> for EventDto {
    fn from(e: &core::Event) -> Self {
        let mut dto = EventDto {
            seq: e.seq,
            kind: e.payload.type_name().to_string(),
            created_at: e.created_at,
            message: None,
            from: None,
            to: None,
            reason: None,
            message_id: None,
            in_reply_to: None,
            reply_kind: None,
            query: None,
            hits: None,
            evidence: None,
            threshold: None,
            latency_ms: None,
            status: None,
            person: None,
            team: None,
            note: None,
            position: None,
            expected_wait_seconds: None,
            rating: None,
            handoff: None,
            triage: None,
            route: None,
            run: None,
            step: None,
            action: None,
        };
        match &e.payload {
            core::EventPayload::MessageCreated { message } => dto.message = Some(message.into()),
            core::EventPayload::RetrievalDone {
                message_id,
                query,
                hits,
                evidence,
                threshold,
                latency_ms,
            } => {
                dto.message_id = Some(message_id.0);
                dto.query = Some(query.clone());
                dto.hits = Some(
                    hits.iter()
                        .map(|h| RetrievedDto {
                            chunk_id: h.chunk_id.clone(),
                            document_id: h.document_id.clone(),
                            score: h.score,
                        })
                        .collect(),
                );
                dto.evidence = Some(*evidence);
                dto.threshold = Some(*threshold);
                dto.latency_ms = Some(*latency_ms);
            }
            core::EventPayload::ReplySent {
                message_id,
                in_reply_to,
                kind,
                reason,
            } => {
                dto.message_id = Some(message_id.0);
                dto.in_reply_to = Some(in_reply_to.0);
                dto.reply_kind = Some(kind.as_str().to_string());
                dto.reason = Some(reason.clone());
            }
            core::EventPayload::StatusChanged {
                from,
                to,
                reason,
                owner,
                team,
            } => {
                dto.from = Some((*from).into());
                dto.to = Some((*to).into());
                dto.reason = Some(reason.clone());
                dto.person = owner.as_ref().map(Into::into);
                dto.team = team.clone();
            }
            core::EventPayload::HandoffRequested { handoff } => {
                dto.handoff = Some(crate::console::HandoffDto::new(handoff, &[]));
            }
            core::EventPayload::QueuePosition {
                position,
                expected_wait_seconds,
            } => {
                dto.position = Some(*position);
                dto.expected_wait_seconds = *expected_wait_seconds;
            }
            core::EventPayload::NoteAdded { author, text } => {
                dto.person = Some(author.into());
                dto.note = Some(text.clone());
            }
            core::EventPayload::HandedBack { author, note } => {
                dto.person = Some(author.into());
                dto.note = note.clone();
            }
            core::EventPayload::Rated { rating } => dto.rating = Some(*rating),
            core::EventPayload::AiSilenced { message_id, status } => {
                dto.message_id = Some(message_id.0);
                dto.status = Some((*status).into());
            }
            core::EventPayload::MessageTriaged { message_id, triage } => {
                dto.message_id = Some(message_id.0);
                dto.triage = Some(triage.as_ref().into());
            }
            core::EventPayload::RoutingDecided { message_id, route } => {
                dto.message_id = Some(message_id.0);
                dto.route = Some(route.into());
            }
            core::EventPayload::AgentStep {
                message_id,
                run,
                step,
                action,
            } => {
                dto.message_id = Some(message_id.0);
                dto.run = Some(run.clone());
                dto.step = Some(*step);
                dto.action = serde_json::to_value(action.as_ref()).ok();
            }
        }
        dto
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventList {
    pub items: Vec<EventDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Return events with a sequence number above this (the SSE stream also honours `Last-Event-ID`).
    pub after: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Readiness {
    pub status: String,
    pub store: String,
    pub index: String,
    pub indexed_chunks: u64,
    pub stored_chunks: u64,
}
