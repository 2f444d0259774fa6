//! Triage on the wire (what staff see with each customer message and in the event log) and the
//! workspace's intents and routing policy (`/v1/intents`, `/v1/routing-policy`).

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::knowledge::{Accepted, TaskDto, accepted};
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use concierge_core as core;
use concierge_understand::routing::RoutingPolicy;
use concierge_understand::triage::IntentSettings;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct SignalDto {
    /// What produced it (`lexicon:urgent`, `vader:-2.1`, `intent:lost_card`, ...).
    pub source: String,
    /// The words (or value) behind it.
    pub evidence: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntentScoreDto {
    pub name: String,
    pub confidence: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct IntentDto {
    /// The best in-scope intent (the nearest one when out of scope).
    pub best: Option<IntentScoreDto>,
    pub alternatives: Vec<IntentScoreDto>,
    /// `knowledge`, `procedure` or `human`.
    pub handling: Option<String>,
    pub out_of_scope: bool,
    pub oos_score: f32,
    pub threshold: Option<f32>,
    /// Fingerprint of the intent settings the model was trained on.
    pub model: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LevelDto {
    /// `low`, `normal`, `high` or `critical`.
    pub level: String,
    pub signals: Vec<SignalDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SentimentDto {
    /// `negative`, `neutral` or `positive`.
    pub label: String,
    /// VADER compound score in [-1, 1].
    pub score: f32,
    pub frustrated: bool,
    pub signals: Vec<SignalDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ComplexityDto {
    pub multiple_requests: bool,
    pub needs_action: bool,
    pub needs_human_judgment: bool,
    pub signals: Vec<SignalDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LanguageDto {
    /// ISO 639-1.
    pub code: String,
    pub confidence: f32,
    pub reliable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct GuardDto {
    /// The message was declined without any model, tool or procedure reading it.
    pub blocked: bool,
    /// Attack probability of the most suspicious window (1 when a strong pattern matched).
    pub score: f32,
    pub threshold: f32,
    /// When blocked: `instruction_override`, `role_play_jailbreak`, `prompt_extraction`,
    /// `obfuscation`, `code_injection`, `harmful_request` or `unspecified`.
    pub category: Option<String>,
    pub signals: Vec<SignalDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TriageDto {
    /// Absent when the workspace has no trained intents.
    pub intent: Option<IntentDto>,
    pub urgency: LevelDto,
    pub sentiment: SentimentDto,
    pub complexity: ComplexityDto,
    pub language: Option<LanguageDto>,
    /// Money amounts found in the message.
    pub amounts: Vec<f64>,
    pub latency_ms: f64,
    /// The input guardrail's verdict (prompt injection, jailbreak).
    pub guard: Option<GuardDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RouteDto {
    /// `answer`, `assist`, `clarify`, `offer_human`, `handoff` or `refuse` (blocked by the
    /// input guardrail).
    pub action: String,
    /// For `handoff` and `assist`.
    pub team: Option<String>,
    /// The rule that decided (`default:…` when none matched).
    pub rule: String,
    /// Every rule whose conditions held, in policy order.
    pub matched: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AnalysisDto {
    pub triage: TriageDto,
    pub route: RouteDto,
}

fn signals(s: &[core::Signal]) -> Vec<SignalDto> {
    s.iter()
        .map(|s| SignalDto {
            source: s.source.clone(),
            evidence: s.evidence.clone(),
        })
        .collect()
}

fn score(s: &core::IntentScore) -> IntentScoreDto {
    IntentScoreDto {
        name: s.name.clone(),
        confidence: s.confidence,
    }
}

fn handling(h: core::Handling) -> &'static str {
    match h {
        core::Handling::Knowledge => "knowledge",
        core::Handling::Procedure => "procedure",
        core::Handling::Human => "human",
    }
}

impl From<&core::Triage> for TriageDto {
    fn from(t: &core::Triage) -> Self {
        Self {
            intent: t.intent.as_ref().map(|i| IntentDto {
                best: i.best.as_ref().map(score),
                alternatives: i.alternatives.iter().map(score).collect(),
                handling: i.handling.map(|h| handling(h).to_string()),
                out_of_scope: i.out_of_scope,
                oos_score: i.oos_score,
                threshold: i.threshold,
                model: i.model.clone(),
            }),
            urgency: LevelDto {
                level: t.urgency.level.as_str().into(),
                signals: signals(&t.urgency.signals),
            },
            sentiment: SentimentDto {
                label: t.sentiment.label.as_str().into(),
                score: t.sentiment.score,
                frustrated: t.sentiment.frustrated,
                signals: signals(&t.sentiment.signals),
            },
            complexity: ComplexityDto {
                multiple_requests: t.complexity.multiple_requests,
                needs_action: t.complexity.needs_action,
                needs_human_judgment: t.complexity.needs_human_judgment,
                signals: signals(&t.complexity.signals),
            },
            language: t.language.as_ref().map(|l| LanguageDto {
                code: l.code.clone(),
                confidence: l.confidence,
                reliable: l.reliable,
            }),
            amounts: t.amounts.clone(),
            latency_ms: t.latency_ms,
            guard: t.guard.as_ref().map(|g| GuardDto {
                blocked: g.blocked,
                score: g.score,
                threshold: g.threshold,
                category: g.category.clone(),
                signals: signals(&g.signals),
            }),
        }
    }
}

impl From<&core::Route> for RouteDto {
    fn from(r: &core::Route) -> Self {
        let (action, team) = match &r.action {
            core::RouteAction::Answer => ("answer", None),
            core::RouteAction::Assist { team } => ("assist", team.clone()),
            core::RouteAction::Clarify => ("clarify", None),
            core::RouteAction::OfferHuman => ("offer_human", None),
            core::RouteAction::Handoff { team } => ("handoff", team.clone()),
            core::RouteAction::Refuse => ("refuse", None),
        };
        Self {
            action: action.into(),
            team,
            rule: r.rule.clone(),
            matched: r.matched.clone(),
        }
    }
}

impl From<&core::Analysis> for AnalysisDto {
    fn from(a: &core::Analysis) -> Self {
        Self {
            triage: (&a.triage).into(),
            route: (&a.route).into(),
        }
    }
}

/// The workspace's intents and the state of the model trained from them.
#[derive(Debug, Serialize, ToSchema)]
pub struct IntentsDto {
    /// The intent settings as last stored (absent when none were).
    #[schema(value_type = Option<Object>)]
    pub settings: Option<IntentSettings>,
    /// SHA-256 of the settings.
    pub fingerprint: Option<String>,
    /// Whether the stored model was trained on exactly these settings.
    pub trained: bool,
    pub trained_at: Option<DateTime<Utc>>,
}

fn problems(list: Vec<(String, String)>) -> ApiError {
    let detail = list
        .iter()
        .map(|(field, message)| format!("{field}: {message}"))
        .collect::<Vec<_>>()
        .join("; ");
    ApiError::new(ErrorCode::InvalidBody, detail)
}

pub(crate) async fn staff_json<T: serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: Option<(&str, &[u8])>,
) -> ApiResult<(core::WorkspaceId, Option<T>)> {
    let who =
        crate::auth::authenticate(state.service.store.as_ref(), &state.secret, headers).await?;
    let workspace = who.require_workspace()?;
    let value = match body {
        Some((route, bytes)) => {
            crate::extract::require_json_content_type(headers)?;
            Some(crate::extract::ApiJson::<T>::from_bytes("PUT", route, bytes)?.value)
        }
        None => None,
    };
    Ok((workspace, value))
}

/// The workspace's intents, and whether the model is trained on them.
#[utoipa::path(get, path = "/v1/intents", tag = "understanding",
    responses(
        (status = 200, body = IntentsDto),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get_intents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<IntentsDto>> {
    let (ws, _) = staff_json::<()>(&state, &headers, None).await?;
    let status = state.service.intents_status(ws).await?;
    let trained = status
        .model
        .as_ref()
        .zip(status.fingerprint.as_ref())
        .is_some_and(|((m, _), f)| m == f);
    Ok(Json(IntentsDto {
        settings: status.settings,
        fingerprint: status.fingerprint,
        trained,
        trained_at: status.model.map(|(_, at)| at),
    }))
}

/// Replace the workspace's intents and retrain.
///
/// Body: `{"intents": [{"name", "description"?, "handling"? ("knowledge" | "procedure" |
/// "human"), "urgency"? ("low" … "critical"), "team"?, "examples": [at least 3]}, …],
/// "out_of_scope_examples"?: [...]}`. Answers 202 with the training task; until it finishes,
/// messages are triaged with the previous model.
#[utoipa::path(put, path = "/v1/intents", tag = "understanding",
    request_body(content = Object, description = "The intent settings"),
    responses(
        (status = 202, body = TaskDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put_intents(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Accepted> {
    let (ws, settings) =
        staff_json::<IntentSettings>(&state, &headers, Some(("/v1/intents", &body))).await?;
    let settings = settings.ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, "no body"))?;
    settings.validate().map_err(problems)?;
    let task = state.service.put_intents(ws, &settings).await?;
    Ok(accepted(&task))
}

/// The workspace's routing policy (an empty rule list when none was set).
#[utoipa::path(get, path = "/v1/routing-policy", tag = "understanding",
    responses(
        (status = 200, body = Object),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn get_routing_policy(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<RoutingPolicy>> {
    let (ws, _) = staff_json::<()>(&state, &headers, None).await?;
    Ok(Json(state.service.get_routing_policy(ws).await?))
}

/// Replace the workspace's routing policy.
///
/// Body: `{"rules": [{"name", "when": {conditions}, "action": "answer" | "assist" | "clarify" |
/// "handoff", "team"?}, …]}`. Conditions (all must hold): `intent`, `handling`, `out_of_scope`,
/// `urgency_at_least`, `sentiment`, `frustrated`, `multiple_requests`, `needs_action`,
/// `needs_human_judgment`, `customer_tier`, `language_not_in`, `amount_above`,
/// `confidence_below`. The first matching rule decides.
#[utoipa::path(put, path = "/v1/routing-policy", tag = "understanding",
    request_body(content = Object, description = "The routing policy"),
    responses(
        (status = 200, body = Object),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 415, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put_routing_policy(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Json<RoutingPolicy>> {
    let (ws, policy) =
        staff_json::<RoutingPolicy>(&state, &headers, Some(("/v1/routing-policy", &body))).await?;
    let policy = policy.ok_or_else(|| ApiError::new(ErrorCode::InvalidBody, "no body"))?;
    policy.validate().map_err(problems)?;
    state.service.put_routing_policy(ws, &policy).await?;
    Ok(Json(policy))
}
