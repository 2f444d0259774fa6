//! The directory source: reads Markdown, HTML and text files, chunks them, and syncs the store
//! and the index incrementally (unchanged files are skipped, deleted files disappear).

use crate::chunk::chunk_markdown;
use crate::index::KnowledgeIndex;
use crate::parse::{ParsedDocument, is_supported, parse_file};
use crate::{KnowledgeError, Result};
use chrono::Utc;
use concierge_core::{Chunk, Document, DocumentId, Store, WorkspaceId};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub added: usize,
    pub updated: usize,
    pub unchanged: usize,
    pub deleted: usize,
    pub chunks: usize,
    /// Files that could not be read or parsed; their previous version (if any) is kept.
    pub errors: Vec<String>,
}

fn collect_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| KnowledgeError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| KnowledgeError::Io {
            path: dir.display().to_string(),
            source,
        })?;
        let path = entry.path();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect_files(&path, out)?;
        } else if is_supported(&path) {
            out.push(path);
        }
    }
    Ok(())
}

pub fn content_hash(doc: &ParsedDocument) -> String {
    let mut h = Sha256::new();
    for part in [
        doc.title.as_str(),
        doc.url.as_deref().unwrap_or(""),
        &doc.tags.join(","),
        &doc.markdown,
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex::encode(h.finalize())
}

/// Documents read from a directory (`(relative path, parsed document)`) and per-file errors.
pub type DirContents = (Vec<(String, ParsedDocument)>, Vec<String>);

/// Reads every supported file under `dir`.
pub fn read_dir(dir: &Path) -> Result<DirContents> {
    let mut files = Vec::new();
    collect_files(dir, &mut files)?;
    files.sort();
    let mut docs = Vec::new();
    let mut errors = Vec::new();
    for path in files {
        let rel = path
            .strip_prefix(dir)
            .unwrap_or(&path)
            .to_string_lossy()
            .replace('\\', "/");
        match std::fs::read_to_string(&path) {
            Ok(content) => match parse_file(&path, &content) {
                Ok(doc) => docs.push((rel, doc)),
                Err(message) => errors.push(format!("{rel}: {message}")),
            },
            Err(e) => errors.push(format!("{rel}: {e}")),
        }
    }
    Ok((docs, errors))
}

/// Chunks a parsed document into store chunks.
pub fn make_chunks(id: DocumentId, parsed: &ParsedDocument) -> Vec<Chunk> {
    chunk_markdown(&parsed.markdown)
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

/// Syncs the documents under `dir` into the workspace: store first, then the index.
pub async fn ingest_dir(
    store: &dyn Store,
    index: &KnowledgeIndex,
    workspace: WorkspaceId,
    dir: &Path,
) -> Result<IngestReport> {
    let canonical = dir.canonicalize().map_err(|source| KnowledgeError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    let source = format!("dir:{}", canonical.display());
    let (parsed, errors) = read_dir(&canonical)?;
    let failed: Vec<String> = errors
        .iter()
        .filter_map(|e| e.split_once(": ").map(|(p, _)| p.to_string()))
        .collect();
    let existing: HashMap<String, Document> = store
        .documents(workspace, &source)
        .await?
        .into_iter()
        .map(|d| (d.external_id.clone(), d))
        .collect();

    let mut report = IngestReport {
        errors,
        ..IngestReport::default()
    };
    let mut upserts = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (rel, doc) in parsed {
        seen.insert(rel.clone());
        let hash = content_hash(&doc);
        let previous = existing.get(&rel);
        if previous.is_some_and(|p| p.content_hash == hash) {
            report.unchanged += 1;
            continue;
        }
        let id = previous.map_or_else(DocumentId::new, |p| p.id);
        let document = Document {
            id,
            workspace_id: workspace,
            source: source.clone(),
            external_id: rel,
            title: doc.title.clone(),
            url: doc.url.clone(),
            tags: doc.tags.clone(),
            content_hash: hash,
            updated_at: Utc::now(),
        };
        let chunks = make_chunks(id, &doc);
        store.put_document(&document, &chunks).await?;
        if previous.is_some() {
            report.updated += 1
        } else {
            report.added += 1
        }
        upserts.push((document, chunks));
    }
    let mut deletes = Vec::new();
    for (rel, doc) in &existing {
        // A file that failed to parse this time keeps its previous version.
        if !seen.contains(rel) && !failed.contains(rel) {
            store.delete_document(doc.id).await?;
            deletes.push(doc.id);
            report.deleted += 1;
        }
    }
    index.apply(&upserts, &deletes)?;
    report.chunks =
        usize::try_from(store.knowledge_stats(Some(workspace)).await?.chunks).unwrap_or(usize::MAX);
    Ok(report)
}
