//! `GET /v1/knowledge/search`: the retrieval pipeline, stage by stage, for inspection; syncs
//! (`POST /v1/knowledge/sync`, `GET /v1/tasks/{id}`); resolved questions
//! (`/v1/knowledge/resolved-questions`).

use crate::AppState;
use crate::error::{ApiError, ApiResult, ErrorCode, Problem};
use crate::extract::ApiQuery;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use concierge_core::Principals;
use concierge_knowledge::pipeline::{Candidate, Mode};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// The question.
    pub q: String,
    /// Results to return, 1–50 (default 8).
    pub k: Option<usize>,
    /// `bm25`, `dense`, `hybrid` or `hybrid+rerank` (default: the best available).
    pub mode: Option<String>,
    /// Comma-separated principals to search as, besides `public` (e.g. `group:support,user:42`).
    pub principals: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CandidateDto {
    pub chunk_id: String,
    pub document_id: String,
    pub score: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchHit {
    pub chunk_id: String,
    pub document_id: String,
    pub title: String,
    pub url: Option<String>,
    pub heading_path: Vec<String>,
    pub text: String,
    pub score: f32,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Stages {
    pub bm25: Vec<CandidateDto>,
    pub dense: Vec<CandidateDto>,
    pub fused: Vec<CandidateDto>,
    pub reranked: Vec<CandidateDto>,
    /// The top of `reranked` reordered by the configured cross-encoder (empty without one).
    pub cross_encoded: Vec<CandidateDto>,
    /// Votes of the workspace's resolved questions for documents among the reranked
    /// candidates, highest first (empty without resolved questions or outside `hybrid+rerank`).
    pub votes: Vec<VoteDto>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VoteDto {
    pub document_id: String,
    /// Similarity-weighted share of the nearest resolved questions this document answered.
    pub vote: f32,
}

/// A passage of compressed context: the sentences kept for the question, under citation `n`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContextPassageDto {
    pub n: u32,
    pub chunk_id: String,
    pub title: String,
    pub url: Option<String>,
    pub sentences: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SearchResponse {
    /// The mode that ran (BM25 when no embedder is configured).
    pub mode: String,
    pub principals: Vec<String>,
    /// The query's content words as the index sees them, with their IDF.
    pub terms: Vec<(String, f32)>,
    pub stages: Stages,
    pub hits: Vec<SearchHit>,
    /// What the answerer would quote: compressed context from the hits.
    pub context: Vec<ContextPassageDto>,
}

fn candidates(list: &[Candidate]) -> Vec<CandidateDto> {
    list.iter()
        .map(|c| CandidateDto {
            chunk_id: c.chunk_id.clone(),
            document_id: c.document_id.clone(),
            score: c.score,
        })
        .collect()
}

/// Search the workspace's knowledge base and show every stage's candidates and scores (the
/// answerer uses this same pipeline).
#[utoipa::path(get, path = "/v1/knowledge/search", tag = "knowledge", params(SearchParams),
    responses(
        (status = 200, body = SearchResponse),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn search(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SearchParams>,
) -> ApiResult<Json<SearchResponse>> {
    let who =
        crate::auth::authenticate(state.service.store.as_ref(), &state.secret, &headers).await?;
    let workspace = who.require_workspace()?;
    let q = params.q.trim();
    if q.is_empty() || q.chars().count() > 4000 {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "q must be 1-4000 characters",
        ));
    }
    let k = params.k.unwrap_or(8);
    if !(1..=50).contains(&k) {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            "k must be between 1 and 50",
        ));
    }
    let knowledge = &state.service.knowledge;
    let mode = match params.mode.as_deref() {
        None => knowledge.pipeline.default_mode(),
        Some(name) => Mode::ALL
            .into_iter()
            .find(|m| m.name() == name)
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidParameter,
                    "mode must be bm25, dense, hybrid or hybrid+rerank",
                )
            })?,
    };
    let principals = Principals::with(
        params
            .principals
            .unwrap_or_default()
            .split(',')
            .map(str::to_string)
            .collect::<Vec<_>>(),
    );
    let r = knowledge
        .retrieve_with(workspace, &principals, q, k, mode)
        .await
        .map_err(ApiError::internal)?;
    let ran = if knowledge.pipeline.embedder.is_none() {
        Mode::Bm25
    } else {
        mode
    };
    let context = concierge_knowledge::answer::compress(
        knowledge.index(),
        &r.terms,
        &r.hits,
        concierge_knowledge::answer::ContextConfig {
            max_passages: state.config.knowledge.max_citations,
            ..Default::default()
        },
        state.config.knowledge.min_evidence as f32,
    )
    .into_iter()
    .map(|p| ContextPassageDto {
        n: p.n,
        chunk_id: p.hit.chunk_id.clone(),
        title: p.hit.title.clone(),
        url: p.hit.url.clone(),
        sentences: p.units.into_iter().map(|u| u.text).collect(),
    })
    .collect();
    Ok(Json(SearchResponse {
        mode: ran.name().to_string(),
        principals: principals.as_slice().to_vec(),
        terms: r.terms.iter().map(|t| (t.stem.clone(), t.idf)).collect(),
        stages: Stages {
            bm25: candidates(&r.bm25),
            dense: candidates(&r.dense),
            fused: candidates(&r.fused),
            reranked: candidates(&r.reranked),
            cross_encoded: candidates(&r.cross_encoded),
            votes: r
                .votes
                .iter()
                .map(|(document_id, vote)| VoteDto {
                    document_id: document_id.clone(),
                    vote: *vote,
                })
                .collect(),
        },
        hits: r
            .hits
            .into_iter()
            .map(|h| SearchHit {
                chunk_id: h.chunk_id,
                document_id: h.document_id,
                title: h.title,
                url: h.url,
                heading_path: h.heading_path,
                text: h.text,
                score: h.score,
            })
            .collect(),
        context,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncRequest {
    /// A directory (Markdown, HTML, text) or a `.jsonl` corpus on the server, inside one of
    /// `knowledge.source_roots`.
    pub path: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TaskDto {
    pub id: uuid::Uuid,
    pub kind: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    pub progress_done: u64,
    pub progress_total: u64,
    pub attempts: i32,
    pub result: Option<serde_json::Value>,
    pub error: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<&concierge_core::Task> for TaskDto {
    fn from(t: &concierge_core::Task) -> Self {
        Self {
            id: t.id.0,
            kind: t.kind.clone(),
            status: t.status.as_str().to_string(),
            progress_done: t.progress_done,
            progress_total: t.progress_total,
            attempts: t.attempts,
            result: t.result.clone(),
            error: t.error.clone(),
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Queue a sync of a knowledge source into the key's workspace.
///
/// Answers 202 with the task at once; follow it at `GET /v1/tasks/{id}`. Unchanged documents are
/// skipped, changed ones re-embedded, deleted ones removed; a crash mid-sync loses nothing, and
/// the task is picked up again.
#[utoipa::path(post, path = "/v1/knowledge/sync", tag = "knowledge", request_body = SyncRequest,
    responses(
        (status = 202, body = TaskDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn sync(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> ApiResult<Accepted> {
    let who =
        crate::auth::authenticate(state.service.store.as_ref(), &state.secret, &headers).await?;
    let workspace = who.require_workspace()?;
    crate::extract::require_json_content_type(&headers)?;
    let input =
        crate::extract::ApiJson::<SyncRequest>::from_bytes("POST", "/v1/knowledge/sync", &body)?
            .value;
    let path = std::path::Path::new(&input.path)
        .canonicalize()
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidBody,
                format!("path {:?}: {e}", input.path),
            )
        })?;
    let allowed = state
        .config
        .knowledge
        .source_roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|root| path.starts_with(root));
    if !allowed {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the path is outside knowledge.source_roots; add its folder there to sync it over the API",
        ));
    }
    let task = state.service.queue_sync(workspace, &path).await?;
    Ok(accepted(&task))
}

/// 202 Accepted for a queued task: the task, and where to follow it (`Location`).
pub type Accepted = (
    axum::http::StatusCode,
    [(axum::http::HeaderName, String); 1],
    Json<TaskDto>,
);

pub fn accepted(task: &concierge_core::Task) -> Accepted {
    (
        axum::http::StatusCode::ACCEPTED,
        [(
            axum::http::header::LOCATION,
            format!("/v1/tasks/{}", task.id),
        )],
        Json(task.into()),
    )
}

/// A background task's status, progress and result.
#[utoipa::path(get, path = "/v1/tasks/{id}", tag = "knowledge", params(("id" = uuid::Uuid, Path)),
    responses(
        (status = 200, body = TaskDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn task(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<TaskDto>> {
    let id: concierge_core::TaskId = crate::extract::parse_id(&id, "task")?;
    let who =
        crate::auth::authenticate(state.service.store.as_ref(), &state.secret, &headers).await?;
    let workspace = who.require_workspace()?;
    let task = state
        .service
        .store
        .task(id)
        .await?
        .filter(|t| t.workspace_id == workspace)
        .ok_or_else(|| ApiError::new(ErrorCode::NotFound, format!("no task {id}")))?;
    Ok(Json((&task).into()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolvedQuestionRequest {
    /// The past question as the customer asked it (1–20,000 characters).
    pub question: String,
    /// The documents that answered it: their ids within their source (a file's relative path,
    /// a corpus line's `id`), 1–50 of them, each already in the workspace's knowledge base.
    pub documents: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedQuestionDto {
    pub key: String,
    pub question: String,
    pub documents: Vec<String>,
    /// `api`, `import` or `conversation` (a customer confirmed an AI answer).
    pub origin: String,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl From<concierge_core::ResolvedQuestion> for ResolvedQuestionDto {
    fn from(q: concierge_core::ResolvedQuestion) -> Self {
        Self {
            key: q.key,
            question: q.question,
            documents: q.documents,
            origin: q.origin,
            updated_at: q.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ResolvedQuestionList {
    pub questions: Vec<ResolvedQuestionDto>,
}

const MAX_KEY: usize = 200;

fn check_key(key: &str) -> ApiResult<()> {
    if key.trim().is_empty() || key.chars().count() > MAX_KEY {
        return Err(ApiError::new(
            ErrorCode::InvalidParameter,
            format!("the key must be 1-{MAX_KEY} characters"),
        ));
    }
    Ok(())
}

/// The workspace's resolved questions: past questions with the documents that answered them.
/// Similar new questions let them vote for those documents in the reranker.
#[utoipa::path(get, path = "/v1/knowledge/resolved-questions", tag = "knowledge",
    responses(
        (status = 200, body = ResolvedQuestionList),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn list_resolved(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
) -> ApiResult<Json<ResolvedQuestionList>> {
    let who =
        crate::auth::authenticate(state.service.store.as_ref(), &state.secret, &headers).await?;
    let workspace = who.require_workspace()?;
    let questions = state.service.store.resolved_questions(workspace).await?;
    Ok(Json(ResolvedQuestionList {
        questions: questions.into_iter().map(Into::into).collect(),
    }))
}

/// Record (or replace) a resolved question under `key` (a ticket key, say). Every document
/// must already be in the workspace (422 `invalid_body` names the unknown ones).
#[utoipa::path(put, path = "/v1/knowledge/resolved-questions/{key}", tag = "knowledge",
    params(("key" = String, Path)), request_body = ResolvedQuestionRequest,
    responses(
        (status = 200, body = ResolvedQuestionDto),
        (status = 400, body = Problem, content_type = "application/problem+json"),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 422, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn put_resolved(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(key): axum::extract::Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<Json<ResolvedQuestionDto>> {
    let who =
        crate::auth::authenticate(state.service.store.as_ref(), &state.secret, &headers).await?;
    let workspace = who.require_workspace()?;
    check_key(&key)?;
    crate::extract::require_json_content_type(&headers)?;
    let input = crate::extract::ApiJson::<ResolvedQuestionRequest>::from_bytes(
        "PUT",
        "/v1/knowledge/resolved-questions",
        &body,
    )?
    .value;
    let question = input.question.trim();
    if question.is_empty() || question.chars().count() > 20_000 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "question must be 1-20000 characters",
        ));
    }
    let mut documents: Vec<String> = Vec::new();
    for d in input.documents.iter().map(|d| d.trim()) {
        if !d.is_empty() && !documents.iter().any(|x| x == d) {
            documents.push(d.to_string());
        }
    }
    if documents.is_empty() || documents.len() > 50 {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            "documents must name 1-50 documents",
        ));
    }
    let store = &state.service.store;
    let known =
        concierge_knowledge::resolved::nameable_documents(store.as_ref(), workspace).await?;
    let unknown: Vec<&String> = documents.iter().filter(|d| !known.contains(*d)).collect();
    if !unknown.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "no such document in the workspace: {unknown:?}; sync the knowledge source first"
            ),
        ));
    }
    let record = concierge_core::ResolvedQuestion {
        workspace_id: workspace,
        key: key.trim().to_string(),
        question: question.to_string(),
        documents,
        origin: "api".into(),
        updated_at: chrono::Utc::now(),
    };
    store.put_resolved_question(&record).await?;
    // The write is done; the model follows in the background (one rebuild at a time).
    state.service.refresh_resolved_later(workspace);
    Ok(Json(record.into()))
}

/// Forget a resolved question.
#[utoipa::path(delete, path = "/v1/knowledge/resolved-questions/{key}", tag = "knowledge",
    params(("key" = String, Path)),
    responses(
        (status = 204),
        (status = 401, body = Problem, content_type = "application/problem+json"),
        (status = 403, body = Problem, content_type = "application/problem+json"),
        (status = 404, body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = [])))]
pub async fn delete_resolved(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::Path(key): axum::extract::Path<String>,
) -> ApiResult<axum::http::StatusCode> {
    let who =
        crate::auth::authenticate(state.service.store.as_ref(), &state.secret, &headers).await?;
    let workspace = who.require_workspace()?;
    check_key(&key)?;
    if !state
        .service
        .store
        .delete_resolved_question(workspace, key.trim())
        .await?
    {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "no such resolved question",
        ));
    }
    state.service.refresh_resolved_later(workspace);
    Ok(axum::http::StatusCode::NO_CONTENT)
}
