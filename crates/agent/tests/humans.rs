//! The human side through the real `Service`: handoff with a summary, a team by skills and a
//! place in the queue; the AI calling a person by itself; expert routing; claim, reply,
//! silence of the AI, hand-back with a note; lease expiry back to the queue; outcomes.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use chrono::Utc;
use common::*;
use concierge_agent::HandoffRequest;
use concierge_core::*;

impl World {
    async fn teams(&self) {
        let teams = TeamSettings {
            teams: vec![
                Team {
                    name: "care".into(),
                    title: None,
                    skills: Skills {
                        intents: vec!["order_status".into()],
                        ..Skills::default()
                    },
                },
                Team {
                    name: "billing".into(),
                    title: None,
                    skills: Skills {
                        intents: vec!["billing_payment".into()],
                        ..Skills::default()
                    },
                },
            ],
            default_team: Some("care".into()),
        };
        self.service
            .put_teams(self.ws, &teams)
            .await
            .expect("teams");
    }

    async fn turn(&self, conv: &Conversation, message: MessageId) {
        let turn = Turn {
            id: 0,
            conversation_id: conv.id,
            message_id: message,
            attempts: 0,
        };
        self.service.run_turn(&turn).await.expect("turn");
    }

    /// The customer asks for a person, `person` claims the conversation and answers `text`.
    async fn person_answers(&self, conv: &Conversation, person: &AgentAccount, text: &str) {
        self.service
            .request_handoff(
                conv.id,
                HandoffRequest::new(HandoffTrigger::Customer, "asked"),
            )
            .await
            .unwrap();
        self.service.claim(conv.id, person).await.unwrap();
        let now = self.current(conv).await;
        self.service
            .agent_reply(&now, person, text.into(), None)
            .await
            .unwrap();
    }

    async fn current(&self, conv: &Conversation) -> Conversation {
        self.store.conversation(conv.id).await.unwrap().unwrap()
    }

    async fn texts(&self, conv: &Conversation) -> Vec<(Author, String)> {
        self.store
            .messages(conv.id)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.author, m.text))
            .collect()
    }
}

#[tokio::test]
async fn a_handoff_carries_a_summary_a_team_by_skills_and_the_place_in_the_queue() {
    let w = world().await;
    w.teams().await;
    let conv = w.conversation(&w.maya).await;
    // Nothing in the knowledge base: the AI says it found no answer.
    w.say(
        &conv,
        "My thermostat shows E9 after the update, what does it mean?",
        Some("device_troubleshooting"),
    )
    .await;
    let updated = w
        .service
        .request_handoff(
            conv.id,
            HandoffRequest::new(HandoffTrigger::Customer, "customer asked for a person"),
        )
        .await
        .expect("handoff");
    assert_eq!(updated.status, ConversationStatus::PendingHuman);
    assert_eq!(updated.assignment.team.as_deref(), Some("care"));
    let h = w.store.handoff(conv.id).await.unwrap().expect("record");
    assert_eq!(h.trigger, HandoffTrigger::Customer);
    assert!(h.summary.wants.contains("thermostat shows E9"), "{h:?}");
    assert!(h.summary.wants.contains("device_troubleshooting"), "{h:?}");
    assert!(
        h.summary
            .tried
            .iter()
            .any(|t| t.starts_with("No answer found")),
        "{:?}",
        h.summary.tried
    );
    assert!(
        h.summary
            .customer
            .iter()
            .any(|l| l.contains("Maya Thompson")),
        "{:?}",
        h.summary.customer
    );
    assert!(h.summary.customer.iter().any(|l| l.starts_with("Order ")));
    assert_eq!(h.summary.generated_by, "extractive");
    assert!(
        h.routing.iter().any(|r| r.contains("team care")),
        "{:?}",
        h.routing
    );
    // Every line of the summary comes from the conversation or the records read.
    for line in h.summary.text.lines() {
        assert!(!line.trim().is_empty());
    }
    let texts = w.texts(&conv).await;
    let (author, last) = texts.last().unwrap();
    assert_eq!(*author, Author::System);
    assert!(last.contains("You are next in the queue"), "{last}");
    let events = w.store.events_after(conv.id, 0, 1000).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e.payload, EventPayload::HandoffRequested { .. }))
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e.payload, EventPayload::QueuePosition { position: 1, .. }))
    );
    // Asking again while waiting changes nothing.
    let again = w
        .service
        .request_handoff(
            conv.id,
            HandoffRequest::new(HandoffTrigger::Customer, "again"),
        )
        .await
        .unwrap();
    assert_eq!(again.status, ConversationStatus::PendingHuman);
    assert_eq!(w.texts(&conv).await.len(), texts.len());
}

