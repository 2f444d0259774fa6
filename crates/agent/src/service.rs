//! Conversation operations shared by every front end.

use crate::hub::LiveHub;
use concierge_core::*;
use concierge_knowledge::answer::AnswerKind;
use concierge_knowledge::{AnswerConfig, KnowledgeBase, compose_answer};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Notify;

#[derive(Debug, Clone, Copy)]
pub struct AgentConfig {
    pub top_k: usize,
    pub answer: AnswerConfig,
    /// Attempts before a failing turn is given up.
    pub max_attempts: i32,
    pub workers: usize,
    /// A person's hold on a claimed conversation (renewed while they are active).
    pub human_lease_seconds: i64,
    /// A customer's "solved" on an answer the AI gave alone records a resolved question
    /// ([`Service::learn_from_resolution`]).
    pub learn_from_resolutions: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Knowledge(#[from] concierge_knowledge::KnowledgeError),
    #[error("conversation is closed")]
    Closed,
    #[error("bad task: {0}")]
    BadTask(&'static str),
    #[error("{0}")]
    Invalid(String),
    #[error("infrastructure failure: {0}")]
    Infrastructure(String),
}

/// Task kind: sync a knowledge source (`params.path`: a directory or a `.jsonl` file).
pub const SYNC_TASK: &str = "knowledge.sync";

pub type ServiceResult<T> = Result<T, ServiceError>;

pub const GIVE_UP_TEXT: &str = "Sorry, something went wrong on our side while answering your message. \
Press \"Talk to a person\" and someone from our team will help you.";

pub const CLARIFY_TEXT: &str = "I want to be sure I help with the right thing. Could you tell me a \
bit more about what you need?";
pub const OFFER_HUMAN_TEXT: &str = "Sorry, I still could not work out how to help with that. \
Would you like a person from our team to take over? Press \"Talk to a person\", or rephrase your question.";

/// Intents at least this probable are named in a clarifying question.
const MIN_SUGGESTED_CONFIDENCE: f32 = 0.15;

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Words per streamed reply piece.
const DELTA_WORDS: usize = 4;

pub struct Service {
    pub store: Arc<dyn Store>,
    pub knowledge: Arc<KnowledgeBase>,
    pub hub: Arc<LiveHub>,
    pub(crate) wake: Arc<Notify>,
    /// Wakes the task worker when a task is queued in this process.
    pub(crate) task_wake: Arc<Notify>,
    pub(crate) intents: crate::understanding::IntentCache,
    pub tools: std::sync::Arc<crate::tools::ToolRegistry>,
    pub(crate) tool_env: crate::tools::ToolEnv,
    pub guardrails: Arc<crate::guarding::Guardrails>,
    /// The language model, when one is configured (see [`Service::with_llm`]).
    pub(crate) llm: Option<Arc<crate::planner::LlmAgent>>,
    pub config: AgentConfig,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, knowledge: Arc<KnowledgeBase>, config: AgentConfig) -> Self {
        let tool_env = crate::tools::ToolEnv {
            store: store.clone(),
            knowledge: knowledge.clone(),
        };
        Self {
            tools: Arc::new(crate::tools::ToolRegistry::builtin()),
            tool_env,
            store,
            knowledge,
            hub: Arc::new(LiveHub::new()),
            wake: Arc::new(Notify::new()),
            task_wake: Arc::new(Notify::new()),
            intents: Default::default(),
            guardrails: Default::default(),
            llm: None,
            config,
        }
    }

    pub(crate) fn publish_all(&self, events: &[Event]) {
        for e in events {
            self.hub
                .publish(e.conversation_id, LiveEvent::Appended(e.clone()));
        }
    }

    pub(crate) async fn record(
        &self,
        conversation: ConversationId,
        payload: EventPayload,
    ) -> ServiceResult<Event> {
        let event = self.store.append_event(conversation, payload).await?;
        self.publish_all(std::slice::from_ref(&event));
        Ok(event)
    }

    /// Stores a customer message and queues the AI's turn when the AI owns the conversation.
    /// A retried request with the same idempotency key returns the first message.
    pub async fn post_customer_message(
        &self,
        conversation: &Conversation,
        text: String,
        idempotency: Option<IdempotencyKey>,
    ) -> ServiceResult<Created<Message>> {
        if conversation.status == ConversationStatus::Closed {
            return Err(ServiceError::Closed);
        }
        let ai_owns = matches!(
            conversation.status,
            ConversationStatus::AiActive | ConversationStatus::Resolved
        );
        // Triage never loses a message: if it fails, the message is stored without it and the
        // AI answers as it would without a policy.
        let analysis = match self.analyse(conversation, &text).await {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::warn!(error = %e, conversation = %conversation.id, "triage failed");
                None
            }
        };
        let handoff = analysis.as_ref().and_then(|a| match &a.route.action {
            RouteAction::Handoff { team } => Some((a.route.rule.clone(), team.clone())),
            _ => None,
        });
        let ai_turn = ai_owns && handoff.is_none();
        let id = MessageId::new();
        let follow_up = analysis
            .as_ref()
            .map(|a| {
                vec![
                    EventPayload::MessageTriaged {
                        message_id: id,
                        triage: Box::new(a.triage.clone()),
                    },
                    EventPayload::RoutingDecided {
                        message_id: id,
                        route: a.route.clone(),
                    },
                ]
            })
            .unwrap_or_default();
        let created = self
            .store
            .append_message(NewMessage {
                conversation_id: conversation.id,
                id,
                author: Author::Customer,
                text,
                citations: vec![],
                idempotency,
                enqueue_turn: ai_turn,
                analysis: analysis.map(Box::new),
                follow_up,
                sender: None,
            })
            .await?;
        self.publish_all(&created.events);
        if created.created {
            metrics::counter!("concierge_messages_total", "author" => "customer").increment(1);
            if ai_turn {
                self.wake.notify_one();
            } else if let (true, Some((rule, team))) = (ai_owns, handoff) {
                let request = crate::humans::HandoffRequest::new(
                    HandoffTrigger::RoutingPolicy,
                    format!("routing rule {rule}"),
                )
                .to_team(team);
                self.request_handoff(conversation.id, request).await?;
            } else {
                self.record(
                    conversation.id,
                    EventPayload::AiSilenced {
                        message_id: created.value.id,
                        status: conversation.status,
                    },
                )
                .await?;
            }
        }
        Ok(created)
    }

