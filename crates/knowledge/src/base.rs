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
use crate::source::KnowledgeSource;
use concierge_core::{Principals, Store, WorkspaceId};
use std::sync::Arc;

pub struct KnowledgeBase {
    pub store: Arc<dyn Store>,
    pub pipeline: Pipeline,
}

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
        };
        Self { store, pipeline }
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
        Ok(())
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
        self.pipeline
            .retrieve(workspace, principals, query, k, mode)
            .await
    }
}
