//! Concierge as an MCP client of the reference server `@modelcontextprotocol/server-everything`
//! (npm, pinned; installed by the test under `target/` when missing), over stdio and over
//! Streamable HTTP: discovery across pages, namespaced registry tools with the server's
//! annotations mapped onto the registry's policy, calls with results and failures.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../agent/tests/common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../../llm/tests/providers/fake.rs"]
mod fake;
#[path = "../../llm/tests/providers/openai_wire.rs"]
mod openai_wire;

use concierge_agent::tools::{ToolContext, ToolError, ToolRegistry};
use concierge_mcp::client::{Connection, ServerSpec, ServerTransport};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

const EVERYTHING: &str = "@modelcontextprotocol/server-everything@2026.8.31";

/// The reference server's launcher, installed under `target/mcp-peers/node` on first use (once
/// per test binary: tests run on parallel threads, and two `npm install`s into one prefix at once
/// break each other on a fresh clone).
fn everything() -> PathBuf {
    static INSTALLED: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    INSTALLED.get_or_init(install_everything).clone()
}

fn install_everything() -> PathBuf {
    let prefix = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/mcp-peers/node");
    let bin = prefix.join("node_modules/.bin/mcp-server-everything");
    let marker = prefix.join("server-everything-2026.8.31");
    if !marker.exists() {
        std::fs::create_dir_all(&prefix).expect("prefix");
        let ok = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .arg(EVERYTHING)
            .status()
            .expect("npm (Node.js) is needed")
            .success();
        assert!(ok, "cannot install {EVERYTHING}");
        std::fs::write(&marker, "").expect("marker");
    }
    bin
}

fn stdio_spec(bin: &Path) -> ServerSpec {
    ServerSpec {
        name: "everything".into(),
        transport: ServerTransport::Stdio {
            command: bin.display().to_string(),
            args: vec!["stdio".into()],
            env: Default::default(),
        },
        timeout_seconds: 20,
        max_output_bytes: 64 * 1024,
    }
}

async fn exercise(connection: &Arc<Connection>, w: &common::World) {
    let names: Vec<String> = connection
        .tools()
        .iter()
        .map(|t| t.name.to_string())
        .collect();
    for expected in [
        "echo",
        "get-sum",
        "get-structured-content",
        "toggle-simulated-logging",
    ] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }
    let mut registry = ToolRegistry::builtin();
    for t in connection.registry_tools() {
        registry.register(t);
    }
    let echo = registry.spec("everything.echo").expect("namespaced echo");
    assert!(echo.annotations.read_only && !echo.annotations.needs_confirmation);
    let toggle = registry
        .spec("everything.toggle-simulated-logging")
        .expect("namespaced toggle");
    assert!(!toggle.annotations.read_only && toggle.annotations.needs_confirmation);

    let env = concierge_agent::tools::ToolEnv {
        store: w.store.clone(),
        knowledge: w.service.knowledge.clone(),
    };
    let ctx = ToolContext {
        workspace: w.ws,
        customer: w.maya.id,
        conversation: None,
        confirmed: false,
        idempotency_key: None,
    };
    let echoed = registry
        .call(
            &env,
            &ctx,
            "everything.echo",
            json!({"message": "hello from Concierge"}),
        )
        .await
        .expect("echo");
    assert!(
        echoed.to_string().contains("hello from Concierge"),
        "{echoed}"
    );
    let sum = registry
        .call(&env, &ctx, "everything.get-sum", json!({"a": 2, "b": 40}))
        .await
        .expect("sum");
    assert!(sum.to_string().contains("42"), "{sum}");
    // A tool the server does not mark read-only is a write: refused without confirmation.
    let refused = registry
        .call(&env, &ctx, "everything.toggle-simulated-logging", json!({}))
        .await;
    assert!(matches!(refused, Err(ToolError::Refused(_))), "{refused:?}");
    // Arguments the tool does not take: a failure the agent sees, not a crash.
    let bad = registry
        .call(&env, &ctx, "everything.get-sum", json!({"a": 1}))
        .await;
    assert!(matches!(bad, Err(ToolError::Failed(_))), "{bad:?}");
}

#[tokio::test]
#[cfg_attr(
    not(concierge_mcp_peer_tests),
    ignore = "set CONCIERGE_MCP_PEER_TESTS=1 (installs the MCP reference server from npm)"
)]
async fn the_reference_server_over_stdio_becomes_registry_tools() {
    let bin = everything();
    let w = common::world().await;
    let connection = Connection::connect(stdio_spec(&bin))
        .await
        .expect("connect");
    assert_eq!(connection.protocol_version().as_deref(), Some("2025-11-25"));
    assert!(
        connection.skipped().is_empty(),
        "{:?}",
        connection.skipped()
    );
    exercise(&connection, &w).await;
}

