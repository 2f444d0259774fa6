//! One store test suite, run against SQLite always and against PostgreSQL when
//! `CONCIERGE_TEST_DATABASE_URL` is set (each test in a fresh schema).
#![allow(clippy::expect_used, clippy::unwrap_used)]

use chrono::{Duration, Utc};
use concierge_core::*;
use concierge_store::SqlStore;
use std::sync::Arc;

struct Fixture {
    store: Arc<SqlStore>,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqlStore::open_sqlite(&dir.path().join("test.db"), 5)
        .await
        .expect("open sqlite");
    Fixture {
        store: Arc::new(store),
        _dir: Some(dir),
    }
}

async fn postgres() -> Fixture {
    let url = std::env::var("CONCIERGE_TEST_DATABASE_URL")
        .expect("CONCIERGE_TEST_DATABASE_URL must be set to run PostgreSQL tests");
    let store = concierge_store::testing::fresh_postgres(&url)
        .await
        .expect("open postgres");
    Fixture {
        store: Arc::new(store),
        _dir: None,
    }
}

macro_rules! suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite_backend {
            $(
                #[tokio::test]
                async fn $name() {
                    let f = super::sqlite().await;
                    super::$name(f.store.clone()).await;
                }
            )*
        }
        mod postgres_backend {
            $(
                #[tokio::test]
                #[cfg_attr(not(concierge_pg_tests), ignore = "CONCIERGE_TEST_DATABASE_URL is not set")]
                async fn $name() {
                    let f = super::postgres().await;
                    super::$name(f.store.clone()).await;
                }
            )*
        }
    };
}

suite!(
    workspaces_are_created_once,
    customers_are_found_by_identity,
    conversation_creation_is_idempotent,
    conversations_list_with_status_filter_and_cursor,
    messages_are_idempotent_and_events_are_sequenced,
    status_changes_follow_the_machine_and_race_safely,
    turns_are_claimed_in_order_per_conversation,
    expired_turn_leases_are_reclaimed,
    concurrent_claims_never_share_a_turn,
    documents_replace_their_chunks,
    signing_secret_is_stable,
    api_keys_round_trip,
    orders_belong_to_their_customer,
    embeddings_are_cached_per_model,
    resolved_questions_are_replaced_by_key,
    tasks_are_claimed_once_and_reclaimed_after_a_crash,
    analysis_and_follow_up_events_are_stored_with_the_message,
    settings_and_models_round_trip,
    actions_are_applied_once_and_race_safely,
    tickets_are_numbered_and_updated,
    agent_state_round_trips,
    agents_and_sessions_round_trip,
    two_people_claiming_at_once_get_one_owner,
    only_the_owner_posts_and_the_ai_only_while_it_owns,
    expired_leases_return_to_the_queue_never_to_the_ai,
    handoffs_record_who_claimed_and_resolved_and_outcomes_follow,
);

async fn workspace(store: &SqlStore) -> Workspace {
    store
        .ensure_workspace("acme", "Acme", true)
        .await
        .expect("workspace")
}

async fn customer(store: &SqlStore, ws: &Workspace, external: &str) -> Customer {
    let profile = Customer {
        id: CustomerId::new(),
        workspace_id: ws.id,
        name: Some(format!("Customer {external}")),
        email: None,
        phone: None,
        tier: None,
        created_at: Utc::now(),
    };
    let identity = CustomerIdentity {
        channel: Channel::Web,
        external_id: external.into(),
    };
    store
        .upsert_customer(ws.id, &identity, &profile)
        .await
        .expect("customer")
}

async fn conversation(store: &SqlStore, ws: &Workspace) -> Conversation {
    let c = customer(store, ws, &uuid::Uuid::new_v4().to_string()).await;
    store
        .create_conversation(NewConversation {
            workspace_id: ws.id,
            customer_id: c.id,
            channel: Channel::Web,
            subject: None,
            idempotency: None,
        })
        .await
        .expect("conversation")
        .value
}

fn customer_message(conversation: ConversationId, text: &str, key: Option<&str>) -> NewMessage {
    NewMessage {
        conversation_id: conversation,
        id: MessageId::new(),
        author: Author::Customer,
        text: text.into(),
        citations: vec![],
        idempotency: key.map(|k| IdempotencyKey {
            key: k.into(),
            fingerprint: format!("fp:{text}"),
        }),
        enqueue_turn: true,
        analysis: None,
        follow_up: vec![],
        sender: None,
    }
}

async fn workspaces_are_created_once(store: Arc<SqlStore>) {
    let a = store
        .ensure_workspace("acme", "Acme", true)
        .await
        .expect("a");
    let b = store
        .ensure_workspace("acme", "Other name", false)
        .await
        .expect("b");
    assert_eq!(a, b);
    assert_eq!(
        store.workspace_by_slug("acme").await.expect("get"),
        Some(a.clone())
    );
    assert_eq!(store.workspace(a.id).await.expect("get"), Some(a));
    assert!(
        store
            .workspace_by_slug("nope")
            .await
            .expect("get")
            .is_none()
    );
    assert!(store.ensure_workspace("Bad Slug", "x", true).await.is_err());
}

async fn customers_are_found_by_identity(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let a = customer(&store, &ws, "visitor-1").await;
    let b = customer(&store, &ws, "visitor-1").await;
    let c = customer(&store, &ws, "visitor-2").await;
    assert_eq!(a.id, b.id);
    assert_ne!(a.id, c.id);
    let updated = store
        .upsert_customer(
            ws.id,
            &CustomerIdentity {
                channel: Channel::Web,
                external_id: "visitor-1".into(),
            },
            &Customer {
                email: Some("a@example.com".into()),
                name: None,
                ..a.clone()
            },
        )
        .await
        .expect("update");
    assert_eq!(updated.id, a.id);
    assert_eq!(updated.email.as_deref(), Some("a@example.com"));
    assert_eq!(updated.name, a.name, "absent fields keep their value");
    let found = store
        .customer_by_external_id(ws.id, "visitor-2")
        .await
        .expect("read");
    assert_eq!(found.map(|f| f.id), Some(c.id));
    let other = store
        .ensure_workspace("other", "Other", false)
        .await
        .expect("ws");
    assert_eq!(
        store
            .customer_by_external_id(other.id, "visitor-2")
            .await
            .expect("read"),
        None,
        "another workspace's customers are not found"
    );
}

