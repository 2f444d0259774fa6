//! The sync engine: brings a workspace's copy of a source up to date, incrementally. Unchanged
//! documents (same content hash) are skipped, changed ones re-chunked and re-indexed, deleted
//! ones removed; a document that failed to load keeps its previous version. The store is
//! written first and is the truth; the index follows (and is rebuilt from the store if a crash
//! left them apart).

use crate::chunk::chunk_markdown;
use crate::dense::{DenseIndex, DenseItem};
use crate::embed::{Embedder, chunk_text_for_embedding, text_hash};
use crate::index::KnowledgeIndex;
use crate::source::{KnowledgeSource, SourceDocument};
use crate::{KnowledgeError, Result};
use chrono::Utc;
use concierge_core::{Chunk, Document, DocumentId, Store, WorkspaceId};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};

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
/// Texts per embedding call.
const EMBED_BATCH: usize = 32;

/// The dense side of the index: the embedder and the vectors it fills.
#[derive(Clone, Copy)]
pub struct Vectors<'a> {
    pub embedder: &'a dyn Embedder,
    pub dense: &'a DenseIndex,
}

/// Vectors of `texts` keyed by [`text_hash`]: those the store has cached for this model are
/// reused, the others embedded in batches and cached (without a store, all are embedded).
pub async fn embed_cached(
    store: Option<&dyn Store>,
    embedder: &dyn Embedder,
    texts: &[String],
) -> Result<HashMap<String, Vec<f32>>> {
    let model = embedder.model_id().to_string();
    let hashes: Vec<String> = texts.iter().map(|t| text_hash(t)).collect();
    let mut cached = match store {
        Some(store) => store.embeddings(&model, &hashes).await?,
        None => HashMap::new(),
    };
    let missing: Vec<usize> = (0..texts.len())
        .filter(|i| !cached.contains_key(&hashes[*i]))
        .collect();
    for group in missing.chunks(EMBED_BATCH) {
        let inputs: Vec<String> = group.iter().map(|i| texts[*i].clone()).collect();
        let embedded = embedder
            .embed(&inputs)
            .await
            .map_err(|e| KnowledgeError::Embedding(e.0))?;
        let fresh: Vec<(String, Vec<f32>)> = group
            .iter()
            .map(|i| hashes[*i].clone())
            .zip(embedded)
            .collect();
        if let Some(store) = store {
            store.put_embeddings(&model, &fresh).await?;
        }
        cached.extend(fresh);
    }
    Ok(cached)
}

/// Embeds `batch`'s chunks (with a store, cached vectors by text hash are reused and new ones
/// cached) and replaces the documents' vectors in the dense index.
pub async fn embed_chunks(
    store: Option<&dyn Store>,
    vectors: Vectors<'_>,
    batch: &[(Document, Vec<Chunk>)],
) -> Result<()> {
    let mut items = Vec::new();
    let mut texts = Vec::new();
    for (doc, chunks) in batch {
        for chunk in chunks {
            let text = chunk_text_for_embedding(&doc.title, &chunk.heading_path, &chunk.text);
            items.push((doc, chunk, text_hash(&text)));
            texts.push(text);
        }
    }
    let cached = embed_cached(store, vectors.embedder, &texts).await?;
    // An updated document may have fewer chunks than before: drop its old vectors first.
    let documents: Vec<DocumentId> = batch.iter().map(|(d, _)| d.id).collect();
    vectors.dense.remove_documents(&documents);
    vectors.dense.upsert(
        items
            .into_iter()
            .filter_map(|(doc, chunk, hash)| {
                cached.get(&hash).map(|v| DenseItem {
                    chunk_id: chunk.id.clone(),
                    document_id: doc.id,
                    workspace: doc.workspace_id,
                    acl: doc.acl.clone(),
                    vector: v.clone(),
                })
            })
            .collect(),
    );
    Ok(())
}

/// Fills the dense index from the store: every chunk's vector from the cache, embedding those
/// the current model has not seen (first start, or a model change).
pub async fn load_dense(store: &dyn Store, vectors: Vectors<'_>) -> Result<()> {
    let all = store.all_chunks().await?;
    vectors.dense.clear();
    let mut by_doc: Vec<(Document, Vec<Chunk>)> = Vec::new();
    for (doc, chunk) in all {
        match by_doc.last_mut() {
            Some((d, chunks)) if d.id == doc.id => chunks.push(chunk),
            _ => by_doc.push((doc, vec![chunk])),
        }
    }
    for group in by_doc.chunks(INDEX_BATCH) {
        embed_chunks(Some(store), vectors, group).await?;
    }
    Ok(())
}

/// Syncs `source` into the workspace.
pub async fn sync_source(
    store: &dyn Store,
    index: &KnowledgeIndex,
    vectors: Option<Vectors<'_>>,
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
                if let Some(v) = vectors {
                    embed_chunks(Some(store), v, &batch).await?;
                }
                batch.clear();
            }
        }
        progress(done + 1, total);
    }
    index.apply(&batch, &[])?;
    if let Some(v) = vectors {
        embed_chunks(Some(store), v, &batch).await?;
    }
    let mut deletes = Vec::new();
    for (external_id, doc) in &existing {
        if !seen.contains(external_id.as_str()) && !failed.contains(external_id.as_str()) {
            store.delete_document(doc.id).await?;
            deletes.push(doc.id);
            report.deleted += 1;
        }
    }
    index.apply(&[], &deletes)?;
    if let Some(v) = vectors {
        v.dense.remove_documents(&deletes);
    }
    report.chunks =
        usize::try_from(store.knowledge_stats(Some(workspace)).await?.chunks).unwrap_or(usize::MAX);
    Ok(report)
}

/// Indexes a snapshot straight into `index` without storing documents (evaluations,
/// benchmarks); `cache` keeps embeddings between runs. Returns the documents in snapshot order.
pub async fn index_snapshot(
    index: &KnowledgeIndex,
    vectors: Option<Vectors<'_>>,
    cache: Option<&dyn Store>,
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
        if batch.len() >= 256 {
            index.apply(&batch, &[])?;
            if let Some(v) = vectors {
                embed_chunks(cache, v, &batch).await?;
            }
            batch.clear();
        }
    }
    index.apply(&batch, &[])?;
    if let Some(v) = vectors {
        embed_chunks(cache, v, &batch).await?;
    }
    Ok(documents)
}
