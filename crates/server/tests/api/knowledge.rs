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

#[tokio::test]
async fn a_sync_is_a_queued_task_with_progress_and_a_result() {
    let app = TestApp::spawn().await;
    let kb = app.data_dir.join("more-kb");
    std::fs::create_dir_all(&kb).expect("mkdir");
    for i in 0..20 {
        std::fs::write(
            kb.join(format!("gadget-{i}.md")),
            format!("# Gadget {i} manual\nGadget {i} pairs with the hub in zebra mode.\n"),
        )
        .expect("write");
    }
    let res = app
        .http
        .post(app.url("/v1/knowledge/sync"))
        .bearer_auth(&app.api_key)
        .json(&serde_json::json!({ "path": kb.display().to_string() }))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 202);
    let location = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_string();
    let task: Value = res.json().await.expect("json");
    assert_eq!(
        location,
        format!("/v1/tasks/{}", task["id"].as_str().expect("id"))
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let done = loop {
        let t: Value = app
            .get(&location, Some(&app.api_key))
            .await
            .json()
            .await
            .expect("json");
        if t["status"] == "succeeded" {
            break t;
        }
        assert_ne!(t["status"], "failed", "{t}");
        assert!(
            std::time::Instant::now() < deadline,
            "task did not finish: {t}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        (
            done["progress_done"].as_u64(),
            done["progress_total"].as_u64()
        ),
        (Some(20), Some(20))
    );
    assert_eq!(done["result"]["added"], 20);
    let found: Value = app
        .get(
            "/v1/knowledge/search?q=zebra%20mode&k=3",
            Some(&app.api_key),
        )
        .await
        .json()
        .await
        .expect("json");
    assert!(
        found["hits"][0]["title"]
            .as_str()
            .expect("title")
            .starts_with("Gadget")
    );

    // Only inside the configured roots, only with a key, only the key's own tasks.
    let outside = app
        .http
        .post(app.url("/v1/knowledge/sync"))
        .bearer_auth(&app.api_key)
        .json(&serde_json::json!({ "path": "/etc" }))
        .send()
        .await
        .expect("send");
    assert_problem(outside, 403, "forbidden").await;
    let missing = app
        .http
        .post(app.url("/v1/knowledge/sync"))
        .bearer_auth(&app.api_key)
        .json(&serde_json::json!({ "path": app.data_dir.join("nope").display().to_string() }))
        .send()
        .await
        .expect("send");
    assert_problem(missing, 422, "invalid_body").await;
    assert_problem(
        app.get(&location, Some(&app.other_key)).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(app.get(&location, None).await, 401, "unauthorized").await;
    assert_problem(
        app.get("/v1/tasks/not-an-id", Some(&app.api_key)).await,
        400,
        "invalid_id",
    )
    .await;
}

#[tokio::test]
async fn resolved_questions_are_recorded_listed_and_forgotten_per_workspace() {
    let app = TestApp::spawn().await;
    let put = |key: &str, body: Value, token: String| {
        let req = app
            .http
            .put(app.url(&format!("/v1/knowledge/resolved-questions/{key}")))
            .bearer_auth(token)
            .json(&body);
        async move { req.send().await.expect("send") }
    };
    let res = put(
        "T-100",
        serde_json::json!({ "question": "I forgot my password, how do I get back in?",
                            "documents": ["password.md", "password.md"] }),
        app.api_key.clone(),
    )
    .await;
    assert_eq!(res.status(), 200);
    let saved: Value = res.json().await.expect("json");
    assert_eq!(saved["key"], "T-100");
    assert_eq!(saved["origin"], "api");
    assert_eq!(saved["documents"], serde_json::json!(["password.md"]));

    // A document the workspace does not have: nothing is written.
    let problem = assert_problem(
        put(
            "T-101",
            serde_json::json!({ "question": "Where is my parcel?", "documents": ["parcels.md"] }),
            app.api_key.clone(),
        )
        .await,
        422,
        "invalid_body",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("parcels.md")
    );
    // A blank question, no documents, an unknown field, and a document another workspace
    // does not have: each refused, nothing written.
    for (key, body, token) in [
        (
            "T-102",
            serde_json::json!({ "question": " ", "documents": ["password.md"] }),
            &app.api_key,
        ),
        (
            "T-103",
            serde_json::json!({ "question": "x", "documents": [] }),
            &app.api_key,
        ),
        (
            "T-104",
            serde_json::json!({ "question": "x", "docs": ["password.md"] }),
            &app.api_key,
        ),
        (
            "T-100",
            serde_json::json!({ "question": "password?", "documents": ["password.md"] }),
            &app.other_key,
        ),
    ] {
        assert_problem(put(key, body, token.clone()).await, 422, "invalid_body").await;
    }

    let list = resolved_list(&app).await;
    let keys: Vec<&str> = list["questions"]
        .as_array()
        .expect("questions")
        .iter()
        .filter_map(|q| q["key"].as_str())
        .collect();
    assert_eq!(keys, vec!["T-100"]);
    let other: Value = app
        .get("/v1/knowledge/resolved-questions", Some(&app.other_key))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(other["questions"], serde_json::json!([]));
    // BM25 only (no embedder here): votes belong to the reranking stage.
    let search: Value = app
        .get(
            "/v1/knowledge/search?q=forgot%20password",
            Some(&app.api_key),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(search["stages"]["votes"], serde_json::json!([]));

    let delete = |key: &str, token: &str| {
        app.http
            .delete(app.url(&format!("/v1/knowledge/resolved-questions/{key}")))
            .bearer_auth(token)
            .send()
    };
    assert_problem(
        delete("T-100", &app.other_key).await.expect("send"),
        404,
        "not_found",
    )
    .await;
    assert_eq!(
        delete("T-100", &app.api_key).await.expect("send").status(),
        204
    );
    assert_problem(
        delete("T-100", &app.api_key).await.expect("send"),
        404,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/v1/knowledge/resolved-questions", None).await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn a_customer_solving_an_ai_answer_teaches_a_resolved_question() {
    let app = TestApp::spawn().await;
    let conv = answered(&app, app.create_conversation().await).await;
    let messages = app.messages(&conv).await;
    let reply = messages.last().expect("the AI's reply");
    assert!(
        !reply["citations"].as_array().expect("citations").is_empty(),
        "{reply}"
    );
    resolve(&app, &conv, &conv.token, serde_json::json!({ "rating": 5 })).await;
    let list = resolved_list(&app).await;
    let q = &list["questions"][0];
    assert_eq!(q["key"], format!("conversation:{}", conv.id), "{list}");
    assert_eq!(q["origin"], "conversation");
    assert_eq!(q["question"], "How do I reset my password?");
    assert_eq!(q["documents"], serde_json::json!(["password.md"]));

    // Solved with a rating of 1, or resolved by staff: nothing is learned.
    let unhappy = answered(&app, app.create_conversation().await).await;
    let by_staff = answered(&app, app.create_conversation().await).await;
    resolve(
        &app,
        &unhappy,
        &unhappy.token,
        serde_json::json!({ "rating": 1 }),
    )
    .await;
    resolve(&app, &by_staff, &app.api_key, serde_json::json!({})).await;
    let list = resolved_list(&app).await;
    assert_eq!(
        list["questions"].as_array().expect("questions").len(),
        1,
        "{list}"
    );
}

/// `conv` after the customer asked how to reset a password and the AI answered.
async fn answered(app: &TestApp, conv: Conv) -> Conv {
    app.post_message(&conv, "How do I reset my password?", None)
        .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !app
        .messages(&conv)
        .await
        .last()
        .is_some_and(|m| m["author"] == "ai")
    {
        assert!(std::time::Instant::now() < deadline, "no AI answer");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    conv
}

async fn resolve(app: &TestApp, conv: &Conv, token: &str, body: Value) {
    let res = app
        .http
        .post(app.url(&format!("/v1/conversations/{}/resolve", conv.id)))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 200);
}

async fn resolved_list(app: &TestApp) -> Value {
    app.get("/v1/knowledge/resolved-questions", Some(&app.api_key))
        .await
        .json()
        .await
        .expect("json")
}