async fn conversation_creation_is_idempotent(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let c = customer(&store, &ws, "v").await;
    let new = |fp: &str| NewConversation {
        workspace_id: ws.id,
        customer_id: c.id,
        channel: Channel::Api,
        subject: Some("Hi".into()),
        idempotency: Some(IdempotencyKey {
            key: "k1".into(),
            fingerprint: fp.into(),
        }),
    };
    let first = store.create_conversation(new("a")).await.expect("first");
    assert!(first.created);
    assert_eq!(first.value.status, ConversationStatus::AiActive);
    let again = store.create_conversation(new("a")).await.expect("again");
    assert!(!again.created);
    assert_eq!(again.value, first.value);
    match store.create_conversation(new("b")).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("expected conflict, got {other:?}"),
    }
}

async fn conversations_list_with_status_filter_and_cursor(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(conversation(&store, &ws).await.id);
    }
    store
        .change_status(
            ids[1],
            ConversationStatus::AiActive,
            ConversationStatus::PendingHuman,
            "test",
        )
        .await
        .expect("status");
    let page1 = store
        .list_conversations(
            ws.id,
            &ConversationFilter {
                status: None,
                before: None,
                limit: 3,
            },
        )
        .await
        .expect("page1");
    let page1_ids: Vec<_> = page1.iter().map(|c| c.id).collect();
    assert_eq!(page1_ids, vec![ids[4], ids[3], ids[2]]);
    let page2 = store
        .list_conversations(
            ws.id,
            &ConversationFilter {
                status: None,
                before: Some(ids[2]),
                limit: 3,
            },
        )
        .await
        .expect("page2");
    let page2_ids: Vec<_> = page2.iter().map(|c| c.id).collect();
    assert_eq!(page2_ids, vec![ids[1], ids[0]]);
    let pending = store
        .list_conversations(
            ws.id,
            &ConversationFilter {
                status: Some(ConversationStatus::PendingHuman),
                before: None,
                limit: 10,
            },
        )
        .await
        .expect("pending");
    assert_eq!(
        pending.iter().map(|c| c.id).collect::<Vec<_>>(),
        vec![ids[1]]
    );
    let other = store
        .ensure_workspace("other", "Other", true)
        .await
        .expect("ws");
    let none = store
        .list_conversations(
            other.id,
            &ConversationFilter {
                status: None,
                before: None,
                limit: 10,
            },
        )
        .await
        .expect("other");
    assert!(none.is_empty(), "workspaces are isolated");
}

async fn messages_are_idempotent_and_events_are_sequenced(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let conv = conversation(&store, &ws).await;
    let first = store
        .append_message(customer_message(conv.id, "hello", Some("m1")))
        .await
        .expect("first");
    assert!(first.created);
    assert_eq!(first.events.len(), 1);
    let replay = store
        .append_message(customer_message(conv.id, "hello", Some("m1")))
        .await
        .expect("replay");
    assert!(!replay.created);
    assert_eq!(replay.value.id, first.value.id);
    assert!(matches!(
        store
            .append_message(customer_message(conv.id, "other text", Some("m1")))
            .await,
        Err(StoreError::Conflict(_))
    ));
    store
        .append_message(customer_message(conv.id, "second", None))
        .await
        .expect("second");
    let messages = store.messages(conv.id).await.expect("messages");
    assert_eq!(
        messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
        vec!["hello", "second"]
    );
    store
        .change_status(
            conv.id,
            ConversationStatus::AiActive,
            ConversationStatus::PendingHuman,
            "asked",
        )
        .await
        .expect("status");
    let events = store.events_after(conv.id, 0, 100).await.expect("events");
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(
        events
            .iter()
            .map(|e| e.payload.type_name())
            .collect::<Vec<_>>(),
        vec!["message.created", "message.created", "status.changed"]
    );
    let tail = store.events_after(conv.id, 2, 100).await.expect("tail");
    assert_eq!(tail.len(), 1);
    let latest = store.latest_events(conv.id, 2).await.expect("latest");
    assert_eq!(latest.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![2, 3]);
    assert!(matches!(
        store
            .append_message(customer_message(ConversationId::new(), "x", None))
            .await,
        Err(StoreError::NotFound(_))
    ));
}

