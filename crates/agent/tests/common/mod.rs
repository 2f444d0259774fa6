//! The world the agent's integration tests run in: a real `Service` on a real store (SQLite in
//! a temp dir), two customers with orders, the demo's procedures, and helpers that post a
//! customer message (triage real, intent set by hand) and run the AI's turn.
#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use chrono::{Duration, Utc};
use concierge_agent::procedures::ProcedureSettings;
use concierge_agent::{AgentConfig, Service};
use concierge_core::*;
use concierge_knowledge::{AnswerConfig, KnowledgeBase, index::KnowledgeIndex};
use concierge_store::SqlStore;
use std::sync::Arc;

pub struct World {
    pub service: Arc<Service>,
    pub store: Arc<dyn Store>,
    pub ws: WorkspaceId,
    pub maya: Customer,
    pub bob: Customer,
    pub _dir: tempfile::TempDir,
}

pub fn order(
    ws: WorkspaceId,
    customer: CustomerId,
    number: &str,
    status: &str,
    days_ago: i64,
) -> Order {
    let placed = Utc::now() - Duration::days(days_ago);
    let mut details = serde_json::json!({
        "items": [{"sku": "NH-DBC", "name": "Nimbus Doorbell Cam", "quantity": 1, "unit_price_cents": 14999}],
        "shipping_address": {"line1": "1234 SE Hawthorne Blvd", "city": "Portland", "region": "OR", "postal_code": "97214", "country": "US"},
        "carrier": "UPS",
    });
    if status != "processing" {
        details["tracking_number"] = "1ZTEST".into();
    }
    if status == "delivered" {
        details["delivered_at"] = (placed + Duration::days(3)).to_rfc3339().into();
    }
    Order {
        id: OrderId::new(),
        workspace_id: ws,
        customer_id: customer,
        number: number.into(),
        status: status.into(),
        placed_at: placed,
        currency: "USD".into(),
        total_cents: 14999,
        details,
    }
}

pub async fn world() -> World {
    world_with(|s| s).await
}

/// The world with its service configured by `configure` (e.g. given a language model).
pub async fn world_with(configure: impl FnOnce(Service) -> Service) -> World {
    let dir = tempfile::tempdir().expect("tempdir");
    let store: Arc<dyn Store> = Arc::new(
        SqlStore::open_sqlite(&dir.path().join("db.sqlite"), 4)
            .await
            .expect("store"),
    );
    let index = KnowledgeIndex::open(&dir.path().join("index")).expect("index");
    let kb = Arc::new(KnowledgeBase::new(store.clone(), Arc::new(index), None));
    let service = Service::new(
        store.clone(),
        kb,
        AgentConfig {
            top_k: 5,
            answer: AnswerConfig {
                min_evidence: 0.5,
                max_citations: 3,
            },
            max_attempts: 3,
            workers: 1,
            human_lease_seconds: 600,
            learn_from_resolutions: true,
        },
    );
    let service = Arc::new(configure(service));
    let ws = store
        .ensure_workspace("nimbus", "Nimbus", true)
        .await
        .expect("workspace")
        .id;
    let mut people = vec![];
    for (external, name) in [("maya", "Maya Thompson"), ("bob", "Bob Stone")] {
        let profile = Customer {
            id: CustomerId::new(),
            workspace_id: ws,
            name: Some(name.into()),
            email: Some(format!("{external}@example.com")),
            phone: None,
            tier: Some("standard".into()),
            created_at: Utc::now(),
        };
        let identity = CustomerIdentity {
            channel: Channel::Web,
            external_id: external.into(),
        };
        people.push(
            store
                .upsert_customer(ws, &identity, &profile)
                .await
                .expect("customer"),
        );
    }
    let (maya, bob) = (people[0].clone(), people[1].clone());
    for o in [
        order(ws, maya.id, "A-1043", "processing", 1),
        order(ws, maya.id, "A-1032", "shipped", 6),
        order(ws, maya.id, "A-1028", "delivered", 9),
        order(ws, bob.id, "B-2001", "processing", 1),
    ] {
        store.upsert_order(&o).await.expect("order");
    }
    let demo = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../demo/procedures.json"
    ))
    .expect("demo procedures");
    let settings: ProcedureSettings = serde_json::from_str(&demo).expect("procedures parse");
    service
        .put_procedures(ws, &settings)
        .await
        .expect("procedures are valid");
    World {
        service,
        store,
        ws,
        maya,
        bob,
        _dir: dir,
    }
}

