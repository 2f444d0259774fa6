//! The knowledge base of a deployment: the store (truth), the BM25 and dense indexes (derived),
//! the embedder and the retrieval pipeline, behind one handle that front ends share.

use crate::IngestReport;
use crate::Result;
use crate::dense::DenseIndex;
use crate::embed::Embedder;
use crate::index::KnowledgeIndex;
use crate::ingest::{Progress, Vectors, load_dense, sync_source};
use crate::pipeline::{Mode, Pipeline, PipelineConfig, Retrieval};
use crate::rerank::{CrossEncoder, Reranker};
use crate::resolved::ResolvedQuestions;
use crate::source::KnowledgeSource;
use concierge_core::{Principals, Store, WorkspaceId};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct KnowledgeBase {
    pub store: Arc<dyn Store>,
    pub pipeline: Pipeline,
    /// Per workspace: when the resolved questions' version was last checked, and that version.
    resolved_seen: Mutex<HashMap<WorkspaceId, (Instant, ResolvedVersion)>>,
    /// How often that version is checked ([`RESOLVED_CHECK`] unless set for a test).
    resolved_check: Duration,
    /// One rebuild at a time: rebuilds finish in the order they start, so the last one to run
    /// read the latest questions.
    resolved_rebuild: tokio::sync::Mutex<()>,
}

type ResolvedVersion = (u64, i64);

/// How often a replica checks whether a workspace's resolved questions changed (written
/// through another replica, or by the CLI).
const RESOLVED_CHECK: Duration = Duration::from_secs(10);

impl KnowledgeBase {
    pub fn new(
        store: Arc<dyn Store>,
        index: Arc<KnowledgeIndex>,
        embedder: Option<Arc<dyn Embedder>>,
    ) -> Self {
        let pipeline = Pipeline {
            index,
            dense: Arc::new(DenseIndex::new()),
            embedder,
            reranker: Reranker::default(),
            cross_encoder: None,
            config: PipelineConfig::default(),
            resolved: Default::default(),
        };
        Self {
            store,
            pipeline,
            resolved_seen: Mutex::default(),
            resolved_check: RESOLVED_CHECK,
            resolved_rebuild: tokio::sync::Mutex::new(()),
        }
    }

    /// Checks the store for changed resolved questions at most every `every`.
    pub fn with_resolved_check(mut self, every: Duration) -> Self {
        self.resolved_check = every;
        self
    }

    /// Uses `dense` (e.g. one persisted with [`DenseIndex::open`]) for the vectors.
    pub fn with_dense(mut self, dense: DenseIndex) -> Self {
        self.pipeline.dense = Arc::new(dense);
        self
    }

    /// Reorders the top `depth` reranked passages with a cross-encoder.
    pub fn with_cross_encoder(mut self, cross: Arc<dyn CrossEncoder>, depth: usize) -> Self {
        self.pipeline.cross_encoder = Some(cross);
        self.pipeline.config.cross_depth = depth;
        self
    }

    /// Compacts the dense index, builds or drops its graph and saves it (off the async
    /// threads: building a large graph takes seconds).
    async fn settle_dense(&self) {
        if self.pipeline.embedder.is_none() {
            return;
        }
        let dense = Arc::clone(&self.pipeline.dense);
        if let Err(e) = tokio::task::spawn_blocking(move || dense.settle()).await {
            tracing::warn!(error = %e, "dense index settling failed");
        }
    }

    pub fn index(&self) -> &KnowledgeIndex {
        &self.pipeline.index
    }

    fn vectors(&self) -> Option<Vectors<'_>> {
        self.pipeline.embedder.as_deref().map(|embedder| Vectors {
            embedder,
            dense: &self.pipeline.dense,
        })
    }

    /// Brings the derived indexes in line with the store (at start): rebuilds BM25 if it
    /// disagrees, and loads every chunk's vector (embedding what the cache lacks).
    pub async fn load(&self) -> Result<()> {
        self.pipeline
            .index
            .sync_with_store(self.store.as_ref())
            .await?;
        if let Some(vectors) = self.vectors() {
            load_dense(self.store.as_ref(), vectors).await?;
        }
        self.settle_dense().await;
        for workspace in self.store.list_workspaces().await? {
            if let Err(e) = self.refresh_resolved(workspace.id).await {
                // Retried by the next retrieval's version check.
                tracing::warn!(error = %e, workspace = %workspace.id, "cannot load resolved questions");
            }
        }
        Ok(())
    }

    /// Rebuilds a workspace's resolved-question model from the store: each question's documents
    /// (ids within their source) resolved to the workspace's documents. Returns how many
    /// questions vote (those with at least one known document).
    pub async fn refresh_resolved(&self, workspace: WorkspaceId) -> Result<usize> {
        let _one_at_a_time = self.resolved_rebuild.lock().await;
        let version = self.store.resolved_questions_version(workspace).await?;
        let questions = self.store.resolved_questions(workspace).await?;
        let documents = if questions.is_empty() {
            Vec::new()
        } else {
            self.store.workspace_documents(workspace).await?
        };
        let model = ResolvedQuestions::build_named(
            questions
                .into_iter()
                .map(|q| crate::resolved::ResolvedQuestion {
                    id: q.key,
                    text: q.question,
                    documents: q.documents,
                }),
            &documents,
            |t| self.pipeline.index.stems(t),
        );
        let voting = model.len();
        self.pipeline.set_resolved(workspace, model);
        self.resolved_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(workspace, (Instant::now(), version));
        Ok(voting)
    }

    /// Rebuilds the workspace's resolved-question model when its version in the store changed
    /// (checked at most every `resolved_check`); a failure keeps the current model.
    async fn keep_resolved_fresh(&self, workspace: WorkspaceId) {
        let seen = self
            .resolved_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&workspace)
            .copied();
        if seen.is_some_and(|(at, _)| at.elapsed() < self.resolved_check) {
            return;
        }
        let result = match self.store.resolved_questions_version(workspace).await {
            Ok(version) if seen.is_some_and(|(_, v)| v == version) => {
                self.resolved_seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(workspace, (Instant::now(), version));
                Ok(0)
            }
            Ok(_) => self.refresh_resolved(workspace).await,
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot refresh resolved questions");
        }
    }

    /// Syncs a source into a workspace (see [`sync_source`]).
    pub async fn sync(
        &self,
        workspace: WorkspaceId,
        source: &dyn KnowledgeSource,
        progress: Progress<'_>,
    ) -> Result<IngestReport> {
        let report = sync_source(
            self.store.as_ref(),
            &self.pipeline.index,
            self.vectors(),
            workspace,
            source,
            progress,
        )
        .await;
        // Also after a failed sync: what was applied stays consistent.
        self.settle_dense().await;
        // Documents that resolved questions name may have come or gone; a failure here keeps
        // the previous model and does not turn a finished sync into a failed one.
        if let Err(e) = self.refresh_resolved(workspace).await {
            tracing::warn!(error = %e, "cannot refresh resolved questions after a sync");
        }
        report
    }

    /// The full pipeline (or BM25 alone without an embedder).
    pub async fn retrieve(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &str,
        k: usize,
    ) -> Result<Retrieval> {
        self.keep_resolved_fresh(workspace).await;
        self.pipeline
            .retrieve(
                workspace,
                principals,
                query,
                k,
                self.pipeline.default_mode(),
            )
            .await
    }

    pub async fn retrieve_with(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &str,
        k: usize,
        mode: Mode,
    ) -> Result<Retrieval> {
        self.keep_resolved_fresh(workspace).await;
        self.pipeline
            .retrieve(workspace, principals, query, k, mode)
            .await
    }
}
