//! The human side of a conversation: handoff with a summary and expert routing, the ownership
//! lease (claim, reply, release, transfer, hand-back, resolve), lease expiry, the case file a
//! person works from, and the AI's own decision to call a person.
//!
//! Invariant: every change of owner goes through `Store::transition`, a compare-and-set, so
//! two people never own one conversation and an expired lease returns the conversation to its
//! queue, never to the AI. The AI posts only while it owns the conversation (the store checks
//! it on every AI message).

use crate::service::{Service, ServiceError, ServiceResult};
use chrono::{DateTime, Duration, Utc};
use concierge_core::*;
use concierge_knowledge::embed::dot;

/// The workspace setting holding the teams.
pub const TEAMS: &str = "teams";
/// An agent seen by the console within this long counts as online for routing.
const ONLINE_WINDOW_SECONDS: i64 = 120;
/// Past resolved handoffs compared for expert routing.
const SIMILAR_HISTORY: u32 = 200;
/// Recent claims the expected wait is computed from (and the fewest that make an estimate).
const WAIT_HISTORY: u32 = 20;
const MIN_WAIT_SAMPLES: usize = 3;
/// A customer message quoted in a summary is cut to this many characters.
const QUOTE_CHARS: usize = 240;

/// Why and where a conversation goes to a person.
#[derive(Debug, Clone)]
pub struct HandoffRequest {
    pub trigger: HandoffTrigger,
    pub reason: String,
    /// A team named by a routing rule or a caller; expert routing picks one otherwise.
    pub team: Option<String>,
}

impl HandoffRequest {
    pub fn new(trigger: HandoffTrigger, reason: impl Into<String>) -> Self {
        Self {
            trigger,
            reason: reason.into(),
            team: None,
        }
    }

    pub fn to_team(mut self, team: Option<String>) -> Self {
        self.team = team;
        self
    }
}

/// A conversation in the human queue, with what the queue view shows.
#[derive(Debug, Clone)]
pub struct QueueItem {
    pub conversation: Conversation,
    pub handoff: Option<Handoff>,
    pub customer: Option<Customer>,
    /// Position among the waiting conversations of its team (1 = next), when waiting.
    pub position: Option<u32>,
}

/// Everything a person needs to take a conversation over.
#[derive(Debug, Clone)]
pub struct CaseFile {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    /// Internal notes, oldest first.
    pub notes: Vec<(Sender, String, DateTime<Utc>)>,
    pub handoff: Option<Handoff>,
    pub customer: Option<Customer>,
    pub orders: Vec<Order>,
    pub tickets: Vec<Ticket>,
    /// Documents the AI cited in this conversation.
    pub sources: Vec<SourceRef>,
    /// Grounded answers from the knowledge base to the customer's last message, for the person
    /// to send or adapt.
    pub suggestions: Vec<Suggestion>,
}

#[derive(Debug, Clone)]
pub struct Suggestion {
    pub text: String,
    pub citations: Vec<Citation>,
}

/// Facts a summary is made from.
struct Facts {
    reason: String,
    wants: String,
    tried: Vec<String>,
    sources: Vec<SourceRef>,
    customer: Vec<String>,
    /// What the customer wrote (for the grounding check of a model-written summary).
    customer_text: Vec<String>,
}