async fn status_changes_follow_the_machine_and_race_safely(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let conv = conversation(&store, &ws).await;
    assert!(matches!(
        store
            .change_status(
                conv.id,
                ConversationStatus::AiActive,
                ConversationStatus::AiActive,
                "x"
            )
            .await,
        Err(StoreError::InvalidTransition { .. })
    ));
    // Two requests race to move ai_active -> pending_human: exactly one wins.
    let (a, b) = tokio::join!(
        store.change_status(
            conv.id,
            ConversationStatus::AiActive,
            ConversationStatus::PendingHuman,
            "a"
        ),
        store.change_status(
            conv.id,
            ConversationStatus::AiActive,
            ConversationStatus::PendingHuman,
            "b"
        ),
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    let loser = if a.is_err() { a } else { b };
    match loser {
        Err(StoreError::InvalidTransition { from, .. }) => {
            assert_eq!(from, ConversationStatus::PendingHuman)
        }
        other => panic!("unexpected {other:?}"),
    }
    let (c, _) = store
        .change_status(
            conv.id,
            ConversationStatus::PendingHuman,
            ConversationStatus::Closed,
            "done",
        )
        .await
        .expect("close");
    assert_eq!(c.status, ConversationStatus::Closed);
    assert!(
        store
            .change_status(
                conv.id,
                ConversationStatus::Closed,
                ConversationStatus::AiActive,
                "x"
            )
            .await
            .is_err()
    );
}

async fn turns_are_claimed_in_order_per_conversation(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let a = conversation(&store, &ws).await;
    let b = conversation(&store, &ws).await;
    let a1 = store
        .append_message(customer_message(a.id, "a1", None))
        .await
        .expect("a1")
        .value;
    let a2 = store
        .append_message(customer_message(a.id, "a2", None))
        .await
        .expect("a2")
        .value;
    let b1 = store
        .append_message(customer_message(b.id, "b1", None))
        .await
        .expect("b1")
        .value;
    let lease = Utc::now() + Duration::seconds(60);
    let t1 = store.claim_turn(lease).await.expect("claim").expect("t1");
    assert_eq!(t1.message_id, a1.id);
    assert_eq!(t1.attempts, 1);
    // a2 waits for a1; b1 is free.
    let t2 = store.claim_turn(lease).await.expect("claim").expect("t2");
    assert_eq!(t2.message_id, b1.id);
    assert!(store.claim_turn(lease).await.expect("claim").is_none());
    store.finish_turn(t1.id).await.expect("finish");
    let t3 = store.claim_turn(lease).await.expect("claim").expect("t3");
    assert_eq!(t3.message_id, a2.id);
    store.fail_turn(t3.id, "boom", 2).await.expect("fail");
    let t4 = store
        .claim_turn(lease)
        .await
        .expect("claim")
        .expect("retry");
    assert_eq!((t4.id, t4.attempts), (t3.id, 2));
    store.fail_turn(t4.id, "boom", 2).await.expect("fail");
    assert!(
        store.claim_turn(lease).await.expect("claim").is_none(),
        "gave up after 2 attempts"
    );
}

async fn expired_turn_leases_are_reclaimed(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let a = conversation(&store, &ws).await;
    let m = store
        .append_message(customer_message(a.id, "hi", None))
        .await
        .expect("m")
        .value;
    let t = store
        .claim_turn(Utc::now() - Duration::seconds(1))
        .await
        .expect("claim")
        .expect("t");
    let again = store
        .claim_turn(Utc::now() + Duration::seconds(60))
        .await
        .expect("claim")
        .expect("again");
    assert_eq!(
        (again.id, again.message_id, again.attempts),
        (t.id, m.id, 2)
    );
}

async fn concurrent_claims_never_share_a_turn(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    for i in 0..10 {
        let c = conversation(&store, &ws).await;
        store
            .append_message(customer_message(c.id, &format!("q{i}"), None))
            .await
            .expect("m");
    }
    let lease = Utc::now() + Duration::seconds(60);
    let mut handles = Vec::new();
    for _ in 0..4 {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(t) = store.claim_turn(lease).await.expect("claim") {
                got.push(t.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.expect("join"));
    }
    all.sort();
    let before = all.len();
    all.dedup();
    assert_eq!(before, all.len(), "a turn was claimed twice");
    assert_eq!(all.len(), 10);
}

async fn documents_replace_their_chunks(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let doc = Document {
        id: DocumentId::new(),
        workspace_id: ws.id,
        source: "dir:/kb".into(),
        external_id: "a.md".into(),
        title: "A".into(),
        url: Some("https://x/a".into()),
        tags: vec!["t".into()],
        content_hash: "h1".into(),
        source_version: Some("v1".into()),
        acl: vec!["group:staff".into()],
        updated_at: Utc::now(),
    };
    let chunk = |n: u32, text: &str| Chunk {
        id: Chunk::id_for(doc.id, n),
        document_id: doc.id,
        ordinal: n,
        heading_path: vec!["A".into()],
        text: text.into(),
    };
    store
        .put_document(&doc, &[chunk(0, "one"), chunk(1, "two")])
        .await
        .expect("put");
    let v2 = Document {
        content_hash: "h2".into(),
        ..doc.clone()
    };
    store
        .put_document(&v2, &[chunk(0, "three")])
        .await
        .expect("replace");
    let all = store.all_chunks().await.expect("chunks");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].1.text, "three");
    assert_eq!(all[0].0.content_hash, "h2");
    assert_eq!(all[0].0.acl, vec!["group:staff".to_string()]);
    assert_eq!(all[0].0.source_version.as_deref(), Some("v1"));
    assert_eq!(
        store.documents(ws.id, "dir:/kb").await.expect("docs").len(),
        1
    );
    let listed = store.workspace_documents(ws.id).await.expect("docs");
    assert_eq!(
        listed.iter().map(|d| d.id).collect::<Vec<_>>(),
        vec![doc.id]
    );
    let chunks = store.document_chunks(doc.id).await.expect("chunks");
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0].1.text, "three");
    assert!(
        store
            .document_chunks(DocumentId::new())
            .await
            .expect("none")
            .is_empty()
    );
    assert_eq!(
        store.knowledge_stats(Some(ws.id)).await.expect("stats"),
        KnowledgeStats {
            documents: 1,
            chunks: 1
        }
    );
    store.delete_document(doc.id).await.expect("delete");
    assert!(store.all_chunks().await.expect("chunks").is_empty());
    assert_eq!(
        store.knowledge_stats(None).await.expect("stats"),
        KnowledgeStats::default()
    );
}

async fn signing_secret_is_stable(store: Arc<SqlStore>) {
    let a = store.signing_secret().await.expect("a");
    let b = store.signing_secret().await.expect("b");
    assert_eq!(a.len(), 32);
    assert_eq!(a, b);
}

