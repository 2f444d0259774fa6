//! The MCP server in process: the official SDK's client talks to Concierge's handler over an
//! in-memory duplex, as staff and as a customer, on the agent tests' world (a real store with
//! two customers and their orders, and a knowledge base).
#![allow(clippy::expect_used, clippy::unwrap_used)]

#[path = "../../agent/tests/common/mod.rs"]
mod common;

use common::*;
use concierge_core::*;
use concierge_mcp::{Caller, ConciergeMcp, IDEMPOTENCY_META};
use rmcp::model::{
    CallToolRequestParams, CallToolResult, GetPromptRequestParams, ReadResourceRequestParams,
    RequestMetaObject, ResourceContents, Tool, object,
};
use rmcp::service::RunningService;
use rmcp::{RoleClient, ServiceExt};
use serde_json::{Value, json};

async fn connect(w: &World, caller: Caller) -> RunningService<RoleClient, ()> {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let handler = ConciergeMcp::for_caller(w.service.clone(), caller);
    tokio::spawn(async move {
        let running = handler.serve(server_io).await.expect("server starts");
        let _ = running.waiting().await;
    });
    ().serve(client_io).await.expect("client connects")
}

async fn call(
    client: &RunningService<RoleClient, ()>,
    name: &str,
    args: Value,
) -> Result<CallToolResult, rmcp::ServiceError> {
    client
        .call_tool(CallToolRequestParams::new(name.to_string()).with_arguments(object(args)))
        .await
}

fn text(r: &CallToolResult) -> String {
    serde_json::to_string(&r.content).unwrap()
}

fn tool<'a>(tools: &'a [Tool], name: &str) -> &'a Tool {
    tools
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("{name} is listed"))
}

async fn with_knowledge(w: &World) {
    w.ingest(&[
        json!({"id": "returns", "title": "Returning an item", "content": "You can return \
        an item within 30 days of delivery. Start the return from your order page."}),
    ])
    .await;
}

#[tokio::test]
async fn staff_list_search_and_act_for_a_named_customer() {
    let w = world().await;
    with_knowledge(&w).await;
    let client = connect(&w, Caller::Staff { workspace: w.ws }).await;
    let info = client.peer_info().expect("server info");
    assert_eq!(
        info.server_info.as_ref().expect("implementation").name,
        "concierge"
    );

    let tools = client.list_all_tools().await.expect("tools");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    for expected in [
        "search_knowledge",
        "get_order",
        "open_ticket",
        "cancel_order",
        "get_conversation",
        "hand_over_conversation",
    ] {
        assert!(names.contains(&expected), "{names:?}");
    }
    assert!(!names.contains(&"request_human"), "{names:?}");
    // Schemas from the Rust types, the staff's `customer` argument, annotations.
    let get_order = tool(&tools, "get_order");
    assert!(get_order.input_schema["properties"]["order_number"].is_object());
    assert!(
        get_order.input_schema["required"]
            .as_array()
            .unwrap()
            .contains(&json!("customer"))
    );
    assert!(get_order.output_schema.is_some());
    assert_eq!(
        get_order.annotations.as_ref().unwrap().read_only_hint,
        Some(true)
    );
    let cancel = tool(&tools, "cancel_order");
    // Over MCP the caller's call is the decision: no promise of a confirmation step.
    assert!(
        !cancel
            .description
            .as_deref()
            .unwrap_or("")
            .contains("confirms"),
        "{:?}",
        cancel.description
    );
    assert_eq!(
        cancel.annotations.as_ref().unwrap().destructive_hint,
        Some(true)
    );
    let search = tool(&tools, "search_knowledge");
    assert!(
        !search.input_schema["required"]
            .as_array()
            .unwrap()
            .contains(&json!("customer"))
    );

    let found = call(
        &client,
        "search_knowledge",
        json!({"query": "how do I return an item"}),
    )
    .await
    .expect("search");
    assert_ne!(found.is_error, Some(true));
    let passages = &found.structured_content.as_ref().expect("structured")["passages"];
    assert!(
        passages[0]["text"].as_str().unwrap().contains("30 days"),
        "{passages}"
    );

    let order = call(
        &client,
        "get_order",
        json!({"order_number": "A-1043", "customer": "maya"}),
    )
    .await
    .expect("get_order");
    assert_eq!(
        order.structured_content.as_ref().unwrap()["status"],
        "processing"
    );
    // Without a customer: an input error, reported as a tool result the caller can act on.
    let err = call(&client, "get_order", json!({"order_number": "A-1043"}))
        .await
        .expect("a result");
    assert_eq!(err.is_error, Some(true));
    assert!(text(&err).contains("needs `customer`"), "{}", text(&err));
    // An unknown customer: a tool failure the caller reads.
    let nobody = call(
        &client,
        "get_order",
        json!({"order_number": "A-1043", "customer": "nobody"}),
    )
    .await
    .expect("a result");
    assert_eq!(nobody.is_error, Some(true));
    assert!(text(&nobody).contains("no customer nobody"));

    // Opening a ticket, retried with the same idempotency key: one ticket.
    let open = |key: &'static str| {
        let mut meta = RequestMetaObject::new();
        meta.insert(IDEMPOTENCY_META.into(), json!(key));
        let mut params = CallToolRequestParams::new("open_ticket").with_arguments(object(json!({
            "subject": "Doorbell offline",
            "description": "The doorbell camera drops off Wi-Fi every night.",
            "customer": "maya"
        })));
        params.meta = Some(meta);
        params
    };
    let first = client.call_tool(open("k-1")).await.expect("open");
    let again = client.call_tool(open("k-1")).await.expect("open again");
    assert_eq!(first.structured_content, again.structured_content);
    let number = first.structured_content.as_ref().unwrap()["number"]
        .as_str()
        .unwrap()
        .to_string();
    let tickets = w
        .store
        .tickets_for_customer(w.maya.id)
        .await
        .expect("tickets");
    assert_eq!(tickets.len(), 1);
    assert_eq!(tickets[0].number, number);

    // Unknown tools are protocol errors.
    assert!(call(&client, "drop_tables", json!({})).await.is_err());
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn a_customer_reaches_only_their_own_records_and_conversation() {
    let w = world().await;
    let mine = w.conversation(&w.maya).await;
    let bobs = w.conversation(&w.bob).await;
    let client = connect(
        &w,
        Caller::Customer {
            workspace: w.ws,
            customer: w.maya.id,
            conversation: mine.id,
        },
    )
    .await;
    let tools = client.list_all_tools().await.expect("tools");
    let get_order = tool(&tools, "get_order");
    assert!(
        get_order.input_schema["properties"]
            .get("customer")
            .is_none()
    );

    let own = call(&client, "get_order", json!({"order_number": "A-1043"}))
        .await
        .expect("own");
    assert_ne!(own.is_error, Some(true));
    // Bob's order, asked for by number, and even with a `customer` argument: not found.
    let other = call(&client, "get_order", json!({"order_number": "B-2001"}))
        .await
        .expect("a result");
    assert_eq!(other.is_error, Some(true));
    assert!(
        text(&other).contains("could not find an order B-2001"),
        "{}",
        text(&other)
    );
    let named = call(
        &client,
        "get_order",
        json!({"order_number": "B-2001", "customer": "bob"}),
    )
    .await
    .expect("a result");
    assert_eq!(named.is_error, Some(true), "{named:?}");
    assert!(named.structured_content.is_none());

    let conv = call(
        &client,
        "get_conversation",
        json!({"conversation_id": mine.id.to_string()}),
    )
    .await
    .expect("own conversation");
    assert_eq!(
        conv.structured_content.as_ref().unwrap()["status"],
        "ai_active"
    );
    let theirs = call(
        &client,
        "get_conversation",
        json!({"conversation_id": bobs.id.to_string()}),
    )
    .await
    .expect("a result");
    assert_eq!(theirs.is_error, Some(true));

    let handed = call(
        &client,
        "hand_over_conversation",
        json!({"conversation_id": mine.id.to_string(), "reason": "wants a person"}),
    )
    .await
    .expect("hand over");
    assert_eq!(
        handed.structured_content.as_ref().unwrap()["status"],
        "pending_human"
    );
    let c = w.store.conversation(mine.id).await.unwrap().unwrap();
    assert_eq!(c.status, ConversationStatus::PendingHuman);
    client.cancel().await.expect("close");
}