    pub(crate) async fn post_system(
        &self,
        id: ConversationId,
        text: &str,
    ) -> ServiceResult<Message> {
        let created = self
            .store
            .append_message(NewMessage {
                conversation_id: id,
                id: MessageId::new(),
                author: Author::System,
                text: text.to_string(),
                citations: vec![],
                idempotency: None,
                enqueue_turn: false,
                analysis: None,
                follow_up: vec![],
                sender: None,
            })
            .await?;
        self.publish_all(&created.events);
        Ok(created.value)
    }

    /// Answers one queued customer message, then calls a person if the AI is not getting
    /// anywhere (see `humans::escalation_reason`).
    pub async fn run_turn(&self, turn: &Turn) -> ServiceResult<()> {
        self.answer_turn(turn).await?;
        self.escalate_if_needed(turn.conversation_id).await
    }

    async fn answer_turn(&self, turn: &Turn) -> ServiceResult<()> {
        let started = Instant::now();
        let store = &self.store;
        let mut conversation = store
            .conversation(turn.conversation_id)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?;
        let message = store
            .message(turn.message_id)
            .await?
            .ok_or(StoreError::NotFound("message"))?;
        if conversation.status == ConversationStatus::Resolved {
            // The customer wrote again after resolution: the AI picks the conversation back up.
            let (c, event) = store
                .change_status(
                    conversation.id,
                    ConversationStatus::Resolved,
                    ConversationStatus::AiActive,
                    "customer wrote after resolution",
                )
                .await?;
            self.publish_all(&[event]);
            conversation = c;
        }
        if !conversation.status.ai_may_reply() {
            self.record(
                conversation.id,
                EventPayload::AiSilenced {
                    message_id: message.id,
                    status: conversation.status,
                },
            )
            .await?;
            return Ok(());
        }
        self.hub.publish(conversation.id, LiveEvent::Typing);

        let mut step_no = 0u32;
        if let Some(a) = message.analysis.as_ref()
            && a.route.action == RouteAction::Refuse
        {
            // Blocked by the input guardrail: no procedure, tool or model reads the message.
            if let Some(g) = &a.triage.guard {
                let category = g.category.as_deref().unwrap_or("unspecified");
                self.record_guard_step(
                    conversation.id,
                    message.id,
                    ("message", &message.id.to_string()),
                    (category, g.score),
                    &mut step_no,
                )
                .await?;
            }
            return self
                .send_reply(
                    &conversation,
                    &message,
                    crate::guarding::REFUSE_TEXT.to_string(),
                    vec![],
                    ReplyKind::Notice,
                    format!("declined: {}", a.route.rule),
                )
                .await;
        }

        // A write the model asked for waits for this answer; then a procedure (started by the
        // message's intent, or waiting for this answer) acts.
        if self.resume_plan(&conversation, &message).await?
            || self.act(&conversation, &message).await?
        {
            metrics::histogram!("concierge_turn_seconds").record(started.elapsed().as_secs_f64());
            return Ok(());
        }

        let action = message.analysis.as_ref().map(|a| &a.route.action);
        if let Some(action @ (RouteAction::Clarify | RouteAction::OfferHuman)) = action {
            let (text, reason) = if *action == RouteAction::Clarify {
                (
                    self.clarifying_question(conversation.workspace_id, &message)
                        .await,
                    "the message matches none of the workspace's intents: one clarifying question",
                )
            } else {
                (
                    OFFER_HUMAN_TEXT.to_string(),
                    "still unclear after a clarifying question: a person is offered",
                )
            };
            return self
                .send_reply(
                    &conversation,
                    &message,
                    text,
                    vec![],
                    ReplyKind::Notice,
                    reason.into(),
                )
                .await;
        }

        let retrieval_started = Instant::now();
        // The customer reads public documents and those shared with them.
        let principals = Principals::with([format!("customer:{}", conversation.customer_id)]);
        let retrieval = self
            .knowledge
            .retrieve(
                conversation.workspace_id,
                &principals,
                &message.text,
                self.config.top_k,
            )
            .await?;
        let hits = self
            .screen_hits(conversation.id, message.id, retrieval.hits, &mut step_no)
            .await?;
        let answer = compose_answer(
            self.knowledge.index(),
            &retrieval.terms,
            &hits,
            self.config.answer,
        );
        let retrieval_ms = retrieval_started.elapsed().as_secs_f64() * 1000.0;
        metrics::histogram!("concierge_retrieval_seconds").record(retrieval_ms / 1000.0);
        self.record(
            conversation.id,
            EventPayload::RetrievalDone {
                message_id: message.id,
                query: message.text.clone(),
                hits: hits
                    .iter()
                    .map(|h| RetrievedRef {
                        chunk_id: h.chunk_id.clone(),
                        document_id: h.document_id.clone(),
                        score: h.score,
                    })
                    .collect(),
                evidence: answer.evidence,
                threshold: self.config.answer.min_evidence,
                latency_ms: retrieval_ms,
            },
        )
        .await?;

        let fallback = if self.llm.is_some() {
            match self
                .plan(&conversation, &message, &hits, &mut step_no)
                .await?
            {
                None => {
                    metrics::histogram!("concierge_turn_seconds")
                        .record(started.elapsed().as_secs_f64());
                    return Ok(());
                }
                Some(reason) => Some(reason),
            }
        } else {
            None
        };
        let citations = citations(&answer.cited);
        let kind = match answer.kind {
            AnswerKind::Grounded => ReplyKind::Grounded,
            AnswerKind::NoAnswer => ReplyKind::NoAnswer,
            AnswerKind::NoQuestion => ReplyKind::Notice,
        };
        let reason = match fallback {
            Some(why) => format!("{} (offline answer: {why})", answer.reason),
            None => answer.reason,
        };
        self.send_reply(
            &conversation,
            &message,
            answer.text,
            citations,
            kind,
            reason,
        )
        .await?;
        metrics::histogram!("concierge_turn_seconds").record(started.elapsed().as_secs_f64());
        Ok(())
    }