async fn api_keys_round_trip(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let key = ApiKey {
        id: ApiKeyId::new(),
        workspace_id: ws.id,
        name: "ci".into(),
        prefix: "abcd1234".into(),
        hash: "00".repeat(32),
        created_at: DateTime::from_timestamp_micros(Utc::now().timestamp_micros()).expect("time"),
        revoked_at: None,
    };
    store.insert_api_key(&key).await.expect("insert");
    assert_eq!(
        store.api_key_by_prefix("abcd1234").await.expect("get"),
        Some(key.clone())
    );
    assert!(matches!(
        store.insert_api_key(&key).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_api_keys(ws.id).await.expect("list"), vec![key]);
}

async fn orders_belong_to_their_customer(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let a = customer(&store, &ws, "a").await;
    let b = customer(&store, &ws, "b").await;
    let order = Order {
        id: OrderId::new(),
        workspace_id: ws.id,
        customer_id: a.id,
        number: "A-1".into(),
        status: "processing".into(),
        placed_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("time"),
        currency: "USD".into(),
        total_cents: 1299,
        details: serde_json::json!({"items": [{"sku": "X"}]}),
    };
    store.upsert_order(&order).await.expect("order");
    store
        .upsert_order(&Order {
            status: "shipped".into(),
            ..order.clone()
        })
        .await
        .expect("update");
    let orders = store.orders_for_customer(a.id).await.expect("orders");
    assert_eq!(orders.len(), 1);
    assert_eq!(orders[0].status, "shipped");
    assert!(
        store
            .orders_for_customer(b.id)
            .await
            .expect("orders")
            .is_empty()
    );
}

use chrono::DateTime;

async fn resolved_questions_are_replaced_by_key(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let other = store
        .ensure_workspace("other", "Other", false)
        .await
        .expect("other workspace");
    let question = |key: &str, text: &str, docs: &[&str]| ResolvedQuestion {
        workspace_id: ws.id,
        key: key.into(),
        question: text.into(),
        documents: docs.iter().map(|d| d.to_string()).collect(),
        origin: "import".into(),
        updated_at: chrono::DateTime::from_timestamp_micros(1_700_000_000_000_000).expect("time"),
    };
    store
        .put_resolved_question(&question("T-2", "close my account", &["closing.md"]))
        .await
        .expect("put");
    store
        .put_resolved_question(&question("T-1", "lost card", &["cards.md", "identity.md"]))
        .await
        .expect("put");
    // The same key replaces.
    store
        .put_resolved_question(&question(
            "T-2",
            "close my savings account",
            &["savings.md"],
        ))
        .await
        .expect("replace");
    let all = store.resolved_questions(ws.id).await.expect("list");
    assert_eq!(
        all,
        vec![
            question("T-1", "lost card", &["cards.md", "identity.md"]),
            question("T-2", "close my savings account", &["savings.md"]),
        ]
    );
    assert!(
        store
            .resolved_questions(other.id)
            .await
            .expect("list")
            .is_empty(),
        "per workspace"
    );
    let version = store
        .resolved_questions_version(ws.id)
        .await
        .expect("version");
    assert_eq!(version.0, 2);
    assert_eq!(
        store
            .resolved_questions_version(other.id)
            .await
            .expect("version"),
        (0, 0)
    );
    // A replace with an older time (a writer whose clock is behind) still changes the version.
    store
        .put_resolved_question(&ResolvedQuestion {
            updated_at: chrono::DateTime::from_timestamp_micros(1_600_000_000_000_000)
                .expect("time"),
            ..question("T-2", "close my savings account now", &["savings.md"])
        })
        .await
        .expect("replace");
    let replaced = store
        .resolved_questions_version(ws.id)
        .await
        .expect("version");
    assert_eq!(replaced.0, 2);
    assert_ne!(replaced, version);
    assert!(
        store
            .delete_resolved_question(ws.id, "T-1")
            .await
            .expect("delete")
    );
    assert!(
        !store
            .delete_resolved_question(ws.id, "T-1")
            .await
            .expect("delete again")
    );
    assert!(
        !store
            .delete_resolved_question(other.id, "T-2")
            .await
            .expect("not theirs")
    );
    assert_eq!(
        store.resolved_questions(ws.id).await.expect("list").len(),
        1
    );
}

async fn embeddings_are_cached_per_model(store: Arc<SqlStore>) {
    let v1 = vec![0.25f32, -1.5, 3.0];
    store
        .put_embeddings(
            "m1",
            &[
                ("h1".into(), v1.clone()),
                ("h2".into(), vec![1.0, 2.0, 3.0]),
            ],
        )
        .await
        .expect("put");
    // A second write of the same key is ignored (vectors are immutable per model and text).
    store
        .put_embeddings("m1", &[("h1".into(), vec![9.0, 9.0, 9.0])])
        .await
        .expect("put again");
    let got = store
        .embeddings("m1", &["h1".into(), "h3".into()])
        .await
        .expect("get");
    assert_eq!(got.len(), 1);
    assert_eq!(got["h1"], v1);
    assert!(
        store
            .embeddings("m2", &["h1".into()])
            .await
            .expect("get")
            .is_empty(),
        "another model misses"
    );
    let many: Vec<String> = (0..1200).map(|i| format!("x{i}")).collect();
    assert!(
        store
            .embeddings("m1", &many)
            .await
            .expect("batched")
            .is_empty()
    );
}

async fn tasks_are_claimed_once_and_reclaimed_after_a_crash(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let t = store
        .create_task(ws.id, "knowledge.sync", &serde_json::json!({"path": "/kb"}))
        .await
        .expect("create");
    assert_eq!(t.status, TaskStatus::Queued);
    // The first worker "crashes" with an expired lease; the task comes back.
    let a = store
        .claim_task(Utc::now() - Duration::seconds(1))
        .await
        .expect("claim")
        .expect("a");
    assert_eq!((a.id, a.status, a.attempts), (t.id, TaskStatus::Running, 1));
    let b = store
        .claim_task(Utc::now() + Duration::seconds(60))
        .await
        .expect("claim")
        .expect("b");
    assert_eq!((b.id, b.attempts), (t.id, 2));
    assert!(
        store
            .claim_task(Utc::now() + Duration::seconds(60))
            .await
            .expect("claim")
            .is_none(),
        "leased"
    );
    store
        .task_progress(t.id, 3, 10, Utc::now() + Duration::seconds(60))
        .await
        .expect("progress");
    let mid = store.task(t.id).await.expect("get").expect("task");
    assert_eq!((mid.progress_done, mid.progress_total), (3, 10));
    store
        .finish_task(t.id, &serde_json::json!({"added": 10}))
        .await
        .expect("finish");
    let done = store.task(t.id).await.expect("get").expect("task");
    assert_eq!(done.status, TaskStatus::Succeeded);
    assert_eq!(done.result, Some(serde_json::json!({"added": 10})));
    let f = store
        .create_task(ws.id, "knowledge.sync", &serde_json::json!({}))
        .await
        .expect("create");
    let c = store
        .claim_task(Utc::now() + Duration::seconds(60))
        .await
        .expect("claim")
        .expect("c");
    assert_eq!(c.id, f.id);
    store.fail_task(f.id, "disk full", 1).await.expect("fail");
    let failed = store.task(f.id).await.expect("get").expect("task");
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (TaskStatus::Failed, Some("disk full"))
    );
}