impl Service {
    /// The workspace's teams (none configured: an empty list).
    pub async fn teams(&self, ws: WorkspaceId) -> ServiceResult<TeamSettings> {
        match self.store.setting(ws, TEAMS).await? {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| ServiceError::Invalid(format!("stored teams are invalid: {e}"))),
            None => Ok(TeamSettings::default()),
        }
    }

    pub async fn put_teams(&self, ws: WorkspaceId, teams: &TeamSettings) -> ServiceResult<()> {
        teams
            .validate()
            .map_err(|p| ServiceError::Invalid(p.join("; ")))?;
        let value = serde_json::to_value(teams)
            .map_err(|e| ServiceError::Invalid(format!("teams: {e}")))?;
        self.store.put_setting(ws, TEAMS, &value).await?;
        Ok(())
    }

    /// Moves the conversation to a human queue with a handoff record (reason, summary, team,
    /// priority, suggested agent) and tells the customer their place in the queue. Asking again
    /// while a person is already coming (or there) changes nothing.
    pub async fn request_handoff(
        &self,
        id: ConversationId,
        request: HandoffRequest,
    ) -> ServiceResult<Conversation> {
        let conversation = self.conversation_or_404(id).await?;
        match conversation.status {
            ConversationStatus::PendingHuman | ConversationStatus::HumanActive => {
                return Ok(conversation);
            }
            ConversationStatus::Closed => return Err(ServiceError::Closed),
            ConversationStatus::AiActive | ConversationStatus::Resolved => {}
        }
        let handoff = self.prepare_handoff(&conversation, &request).await?;
        let mut t = Transition::new(
            id,
            conversation.status,
            ConversationStatus::PendingHuman,
            &request.reason,
        );
        t.assignment = Assignment {
            team: handoff.team.clone(),
            priority: handoff.priority,
            queued_at: Some(Utc::now()),
            ..Assignment::default()
        };
        t.events = vec![EventPayload::HandoffRequested {
            handoff: Box::new(handoff.clone().without_vector()),
        }];
        let (updated, events) = self.store.transition(t).await?;
        self.publish_all(&events);
        self.store.put_handoff(&handoff).await?;
        metrics::counter!("concierge_handoffs_total", "trigger" => request.trigger.as_str())
            .increment(1);
        self.tell_queue_position(&updated).await?;
        Ok(updated)
    }

    /// Tells the customer a person is coming, with their place in the queue and the usual wait.
    async fn tell_queue_position(&self, conversation: &Conversation) -> ServiceResult<()> {
        let queue = self.store.human_queue(conversation.workspace_id).await?;
        let position = queue_position(&queue, conversation.id).unwrap_or(1);
        let waits = self
            .store
            .queue_waits(
                conversation.workspace_id,
                conversation.assignment.team.as_deref(),
                WAIT_HISTORY,
            )
            .await?;
        let expected = median(&waits)
            .filter(|_| waits.len() >= MIN_WAIT_SAMPLES)
            .map(|s| s.round().max(0.0) as u64);
        let place = if position == 1 {
            "You are next in the queue".to_string()
        } else {
            format!("You are number {position} in the queue")
        };
        let wait = match expected {
            Some(s) if s < 90 => "; people are usually with you within a minute or two".to_string(),
            Some(s) => format!("; the wait is usually about {} minutes", s.div_ceil(60)),
            None => String::new(),
        };
        let text = format!("{HANDOFF_TEXT} {place}{wait}.");
        self.post_system(conversation.id, &text).await?;
        self.record(
            conversation.id,
            EventPayload::QueuePosition {
                position,
                expected_wait_seconds: expected,
            },
        )
        .await?;
        Ok(())
    }

    /// Builds the handoff record: summary, team (the request's or by skills), priority (from the
    /// customer's most urgent message) and the agent expert routing suggests.
    async fn prepare_handoff(
        &self,
        conversation: &Conversation,
        request: &HandoffRequest,
    ) -> ServiceResult<Handoff> {
        let messages = self.store.messages(conversation.id).await?;
        let events = self.store.latest_events(conversation.id, 2000).await?;
        let customer = self.store.customer(conversation.customer_id).await?;
        let orders = self
            .store
            .orders_for_customer(conversation.customer_id)
            .await?;
        let tickets = self
            .store
            .tickets_for_customer(conversation.customer_id)
            .await?;
        let facts = facts(
            &request.reason,
            &messages,
            &events,
            customer.as_ref(),
            &orders,
            &tickets,
        );
        let summary = self.summarize(&facts).await;
        let triaged: Vec<&Triage> = messages
            .iter()
            .filter_map(|m| m.analysis.as_deref().map(|a| &a.triage))
            .collect();
        let priority = triaged
            .iter()
            .map(|t| Priority::from_urgency(t.urgency.level))
            .max()
            .unwrap_or_default();
        let intent = triaged.iter().rev().find_map(|t| {
            t.intent
                .as_ref()
                .filter(|i| !i.out_of_scope)
                .and_then(|i| i.best.as_ref().map(|b| b.name.clone()))
        });
        let language = triaged
            .iter()
            .rev()
            .find_map(|t| t.language.as_ref().filter(|l| l.reliable))
            .map(|l| l.code.clone());
        let tier = customer.as_ref().and_then(|c| c.tier.clone());
        let need = Need {
            intent,
            language,
            tags: tier.into_iter().collect(),
        };
        let teams = self.teams(conversation.workspace_id).await?;
        let mut routing = Vec::new();
        let team = match &request.team {
            Some(t) => {
                routing.push(format!("team {t}: named by {}", request.reason));
                Some(t.clone())
            }
            None => choose_team(&teams, &need, &mut routing),
        };
        let vector = self.embed_one(&facts.customer_text.join("\n")).await;
        let suggested_agent = self
            .choose_agent(
                conversation.workspace_id,
                team.as_deref(),
                &need,
                vector.as_deref(),
                &mut routing,
            )
            .await?;
        Ok(Handoff {
            conversation_id: conversation.id,
            trigger: request.trigger,
            reason: request.reason.clone(),
            team,
            priority,
            suggested_agent,
            routing,
            summary,
            created_at: Utc::now(),
            vector: vector.unwrap_or_default(),
            handed_back: None,
        })
    }

    async fn embed_one(&self, text: &str) -> Option<Vec<f32>> {
        let embedder = self.knowledge.pipeline.embedder.as_ref()?;
        if text.trim().is_empty() {
            return None;
        }
        match embedder.embed(&[text.to_string()]).await {
            Ok(mut v) => v.pop(),
            Err(e) => {
                tracing::warn!(error = %e.0, "cannot embed the conversation for routing");
                None
            }
        }
    }

    /// Picks a person of the team: skill match first, then who resolved the most similar past
    /// conversations, then the lightest load. Only available people seen recently, below their
    /// capacity, are candidates.
    async fn choose_agent(
        &self,
        ws: WorkspaceId,
        team: Option<&str>,
        need: &Need,
        vector: Option<&[f32]>,
        routing: &mut Vec<String>,
    ) -> ServiceResult<Option<AgentId>> {
        let now = Utc::now();
        let agents = self.store.agents(ws).await?;
        let queue = self.store.human_queue(ws).await?;
        let history = match vector {
            Some(_) => self.store.resolved_handoffs(ws, SIMILAR_HISTORY).await?,
            None => vec![],
        };
        let mut candidates: Vec<Candidate> = Vec::new();
        for a in &agents {
            if let Some(team) = team
                && !a.teams.iter().any(|t| t == team)
            {
                continue;
            }
            let online = a.available
                && a.last_seen_at
                    .is_some_and(|t| now - t <= Duration::seconds(ONLINE_WINDOW_SECONDS));
            if !online {
                continue;
            }
            let load = queue
                .iter()
                .filter(|c| c.assignment.agent == Some(a.id))
                .count();
            if load >= a.capacity as usize {
                continue;
            }
            let similarity = vector.map_or(0.0, |v| {
                history
                    .iter()
                    .filter(|(h, by)| *by == a.id && h.vector.len() == v.len())
                    .map(|(h, _)| dot(v, &h.vector))
                    .fold(0.0f32, f32::max)
            });
            candidates.push(Candidate {
                id: a.id,
                name: a.name.clone(),
                skill: skill_match(&a.skills, need),
                similarity,
                load,
            });
        }
        candidates.sort_by(|x, y| {
            y.skill
                .cmp(&x.skill)
                .then(y.similarity_bucket().cmp(&x.similarity_bucket()))
                .then(x.load.cmp(&y.load))
                .then(x.name.cmp(&y.name))
        });
        match candidates.first() {
            Some(c) => {
                routing.push(format!(
                    "suggested {}: {} matching skill(s), similarity {:.2} to conversations they resolved, {} open now ({} candidate(s))",
                    c.name,
                    c.skill,
                    c.similarity,
                    c.load,
                    candidates.len()
                ));
                Ok(Some(c.id))
            }
            None => {
                routing.push("no agent of the team is available now: the queue holds it".into());
                Ok(None)
            }
        }
    }

    /// The summary for the person: the model's when one is configured and every sentence of it
    /// is supported by the facts, the facts themselves otherwise.
    async fn summarize(&self, facts: &Facts) -> HandoffSummary {
        let text = render_facts(facts);
        let mut summary = HandoffSummary {
            wants: facts.wants.clone(),
            tried: facts.tried.clone(),
            sources: facts.sources.clone(),
            customer: facts.customer.clone(),
            text: text.clone(),
            generated_by: "extractive".into(),
        };
        let Some(agent) = &self.llm else {
            return summary;
        };
        let instructions = "Write a handoff note for the support colleague who takes over this \
            conversation: what the customer wants, what was tried and with what result, and what \
            is still open. At most five short sentences. Use only the facts below; add nothing.";
        let facts_text = if agent.settings.redact_pii {
            self.guardrails.redactor.redact(&text).0
        } else {
            text.clone()
        };
        let request = LlmRequest {
            system: Some(instructions.to_string()),
            messages: vec![LlmMessage::user(format!("Facts:\n{facts_text}"))],
            tools: vec![],
            max_tokens: 400,
            temperature: Some(0.0),
        };
        let started = std::time::Instant::now();
        let result = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            agent.provider.complete(&request, &|_| {}),
        )
        .await;
        match result {
            Ok(Ok(response)) => {
                let evidence: Vec<&str> = text.lines().collect();
                let context: Vec<&str> = facts.customer_text.iter().map(String::as_str).collect();
                let report = concierge_knowledge::grounding::check(
                    &response.text,
                    &evidence,
                    &context,
                    instructions,
                );
                if report.supported() && !response.text.trim().is_empty() {
                    summary.text = response.text.trim().to_string();
                    summary.generated_by = format!("llm:{}", response.model);
                } else {
                    tracing::info!(
                        unsupported = report.unsupported().len(),
                        "the model's handoff summary was not supported by the facts; the facts are sent"
                    );
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e.message, "the model could not summarise the handoff")
            }
            Err(_) => tracing::warn!(
                seconds = started.elapsed().as_secs(),
                "the model's handoff summary timed out"
            ),
        }
        summary
    }

    /// A person takes the conversation: from its queue, or straight from the AI (then a
    /// handoff record is written too). Two people claiming at once: exactly one wins.
    pub async fn claim(
        &self,
        id: ConversationId,
        agent: &AgentAccount,
    ) -> ServiceResult<Conversation> {
        let conversation = self.conversation_or_404(id).await?;
        self.same_workspace(&conversation, agent)?;
        let now = Utc::now();
        let mut t = Transition::new(
            id,
            conversation.status,
            ConversationStatus::HumanActive,
            format!("claimed by {}", agent.name),
        );
        let mut picked_up = None;
        match conversation.status {
            ConversationStatus::PendingHuman => {}
            ConversationStatus::AiActive | ConversationStatus::Resolved => {
                let request = HandoffRequest::new(
                    HandoffTrigger::Human,
                    format!("picked up by {}", agent.name),
                );
                let handoff = self.prepare_handoff(&conversation, &request).await?;
                t.events = vec![EventPayload::HandoffRequested {
                    handoff: Box::new(handoff.clone().without_vector()),
                }];
                picked_up = Some(handoff);
            }
            ConversationStatus::HumanActive => {
                return Err(StoreError::NotOwner(format!(
                    "the conversation is owned by {:?}",
                    conversation.owner()
                ))
                .into());
            }
            ConversationStatus::Closed => return Err(ServiceError::Closed),
        }
        t.assignment = Assignment {
            team: conversation
                .assignment
                .team
                .clone()
                .or_else(|| picked_up.as_ref().and_then(|h| h.team.clone())),
            priority: conversation.assignment.priority,
            agent: Some(agent.id),
            lease_until: Some(now + self.lease()),
            queued_at: conversation.assignment.queued_at,
        };
        t.capacity = Some(agent.capacity);
        let (updated, events) = self.store.transition(t).await?;
        self.publish_all(&events);
        if let Some(h) = picked_up {
            self.store.put_handoff(&h).await?;
        }
        Ok(updated)
    }

    /// A person's reply to the customer; only the owner under a live lease may post. Renews
    /// the lease.
    pub async fn agent_reply(
        &self,
        conversation: &Conversation,
        agent: &AgentAccount,
        text: String,
        idempotency: Option<IdempotencyKey>,
    ) -> ServiceResult<Created<Message>> {
        self.same_workspace(conversation, agent)?;
        let created = self
            .store
            .append_message(NewMessage {
                conversation_id: conversation.id,
                id: MessageId::new(),
                author: Author::Agent,
                text,
                citations: vec![],
                idempotency,
                enqueue_turn: false,
                analysis: None,
                follow_up: vec![],
                sender: Some(sender(agent)),
            })
            .await?;
        self.publish_all(&created.events);
        self.heartbeat(agent).await?;
        metrics::counter!("concierge_messages_total", "author" => "agent").increment(1);
        Ok(created)
    }

    /// An internal note (staff only), by anyone of the workspace.
    pub async fn add_note(
        &self,
        conversation: &Conversation,
        agent: &AgentAccount,
        text: String,
    ) -> ServiceResult<Event> {
        self.same_workspace(conversation, agent)?;
        self.record(
            conversation.id,
            EventPayload::NoteAdded {
                author: sender(agent),
                text,
            },
        )
        .await
    }

    /// The owner gives the conversation back to the AI, with an optional note the AI resumes
    /// with. A paused procedure or model write of before the handoff is dropped.
    pub async fn hand_back(
        &self,
        id: ConversationId,
        agent: &AgentAccount,
        note: Option<String>,
    ) -> ServiceResult<Conversation> {
        let conversation = self.conversation_or_404(id).await?;
        self.same_workspace(&conversation, agent)?;
        let mut t = Transition::new(
            id,
            ConversationStatus::HumanActive,
            ConversationStatus::AiActive,
            format!("handed back to the AI by {}", agent.name),
        );
        t.owner = Some(agent.id);
        t.assignment = conversation.assignment.kept(None);
        t.events = vec![EventPayload::HandedBack {
            author: sender(agent),
            note: note.clone(),
        }];
        let (updated, events) = self.store.transition(t).await?;
        self.publish_all(&events);
        self.store.put_agent_state(id, None).await?;
        if let Some(mut h) = self.store.handoff(id).await? {
            h.handed_back = Some(HandBack {
                by: sender(agent),
                note,
                at: Utc::now(),
            });
            self.store.put_handoff(&h).await?;
        }
        self.post_system(id, HANDED_BACK_TEXT).await?;
        Ok(updated)
    }

    /// The owner (or, for a waiting conversation, anyone of the workspace) moves it to another
    /// team's queue; expert routing suggests a person there.
    pub async fn transfer(
        &self,
        id: ConversationId,
        agent: &AgentAccount,
        team: &str,
        note: Option<String>,
    ) -> ServiceResult<Conversation> {
        let conversation = self.conversation_or_404(id).await?;
        self.same_workspace(&conversation, agent)?;
        let teams = self.teams(conversation.workspace_id).await?;
        if teams.team(team).is_none() {
            return Err(ServiceError::Invalid(format!("no team is named {team:?}")));
        }
        let from = conversation.status;
        if !matches!(
            from,
            ConversationStatus::HumanActive | ConversationStatus::PendingHuman
        ) {
            return Err(StoreError::InvalidTransition {
                from,
                to: ConversationStatus::PendingHuman,
            }
            .into());
        }
        let reason = match &note {
            Some(n) => format!("transferred to {team} by {}: {n}", agent.name),
            None => format!("transferred to {team} by {}", agent.name),
        };
        let request =
            HandoffRequest::new(HandoffTrigger::Human, reason.clone()).to_team(Some(team.into()));
        let mut handoff = self.prepare_handoff(&conversation, &request).await?;
        handoff.priority = handoff.priority.max(conversation.assignment.priority);
        let mut t = Transition::new(id, from, ConversationStatus::PendingHuman, reason);
        if from == ConversationStatus::HumanActive {
            t.owner = Some(agent.id);
        }
        t.assignment = Assignment {
            team: Some(team.to_string()),
            priority: handoff.priority,
            queued_at: Some(Utc::now()),
            ..Assignment::default()
        };
        t.events = vec![EventPayload::HandoffRequested {
            handoff: Box::new(handoff.clone().without_vector()),
        }];
        let (updated, events) = self.store.transition(t).await?;
        self.publish_all(&events);
        self.store.put_handoff(&handoff).await?;
        self.tell_queue_position(&updated).await?;
        Ok(updated)
    }

    /// The owner puts the conversation back in its queue (e.g. going off shift).
    pub async fn release(
        &self,
        id: ConversationId,
        agent: &AgentAccount,
    ) -> ServiceResult<Conversation> {
        let conversation = self.conversation_or_404(id).await?;
        self.same_workspace(&conversation, agent)?;
        let mut t = Transition::new(
            id,
            ConversationStatus::HumanActive,
            ConversationStatus::PendingHuman,
            format!("released to the queue by {}", agent.name),
        );
        t.owner = Some(agent.id);
        t.assignment = conversation.assignment.kept(Some(Utc::now()));
        let (updated, events) = self.store.transition(t).await?;
        self.publish_all(&events);
        Ok(updated)
    }

    /// Marks the conversation solved: by its owner, by staff, or by the customer (`agent`
    /// `None`). The outcome (contained or after a handoff) is recorded by the store.
    pub async fn resolve(
        &self,
        id: ConversationId,
        agent: Option<&AgentAccount>,
        reason: &str,
    ) -> ServiceResult<Conversation> {
        let conversation = self.conversation_or_404(id).await?;
        if let Some(a) = agent {
            self.same_workspace(&conversation, a)?;
        }
        match conversation.status {
            ConversationStatus::Resolved => return Ok(conversation),
            ConversationStatus::Closed => return Err(ServiceError::Closed),
            _ => {}
        }
        let mut t = Transition::new(
            id,
            conversation.status,
            ConversationStatus::Resolved,
            reason,
        );
        if conversation.status == ConversationStatus::HumanActive {
            // Only the owner resolves a conversation a person holds (staff keys act for the
            // workspace and may too).
            t.owner = match agent {
                Some(a) => Some(a.id),
                None => conversation.assignment.agent,
            };
        }
        t.assignment = conversation.assignment.kept(None);
        let (updated, events) = self.store.transition(t).await?;
        self.publish_all(&events);
        self.store.put_agent_state(id, None).await?;
        Ok(updated)
    }

    /// The customer's rating of the conversation (1 to 5). A rating of 1 or 2 withdraws the
    /// resolved question the conversation taught ([`Service::learn_from_resolution`]).
    pub async fn rate(&self, id: ConversationId, rating: u8) -> ServiceResult<Event> {
        if !(1..=5).contains(&rating) {
            return Err(ServiceError::Invalid("a rating is 1 to 5".into()));
        }
        let event = self.store.rate(id, rating).await?;
        self.publish_all(std::slice::from_ref(&event));
        if rating <= 2 {
            // Off the request: the rating is recorded whatever happens to the withdrawal.
            let (store, knowledge) = (self.store.clone(), self.knowledge.clone());
            tokio::spawn(async move {
                if let Err(e) = withdraw_resolution(store.as_ref(), &knowledge, id).await {
                    tracing::warn!(error = %e, conversation = %id, "cannot withdraw the resolved question");
                }
            });
        }
        Ok(event)
    }

    /// The customer marked the conversation solved. When the AI answered it alone (no person
    /// wrote in it) with cited documents, the customer's words before the first cited answer and
    /// the documents that answer cited become a resolved question (key `conversation:<id>`,
    /// origin `conversation`): similar questions will find those documents sooner. Returns it,
    /// or `None` when there is nothing to learn (or `learn_from_resolutions` is off).
    pub async fn learn_from_resolution(
        &self,
        id: ConversationId,
    ) -> ServiceResult<Option<ResolvedQuestion>> {
        if !self.config.learn_from_resolutions {
            return Ok(None);
        }
        let conversation = self.conversation_or_404(id).await?;
        let messages = self.store.messages(id).await?;
        if messages.iter().any(|m| m.author == Author::Agent) {
            return Ok(None);
        }
        let Some(answer) = messages
            .iter()
            .position(|m| m.author == Author::Ai && !m.citations.is_empty())
        else {
            return Ok(None);
        };
        let mut question = messages[..answer]
            .iter()
            .filter(|m| m.author == Author::Customer)
            .map(|m| m.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join("\n\n");
        if let Some((cut, _)) = question.char_indices().nth(LEARNED_QUESTION_CHARS) {
            question.truncate(cut);
        }
        if question.is_empty() {
            return Ok(None);
        }
        let ws = conversation.workspace_id;
        // Only the cited documents are read (not the whole knowledge base).
        let mut documents: Vec<String> = Vec::new();
        for citation in &messages[answer].citations {
            let chunks = self.store.document_chunks(citation.document_id).await?;
            if let Some((d, _)) = chunks.into_iter().next()
                && d.workspace_id == ws
                && !documents.contains(&d.external_id)
            {
                documents.push(d.external_id);
            }
        }
        if documents.is_empty() {
            return Ok(None);
        }
        let learned = ResolvedQuestion {
            workspace_id: ws,
            key: resolution_key(id),
            question,
            documents,
            origin: "conversation".into(),
            updated_at: Utc::now(),
        };
        self.store.put_resolved_question(&learned).await?;
        self.refresh_resolved_later(ws);
        Ok(Some(learned))
    }

    /// Rebuilds the workspace's resolved-question model off the request (it reads every resolved
    /// question: about a second at 100,000). Should it fail, the version check of the next
    /// retrieval rebuilds it.
    pub fn refresh_resolved_later(&self, ws: WorkspaceId) {
        let knowledge = self.knowledge.clone();
        tokio::spawn(async move {
            if let Err(e) = knowledge.refresh_resolved(ws).await {
                tracing::warn!(error = %e, "cannot refresh resolved questions");
            }
        });
    }

    /// The console is alive: renews the person's leases and marks them online.
    pub async fn heartbeat(&self, agent: &AgentAccount) -> ServiceResult<u64> {
        let now = Utc::now();
        Ok(self
            .store
            .touch_agent(agent.id, now, now + self.lease())
            .await?)
    }

    /// Returns every conversation whose owner's lease ran out to its queue (never to the AI);
    /// returns how many moved. Safe to run on every replica: each move is a compare-and-set.
    pub async fn expire_leases(&self) -> ServiceResult<usize> {
        let now = Utc::now();
        let mut moved = 0;
        for c in self.store.expired_leases(now).await? {
            let mut t = Transition::new(
                c.id,
                ConversationStatus::HumanActive,
                ConversationStatus::PendingHuman,
                "the owner's lease expired (no activity): back to the queue",
            );
            t.owner = c.assignment.agent;
            t.lease_expired_at = Some(now);
            t.assignment = c.assignment.kept(Some(now));
            match self.store.transition(t).await {
                Ok((_, events)) => {
                    self.publish_all(&events);
                    moved += 1;
                }
                // Renewed or moved by someone else in the meantime: nothing to do.
                Err(StoreError::InvalidTransition { .. } | StoreError::NotOwner(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(moved)
    }

    /// The human queue of the workspace with each conversation's handoff and customer.
    pub async fn human_queue(&self, ws: WorkspaceId) -> ServiceResult<Vec<QueueItem>> {
        let queue = self.store.human_queue(ws).await?;
        // Two batched reads, not two per conversation.
        let ids: Vec<ConversationId> = queue.iter().map(|c| c.id).collect();
        let mut handoffs = self.store.latest_handoffs(&ids).await?;
        let mut customer_ids: Vec<CustomerId> = queue.iter().map(|c| c.customer_id).collect();
        customer_ids.sort();
        customer_ids.dedup();
        let customers = self.store.customers(&customer_ids).await?;
        Ok(queue
            .iter()
            .map(|c| QueueItem {
                handoff: handoffs.remove(&c.id).map(Handoff::without_vector),
                customer: customers.get(&c.customer_id).cloned(),
                position: queue_position(&queue, c.id),
                conversation: c.clone(),
            })
            .collect())
    }

    /// The case file of a conversation (see [`CaseFile`]).
    pub async fn case_file(&self, conversation: &Conversation) -> ServiceResult<CaseFile> {
        let messages = self.store.messages(conversation.id).await?;
        // Every note, however long the conversation: the events are read page by page.
        let mut notes = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .store
                .events_after(conversation.id, after, EVENT_PAGE)
                .await?;
            notes.extend(page.iter().filter_map(|e| match &e.payload {
                EventPayload::NoteAdded { author, text } => {
                    Some((author.clone(), text.clone(), e.created_at))
                }
                _ => None,
            }));
            match page.last() {
                Some(last) if page.len() == EVENT_PAGE as usize => after = last.seq,
                _ => break,
            }
        }
        let sources = cited_sources(&messages);
        let suggestions = match messages.iter().rev().find(|m| m.author == Author::Customer) {
            Some(last) => self.suggest(conversation, &last.text).await?,
            None => vec![],
        };
        Ok(CaseFile {
            handoff: self
                .store
                .handoff(conversation.id)
                .await?
                .map(Handoff::without_vector),
            customer: self.store.customer(conversation.customer_id).await?,
            orders: self
                .store
                .orders_for_customer(conversation.customer_id)
                .await?,
            tickets: self
                .store
                .tickets_for_customer(conversation.customer_id)
                .await?,
            conversation: conversation.clone(),
            messages,
            notes,
            sources,
            suggestions,
        })
    }

    /// Grounded answers to `question` from what the customer may read, best first.
    async fn suggest(
        &self,
        conversation: &Conversation,
        question: &str,
    ) -> ServiceResult<Vec<Suggestion>> {
        let principals = Principals::with([format!("customer:{}", conversation.customer_id)]);
        let retrieval = self
            .knowledge
            .retrieve(
                conversation.workspace_id,
                &principals,
                question,
                self.config.top_k,
            )
            .await?;
        let answer = concierge_knowledge::compose_answer(
            self.knowledge.index(),
            &retrieval.terms,
            &retrieval.hits,
            self.config.answer,
        );
        let mut out = Vec::new();
        if answer.kind == concierge_knowledge::answer::AnswerKind::Grounded {
            out.push(Suggestion {
                text: answer.text,
                citations: crate::service::citations(&answer.cited),
            });
        }
        Ok(out)
    }

    /// After an AI turn: calls a person when the AI is not getting anywhere (weak evidence
    /// twice, tools failing twice, the guardrail blocking twice, the customer's mood getting
    /// worse). Counts only since the AI last took the conversation (over).
    pub(crate) async fn escalate_if_needed(&self, id: ConversationId) -> ServiceResult<()> {
        let conversation = self.conversation_or_404(id).await?;
        if conversation.status != ConversationStatus::AiActive {
            return Ok(());
        }
        // The recent past decides (what the AI just failed at); a long conversation's early
        // events are not read again on every turn.
        let events = self.store.latest_events(id, ESCALATION_WINDOW).await?;
        let since = events
            .iter()
            .rposition(|e| {
                matches!(
                    &e.payload,
                    EventPayload::StatusChanged {
                        to: ConversationStatus::AiActive,
                        ..
                    }
                )
            })
            .map_or(0, |i| i + 1);
        let recent = &events[since..];
        // Only customer messages are triaged.
        let moods: Vec<f32> = recent
            .iter()
            .filter_map(|e| match &e.payload {
                EventPayload::MessageTriaged { triage, .. } => Some(triage.sentiment.score),
                _ => None,
            })
            .collect();
        if let Some(reason) = escalation_reason(recent, &moods) {
            self.request_handoff(id, HandoffRequest::new(HandoffTrigger::Agent, reason))
                .await?;
        }
        Ok(())
    }

    fn lease(&self) -> Duration {
        Duration::seconds(self.config.human_lease_seconds)
    }

    async fn conversation_or_404(&self, id: ConversationId) -> ServiceResult<Conversation> {
        Ok(self
            .store
            .conversation(id)
            .await?
            .ok_or(StoreError::NotFound("conversation"))?)
    }

    fn same_workspace(&self, c: &Conversation, agent: &AgentAccount) -> ServiceResult<()> {
        if c.workspace_id == agent.workspace_id {
            Ok(())
        } else {
            Err(StoreError::NotFound("conversation").into())
        }
    }
}

/// Events read after each AI turn to decide whether to call a person (a turn writes about ten).
const ESCALATION_WINDOW: u32 = 500;

pub const HANDOFF_TEXT: &str = "I've asked a person from our team to take over this conversation. \
They will reply here; you can keep writing in the meantime.";
pub const HANDED_BACK_TEXT: &str = "You're back with the AI assistant. Ask me anything, or press \
\"Talk to a person\" to reach the team again.";

fn sender(agent: &AgentAccount) -> Sender {
    Sender {
        agent: agent.id,
        name: agent.name.clone(),
    }
}

/// What a conversation needs from a team or a person.
#[derive(Debug, Clone, Default)]
pub struct Need {
    pub intent: Option<String>,
    pub language: Option<String>,
    pub tags: Vec<String>,
}

struct Candidate {
    id: AgentId,
    name: String,
    skill: usize,
    similarity: f32,
    load: usize,
}

impl Candidate {
    /// Similarities within 0.05 of each other are a tie (then load decides).
    fn similarity_bucket(&self) -> i32 {
        (self.similarity * 20.0).floor() as i32
    }
}

/// How many of the need's intent, language and tags the skills cover (an empty skill list
/// covers nothing but excludes nothing).
pub fn skill_match(skills: &Skills, need: &Need) -> usize {
    let mut n = 0;
    if let Some(i) = &need.intent
        && skills.intents.contains(i)
    {
        n += 1;
    }
    if let Some(l) = &need.language
        && skills.languages.contains(l)
    {
        n += 1;
    }
    n + need.tags.iter().filter(|t| skills.tags.contains(t)).count()
}

/// The team whose skills match most (a team that lists languages but not the customer's is
/// skipped); ties go to the earlier team; no match: the default team. Reasons go to `routing`.
pub fn choose_team(teams: &TeamSettings, need: &Need, routing: &mut Vec<String>) -> Option<String> {
    let best = teams
        .teams
        .iter()
        .filter(|t| match &need.language {
            Some(l) => t.skills.languages.is_empty() || t.skills.languages.contains(l),
            None => true,
        })
        .map(|t| (skill_match(&t.skills, need), t))
        .filter(|(n, _)| *n > 0)
        .fold(None::<(usize, &Team)>, |acc, (n, t)| match acc {
            Some((m, _)) if m >= n => acc,
            _ => Some((n, t)),
        });
    match best {
        Some((n, t)) => {
            routing.push(format!(
                "team {}: {n} matching skill(s) (intent {}, language {}, tags {:?})",
                t.name,
                need.intent.as_deref().unwrap_or("-"),
                need.language.as_deref().unwrap_or("-"),
                need.tags
            ));
            Some(t.name.clone())
        }
        None => {
            if let Some(d) = &teams.default_team {
                routing.push(format!("team {d}: the default (no team's skills match)"));
            } else {
                routing.push("no team configured: the workspace queue".into());
            }
            teams.default_team.clone()
        }
    }
}

/// Place of `id` among the waiting conversations of its team: higher priority first, then
/// longer waiting.
fn queue_position(queue: &[Conversation], id: ConversationId) -> Option<u32> {
    let me = queue.iter().find(|c| c.id == id)?;
    if me.status != ConversationStatus::PendingHuman {
        return None;
    }
    let key = |c: &Conversation| {
        (
            std::cmp::Reverse(c.assignment.priority),
            c.assignment.queued_at,
        )
    };
    let ahead = queue
        .iter()
        .filter(|c| {
            c.status == ConversationStatus::PendingHuman
                && c.assignment.team == me.assignment.team
                && c.id != id
                && key(c) <= key(me)
        })
        .count();
    u32::try_from(ahead + 1).ok()
}

fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    })
}

