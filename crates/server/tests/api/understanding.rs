//! Triage and routing over HTTP: the workspace's routing policy decides, staff see the triage
//! with each message and in the event log, customers never do. (Intent training needs sentence
//! embeddings; these hermetic tests run without, so triage has no intent here: the intent
//! model is exercised by the understanding crate's tests and the demo.)

use crate::helpers::*;
use serde_json::{Value, json};

async fn put(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    app.http
        .put(app.url(path))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("send")
}

#[tokio::test]
async fn the_routing_policy_hands_critical_messages_to_a_team_and_staff_see_why() {
    let app = TestApp::spawn().await;
    let policy = json!({"rules": [
        {"name": "critical to incidents", "when": {"urgency_at_least": "critical"}, "action": "handoff", "team": "incidents"},
        {"name": "big amounts", "when": {"amount_above": 100}, "action": "handoff", "team": "billing"}
    ]});
    let res = put(&app, "/v1/routing-policy", &policy.to_string()).await;
    assert_eq!(res.status(), 200);
    let res = app.get("/v1/routing-policy", Some(&app.api_key)).await;
    let stored: Value = res.json().await.expect("json");
    assert_eq!(stored["rules"][0]["team"], "incidents");

    let conv = app.create_conversation().await;
    let res = app
        .post_message(
            &conv,
            "Sparks and smoke are coming out of my smart plug, it cost $40!",
            None,
        )
        .await;
    assert_eq!(res.status(), 202);
    let log = app
        .wait_for_log_event(&conv.id, &app.api_key, "status.changed")
        .await;
    let items = log["items"].as_array().expect("items");
    let triaged = items
        .iter()
        .find(|e| e["type"] == "message.triaged")
        .expect("triage event");
    assert_eq!(triaged["triage"]["urgency"]["level"], "critical");
    assert!(
        triaged["triage"]["urgency"]["signals"]
            .as_array()
            .expect("signals")
            .iter()
            .any(|s| s["source"] == "critical:safety"),
        "{triaged}"
    );
    assert_eq!(triaged["triage"]["amounts"], json!([40.0]));
    let routed = items
        .iter()
        .find(|e| e["type"] == "routing.decided")
        .expect("routing event");
    assert_eq!(routed["route"]["action"], "handoff");
    assert_eq!(routed["route"]["team"], "incidents");
    assert_eq!(routed["route"]["rule"], "critical to incidents");
    let changed = items
        .iter()
        .find(|e| e["type"] == "status.changed")
        .expect("status event");
    assert_eq!(changed["to"], "pending_human");
    assert!(
        changed["reason"]
            .as_str()
            .expect("reason")
            .contains("incidents"),
        "{changed}"
    );
    // The AI does not answer a message routed to a person.
    assert!(!items.iter().any(|e| e["type"] == "reply.sent"), "{log}");

    // Staff see the analysis with the message; the customer sees neither it nor the events.
    let res = app
        .get(
            &format!("/v1/conversations/{}/messages", conv.id),
            Some(&app.api_key),
        )
        .await;
    let staff: Value = res.json().await.expect("json");
    assert_eq!(
        staff["items"][0]["analysis"]["route"]["rule"],
        "critical to incidents"
    );
    let customer = app.messages(&conv).await;
    assert!(customer[0].get("analysis").is_none(), "{}", customer[0]);
    let customer_log = app.event_log(&conv.id, &conv.token).await;
    assert!(
        !customer_log["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["type"] == "message.triaged" || e["type"] == "routing.decided")
    );

    // A calm question with no rule matching is answered by the AI.
    let calm = app.create_conversation().await;
    app.post_message(&calm, "What are your support hours?", None)
        .await;
    let log = app
        .wait_for_log_event(&calm.id, &app.api_key, "reply.sent")
        .await;
    let routed = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["type"] == "routing.decided")
        .expect("routing event")
        .clone();
    assert_eq!(routed["route"]["action"], "answer");
    assert_eq!(routed["route"]["rule"], "default:answer");
}