    /// A clarifying question naming the closest intents the workspace handles.
    async fn clarifying_question(&self, ws: WorkspaceId, message: &Message) -> String {
        let names: Vec<String> = message
            .analysis
            .as_ref()
            .and_then(|a| a.triage.intent.as_ref())
            // Far from every intent, the nearest ones mean nothing: ask openly instead.
            .map(|i| {
                i.best
                    .iter()
                    .chain(&i.alternatives)
                    .filter(|s| s.confidence >= MIN_SUGGESTED_CONFIDENCE)
                    .take(2)
                    .map(|s| s.name.clone())
                    .collect()
            })
            .unwrap_or_default();
        // The descriptions come from the model's settings (cached in memory, as for triage).
        let described: Vec<String> = match self.intent_model(ws).await {
            Ok(Some(model)) => names
                .iter()
                .filter_map(|n| {
                    let spec = model.settings.intent(n)?;
                    let d = spec.description.trim().trim_end_matches('.');
                    (!d.is_empty()).then(|| lowercase_first(d))
                })
                .collect(),
            _ => vec![],
        };
        match described.as_slice() {
            [a, b, ..] => format!(
                "I want to be sure I help with the right thing. Is your message about {a}, or about {b}? \
                 A few more details would help me."
            ),
            [a] => format!(
                "I want to be sure I help with the right thing. Is your message about {a}? \
                 A few more details would help me."
            ),
            [] => CLARIFY_TEXT.to_string(),
        }
    }

