//! Procedures end to end through the real `Service` on a real store (SQLite in a temp dir):
//! the demo's flows, confirmation before writes, idempotent writes, and customers confined to
//! their own records. Triage is the real one with the intent set by hand (the intent model needs
//! sentence embeddings, which these hermetic tests do without).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use common::*;
use concierge_agent::procedures::ProcedureSettings;
use concierge_agent::tools::{ToolContext, ToolError};
use concierge_core::*;

#[tokio::test]
async fn cancelling_asks_for_confirmation_then_acts_once_and_confirms() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    // One processing order: it is taken without asking which.
    let ask = w
        .say(&conv, "Please cancel my order", Some("cancel_order"))
        .await;
    assert!(ask.contains("cancel order A-1043"), "{ask}");
    assert!(ask.contains("Reply yes"), "{ask}");
    assert_eq!(
        w.status("A-1043").await,
        "processing",
        "nothing happens before the yes"
    );
    let paused = w.store.agent_state(conv.id).await.expect("state");
    assert!(paused.is_some());

    let yes = w.post(&conv, "yes please", None).await;
    let done = w.run(&conv, yes).await;
    assert!(
        done.starts_with("Done — your order A-1043 is cancelled."),
        "{done}"
    );
    assert!(done.contains("3–5 business days"), "{done}");
    assert_eq!(w.status("A-1043").await, "cancelled");
    assert_eq!(w.store.agent_state(conv.id).await.expect("state"), None);

    // The audit trail: one recorded write, and the tool call with its key in the event log.
    let audit = w
        .store
        .actions_for_conversation(conv.id)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].tool, "cancel_order");
    let steps = w.steps(&conv).await;
    let call = steps
        .iter()
        .find_map(|s| match s {
            StepRecord::ToolCall {
                tool,
                ok,
                idempotency_key,
                ..
            } if tool == "cancel_order" => Some((*ok, idempotency_key.clone())),
            _ => None,
        })
        .expect("cancel_order step");
    assert_eq!(call, (true, Some(audit[0].key.clone())));
    assert!(steps.contains(&StepRecord::Confirmation { confirmed: true }));

    // The same turn retried after a crash (state restored as it was before the yes): the
    // write replays by key instead of failing or acting twice, and the reply is not repeated.
    w.store
        .put_agent_state(conv.id, paused.as_ref())
        .await
        .expect("restore");
    let replies_before = w.store.messages(conv.id).await.expect("m").len();
    w.run(&conv, yes).await;
    assert_eq!(
        w.store.messages(conv.id).await.expect("m").len(),
        replies_before
    );
    assert_eq!(
        w.store
            .actions_for_conversation(conv.id)
            .await
            .expect("a")
            .len(),
        1
    );
    assert_eq!(w.status("A-1043").await, "cancelled");
}

#[tokio::test]
async fn saying_no_changes_nothing() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    w.say(&conv, "cancel A-1043", Some("cancel_order")).await;
    let reply = w.say(&conv, "no, keep it", None).await;
    assert!(reply.contains("stays as it is"), "{reply}");
    assert_eq!(w.status("A-1043").await, "processing");
    assert!(
        w.store
            .actions_for_conversation(conv.id)
            .await
            .expect("a")
            .is_empty()
    );
    assert!(w.steps(&conv).await.contains(&StepRecord::Finished {
        outcome: "declined".into()
    }));
}

#[tokio::test]
async fn a_shipped_order_is_not_cancelled_and_the_customer_is_told_why() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    let reply = w
        .say(&conv, "I want to cancel order A-1032", Some("cancel_order"))
        .await;
    assert!(reply.contains("A-1032 is shipped"), "{reply}");
    assert!(reply.contains("return it within 30 days"), "{reply}");
    assert_eq!(w.status("A-1032").await, "shipped");
    assert_eq!(w.store.agent_state(conv.id).await.expect("state"), None);
}

