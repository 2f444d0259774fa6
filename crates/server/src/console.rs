//! The human side over HTTP: console sign-in, the queue (JSON and a live stream), the case file
//! of a conversation, the actions of a person (claim, reply, note, hand back, transfer,
//! release, resolve), teams and accounts, the customer's resolve-and-rate, and the outcome
//! report.

use crate::AppState;
use crate::api::{MAX_TEXT_CHARS, authorized_conversation, principal, replayed};
use crate::auth::{self, Principal};
use crate::dto::{CitationDto, Conversation, Message, PriorityDto, SenderDto};
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::extract::{ApiJson, idempotency_key, require_json_content_type};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use concierge_agent::{CaseFile, QueueItem};
use concierge_core as core;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

const TAG: &str = "console";
/// The queue stream re-reads the queue this often (other replicas' changes included).
const QUEUE_POLL: Duration = Duration::from_secs(1);
/// Customer silence after which an unresolved conversation counts as abandoned.
const ABANDON_AFTER_HOURS: i64 = 24;

// ---------- DTOs ----------

#[derive(Debug, Serialize, ToSchema)]
pub struct SkillsDto {
    pub intents: Vec<String>,
    pub tags: Vec<String>,
    pub languages: Vec<String>,
}

impl From<&core::Skills> for SkillsDto {
    fn from(s: &core::Skills) -> Self {
        Self {
            intents: s.intents.clone(),
            tags: s.tags.clone(),
            languages: s.languages.clone(),
        }
    }
}

/// A person's account (never with the password hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct AgentDto {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    /// `agent` or `admin`.
    pub role: String,
    pub teams: Vec<String>,
    pub skills: SkillsDto,
    pub capacity: u32,
    pub available: bool,
    pub last_seen_at: Option<DateTime<Utc>>,
}