fn sample_analysis() -> Analysis {
    Analysis {
        triage: Triage {
            intent: Some(IntentResult {
                best: Some(IntentScore {
                    name: "refund".into(),
                    confidence: 0.9,
                }),
                alternatives: vec![],
                handling: Some(Handling::Procedure),
                out_of_scope: false,
                oos_score: 0.1,
                threshold: Some(0.5),
                model: "abc".into(),
            }),
            urgency: UrgencyResult {
                level: Urgency::High,
                signals: vec![Signal::new("lexicon:urgent", "asap")],
            },
            sentiment: SentimentResult {
                label: SentimentLabel::Negative,
                score: -0.6,
                frustrated: true,
                signals: vec![],
            },
            complexity: ComplexityResult {
                multiple_requests: false,
                needs_action: true,
                needs_human_judgment: false,
                signals: vec![],
            },
            language: None,
            amounts: vec![120.0],
            latency_ms: 3.0,
            guard: None,
        },
        route: Route {
            action: RouteAction::Handoff {
                team: Some("billing".into()),
            },
            rule: "big refunds".into(),
            matched: vec!["big refunds".into()],
        },
    }
}

async fn analysis_and_follow_up_events_are_stored_with_the_message(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let conv = conversation(&store, &ws).await;
    store
        .append_message(customer_message(conv.id, "before", None))
        .await
        .expect("first");
    let analysis = sample_analysis();
    let mut new = customer_message(conv.id, "refund 120 asap", None);
    new.analysis = Some(Box::new(analysis.clone()));
    new.follow_up = vec![
        EventPayload::MessageTriaged {
            message_id: new.id,
            triage: Box::new(analysis.triage.clone()),
        },
        EventPayload::RoutingDecided {
            message_id: new.id,
            route: analysis.route.clone(),
        },
    ];
    let created = store.append_message(new).await.expect("append");
    assert_eq!(
        created.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![2, 3, 4]
    );
    let stored = store
        .message(created.value.id)
        .await
        .expect("read")
        .expect("present");
    assert_eq!(stored.analysis, Some(Box::new(analysis)));
    let events = store.events_after(conv.id, 0, 100).await.expect("events");
    assert_eq!(
        events
            .iter()
            .map(|e| (e.seq, e.payload.type_name()))
            .collect::<Vec<_>>(),
        vec![
            (1, "message.created"),
            (2, "message.created"),
            (3, "message.triaged"),
            (4, "routing.decided")
        ]
    );
    assert_eq!(events[3].payload, created.events[2].payload);
    // The next append continues the sequence without a gap.
    let next = store
        .append_message(customer_message(conv.id, "after", None))
        .await
        .expect("next");
    assert_eq!(next.events[0].seq, 5);
}

async fn settings_and_models_round_trip(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    assert_eq!(store.setting(ws.id, "intents").await.expect("read"), None);
    let v1 = serde_json::json!({"intents": [{"name": "a"}]});
    let v2 = serde_json::json!({"intents": [{"name": "b"}]});
    store.put_setting(ws.id, "intents", &v1).await.expect("put");
    store
        .put_setting(ws.id, "intents", &v2)
        .await
        .expect("replace");
    assert_eq!(
        store.setting(ws.id, "intents").await.expect("read"),
        Some(v2)
    );
    assert_eq!(
        store.model_fingerprint(ws.id, "intents").await.expect("fp"),
        None
    );
    let model = StoredModel {
        kind: "intents".into(),
        fingerprint: "f1".into(),
        data: serde_json::json!({"weights": [1.0, 2.0]}),
        trained_at: chrono::DateTime::from_timestamp_micros(Utc::now().timestamp_micros())
            .expect("time"),
    };
    store.put_model(ws.id, &model).await.expect("put model");
    let replaced = StoredModel {
        fingerprint: "f2".into(),
        ..model
    };
    store
        .put_model(ws.id, &replaced)
        .await
        .expect("replace model");
    assert_eq!(
        store.model_fingerprint(ws.id, "intents").await.expect("fp"),
        Some("f2".into())
    );
    assert_eq!(
        store.model(ws.id, "intents").await.expect("model"),
        Some(replaced)
    );
    assert_eq!(store.model(ws.id, "other").await.expect("none"), None);
}

async fn actions_are_applied_once_and_race_safely(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let conv = conversation(&store, &ws).await;
    let order = Order {
        id: OrderId::new(),
        workspace_id: ws.id,
        customer_id: conv.customer_id,
        number: "A-7".into(),
        status: "processing".into(),
        placed_at: Utc::now(),
        currency: "USD".into(),
        total_cents: 500,
        details: serde_json::json!({}),
    };
    store.upsert_order(&order).await.expect("order");
    let cancel = |key: &str| ActionWrite {
        workspace_id: ws.id,
        conversation_id: Some(conv.id),
        key: key.into(),
        tool: "cancel_order".into(),
        arguments: serde_json::json!({"order_number": "A-7"}),
        effect: Effect::UpdateOrder {
            order_id: order.id,
            expected_status: "processing".into(),
            status: "cancelled".into(),
            details: serde_json::json!({"cancelled": true}),
        },
        result: serde_json::json!({"status": "cancelled"}),
    };
    // Eight concurrent attempts with the same key: one applies, the others replay it.
    let attempts: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            let write = cancel("k1");
            tokio::spawn(async move { store.apply_action(write).await })
        })
        .collect();
    let mut applied = 0;
    for a in attempts {
        let outcome = a.await.expect("join").expect("apply");
        assert_eq!(outcome.record.result["status"], "cancelled");
        applied += usize::from(!outcome.replayed);
    }
    assert_eq!(applied, 1);
    let stored = store
        .order_by_number(ws.id, "A-7")
        .await
        .expect("read")
        .expect("order");
    assert_eq!(stored.status, "cancelled");
    assert_eq!(stored.details["cancelled"], true);
    // Another key: the order is no longer processing, so the compare-and-set refuses it and
    // records nothing.
    assert!(matches!(
        store.apply_action(cancel("k2")).await,
        Err(StoreError::Conflict(_))
    ));
    // The same key for different arguments is a conflict.
    let mut other = cancel("k1");
    other.arguments = serde_json::json!({"order_number": "A-8"});
    assert!(matches!(
        store.apply_action(other).await,
        Err(StoreError::Conflict(_))
    ));
    let audit = store
        .actions_for_conversation(conv.id)
        .await
        .expect("audit");
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].key, "k1");
    assert_eq!(audit[0].tool, "cancel_order");
}

