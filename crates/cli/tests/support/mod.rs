//! Shared by the binary's end-to-end tests: the demo as a process.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A `concierge demo` process on a temp data directory (killed on drop).
pub struct Demo {
    pub child: Child,
    pub base: String,
    pub key: String,
    pub http: reqwest::Client,
    pub dir: tempfile::TempDir,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts the demo (needs `CONCIERGE_MODEL_DIR`) and waits until it serves.
pub fn start() -> Demo {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let models = std::env::var("CONCIERGE_MODEL_DIR").expect("CONCIERGE_MODEL_DIR");
    let mut child = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(["demo", "--bind", &format!("127.0.0.1:{port}")])
        .env("CONCIERGE__STORAGE__DATA_DIR", dir.path())
        .env("CONCIERGE__KNOWLEDGE__EMBEDDINGS__MODEL_DIR", &models)
        .env("CONCIERGE__KNOWLEDGE__EMBEDDINGS__FETCH_MISSING", "true")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn concierge demo");
    let stdout = child.stdout.take().expect("stdout");
    let mut key = None;
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read stdout");
        if let Some(k) = line.split_whitespace().find(|w| w.starts_with("ck_")) {
            key = Some(k.to_string());
        }
        if line.starts_with("Press Ctrl-C") {
            break;
        }
    }
    Demo {
        child,
        base: format!("http://127.0.0.1:{port}"),
        key: key.expect("the demo prints its admin key"),
        http: reqwest::Client::new(),
        dir,
    }
}
