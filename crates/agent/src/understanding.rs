//! Triage and routing of customer messages, per workspace: the intent model trained from the
//! workspace's intent settings (cached in memory, reloaded when the stored model changes) and
//! the routing policy from its settings.

use crate::service::{Service, ServiceError, ServiceResult};
use concierge_core::*;
use concierge_knowledge::KnowledgeBase;
use concierge_knowledge::embed::text_hash;
use concierge_knowledge::ingest::embed_cached;
use concierge_understand::routing::{ROUTING, RouteContext, RoutingPolicy};
use concierge_understand::triage::{INTENTS, IntentSettings, WorkspaceIntents, triage};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Task kind: train the workspace's intent model from its intent settings.
pub const TRAIN_INTENTS_TASK: &str = "intents.train";

/// The trained intent models in memory, by workspace.
#[derive(Default)]
pub struct IntentCache {
    models: Mutex<HashMap<WorkspaceId, Arc<WorkspaceIntents>>>,
}

impl IntentCache {
    fn get(&self, ws: WorkspaceId) -> Option<Arc<WorkspaceIntents>> {
        self.models.lock().ok()?.get(&ws).cloned()
    }

    fn put(&self, ws: WorkspaceId, model: Arc<WorkspaceIntents>) {
        if let Ok(mut m) = self.models.lock() {
            m.insert(ws, model);
        }
    }
}

/// What `GET /v1/intents` shows: the settings and the state of the model trained from them.
#[derive(Debug, Clone)]
pub struct IntentsStatus {
    pub settings: Option<IntentSettings>,
    pub fingerprint: Option<String>,
    /// The stored model's fingerprint and training time.
    pub model: Option<(String, chrono::DateTime<chrono::Utc>)>,
}

impl Service {
    /// The workspace's current intent model (from the store when the cached one is stale).
    pub(crate) async fn intent_model(
        &self,
        ws: WorkspaceId,
    ) -> ServiceResult<Option<Arc<WorkspaceIntents>>> {
        let Some(fingerprint) = self.store.model_fingerprint(ws, INTENTS).await? else {
            return Ok(None);
        };
        if let Some(m) = self.intents.get(ws)
            && m.fingerprint == fingerprint
        {
            return Ok(Some(m));
        }
        let Some(stored) = self.store.model(ws, INTENTS).await? else {
            return Ok(None);
        };
        let model: WorkspaceIntents = serde_json::from_value(stored.data)
            .map_err(|e| ServiceError::Invalid(format!("stored intent model: {e}")))?;
        let model = Arc::new(model);
        self.intents.put(ws, model.clone());
        Ok(Some(model))
    }

    async fn routing_policy(&self, ws: WorkspaceId) -> ServiceResult<RoutingPolicy> {
        match self.store.setting(ws, ROUTING).await? {
            Some(v) => serde_json::from_value(v)
                .map_err(|e| ServiceError::Invalid(format!("stored routing policy: {e}"))),
            None => Ok(RoutingPolicy::default()),
        }
    }

    /// Triage of a customer message and the routing decision for it.
    pub async fn analyse(
        &self,
        conversation: &Conversation,
        text: &str,
    ) -> ServiceResult<Analysis> {
        let ws = conversation.workspace_id;
        let model = self.intent_model(ws).await?;
        // One vector serves the intent model and, for a message of one window, the guardrail;
        // it is computed only when one of them can read it.
        let vector = match &self.knowledge.pipeline.embedder {
            Some(embedder) if model.is_some() || self.guard_embedder().is_some() => embedder
                .embed(&[text.to_string()])
                .await
                .map_err(|e| ServiceError::Invalid(format!("embedding: {}", e.0)))?
                .into_iter()
                .next(),
            _ => None,
        };
        let mut triage = triage(text, model.as_deref().zip(vector.as_deref()));
        triage.guard = self.check_message(text, vector.as_deref()).await;
        let policy = self.routing_policy(ws).await?;
        let customer = self.store.customer(conversation.customer_id).await?;
        let after_clarify = self
            .store
            .messages(conversation.id)
            .await?
            .iter()
            .rev()
            .find(|m| m.author == Author::Customer)
            .and_then(|m| m.analysis.as_ref())
            .is_some_and(|a| a.route.action == RouteAction::Clarify);
        let intent_team = model.as_deref().and_then(|m| {
            let best = triage.intent.as_ref()?.best.as_ref()?;
            m.settings.intent(&best.name)?.team.as_deref()
        });
        let route = policy.decide(
            &triage,
            &RouteContext {
                customer_tier: customer.as_ref().and_then(|c| c.tier.as_deref()),
                after_clarify,
                intent_team,
            },
        );
        metrics::histogram!("concierge_triage_seconds").record(triage.latency_ms / 1000.0);
        Ok(Analysis { triage, route })
    }

