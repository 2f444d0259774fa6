use crate::helpers::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_question_gets_a_cited_answer_streamed_and_stored() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let mut events = app.events(&conv.id, &conv.token, Some(0)).await;
    let res = app
        .post_message(&conv, "How long does a refund take?", None)
        .await;
    assert_eq!(res.status(), 202);
    let posted: Value = res.json().await.expect("json");
    assert_eq!(posted["message"]["author"], "customer");

    let mut deltas = String::new();
    let reply = loop {
        let (event, _, data) = futures::StreamExt::next(&mut events).await.expect("event");
        match event.as_str() {
            "message.delta" => {
                deltas.push_str(data["delta"].as_str().expect("delta"));
            }
            "message.created" if data["message"]["author"] == "ai" => {
                break data["message"].clone();
            }
            _ => {}
        }
    };
    assert_eq!(
        deltas,
        reply["text"].as_str().expect("text"),
        "streamed deltas add up to the stored reply"
    );
    let text = reply["text"].as_str().expect("text");
    assert!(text.contains("5 to 7 business days"), "{text}");
    assert!(text.contains("[1]"), "{text}");
    assert_eq!(reply["citations"][0]["title"], "Returns and refunds");
    assert_eq!(
        reply["citations"][0]["url"],
        "https://help.example.test/returns"
    );

    let stored = app.messages(&conv).await;
    let authors: Vec<_> = stored
        .iter()
        .map(|m| m["author"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(authors, vec!["customer", "ai"]);
    assert_eq!(stored[1]["id"], reply["id"]);
}

#[tokio::test]
async fn weak_evidence_says_so_offers_a_person_and_records_why() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let mut events = app.events(&conv.id, &conv.token, Some(0)).await;
    app.post_message(&conv, "Do you sell robot vacuums or lawn mowers?", None)
        .await;
    let reply = TestApp::next_message(&mut events, &["ai"]).await;
    let text = reply["text"].as_str().expect("text");
    assert!(text.contains("couldn't find"), "{text}");
    assert!(text.contains("person"), "{text}");
    assert_eq!(reply["citations"], json!([]));

    // Staff see why in the event log.
    let log = app
        .wait_for_log_event(&conv.id, &app.api_key, "reply.sent")
        .await;
    let sent = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["type"] == "reply.sent")
        .expect("reply.sent")
        .clone();
    assert_eq!(sent["reply_kind"], "no_answer");
    let reason = sent["reason"].as_str().expect("reason");
    assert!(
        reason.contains("below the threshold") || reason.contains("no passage matched"),
        "{sent}"
    );
    let retrieval = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["type"] == "retrieval.done")
        .expect("retrieval")
        .clone();
    assert!(
        retrieval["evidence"].as_f64().expect("evidence")
            < retrieval["threshold"].as_f64().expect("threshold")
    );
}

#[tokio::test]
async fn retried_posts_with_the_same_idempotency_key_store_one_message() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let first = app
        .post_message(&conv, "What are your support hours?", Some("key-1"))
        .await;
    assert_eq!(first.status(), 202);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.expect("json");
    let second = app
        .post_message(&conv, "What are your support hours?", Some("key-1"))
        .await;
    assert_eq!(second.status(), 202);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    let second: Value = second.json().await.expect("json");
    assert_eq!(first["message"]["id"], second["message"]["id"]);

    let reused = app
        .post_message(&conv, "Something else entirely", Some("key-1"))
        .await;
    assert_problem(reused, 422, "idempotency_key_reused").await;

    let mut events = app.events(&conv.id, &conv.token, Some(0)).await;
    TestApp::next_message(&mut events, &["ai"]).await;
    let customer_messages = app
        .messages(&conv)
        .await
        .into_iter()
        .filter(|m| m["author"] == "customer")
        .count();
    assert_eq!(customer_messages, 1);
}

#[tokio::test]
async fn retried_conversation_creation_returns_the_same_conversation_and_token() {
    let app = TestApp::spawn().await;
    let create = || {
        app.http
            .post(app.url("/v1/conversations"))
            .header("idempotency-key", "create-1")
            .json(&json!({"subject": "Order help"}))
            .send()
    };
    let a = create().await.expect("send");
    assert_eq!(a.status(), 201);
    let a: Value = a.json().await.expect("json");
    let b = create().await.expect("send");
    assert_eq!(b.status(), 200);
    assert_eq!(b.headers()["idempotent-replayed"], "true");
    let b: Value = b.json().await.expect("json");
    assert_eq!(a, b);
    let other = app
        .http
        .post(app.url("/v1/conversations"))
        .header("idempotency-key", "create-1")
        .json(&json!({"subject": "Different"}))
        .send()
        .await
        .expect("send");
    assert_problem(other, 422, "idempotency_key_reused").await;
}

