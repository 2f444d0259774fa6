//! Property test of conversation ownership: random sequences of handoffs, claims (sometimes two
//! at once, sometimes with a lease that has already run out), releases, transfers, hand-backs,
//! resolutions, lease expiry and messages by the AI, people and the customer. After every step:
//! - exactly one owner: `human_active` if and only if a person is named, with a lease;
//! - the AI's message is stored only while the AI owns the conversation;
//! - a person's message is stored only while they own it under a live lease;
//! - of two simultaneous claims at most one wins;
//! - an expired lease sends the conversation to its queue, never to the AI.
//!
//! Runs against SQLite always, and PostgreSQL when `CONCIERGE_TEST_DATABASE_URL` is set.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use chrono::{Duration, Utc};
use concierge_core::*;
use concierge_store::SqlStore;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[derive(Debug, Clone)]
enum Op {
    Handoff,
    Claim { agent: usize, expired: bool },
    ClaimRace { a: usize, b: usize },
    Release { agent: usize },
    Transfer { agent: usize },
    HandBack { agent: usize },
    Resolve { agent: usize },
    Sweep,
    AiPosts,
    PersonPosts { agent: usize },
    CustomerPosts,
}

const AGENTS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let agent = 0..AGENTS;
    prop_oneof![
        2 => Just(Op::Handoff),
        3 => (agent.clone(), any::<bool>()).prop_map(|(agent, e)| Op::Claim { agent, expired: e }),
        2 => (agent.clone(), agent.clone()).prop_map(|(a, b)| Op::ClaimRace { a, b }),
        1 => agent.clone().prop_map(|agent| Op::Release { agent }),
        1 => agent.clone().prop_map(|agent| Op::Transfer { agent }),
        2 => agent.clone().prop_map(|agent| Op::HandBack { agent }),
        1 => agent.clone().prop_map(|agent| Op::Resolve { agent }),
        2 => Just(Op::Sweep),
        3 => Just(Op::AiPosts),
        3 => agent.clone().prop_map(|agent| Op::PersonPosts { agent }),
        2 => Just(Op::CustomerPosts),
    ]
}

fn assignment(c: &Conversation) -> Assignment {
    Assignment {
        team: c.assignment.team.clone(),
        priority: c.assignment.priority,
        ..Assignment::default()
    }
}

fn claim(c: &Conversation, agent: &AgentAccount, expired: bool) -> Transition {
    let mut t = Transition::new(c.id, c.status, ConversationStatus::HumanActive, "claim");
    let lease = if expired {
        Duration::seconds(-5)
    } else {
        Duration::minutes(10)
    };
    t.assignment = Assignment {
        agent: Some(agent.id),
        lease_until: Some(Utc::now() + lease),
        ..assignment(c)
    };
    t.capacity = Some(agent.capacity);
    t
}

fn message(c: ConversationId, author: Author, sender: Option<&AgentAccount>) -> NewMessage {
    NewMessage {
        conversation_id: c,
        id: MessageId::new(),
        author,
        text: "text".into(),
        citations: vec![],
        idempotency: None,
        enqueue_turn: false,
        analysis: None,
        follow_up: vec![],
        sender: sender.map(|a| Sender {
            agent: a.id,
            name: a.name.clone(),
        }),
    }
}

