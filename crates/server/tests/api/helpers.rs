use concierge_config::Config;
use concierge_server::{Application, ShutdownHandle};
use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    /// Key of the `default` workspace (where public conversations are created).
    pub api_key: String,
    /// Key of a second, non-public workspace.
    pub other_key: String,
    /// The application's data directory; also the only allowed knowledge source root.
    pub data_dir: PathBuf,
    shutdown: ShutdownHandle,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.shutdown();
    }
}

pub struct Conv {
    pub id: String,
    pub token: String,
}

pub type Events = Pin<Box<dyn Stream<Item = (String, String, Value)> + Send>>;

fn fixture_kb() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/kb")
}

pub enum Backend {
    Sqlite,
    Postgres,
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_on(Backend::Sqlite).await
    }

    pub async fn spawn_on(backend: Backend) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config::default();
        config.storage.data_dir = dir.path().to_path_buf();
        config.server.bind = "127.0.0.1:0".into();
        config.agent.workers = 2;
        // Hermetic: BM25 only (the local model has its own tests).
        config.knowledge.embeddings.provider = concierge_config::EmbeddingProvider::None;
        config.knowledge.source_roots = vec![dir.path().to_path_buf()];
        let store = match backend {
            Backend::Sqlite => concierge_server::open_store(&config).await.expect("store"),
            Backend::Postgres => {
                let url = std::env::var("CONCIERGE_TEST_DATABASE_URL")
                    .expect("CONCIERGE_TEST_DATABASE_URL must be set for PostgreSQL tests");
                Arc::new(
                    concierge_store::testing::fresh_postgres(&url)
                        .await
                        .expect("postgres store"),
                )
            }
        };
        let app = Application::build_with_store(config, store)
            .await
            .expect("build");
        let state = app.state();
        let store = state.service.store.clone();
        let default = store
            .workspace_by_slug("default")
            .await
            .expect("ws")
            .expect("default ws");
        state
            .service
            .knowledge
            .sync(
                default.id,
                &concierge_knowledge::DirectorySource::new(&fixture_kb()).expect("kb"),
                &|_, _| {},
            )
            .await
            .expect("ingest");
        let (_, api_key) = concierge_server::create_api_key(store.as_ref(), default.id, "test")
            .await
            .expect("key");
        let other = store
            .ensure_workspace("other", "Other", false)
            .await
            .expect("other ws");
        let (_, other_key) = concierge_server::create_api_key(store.as_ref(), other.id, "test")
            .await
            .expect("key");
        let base = format!("http://{}", app.local_addr().expect("addr"));
        let shutdown = app.shutdown_handle();
        tokio::spawn(app.run_until_stopped());
        Self {
            base,
            http: reqwest::Client::new(),
            api_key,
            other_key,
            data_dir: dir.path().to_path_buf(),
            shutdown,
            _dir: dir,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn create_conversation(&self) -> Conv {
        let res = self
            .http
            .post(self.url("/v1/conversations"))
            .json(&json!({}))
            .send()
            .await
            .expect("send");
        assert_eq!(res.status(), 201, "create conversation");
        let body: Value = res.json().await.expect("json");
        Conv {
            id: body["conversation"]["id"].as_str().expect("id").to_string(),
            token: body["token"].as_str().expect("token").to_string(),
        }
    }

    pub async fn post_message(
        &self,
        conv: &Conv,
        text: &str,
        key: Option<&str>,
    ) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/conversations/{}/messages", conv.id)))
            .bearer_auth(&conv.token)
            .json(&json!({ "text": text }));
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        req.send().await.expect("send")
    }

    /// "Talk to a person", with an optional JSON body.
    pub async fn handoff(&self, conv: &Conv, body: Option<Value>) -> reqwest::Response {
        let mut req = self
            .http
            .post(self.url(&format!("/v1/conversations/{}/handoff", conv.id)))
            .bearer_auth(&conv.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.expect("send")
    }

    /// The conversation's event log (JSON) as `token` sees it.
    pub async fn event_log(&self, conv_id: &str, token: &str) -> Value {
        let res = self
            .get(&format!("/v1/conversations/{conv_id}/events"), Some(token))
            .await;
        assert_eq!(res.status(), 200);
        res.json().await.expect("json")
    }

    /// Polls the event log until an event of type `kind` appears (events after a streamed
    /// message may still be in flight); returns the whole log.
    pub async fn wait_for_log_event(&self, conv_id: &str, token: &str, kind: &str) -> Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let log = self.event_log(conv_id, token).await;
            if log["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|e| e["type"] == kind))
            {
                return log;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {kind} event: {log}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("send")
    }

    pub async fn messages(&self, conv: &Conv) -> Vec<Value> {
        let res = self
            .get(
                &format!("/v1/conversations/{}/messages", conv.id),
                Some(&conv.token),
            )
            .await;
        assert_eq!(res.status(), 200);
        let body: Value = res.json().await.expect("json");
        body["items"].as_array().expect("items").clone()
    }

    /// Opens the SSE stream; yields `(event, id, data)`.
    pub async fn events(&self, conv_id: &str, token: &str, last_event_id: Option<i64>) -> Events {
        let mut req = self
            .http
            .get(self.url(&format!("/v1/conversations/{conv_id}/events")))
            .bearer_auth(token)
            .header("accept", "text/event-stream");
        if let Some(id) = last_event_id {
            req = req.header("last-event-id", id.to_string());
        }
        let res = req.send().await.expect("send");
        assert_eq!(res.status(), 200);
        assert!(
            res.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with("text/event-stream"),
            "{:?}",
            res.headers()
        );
        Box::pin(res.bytes_stream().eventsource().filter_map(|e| async move {
            let e = e.ok()?;
            Some((
                e.event,
                e.id,
                serde_json::from_str(&e.data).unwrap_or(Value::Null),
            ))
        }))
    }

    /// Waits for the next message.created by one of `authors`.
    pub async fn next_message(events: &mut Events, authors: &[&str]) -> Value {
        let wait = async {
            while let Some((event, _, data)) = events.next().await {
                if event == "message.created"
                    && authors.contains(&data["message"]["author"].as_str().unwrap_or(""))
                {
                    return data["message"].clone();
                }
            }
            panic!("stream ended before a message from {authors:?}");
        };
        tokio::time::timeout(Duration::from_secs(20), wait)
            .await
            .expect("timed out waiting for a message")
    }
}

/// Asserts a problem+json response with `code` and `status`; returns the body.
pub async fn assert_problem(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "status for {code}");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert_eq!(ct, "application/problem+json", "content type for {code}");
    let request_id = res
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body: Value = res.json().await.expect("problem json");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], format!("urn:concierge:error:{code}"));
    assert!(!body["title"].as_str().unwrap_or("").is_empty());
    assert!(!body["detail"].as_str().unwrap_or("").is_empty(), "{body}");
    assert!(!request_id.is_empty());
    assert_eq!(
        body["request_id"],
        request_id.as_str(),
        "request id in body and header"
    );
    body
}