async fn tickets_are_numbered_and_updated(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let conv = conversation(&store, &ws).await;
    let open = |key: &str, subject: &str| ActionWrite {
        workspace_id: ws.id,
        conversation_id: Some(conv.id),
        key: key.into(),
        tool: "open_ticket".into(),
        arguments: serde_json::json!({"subject": subject}),
        effect: Effect::CreateTicket(Box::new(Ticket::new(
            ws.id,
            conv.customer_id,
            Some(conv.id),
            subject.into(),
            "details".into(),
            "normal".into(),
        ))),
        result: serde_json::json!({"status": "open"}),
    };
    let first = store
        .apply_action(open("t1", "Broken hub"))
        .await
        .expect("t1");
    let second = store
        .apply_action(open("t2", "Late order"))
        .await
        .expect("t2");
    assert_eq!(first.record.result["number"], "T-1001");
    assert_eq!(second.record.result["number"], "T-1002");
    let replay = store
        .apply_action(open("t1", "Broken hub"))
        .await
        .expect("replay");
    assert!(replay.replayed);
    assert_eq!(replay.record.result["number"], "T-1001");
    let ticket = store
        .ticket_by_number(ws.id, "T-1001")
        .await
        .expect("read")
        .expect("ticket");
    store
        .apply_action(ActionWrite {
            workspace_id: ws.id,
            conversation_id: Some(conv.id),
            key: "t1-comment".into(),
            tool: "update_ticket".into(),
            arguments: serde_json::json!({"number": "T-1001"}),
            effect: Effect::UpdateTicket {
                ticket_id: ticket.id,
                status: Some("pending".into()),
                comment: Some(TicketComment {
                    author: "customer".into(),
                    text: "It still blinks red".into(),
                    at: Utc::now(),
                }),
            },
            result: serde_json::json!({}),
        })
        .await
        .expect("update");
    let tickets = store
        .tickets_for_customer(conv.customer_id)
        .await
        .expect("list");
    assert_eq!(tickets.len(), 2);
    let updated = tickets.iter().find(|t| t.number == "T-1001").expect("t1");
    assert_eq!(updated.status, "pending");
    assert_eq!(updated.comments.len(), 1);
    assert_eq!(updated.comments[0].text, "It still blinks red");
}

async fn agent_state_round_trips(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let conv = conversation(&store, &ws).await;
    assert_eq!(store.agent_state(conv.id).await.expect("empty"), None);
    let state = serde_json::json!({"procedure": "cancel_order", "waiting": "confirm"});
    store
        .put_agent_state(conv.id, Some(&state))
        .await
        .expect("put");
    store
        .put_agent_state(conv.id, Some(&state))
        .await
        .expect("put again");
    assert_eq!(store.agent_state(conv.id).await.expect("get"), Some(state));
    store.put_agent_state(conv.id, None).await.expect("clear");
    assert_eq!(store.agent_state(conv.id).await.expect("cleared"), None);
}

fn account(ws: &Workspace, email: &str, capacity: u32) -> AgentAccount {
    AgentAccount {
        id: AgentId::new(),
        workspace_id: ws.id,
        email: email.into(),
        name: format!("Agent {email}"),
        role: Role::Agent,
        password_hash: "$argon2id$stub".into(),
        teams: vec!["billing".into()],
        skills: Skills::default(),
        capacity,
        available: true,
        last_seen_at: None,
        created_at: Utc::now(),
    }
}

fn claim(c: &Conversation, agent: &AgentAccount, lease: Duration) -> Transition {
    let mut t = Transition::new(
        c.id,
        c.status,
        ConversationStatus::HumanActive,
        format!("claimed by {}", agent.name),
    );
    t.assignment = Assignment {
        team: c.assignment.team.clone(),
        agent: Some(agent.id),
        lease_until: Some(Utc::now() + lease),
        ..Assignment::default()
    };
    t.capacity = Some(agent.capacity);
    t
}

fn to_queue(c: &Conversation, from: ConversationStatus, owner: Option<AgentId>) -> Transition {
    let mut t = Transition::new(c.id, from, ConversationStatus::PendingHuman, "to the queue");
    t.owner = owner;
    t.assignment = Assignment {
        team: Some("billing".into()),
        priority: Priority::High,
        queued_at: Some(Utc::now()),
        ..Assignment::default()
    };
    t
}

fn agent_message(c: ConversationId, agent: &AgentAccount, text: &str) -> NewMessage {
    NewMessage {
        author: Author::Agent,
        enqueue_turn: false,
        idempotency: None,
        sender: Some(Sender {
            agent: agent.id,
            name: agent.name.clone(),
        }),
        ..customer_message(c, text, None)
    }
}

fn ai_message(c: ConversationId, text: &str) -> NewMessage {
    NewMessage {
        author: Author::Ai,
        enqueue_turn: false,
        idempotency: None,
        ..customer_message(c, text, None)
    }
}