#[tokio::test]
async fn another_customers_order_is_out_of_reach() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    // Maya names Bob's order: she is told it is not in her account and asked which of hers.
    let reply = w
        .say(&conv, "Cancel order B-2001 right now", Some("cancel_order"))
        .await;
    assert!(reply.contains("could not find an order B-2001"), "{reply}");
    assert!(!reply.contains("Bob"), "{reply}");
    let reply = w.say(&conv, "yes do it, B-2001", None).await;
    assert!(!reply.contains("Done"), "{reply}");
    assert_eq!(w.status("B-2001").await, "processing");

    // Even a confirmed, keyed tool call in Maya's session cannot read or touch Bob's order.
    let ctx = ToolContext {
        workspace: w.ws,
        customer: w.maya.id,
        conversation: Some(conv.id),
        confirmed: true,
        idempotency_key: Some("direct".into()),
    };
    let env = concierge_agent::tools::ToolEnv {
        store: w.store.clone(),
        knowledge: w.service.knowledge.clone(),
    };
    for tool in ["get_order", "cancel_order", "resend_invoice"] {
        let r = w
            .service
            .tools
            .call(
                &env,
                &ctx,
                tool,
                serde_json::json!({"order_number": "B-2001"}),
            )
            .await;
        assert!(
            matches!(r, Err(ToolError::Failed(ref m)) if m.contains("could not find")),
            "{tool}: {r:?}"
        );
    }
    let listed = w
        .service
        .tools
        .call(&env, &ctx, "list_orders", serde_json::json!({}))
        .await
        .expect("list");
    let numbers: Vec<&str> = listed["orders"]
        .as_array()
        .expect("orders")
        .iter()
        .filter_map(|o| o["number"].as_str())
        .collect();
    assert_eq!(numbers.len(), 3);
    assert!(!numbers.contains(&"B-2001"));
    assert_eq!(w.status("B-2001").await, "processing");
    let _ = &w.bob;
}

#[tokio::test]
async fn writes_without_confirmation_or_key_are_refused() {
    let w = world().await;
    let env = concierge_agent::tools::ToolEnv {
        store: w.store.clone(),
        knowledge: w.service.knowledge.clone(),
    };
    let mut ctx = ToolContext {
        workspace: w.ws,
        customer: w.maya.id,
        conversation: None,
        confirmed: false,
        idempotency_key: Some("k".into()),
    };
    let args = serde_json::json!({"order_number": "A-1043"});
    let r = w
        .service
        .tools
        .call(&env, &ctx, "cancel_order", args.clone())
        .await;
    assert!(matches!(r, Err(ToolError::Refused(_))), "{r:?}");
    ctx.confirmed = true;
    ctx.idempotency_key = None;
    let r = w
        .service
        .tools
        .call(&env, &ctx, "cancel_order", args.clone())
        .await;
    assert!(matches!(r, Err(ToolError::Refused(_))), "{r:?}");
    assert_eq!(w.status("A-1043").await, "processing");
    // Reads need neither.
    ctx.confirmed = false;
    let r = w.service.tools.call(&env, &ctx, "get_order", args).await;
    assert_eq!(r.expect("read")["can_cancel"], true);
}

#[tokio::test]
async fn changing_the_address_collects_validates_and_confirms_it() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    let ask = w
        .say(
            &conv,
            "I need to change the shipping address of my order",
            Some("change_address"),
        )
        .await;
    assert!(
        ask.contains("new delivery address for order A-1043"),
        "{ask}"
    );
    let again = w.say(&conv, "somewhere else", None).await;
    assert!(
        again.contains("street, city, state ZIP"),
        "re-asked: {again}"
    );
    let confirm = w
        .say(&conv, "It's 55 Main St, Apt 4, Springfield, IL 62701", None)
        .await;
    assert!(
        confirm.contains("55 Main St, Apt 4, Springfield, IL 62701"),
        "{confirm}"
    );
    let done = w.say(&conv, "yes", None).await;
    assert!(
        done.starts_with("Done — order A-1043 will now be delivered to 55 Main St"),
        "{done}"
    );
    let order = w
        .store
        .order_by_number(w.ws, "A-1043")
        .await
        .expect("read")
        .expect("order");
    assert_eq!(order.details["shipping_address"]["city"], "Springfield");
    assert_eq!(order.details["shipping_address"]["postal_code"], "62701");
    assert_eq!(order.status, "processing");
}

