//! The MCP endpoint `/mcp`: Streamable HTTP through the official SDK (rmcp), in the same server
//! as the REST API. The bearer token is checked here exactly as for the REST API and turned into
//! the MCP caller (a workspace API key is staff; a conversation token is that conversation's
//! customer); a request without one gets 401 with `WWW-Authenticate: Bearer`. The SDK checks the
//! `Host` header (loopback plus `server.mcp_allowed_hosts`), the protocol version headers and
//! the JSON-RPC framing.

use crate::AppState;
use crate::auth::{self, Principal};
use crate::error::{ApiError, ErrorCode};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use concierge_mcp::{Caller, ConciergeMcp};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use std::sync::Arc;

pub fn router(state: &Arc<AppState>) -> Router<Arc<AppState>> {
    let mut hosts: Vec<String> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(String::from)
        .collect();
    hosts.extend(state.config.server.mcp_allowed_hosts.iter().cloned());
    // Open event streams end when the server shuts down.
    let cancel = tokio_util::sync::CancellationToken::new();
    {
        let state = state.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            state.shutdown_signal().await;
            cancel.cancel();
        });
    }
    let service = state.service.clone();
    let mcp = StreamableHttpService::new(
        move || Ok(ConciergeMcp::per_request(service.clone())),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_allowed_hosts(hosts)
            .with_cancellation_token(cancel),
    );
    Router::new()
        .nest_service("/mcp", mcp)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
}

/// Resolves the bearer token into the MCP caller, or answers 401/403.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let challenge = |e: ApiError| {
        let mut r = e.into_response();
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
        r
    };
    let store = state.service.store.as_ref();
    let caller = match auth::authenticate(store, &state.secret, request.headers()).await {
        Ok(Principal::Workspace { workspace, .. }) => Caller::Staff { workspace },
        Ok(Principal::Agent(a)) => Caller::Staff {
            workspace: a.workspace_id,
        },
        Ok(Principal::Conversation(id)) => match store.conversation(id).await {
            Ok(Some(c)) => Caller::Customer {
                workspace: c.workspace_id,
                customer: c.customer_id,
                conversation: c.id,
            },
            Ok(None) => {
                return challenge(ApiError::new(
                    ErrorCode::InvalidCredentials,
                    "the conversation of this token no longer exists",
                ));
            }
            Err(e) => return ApiError::internal(e).into_response(),
        },
        Ok(Principal::Anonymous) => {
            return challenge(ApiError::new(
                ErrorCode::Unauthorized,
                "send a workspace API key or a conversation token as `Authorization: Bearer <token>`",
            ));
        }
        Err(e) => return challenge(e),
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}
