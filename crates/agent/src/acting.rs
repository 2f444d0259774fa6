//! The acting part of a turn: procedures run against the tool registry, their steps recorded,
//! their questions and outcomes sent, their paused runs stored with the conversation.

use crate::procedures::{self, ProcedureSettings, RunState, Runner, TurnOutcome};
use crate::service::{Service, ServiceError, ServiceResult};
use crate::tools::{ToolContext, ToolError};
use concierge_core::*;

/// A message confidently about another intent than the paused run's drops the run.
const MOVE_ON_CONFIDENCE: f32 = 0.5;
/// Steps one turn may take.
const MAX_STEPS: u32 = 32;
/// Time one turn's run may take (tool calls time out on their own after 20 s).
const TIME_BUDGET: std::time::Duration = std::time::Duration::from_secs(60);

impl From<ToolError> for ServiceError {
    fn from(e: ToolError) -> Self {
        ServiceError::Infrastructure(e.to_string())
    }
}

impl Service {
    pub async fn put_procedures(
        &self,
        ws: WorkspaceId,
        settings: &ProcedureSettings,
    ) -> ServiceResult<()> {
        settings
            .validate(&self.tools, ws)
            .map_err(|problems| ServiceError::Invalid(problems.join("; ")))?;
        let value =
            serde_json::to_value(settings).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.store
            .put_setting(ws, procedures::PROCEDURES_SETTING, &value)
            .await?;
        Ok(())
    }

    pub async fn get_procedures(&self, ws: WorkspaceId) -> ServiceResult<ProcedureSettings> {
        Ok(procedures::load(self.store.as_ref(), ws).await?)
    }

    /// Runs (or resumes) a procedure for the message. `Ok(false)`: no procedure applies and the
    /// turn goes on as a knowledge answer.
    pub(crate) async fn act(
        &self,
        conversation: &Conversation,
        message: &Message,
    ) -> ServiceResult<bool> {
        let store = &self.store;
        let ws = conversation.workspace_id;
        let procedures = procedures::load(store.as_ref(), ws).await?;
        let paused: Option<RunState> = store
            .agent_state(conversation.id)
            .await?
            .and_then(|v| serde_json::from_value(v).ok());
        let triage = message.analysis.as_ref().map(|a| &a.triage);
        let intent = triage
            .and_then(|t| t.intent.as_ref())
            .filter(|i| !i.out_of_scope)
            .and_then(|i| i.best.as_ref());
        let route_allows = message.analysis.as_ref().is_none_or(|a| {
            matches!(
                a.route.action,
                RouteAction::Answer | RouteAction::Assist { .. }
            )
        });
        if paused.is_none() && (procedures.procedures.is_empty() || !route_allows) {
            return Ok(false);
        }
        let customer = store.customer(conversation.customer_id).await?;
        let orders = store
            .orders_for_customer(conversation.customer_id)
            .await?
            .into_iter()
            .filter(|o| o.workspace_id == ws)
            .collect();
        let runner = Runner {
            tools: &self.tools,
            env: &self.tool_env,
            ctx: ToolContext {
                workspace: ws,
                customer: conversation.customer_id,
                conversation: Some(conversation.id),
                confirmed: false,
                idempotency_key: None,
            },
            orders,
            max_steps: MAX_STEPS,
            deadline: std::time::Instant::now() + TIME_BUDGET,
        };
        let mut step_no = 0u32;
        let mut outcome: Option<(String, TurnOutcome)> = None;
        if let Some(state) = paused {
            match procedures.get(&state.procedure) {
                Some(p) => {
                    let other_intent = intent.is_some_and(|i| {
                        i.confidence >= MOVE_ON_CONFIDENCE && i.name != state.intent
                    });
                    let o = runner.resume(p, state, &message.text, other_intent).await?;
                    if o.reprocess {
                        self.record_steps(conversation.id, message.id, &p.name, &o, &mut step_no)
                            .await?;
                        store.put_agent_state(conversation.id, None).await?;
                    } else {
                        outcome = Some((p.name.clone(), o));
                    }
                }
                // The procedure was removed from the configuration meanwhile.
                None => store.put_agent_state(conversation.id, None).await?,
            }
        }
        if outcome.is_none() && route_allows {
            let needs_action = triage.is_some_and(|t| t.complexity.needs_action);
            if let Some(p) = intent.and_then(|i| procedures.for_intent(&i.name, needs_action)) {
                let o = runner.start(p, customer.as_ref(), &message.text).await?;
                outcome = Some((p.name.clone(), o));
            }
        }
        let Some((name, o)) = outcome else {
            return Ok(false);
        };
        self.record_steps(conversation.id, message.id, &name, &o, &mut step_no)
            .await?;
        let text = o.replies.join("\n\n");
        if !text.trim().is_empty() {
            self.send_reply(
                conversation,
                message,
                text,
                vec![],
                ReplyKind::Procedure,
                format!("procedure {name}"),
            )
            .await?;
        }
        // Stored after the reply: a turn retried before this point re-runs from the previous
        // state, its writes replay by key and its reply is deduplicated.
        let state = o
            .paused
            .as_ref()
            .map(serde_json::to_value)
            .transpose()
            .map_err(|e| ServiceError::Infrastructure(e.to_string()))?;
        store
            .put_agent_state(conversation.id, state.as_ref())
            .await?;
        if let Some(reason) = o.handoff {
            self.request_handoff(
                conversation.id,
                crate::humans::HandoffRequest::new(HandoffTrigger::Agent, reason),
            )
            .await?;
        }
        Ok(true)
    }

    async fn record_steps(
        &self,
        conversation: ConversationId,
        message: MessageId,
        run: &str,
        outcome: &TurnOutcome,
        step_no: &mut u32,
    ) -> ServiceResult<()> {
        for s in &outcome.steps {
            self.record_step(conversation, message, run, step_no, s.clone())
                .await?;
        }
        Ok(())
    }

    /// Records one `agent.step` of a run (procedure, planner or guardrail), numbered within
    /// the turn; a tool call is also counted in the metrics.
    pub(crate) async fn record_step(
        &self,
        conversation: ConversationId,
        message: MessageId,
        run: &str,
        step_no: &mut u32,
        action: StepRecord,
    ) -> ServiceResult<()> {
        *step_no += 1;
        if let StepRecord::ToolCall { tool, ok, .. } = &action {
            metrics::counter!("concierge_tool_calls_total", "tool" => tool.clone(), "ok" => ok.to_string())
                .increment(1);
        }
        self.record(
            conversation,
            EventPayload::AgentStep {
                message_id: message,
                run: run.to_string(),
                step: *step_no,
                action: Box::new(action),
            },
        )
        .await?;
        Ok(())
    }
}