    /// Stores the workspace's intents and queues their training.
    pub async fn put_intents(
        &self,
        ws: WorkspaceId,
        settings: &IntentSettings,
    ) -> ServiceResult<Task> {
        let value =
            serde_json::to_value(settings).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.store.put_setting(ws, INTENTS, &value).await?;
        let task = self
            .store
            .create_task(ws, TRAIN_INTENTS_TASK, &serde_json::json!({}))
            .await?;
        self.task_wake.notify_one();
        Ok(task)
    }

    pub async fn intents_status(&self, ws: WorkspaceId) -> ServiceResult<IntentsStatus> {
        let settings: Option<IntentSettings> = match self.store.setting(ws, INTENTS).await? {
            Some(v) => Some(
                serde_json::from_value(v)
                    .map_err(|e| ServiceError::Invalid(format!("stored intents: {e}")))?,
            ),
            None => None,
        };
        let model = self
            .store
            .model(ws, INTENTS)
            .await?
            .map(|m| (m.fingerprint, m.trained_at));
        Ok(IntentsStatus {
            fingerprint: settings.as_ref().map(IntentSettings::fingerprint),
            settings,
            model,
        })
    }

    pub async fn put_routing_policy(
        &self,
        ws: WorkspaceId,
        policy: &RoutingPolicy,
    ) -> ServiceResult<()> {
        let value =
            serde_json::to_value(policy).map_err(|e| ServiceError::Invalid(e.to_string()))?;
        self.store.put_setting(ws, ROUTING, &value).await?;
        Ok(())
    }

    pub async fn get_routing_policy(&self, ws: WorkspaceId) -> ServiceResult<RoutingPolicy> {
        self.routing_policy(ws).await
    }

    /// Trains the workspace's intent model from its stored settings (skipped when the stored
    /// model already matches them) and stores it.
    pub async fn train_intents(&self, ws: WorkspaceId) -> ServiceResult<serde_json::Value> {
        let (result, model) = train_intents(self.store.as_ref(), &self.knowledge, ws).await?;
        if let Some(model) = model {
            self.intents.put(ws, Arc::new(model));
        }
        Ok(result)
    }
}

/// Trains the workspace's intent model from its stored settings and stores it; skipped (no
/// model returned) when the stored model was trained on exactly these settings.
pub async fn train_intents(
    store: &dyn Store,
    knowledge: &KnowledgeBase,
    ws: WorkspaceId,
) -> ServiceResult<(serde_json::Value, Option<WorkspaceIntents>)> {
    let settings: IntentSettings = match store.setting(ws, INTENTS).await? {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| ServiceError::Invalid(format!("stored intents: {e}")))?,
        None => return Err(ServiceError::Invalid("the workspace has no intents".into())),
    };
    let fingerprint = settings.fingerprint();
    if store.model_fingerprint(ws, INTENTS).await?.as_deref() == Some(fingerprint.as_str()) {
        return Ok((
            serde_json::json!({"fingerprint": fingerprint, "trained": false}),
            None,
        ));
    }
    let Some(embedder) = &knowledge.pipeline.embedder else {
        return Err(ServiceError::Invalid(
            "intents need sentence embeddings: configure knowledge.embeddings".into(),
        ));
    };
    let texts: Vec<String> = settings
        .labelled()
        .iter()
        .map(|(t, _)| t.to_string())
        .collect();
    let cached = embed_cached(Some(store), embedder.as_ref(), &texts).await?;
    let vectors: Vec<Vec<f32>> = texts
        .iter()
        .map(|t| cached.get(&text_hash(t)).cloned())
        .collect::<Option<_>>()
        .ok_or_else(|| ServiceError::Invalid("an example's embedding is missing".into()))?;
    let examples = vectors.len();
    let model = tokio::task::spawn_blocking(move || WorkspaceIntents::train(settings, &vectors))
        .await
        .map_err(|e| ServiceError::Invalid(format!("training task: {e}")))?
        .map_err(ServiceError::Invalid)?;
    let data = serde_json::to_value(&model).map_err(|e| ServiceError::Invalid(e.to_string()))?;
    store
        .put_model(
            ws,
            &StoredModel {
                kind: INTENTS.into(),
                fingerprint: fingerprint.clone(),
                data,
                trained_at: chrono::Utc::now(),
            },
        )
        .await?;
    let result = serde_json::json!({
        "fingerprint": fingerprint,
        "trained": true,
        "examples": examples,
        "intents": model.settings.intents.len(),
        "train_seconds": model.train_seconds,
        "out_of_scope_threshold": model.model.threshold.map(|t| 1.0 - t),
    });
    Ok((result, Some(model)))
}