#[tokio::test]
async fn bad_policies_and_intents_are_refused_with_problems() {
    let app = TestApp::spawn().await;
    let res = put(
        &app,
        "/v1/routing-policy",
        r#"{"rules": [{"name": "x", "when": {"urgncy": "high"}, "action": "answer"}]}"#,
    )
    .await;
    assert_eq!(res.status(), 422);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = put(
        &app,
        "/v1/routing-policy",
        r#"{"rules": [{"name": "x", "action": "answer", "team": "t"}, {"name": "x", "action": "clarify"}]}"#,
    )
    .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.expect("json");
    assert_eq!(problem["code"], "invalid_body");
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("rules[1].name")
    );

    let res = put(
        &app,
        "/v1/intents",
        r#"{"intents": [{"name": "Refund!", "examples": ["a", "b", "c"]}]}"#,
    )
    .await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.expect("json");
    let detail = problem["detail"].as_str().expect("detail");
    assert!(
        detail.contains("intents[0].name") && detail.contains("at least two"),
        "{detail}"
    );
    // Nothing was stored.
    let res = app.get("/v1/intents", Some(&app.api_key)).await;
    let status: Value = res.json().await.expect("json");
    assert_eq!(status["settings"], Value::Null);
    assert_eq!(status["trained"], false);

    // Customers cannot read or change the policy.
    let conv = app.create_conversation().await;
    let res = app.get("/v1/routing-policy", Some(&conv.token)).await;
    assert_eq!(res.status(), 403);
}

#[tokio::test]
async fn valid_intents_are_stored_and_their_training_is_queued() {
    let app = TestApp::spawn().await;
    let intents = json!({"intents": [
        {"name": "refund", "handling": "procedure", "examples": ["refund please", "money back", "return for refund"]},
        {"name": "shipping", "examples": ["where is my parcel", "delivery time", "tracking number"]}
    ]});
    let res = put(&app, "/v1/intents", &intents.to_string()).await;
    assert_eq!(res.status(), 202);
    let task: Value = res.json().await.expect("json");
    let res = app.get("/v1/intents", Some(&app.api_key)).await;
    let status: Value = res.json().await.expect("json");
    assert_eq!(status["settings"]["intents"][0]["name"], "refund");
    assert_eq!(status["fingerprint"].as_str().map(str::len), Some(64));
    // Without an embedding model (these tests run without one), training fails and says why.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let res = app
            .get(
                &format!("/v1/tasks/{}", task["id"].as_str().expect("id")),
                Some(&app.api_key),
            )
            .await;
        let t: Value = res.json().await.expect("json");
        if t["status"] == "failed" {
            assert!(
                t["error"].as_str().expect("error").contains("embeddings"),
                "{t}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "task never failed: {t}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn tools_procedures_and_the_audit_trail_are_staff_only_and_validated() {
    let app = TestApp::spawn().await;
    // The registry, with schemas and annotations.
    let res = app.get("/v1/tools", Some(&app.api_key)).await;
    assert_eq!(res.status(), 200);
    let tools: Value = res.json().await.expect("json");
    let cancel = tools["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["name"] == "cancel_order")
        .expect("cancel_order")
        .clone();
    assert_eq!(cancel["annotations"]["read_only"], false);
    assert_eq!(cancel["annotations"]["needs_confirmation"], true);
    assert_eq!(cancel["input_schema"]["required"], json!(["order_number"]));
    assert!(cancel["output_schema"]["properties"]["refund"].is_object());
    let conv = app.create_conversation().await;
    let res = app.get("/v1/tools", Some(&conv.token)).await;
    assert_problem(res, 403, "forbidden").await;

    // Procedures: every problem reported at once, nothing stored; a valid set round-trips.
    let bad = json!({"procedures": [{"name": "p", "intent": "x", "steps": [
        {"call": {"tool": "no_such_tool"}}, {"reply": "{{ unclosed"}
    ]}]});
    let res = put(&app, "/v1/procedures", &bad.to_string()).await;
    let problem = assert_problem(res, 422, "invalid_body").await;
    let detail = problem["detail"].as_str().expect("detail");
    assert!(detail.contains("unknown tool no_such_tool"), "{detail}");
    assert!(detail.contains("template"), "{detail}");
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../demo/procedures.json"
    ))
    .expect("demo procedures");
    let res = put(&app, "/v1/procedures", &demo).await;
    assert_eq!(res.status(), 200);
    let stored: Value = app
        .get("/v1/procedures", Some(&app.api_key))
        .await
        .json()
        .await
        .expect("json");
    let names: Vec<&str> = stored["procedures"]
        .as_array()
        .expect("procedures")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(names.contains(&"cancel_order"), "{names:?}");

    // The audit trail of a conversation without writes is empty; customers cannot read it.
    let res = app
        .get(
            &format!("/v1/conversations/{}/actions", conv.id),
            Some(&app.api_key),
        )
        .await;
    assert_eq!(res.status(), 200);
    let actions: Value = res.json().await.expect("json");
    assert_eq!(actions["items"], json!([]));
    let res = app
        .get(
            &format!("/v1/conversations/{}/actions", conv.id),
            Some(&conv.token),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
}