impl World {
    pub async fn conversation(&self, customer: &Customer) -> Conversation {
        self.store
            .create_conversation(NewConversation {
                workspace_id: self.ws,
                customer_id: customer.id,
                channel: Channel::Web,
                subject: None,
                idempotency: None,
            })
            .await
            .expect("conversation")
            .value
    }

    /// The customer writes `text`, understood as `intent` (None: out of scope); the AI's turn
    /// runs; returns the AI's reply.
    pub async fn say(&self, conv: &Conversation, text: &str, intent: Option<&str>) -> String {
        let message = self.post(conv, text, intent).await;
        self.run(conv, message).await
    }

    pub async fn post(&self, conv: &Conversation, text: &str, intent: Option<&str>) -> MessageId {
        let mut triage = concierge_understand::triage::triage(text, None);
        triage.intent = Some(IntentResult {
            best: Some(IntentScore {
                name: intent.unwrap_or("order_status").into(),
                confidence: if intent.is_some() { 0.9 } else { 0.1 },
            }),
            alternatives: vec![],
            handling: Some(Handling::Knowledge),
            out_of_scope: intent.is_none(),
            oos_score: if intent.is_some() { 0.1 } else { 0.9 },
            threshold: Some(0.5),
            model: "test".into(),
        });
        let action = if intent.is_some() {
            RouteAction::Answer
        } else {
            RouteAction::Clarify
        };
        let id = MessageId::new();
        self.store
            .append_message(NewMessage {
                conversation_id: conv.id,
                id,
                author: Author::Customer,
                text: text.into(),
                citations: vec![],
                idempotency: None,
                enqueue_turn: false,
                analysis: Some(Box::new(Analysis {
                    triage,
                    route: Route {
                        action,
                        rule: "test".into(),
                        matched: vec![],
                    },
                })),
                follow_up: vec![],
                sender: None,
            })
            .await
            .expect("message");
        id
    }

    pub async fn run(&self, conv: &Conversation, message: MessageId) -> String {
        let turn = Turn {
            id: 0,
            conversation_id: conv.id,
            message_id: message,
            attempts: 0,
        };
        self.service.run_turn(&turn).await.expect("turn");
        let messages = self.store.messages(conv.id).await.expect("messages");
        let last = messages.last().expect("a message");
        assert_eq!(
            last.author,
            Author::Ai,
            "the AI replied last: {messages:#?}"
        );
        last.text.clone()
    }

    /// Syncs `docs` (`{"id", "title", "content", "acl"?}`, a JSONL corpus) into the
    /// workspace's knowledge base.
    pub async fn ingest(&self, docs: &[serde_json::Value]) {
        let dir = tempfile::tempdir().expect("tempdir");
        let corpus = dir.path().join("kb.jsonl");
        let lines: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
        std::fs::write(&corpus, lines.join("\n")).expect("write corpus");
        let source = concierge_knowledge::JsonlSource::new(&corpus).expect("source");
        self.service
            .knowledge
            .sync(self.ws, &source, &|_, _| {})
            .await
            .expect("sync");
    }

    pub async fn status(&self, number: &str) -> String {
        self.store
            .order_by_number(self.ws, number)
            .await
            .expect("read")
            .expect("order")
            .status
    }

    /// A console account of the workspace, online now.
    #[allow(dead_code)]
    pub async fn person(
        &self,
        email: &str,
        teams: &[&str],
        intents: &[&str],
        load_cap: u32,
    ) -> AgentAccount {
        let a = AgentAccount {
            id: AgentId::new(),
            workspace_id: self.ws,
            email: email.into(),
            name: email.split('@').next().unwrap().to_string(),
            role: Role::Agent,
            password_hash: "$argon2id$test".into(),
            teams: teams.iter().map(|t| t.to_string()).collect(),
            skills: Skills {
                intents: intents.iter().map(|t| t.to_string()).collect(),
                ..Skills::default()
            },
            capacity: load_cap,
            available: true,
            last_seen_at: Some(Utc::now()),
            created_at: Utc::now(),
        };
        self.store.create_agent(&a).await.expect("agent");
        a
    }

    pub async fn steps(&self, conv: &Conversation) -> Vec<StepRecord> {
        self.store
            .events_after(conv.id, 0, 1000)
            .await
            .expect("events")
            .into_iter()
            .filter_map(|e| match e.payload {
                EventPayload::AgentStep { action, .. } => Some(*action),
                _ => None,
            })
            .collect()
    }
}
