use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn knowledge_search_shows_each_stage_and_needs_a_key() {
    let app = TestApp::spawn().await;
    let res = app
        .get(
            "/v1/knowledge/search?q=reset%20password&k=3",
            Some(&app.api_key),
        )
        .await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["mode"], "bm25", "no embedder configured in tests");
    assert_eq!(body["hits"][0]["title"], "Reset your password");
    assert!(body["hits"].as_array().expect("hits").len() <= 3);
    assert!(!body["stages"]["bm25"].as_array().expect("bm25").is_empty());
    assert_eq!(body["principals"], serde_json::json!(["public"]));
    let context = &body["context"][0];
    assert_eq!(context["n"], 1);
    assert_eq!(context["title"], "Reset your password");
    assert!(
        context["sentences"]
            .as_array()
            .expect("sentences")
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.contains("Forgot password")))
    );
    let terms: Vec<&str> = body["terms"]
        .as_array()
        .expect("terms")
        .iter()
        .filter_map(|t| t[0].as_str())
        .collect();
    assert_eq!(terms, vec!["reset", "password"]);

    assert_problem(
        app.get("/v1/knowledge/search?q=reset", None).await,
        401,
        "unauthorized",
    )
    .await;
    let conv = app.create_conversation().await;
    assert_problem(
        app.get("/v1/knowledge/search?q=reset", Some(&conv.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/v1/knowledge/search?q=", Some(&app.api_key)).await,
        400,
        "invalid_parameter",
    )
    .await;
    assert_problem(
        app.get("/v1/knowledge/search", Some(&app.api_key)).await,
        400,
        "invalid_parameter",
    )
    .await;
    assert_problem(
        app.get("/v1/knowledge/search?q=x&k=0", Some(&app.api_key))
            .await,
        400,
        "invalid_parameter",
    )
    .await;
    assert_problem(
        app.get("/v1/knowledge/search?q=x&mode=magic", Some(&app.api_key))
            .await,
        400,
        "invalid_parameter",
    )
    .await;
    // Another workspace's key searches its own (empty) knowledge base.
    let other: Value = app
        .get(
            "/v1/knowledge/search?q=reset%20password",
            Some(&app.other_key),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(other["hits"], serde_json::json!([]));
}
