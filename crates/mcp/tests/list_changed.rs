//! A server announcing `notifications/tools/list_changed` gets its tools re-listed: the
//! workspace's registry follows without a reconnect. The server is an in-process rmcp server
//! over Streamable HTTP whose tool list the test changes (speaking only the 2025-11-25 revision,
//! whose sessions carry server notifications).
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../agent/tests/common/mod.rs"]
mod common;

use concierge_mcp::client::{ExternalServers, McpServers, ServerSpec, ServerTransport};
use rmcp::model::*;
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, Peer, RoleServer, ServerHandler};
use serde_json::json;
use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Dynamic {
    tools: Arc<Mutex<Vec<Tool>>>,
    peers: Arc<Mutex<Vec<Peer<RoleServer>>>>,
}

fn tool(name: &str) -> Tool {
    Tool::new(
        name.to_string(),
        "A test tool",
        object(json!({"type": "object", "properties": {}})),
    )
    .with_annotations(ToolAnnotations::new().read_only(true))
}

impl ServerHandler for Dynamic {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(vec![ProtocolVersion::V_2025_11_25])
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult {
            tools: self.tools.lock().unwrap().clone(),
            next_cursor: None,
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        Ok(CallToolResult::structured(json!({"called": request.name})).into())
    }

    async fn on_initialized(&self, cx: NotificationContext<RoleServer>) {
        self.peers.lock().unwrap().push(cx.peer);
    }
}

/// Serves a `Dynamic` server offering `first` over Streamable HTTP; returns it and the
/// server spec that reaches it.
async fn serve_dynamic() -> (Dynamic, ServerSpec) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = Dynamic::default();
    server.tools.lock().unwrap().push(tool("first"));
    let handler = server.clone();
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default(),
    );
    let app = axum::Router::new().nest_service("/mcp", service);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let spec = ServerSpec {
        name: "dyn".into(),
        transport: ServerTransport::Http {
            url: format!("http://localhost:{port}/mcp"),
            bearer_token: None,
        },
        timeout_seconds: 5,
        max_output_bytes: 4096,
    };
    (server, spec)
}

#[tokio::test]
async fn a_procedure_calls_a_tool_of_the_workspaces_mcp_server_offline() {
    let (_server, spec) = serve_dynamic().await;
    let w = common::world().await;
    let settings: concierge_agent::procedures::ProcedureSettings = serde_json::from_value(json!({
        "procedures": [{"name": "lookup", "intent": "order_status", "steps": [
            {"call": {"tool": "dyn.first", "args": {}, "save_as": "r"}},
            {"reply": "Looked up with {{ r.called }}."}
        ]}]
    }))
    .expect("procedures");
    // Before the server is configured, the tool does not exist for the workspace.
    let refused = w.service.put_procedures(w.ws, &settings).await;
    assert!(format!("{refused:?}").contains("dyn.first"), "{refused:?}");
    let servers = ExternalServers::new(w.service.clone());
    servers
        .put(
            w.ws,
            &McpServers {
                servers: vec![spec],
            },
        )
        .await
        .expect("configured");
    w.service
        .put_procedures(w.ws, &settings)
        .await
        .expect("the discovered tool is known now");
    let conv = w.conversation(&w.maya).await;
    let reply = w
        .say(&conv, "Where is my order?", Some("order_status"))
        .await;
    assert_eq!(reply, "Looked up with first.");
}

#[tokio::test]
async fn a_changed_tool_list_is_followed() {
    let (server, spec) = serve_dynamic().await;
    let w = common::world().await;
    let servers = ExternalServers::new(w.service.clone());
    let health = servers
        .put(
            w.ws,
            &McpServers {
                servers: vec![spec],
            },
        )
        .await
        .expect("configured");
    assert_eq!(
        health[0].protocol_version.as_deref(),
        Some("2025-11-25"),
        "{health:?}"
    );
    assert_eq!(health[0].tools, vec!["dyn.first".to_string()]);

    // The server adds a tool and says so.
    server.tools.lock().unwrap().push(tool("second"));
    let peers: Vec<Peer<RoleServer>> = server.peers.lock().unwrap().clone();
    assert!(!peers.is_empty(), "the client initialized a session");
    for p in peers {
        p.notify_tool_list_changed().await.expect("notify");
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.service.tools.spec_in(w.ws, "dyn.second").is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the new tool never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let env = concierge_agent::tools::ToolEnv {
        store: w.store.clone(),
        knowledge: w.service.knowledge.clone(),
    };
    let ctx = concierge_agent::tools::ToolContext {
        workspace: w.ws,
        customer: w.maya.id,
        conversation: None,
        confirmed: false,
        idempotency_key: None,
    };
    let out = w
        .service
        .tools
        .call(&env, &ctx, "dyn.second", json!({}))
        .await
        .expect("the new tool runs");
    assert_eq!(out["called"], "second");
}
