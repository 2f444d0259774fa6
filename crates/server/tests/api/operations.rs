use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn health_readiness_metrics_and_docs() {
    let app = TestApp::spawn().await;
    let health: Value = app.get("/healthz", None).await.json().await.expect("json");
    assert_eq!(health["status"], "ok");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["store"], "ok (sqlite)");
    assert_eq!(ready["indexed_chunks"], ready["stored_chunks"]);
    assert!(ready["indexed_chunks"].as_u64().expect("chunks") >= 4);

    let metrics = app.get("/metrics", None).await;
    assert!(
        metrics.headers()["content-type"]
            .to_str()
            .expect("ct")
            .starts_with("text/plain")
    );
    let text = metrics.text().await.expect("text");
    assert!(text.contains("concierge_http_requests_total"), "{text}");

    let spec: Value = app
        .get("/openapi.json", None)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(spec["info"]["title"], "Concierge API");
    for path in [
        "/v1/conversations",
        "/v1/conversations/{id}",
        "/v1/conversations/{id}/messages",
        "/v1/conversations/{id}/events",
        "/v1/conversations/{id}/handoff",
        "/healthz",
        "/readyz",
    ] {
        assert!(
            spec["paths"][path].is_object(),
            "{path} missing from the OpenAPI document"
        );
    }
    assert!(spec["components"]["securitySchemes"]["api_key"].is_object());

    let docs = app.get("/docs/", None).await;
    assert_eq!(docs.status(), 200);
    let html = docs.text().await.expect("html");
    assert!(html.contains("swagger"), "the docs page is served");
    assert!(!html.contains("cdn."), "no CDN assets");
}

#[tokio::test]
async fn web_chat_and_widget_are_served_without_cdn() {
    let app = TestApp::spawn().await;
    let page = app.get("/", None).await;
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .expect("csp")
            .contains("default-src 'self'")
    );
    let html = page.text().await.expect("html");
    assert!(html.contains("id=\"message-input\""));
    assert!(html.contains("content=\"default\""), "workspace filled in");
    assert!(!html.contains("{{"), "placeholders replaced");
    for (path, ct) in [
        ("/assets/chat.js", "text/javascript"),
        ("/assets/chat.css", "text/css"),
        ("/widget.js", "text/javascript"),
    ] {
        let res = app.get(path, None).await;
        assert_eq!(res.status(), 200, "{path}");
        assert!(
            res.headers()["content-type"]
                .to_str()
                .expect("ct")
                .starts_with(ct),
            "{path}"
        );
        let body = res.text().await.expect("body");
        assert!(
            !body.contains("https://cdn")
                && !body.contains("unpkg.com")
                && !body.contains("googleapis"),
            "{path} loads nothing from a CDN"
        );
    }
    assert_eq!(app.get("/widget-demo", None).await.status(), 200);
}

#[tokio::test]
async fn a_cross_encoder_folder_that_is_not_a_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "gpt2"}"#).expect("write");
    let mut config = concierge_config::Config::default();
    config.knowledge.cross_encoder.dir = Some(dir.path().to_path_buf());
    let err = concierge_server::cross_encoder(&config)
        .err()
        .expect("not a BERT checkpoint");
    let message = format!("{err:#}");
    assert!(message.contains("knowledge.cross_encoder.dir"), "{message}");
    assert!(message.contains("config.json"), "{message}");
    config.knowledge.cross_encoder.dir = None;
    assert!(
        concierge_server::cross_encoder(&config)
            .expect("none")
            .is_none()
    );
}