/// Why the AI should call a person now, from the events since it (last) took the conversation
/// and the sentiment scores of the customer's messages in that span.
pub(crate) fn escalation_reason(events: &[Event], moods: &[f32]) -> Option<String> {
    let no_answers = events
        .iter()
        .filter(|e| {
            matches!(
                &e.payload,
                EventPayload::ReplySent {
                    kind: ReplyKind::NoAnswer,
                    ..
                }
            )
        })
        .count();
    if no_answers >= 2 {
        return Some("the AI found no good answer twice".into());
    }
    let failures = events
        .iter()
        .filter(|e| match &e.payload {
            EventPayload::AgentStep { action, .. } => {
                matches!(**action, StepRecord::ToolCall { ok: false, .. })
            }
            _ => false,
        })
        .count();
    if failures >= 2 {
        return Some("tool calls failed twice".into());
    }
    let blocked = events
        .iter()
        .filter(|e| match &e.payload {
            EventPayload::AgentStep { action, .. } => matches!(
                &**action,
                StepRecord::GuardBlocked { origin, .. } if origin == "message"
            ),
            _ => false,
        })
        .count();
    if blocked >= 2 {
        return Some("the guardrail blocked two of the customer's messages".into());
    }
    if let [.., a, b, c] = moods
        && a > b
        && b > c
        && *c <= -0.3
    {
        return Some(format!(
            "the customer's mood keeps getting worse (sentiment {a:.2} → {b:.2} → {c:.2})"
        ));
    }
    None
}