    /// Streams and stores the AI's reply to `message` (unless a person took over meanwhile).
    pub(crate) async fn send_reply(
        &self,
        conversation: &Conversation,
        message: &Message,
        text: String,
        citations: Vec<Citation>,
        kind: ReplyKind,
        reason: String,
    ) -> ServiceResult<()> {
        let store = &self.store;
        let reply_id = MessageId::new();
        let words: Vec<&str> = text.split_inclusive(' ').collect();
        for piece in words.chunks(DELTA_WORDS) {
            self.hub.publish(
                conversation.id,
                LiveEvent::Delta {
                    message_id: reply_id,
                    delta: piece.concat(),
                },
            );
        }
        // A person may have taken over while we were working: never talk over them. The store
        // appends an AI message only while the AI owns the conversation.
        let created = match store
            .append_message(NewMessage {
                conversation_id: conversation.id,
                id: reply_id,
                author: Author::Ai,
                text,
                citations,
                idempotency: Some(IdempotencyKey {
                    // A turn retried after a crash never posts its reply twice.
                    key: format!("reply-to:{}", message.id),
                    fingerprint: "ai-reply".into(),
                }),
                enqueue_turn: false,
                analysis: None,
                follow_up: vec![],
                sender: None,
            })
            .await
        {
            Ok(created) => created,
            Err(StoreError::NotOwner(_)) => {
                let status = store
                    .conversation(conversation.id)
                    .await?
                    .map_or(conversation.status, |c| c.status);
                self.record(
                    conversation.id,
                    EventPayload::AiSilenced {
                        message_id: message.id,
                        status,
                    },
                )
                .await?;
                return Ok(());
            }
            Err(e) => return Err(e.into()),
        };
        self.publish_all(&created.events);
        self.record(
            conversation.id,
            EventPayload::ReplySent {
                message_id: created.value.id,
                in_reply_to: message.id,
                kind,
                reason,
            },
        )
        .await?;
        metrics::counter!("concierge_replies_total", "kind" => kind.as_str()).increment(1);
        Ok(())
    }