#[tokio::test]
#[cfg_attr(
    not(concierge_mcp_peer_tests),
    ignore = "set CONCIERGE_MCP_PEER_TESTS=1 (installs the MCP reference server from npm)"
)]
async fn the_reference_server_over_streamable_http_becomes_registry_tools() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bin = everything();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let mut server = tokio::process::Command::new(&bin)
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start server-everything");
    let url = format!("http://127.0.0.1:{port}/mcp");
    let spec = ServerSpec {
        transport: ServerTransport::Http {
            url,
            bearer_token: None,
        },
        ..stdio_spec(&bin)
    };
    let mut connection = None;
    for _ in 0..100 {
        match Connection::connect(spec.clone()).await {
            Ok(c) => {
                connection = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
    let connection = connection.expect("server-everything answers over HTTP");
    assert!(connection.protocol_version().is_some());
    let w = common::world().await;
    exercise(&connection, &w).await;
    let _ = server.kill().await;
}

#[tokio::test]
#[cfg_attr(
    not(concierge_mcp_peer_tests),
    ignore = "set CONCIERGE_MCP_PEER_TESTS=1 (installs the MCP reference server from npm)"
)]
async fn the_agent_uses_a_tool_it_discovered_from_a_configured_server() {
    use concierge_mcp::client::{ExternalServers, McpServers};
    let bin = everything();
    // The model adds two numbers with the discovered tool, then answers from its result.
    let (fake, base) = fake::spawn(
        openai_wire::check,
        openai_wire::PATH,
        vec![
            {
                use openai_wire::*;
                fake::Reply::sse(official(&[
                    tool_start(0, "call_sum", "everything__get-sum"),
                    tool_args(0, r#"{"a": 2, "b": 40}"#),
                    finish("tool_calls"),
                    usage(300, 20),
                ]))
            },
            {
                use openai_wire::*;
                fake::Reply::sse(official(&[
                    text("The sum is 42."),
                    finish("stop"),
                    usage(350, 8),
                ]))
            },
        ],
    )
    .await;
    let mut c = concierge_llm::OpenAiConfig::new(&format!("{base}/v1"), "gpt-4o-mini");
    c.auth = concierge_llm::OpenAiAuth::Bearer("sk-test".to_string().into());
    let provider: Arc<dyn concierge_core::LlmProvider> =
        Arc::new(concierge_llm::OpenAiProvider::new(c).expect("provider"));
    let w = common::world_with(|s| {
        s.with_llm(concierge_agent::LlmAgent {
            provider,
            settings: Default::default(),
        })
    })
    .await;
    w.service
        .put_procedures(w.ws, &Default::default())
        .await
        .expect("no procedures");
    let servers = ExternalServers::new(w.service.clone());
    let health = servers
        .put(
            w.ws,
            &McpServers {
                servers: vec![stdio_spec(&bin)],
            },
        )
        .await
        .expect("configured");
    assert!(health[0].connected, "{health:?}");
    assert!(health[0].tools.iter().any(|t| t == "everything.get-sum"));
    assert_eq!(servers.health(w.ws), health);

    let conv = w.conversation(&w.maya).await;
    let reply = w
        .say(&conv, "What is 2 plus 40?", Some("order_status"))
        .await;
    assert_eq!(reply, "The sum is 42.");
    fake.assert_clean();
    // The model saw the tool under its model name, and the call ran under the registry name.
    let offered = fake.body(0)["tools"].to_string();
    assert!(offered.contains("everything__get-sum"), "{offered}");
    let steps = w.steps(&conv).await;
    assert!(steps.iter().any(|s| matches!(
        s,
        concierge_core::StepRecord::ToolCall { tool, ok: true, .. } if tool == "everything.get-sum"
    )), "{steps:#?}");
    // Another workspace does not see this workspace's external tools.
    let other = w
        .store
        .ensure_workspace("other", "Other", false)
        .await
        .expect("ws");
    assert!(
        w.service
            .tools
            .spec_in(other.id, "everything.get-sum")
            .is_none()
    );
    // Removing the server removes its tools.
    servers
        .put(w.ws, &McpServers::default())
        .await
        .expect("removed");
    assert!(
        w.service
            .tools
            .spec_in(w.ws, "everything.get-sum")
            .is_none()
    );
}
