//! The MCP endpoint over real HTTP: bearer auth as for the REST API, the Host check, and the
//! initialize → tools/list → tools/call sequence of the 2025-11-25 revision.

use crate::helpers::*;
use serde_json::{Value, json};

const VERSION: &str = "2025-11-25";

/// The JSON-RPC message of a response (JSON, or the first `data:` event of an SSE stream).
async fn message(res: reqwest::Response) -> Value {
    let text = res.text().await.expect("body");
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        return v;
    }
    text.lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .find_map(|d| serde_json::from_str::<Value>(d).ok())
        .unwrap_or_else(|| panic!("no JSON-RPC message in {text:?}"))
}

async fn post(
    app: &TestApp,
    token: Option<&str>,
    session: Option<&str>,
    body: Value,
) -> reqwest::Response {
    let mut req = app
        .http
        .post(app.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(s) = session {
        req = req
            .header("mcp-session-id", s)
            .header("mcp-protocol-version", VERSION);
    }
    req.send().await.expect("send")
}

/// Initializes a session; returns its id.
async fn initialize(app: &TestApp, token: &str) -> String {
    let res = post(
        app,
        Some(token),
        None,
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": VERSION, "capabilities": {},
            "clientInfo": {"name": "api-test", "version": "1"}}}),
    )
    .await;
    assert_eq!(res.status(), 200);
    let session = res
        .headers()
        .get("mcp-session-id")
        .expect("a session id")
        .to_str()
        .expect("ascii")
        .to_string();
    let init = message(res).await;
    assert_eq!(init["result"]["protocolVersion"], VERSION);
    assert_eq!(init["result"]["serverInfo"]["name"], "concierge");
    let done = post(
        app,
        Some(token),
        Some(&session),
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
    )
    .await;
    assert_eq!(done.status(), 202);
    session
}

#[tokio::test]
async fn mcp_needs_a_bearer_token_and_a_known_host() {
    let app = TestApp::spawn().await;
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": VERSION, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    let res = post(&app, None, None, init.clone()).await;
    assert_eq!(
        res.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_problem(res, 401, "unauthorized").await;
    let res = post(&app, Some("ck_nope_nope"), None, init.clone()).await;
    assert_problem(res, 401, "invalid_credentials").await;
    // A page on another site resolving its name to this server (DNS rebinding) is refused.
    let res = app
        .http
        .post(app.url("/mcp"))
        .header("host", "attacker.example")
        .header("accept", "application/json, text/event-stream")
        .bearer_auth(&app.api_key)
        .json(&init)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn staff_search_the_knowledge_base_over_mcp() {
    let app = TestApp::spawn().await;
    let session = initialize(&app, &app.api_key).await;
    let list = message(
        post(
            &app,
            Some(&app.api_key),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await,
    )
    .await;
    let tools = list["result"]["tools"].as_array().expect("tools");
    let search = tools
        .iter()
        .find(|t| t["name"] == "search_knowledge")
        .expect("search_knowledge");
    assert_eq!(search["annotations"]["readOnlyHint"], true);
    assert!(search["inputSchema"]["properties"]["query"].is_object());

    let found = message(
        post(
            &app,
            Some(&app.api_key),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
                "name": "search_knowledge", "arguments": {"query": "reset password", "limit": 2}}}),
        )
        .await,
    )
    .await;
    let result = &found["result"];
    assert_ne!(result["isError"], true, "{found}");
    assert_eq!(
        result["structuredContent"]["passages"][0]["title"],
        "Reset your password"
    );
    // A tool failure is a result, not a protocol error.
    let failed = message(
        post(
            &app,
            Some(&app.api_key),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
                "name": "get_order", "arguments": {"order_number": "A-1", "customer": "nobody"}}}),
        )
        .await,
    )
    .await;
    assert_eq!(failed["result"]["isError"], true, "{failed}");
    let unknown = message(
        post(
            &app,
            Some(&app.api_key),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
                "name": "no_such_tool", "arguments": {}}}),
        )
        .await,
    )
    .await;
    assert_eq!(unknown["error"]["code"], -32602, "{unknown}");
    // The transport's own errors stay the transport's (not rewritten into problem+json).
    let stale = post(
        &app,
        Some(&app.api_key),
        Some("no-such-session"),
        json!({"jsonrpc": "2.0", "id": 6, "method": "tools/list"}),
    )
    .await;
    assert_eq!(stale.status(), 404);
    let ct = stale
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(!ct.starts_with("application/problem+json"), "{ct}");
}

#[tokio::test]
async fn a_conversation_token_gets_the_customers_view() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let session = initialize(&app, &conv.token).await;
    let list = message(
        post(
            &app,
            Some(&conv.token),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        )
        .await,
    )
    .await;
    let tools = list["result"]["tools"].as_array().expect("tools");
    let get_order = tools
        .iter()
        .find(|t| t["name"] == "get_order")
        .expect("get_order");
    assert!(
        get_order["inputSchema"]["properties"]
            .get("customer")
            .is_none()
    );
    let conv_look = message(
        post(
            &app,
            Some(&conv.token),
            Some(&session),
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
                "name": "get_conversation", "arguments": {"conversation_id": conv.id}}}),
        )
        .await,
    )
    .await;
    assert_eq!(
        conv_look["result"]["structuredContent"]["status"], "ai_active",
        "{conv_look}"
    );
}

#[tokio::test]
async fn external_servers_are_validated_stored_and_report_their_health() {
    let app = TestApp::spawn().await;
    let put = |body: Value| {
        app.http
            .put(app.url("/v1/mcp/servers"))
            .bearer_auth(&app.api_key)
            .json(&body)
            .send()
    };
    let bad = put(json!({"servers": [
        {"name": "Bad Name", "transport": {"type": "stdio", "command": "x"}},
        {"name": "dup", "transport": {"type": "http", "url": "ftp://nope"}},
        {"name": "dup", "transport": {"type": "stdio", "command": "y"}}
    ]}))
    .await
    .expect("send");
    let problem = assert_problem(bad, 422, "invalid_body").await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains("Bad Name")
            && detail.contains("ftp://nope")
            && detail.contains("used twice"),
        "{detail}"
    );

    // An unreachable server is stored and reported, with no tools.
    let res = put(json!({"servers": [
        {"name": "crm", "transport": {"type": "http", "url": "http://127.0.0.1:9/mcp", "bearer_token": "s3cret"}, "timeout_seconds": 2}
    ]}))
    .await
    .expect("send");
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["health"][0]["name"], "crm");
    assert_eq!(body["health"][0]["connected"], false);
    assert!(body["health"][0]["error"].as_str().is_some());
    let listed: Value = app
        .get("/v1/mcp/servers", Some(&app.api_key))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["servers"][0]["name"], "crm");
    assert_eq!(
        listed["servers"][0]["transport"]["bearer_token"], "********",
        "secrets are masked"
    );
    assert_eq!(listed["health"][0]["connected"], false);
    // Customers cannot see or change them.
    let conv = app.create_conversation().await;
    assert_problem(
        app.get("/v1/mcp/servers", Some(&conv.token)).await,
        403,
        "forbidden",
    )
    .await;
}