#[tokio::test]
async fn the_ai_calls_a_person_after_two_answers_it_could_not_find() {
    let w = world().await;
    w.teams().await;
    let conv = w.conversation(&w.bob).await;
    let first = w
        .post(
            &conv,
            "How do I recalibrate the flux sensor?",
            Some("device_troubleshooting"),
        )
        .await;
    w.turn(&conv, first).await;
    assert_eq!(w.current(&conv).await.status, ConversationStatus::AiActive);
    let second = w
        .post(
            &conv,
            "And the quantum dampener?",
            Some("device_troubleshooting"),
        )
        .await;
    w.turn(&conv, second).await;
    let now = w.current(&conv).await;
    assert_eq!(now.status, ConversationStatus::PendingHuman);
    let h = w.store.handoff(conv.id).await.unwrap().unwrap();
    assert_eq!(h.trigger, HandoffTrigger::Agent);
    assert!(h.reason.contains("no good answer twice"), "{}", h.reason);
}

#[tokio::test]
async fn expert_routing_prefers_skills_then_the_lighter_load_and_skips_the_unavailable() {
    let w = world().await;
    w.teams().await;
    let generalist = w.person("gil@example.com", &["care"], &[], 5).await;
    let expert = w
        .person("eve@example.com", &["care"], &["order_status"], 5)
        .await;
    let mut away = w
        .person("abe@example.com", &["care"], &["order_status"], 5)
        .await;
    away.available = false;
    w.store.update_agent(&away).await.unwrap();
    let _other_team = w
        .person("bo@example.com", &["billing"], &["order_status"], 5)
        .await;
    let conv = w.conversation(&w.maya).await;
    w.post(&conv, "Where is my parcel?", Some("order_status"))
        .await;
    w.service
        .request_handoff(
            conv.id,
            HandoffRequest::new(HandoffTrigger::Customer, "asked"),
        )
        .await
        .unwrap();
    let h = w.store.handoff(conv.id).await.unwrap().unwrap();
    assert_eq!(h.suggested_agent, Some(expert.id), "{:?}", h.routing);
    // The expert is now busy with it: for the next one with equal skills, load decides.
    w.service.claim(conv.id, &expert).await.unwrap();
    let second = w.conversation(&w.bob).await;
    w.post(&second, "Anything", Some("device_setup")).await;
    w.service
        .request_handoff(
            second.id,
            HandoffRequest::new(HandoffTrigger::Customer, "asked"),
        )
        .await
        .unwrap();
    let h2 = w.store.handoff(second.id).await.unwrap().unwrap();
    assert_eq!(
        h2.team.as_deref(),
        Some("care"),
        "the default team takes device_setup"
    );
    assert_eq!(h2.suggested_agent, Some(generalist.id), "{:?}", h2.routing);
}

