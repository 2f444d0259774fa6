//! The agent's configuration and audit over HTTP: the tool registry, the workspace's
//! procedures, and the writes the agent made in a conversation.

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::extract::parse_id;
use crate::understanding::staff_json;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use concierge_agent::procedures::ProcedureSettings;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ToolAnnotationsDto {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// The customer must confirm before the tool runs.
    pub needs_confirmation: bool,
    pub open_world: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ToolDto {
    pub name: String,
    pub title: String,
    pub description: String,
    /// JSON Schema of the arguments.
    #[schema(value_type = Object)]
    pub input_schema: serde_json::Value,
    /// JSON Schema of the result.
    #[schema(value_type = Option<Object>)]
    pub output_schema: Option<serde_json::Value>,
    pub annotations: ToolAnnotationsDto,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ToolList {
    pub items: Vec<ToolDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionDto {
    /// The idempotency key the write was made under (`<run>:<step>` for procedures).
    pub key: String,
    pub tool: String,
    #[schema(value_type = Object)]
    pub arguments: serde_json::Value,
    #[schema(value_type = Object)]
    pub result: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ActionList {
    pub items: Vec<ActionDto>,
}

/// What a conversation's language-model calls consumed (from its audit trail).
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageDto {
    pub llm_calls: u64,
    pub failed_llm_calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// At the prices configured in `llm.price_*_per_mtok`.
    pub cost_usd: f64,
}

async fn staff(state: &AppState, headers: &HeaderMap) -> ApiResult<concierge_core::WorkspaceId> {
    Ok(staff_json::<()>(state, headers, None).await?.0)
}

/// The tools the agent can use, with their schemas and annotations.
#[utoipa::path(get, path = "/v1/tools", tag = "agent",
    responses(
        (status = 200, body = ToolList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list_tools(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<ToolList>> {
    staff(&state, &headers).await?;
    let items = state
        .service
        .tools
        .specs()
        .into_iter()
        .map(|s| ToolDto {
            name: s.name.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            input_schema: s.input_schema.clone(),
            output_schema: s.output_schema.clone(),
            annotations: ToolAnnotationsDto {
                read_only: s.annotations.read_only,
                destructive: s.annotations.destructive,
                idempotent: s.annotations.idempotent,
                needs_confirmation: s.annotations.needs_confirmation,
                open_world: s.annotations.open_world,
            },
        })
        .collect();
    Ok(Json(ToolList { items }))
}

/// The workspace's procedures (an empty list when none are set).
#[utoipa::path(get, path = "/v1/procedures", tag = "agent",
    responses(
        (status = 200, body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get_procedures(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<ProcedureSettings>> {
    let ws = staff(&state, &headers).await?;
    Ok(Json(state.service.get_procedures(ws).await?))
}

/// Replace the workspace's procedures.
///
/// Body: `{"procedures": [{"name", "intent", "requires_action"?, "description"?, "steps": [...]}]}`
/// where a step is one of `{"ask": {"slot", "kind": "order" | "address" | "text", "prompt",
/// "filter"?, "none"?, "from_message"?}}`, `{"call": {"tool", "args", "save_as"?, "on_error"?}}`,
/// `{"if": {"cond", "then", "else"}}`, `{"confirm": {"prompt", "declined"}}`, `{"reply": "…"}`,
/// `{"handoff": {"reason", "reply"?}}` or `"end"`. Templates and conditions are Jinja; every
/// one is compiled and every tool checked before anything is stored.
#[utoipa::path(put, path = "/v1/procedures", tag = "agent",
    request_body(content = Object, description = "The procedures"),
    responses(
        (status = 200, body = Object),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put_procedures(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<ProcedureSettings>> {
    let (ws, settings) =
        staff_json::<ProcedureSettings>(&state, &headers, Some(("/v1/procedures", &body))).await?;
    let settings = settings.ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, "no body"))?;
    state.service.put_procedures(ws, &settings).await?;
    Ok(Json(settings))
}

/// The writes the agent made in a conversation, oldest first (the audit trail).
#[utoipa::path(get, path = "/v1/conversations/{id}/actions", tag = "agent",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = ActionList),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list_actions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<ActionList>> {
    let id = staff_conversation(&state, &headers, &id).await?;
    let items = state
        .service
        .store
        .actions_for_conversation(id)
        .await?
        .into_iter()
        .map(|a| ActionDto {
            key: a.key,
            tool: a.tool,
            arguments: a.arguments,
            result: a.result,
            created_at: a.created_at,
        })
        .collect();
    Ok(Json(ActionList { items }))
}

/// A conversation of the caller's workspace, by the id in the path.
async fn staff_conversation(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
) -> ApiResult<concierge_core::ConversationId> {
    let ws = staff(state, headers).await?;
    let id: concierge_core::ConversationId = parse_id(id, "conversation")?;
    state
        .service
        .store
        .conversation(id)
        .await?
        .filter(|c| c.workspace_id == ws)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ConversationNotFound,
                format!("no conversation {id}"),
            )
        })?;
    Ok(id)
}

/// Tokens and cost of the conversation's language-model calls (zero without a model).
#[utoipa::path(get, path = "/v1/conversations/{id}/usage", tag = "agent",
    params(("id" = Uuid, Path)),
    responses(
        (status = 200, body = UsageDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn conversation_usage(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<UsageDto>> {
    let id = staff_conversation(&state, &headers, &id).await?;
    let u = state.service.llm_usage(id).await?;
    Ok(Json(UsageDto {
        llm_calls: u.calls,
        failed_llm_calls: u.failed_calls,
        input_tokens: u.input_tokens,
        output_tokens: u.output_tokens,
        cost_usd: u.cost_usd,
    }))
}

/// A workspace's external MCP servers and their health.
#[derive(Debug, Serialize, ToSchema)]
pub struct McpServersDto {
    /// As configured (bearer tokens masked).
    #[schema(value_type = Object)]
    pub servers: serde_json::Value,
    /// Each server's state: `name`, `connected`, `protocol_version`, `tools` (as the registry
    /// names them, `<server>.<tool>`), `skipped`, `error`, `checked_at`.
    #[schema(value_type = Vec<Object>)]
    pub health: serde_json::Value,
}

fn mcp_servers_dto(
    servers: &concierge_mcp::client::McpServers,
    health: &[concierge_mcp::client::ServerHealth],
) -> McpServersDto {
    let mut value = serde_json::to_value(servers).unwrap_or_default();
    for s in value["servers"].as_array_mut().into_iter().flatten() {
        if s["transport"]["bearer_token"].is_string() {
            s["transport"]["bearer_token"] = "********".into();
        }
    }
    McpServersDto {
        servers: value["servers"].take(),
        health: serde_json::to_value(health).unwrap_or_default(),
    }
}

/// The workspace's external MCP servers, whose tools join the agent's registry as
/// `<server>.<tool>`, with each one's health.
#[utoipa::path(get, path = "/v1/mcp/servers", tag = "agent",
    responses(
        (status = 200, body = McpServersDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get_mcp_servers(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<McpServersDto>> {
    let ws = staff(&state, &headers).await?;
    let servers = state
        .mcp_servers
        .get(ws)
        .await
        .map_err(|e| ApiError::new(ErrorCode::InvalidBody, e))?;
    Ok(Json(mcp_servers_dto(
        &servers,
        &state.mcp_servers.health(ws),
    )))
}

/// Replaces the workspace's external MCP servers and connects to them.
///
/// Body: `{"servers": [{"name", "transport": {"type": "stdio", "command", "args"?, "env"?} |
/// {"type": "http", "url", "bearer_token"?}, "timeout_seconds"?, "max_output_bytes"?}]}`. A
/// server that cannot be reached is stored anyway and reported in `health` (it is retried with
/// backoff); an invalid list is rejected whole with 422.
#[utoipa::path(put, path = "/v1/mcp/servers", tag = "agent",
    request_body(content = Object, description = "The servers"),
    responses(
        (status = 200, body = McpServersDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put_mcp_servers(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<McpServersDto>> {
    let (ws, servers) = staff_json::<concierge_mcp::client::McpServers>(
        &state,
        &headers,
        Some(("/v1/mcp/servers", &body)),
    )
    .await?;
    let servers = servers.ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, "no body"))?;
    let health = state
        .mcp_servers
        .put(ws, &servers)
        .await
        .map_err(|problems| ApiError::new(ErrorCode::InvalidBody, problems.join("; ")))?;
    Ok(Json(mcp_servers_dto(&servers, &health)))
}
