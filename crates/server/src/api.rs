//! API v1 handlers: conversations, messages, events, handoff.

use crate::AppState;
use crate::auth::{Principal, conversation_token};
use crate::dto::*;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::extract::{ApiJson, ApiQuery, idempotency_key, parse_id, require_json_content_type};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use concierge_core as core;
use concierge_core::{IdempotencyKey, LiveEvent};
use futures::Stream;
use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

pub const TAG: &str = "conversations";
pub(crate) const MAX_TEXT_CHARS: usize = 4000;
/// Streams re-read the store this often even without a local wake-up (events of other replicas).
const STREAM_POLL: Duration = Duration::from_secs(1);

pub(crate) async fn principal(state: &AppState, headers: &HeaderMap) -> ApiResult<Principal> {
    crate::auth::authenticate(state.service.store.as_ref(), &state.secret, headers).await
}

/// Loads a conversation the caller may access: bad id → 400, no credentials → 401, someone
/// else's conversation → 403, unknown → 404.
pub(crate) async fn authorized_conversation(
    state: &AppState,
    headers: &HeaderMap,
    raw_id: &str,
) -> ApiResult<(Principal, core::Conversation)> {
    let id: core::ConversationId = parse_id(raw_id, "conversation")?;
    let who = principal(state, headers).await?;
    if let Principal::Conversation(own) = &who
        && *own != id
    {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "this token belongs to another conversation",
        ));
    }
    if who == Principal::Anonymous {
        return Err(ApiError::new(
            ErrorCode::Unauthorized,
            "send the conversation token or a workspace API key as `Authorization: Bearer <token>`",
        ));
    }
    let conversation = state.service.store.conversation(id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::ConversationNotFound,
            format!("no conversation {id}"),
        )
    })?;
    who.authorize(&conversation)?;
    Ok((who, conversation))
}

pub(crate) fn replayed(mut response: Response, replay: bool) -> Response {
    if replay {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    response
}

/// Open a conversation.
///
/// Anonymous callers (the web chat) open one in a workspace that allows public chat and get a
/// token that grants access to this conversation only. Callers with a workspace API key may
/// name the customer. A retried request with the same `Idempotency-Key` returns the same
/// conversation and token.
#[utoipa::path(post, path = "/v1/conversations", tag = TAG,
    request_body = CreateConversation,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    responses(
        (status = 201, description = "Created", body = ConversationCreated),
        (status = 200, description = "Replay of an earlier identical request", body = ConversationCreated),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security((), ("api_key" = [])))]
pub async fn create_conversation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers)?;
    let who = principal(&state, &headers).await?;
    // An empty body means "all defaults"; anything else must be JSON.
    let (input, fingerprint) = if body.is_empty() {
        (CreateConversation::default(), "empty".to_string())
    } else {
        require_json_content_type(&headers)?;
        let parsed: ApiJson<CreateConversation> =
            ApiJson::from_bytes("POST", "/v1/conversations", &body)?;
        (parsed.value, parsed.fingerprint)
    };
    if let Some(subject) = &input.subject
        && subject.chars().count() > 200
    {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "subject is longer than 200 characters",
        ));
    }
    let store = &state.service.store;
    let workspace = match (&who, &input.workspace) {
        (Principal::Workspace { workspace, .. }, slug) => {
            let ws = store
                .workspace(*workspace)
                .await?
                .ok_or_else(|| ApiError::internal("key without workspace"))?;
            if let Some(slug) = slug
                && *slug != ws.slug
            {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    format!("this API key belongs to workspace {:?}", ws.slug),
                ));
            }
            ws
        }
        (_, slug) => {
            let slug = slug
                .clone()
                .unwrap_or_else(|| state.config.server.public_workspace.clone());
            let ws = store.workspace_by_slug(&slug).await?.ok_or_else(|| {
                ApiError::new(
                    ErrorCode::WorkspaceNotFound,
                    format!("no workspace {slug:?}"),
                )
            })?;
            if !ws.public_chat {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    format!("workspace {slug:?} needs an API key"),
                ));
            }
            if input.customer.is_some() {
                return Err(ApiError::new(
                    ErrorCode::Forbidden,
                    "only API-key callers may name the customer",
                ));
            }
            ws
        }
    };
    let channel: core::Channel = input.channel.map(Into::into).unwrap_or(if who.is_staff() {
        core::Channel::Api
    } else {
        core::Channel::Web
    });
    let (identity, profile_name, profile_email) = match &input.customer {
        Some(c) => {
            if c.external_id.trim().is_empty() || c.external_id.len() > 200 {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    "customer.external_id must be 1-200 characters",
                ));
            }
            (
                core::CustomerIdentity {
                    channel,
                    external_id: c.external_id.clone(),
                },
                c.name.clone(),
                c.email.clone(),
            )
        }
        None => (
            core::CustomerIdentity {
                channel,
                external_id: format!("anon-{}", uuid::Uuid::new_v4()),
            },
            None,
            None,
        ),
    };
    // The idempotency scope is the workspace; the fingerprint also binds the caller, so one
    // caller's key can never replay another caller's conversation.
    let idempotency = key.map(|k| IdempotencyKey {
        key: k,
        fingerprint: format!("{fingerprint}:{}", principal_tag(&who)),
    });
    // A replay is answered before anything is created (no second customer record).
    if let Some(k) = &idempotency
        && let Some(existing) = find_replay(&state, workspace.id, k).await?
    {
        return respond_created(&state, &existing, false);
    }
    let customer =
        new_customer(&state, workspace.id, &identity, profile_name, profile_email).await?;
    let created = store
        .create_conversation(core::NewConversation {
            workspace_id: workspace.id,
            customer_id: customer.id,
            channel,
            subject: input.subject.clone(),
            idempotency,
        })
        .await?;
    if created.created {
        metrics::counter!("concierge_conversations_total").increment(1);
    }
    respond_created(&state, &created.value, created.created)
}