#[tokio::test]
async fn talking_to_a_person_moves_to_pending_human_and_silences_the_ai() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let mut events = app.events(&conv.id, &conv.token, Some(0)).await;
    let res = app.handoff(&conv, None).await;
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.expect("json");
    assert_eq!(body["status"], "pending_human");

    let (event, id, data) = futures::StreamExt::next(&mut events).await.expect("event");
    assert_eq!(event, "status.changed");
    assert!(!id.is_empty());
    assert_eq!(
        (data["from"].as_str(), data["to"].as_str()),
        (Some("ai_active"), Some("pending_human"))
    );
    let notice = TestApp::next_message(&mut events, &["system"]).await;
    assert!(notice["text"].as_str().expect("text").contains("person"));

    // Asking again changes nothing.
    let again = app
        .handoff(&conv, Some(json!({"reason": "still waiting"})))
        .await;
    assert_eq!(again.status(), 200);

    // The AI no longer answers; the log says so.
    app.post_message(&conv, "How long do refunds take?", None)
        .await;
    app.wait_for_log_event(&conv.id, &app.api_key, "ai.silenced")
        .await;
    let authors: Vec<String> = app
        .messages(&conv)
        .await
        .iter()
        .map(|m| m["author"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(authors, vec!["system", "customer"]);
}

#[tokio::test]
async fn listing_is_paginated_filtered_and_needs_a_workspace_key() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.create_conversation().await);
    }
    app.handoff(&ids[0], None).await;
    let page1: Value = app
        .get("/v1/conversations?limit=3", Some(&app.api_key))
        .await
        .json()
        .await
        .expect("json");
    let got: Vec<&str> = page1["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        got,
        vec![ids[4].id.as_str(), ids[3].id.as_str(), ids[2].id.as_str()]
    );
    let cursor = page1["next_cursor"].as_str().expect("cursor");
    let page2: Value = app
        .get(
            &format!("/v1/conversations?limit=3&cursor={cursor}"),
            Some(&app.api_key),
        )
        .await
        .json()
        .await
        .expect("json");
    let got: Vec<&str> = page2["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(got, vec![ids[1].id.as_str(), ids[0].id.as_str()]);
    assert!(page2["next_cursor"].is_null());

    let pending: Value = app
        .get("/v1/conversations?status=pending_human", Some(&app.api_key))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(pending["items"].as_array().expect("items").len(), 1);
    assert_eq!(pending["items"][0]["id"], ids[0].id.as_str());

    // The other workspace sees none of them.
    let other: Value = app
        .get("/v1/conversations", Some(&app.other_key))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(other["items"], json!([]));

    assert_problem(
        app.get("/v1/conversations", None).await,
        401,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.get("/v1/conversations", Some(&ids[0].token)).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/v1/conversations?cursor=nope", Some(&app.api_key))
            .await,
        400,
        "invalid_parameter",
    )
    .await;
    assert_problem(
        app.get("/v1/conversations?limit=1000", Some(&app.api_key))
            .await,
        400,
        "invalid_parameter",
    )
    .await;
    assert_problem(
        app.get("/v1/conversations?status=open", Some(&app.api_key))
            .await,
        400,
        "invalid_parameter",
    )
    .await;
    assert_problem(
        app.get("/v1/conversations?colour=red", Some(&app.api_key))
            .await,
        400,
        "invalid_parameter",
    )
    .await;
}

#[tokio::test]
async fn api_key_callers_open_conversations_for_named_customers() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(app.url("/v1/conversations"))
        .bearer_auth(&app.api_key)
        .json(&json!({"customer": {"external_id": "crm-42", "name": "Ada", "email": "ada@example.com"}, "subject": "Billing"}))
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 201);
    let a: Value = res.json().await.expect("json");
    assert_eq!(a["conversation"]["channel"], "api");
    let res = app
        .http
        .post(app.url("/v1/conversations"))
        .bearer_auth(&app.api_key)
        .json(&json!({"customer": {"external_id": "crm-42"}}))
        .send()
        .await
        .expect("send");
    let b: Value = res.json().await.expect("json");
    assert_eq!(
        a["conversation"]["customer_id"], b["conversation"]["customer_id"],
        "same customer by identity"
    );

    // Anonymous callers cannot claim an identity.
    let res = app
        .http
        .post(app.url("/v1/conversations"))
        .json(&json!({"customer": {"external_id": "crm-42"}}))
        .send()
        .await
        .expect("send");
    assert_problem(res, 403, "forbidden").await;
    // Nor open conversations in a workspace without public chat.
    let res = app
        .http
        .post(app.url("/v1/conversations"))
        .json(&json!({"workspace": "other"}))
        .send()
        .await
        .expect("send");
    assert_problem(res, 401, "unauthorized").await;
    let res = app
        .http
        .post(app.url("/v1/conversations"))
        .json(&json!({"workspace": "nope"}))
        .send()
        .await
        .expect("send");
    assert_problem(res, 404, "workspace_not_found").await;
    // A key is bound to its workspace.
    let res = app
        .http
        .post(app.url("/v1/conversations"))
        .bearer_auth(&app.other_key)
        .json(&json!({"workspace": "default"}))
        .send()
        .await
        .expect("send");
    assert_problem(res, 403, "forbidden").await;
}

#[tokio::test]
#[cfg_attr(
    not(concierge_pg_tests),
    ignore = "CONCIERGE_TEST_DATABASE_URL is not set"
)]
async fn postgres_end_to_end_answer_idempotency_and_handoff() {
    let app = TestApp::spawn_on(Backend::Postgres).await;
    let conv = app.create_conversation().await;
    let mut events = app.events(&conv.id, &conv.token, Some(0)).await;
    let a: Value = app
        .post_message(&conv, "How do I reset my password?", Some("pg-1"))
        .await
        .json()
        .await
        .expect("json");
    let b: Value = app
        .post_message(&conv, "How do I reset my password?", Some("pg-1"))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(a["message"]["id"], b["message"]["id"]);
    let reply = TestApp::next_message(&mut events, &["ai"]).await;
    assert!(
        reply["text"]
            .as_str()
            .expect("text")
            .contains("Forgot password"),
        "{reply}"
    );
    assert_eq!(reply["citations"][0]["title"], "Reset your password");
    let res = app.handoff(&conv, None).await;
    assert_eq!(res.status(), 200);
    let ready: Value = app.get("/readyz", None).await.json().await.expect("json");
    assert_eq!(ready["store"], "ok (postgres)");
}