async fn agents_and_sessions_round_trip(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let mut a = account(&ws, "ana@example.com", 3);
    store.create_agent(&a).await.expect("create");
    assert!(matches!(
        store
            .create_agent(&account(&ws, "ana@example.com", 1))
            .await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        store
            .agent_by_email(ws.id, "ANA@example.com")
            .await
            .unwrap()
            .map(|x| x.id),
        Some(a.id)
    );
    a.available = false;
    a.skills.languages = vec!["de".into()];
    store.update_agent(&a).await.expect("update");
    let back = store.agent(a.id).await.unwrap().unwrap();
    assert!(!back.available);
    assert_eq!(back.skills.languages, vec!["de".to_string()]);
    let now = Utc::now();
    let session = AgentSession {
        prefix: "abc123".into(),
        agent_id: a.id,
        hash: "h".into(),
        created_at: now,
        expires_at: now + Duration::hours(1),
    };
    store.create_session(&session).await.expect("session");
    assert_eq!(
        store
            .session_by_prefix("abc123")
            .await
            .unwrap()
            .map(|s| s.agent_id),
        Some(a.id)
    );
    store.delete_session("abc123").await.unwrap();
    assert!(store.session_by_prefix("abc123").await.unwrap().is_none());
}

async fn two_people_claiming_at_once_get_one_owner(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let ana = account(&ws, "ana@example.com", 1);
    let ben = account(&ws, "ben@example.com", 1);
    store.create_agent(&ana).await.unwrap();
    store.create_agent(&ben).await.unwrap();
    let c = conversation(&store, &ws).await;
    let empty = store.human_queue_version(ws.id).await.unwrap();
    assert_eq!(empty, (0, 0, 0));
    let (c, _) = store
        .transition(to_queue(&c, ConversationStatus::AiActive, None))
        .await
        .expect("queue");
    let queued = store.human_queue_version(ws.id).await.unwrap();
    assert_eq!(queued.0, 1);
    assert_eq!(
        c.owner(),
        Owner::Queue {
            team: Some("billing".into())
        }
    );
    let (a, b) = tokio::join!(
        store.transition(claim(&c, &ana, Duration::minutes(5))),
        store.transition(claim(&c, &ben, Duration::minutes(5))),
    );
    assert_eq!(u8::from(a.is_ok()) + u8::from(b.is_ok()), 1, "{a:?} {b:?}");
    let now = store.conversation(c.id).await.unwrap().unwrap();
    assert_ne!(
        store.human_queue_version(ws.id).await.unwrap(),
        queued,
        "a claim moves the queue's fingerprint"
    );
    let winner = if a.is_ok() { &ana } else { &ben };
    assert_eq!(now.owner(), Owner::Agent { agent: winner.id });
    // The status.changed event names the owner.
    let events = store.events_after(c.id, 0, 100).await.unwrap();
    assert!(events.iter().any(|e| matches!(&e.payload,
        EventPayload::StatusChanged { owner: Some(o), .. } if o.agent == winner.id)));
    // Capacity: the winner (capacity 1) cannot take a second conversation.
    let d = conversation(&store, &ws).await;
    let (d, _) = store
        .transition(to_queue(&d, ConversationStatus::AiActive, None))
        .await
        .unwrap();
    assert!(matches!(
        store
            .transition(claim(&d, winner, Duration::minutes(5)))
            .await,
        Err(StoreError::NotOwner(_))
    ));
    // Someone else's conversation cannot be released by the loser.
    let loser = if a.is_ok() { &ben } else { &ana };
    let mut steal = to_queue(&now, ConversationStatus::HumanActive, Some(loser.id));
    steal.reason = "not mine".into();
    assert!(matches!(
        store.transition(steal).await,
        Err(StoreError::NotOwner(_))
    ));
}

async fn only_the_owner_posts_and_the_ai_only_while_it_owns(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let ana = account(&ws, "ana@example.com", 5);
    let ben = account(&ws, "ben@example.com", 5);
    store.create_agent(&ana).await.unwrap();
    store.create_agent(&ben).await.unwrap();
    let c = conversation(&store, &ws).await;
    store
        .append_message(ai_message(c.id, "hello"))
        .await
        .expect("AI owns");
    assert!(matches!(
        store.append_message(agent_message(c.id, &ana, "hi")).await,
        Err(StoreError::NotOwner(_))
    ));
    let (c, _) = store
        .transition(claim(&c, &ana, Duration::minutes(5)))
        .await
        .unwrap();
    assert!(matches!(
        store.append_message(ai_message(c.id, "talking over")).await,
        Err(StoreError::NotOwner(_))
    ));
    assert!(matches!(
        store
            .append_message(agent_message(c.id, &ben, "not mine"))
            .await,
        Err(StoreError::NotOwner(_))
    ));
    let m = store
        .append_message(agent_message(c.id, &ana, "Ana here"))
        .await
        .expect("owner posts");
    assert_eq!(m.value.sender.as_ref().map(|s| s.agent), Some(ana.id));
    let stored = store.messages(c.id).await.unwrap();
    assert_eq!(
        stored.last().unwrap().sender.as_ref().unwrap().name,
        ana.name
    );
    // A customer can always write.
    store
        .append_message(NewMessage {
            enqueue_turn: false,
            ..customer_message(c.id, "thanks", None)
        })
        .await
        .expect("customer");
    // Hand back: the AI may post again, the person no longer.
    let mut back = Transition::new(
        c.id,
        ConversationStatus::HumanActive,
        ConversationStatus::AiActive,
        "handed back",
    );
    back.owner = Some(ana.id);
    store.transition(back).await.expect("hand back");
    store
        .append_message(ai_message(c.id, "back"))
        .await
        .expect("AI again");
    assert!(matches!(
        store
            .append_message(agent_message(c.id, &ana, "late"))
            .await,
        Err(StoreError::NotOwner(_))
    ));
}

async fn expired_leases_return_to_the_queue_never_to_the_ai(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let ana = account(&ws, "ana@example.com", 5);
    store.create_agent(&ana).await.unwrap();
    let c = conversation(&store, &ws).await;
    let (c, _) = store
        .transition(to_queue(&c, ConversationStatus::AiActive, None))
        .await
        .unwrap();
    let (c, _) = store
        .transition(claim(&c, &ana, Duration::seconds(-1)))
        .await
        .unwrap();
    // The expired owner can neither post nor renew.
    assert!(matches!(
        store.append_message(agent_message(c.id, &ana, "hi")).await,
        Err(StoreError::NotOwner(_))
    ));
    let now = Utc::now();
    assert_eq!(
        store
            .touch_agent(ana.id, now, now + Duration::minutes(5))
            .await
            .unwrap(),
        0
    );
    let expired = store.expired_leases(now).await.unwrap();
    assert_eq!(expired.iter().map(|e| e.id).collect::<Vec<_>>(), vec![c.id]);
    let mut t = to_queue(&c, ConversationStatus::HumanActive, Some(ana.id));
    t.lease_expired_at = Some(now);
    let (back, _) = store.transition(t).await.expect("expire");
    assert_eq!(back.status, ConversationStatus::PendingHuman);
    assert_eq!(back.assignment.team.as_deref(), Some("billing"));
    assert!(store.expired_leases(Utc::now()).await.unwrap().is_empty());
    // A live lease is renewed by the heartbeat and not expired.
    let (c2, _) = store
        .transition(claim(&back, &ana, Duration::seconds(30)))
        .await
        .unwrap();
    let now = Utc::now();
    assert_eq!(
        store
            .touch_agent(ana.id, now, now + Duration::minutes(10))
            .await
            .unwrap(),
        1
    );
    let mut t = to_queue(&c2, ConversationStatus::HumanActive, Some(ana.id));
    t.lease_expired_at = Some(now);
    assert!(matches!(
        store.transition(t).await,
        Err(StoreError::NotOwner(_))
    ));
}

async fn handoffs_record_who_claimed_and_resolved_and_outcomes_follow(store: Arc<SqlStore>) {
    let ws = workspace(&store).await;
    let ana = account(&ws, "ana@example.com", 5);
    store.create_agent(&ana).await.unwrap();
    let c = conversation(&store, &ws).await;
    let mut analysis = sample_analysis();
    if let Some(i) = analysis.triage.intent.as_mut() {
        i.out_of_scope = false;
    }
    store
        .append_message(NewMessage {
            analysis: Some(Box::new(analysis)),
            enqueue_turn: false,
            ..customer_message(c.id, "my invoice is wrong", None)
        })
        .await
        .unwrap();
    store
        .append_message(ai_message(c.id, "let me look"))
        .await
        .unwrap();
    let handoff = Handoff {
        conversation_id: c.id,
        trigger: HandoffTrigger::Customer,
        reason: "customer asked".into(),
        team: Some("billing".into()),
        priority: Priority::High,
        suggested_agent: Some(ana.id),
        routing: vec!["skills".into()],
        summary: HandoffSummary::default(),
        created_at: Utc::now(),
        vector: vec![0.6, 0.8],
        handed_back: None,
    };
    let (c, _) = store
        .transition(to_queue(&c, ConversationStatus::AiActive, None))
        .await
        .unwrap();
    store.put_handoff(&handoff).await.unwrap();
    let (c, _) = store
        .transition(claim(&c, &ana, Duration::minutes(5)))
        .await
        .unwrap();
    let mut done = Transition::new(
        c.id,
        ConversationStatus::HumanActive,
        ConversationStatus::Resolved,
        "solved",
    );
    done.owner = Some(ana.id);
    store.transition(done).await.expect("resolve");
    let resolved = store.resolved_handoffs(ws.id, 10).await.unwrap();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].1, ana.id);
    assert_eq!(resolved[0].0.vector, vec![0.6, 0.8]);
    assert_eq!(
        store
            .queue_waits(ws.id, Some("billing"), 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .queue_waits(ws.id, Some("other"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Replacing the record (a hand-back note) keeps one row.
    let mut updated = store.handoff(c.id).await.unwrap().unwrap();
    updated.reason = "customer asked (updated)".into();
    store.put_handoff(&updated).await.unwrap();
    assert_eq!(
        store.handoff(c.id).await.unwrap().unwrap().reason,
        "customer asked (updated)"
    );
    store.rate(c.id, 4).await.unwrap();
    // Reopened by the customer within 7 days.
    store
        .change_status(
            c.id,
            ConversationStatus::Resolved,
            ConversationStatus::AiActive,
            "wrote again",
        )
        .await
        .unwrap();
    let facts = store
        .outcome_facts(
            ws.id,
            Utc::now() - Duration::hours(1),
            Utc::now() + Duration::hours(1),
        )
        .await
        .unwrap();
    assert_eq!(facts.len(), 1);
    let f = &facts[0];
    assert_eq!(f.resolution, Some(Resolution::Human));
    assert!(f.reopened);
    assert_eq!(f.rating, Some(4));
    assert!(f.handed_off_at.is_some() && f.first_response_at.is_some());
    assert!(f.last_customer_at.is_some());
    assert!(f.intent.is_some(), "{f:?}");
    // Batched reads (the queue view): the latest record per conversation, and the customers
    // that exist; unknown ids are simply absent.
    let other = conversation(&store, &ws).await;
    let mut transfer = store.handoff(c.id).await.unwrap().unwrap();
    transfer.reason = "transferred".into();
    transfer.created_at += Duration::minutes(1);
    store.put_handoff(&transfer).await.unwrap();
    let latest = store.latest_handoffs(&[c.id, other.id]).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(latest[&c.id].reason, "transferred");
    assert_eq!(latest[&c.id], store.handoff(c.id).await.unwrap().unwrap());
    assert!(store.latest_handoffs(&[]).await.unwrap().is_empty());
    let unknown = CustomerId::new();
    let customers = store.customers(&[c.customer_id, unknown]).await.unwrap();
    assert_eq!(customers.len(), 1);
    assert_eq!(customers[&c.customer_id].id, c.customer_id);
}