#[tokio::test]
async fn documents_are_resources_within_the_callers_rights_and_the_answer_prompt_cites_them() {
    let w = world().await;
    let docs = [
        json!({"id": "returns", "title": "Returning an item", "content": "You can return an item \
               within 30 days of delivery. Start the return from your order page."}),
        json!({"id": "bob-quote", "title": "Bob's installation quote", "content": "Installation \
               of three cameras costs 240 dollars.", "acl": [format!("customer:{}", w.bob.id)]}),
    ];
    w.ingest(&docs).await;

    let staff = connect(&w, Caller::Staff { workspace: w.ws }).await;
    let all = staff.list_all_resources().await.expect("resources");
    let titles: Vec<&str> = all.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        titles,
        vec!["Bob's installation quote", "Returning an item"]
    );
    let bobs_uri = all[0].uri.clone();

    let conv = w.conversation(&w.maya).await;
    let maya = connect(
        &w,
        Caller::Customer {
            workspace: w.ws,
            customer: w.maya.id,
            conversation: conv.id,
        },
    )
    .await;
    let visible = maya.list_all_resources().await.expect("resources");
    assert_eq!(visible.len(), 1);
    assert_eq!(visible[0].name, "Returning an item");
    let read = maya
        .read_resource(ReadResourceRequestParams::new(visible[0].uri.clone()))
        .await
        .expect("read");
    let ResourceContents::TextResourceContents { text, .. } = &read.contents[0] else {
        panic!("text contents: {read:?}");
    };
    assert!(text.starts_with("# Returning an item"), "{text}");
    assert!(text.contains("within 30 days of delivery"), "{text}");
    // Another customer's document: the same error as a missing one.
    assert!(
        maya.read_resource(ReadResourceRequestParams::new(bobs_uri))
            .await
            .is_err()
    );

    let prompts = maya.list_all_prompts().await.expect("prompts");
    assert_eq!(prompts[0].name, "answer_support_question");
    let mut args = serde_json::Map::new();
    args.insert(
        "question".into(),
        json!("How long do I have to return an item?"),
    );
    let prompt = maya
        .get_prompt(GetPromptRequestParams::new("answer_support_question").with_arguments(args))
        .await
        .expect("prompt");
    let body = serde_json::to_string(&prompt.messages).unwrap();
    assert!(body.contains("[1] Returning an item"), "{body}");
    assert!(!body.contains("240 dollars"), "{body}");
    assert!(
        maya.get_prompt(GetPromptRequestParams::new("answer_support_question"))
            .await
            .is_err()
    );
}