fn principal_tag(who: &Principal) -> String {
    match who {
        Principal::Workspace { key, .. } => format!("key:{key}"),
        _ => "public".to_string(),
    }
}

async fn find_replay(
    state: &AppState,
    workspace: core::WorkspaceId,
    key: &IdempotencyKey,
) -> ApiResult<Option<core::Conversation>> {
    let probe = state
        .service
        .store
        .find_conversation_by_idempotency_key(workspace, &key.key)
        .await?;
    match probe {
        Some((conversation, fingerprint))
            if fingerprint.as_deref() == Some(key.fingerprint.as_str()) =>
        {
            Ok(Some(conversation))
        }
        Some(_) => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "idempotency key was used with a different request",
        )),
        None => Ok(None),
    }
}

async fn new_customer(
    state: &AppState,
    workspace: core::WorkspaceId,
    identity: &core::CustomerIdentity,
    name: Option<String>,
    email: Option<String>,
) -> ApiResult<core::Customer> {
    let profile = core::Customer {
        id: core::CustomerId::new(),
        workspace_id: workspace,
        name,
        email,
        phone: None,
        tier: None,
        created_at: Utc::now(),
    };
    Ok(state
        .service
        .store
        .upsert_customer(workspace, identity, &profile)
        .await?)
}

fn respond_created(
    state: &AppState,
    conversation: &core::Conversation,
    created: bool,
) -> ApiResult<Response> {
    let token = conversation_token(&state.secret, conversation.id)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let body = ConversationCreated {
        conversation: conversation.into(),
        token,
    };
    Ok(replayed((status, Json(body)).into_response(), !created))
}

/// List conversations of the API key's workspace, newest first.
#[utoipa::path(get, path = "/v1/conversations", tag = TAG, params(ListParams),
    responses(
        (status = 200, body = ConversationPage),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list_conversations(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<ConversationPage>> {
    let workspace = principal(&state, &headers).await?.require_workspace()?;
    let limit = params.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "limit must be between 1 and 100",
        ));
    }
    let before = match &params.cursor {
        Some(c) => Some(decode_cursor(c)?),
        None => None,
    };
    let filter = core::ConversationFilter {
        status: params.status.map(Into::into),
        before,
        limit: limit + 1,
    };
    let mut items = state
        .service
        .store
        .list_conversations(workspace, &filter)
        .await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items
            .last()
            .map(|c| URL_SAFE_NO_PAD.encode(c.id.0.as_bytes()))
    } else {
        None
    };
    Ok(Json(ConversationPage {
        items: items.iter().map(Into::into).collect(),
        next_cursor,
    }))
}

fn decode_cursor(c: &str) -> ApiResult<core::ConversationId> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidParameter,
            "cursor is not one this API returned",
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    let id = uuid::Uuid::from_slice(&bytes).map_err(|_| bad())?;
    Ok(core::ConversationId(id))
}

/// Get a conversation.
#[utoipa::path(get, path = "/v1/conversations/{id}", tag = TAG,
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = Conversation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("conversation_token" = []), ("api_key" = [])))]
pub async fn get_conversation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Conversation>> {
    let (_, conversation) = authorized_conversation(&state, &headers, &id).await?;
    Ok(Json((&conversation).into()))
}

