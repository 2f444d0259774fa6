//! Health, readiness and metrics.

use crate::AppState;
use crate::dto::{Health, Readiness};
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the store answers and the search index is open.
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses((status = 200, body = Readiness), (status = 503, body = Readiness)))]
pub async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    let service = &state.service;
    let (store_status, stored) = match service.store.ping().await {
        Ok(()) => match service.store.knowledge_stats(None).await {
            Ok(stats) => ("ok".to_string(), stats.chunks),
            Err(e) => (format!("error: {e}"), 0),
        },
        Err(e) => (format!("error: {e}"), 0),
    };
    let indexed = service.knowledge.index().num_chunks();
    // The index may briefly trail the store while another process ingests; it is ready as long
    // as it is open and searchable.
    let index_status = "ok".to_string();
    let ready = store_status == "ok";
    let body = Readiness {
        status: if ready {
            "ready".into()
        } else {
            "unavailable".into()
        },
        store: format!("{} ({})", store_status, service.store.backend_name()),
        index: index_status,
        indexed_chunks: indexed,
        stored_chunks: stored,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Prometheus text exposition.
pub async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    metrics::gauge!("concierge_sse_listeners").set(state.service.hub.listeners() as f64);
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}