/// Applies one operation; checks what it must never do.
async fn apply(store: &SqlStore, id: ConversationId, agents: &[AgentAccount], op: &Op) {
    use ConversationStatus as S;
    let c = store.conversation(id).await.unwrap().unwrap();
    match op {
        Op::Handoff => {
            let mut t = Transition::new(id, c.status, S::PendingHuman, "handoff");
            t.assignment = Assignment {
                team: Some("support".into()),
                queued_at: Some(Utc::now()),
                ..assignment(&c)
            };
            let r = store.transition(t).await;
            // The AI's conversations (or resolved ones) go to a queue this way, and a waiting
            // one may move between queues; a person's never (only they release it).
            assert_eq!(
                r.is_ok(),
                matches!(c.status, S::AiActive | S::Resolved | S::PendingHuman),
                "{c:?} {r:?}"
            );
        }
        Op::Claim { agent, expired } => {
            let r = store.transition(claim(&c, &agents[*agent], *expired)).await;
            if c.status == S::HumanActive {
                assert!(r.is_err(), "claimed an owned conversation: {r:?}");
            }
        }
        Op::ClaimRace { a, b } => {
            let (ra, rb) = tokio::join!(
                store.transition(claim(&c, &agents[*a], false)),
                store.transition(claim(&c, &agents[*b], false)),
            );
            assert!(!(ra.is_ok() && rb.is_ok()), "two claims won: {ra:?} {rb:?}");
        }
        Op::Release { agent } | Op::Transfer { agent } => {
            let mut t = Transition::new(id, S::HumanActive, S::PendingHuman, "release");
            t.owner = Some(agents[*agent].id);
            t.assignment = Assignment {
                team: Some(if matches!(op, Op::Transfer { .. }) {
                    "billing".into()
                } else {
                    "support".into()
                }),
                queued_at: Some(Utc::now()),
                ..assignment(&c)
            };
            let r = store.transition(t).await;
            let mine = c.status == S::HumanActive && c.assignment.agent == Some(agents[*agent].id);
            assert_eq!(r.is_ok(), mine, "{c:?} {r:?}");
        }
        Op::HandBack { agent } | Op::Resolve { agent } => {
            let to = if matches!(op, Op::HandBack { .. }) {
                S::AiActive
            } else {
                S::Resolved
            };
            let mut t = Transition::new(id, S::HumanActive, to, "done");
            t.owner = Some(agents[*agent].id);
            t.assignment = assignment(&c);
            let r = store.transition(t).await;
            let mine = c.status == S::HumanActive && c.assignment.agent == Some(agents[*agent].id);
            assert_eq!(r.is_ok(), mine, "{c:?} {r:?}");
        }
        Op::Sweep => {
            let now = Utc::now();
            for e in store.expired_leases(now).await.unwrap() {
                if e.id != id {
                    continue;
                }
                let mut t = Transition::new(id, S::HumanActive, S::PendingHuman, "lease expired");
                t.owner = e.assignment.agent;
                t.lease_expired_at = Some(now);
                t.assignment = Assignment {
                    queued_at: Some(now),
                    ..assignment(&e)
                };
                store.transition(t).await.expect("expire");
                let after = store.conversation(id).await.unwrap().unwrap();
                assert_eq!(
                    after.status,
                    S::PendingHuman,
                    "an expired lease went elsewhere"
                );
            }
        }
        Op::AiPosts => {
            let r = store.append_message(message(id, Author::Ai, None)).await;
            assert_eq!(r.is_ok(), c.status == S::AiActive, "{c:?} {r:?}");
        }
        Op::PersonPosts { agent } => {
            let a = &agents[*agent];
            let r = store
                .append_message(message(id, Author::Agent, Some(a)))
                .await;
            let live = c.assignment.lease_until.is_some_and(|l| l >= Utc::now());
            let owner = c.status == S::HumanActive && c.assignment.agent == Some(a.id);
            // A lease that runs out between the read and the post may refuse an owner's
            // message; a non-owner's is always refused.
            if !owner {
                assert!(r.is_err(), "a non-owner posted: {c:?}");
            } else if live && c.assignment.lease_until.unwrap() > Utc::now() + Duration::seconds(60)
            {
                assert!(r.is_ok(), "the owner could not post: {r:?}");
            }
        }
        Op::CustomerPosts => {
            store
                .append_message(message(id, Author::Customer, None))
                .await
                .expect("the customer can always write");
        }
    }
    let after = store.conversation(id).await.unwrap().unwrap();
    let human = after.status == S::HumanActive;
    assert_eq!(
        human,
        after.assignment.agent.is_some(),
        "owner and status disagree: {after:?}"
    );
    assert_eq!(
        human,
        after.assignment.lease_until.is_some(),
        "lease and status disagree: {after:?}"
    );
    // Exactly one owner, by construction of `owner()` from a consistent row.
    match after.owner() {
        Owner::Agent { agent } => assert!(agents.iter().any(|a| a.id == agent)),
        Owner::Queue { .. } => assert_eq!(after.status, S::PendingHuman),
        Owner::Ai => assert!(matches!(
            after.status,
            S::AiActive | S::Resolved | S::Closed
        )),
    }
}

/// `postgres`: the database URL; SQLite in a temporary directory otherwise.
fn run(postgres: Option<String>, cases: u32) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = rt.block_on(async {
        match &postgres {
            Some(url) => concierge_store::testing::fresh_postgres(url).await.unwrap(),
            None => SqlStore::open_sqlite(&dir.path().join("props.db"), 5)
                .await
                .unwrap(),
        }
    });
    let (ws, agents) = rt.block_on(async {
        let ws = store
            .ensure_workspace("props", "Props", true)
            .await
            .unwrap();
        let mut agents = Vec::new();
        for i in 0..AGENTS {
            let a = AgentAccount {
                id: AgentId::new(),
                workspace_id: ws.id,
                email: format!("agent{i}@example.com"),
                name: format!("Agent {i}"),
                role: Role::Agent,
                password_hash: "$argon2id$stub".into(),
                teams: vec![],
                skills: Skills::default(),
                capacity: 1000,
                available: true,
                last_seen_at: None,
                created_at: Utc::now(),
            };
            store.create_agent(&a).await.unwrap();
            agents.push(a);
        }
        (ws, agents)
    });
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&proptest::collection::vec(op(), 1..40), |ops| {
            rt.block_on(async {
                let customer = store
                    .upsert_customer(
                        ws.id,
                        &CustomerIdentity {
                            channel: Channel::Web,
                            external_id: uuid::Uuid::new_v4().to_string(),
                        },
                        &Customer {
                            id: CustomerId::new(),
                            workspace_id: ws.id,
                            name: None,
                            email: None,
                            phone: None,
                            tier: None,
                            created_at: Utc::now(),
                        },
                    )
                    .await
                    .unwrap();
                let c = store
                    .create_conversation(NewConversation {
                        workspace_id: ws.id,
                        customer_id: customer.id,
                        channel: Channel::Web,
                        subject: None,
                        idempotency: None,
                    })
                    .await
                    .unwrap()
                    .value;
                for op in &ops {
                    apply(&store, c.id, &agents, op).await;
                }
            });
            Ok(())
        })
        .unwrap();
}

#[test]
fn ownership_invariants_hold_on_sqlite() {
    run(None, 64);
}

#[test]
#[cfg_attr(
    not(concierge_pg_tests),
    ignore = "CONCIERGE_TEST_DATABASE_URL is not set"
)]
fn ownership_invariants_hold_on_postgres() {
    run(
        Some(std::env::var("CONCIERGE_TEST_DATABASE_URL").unwrap()),
        32,
    );
}