#[tokio::test]
async fn a_person_claims_replies_the_ai_stays_silent_and_takes_back_with_the_note() {
    let w = world().await;
    w.teams().await;
    let ana = w.person("ana@example.com", &["care"], &[], 3).await;
    let ben = w.person("ben@example.com", &["care"], &[], 3).await;
    let conv = w.conversation(&w.maya).await;
    w.service
        .request_handoff(
            conv.id,
            HandoffRequest::new(HandoffTrigger::Customer, "asked"),
        )
        .await
        .unwrap();
    let (a, b) = tokio::join!(
        w.service.claim(conv.id, &ana),
        w.service.claim(conv.id, &ben)
    );
    assert!(
        a.is_ok() != b.is_ok(),
        "exactly one claim wins: {a:?} {b:?}"
    );
    let (owner, other) = if a.is_ok() {
        (&ana, &ben)
    } else {
        (&ben, &ana)
    };
    let conv = w.current(&conv).await;
    assert_eq!(conv.owner(), Owner::Agent { agent: owner.id });
    let reply = w
        .service
        .agent_reply(&conv, owner, "Hi Maya, I'm on it.".into(), None)
        .await
        .expect("owner replies");
    assert_eq!(reply.value.sender.as_ref().unwrap().name, owner.name);
    assert!(
        w.service
            .agent_reply(&conv, other, "me too".into(), None)
            .await
            .is_err(),
        "only the owner replies"
    );
    // The customer writes while the person owns it: stored, no AI turn, the AI stays silent.
    let created = w
        .service
        .post_customer_message(&conv, "Thanks! It is order A-1001.".into(), None)
        .await
        .unwrap();
    assert!(w.store.claim_turn(Utc::now()).await.unwrap().is_none());
    let events = w.store.events_after(conv.id, 0, 1000).await.unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.payload,
        EventPayload::AiSilenced { message_id, .. } if *message_id == created.value.id
    )));
    w.service
        .add_note(&conv, other, "Customer is a long-time buyer".into())
        .await
        .unwrap();
    // Hand back with a note: the AI owns it again and answers the next message.
    let back = w
        .service
        .hand_back(
            conv.id,
            owner,
            Some("Refund approved; order A-1001 ships Monday.".into()),
        )
        .await
        .unwrap();
    assert_eq!(back.status, ConversationStatus::AiActive);
    let h = w.store.handoff(conv.id).await.unwrap().unwrap();
    let note = h.handed_back.expect("hand-back recorded");
    assert_eq!(
        note.note.as_deref(),
        Some("Refund approved; order A-1001 ships Monday.")
    );
    let reply = w
        .say(&back, "When will it arrive?", Some("order_status"))
        .await;
    assert!(!reply.is_empty());
    // The person can no longer post.
    assert!(
        w.service
            .agent_reply(&back, owner, "late".into(), None)
            .await
            .is_err()
    );
    let file = w.service.case_file(&w.current(&conv).await).await.unwrap();
    assert_eq!(file.notes.len(), 1);
    assert!(file.customer.is_some() && !file.orders.is_empty());
    // A long conversation: a note written after 5,000 other events is still in the case file.
    for i in 0..5_000u32 {
        w.store
            .append_event(
                conv.id,
                EventPayload::Rated {
                    rating: u8::try_from(1 + i % 5).unwrap(),
                },
            )
            .await
            .unwrap();
    }
    w.store
        .append_event(
            conv.id,
            EventPayload::NoteAdded {
                author: Sender {
                    agent: owner.id,
                    name: owner.name.clone(),
                },
                text: "Refund approved by finance.".into(),
            },
        )
        .await
        .unwrap();
    let file = w.service.case_file(&w.current(&conv).await).await.unwrap();
    assert_eq!(file.notes.len(), 2);
    assert_eq!(file.notes[1].1, "Refund approved by finance.");
}

#[tokio::test]
async fn an_expired_lease_returns_the_conversation_to_its_queue_not_to_the_ai() {
    let w = world_with(|mut s| {
        // Leases that have run out the moment they are given.
        s.config.human_lease_seconds = -1;
        s
    })
    .await;
    w.teams().await;
    let ana = w.person("ana@example.com", &["care"], &[], 3).await;
    let conv = w.conversation(&w.maya).await;
    w.service
        .request_handoff(
            conv.id,
            HandoffRequest::new(HandoffTrigger::Customer, "asked"),
        )
        .await
        .unwrap();
    w.service.claim(conv.id, &ana).await.unwrap();
    assert_eq!(w.service.expire_leases().await.unwrap(), 1);
    let now = w.current(&conv).await;
    assert_eq!(now.status, ConversationStatus::PendingHuman);
    assert_eq!(now.assignment.team.as_deref(), Some("care"));
    assert_eq!(w.service.expire_leases().await.unwrap(), 0);
}

