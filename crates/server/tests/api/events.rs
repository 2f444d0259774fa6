use crate::helpers::*;
use futures::StreamExt;
use serde_json::Value;

#[tokio::test]
async fn the_stream_resumes_after_last_event_id_without_loss_or_duplicates() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let mut events = app.events(&conv.id, &conv.token, None).await;
    app.post_message(&conv, "What are your support hours?", None)
        .await;
    let reply = TestApp::next_message(&mut events, &["ai"]).await;
    drop(events);

    // While disconnected, more happens.
    app.post_message(&conv, "How long does express shipping take?", None)
        .await;
    let log = app.event_log(&conv.id, &conv.token).await;
    let seq_of_reply = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["message"]["id"] == reply["id"])
        .expect("reply event")["seq"]
        .as_i64()
        .expect("seq");

    let mut resumed = app.events(&conv.id, &conv.token, Some(seq_of_reply)).await;
    let (event, id, data) = resumed.next().await.expect("event");
    assert_eq!(event, "message.created");
    assert!(id.parse::<i64>().expect("numeric id") > seq_of_reply);
    assert_eq!(
        data["message"]["text"],
        "How long does express shipping take?"
    );
    let second = TestApp::next_message(&mut resumed, &["ai"]).await;
    assert!(
        second["text"]
            .as_str()
            .expect("text")
            .contains("1 to 2 business days"),
        "{second}"
    );
}

#[tokio::test]
async fn customers_see_messages_and_status_while_staff_also_see_decisions() {
    let app = TestApp::spawn().await;
    let conv = app.create_conversation().await;
    let mut events = app.events(&conv.id, &conv.token, Some(0)).await;
    app.post_message(&conv, "How do I reset my password?", None)
        .await;
    let reply = TestApp::next_message(&mut events, &["ai"]).await;
    assert!(
        reply["text"]
            .as_str()
            .expect("text")
            .contains("Forgot password"),
        "{reply}"
    );

    let types = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|e| e["type"].as_str().unwrap_or("").to_string())
            .collect()
    };
    let staff = app
        .wait_for_log_event(&conv.id, &app.api_key, "reply.sent")
        .await;
    let customer = app.event_log(&conv.id, &conv.token).await;
    assert_eq!(types(&customer), vec!["message.created", "message.created"]);
    assert_eq!(
        types(&staff),
        vec![
            "message.created",
            "message.triaged",
            "routing.decided",
            "retrieval.done",
            "message.created",
            "reply.sent"
        ]
    );
    assert_eq!(staff["items"][2]["route"]["action"], "answer");
    let retrieval = &staff["items"][3];
    assert!(!retrieval["hits"].as_array().expect("hits").is_empty());
    assert!(
        retrieval["hits"][0]["chunk_id"]
            .as_str()
            .expect("chunk")
            .contains(':')
    );
    assert!(retrieval["hits"][0]["score"].as_f64().expect("score") > 0.0);
    let seqs: Vec<i64> = staff["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["seq"].as_i64().expect("seq"))
        .collect();
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4, 5, 6],
        "the log is gap-free and ordered"
    );
}