fn cited_sources(messages: &[Message]) -> Vec<SourceRef> {
    let mut out: Vec<SourceRef> = Vec::new();
    for c in messages.iter().flat_map(|m| &m.citations) {
        let id = c.document_id.to_string();
        if !out.iter().any(|s| s.document_id == id) {
            out.push(SourceRef {
                document_id: id,
                title: c.title.clone(),
                url: c.url.clone(),
            });
        }
    }
    out
}

fn quote(text: &str) -> String {
    let t = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if t.chars().count() <= QUOTE_CHARS {
        format!("\"{t}\"")
    } else {
        let cut: String = t.chars().take(QUOTE_CHARS).collect();
        format!("\"{}…\"", cut.trim_end())
    }
}

fn money(cents: i64, currency: &str) -> String {
    format!("{}.{:02} {currency}", cents / 100, (cents % 100).abs())
}

/// The facts of a conversation, each taken from its messages, its events or the records the
/// agent reads (profile, orders, tickets).
fn facts(
    reason: &str,
    messages: &[Message],
    events: &[Event],
    customer: Option<&Customer>,
    orders: &[Order],
    tickets: &[Ticket],
) -> Facts {
    let asked: Vec<&Message> = messages
        .iter()
        .filter(|m| m.author == Author::Customer)
        .collect();
    let intent = asked.iter().rev().find_map(|m| {
        let i = m.analysis.as_ref()?.triage.intent.as_ref()?;
        if i.out_of_scope {
            return None;
        }
        i.best.as_ref().map(|b| b.name.clone())
    });
    let mut wants = match intent {
        Some(i) => format!("Intent {i}. "),
        None => String::new(),
    };
    match asked.as_slice() {
        [] => wants.push_str("The customer has not written yet."),
        [only] => wants.push_str(&format!("The customer wrote: {}", quote(&only.text))),
        [first, .., last] => wants.push_str(&format!(
            "The customer first wrote: {}; latest: {}",
            quote(&first.text),
            quote(&last.text)
        )),
    }
    let mut tried = Vec::new();
    for e in events {
        match &e.payload {
            EventPayload::AgentStep { action, .. } => match &**action {
                StepRecord::ToolCall {
                    tool, ok, result, ..
                } => {
                    let outcome = if *ok { "done" } else { "failed" };
                    let detail = result
                        .get("error")
                        .or_else(|| result.get("message"))
                        .and_then(|v| v.as_str())
                        .map(|s| format!(": {s}"))
                        .unwrap_or_default();
                    tried.push(format!("Tool {tool} {outcome}{detail}"));
                }
                StepRecord::ToolRefused { tool, reason } => {
                    tried.push(format!("Tool {tool} refused: {reason}"));
                }
                StepRecord::AwaitingConfirmation { summary } => {
                    tried.push(format!("Asked the customer to confirm: {summary}"));
                }
                StepRecord::Confirmation { confirmed } => tried.push(if *confirmed {
                    "The customer confirmed".into()
                } else {
                    "The customer declined".into()
                }),
                StepRecord::GuardBlocked {
                    origin, category, ..
                } => {
                    tried.push(format!("The guardrail withheld a {origin} ({category})"));
                }
                StepRecord::Finished { outcome } if outcome != "completed" => {
                    tried.push(format!("A procedure ended: {outcome}"));
                }
                _ => {}
            },
            EventPayload::ReplySent { kind, reason, .. } => match kind {
                ReplyKind::Grounded => tried.push("Answered from the help center".into()),
                ReplyKind::NoAnswer => tried.push(format!("No answer found: {reason}")),
                _ => {}
            },
            EventPayload::HandedBack { author, note } => tried.push(match note {
                Some(n) => format!("{} handed back to the AI: {n}", author.name),
                None => format!("{} handed back to the AI", author.name),
            }),
            _ => {}
        }
    }
    tried.dedup();
    let mut profile = Vec::new();
    if let Some(c) = customer {
        let mut line = match c.name.as_deref() {
            Some(name) => format!("Customer {name}"),
            None => "Customer not identified (anonymous chat)".to_string(),
        };
        if let Some(t) = &c.tier {
            line.push_str(&format!(", tier {t}"));
        }
        if let Some(e) = &c.email {
            line.push_str(&format!(", {e}"));
        }
        profile.push(line);
    }
    for o in orders.iter().rev().take(3) {
        profile.push(format!(
            "Order {}: {}, {}, placed {}",
            o.number,
            o.status,
            money(o.total_cents, &o.currency),
            o.placed_at.format("%Y-%m-%d")
        ));
    }
    for t in tickets.iter().rev().take(3) {
        profile.push(format!(
            "Ticket {}: {} ({}, {})",
            t.number, t.subject, t.status, t.priority
        ));
    }
    Facts {
        reason: reason.to_string(),
        wants,
        tried,
        sources: cited_sources(messages),
        customer: profile,
        customer_text: asked.iter().map(|m| m.text.clone()).collect(),
    }
}

