//! Every JSON-RPC message the MCP server emits, checked against the official schema of its
//! protocol revision (`../shared/specs/mcp/schema/<version>/schema.json`): the 2025-11-25
//! handshake and the 2026-07-28 stateless revision, spoken as raw lines over an in-memory
//! duplex (the stdio framing), so nothing between the server and the check interprets them.
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../agent/tests/common/mod.rs"]
mod common;

use concierge_mcp::{Caller, ConciergeMcp};
use rmcp::ServiceExt;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn schema(version: &str) -> Value {
    let path = format!(
        "{}/../../../shared/specs/mcp/schema/{version}/schema.json",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
        .expect("schema JSON")
}

/// Errors of `value` against `$defs[def]` of `bundle`.
fn violations(bundle: &Value, def: &str, value: &Value) -> Vec<String> {
    assert!(bundle["$defs"].get(def).is_some(), "{def} is defined");
    let mut s = bundle["$defs"][def].clone();
    s["$defs"] = bundle["$defs"].clone();
    s["$schema"] = bundle["$schema"].clone();
    let v = jsonschema::validator_for(&s).expect("schema compiles");
    v.iter_errors(value)
        .map(|e| format!("{def}: {e} at {}", e.instance_path()))
        .collect()
}

struct Wire {
    write: tokio::io::WriteHalf<tokio::io::DuplexStream>,
    read: BufReader<tokio::io::ReadHalf<tokio::io::DuplexStream>>,
    bundle: Value,
    problems: Vec<String>,
}

impl Wire {
    async fn open(w: &common::World, version: &str) -> Self {
        let (client, server) = tokio::io::duplex(1 << 20);
        let handler =
            ConciergeMcp::for_caller(w.service.clone(), Caller::Staff { workspace: w.ws });
        tokio::spawn(async move {
            if let Ok(running) = handler.serve(server).await {
                let _ = running.waiting().await;
            }
        });
        let (read, write) = tokio::io::split(client);
        Wire {
            write,
            read: BufReader::new(read),
            bundle: schema(version),
            problems: vec![],
        }
    }

    async fn send(&mut self, message: Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.write.write_all(line.as_bytes()).await.expect("write");
    }

    /// Sends a request; returns its response, every message on the way checked.
    async fn request(&mut self, message: Value, result_def: Option<&str>) -> Value {
        let id = message["id"].clone();
        self.send(message).await;
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(20),
                self.read.read_line(&mut line),
            )
            .await
            .expect("an answer in time")
            .expect("read");
            assert!(n > 0, "the server closed the stream");
            let m: Value = serde_json::from_str(&line).expect("a JSON line");
            let problems = violations(&self.bundle, "JSONRPCMessage", &m);
            self.problems.extend(problems);
            if m.get("id") == Some(&id) {
                if let (Some(def), Some(result)) = (result_def, m.get("result")) {
                    let problems = violations(&self.bundle, def, result);
                    self.problems.extend(problems);
                }
                return m;
            }
        }
    }
}

#[tokio::test]
async fn messages_of_the_2025_11_25_revision_match_its_schema() {
    let w = common::world().await;
    let mut wire = Wire::open(&w, "2025-11-25").await;
    let init = wire
        .request(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-11-25", "capabilities": {},
                "clientInfo": {"name": "wire-test", "version": "1"}}}),
            Some("InitializeResult"),
        )
        .await;
    assert_eq!(init["result"]["protocolVersion"], "2025-11-25");
    wire.send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
        .await;
    for (id, method, params, def) in [
        (2, "tools/list", json!({}), "ListToolsResult"),
        (
            3,
            "tools/call",
            json!({"name": "search_knowledge", "arguments": {"query": "returns"}}),
            "CallToolResult",
        ),
        (
            4,
            "tools/call",
            json!({"name": "get_order", "arguments": {"order_number": "A-1043", "customer": "maya"}}),
            "CallToolResult",
        ),
        (
            5,
            "tools/call",
            json!({"name": "get_order", "arguments": {"order_number": "A-1043"}}),
            "CallToolResult",
        ),
        (6, "resources/list", json!({}), "ListResourcesResult"),
        (
            7,
            "resources/templates/list",
            json!({}),
            "ListResourceTemplatesResult",
        ),
        (8, "prompts/list", json!({}), "ListPromptsResult"),
        (
            9,
            "prompts/get",
            json!({"name": "answer_support_question", "arguments": {"question": "returns?"}}),
            "GetPromptResult",
        ),
        (10, "ping", json!({}), "EmptyResult"),
    ] {
        let r = wire
            .request(
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
                Some(def),
            )
            .await;
        assert!(r.get("result").is_some(), "{method}: {r}");
    }
    // Protocol errors: an unknown tool, an unknown method.
    let unknown = wire
        .request(
            json!({"jsonrpc": "2.0", "id": 11, "method": "tools/call", "params": {"name": "nope"}}),
            None,
        )
        .await;
    assert!(
        violations(&wire.bundle, "JSONRPCErrorResponse", &unknown).is_empty(),
        "{unknown}"
    );
    let missing = wire
        .request(
            json!({"jsonrpc": "2.0", "id": 12, "method": "no/such/method"}),
            None,
        )
        .await;
    assert_eq!(missing["error"]["code"], -32601, "{missing}");
    assert!(wire.problems.is_empty(), "{:#?}", wire.problems);
    // The check can fail: a tool without an input schema is not a valid listing.
    assert!(
        !violations(
            &wire.bundle,
            "ListToolsResult",
            &json!({"tools": [{"name": "x"}]})
        )
        .is_empty()
    );
}

#[tokio::test]
async fn messages_of_the_2026_07_28_revision_match_its_schema() {
    let w = common::world().await;
    let mut wire = Wire::open(&w, "2026-07-28").await;
    let meta = json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "wire-test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    });
    let discover = wire
        .request(
            json!({"jsonrpc": "2.0", "id": "d", "method": "server/discover", "params": {"_meta": meta}}),
            Some("DiscoverResult"),
        )
        .await;
    assert!(
        discover["result"]["supportedVersions"]
            .to_string()
            .contains("2026-07-28"),
        "{discover}"
    );
    for (id, method, mut params, def) in [
        ("t", "tools/list", json!({}), "ListToolsResult"),
        (
            "c",
            "tools/call",
            json!({"name": "search_knowledge", "arguments": {"query": "returns"}}),
            "CallToolResult",
        ),
        ("r", "resources/list", json!({}), "ListResourcesResult"),
        (
            "p",
            "prompts/get",
            json!({"name": "answer_support_question", "arguments": {"question": "returns?"}}),
            "GetPromptResult",
        ),
    ] {
        params["_meta"] = meta.clone();
        let r = wire
            .request(
                json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
                Some(def),
            )
            .await;
        assert!(r.get("result").is_some(), "{method}: {r}");
    }
    assert!(wire.problems.is_empty(), "{:#?}", wire.problems);
}
