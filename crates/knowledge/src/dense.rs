//! Dense (vector) search over chunk embeddings, filtered by workspace and access list while
//! scanning, so a document the asker may not read is never a candidate.
//!
//! Exact search (a scan of unit vectors, dot product = cosine). Below a few hundred thousand
//! 384-dimensional vectors a scan over contiguous memory is fast enough (see
//! docs/benchmarks.md); an ANN index can take over behind the same interface.

use crate::embed::dot;
use concierge_core::{DocumentId, Principals, WorkspaceId};
use std::collections::{HashMap, HashSet};
use std::sync::RwLock;

#[derive(Debug, Clone)]
struct Entry {
    chunk_id: String,
    document_id: DocumentId,
    workspace: WorkspaceId,
    acl: Vec<String>,
}

#[derive(Default)]
struct Inner {
    dims: usize,
    entries: Vec<Entry>,
    /// Row-major, `entries.len() * dims`.
    vectors: Vec<f32>,
    by_chunk: HashMap<String, usize>,
    /// Documents with at least one vector, so removing absent ones costs nothing.
    documents: HashSet<DocumentId>,
}

/// One chunk's vector with what the search filters on.
#[derive(Debug, Clone)]
pub struct DenseItem {
    pub chunk_id: String,
    pub document_id: DocumentId,
    pub workspace: WorkspaceId,
    pub acl: Vec<String>,
    /// Unit length.
    pub vector: Vec<f32>,
}

/// A scored dense candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseHit {
    pub chunk_id: String,
    pub document_id: DocumentId,
    pub score: f32,
}

#[derive(Default)]
pub struct DenseIndex {
    inner: RwLock<Inner>,
}

impl DenseIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.entries.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds or replaces chunks' vectors.
    pub fn upsert(&self, items: Vec<DenseItem>) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        for DenseItem {
            chunk_id,
            document_id,
            workspace,
            acl,
            vector,
        } in items
        {
            if inner.dims == 0 {
                inner.dims = vector.len();
            }
            if vector.len() != inner.dims {
                tracing::warn!(chunk_id, "vector of a different dimension ignored");
                continue;
            }
            inner.documents.insert(document_id);
            let entry = Entry {
                chunk_id: chunk_id.clone(),
                document_id,
                workspace,
                acl,
            };
            match inner.by_chunk.get(&chunk_id).copied() {
                Some(row) => {
                    let dims = inner.dims;
                    inner.vectors[row * dims..(row + 1) * dims].copy_from_slice(&vector);
                    inner.entries[row] = entry;
                }
                None => {
                    let row = inner.entries.len();
                    inner.entries.push(entry);
                    inner.vectors.extend_from_slice(&vector);
                    inner.by_chunk.insert(chunk_id, row);
                }
            }
        }
    }

    /// Removes every chunk of these documents.
    pub fn remove_documents(&self, documents: &[DocumentId]) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        // Syncs call this for every batch (new documents included): only rebuild when one of
        // the documents actually has vectors.
        let present: HashSet<DocumentId> = documents
            .iter()
            .filter(|d| inner.documents.contains(d))
            .copied()
            .collect();
        if present.is_empty() {
            return;
        }
        let dims = inner.dims;
        let old_entries = std::mem::take(&mut inner.entries);
        let old_vectors = std::mem::take(&mut inner.vectors);
        inner.by_chunk.clear();
        for d in &present {
            inner.documents.remove(d);
        }
        for (row, entry) in old_entries.into_iter().enumerate() {
            if present.contains(&entry.document_id) {
                continue;
            }
            let new_row = inner.entries.len();
            inner.by_chunk.insert(entry.chunk_id.clone(), new_row);
            inner.entries.push(entry);
            inner
                .vectors
                .extend_from_slice(&old_vectors[row * dims..(row + 1) * dims]);
        }
    }

    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            *inner = Inner::default();
        }
    }

    /// The `k` chunks most similar to `query` (a unit vector) that `principals` may read.
    pub fn search(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &[f32],
        k: usize,
    ) -> Vec<DenseHit> {
        let Ok(inner) = self.inner.read() else {
            return Vec::new();
        };
        if inner.dims == 0 || query.len() != inner.dims || k == 0 {
            return Vec::new();
        }
        let dims = inner.dims;
        // A bounded min-heap of (score, row).
        let mut top: std::collections::BinaryHeap<std::cmp::Reverse<(OrderedF32, usize)>> =
            std::collections::BinaryHeap::with_capacity(k + 1);
        for (row, entry) in inner.entries.iter().enumerate() {
            if entry.workspace != workspace || !principals.can_read(&entry.acl) {
                continue;
            }
            let score = dot(query, &inner.vectors[row * dims..(row + 1) * dims]);
            if top.len() < k {
                top.push(std::cmp::Reverse((OrderedF32(score), row)));
            } else if top
                .peek()
                .is_some_and(|std::cmp::Reverse((min, _))| score > min.0)
            {
                top.pop();
                top.push(std::cmp::Reverse((OrderedF32(score), row)));
            }
        }
        let mut hits: Vec<DenseHit> = top
            .into_iter()
            .map(|std::cmp::Reverse((score, row))| DenseHit {
                chunk_id: inner.entries[row].chunk_id.clone(),
                document_id: inner.entries[row].document_id,
                score: score.0,
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.chunk_id.cmp(&b.chunk_id))
        });
        hits
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct OrderedF32(f32);

impl Eq for OrderedF32 {}

impl PartialOrd for OrderedF32 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedF32 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(
        id: &str,
        d: DocumentId,
        ws: WorkspaceId,
        acl: Vec<String>,
        vector: Vec<f32>,
    ) -> DenseItem {
        DenseItem {
            chunk_id: id.into(),
            document_id: d,
            workspace: ws,
            acl,
            vector,
        }
    }

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn nearest_readable_chunks_in_the_workspace() {
        let idx = DenseIndex::new();
        let ws = WorkspaceId::new();
        let other = WorkspaceId::new();
        let (d1, d2, d3, d4) = (
            DocumentId::new(),
            DocumentId::new(),
            DocumentId::new(),
            DocumentId::new(),
        );
        let public = vec!["public".to_string()];
        idx.upsert(vec![
            item("a", d1, ws, public.clone(), unit(&[1.0, 0.0, 0.0])),
            item("b", d2, ws, public.clone(), unit(&[0.9, 0.1, 0.0])),
            item(
                "c",
                d3,
                ws,
                vec!["group:staff".into()],
                unit(&[1.0, 0.0, 0.01]),
            ),
            item("d", d4, other, public.clone(), unit(&[1.0, 0.0, 0.0])),
        ]);
        let q = unit(&[1.0, 0.0, 0.0]);
        let ids = |hits: Vec<DenseHit>| hits.into_iter().map(|h| h.chunk_id).collect::<Vec<_>>();
        assert_eq!(
            ids(idx.search(ws, &Principals::public(), &q, 5)),
            vec!["a", "b"]
        );
        assert_eq!(
            ids(idx.search(ws, &Principals::with(["group:staff".to_string()]), &q, 2)),
            vec!["a", "c"]
        );
        idx.remove_documents(&[d1]);
        assert_eq!(ids(idx.search(ws, &Principals::public(), &q, 5)), vec!["b"]);
        idx.upsert(vec![item("b", d2, ws, public, unit(&[0.0, 1.0, 0.0]))]);
        let hits = idx.search(ws, &Principals::public(), &q, 5);
        assert!(hits[0].score.abs() < 1e-6, "replaced vector: {hits:?}");
        assert_eq!(idx.len(), 3);
    }
}
