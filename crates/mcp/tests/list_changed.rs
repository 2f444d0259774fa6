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
    /// Also speaks 2026-07-28 (then changes go out on `subscriptions/listen` streams).
    modern: bool,
    /// Wakes the `subscriptions/listen` streams to announce a change.
    bump: Arc<tokio::sync::Notify>,
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
        if self.modern {
            Cow::Owned(vec![
                ProtocolVersion::V_2026_07_28,
                ProtocolVersion::V_2025_11_25,
            ])
        } else {
            Cow::Owned(vec![ProtocolVersion::V_2025_11_25])
        }
    }

    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), ErrorData> {
        loop {
            tokio::select! {
                _ = context.cancelled() => return Ok(()),
                _ = self.bump.notified() => {
                    let _ = context.sink().notify_tool_list_changed().await;
                }
            }
        }
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
    serve(Dynamic::default()).await
}

async fn serve(server: Dynamic) -> (Dynamic, ServerSpec) {
    let _ = rustls::crypto::ring::default_provider().install_default();
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
    wait_for_tool(&w, "dyn.second", Duration::from_secs(10)).await;
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

async fn wait_for_tool(w: &common::World, name: &str, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while w.service.tools.spec_in(w.ws, name).is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_2026_server_announces_changes_on_a_subscription_and_the_client_follows() {
    let (server, spec) = serve(Dynamic {
        modern: true,
        ..Dynamic::default()
    })
    .await;
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
        Some("2026-07-28"),
        "{health:?}"
    );
    server.tools.lock().unwrap().push(tool("second"));
    // The subscription may open just after the handshake: announce until it is heard.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while w.service.tools.spec_in(w.ws, "dyn.second").is_none() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the change was never followed"
        );
        server.bump.notify_waiters();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Our client side of Concierge's own MCP server, counting `tools/list_changed`.
#[derive(Clone, Default)]
struct Watch(Arc<tokio::sync::Notify>);

impl rmcp::ClientHandler for Watch {
    async fn on_tool_list_changed(&self, _cx: NotificationContext<rmcp::RoleClient>) {
        self.0.notify_one();
    }
}

#[tokio::test]
async fn concierge_tells_its_mcp_clients_when_an_external_server_adds_tools() {
    use rmcp::ServiceExt;
    let (_server, spec) = serve_dynamic().await;
    let w = common::world().await;
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let handler = concierge_mcp::ConciergeMcp::for_caller(
        w.service.clone(),
        concierge_mcp::Caller::Staff { workspace: w.ws },
    );
    tokio::spawn(async move {
        let running = handler.serve(server_io).await.expect("server starts");
        let _ = running.waiting().await;
    });
    let watch = Watch::default();
    let client = watch
        .clone()
        .serve(client_io)
        .await
        .expect("client connects");
    let before = client.list_all_tools().await.expect("tools");
    assert!(before.iter().all(|t| t.name != "dyn.first"));
    // An administrator adds an external server to the workspace.
    ExternalServers::new(w.service.clone())
        .put(
            w.ws,
            &McpServers {
                servers: vec![spec],
            },
        )
        .await
        .expect("configured");
    tokio::time::timeout(Duration::from_secs(10), watch.0.notified())
        .await
        .expect("notifications/tools/list_changed");
    let after = client.list_all_tools().await.expect("tools");
    let listed = after
        .iter()
        .find(|t| t.name == "dyn.first")
        .expect("listed");
    assert_eq!(
        listed.annotations.as_ref().and_then(|a| a.read_only_hint),
        Some(true)
    );
    let out = client
        .call_tool(CallToolRequestParams::new("dyn.first").with_arguments(object(json!({}))))
        .await
        .expect("called through Concierge");
    assert_eq!(
        out.structured_content,
        Some(json!({"called": "first"})),
        "{out:?}"
    );
}

#[tokio::test]
async fn servers_stored_by_the_cli_or_another_replica_are_applied_without_a_restart() {
    let (_server, spec) = serve_dynamic().await;
    let w = common::world().await;
    let servers = ExternalServers::new(w.service.clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(servers.clone().supervise(async move {
        let _ = stopped.await;
    }));
    // What `concierge mcp servers add` does: it writes the setting, the server is not called.
    let store = |servers: McpServers| {
        let store = w.store.clone();
        let ws = w.ws;
        async move {
            store
                .put_setting(
                    ws,
                    concierge_mcp::client::MCP_SERVERS_SETTING,
                    &serde_json::to_value(servers).unwrap(),
                )
                .await
                .unwrap();
        }
    };
    store(McpServers {
        servers: vec![spec],
    })
    .await;
    wait_for_tool(&w, "dyn.first", Duration::from_secs(20)).await;
    store(McpServers::default()).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while w.service.tools.spec_in(w.ws, "dyn.first").is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the removal was never applied"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = stop.send(());
}
