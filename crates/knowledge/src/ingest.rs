//! The sync engine: brings a workspace's copy of a source up to date, incrementally. Unchanged
//! documents (same content hash) are skipped, changed ones re-chunked and re-indexed, deleted
//! ones removed; a document that failed to load keeps its previous version. The store is
//! written first and is the truth; the index follows (and is rebuilt from the store if a crash
//! left them apart).

use crate::Result;
use crate::chunk::chunk_markdown;
use crate::index::KnowledgeIndex;
use crate::source::{DirectorySource, KnowledgeSource, SourceDocument};
use chrono::Utc;
use concierge_core::{Chunk, Document, DocumentId, Store, WorkspaceId};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
    /// Chunks of the workspace after the sync.
    pub chunks: usize,
    /// Documents that could not be loaded (`id: reason`); their previous version is kept.
    pub errors: Vec<String>,
}

/// Progress callback: `(documents done, documents total)`.
pub type Progress<'a> = &'a (dyn Fn(usize, usize) + Send + Sync);

/// Hex SHA-256 over everything that affects what is indexed or who may read it.
pub fn content_hash(doc: &SourceDocument) -> String {
    let mut h = Sha256::new();
    for part in [
        doc.title.as_str(),
        doc.url.as_deref().unwrap_or(""),
        &doc.tags.join(","),
        &doc.acl.join(","),
        doc.version.as_deref().unwrap_or(""),
        &doc.markdown,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Chunks a document's Markdown body into store chunks.
pub fn make_chunks(id: DocumentId, markdown: &str) -> Vec<Chunk> {
    chunk_markdown(markdown)
        .into_iter()
        .enumerate()
        .map(|(i, draft)| {
            let ordinal = u32::try_from(i).unwrap_or(u32::MAX);
            Chunk {
                id: Chunk::id_for(id, ordinal),
                document_id: id,
                ordinal,
                heading_path: draft.heading_path,
                text: draft.text,
            }
        })
        .collect()
}

/// Builds the stored document for a source document.
pub fn to_document(
    id: DocumentId,
    workspace: WorkspaceId,
    source: &str,
    doc: &SourceDocument,
) -> Document {
    Document {
        id,
        workspace_id: workspace,
        source: source.to_string(),
        external_id: doc.external_id.clone(),
        title: doc.title.clone(),
        url: doc.url.clone(),
        tags: doc.tags.clone(),
        content_hash: content_hash(doc),
        source_version: doc.version.clone(),
        acl: doc.acl.clone(),
        updated_at: doc.updated_at.unwrap_or_else(Utc::now),
    }
}

/// Number of documents written to the index per commit during a sync.
const INDEX_BATCH: usize = 64;

/// Syncs `source` into the workspace.
pub async fn sync_source(
    store: &dyn Store,
    index: &KnowledgeIndex,
    workspace: WorkspaceId,
    source: &dyn KnowledgeSource,
    progress: Progress<'_>,
) -> Result<IngestReport> {
    let source_id = source.id();
    let snapshot = source.snapshot().await?;
    let failed: HashSet<&str> = snapshot.failed.iter().map(|(id, _)| id.as_str()).collect();
    let existing: HashMap<String, Document> = store
        .documents(workspace, &source_id)
        .await?
        .into_iter()
        .map(|d| (d.external_id.clone(), d))
        .collect();
    let mut report = IngestReport {
        errors: snapshot
            .failed
            .iter()
            .map(|(id, why)| format!("{id}: {why}"))
            .collect(),
        ..IngestReport::default()
    };
    let total = snapshot.documents.len();
    let mut seen = HashSet::new();
    let mut batch = Vec::new();
    for (done, doc) in snapshot.documents.iter().enumerate() {
        seen.insert(doc.external_id.as_str());
        let previous = existing.get(&doc.external_id);
        let hash = content_hash(doc);
        if previous.is_some_and(|p| p.content_hash == hash) {
            report.unchanged += 1;
        } else {
            let id = previous.map_or_else(DocumentId::new, |p| p.id);
            let document = to_document(id, workspace, &source_id, doc);
            let chunks = make_chunks(id, &doc.markdown);
            store.put_document(&document, &chunks).await?;
            if previous.is_some() {
                report.updated += 1;
            } else {
                report.added += 1;
            }
            batch.push((document, chunks));
            if batch.len() >= INDEX_BATCH {
                index.apply(&batch, &[])?;
                batch.clear();
            }
        }
        progress(done + 1, total);
    }
    index.apply(&batch, &[])?;
    let mut deletes = Vec::new();
    for (external_id, doc) in &existing {
        if !seen.contains(external_id.as_str()) && !failed.contains(external_id.as_str()) {
            store.delete_document(doc.id).await?;
            deletes.push(doc.id);
            report.deleted += 1;
        }
    }
    index.apply(&[], &deletes)?;
    report.chunks =
        usize::try_from(store.knowledge_stats(Some(workspace)).await?.chunks).unwrap_or(usize::MAX);
    Ok(report)
}

/// Indexes a snapshot straight into `index` without a store (evaluations, benchmarks); returns
/// the documents in snapshot order.
pub fn index_snapshot(
    index: &KnowledgeIndex,
    workspace: WorkspaceId,
    source_id: &str,
    snapshot: &crate::source::Snapshot,
) -> Result<Vec<Document>> {
    let mut documents = Vec::with_capacity(snapshot.documents.len());
    let mut batch = Vec::new();
    for doc in &snapshot.documents {
        let id = DocumentId::new();
        let document = to_document(id, workspace, source_id, doc);
        batch.push((document.clone(), make_chunks(id, &doc.markdown)));
        documents.push(document);
        if batch.len() >= 1024 {
            index.apply(&batch, &[])?;
            batch.clear();
        }
    }
    index.apply(&batch, &[])?;
    Ok(documents)
}

/// Syncs a directory (see [`DirectorySource`]).
pub async fn ingest_dir(
    store: &dyn Store,
    index: &KnowledgeIndex,
    workspace: WorkspaceId,
    dir: &Path,
) -> Result<IngestReport> {
    let source = DirectorySource::new(dir)?;
    sync_source(store, index, workspace, &source, &|_, _| {}).await
}
