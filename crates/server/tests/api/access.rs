use crate::helpers::*;
use serde_json::json;

#[tokio::test]
async fn only_the_token_holder_or_the_workspace_reads_a_conversation() {
    let app = TestApp::spawn().await;
    let mine = app.create_conversation().await;
    let theirs = app.create_conversation().await;
    let path = format!("/v1/conversations/{}", mine.id);

    assert_eq!(app.get(&path, Some(&mine.token)).await.status(), 200);
    assert_eq!(app.get(&path, Some(&app.api_key)).await.status(), 200);
    assert_problem(app.get(&path, None).await, 401, "unauthorized").await;
    // Another customer's token never opens my conversation, on any endpoint.
    assert_problem(app.get(&path, Some(&theirs.token)).await, 403, "forbidden").await;
    assert_problem(
        app.get(&format!("{path}/messages"), Some(&theirs.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get(&format!("{path}/events"), Some(&theirs.token))
            .await,
        403,
        "forbidden",
    )
    .await;
    let post = app
        .http
        .post(app.url(&format!("{path}/messages")))
        .bearer_auth(&theirs.token)
        .json(&json!({"text": "hi"}))
        .send()
        .await
        .expect("send");
    assert_problem(post, 403, "forbidden").await;
    // Another workspace's key neither.
    assert_problem(app.get(&path, Some(&app.other_key)).await, 403, "forbidden").await;
    // Forged and malformed credentials are rejected.
    let forged = format!("{}00", &mine.token[..mine.token.len() - 2]);
    assert_problem(
        app.get(&path, Some(&forged)).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.get(&path, Some("ck_deadbeef_0000")).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_problem(
        app.get(&path, Some("hello")).await,
        401,
        "invalid_credentials",
    )
    .await;
    let basic = app
        .http
        .get(app.url(&path))
        .header("authorization", "Basic Zm9vOmJhcg==")
        .send()
        .await
        .expect("send");
    assert_problem(basic, 401, "invalid_credentials").await;
}

#[tokio::test]
async fn unknown_conversations_are_404_for_the_workspace() {
    let app = TestApp::spawn().await;
    let path = format!("/v1/conversations/{}", uuid::Uuid::now_v7());
    assert_problem(
        app.get(&path, Some(&app.api_key)).await,
        404,
        "conversation_not_found",
    )
    .await;
}
