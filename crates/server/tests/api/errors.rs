//! Every error class gets a 4xx problem+json with a stable code, never a 500.

use crate::helpers::*;

#[tokio::test]
async fn malformed_requests_get_precise_problems() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let messages = app.url(&format!("/v1/conversations/{}/messages", conv.id));
    let post = |body: String, ct: &'static str| {
        app.http
            .post(messages.clone())
            .bearer_auth(&conv.token)
            .header("content-type", ct)
            .body(body)
            .send()
    };

    let p = assert_problem(
        post("{\"text\": ".into(), "application/json")
            .await
            .expect("send"),
        400,
        "malformed_json",
    )
    .await;
    assert!(p["detail"].as_str().unwrap_or("").contains("JSON"), "{p}");
    let p = assert_problem(
        post(
            "{\"text\": \"hi\", \"colour\": 1}".into(),
            "application/json",
        )
        .await
        .expect("send"),
        422,
        "invalid_body",
    )
    .await;
    assert!(
        p["detail"].as_str().unwrap_or("").contains("colour"),
        "names the unknown field: {p}"
    );
    assert_problem(
        post("{\"text\": 42}".into(), "application/json")
            .await
            .expect("send"),
        422,
        "invalid_body",
    )
    .await;
    assert_problem(
        post("{}".into(), "application/json").await.expect("send"),
        422,
        "invalid_body",
    )
    .await;
    assert_problem(
        post("{\"text\": \"   \"}".into(), "application/json")
            .await
            .expect("send"),
        422,
        "invalid_body",
    )
    .await;
    assert_problem(
        post("{\"text\": \"hi\"} trailing".into(), "application/json")
            .await
            .expect("send"),
        400,
        "malformed_json",
    )
    .await;
    assert_problem(
        post("text=hi".into(), "application/x-www-form-urlencoded")
            .await
            .expect("send"),
        415,
        "unsupported_media_type",
    )
    .await;

    let huge = format!("{{\"text\": \"{}\"}}", "a".repeat(200_000));
    let res = post(huge, "application/json").await.expect("send");
    assert_problem(res, 413, "payload_too_large").await;
    let long = format!("{{\"text\": \"{}\"}}", "a".repeat(5000));
    let res = post(long, "application/json").await.expect("send");
    assert_problem(res, 422, "invalid_body").await;

    let res = app
        .http
        .post(messages.clone())
        .bearer_auth(&conv.token)
        .header("idempotency-key", "has spaces in it")
        .json(&serde_json::json!({"text": "hi"}))
        .send()
        .await
        .expect("send");
    assert_problem(res, 400, "invalid_idempotency_key").await;

    // Nothing above was stored.
    assert!(app.messages(&conv).await.is_empty());
}

#[tokio::test]
async fn bad_ids_unknown_routes_and_methods() {
    let app = TestApp::spawn().await;
    let p = assert_problem(
        app.get("/v1/conversations/not-a-uuid", Some(&app.api_key))
            .await,
        400,
        "invalid_id",
    )
    .await;
    assert!(p["detail"].as_str().unwrap_or("").contains("not-a-uuid"));
    assert_problem(app.get("/v1/nothing-here", None).await, 404, "not_found").await;
    let res = app
        .http
        .delete(app.url("/v1/conversations"))
        .send()
        .await
        .expect("send");
    assert_problem(res, 405, "method_not_allowed").await;
    let conv = app.create_conversation().await;
    let res = app
        .http
        .get(app.url(&format!("/v1/conversations/{}/events", conv.id)))
        .bearer_auth(&conv.token)
        .header("accept", "text/event-stream")
        .header("last-event-id", "yesterday")
        .send()
        .await
        .expect("send");
    assert_problem(res, 400, "invalid_parameter").await;
}

#[tokio::test]
async fn request_ids_are_echoed_or_generated() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["x-request-id"], "abc-123");
    let res = app
        .http
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(res.headers()["x-request-id"].len(), 32);
    let res = app
        .http
        .get(app.url("/nope"))
        .header("x-request-id", "trace-9")
        .send()
        .await
        .expect("send");
    let body = assert_problem(res, 404, "not_found").await;
    assert_eq!(body["request_id"], "trace-9");
}