#[tokio::test]
async fn a_return_is_started_for_a_delivered_order_with_its_reason() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    let ask = w
        .say(
            &conv,
            "I want to return my doorbell",
            Some("returns_refunds"),
        )
        .await;
    assert!(ask.contains("reason for returning order A-1028"), "{ask}");
    let confirm = w.say(&conv, "It stopped recording at night", None).await;
    assert!(
        confirm.contains("start a return for order A-1028"),
        "{confirm}"
    );
    assert!(confirm.contains("returnable until"), "{confirm}");
    let done = w.say(&conv, "ok", None).await;
    assert!(
        done.starts_with("Done — return R-1028 is started for order A-1028"),
        "{done}"
    );
    assert!(done.contains("m***@example.com"), "{done}");
    assert_eq!(w.status("A-1028").await, "return_started");
}

#[tokio::test]
async fn a_how_to_question_about_returns_gets_no_procedure() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    // "How do I return …" asks for instructions: the knowledge base answers (empty here).
    let reply = w
        .say(&conv, "How do I return an item?", Some("returns_refunds"))
        .await;
    assert!(!reply.contains("reason for returning"), "{reply}");
    assert!(w.steps(&conv).await.is_empty());
}

#[tokio::test]
async fn order_status_names_the_carrier_and_tracking() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    // Two orders are under way: the customer is asked which, then answers with the item.
    let ask = w
        .say(&conv, "Where is my order?", Some("order_status"))
        .await;
    assert!(ask.contains("A-1043") && ask.contains("A-1032"), "{ask}");
    assert!(!ask.contains("B-2001"), "{ask}");
    let reply = w.say(&conv, "the one that shipped, 1032", None).await;
    assert!(
        reply.contains("A-1032") && reply.contains("1ZTEST"),
        "{reply}"
    );
}

#[tokio::test]
async fn a_new_request_drops_the_waiting_procedure() {
    let w = world().await;
    let conv = w.conversation(&w.maya).await;
    w.say(&conv, "cancel my order", Some("cancel_order")).await;
    assert!(w.store.agent_state(conv.id).await.expect("state").is_some());
    // Instead of yes/no the customer asks where another order is.
    let reply = w
        .say(
            &conv,
            "Actually where is order A-1032?",
            Some("order_status"),
        )
        .await;
    assert!(reply.contains("1ZTEST"), "{reply}");
    assert_eq!(w.status("A-1043").await, "processing");
    let steps = w.steps(&conv).await;
    assert!(steps.contains(&StepRecord::Finished {
        outcome: "abandoned".into()
    }));
}

#[tokio::test]
async fn invalid_procedures_are_rejected_with_every_problem() {
    let w = world().await;
    let bad: ProcedureSettings = serde_json::from_value(serde_json::json!({"procedures": [
        {"name": "x", "intent": "a", "steps": [
            {"call": {"tool": "launch_rockets"}},
            {"reply": "{% if %}"},
            {"if": {"cond": "((", "then": []}}
        ]},
        {"name": "x", "intent": "b", "steps": []}
    ]}))
    .expect("shape");
    let err = w
        .service
        .put_procedures(w.ws, &bad)
        .await
        .expect_err("invalid");
    let text = err.to_string();
    for needle in [
        "unknown tool launch_rockets",
        "template",
        "condition",
        "defined twice",
        "no steps",
    ] {
        assert!(text.contains(needle), "{needle}: {text}");
    }
}