#[tokio::test]
async fn outcomes_count_a_contained_and_a_handed_off_resolution_and_a_rating() {
    let w = world().await;
    w.teams().await;
    let ana = w.person("ana@example.com", &["care"], &[], 3).await;
    let contained = w.conversation(&w.maya).await;
    w.say(&contained, "Hello", Some("order_status")).await;
    w.service
        .resolve(contained.id, None, "customer: solved")
        .await
        .unwrap();
    w.service.rate(contained.id, 5).await.unwrap();
    assert!(w.service.rate(contained.id, 9).await.is_err());
    let helped = w.conversation(&w.bob).await;
    w.post(&helped, "I need a person", Some("order_status"))
        .await;
    w.person_answers(&helped, &ana, "Done.").await;
    w.service
        .resolve(helped.id, Some(&ana), "resolved")
        .await
        .unwrap();
    let facts = w
        .store
        .outcome_facts(w.ws, Utc::now() - chrono::Duration::hours(1), Utc::now())
        .await
        .unwrap();
    let report = concierge_agent::outcomes::report(&facts, Utc::now(), chrono::Duration::hours(24));
    assert_eq!(report.total.conversations, 2);
    assert_eq!(report.total.contained, 1);
    assert_eq!(report.total.resolved_after_handoff, 1);
    assert_eq!(report.total.rating_mean, Some(5.0));
    assert!(report.total.first_response_seconds_p50.is_some());
    assert_eq!(report.by_intent["order_status"].conversations, 2);
    // The person who resolved it is remembered for routing similar conversations.
    assert_eq!(
        w.store.resolved_handoffs(w.ws, 10).await.unwrap()[0].1,
        ana.id
    );
}

/// A small deterministic sentence embedder for the test: hashed bag of lower-cased words, L2
/// normalised (texts sharing words are similar, others are not).
struct Words;

#[async_trait::async_trait]
impl concierge_knowledge::embed::Embedder for Words {
    fn model_id(&self) -> &str {
        "test-words"
    }
    fn dims(&self) -> usize {
        64
    }
    async fn embed(
        &self,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, concierge_knowledge::embed::EmbedError> {
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 64];
                for w in t.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
                    if w.len() > 3 {
                        let h = w
                            .bytes()
                            .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
                        v[(h % 64) as usize] += 1.0;
                    }
                }
                concierge_knowledge::embed::normalized(v)
            })
            .collect())
    }
}

#[tokio::test]
async fn expert_routing_suggests_who_resolved_similar_conversations() {
    let w = world_with(|mut s| {
        let kb = concierge_knowledge::KnowledgeBase::new(
            s.knowledge.store.clone(),
            s.knowledge.pipeline.index.clone(),
            Some(std::sync::Arc::new(Words)),
        );
        s.knowledge = std::sync::Arc::new(kb);
        s
    })
    .await;
    w.teams().await;
    let eve = w.person("eve@example.com", &["care"], &[], 5).await;
    let gil = w.person("gil@example.com", &["care"], &[], 5).await;
    // Past conversations: Eve resolved a thermostat Wi-Fi problem, Gil a delivery question.
    for (who, text) in [
        (&eve, "My thermostat loses its wifi connection every night"),
        (&gil, "The courier left my parcel at the wrong address"),
    ] {
        let c = w.conversation(&w.bob).await;
        w.post(&c, text, Some("device_setup")).await;
        w.service
            .request_handoff(c.id, HandoffRequest::new(HandoffTrigger::Customer, "asked"))
            .await
            .unwrap();
        w.service.claim(c.id, who).await.unwrap();
        w.service.resolve(c.id, Some(who), "solved").await.unwrap();
    }
    for (text, expected) in [
        ("Thermostat wifi connection drops again", &eve),
        (
            "My parcel went to the wrong address, the courier says delivered",
            &gil,
        ),
    ] {
        let c = w.conversation(&w.maya).await;
        w.post(&c, text, Some("device_setup")).await;
        w.service
            .request_handoff(c.id, HandoffRequest::new(HandoffTrigger::Customer, "asked"))
            .await
            .unwrap();
        let h = w.store.handoff(c.id).await.unwrap().unwrap();
        assert_eq!(
            h.suggested_agent,
            Some(expected.id),
            "{text}: {:?}",
            h.routing
        );
        assert!(
            h.routing.iter().any(|r| r.contains("similarity")),
            "{:?}",
            h.routing
        );
    }
}

