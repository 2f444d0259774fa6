//! The input guardrail in the turn: the customer's message is checked when it is triaged (a
//! blocked message is routed to `Refuse` and no model, tool or procedure reads it), and every
//! retrieved passage or tool result is checked before it can reach an answer or a model (a
//! blocked one is withheld and the withholding recorded as an `agent.step`).

use crate::service::Service;
use concierge_core::*;
use concierge_understand::guardrails::{self, Guard, GuardVerdict};
use concierge_understand::pii::PiiRedactor;

/// What the turn does with untrusted text.
pub struct Guardrails {
    /// `None` when the shipped model could not be loaded (only then: a test checks it loads).
    pub guard: Option<Guard>,
    /// Applied to the logs' copies of messages and to everything sent to an external model.
    pub redactor: PiiRedactor,
}

impl Default for Guardrails {
    fn default() -> Self {
        let guard = match Guard::shipped() {
            Ok(g) => Some(g),
            Err(e) => {
                tracing::error!(error = %e, "the shipped guardrail model does not load: patterns only");
                None
            }
        };
        Self {
            guard,
            redactor: PiiRedactor::all(),
        }
    }
}

pub(crate) const REFUSE_TEXT: &str = "Sorry, I can't help with that. I'm here for questions about \
your orders, your account and our products. If you need something else, press \"Talk to a person\".";

/// Run name of guardrail steps in the audit trail.
pub(crate) const GUARD_RUN: &str = "guardrail";

impl Service {
    /// Whether the guard's classifier can read this deployment's vectors (it was trained on
    /// one embedding model; with another, only its patterns decide).
    pub(crate) fn guard_embedder(
        &self,
    ) -> Option<&std::sync::Arc<dyn concierge_knowledge::embed::Embedder>> {
        let guard = self.guardrails.guard.as_ref()?;
        self.knowledge
            .pipeline
            .embedder
            .as_ref()
            .filter(|e| e.model_id() == guard.model().embedding_model)
    }

    /// Vectors of `text`'s guard windows: `whole` (the text's own vector, already computed
    /// for triage) when the text is one window, else the windows embedded.
    async fn guard_vectors(&self, text: &str, whole: Option<&[f32]>) -> Vec<Vec<f32>> {
        let Some(embedder) = self.guard_embedder() else {
            return vec![];
        };
        let windows = guardrails::windows(text);
        if let (1, Some(v)) = (windows.len(), whole) {
            return vec![v.to_vec()];
        }
        match embedder.embed(&windows).await {
            Ok(v) => v,
            Err(e) => {
                // The patterns still decide; a failing embedder must not open the gate wider
                // than that, nor lose the message.
                tracing::warn!(error = %e.0, "guardrail embedding failed: patterns only");
                vec![]
            }
        }
    }

    /// The guardrail's verdict on a customer message (`whole`: its vector, when computed).
    pub(crate) async fn check_message(
        &self,
        text: &str,
        whole: Option<&[f32]>,
    ) -> Option<GuardCheck> {
        let guard = self.guardrails.guard.as_ref()?;
        let vectors = self.guard_vectors(text, whole).await;
        Some(guard.check(text, &vectors).into())
    }

    /// The verdict on a retrieved passage or a tool's result. Text whose windows carry no
    /// injection cue is scored on the patterns alone, as the classifier would skip it anyway,
    /// so the common case embeds nothing.
    pub(crate) async fn check_retrieved(&self, text: &str) -> Option<GuardVerdict> {
        let guard = self.guardrails.guard.as_ref()?;
        let vectors = if guardrails::addresses_the_model(text) {
            self.guard_vectors(text, None).await
        } else {
            vec![]
        };
        Some(guard.check_retrieved(text, &vectors))
    }

    /// Drops the hits the guardrail blocks, recording each withheld passage.
    pub(crate) async fn screen_hits(
        &self,
        conversation: ConversationId,
        message: MessageId,
        hits: Vec<concierge_knowledge::Hit>,
        step_no: &mut u32,
    ) -> crate::service::ServiceResult<Vec<concierge_knowledge::Hit>> {
        let mut kept = Vec::with_capacity(hits.len());
        for hit in hits {
            match self.check_retrieved(&hit.text).await {
                Some(v) if v.blocked => {
                    let category = v.category.map_or("unspecified", |c| c.as_str());
                    self.record_guard_step(
                        conversation,
                        message,
                        ("retrieved", &hit.chunk_id),
                        (category, v.score),
                        step_no,
                    )
                    .await?;
                }
                _ => kept.push(hit),
            }
        }
        Ok(kept)
    }

    pub(crate) async fn record_guard_step(
        &self,
        conversation: ConversationId,
        message: MessageId,
        (origin, source): (&str, &str),
        (category, score): (&str, f32),
        step_no: &mut u32,
    ) -> crate::service::ServiceResult<()> {
        metrics::counter!("concierge_guardrail_blocks_total", "origin" => origin.to_string(), "category" => category.to_string())
            .increment(1);
        let action = StepRecord::GuardBlocked {
            origin: origin.into(),
            source: source.into(),
            category: category.into(),
            score,
        };
        self.record_step(conversation, message, GUARD_RUN, step_no, action)
            .await
    }
}