/// Post a customer message.
///
/// Returns 202 at once; the AI's reply arrives on the event stream (`message.delta` pieces,
/// then `message.created`). A retried request with the same `Idempotency-Key` returns the
/// first message and never stores a second one.
#[utoipa::path(post, path = "/v1/conversations/{id}/messages", tag = TAG,
    params(("id" = Uuid, Path), ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe")),
    request_body = PostMessage,
    responses(
        (status = 202, body = MessageAccepted),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
        (status = 413, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("conversation_token" = []), ("api_key" = [])))]
pub async fn post_message(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Response> {
    let (_, conversation) = authorized_conversation(&state, &headers, &id).await?;
    let key = idempotency_key(&headers)?;
    require_json_content_type(&headers)?;
    let input: ApiJson<PostMessage> =
        ApiJson::from_bytes("POST", "/v1/conversations/{id}/messages", &body)?;
    let text = input.value.text.trim().to_string();
    if text.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "text must not be empty",
        ));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("text is longer than {MAX_TEXT_CHARS} characters"),
        ));
    }
    let idempotency = key.map(|k| IdempotencyKey {
        key: k,
        fingerprint: input.fingerprint,
    });
    let created = state
        .service
        .post_customer_message(&conversation, text, idempotency)
        .await?;
    let body = MessageAccepted {
        message: (&created.value).into(),
    };
    Ok(replayed(
        (StatusCode::ACCEPTED, Json(body)).into_response(),
        !created.created,
    ))
}

/// List a conversation's messages, oldest first.
#[utoipa::path(get, path = "/v1/conversations/{id}/messages", tag = TAG,
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = MessageList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("conversation_token" = []), ("api_key" = [])))]
pub async fn list_messages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<MessageList>> {
    let (who, conversation) = authorized_conversation(&state, &headers, &id).await?;
    let messages = state.service.store.messages(conversation.id).await?;
    // Staff see what was understood of each customer message and where it was routed.
    let staff = who.is_staff();
    Ok(Json(MessageList {
        items: messages
            .iter()
            .map(|m| {
                if staff {
                    Message::with_analysis(m)
                } else {
                    m.into()
                }
            })
            .collect(),
    }))
}

/// Ask for a person ("talk to a person").
///
/// Moves the conversation to `pending_human`; the AI stops answering and a system message
/// tells the customer. Asking again changes nothing.
#[utoipa::path(post, path = "/v1/conversations/{id}/handoff", tag = TAG,
    params(("id" = Uuid, Path)),
    request_body(content = HandoffRequest, description = "Optional"),
    responses(
        (status = 200, body = Conversation),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
        (status = 409, body = Problem, content_type = "application/problem+json"),
    ),
    security(("conversation_token" = []), ("api_key" = [])))]
pub async fn handoff(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<Conversation>> {
    let (who, conversation) = authorized_conversation(&state, &headers, &id).await?;
    let _ = idempotency_key(&headers)?;
    let input = if body.is_empty() {
        HandoffRequest::default()
    } else {
        require_json_content_type(&headers)?;
        ApiJson::<HandoffRequest>::from_bytes("POST", "handoff", &body)?.value
    };
    let reason = input.reason.unwrap_or_else(|| {
        if who.is_staff() {
            "requested via API".into()
        } else {
            "customer asked for a person".into()
        }
    });
    if reason.chars().count() > 200 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "reason is longer than 200 characters",
        ));
    }
    let updated = state
        .service
        .request_handoff(
            conversation.id,
            concierge_agent::HandoffRequest::new(
                if who.is_staff() {
                    core::HandoffTrigger::Api
                } else {
                    core::HandoffTrigger::Customer
                },
                reason,
            ),
        )
        .await?;
    Ok(Json((&updated).into()))
}

/// The conversation's events: a Server-Sent Events stream when the client accepts
/// `text/event-stream`, otherwise the JSON log.
///
/// The stream replays stored events after `Last-Event-ID` (or `after`), then follows live:
/// `message.created` and `status.changed` carry their sequence number as the SSE id;
/// `message.delta` (reply text as it is produced) and `typing` carry none. Customers see message
/// and status events; API-key holders also see retrieval and decision events.
#[utoipa::path(get, path = "/v1/conversations/{id}/events", tag = TAG,
    params(("id" = Uuid, Path), EventParams,
           ("Last-Event-ID" = Option<String>, Header, description = "Resume after this sequence number")),
    responses(
        (status = 200, description = "The JSON log; with `Accept: text/event-stream`, an SSE stream of the same events",
         content((EventList = "application/json"), (String = "text/event-stream"))),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("conversation_token" = []), ("api_key" = [])))]