#[tokio::test]
async fn a_transfer_moves_the_conversation_to_the_other_teams_queue_with_a_new_record() {
    let w = world().await;
    w.teams().await;
    let ana = w.person("ana@example.com", &["care"], &[], 3).await;
    let bo = w.person("bo@example.com", &["billing"], &[], 3).await;
    let conv = w.conversation(&w.maya).await;
    w.post(
        &conv,
        "I was charged twice this month",
        Some("order_status"),
    )
    .await;
    w.service
        .request_handoff(
            conv.id,
            HandoffRequest::new(HandoffTrigger::Customer, "asked"),
        )
        .await
        .unwrap();
    w.service.claim(conv.id, &ana).await.unwrap();
    // Only the owner transfers a conversation a person holds; the team must exist.
    assert!(
        w.service
            .transfer(conv.id, &bo, "billing", None)
            .await
            .is_err()
    );
    assert!(
        w.service
            .transfer(conv.id, &ana, "nowhere", None)
            .await
            .is_err()
    );
    let moved = w
        .service
        .transfer(conv.id, &ana, "billing", Some("double charge".into()))
        .await
        .unwrap();
    assert_eq!(moved.status, ConversationStatus::PendingHuman);
    assert_eq!(moved.assignment.team.as_deref(), Some("billing"));
    let h = w.store.handoff(conv.id).await.unwrap().unwrap();
    assert_eq!(h.trigger, HandoffTrigger::Human);
    assert!(h.reason.contains("double charge"), "{}", h.reason);
    assert_eq!(h.suggested_agent, Some(bo.id), "{:?}", h.routing);
    w.service
        .claim(conv.id, &bo)
        .await
        .expect("billing takes it");
}

#[tokio::test]
async fn a_solved_ai_answer_becomes_a_resolved_question_and_a_low_rating_withdraws_it() {
    let w = world().await;
    w.ingest(&[
        serde_json::json!({ "id": "returns-policy", "title": "Returns policy",
            "content": "You can return any thermostat within 30 days of delivery for a full refund. Start the return from your orders page." }),
        serde_json::json!({ "id": "wiring", "title": "Thermostat wiring",
            "content": "The thermostat needs a common wire for power." }),
    ])
    .await;
    let conv = w.conversation(&w.maya).await;
    let reply = w
        .say(
            &conv,
            "Can I return my thermostat for a refund?",
            Some("returns"),
        )
        .await;
    assert!(reply.contains("30 days"), "{reply}");
    let learned = w
        .service
        .learn_from_resolution(conv.id)
        .await
        .unwrap()
        .expect("an AI-only answer with citations teaches");
    assert_eq!(learned.key, format!("conversation:{}", conv.id));
    assert_eq!(learned.question, "Can I return my thermostat for a refund?");
    assert_eq!(learned.documents, vec!["returns-policy".to_string()]);
    assert_eq!(learned.origin, "conversation");
    let stored = w.store.resolved_questions(w.ws).await.unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(
        (&stored[0].key, &stored[0].question, &stored[0].documents),
        (&learned.key, &learned.question, &learned.documents)
    );
    // A rating of 1 or 2 withdraws it (off the request).
    w.service.rate(conv.id, 2).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !w.store.resolved_questions(w.ws).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "not withdrawn");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A conversation a person wrote in teaches nothing: the AI did not solve it alone.
    w.teams().await;
    let ana = w.person("ana@example.com", &["care"], &[], 3).await;
    let helped = w.conversation(&w.bob).await;
    w.say(&helped, "Can I return a thermostat?", Some("returns"))
        .await;
    w.person_answers(&helped, &ana, "Yes, within 30 days.")
        .await;
    assert_eq!(
        w.service.learn_from_resolution(helped.id).await.unwrap(),
        None
    );
    // Nor does one without a cited answer.
    let small_talk = w.conversation(&w.bob).await;
    w.post(&small_talk, "hello", None).await;
    assert_eq!(
        w.service
            .learn_from_resolution(small_talk.id)
            .await
            .unwrap(),
        None
    );
    assert!(w.store.resolved_questions(w.ws).await.unwrap().is_empty());
}
