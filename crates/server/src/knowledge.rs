//! `GET /v1/knowledge/search`: the retrieval pipeline, stage by stage, for inspection.

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
