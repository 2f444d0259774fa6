//! The demo end to end, offline, with the real intent model: `concierge demo` runs as a process
//! on a temp data directory, and demo customers check, cancel, re-address and return orders,
//! each ending with a confirmation and a recorded write. Needs the local model files
//! (`CONCIERGE_MODEL_DIR`, set by `.ci/run`; fetched into it when missing).

// Test helpers fail loudly: a broken setup is a failed test.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{Value, json};
mod support;

use std::time::{Duration, Instant};
use support::*;

impl Demo {
    async fn conversation(&self, customer: &str) -> String {
        let res = self
            .http
            .post(format!("{}/v1/conversations", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"customer": {"external_id": customer}}))
            .send()
            .await
            .expect("create");
        assert_eq!(
            res.status(),
            201,
            "{}",
            res.text().await.unwrap_or_default()
        );
        let body: Value = res.json().await.expect("json");
        body["conversation"]["id"].as_str().expect("id").to_string()
    }

    async fn messages(&self, conv: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("{}/v1/conversations/{conv}/messages", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("list")
            .json()
            .await
            .expect("json");
        body["items"].as_array().cloned().unwrap_or_default()
    }

    /// Sends `text` and waits for the AI's reply to it.
    async fn say(&self, conv: &str, text: &str) -> String {
        let before = self.messages(conv).await.len();
        let res = self
            .http
            .post(format!("{}/v1/conversations/{conv}/messages", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"text": text}))
            .send()
            .await
            .expect("post");
        assert_eq!(res.status(), 202);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let messages = self.messages(conv).await;
            if let Some(reply) = messages
                .iter()
                .skip(before + 1)
                .find(|m| m["author"] == "ai")
            {
                return reply["text"].as_str().unwrap_or_default().to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no reply to {text:?}: {messages:#?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn actions(&self, conv: &str) -> Vec<Value> {
        let body: Value = self
            .http
            .get(format!("{}/v1/conversations/{conv}/actions", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .expect("actions")
            .json()
            .await
            .expect("json");
        body["items"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test]
#[cfg_attr(
    not(concierge_model_tests),
    ignore = "set CONCIERGE_MODEL_DIR (model files are fetched into it when missing)"
)]
async fn demo_customers_check_cancel_readdress_and_return_orders_offline() {
    let demo = tokio::task::spawn_blocking(start).await.expect("start");

    // Check an order: Maya has one order under way.
    let conv = demo.conversation("cus_1001").await;
    let reply = demo.say(&conv, "Where is my order?").await;
    assert!(
        reply.contains("A-1032") && reply.contains("1ZN7H4E80365423511"),
        "{reply}"
    );

    // Cancel after confirming: Sofia's A-1043 has not shipped.
    let conv = demo.conversation("cus_1005").await;
    let ask = demo.say(&conv, "Please cancel my order").await;
    assert!(
        ask.contains("cancel order A-1043") && ask.contains("Reply yes"),
        "{ask}"
    );
    assert!(
        demo.actions(&conv).await.is_empty(),
        "nothing before the yes"
    );
    let done = demo.say(&conv, "yes").await;
    assert!(
        done.starts_with("Done — your order A-1043 is cancelled."),
        "{done}"
    );
    let actions = demo.actions(&conv).await;
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0]["tool"], "cancel_order");

    // Change an address: Daniel's A-1039 has not shipped.
    let conv = demo.conversation("cus_1002").await;
    let ask = demo
        .say(&conv, "I need to change the delivery address for my order")
        .await;
    assert!(
        ask.contains("new delivery address for order A-1039"),
        "{ask}"
    );
    let confirm = demo
        .say(&conv, "742 Evergreen Terrace, Springfield, OR 97477")
        .await;
    assert!(confirm.contains("742 Evergreen Terrace"), "{confirm}");
    let done = demo.say(&conv, "yes please").await;
    assert!(
        done.starts_with("Done — order A-1039 will now be delivered to 742 Evergreen Terrace"),
        "{done}"
    );

    // Start a return: Sofia's doorbell cam (A-1028) was delivered within the window.
    let conv = demo.conversation("cus_1005").await;
    let ask = demo
        .say(&conv, "I'd like to return the doorbell cam I bought")
        .await;
    assert!(ask.contains("reason for returning order A-1028"), "{ask}");
    let confirm = demo.say(&conv, "It doesn't fit my door frame").await;
    assert!(
        confirm.contains("start a return for order A-1028"),
        "{confirm}"
    );
    let done = demo.say(&conv, "yes").await;
    assert!(
        done.starts_with("Done — return R-1028 is started for order A-1028"),
        "{done}"
    );

    // The event log shows the run step by step.
    let log: Value = demo
        .http
        .get(format!("{}/v1/conversations/{conv}/events", demo.base))
        .bearer_auth(&demo.key)
        .send()
        .await
        .expect("events")
        .json()
        .await
        .expect("json");
    let kinds: Vec<String> = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == "agent.step")
        .filter_map(|e| e["action"]["kind"].as_str().map(str::to_string))
        .collect();
    for k in [
        "started",
        "slot_filled",
        "tool_call",
        "asked_for",
        "awaiting_confirmation",
        "confirmation",
        "finished",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}