pub async fn events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<EventParams>,
) -> ApiResult<Response> {
    let (who, conversation) = authorized_conversation(&state, &headers, &id).await?;
    let last_event_id = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidParameter,
                        "Last-Event-ID must be a sequence number",
                    )
                })?,
        ),
        None => None,
    };
    if params.after.is_some_and(|a| a < 0) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "after must not be negative",
        ));
    }
    let after = last_event_id.or(params.after).unwrap_or(0);
    let staff = who.is_staff();
    let wants_stream = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    if !wants_stream {
        let events = state
            .service
            .store
            .events_after(conversation.id, after, 1000)
            .await?;
        let items = events
            .iter()
            .filter(|e| staff || e.payload.is_customer_visible())
            .map(Into::into)
            .collect();
        return Ok(Json(EventList { items }).into_response());
    }
    let stream = event_stream(state.clone(), conversation.id, after, staff);
    let mut response = Sse::new(stream)
        .keep_alive(
            KeepAlive::new()
                .interval(Duration::from_secs(15))
                .text("keep-alive"),
        )
        .into_response();
    // Tell reverse proxies not to buffer the stream.
    response
        .headers_mut()
        .insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(response)
}

fn sse_stored(event: &core::Event) -> Option<SseEvent> {
    let dto = EventDto::from(event);
    SseEvent::default()
        .id(event.seq.to_string())
        .event(dto.kind.clone())
        .json_data(&dto)
        .ok()
}

/// Sends a live (never stored) event; returns false when the client is gone.
async fn forward_live(
    tx: &mpsc::Sender<Result<SseEvent, Infallible>>,
    event: LiveEvent,
    finished: &HashSet<uuid::Uuid>,
) -> bool {
    let sse = match event {
        LiveEvent::Delta { message_id, delta } if !finished.contains(&message_id.0) => {
            let data = serde_json::json!({"type": "message.delta", "message_id": message_id.0, "delta": delta});
            SseEvent::default()
                .event("message.delta")
                .data(data.to_string())
        }
        LiveEvent::Typing => SseEvent::default()
            .event("typing")
            .data(r#"{"type":"typing","author":"ai"}"#),
        _ => return true,
    };
    tx.send(Ok(sse)).await.is_ok()
}

fn event_stream(
    state: Arc<AppState>,
    conversation: core::ConversationId,
    mut after: i64,
    staff: bool,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let (tx, rx) = mpsc::channel::<Result<SseEvent, Infallible>>(64);
    // Subscribe before the response goes out (so a client that posts right after opening the
    // stream gets every delta) and before reading the backlog (so nothing falls in between).
    let mut live = state.service.hub.subscribe(conversation);
    tokio::spawn(async move {
        metrics::gauge!("concierge_sse_streams").increment(1.0);
        // Messages already sent whole on this stream: late deltas for them are dropped.
        let mut finished: HashSet<uuid::Uuid> = HashSet::new();
        let mut wake = true;
        'stream: loop {
            if wake {
                // A reply's deltas are published before the reply is stored: forward the ones
                // already queued first, so a message never shows up before its own deltas.
                loop {
                    match live.try_recv() {
                        Ok(event) => {
                            if !forward_live(&tx, event, &finished).await {
                                break 'stream;
                            }
                        }
                        Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)) => {}
                        Err(_) => break,
                    }
                }
                match state
                    .service
                    .store
                    .events_after(conversation, after, 500)
                    .await
                {
                    Ok(events) => {
                        for e in events {
                            after = e.seq;
                            if let core::EventPayload::MessageCreated { message } = &e.payload {
                                finished.insert(message.id.0);
                            }
                            if !(staff || e.payload.is_customer_visible()) {
                                continue;
                            }
                            if let Some(sse) = sse_stored(&e)
                                && tx.send(Ok(sse)).await.is_err()
                            {
                                break 'stream;
                            }
                        }
                    }
                    Err(err) => {
                        tracing::warn!(%err, "event stream cannot read the store");
                    }
                }
            }
            wake = false;
            tokio::select! {
                received = live.recv() => match received {
                    Ok(LiveEvent::Appended(_)) => wake = true,
                    Ok(event) => {
                        if !forward_live(&tx, event, &finished).await {
                            break;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => wake = true,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                        live = state.service.hub.subscribe(conversation);
                        wake = true;
                    }
                },
                _ = tokio::time::sleep(STREAM_POLL) => wake = true,
                _ = tx.closed() => break,
                _ = state.shutdown_signal() => break,
            }
        }
        metrics::gauge!("concierge_sse_streams").decrement(1.0);
    });
    ReceiverStream::new(rx)
}
