//! `concierge mcp servers add|list|remove` as a process on a temp data directory: the list is
//! validated, stored, connected (an unreachable server is reported, not fatal) and removed.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::process::Command;

fn concierge(data: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(args)
        .env("CONCIERGE__STORAGE__DATA_DIR", data)
        .env("CONCIERGE__KNOWLEDGE__EMBEDDINGS__PROVIDER", "none")
        .env("RUST_LOG", "error")
        .output()
        .expect("run concierge");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn external_servers_are_added_listed_and_removed_from_the_cli() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(&kb).expect("kb");
    std::fs::write(kb.join("a.md"), "# Returns\n\nReturn within 30 days.\n").expect("doc");
    let data = dir.path().join("data");
    let (ok, out) = concierge(
        &data,
        &["ingest", kb.to_str().unwrap(), "--workspace", "acme"],
    );
    assert!(ok, "{out}");

    let (ok, out) = concierge(&data, &["mcp", "servers", "list", "--workspace", "acme"]);
    assert!(ok && out.contains("no external MCP servers"), "{out}");
    // Nothing listens on port 9: stored, reported unavailable, not fatal.
    let (ok, out) = concierge(
        &data,
        &[
            "mcp",
            "servers",
            "add",
            "crm",
            "--workspace",
            "acme",
            "--url",
            "http://127.0.0.1:9/mcp",
        ],
    );
    assert!(ok && out.contains("crm  unavailable"), "{out}");
    let (ok, out) = concierge(&data, &["mcp", "servers", "list", "--workspace", "acme"]);
    assert!(ok && out.contains("crm  unavailable"), "{out}");
    // An invalid server is refused with the reason, and nothing changes.
    let (ok, out) = concierge(
        &data,
        &[
            "mcp",
            "servers",
            "add",
            "Bad Name",
            "--workspace",
            "acme",
            "--url",
            "http://x",
        ],
    );
    assert!(!ok && out.contains("must be 1–32 of a-z"), "{out}");
    let (ok, out) = concierge(
        &data,
        &["mcp", "servers", "remove", "crm", "--workspace", "acme"],
    );
    assert!(ok && out.contains("no external MCP servers"), "{out}");
    let (ok, out) = concierge(
        &data,
        &["mcp", "servers", "remove", "crm", "--workspace", "acme"],
    );
    assert!(!ok && out.contains("no server named"), "{out}");
}