impl From<&core::AgentAccount> for AgentDto {
    fn from(a: &core::AgentAccount) -> Self {
        Self {
            id: a.id.0,
            email: a.email.clone(),
            name: a.name.clone(),
            role: a.role.as_str().into(),
            teams: a.teams.clone(),
            skills: (&a.skills).into(),
            capacity: a.capacity,
            available: a.available,
            last_seen_at: a.last_seen_at,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Workspace slug.
    pub workspace: String,
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionDto {
    /// `cs_…`: send as `Authorization: Bearer <token>`. Its only copy.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub agent: AgentDto,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// Takes new conversations (routing suggests only available people).
    pub available: Option<bool>,
    /// `false` when the person has been idle at the console: their leases are not renewed (and
    /// run out, returning the conversations to their queues) and routing stops suggesting them.
    pub active: Option<bool>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatDto {
    /// Leases renewed.
    pub renewed: u64,
    pub agent: AgentDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceDto {
    pub document_id: String,
    pub title: String,
    pub url: Option<String>,
}

impl From<&core::SourceRef> for SourceDto {
    fn from(s: &core::SourceRef) -> Self {
        Self {
            document_id: s.document_id.clone(),
            title: s.title.clone(),
            url: s.url.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SummaryDto {
    /// The summary for the person (the model's, checked against the facts, or the facts).
    pub text: String,
    pub wants: String,
    pub tried: Vec<String>,
    pub sources: Vec<SourceDto>,
    /// Profile, recent orders and tickets.
    pub customer: Vec<String>,
    /// `extractive` or `llm:<model>`.
    pub generated_by: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentRefDto {
    pub id: Uuid,
    pub name: Option<String>,
}

/// Why a conversation went to a person, for whom, and what they should know.
#[derive(Debug, Serialize, ToSchema)]
pub struct HandoffDto {
    /// `routing_policy`, `customer`, `agent` (the AI), `human` or `api`.
    pub trigger: String,
    pub reason: String,
    pub team: Option<String>,
    pub priority: PriorityDto,
    pub suggested_agent: Option<AgentRefDto>,
    /// Why this team and person (skills, similar past conversations, load).
    pub routing: Vec<String>,
    pub summary: SummaryDto,
    pub created_at: DateTime<Utc>,
    pub handed_back: Option<HandBackDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HandBackDto {
    pub by: SenderDto,
    pub note: Option<String>,
    pub at: DateTime<Utc>,
}

impl HandoffDto {
    /// `agents` names the suggested person when known.
    pub fn new(h: &core::Handoff, agents: &[core::AgentAccount]) -> Self {
        Self {
            trigger: h.trigger.as_str().into(),
            reason: h.reason.clone(),
            team: h.team.clone(),
            priority: h.priority.into(),
            suggested_agent: h.suggested_agent.map(|id| AgentRefDto {
                id: id.0,
                name: agents.iter().find(|a| a.id == id).map(|a| a.name.clone()),
            }),
            routing: h.routing.clone(),
            summary: SummaryDto {
                text: h.summary.text.clone(),
                wants: h.summary.wants.clone(),
                tried: h.summary.tried.clone(),
                sources: h.summary.sources.iter().map(Into::into).collect(),
                customer: h.summary.customer.clone(),
                generated_by: h.summary.generated_by.clone(),
            },
            created_at: h.created_at,
            handed_back: h.handed_back.as_ref().map(|b| HandBackDto {
                by: (&b.by).into(),
                note: b.note.clone(),
                at: b.at,
            }),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerDto {
    pub id: Uuid,
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub tier: Option<String>,
}

impl From<&core::Customer> for CustomerDto {
    fn from(c: &core::Customer) -> Self {
        Self {
            id: c.id.0,
            name: c.name.clone(),
            email: c.email.clone(),
            phone: c.phone.clone(),
            tier: c.tier.clone(),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueItemDto {
    pub conversation: Conversation,
    pub customer: Option<CustomerDto>,
    pub handoff: Option<HandoffDto>,
    /// Place among the waiting conversations of its team (1 = next), while waiting.
    pub position: Option<u32>,
    pub waiting_seconds: Option<i64>,
    /// The owner's name, when a person owns it.
    pub owner_name: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct QueueDto {
    pub items: Vec<QueueItemDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct NoteDto {
    pub author: SenderDto,
    pub text: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OrderDto {
    pub number: String,
    pub status: String,
    /// Decimal amount, e.g. `129.00`.
    pub total: String,
    pub currency: String,
    pub placed_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TicketDto {
    pub number: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SuggestionDto {
    pub text: String,
    pub citations: Vec<CitationDto>,
}

/// Everything a person needs to take a conversation over.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaseFileDto {
    pub conversation: Conversation,
    /// The owner's name, when a person owns it.
    pub owner_name: Option<String>,
    pub messages: Vec<Message>,
    pub notes: Vec<NoteDto>,
    pub handoff: Option<HandoffDto>,
    pub customer: Option<CustomerDto>,
    pub orders: Vec<OrderDto>,
    pub tickets: Vec<TicketDto>,
    /// Documents the AI cited in this conversation.
    pub sources: Vec<SourceDto>,
    /// Grounded answers to the customer's last message, to send or adapt.
    pub suggestions: Vec<SuggestionDto>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextInput {
    /// 1–4000 characters.
    pub text: String,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct HandBackInput {
    /// For the AI to resume with (never shown to the customer).
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    pub team: String,
    pub note: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct ResolveInput {
    /// The customer's rating, 1 to 5 (customers only).
    pub rating: Option<u8>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamDto {
    pub name: String,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub skills: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamsDto {
    pub teams: Vec<TeamDto>,
    #[serde(default)]
    pub default_team: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    pub email: String,
    pub name: String,
    /// At least 12 characters.
    pub password: String,
    /// `agent` (default) or `admin`.
    pub role: Option<String>,
    #[serde(default)]
    pub teams: Vec<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub skills: Option<serde_json::Value>,
    /// Conversations owned at once (default 5).
    pub capacity: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AgentList {
    pub items: Vec<AgentDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeStatsDto {
    pub conversations: u64,
    pub contained: u64,
    pub resolved_after_handoff: u64,
    pub abandoned: u64,
    pub in_progress: u64,
    pub handed_off: u64,
    pub reopened: u64,
    pub containment_rate: f64,
    pub resolved_after_handoff_rate: f64,
    pub abandonment_rate: f64,
    /// Resolved and not reopened within 7 days, among the resolved.
    pub durable_resolution_rate: f64,
    pub first_response_seconds_p50: Option<f64>,
    pub first_response_seconds_p90: Option<f64>,
    pub resolution_seconds_p50: Option<f64>,
    pub resolution_seconds_p90: Option<f64>,
    pub ratings: u64,
    pub rating_mean: Option<f64>,
}

impl From<&concierge_agent::outcomes::OutcomeStats> for OutcomeStatsDto {
    fn from(s: &concierge_agent::outcomes::OutcomeStats) -> Self {
        Self {
            conversations: s.conversations,
            contained: s.contained,
            resolved_after_handoff: s.resolved_after_handoff,
            abandoned: s.abandoned,
            in_progress: s.in_progress,
            handed_off: s.handed_off,
            reopened: s.reopened,
            containment_rate: s.containment_rate,
            resolved_after_handoff_rate: s.resolved_after_handoff_rate,
            abandonment_rate: s.abandonment_rate,
            durable_resolution_rate: s.durable_resolution_rate,
            first_response_seconds_p50: s.first_response_seconds_p50,
            first_response_seconds_p90: s.first_response_seconds_p90,
            resolution_seconds_p50: s.resolution_seconds_p50,
            resolution_seconds_p90: s.resolution_seconds_p90,
            ratings: s.ratings,
            rating_mean: s.rating_mean,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OutcomeReportDto {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Hours of customer silence after which an unresolved conversation counts as abandoned.
    pub abandon_after_hours: i64,
    pub total: OutcomeStatsDto,
    pub by_intent: BTreeMap<String, OutcomeStatsDto>,
    pub by_channel: BTreeMap<String, OutcomeStatsDto>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutcomeParams {
    /// Conversations created at or after this time (RFC 3339; default 30 days ago).
    pub from: Option<DateTime<Utc>>,
    /// Conversations created before this time (default now).
    pub to: Option<DateTime<Utc>>,
}

// ---------- helpers ----------

async fn signed_in(state: &AppState, headers: &HeaderMap) -> ApiResult<core::AgentAccount> {
    let who = principal(state, headers).await?;
    Ok(who.require_agent()?.clone())
}

fn body<T: serde::de::DeserializeOwned + Default>(
    headers: &HeaderMap,
    route: &str,
    bytes: &[u8],
) -> ApiResult<T> {
    if bytes.is_empty() {
        return Ok(T::default());
    }
    require_json_content_type(headers)?;
    Ok(ApiJson::<T>::from_bytes("POST", route, bytes)?.value)
}

fn required<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    route: &str,
    bytes: &[u8],
) -> ApiResult<ApiJson<T>> {
    require_json_content_type(headers)?;
    ApiJson::<T>::from_bytes("POST", route, bytes)
}

fn text_field(text: &str, what: &str) -> ApiResult<String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("{what} must not be empty"),
        ));
    }
    if t.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("{what} is longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(t.to_string())
}

fn optional_note(note: Option<String>) -> ApiResult<Option<String>> {
    match note {
        Some(n) if !n.trim().is_empty() => Ok(Some(text_field(&n, "note")?)),
        _ => Ok(None),
    }
}

fn queue_dto(items: &[QueueItem], agents: &[core::AgentAccount]) -> QueueDto {
    let now = Utc::now();
    QueueDto {
        items: items
            .iter()
            .map(|i| QueueItemDto {
                conversation: (&i.conversation).into(),
                customer: i.customer.as_ref().map(Into::into),
                handoff: i.handoff.as_ref().map(|h| HandoffDto::new(h, agents)),
                position: i.position,
                waiting_seconds: (i.conversation.status == core::ConversationStatus::PendingHuman)
                    .then_some(i.conversation.assignment.queued_at)
                    .flatten()
                    .map(|t| (now - t).num_seconds().max(0)),
                owner_name: owner_name(&i.conversation, agents),
            })
            .collect(),
    }
}

fn owner_name(c: &core::Conversation, agents: &[core::AgentAccount]) -> Option<String> {
    match c.owner() {
        core::Owner::Agent { agent } => agents
            .iter()
            .find(|a| a.id == agent)
            .map(|a| a.name.clone()),
        _ => None,
    }
}

fn case_file_dto(f: &CaseFile, agents: &[core::AgentAccount]) -> CaseFileDto {
    CaseFileDto {
        conversation: (&f.conversation).into(),
        owner_name: owner_name(&f.conversation, agents),
        messages: f.messages.iter().map(Message::with_analysis).collect(),
        notes: f
            .notes
            .iter()
            .map(|(a, t, at)| NoteDto {
                author: a.into(),
                text: t.clone(),
                created_at: *at,
            })
            .collect(),
        handoff: f.handoff.as_ref().map(|h| HandoffDto::new(h, agents)),
        customer: f.customer.as_ref().map(Into::into),
        orders: f
            .orders
            .iter()
            .rev()
            .take(10)
            .map(|o| OrderDto {
                number: o.number.clone(),
                status: o.status.clone(),
                total: format!("{}.{:02}", o.total_cents / 100, (o.total_cents % 100).abs()),
                currency: o.currency.clone(),
                placed_at: o.placed_at,
            })
            .collect(),
        tickets: f
            .tickets
            .iter()
            .rev()
            .take(10)
            .map(|t| TicketDto {
                number: t.number.clone(),
                subject: t.subject.clone(),
                status: t.status.clone(),
                priority: t.priority.clone(),
            })
            .collect(),
        sources: f.sources.iter().map(Into::into).collect(),
        suggestions: f
            .suggestions
            .iter()
            .map(|s| SuggestionDto {
                text: s.text.clone(),
                citations: s
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
            })
            .collect(),
    }
}

/// The conversation, for a signed-in person of its workspace.
async fn console_conversation(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> ApiResult<(core::AgentAccount, core::Conversation)> {
    let (who, conversation) = authorized_conversation(state, headers, id).await?;
    Ok((who.require_agent()?.clone(), conversation))
}

// ---------- sign-in ----------

/// Signs a person in to the console; returns a session token.
#[utoipa::path(post, path = "/v1/console/session", tag = TAG, request_body = SignIn,
    responses(
        (status = 201, body = SessionDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn sign_in(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    let input = required::<SignIn>(&headers, "/v1/console/session", &bytes)?.value;
    let invalid = || {
        ApiError::new(
            ErrorCode::InvalidCredentials,
            "the workspace, email or password is wrong",
        )
    };
    let store = state.service.store.as_ref();
    let account = match store.workspace_by_slug(input.workspace.trim()).await? {
        Some(ws) => store.agent_by_email(ws.id, input.email.trim()).await?,
        None => None,
    };
    // Hash even for an unknown account, so timing does not tell which emails exist.
    let password = input.password.clone();
    let phc = account
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_else(|| DUMMY_HASH.to_string());
    let ok = tokio::task::spawn_blocking(move || auth::verify_password(&password, &phc))
        .await
        .map_err(ApiError::internal)?;
    let agent = match account {
        Some(a) if ok => a,
        _ => return Err(invalid()),
    };
    let (token, expires_at) =
        auth::open_session(store, &agent, state.config.agent.console_session_hours).await?;
    state.service.heartbeat(&agent).await?;
    let body = SessionDto {
        token,
        expires_at,
        agent: (&agent).into(),
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// An Argon2id hash of a random password nobody knows (verified against for unknown accounts).
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0wBlmBTXFBq3iDmxz7TPjhEiM5DM2CqodOM8iyiRtk8";

/// Signs out (the session token stops working).
#[utoipa::path(delete, path = "/v1/console/session", tag = TAG,
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn sign_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    signed_in(&state, &headers).await?;
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if let Some(prefix) = auth::session_prefix(token.trim()) {
        state.service.store.delete_session(prefix).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The console is alive and its person active: renews their leases, marks them online, sets
/// availability. An idle console (`active: false`) renews nothing.
#[utoipa::path(post, path = "/v1/console/heartbeat", tag = TAG, request_body = Option<Heartbeat>,
    responses(
        (status = 200, body = HeartbeatDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn heartbeat(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<HeartbeatDto>> {
    let mut agent = signed_in(&state, &headers).await?;
    let input: Heartbeat = body(&headers, "/v1/console/heartbeat", &bytes)?;
    if let Some(available) = input.available
        && available != agent.available
    {
        agent.available = available;
        state.service.store.update_agent(&agent).await?;
    }
    let renewed = if input.active == Some(false) {
        0
    } else {
        state.service.heartbeat(&agent).await?
    };
    Ok(Json(HeartbeatDto {
        renewed,
        agent: (&agent).into(),
    }))
}

// ---------- queue ----------

/// The human queue: conversations waiting for or owned by a person.
#[utoipa::path(get, path = "/v1/console/queue", tag = TAG,
    responses(
        (status = 200, body = QueueDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn queue(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<QueueDto>> {
    let ws = principal(&state, &headers).await?.require_workspace()?;
    Ok(Json(read_queue(&state, ws).await?))
}

async fn read_queue(state: &AppState, ws: core::WorkspaceId) -> ApiResult<QueueDto> {
    let items = state.service.human_queue(ws).await?;
    let agents = state.service.store.agents(ws).await?;
    Ok(queue_dto(&items, &agents))
}

/// The queue as a Server-Sent Events stream: a `queue` event with the whole queue now and
/// whenever it changes.
#[utoipa::path(get, path = "/v1/console/stream", tag = TAG,
    responses(
        (status = 200, description = "`event: queue` with the QueueDto as data", content_type = "text/event-stream"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn stream(State(state): State<Arc<AppState>>, headers: HeaderMap) -> ApiResult<Response> {
    let ws = principal(&state, &headers).await?.require_workspace()?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<SseEvent, Infallible>>(8);
    tokio::spawn(async move {
        let mut last = String::new();
        let mut version = None;
        // The whole queue is read (and compared) only when its cheap fingerprint moved, or at
        // least every 15 s (waiting times and positions of other teams' items).
        let mut full_read = tokio::time::Instant::now();
        loop {
            let now = state.service.store.human_queue_version(ws).await.ok();
            let stale = full_read.elapsed() >= Duration::from_secs(15);
            if now.is_some() && now == version && !stale {
                tokio::select! {
                    _ = tokio::time::sleep(QUEUE_POLL) => continue,
                    _ = tx.closed() => break,
                    _ = state.shutdown_signal() => break,
                }
            }
            version = now;
            full_read = tokio::time::Instant::now();
            match read_queue(&state, ws).await {
                Ok(q) => {
                    // Waiting times tick every second; compare without them.
                    let fingerprint = serde_json::to_string(
                        &q.items
                            .iter()
                            .map(|i| {
                                (
                                    i.conversation.id,
                                    i.conversation.updated_at,
                                    i.position,
                                    i.owner_name.clone(),
                                )
                            })
                            .collect::<Vec<_>>(),
                    )
                    .unwrap_or_default();
                    if fingerprint != last {
                        last = fingerprint;
                        let event = SseEvent::default().event("queue").json_data(&q);
                        if let Ok(event) = event
                            && tx.send(Ok(event)).await.is_err()
                        {
                            break;
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e.detail, "queue stream cannot read the queue"),
            }
            tokio::select! {
                _ = tokio::time::sleep(QUEUE_POLL) => {}
                _ = tx.closed() => break,
                _ = state.shutdown_signal() => break,
            }
        }
    });
    let mut response = Sse::new(tokio_stream::wrappers::ReceiverStream::new(rx))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(response)
}

// ---------- the conversation ----------

/// The case file: transcript, internal notes, handoff summary, customer context, cited sources
/// and suggested replies.
#[utoipa::path(get, path = "/v1/console/conversations/{id}", tag = TAG,
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = CaseFileDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn case_file(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<CaseFileDto>> {
    let (who, conversation) = authorized_conversation(&state, &headers, &id).await?;
    if !who.is_staff() {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the case file is for the support team",
        ));
    }
    let file = state.service.case_file(&conversation).await?;
    let agents = state
        .service
        .store
        .agents(conversation.workspace_id)
        .await?;
    Ok(Json(case_file_dto(&file, &agents)))
}

/// Takes the conversation (from its queue, or straight from the AI). 409 `not_owner` when
/// someone else was first or the person is at capacity.
#[utoipa::path(post, path = "/v1/console/conversations/{id}/claim", tag = TAG,
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn claim(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    let (agent, conversation) = console_conversation(&state, &headers, &id).await?;
    let updated = state.service.claim(conversation.id, &agent).await?;
    Ok(Json((&updated).into()))
}

/// The owner's reply to the customer (shown in their chat at once).
#[utoipa::path(post, path = "/v1/console/conversations/{id}/reply", tag = TAG,
    params(("id" = Uuid, Path),
           ("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key posts once")),
    request_body = TextInput,
    responses(
        (status = 201, body = Message),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn reply(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    let (agent, conversation) = console_conversation(&state, &headers, &id).await?;
    let key = idempotency_key(&headers)?;
    let input = required::<TextInput>(&headers, "/v1/console/conversations/{id}/reply", &bytes)?;
    let text = text_field(&input.value.text, "text")?;
    let idempotency = key.map(|k| core::IdempotencyKey {
        key: k,
        fingerprint: input.fingerprint,
    });
    let created = state
        .service
        .agent_reply(&conversation, &agent, text, idempotency)
        .await?;
    let message: Message = (&created.value).into();
    Ok(replayed(
        (StatusCode::CREATED, Json(message)).into_response(),
        !created.created,
    ))
}

/// An internal note: the team sees it, the customer never does.
#[utoipa::path(post, path = "/v1/console/conversations/{id}/notes", tag = TAG,
    params(("id" = Uuid, Path)), request_body = TextInput,
    responses(
        (status = 201, body = NoteDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn note(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    let (agent, conversation) = console_conversation(&state, &headers, &id).await?;
    let input = required::<TextInput>(&headers, "/v1/console/conversations/{id}/notes", &bytes)?;
    let text = text_field(&input.value.text, "text")?;
    let event = state
        .service
        .add_note(&conversation, &agent, text.clone())
        .await?;
    let body = NoteDto {
        author: SenderDto {
            agent_id: agent.id.0,
            name: agent.name.clone(),
        },
        text,
        created_at: event.created_at,
    };
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The owner gives the conversation back to the AI, with an optional note it resumes with.
#[utoipa::path(post, path = "/v1/console/conversations/{id}/hand-back", tag = TAG,
    params(("id" = Uuid, Path)), request_body = Option<HandBackInput>,
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn hand_back(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Conversation>> {
    let (agent, conversation) = console_conversation(&state, &headers, &id).await?;
    let input: HandBackInput = body(&headers, "/v1/console/conversations/{id}/hand-back", &bytes)?;
    let note = optional_note(input.note)?;
    let updated = state
        .service
        .hand_back(conversation.id, &agent, note)
        .await?;
    Ok(Json((&updated).into()))
}

/// Moves the conversation to another team's queue.
#[utoipa::path(post, path = "/v1/console/conversations/{id}/transfer", tag = TAG,
    params(("id" = Uuid, Path)), request_body = TransferInput,
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn transfer(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Conversation>> {
    let (agent, conversation) = console_conversation(&state, &headers, &id).await?;
    let input =
        required::<TransferInput>(&headers, "/v1/console/conversations/{id}/transfer", &bytes)?
            .value;
    let note = optional_note(input.note)?;
    let updated = state
        .service
        .transfer(conversation.id, &agent, input.team.trim(), note)
        .await?;
    Ok(Json((&updated).into()))
}

/// The owner puts the conversation back in its queue.
#[utoipa::path(post, path = "/v1/console/conversations/{id}/release", tag = TAG,
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn release(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    let (agent, conversation) = console_conversation(&state, &headers, &id).await?;
    let updated = state.service.release(conversation.id, &agent).await?;
    Ok(Json((&updated).into()))
}

/// The owner marks the conversation solved.
#[utoipa::path(post, path = "/v1/console/conversations/{id}/resolve", tag = TAG,
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = [])))]
pub async fn console_resolve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    let (agent, conversation) = console_conversation(&state, &headers, &id).await?;
    let updated = state
        .service
        .resolve(
            conversation.id,
            Some(&agent),
            &format!("resolved by {}", agent.name),
        )
        .await?;
    Ok(Json((&updated).into()))
}

/// Ends the conversation as solved: the customer (with an optional 1–5 rating) or staff.
#[utoipa::path(post, path = "/v1/conversations/{id}/resolve", tag = "conversations",
    params(("id" = Uuid, Path)), request_body = Option<ResolveInput>,
    responses(
        (status = 200, body = Conversation),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("conversation_token" = []), ("api_key" = [])))]
pub async fn resolve(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<Conversation>> {
    let (who, conversation) = authorized_conversation(&state, &headers, &id).await?;
    let input: ResolveInput = body(&headers, "/v1/conversations/{id}/resolve", &bytes)?;
    if input.rating.is_some() && who.is_staff() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "only the customer rates a conversation",
        ));
    }
    if let Some(r) = input.rating
        && !(1..=5).contains(&r)
    {
        return Err(ApiError::new(ErrorCode::InvalidBody, "rating is 1 to 5"));
    }
    let reason = match &who {
        Principal::Conversation(_) => "the customer marked it solved",
        _ => "resolved via API",
    };
    let updated = state
        .service
        .resolve(conversation.id, who.agent(), reason)
        .await?;
    // A rating of 1 or 2 says the answer did not help: nothing to learn.
    if matches!(who, Principal::Conversation(_)) && input.rating.is_none_or(|r| r > 2) {
        // The customer confirmed: an answer the AI gave alone becomes a resolved question. A
        // failure here must not undo the resolution the customer asked for.
        if let Err(e) = state.service.learn_from_resolution(conversation.id).await {
            tracing::warn!(error = %e, conversation = %conversation.id, "cannot learn from the resolution");
        }
    }
    if let Some(r) = input.rating {
        state.service.rate(conversation.id, r).await?;
    }
    Ok(Json((&updated).into()))
}

// ---------- teams, accounts, outcomes ----------

/// The workspace's teams (with skills) and its default team.
#[utoipa::path(get, path = "/v1/teams", tag = TAG,
    responses(
        (status = 200, body = TeamsDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn get_teams(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<TeamsDto>> {
    let ws = principal(&state, &headers).await?.require_workspace()?;
    let teams = state.service.teams(ws).await?;
    Ok(Json(teams_dto(&teams)))
}

fn teams_dto(t: &core::TeamSettings) -> TeamsDto {
    TeamsDto {
        teams: t
            .teams
            .iter()
            .map(|t| TeamDto {
                name: t.name.clone(),
                title: t.title.clone(),
                skills: serde_json::to_value(&t.skills).unwrap_or_default(),
            })
            .collect(),
        default_team: t.default_team.clone(),
    }
}

/// Replaces the workspace's teams (admins and API keys).
#[utoipa::path(put, path = "/v1/teams", tag = TAG, request_body = TeamsDto,
    responses(
        (status = 200, body = TeamsDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn put_teams(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Json<TeamsDto>> {
    let ws = principal(&state, &headers).await?.require_admin()?;
    require_json_content_type(&headers)?;
    let teams: core::TeamSettings =
        ApiJson::<core::TeamSettings>::from_bytes("PUT", "/v1/teams", &bytes)?.value;
    state.service.put_teams(ws, &teams).await?;
    Ok(Json(teams_dto(&teams)))
}

/// The workspace's people.
#[utoipa::path(get, path = "/v1/agents", tag = TAG,
    responses(
        (status = 200, body = AgentList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn list_agents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<AgentList>> {
    let ws = principal(&state, &headers).await?.require_workspace()?;
    let agents = state.service.store.agents(ws).await?;
    Ok(Json(AgentList {
        items: agents.iter().map(Into::into).collect(),
    }))
}

/// Creates a console account (admins and API keys).
#[utoipa::path(post, path = "/v1/agents", tag = TAG, request_body = NewAgent,
    responses(
        (status = 201, body = AgentDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn create_agent(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    bytes: axum::body::Bytes,
) -> ApiResult<Response> {
    let ws = principal(&state, &headers).await?.require_admin()?;
    let input = required::<NewAgent>(&headers, "/v1/agents", &bytes)?.value;
    let skills: core::Skills = match input.skills {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ApiError::new(ErrorCode::InvalidBody, format!("skills: {e}")))?,
        None => core::Skills::default(),
    };
    let role = match input.role.as_deref() {
        None => core::Role::Agent,
        Some(r) => r
            .parse()
            .map_err(|e: String| ApiError::new(ErrorCode::InvalidBody, e))?,
    };
    let agent = new_account(
        &state,
        ws,
        AccountInput {
            email: input.email,
            name: input.name,
            password: input.password,
            role,
            teams: input.teams,
            skills,
            capacity: input.capacity.unwrap_or(5),
        },
    )
    .await?;
    Ok((StatusCode::CREATED, Json(AgentDto::from(&agent))).into_response())
}

/// What an account is made from (the API and the CLI).
pub struct AccountInput {
    pub email: String,
    pub name: String,
    pub password: String,
    pub role: core::Role,
    pub teams: Vec<String>,
    pub skills: core::Skills,
    pub capacity: u32,
}

/// Validates and stores a new account; the password is hashed with Argon2id.
pub async fn new_account(
    state: &AppState,
    ws: core::WorkspaceId,
    input: AccountInput,
) -> ApiResult<core::AgentAccount> {
    let teams = state.service.teams(ws).await?;
    create_account(state.service.store.as_ref(), &teams, ws, input).await
}

/// Checks a new password (the same rule for the API and the CLI).
pub fn check_password(password: &str) -> ApiResult<()> {
    if password.chars().count() < 12 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "the password must have at least 12 characters",
        ));
    }
    Ok(())
}

/// [`new_account`] without a running server (the CLI): `teams` are the workspace's.
pub async fn create_account(
    store: &dyn core::Store,
    teams: &core::TeamSettings,
    ws: core::WorkspaceId,
    input: AccountInput,
) -> ApiResult<core::AgentAccount> {
    let email = input.email.trim().to_lowercase();
    let bad = |m: String| ApiError::new(ErrorCode::InvalidBody, m);
    if !email.contains('@') || email.len() > 254 {
        return Err(bad(format!("{email:?} is not an email address")));
    }
    let name = input.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(bad("name must be 1-100 characters".into()));
    }
    check_password(&input.password)?;
    if !(1..=100).contains(&input.capacity) {
        return Err(bad("capacity is 1 to 100".into()));
    }
    for t in &input.teams {
        if teams.team(t).is_none() {
            return Err(bad(format!("no team is named {t:?}")));
        }
    }
    let password = input.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(ApiError::internal)??;
    let agent = core::AgentAccount {
        id: core::AgentId::new(),
        workspace_id: ws,
        email,
        name,
        role: input.role,
        password_hash: hash,
        teams: input.teams,
        skills: input.skills,
        capacity: input.capacity,
        available: true,
        last_seen_at: None,
        created_at: Utc::now(),
    };
    match store.create_agent(&agent).await {
        Ok(()) => Ok(agent),
        Err(core::StoreError::Conflict(m)) => Err(ApiError::new(ErrorCode::AccountExists, m)),
        Err(e) => Err(e.into()),
    }
}

/// How conversations ended over a time range: containment, resolution after handoff,
/// abandonment, durable resolution (not reopened within 7 days), response and resolution times
/// and ratings, in total and by intent and channel.
#[utoipa::path(get, path = "/v1/analytics/outcomes", tag = TAG, params(OutcomeParams),
    responses(
        (status = 200, body = OutcomeReportDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("console_session" = []), ("api_key" = [])))]
pub async fn outcomes(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    crate::extract::ApiQuery(params): crate::extract::ApiQuery<OutcomeParams>,
) -> ApiResult<Json<OutcomeReportDto>> {
    let ws = principal(&state, &headers).await?.require_workspace()?;
    let now = Utc::now();
    let to = params.to.unwrap_or(now);
    let from = params.from.unwrap_or(to - chrono::Duration::days(30));
    if from >= to {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "from must be before to",
        ));
    }
    let facts = state.service.store.outcome_facts(ws, from, to).await?;
    let report = concierge_agent::outcomes::report(
        &facts,
        now,
        chrono::Duration::hours(ABANDON_AFTER_HOURS),
    );
    Ok(Json(OutcomeReportDto {
        from,
        to,
        abandon_after_hours: ABANDON_AFTER_HOURS,
        total: (&report.total).into(),
        by_intent: report
            .by_intent
            .iter()
            .map(|(k, v)| (k.clone(), v.into()))
            .collect(),
        by_channel: report
            .by_channel
            .iter()
            .map(|(k, v)| (k.clone(), v.into()))
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_against_their_own_hash_and_the_dummy_is_well_formed() {
        let hash = auth::hash_password("correct horse battery").expect("hash");
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(auth::verify_password("correct horse battery", &hash));
        assert!(!auth::verify_password("correct horse batterY", &hash));
        assert!(argon2::password_hash::PasswordHash::new(DUMMY_HASH).is_ok());
        assert!(!auth::verify_password("", DUMMY_HASH));
    }
}