fn render_facts(f: &Facts) -> String {
    let mut s = format!("Reason: {}\n{}\n", f.reason, f.wants);
    if f.tried.is_empty() {
        s.push_str("Tried: nothing yet.\n");
    } else {
        s.push_str("Tried:\n");
        for t in &f.tried {
            s.push_str(&format!("- {t}\n"));
        }
    }
    if !f.sources.is_empty() {
        let titles: Vec<&str> = f.sources.iter().map(|s| s.title.as_str()).collect();
        s.push_str(&format!("Sources cited: {}\n", titles.join("; ")));
    }
    for line in &f.customer {
        s.push_str(line);
        s.push('\n');
    }
    s
}

/// Events read per page when the case file collects a conversation's notes.
const EVENT_PAGE: u32 = 5000;

/// Longest question a resolution teaches (characters).
const LEARNED_QUESTION_CHARS: usize = 4000;

/// The resolved question a conversation taught.
fn resolution_key(id: ConversationId) -> String {
    format!("conversation:{id}")
}

/// Forgets the resolved question conversation `id` taught, if any, and rebuilds its workspace's
/// model.
async fn withdraw_resolution(
    store: &dyn Store,
    knowledge: &concierge_knowledge::KnowledgeBase,
    id: ConversationId,
) -> ServiceResult<()> {
    let Some(conversation) = store.conversation(id).await? else {
        return Ok(());
    };
    let ws = conversation.workspace_id;
    if store
        .delete_resolved_question(ws, &resolution_key(id))
        .await?
    {
        knowledge.refresh_resolved(ws).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn team(name: &str, intents: &[&str], languages: &[&str], tags: &[&str]) -> Team {
        Team {
            name: name.into(),
            title: None,
            skills: Skills {
                intents: intents.iter().map(|s| s.to_string()).collect(),
                tags: tags.iter().map(|s| s.to_string()).collect(),
                languages: languages.iter().map(|s| s.to_string()).collect(),
            },
        }
    }

    #[test]
    fn the_team_with_the_most_matching_skills_wins_and_the_default_takes_the_rest() {
        let teams = TeamSettings {
            teams: vec![
                team("billing", &["billing_payment", "invoice"], &["en"], &[]),
                team("international", &[], &["de", "fr"], &[]),
                team("vip-desk", &["billing_payment"], &[], &["vip"]),
            ],
            default_team: Some("billing".into()),
        };
        let mut why = vec![];
        let need = Need {
            intent: Some("billing_payment".into()),
            language: Some("en".into()),
            tags: vec!["vip".into()],
        };
        // billing: intent + language = 2; vip-desk: intent + tag = 2; the earlier wins a tie.
        assert_eq!(
            choose_team(&teams, &need, &mut why).as_deref(),
            Some("billing")
        );
        let german = Need {
            intent: Some("billing_payment".into()),
            language: Some("de".into()),
            tags: vec!["vip".into()],
        };
        // billing lists only English: skipped; vip-desk (2) beats international (1).
        assert_eq!(
            choose_team(&teams, &german, &mut why).as_deref(),
            Some("vip-desk")
        );
        let unknown = Need {
            intent: Some("device_setup".into()),
            language: None,
            tags: vec![],
        };
        assert_eq!(
            choose_team(&teams, &unknown, &mut why).as_deref(),
            Some("billing")
        );
        assert!(why.last().is_some_and(|w| w.contains("default")), "{why:?}");
    }

    fn event(seq: i64, payload: EventPayload) -> Event {
        Event {
            seq,
            conversation_id: ConversationId::new(),
            payload,
            created_at: Utc::now(),
        }
    }

    #[test]
    fn two_weak_answers_or_two_failed_tools_or_a_worsening_mood_call_a_person() {
        let no_answer = || EventPayload::ReplySent {
            message_id: MessageId::new(),
            in_reply_to: MessageId::new(),
            kind: ReplyKind::NoAnswer,
            reason: "weak".into(),
        };
        assert_eq!(escalation_reason(&[event(1, no_answer())], &[]), None);
        assert!(
            escalation_reason(&[event(1, no_answer()), event(2, no_answer())], &[])
                .is_some_and(|r| r.contains("no good answer"))
        );
        let failed = || EventPayload::AgentStep {
            message_id: MessageId::new(),
            run: "r".into(),
            step: 1,
            action: Box::new(StepRecord::ToolCall {
                tool: "get_order".into(),
                arguments: serde_json::json!({}),
                ok: false,
                result: serde_json::json!({"error": "down"}),
                latency_ms: 1.0,
                idempotency_key: None,
            }),
        };
        assert!(
            escalation_reason(&[event(1, failed()), event(2, failed())], &[])
                .is_some_and(|r| r.contains("failed twice"))
        );
        assert!(escalation_reason(&[], &[0.2, -0.1, -0.6]).is_some());
        // Worse but not negative enough, or not steadily worse: no.
        assert_eq!(escalation_reason(&[], &[0.5, 0.3, 0.1]), None);
        assert_eq!(escalation_reason(&[], &[-0.1, -0.6, -0.4]), None);
    }

    #[test]
    fn queue_position_counts_higher_priority_and_longer_waiting_first() {
        let now = Utc::now();
        let conv = |priority, minutes_ago: i64, team: &str| Conversation {
            id: ConversationId::new(),
            workspace_id: WorkspaceId(uuid::Uuid::nil()),
            customer_id: CustomerId(uuid::Uuid::nil()),
            channel: Channel::Web,
            status: ConversationStatus::PendingHuman,
            subject: None,
            created_at: now,
            updated_at: now,
            assignment: Assignment {
                team: Some(team.into()),
                priority,
                queued_at: Some(now - Duration::minutes(minutes_ago)),
                ..Assignment::default()
            },
        };
        let old = conv(Priority::Normal, 10, "a");
        let urgent = conv(Priority::Urgent, 1, "a");
        let new = conv(Priority::Normal, 2, "a");
        let other = conv(Priority::Urgent, 30, "b");
        let q = vec![old.clone(), urgent.clone(), new.clone(), other.clone()];
        assert_eq!(queue_position(&q, urgent.id), Some(1));
        assert_eq!(queue_position(&q, old.id), Some(2));
        assert_eq!(queue_position(&q, new.id), Some(3));
        assert_eq!(queue_position(&q, other.id), Some(1));
    }
}