    /// Called when a turn failed for the last time: the customer is told and offered a person.
    pub async fn give_up_turn(&self, turn: &Turn) -> ServiceResult<()> {
        self.post_system(turn.conversation_id, GIVE_UP_TEXT).await?;
        Ok(())
    }

    /// Queues a knowledge sync of `path` (a directory or a `.jsonl` file) for the workspace.
    pub async fn queue_sync(
        &self,
        workspace: WorkspaceId,
        path: &std::path::Path,
    ) -> ServiceResult<Task> {
        let task = self
            .store
            .create_task(
                workspace,
                SYNC_TASK,
                &serde_json::json!({ "path": path.display().to_string() }),
            )
            .await?;
        self.task_wake.notify_one();
        Ok(task)
    }

    /// Runs one background task; returns its result.
    pub async fn run_task(&self, task: &Task) -> ServiceResult<serde_json::Value> {
        match task.kind.as_str() {
            SYNC_TASK => {
                let path = task.params["path"]
                    .as_str()
                    .ok_or(ServiceError::BadTask("params.path is missing"))?;
                let source = concierge_knowledge::source::open_path(std::path::Path::new(path))?;
                let store = self.store.clone();
                let id = task.id;
                // Progress goes to the store at most every 16 documents (and at the end).
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
                let reporter = tokio::spawn(async move {
                    while let Some((done, total)) = rx.recv().await {
                        let lease = chrono::Utc::now() + chrono::Duration::seconds(120);
                        if let Err(e) = store
                            .task_progress(id, done as u64, total as u64, lease)
                            .await
                        {
                            tracing::warn!(%e, "cannot record task progress");
                        }
                    }
                });
                let report = self
                    .knowledge
                    .sync(task.workspace_id, source.as_ref(), &move |done, total| {
                        if done % 16 == 0 || done == total {
                            let _ = tx.send((done, total));
                        }
                    })
                    .await;
                let _ = reporter.await;
                let report = report?;
                Ok(serde_json::json!({
                    "source": source.id(),
                    "added": report.added,
                    "updated": report.updated,
                    "unchanged": report.unchanged,
                    "deleted": report.deleted,
                    "chunks": report.chunks,
                    "errors": report.errors,
                }))
            }
            crate::understanding::TRAIN_INTENTS_TASK => self.train_intents(task.workspace_id).await,
            _ => Err(ServiceError::BadTask("unknown task kind")),
        }
    }

    /// Runs a registry tool for `ctx` under the registry's policy (front ends such as MCP).
    pub async fn call_tool(
        &self,
        ctx: &crate::tools::ToolContext,
        name: &str,
        args: serde_json::Value,
    ) -> crate::tools::ToolResult {
        self.tools.call(&self.tool_env, ctx, name, args).await
    }

    /// Wakes a worker (e.g. after turns were queued by another process).
    pub fn wake_workers(&self) {
        self.wake.notify_one();
    }
}

/// Citations `[1]`, `[2]`, … for the passages an answer cites, in order.
pub(crate) fn citations(cited: &[concierge_knowledge::Hit]) -> Vec<Citation> {
    cited
        .iter()
        .enumerate()
        .map(|(i, h)| Citation {
            n: u32::try_from(i + 1).unwrap_or(u32::MAX),
            document_id: h.document_id.parse().unwrap_or_default(),
            chunk_id: h.chunk_id.clone(),
            title: h.title.clone(),
            url: h.url.clone(),
        })
        .collect()
}
