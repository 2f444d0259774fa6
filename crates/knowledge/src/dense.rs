//! Dense (vector) search over chunk embeddings, filtered by workspace and access list while
//! searching, so a document the asker may not read is never a candidate.
//!
//! Below [`AnnConfig::threshold`] live vectors the search is exact (a scan of unit vectors,
//! dot product = cosine). Above it an HNSW graph (hnsw_rs) answers, with the same filter
//! applied inside the graph walk; when the filter leaves fewer than `k` hits (a small
//! workspace or a narrow access list in a big index) the search falls back to the exact scan,
//! so a filter never costs recall.
//!
//! Rows are append-only: a replaced or removed chunk leaves a dead row (skipped by both
//! searches) until dead rows reach a quarter of the live ones, when the rows are compacted and
//! the graph is rebuilt. The graph is persisted (hnsw_rs dump plus a manifest naming each
//! row's chunk and vector fingerprint): at start the vectors come from the store as before,
//! and every row whose chunk and vector still match is reused, so a restart does not rebuild
//! the graph; only new vectors are inserted.

use crate::embed::dot;
use concierge_core::{DocumentId, Principals, WorkspaceId};
use hnsw_rs::prelude::{AnnT, Distance, Hnsw, HnswIo};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

/// When the HNSW graph takes over from the exact scan, and how it is built and searched.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnnConfig {
    /// Live vectors from which the graph is used (exact scan below).
    pub threshold: usize,
    /// Graph degree (hnsw_rs `max_nb_connection`; at most 256).
    pub connections: usize,
    pub ef_construction: usize,
    /// Candidate list size while searching (at least `k`).
    pub ef_search: usize,
}

impl Default for AnnConfig {
    fn default() -> Self {
        Self {
            threshold: 20_000,
            connections: 16,
            ef_construction: 100,
            ef_search: 128,
        }
    }
}

/// Cosine distance of unit vectors, `1 - a·b`, with the crate's vectorisable dot product.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitDot;

impl Distance<f32> for UnitDot {
    fn eval(&self, a: &[f32], b: &[f32]) -> f32 {
        (1.0 - dot(a, b)).max(0.0)
    }
}

type Graph = Hnsw<'static, f32, UnitDot>;

#[derive(Debug, Clone)]
struct Entry {
    chunk_id: String,
    document_id: DocumentId,
    workspace: WorkspaceId,
    acl: Vec<String>,
    fingerprint: u64,
    alive: bool,
}

#[derive(Default)]
struct Inner {
    dims: usize,
    entries: Vec<Entry>,
    /// Row-major, `entries.len() * dims`.
    vectors: Vec<f32>,
    /// Live row of each chunk.
    by_chunk: HashMap<String, usize>,
    /// Live rows of each document.
    by_document: HashMap<DocumentId, Vec<usize>>,
    dead: usize,
    /// Rows `0..graph_rows` are in the graph.
    graph: Option<Graph>,
    graph_rows: usize,
    /// Rows of a loaded snapshot still waiting for their vector: chunk id -> row.
    pending: HashMap<String, usize>,
    /// Bumped by compaction (row numbers change), so a graph built meanwhile is discarded.
    generation: u64,
    /// Counts changes to the graph or the rows; `saved` is the count the last save wrote.
    changes: u64,
    saved: u64,
}

impl Inner {
    fn live(&self) -> usize {
        self.entries.len() - self.dead
    }

    fn kill(&mut self, row: usize) {
        let entry = &mut self.entries[row];
        if !entry.alive {
            return;
        }
        entry.alive = false;
        self.dead += 1;
        self.by_chunk.remove(&entry.chunk_id);
        if let Some(rows) = self.by_document.get_mut(&entry.document_id) {
            rows.retain(|r| *r != row);
            if rows.is_empty() {
                self.by_document.remove(&entry.document_id);
            }
        }
        self.changes += 1;
    }

    /// Maps `item`'s chunk and document to `row` and returns the row's live entry.
    fn link(&mut self, row: usize, item: DenseItem, fingerprint: u64) -> Entry {
        self.by_chunk.insert(item.chunk_id.clone(), row);
        self.by_document
            .entry(item.document_id)
            .or_default()
            .push(row);
        Entry {
            chunk_id: item.chunk_id,
            document_id: item.document_id,
            workspace: item.workspace,
            acl: item.acl,
            fingerprint,
            alive: true,
        }
    }

    fn revive(&mut self, row: usize, item: DenseItem, fingerprint: u64) {
        let dims = self.dims;
        self.vectors[row * dims..(row + 1) * dims].copy_from_slice(&item.vector);
        self.entries[row] = self.link(row, item, fingerprint);
        self.dead -= 1;
    }

    fn push(&mut self, item: DenseItem, fingerprint: u64) {
        let row = self.entries.len();
        self.vectors.extend_from_slice(&item.vector);
        let entry = self.link(row, item, fingerprint);
        self.entries.push(entry);
        if let Some(graph) = &self.graph {
            let dims = self.dims;
            graph.insert_slice((&self.vectors[row * dims..(row + 1) * dims], row));
            self.graph_rows = row + 1;
        }
        self.changes += 1;
    }

    /// Drops dead rows (renumbering the rest) and the graph built on the old numbering.
    fn compact(&mut self) {
        let dims = self.dims;
        let old_entries = std::mem::take(&mut self.entries);
        let old_vectors = std::mem::take(&mut self.vectors);
        self.by_chunk.clear();
        self.by_document.clear();
        self.pending.clear();
        self.dead = 0;
        self.graph = None;
        self.graph_rows = 0;
        self.generation += 1;
        self.changes += 1;
        for (row, entry) in old_entries.into_iter().enumerate() {
            if !entry.alive {
                continue;
            }
            let new_row = self.entries.len();
            self.by_chunk.insert(entry.chunk_id.clone(), new_row);
            self.by_document
                .entry(entry.document_id)
                .or_default()
                .push(new_row);
            self.entries.push(entry);
            self.vectors
                .extend_from_slice(&old_vectors[row * dims..(row + 1) * dims]);
        }
    }

    fn exact(
        &self,
        readable: impl Fn(&Entry) -> bool,
        query: &[f32],
        k: usize,
    ) -> Vec<(f32, usize)> {
        let dims = self.dims;
        // A bounded min-heap of (score, row).
        let mut top: std::collections::BinaryHeap<std::cmp::Reverse<(OrderedF32, usize)>> =
            std::collections::BinaryHeap::with_capacity(k + 1);
        for (row, entry) in self.entries.iter().enumerate() {
            if !readable(entry) {
                continue;
            }
            let score = dot(query, &self.vectors[row * dims..(row + 1) * dims]);
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
        top.into_iter()
            .map(|std::cmp::Reverse((score, row))| (score.0, row))
            .collect()
    }
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

/// Which search answered (for inspection and benchmarks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchKind {
    Exact,
    Graph,
}

/// The on-disk description of a persisted graph: row `i` of the graph holds `rows[i]`.
#[derive(Serialize, Deserialize)]
struct Manifest {
    format: u32,
    dims: usize,
    basename: String,
    connections: usize,
    /// `(chunk id, vector fingerprint)` per row; dead rows have an empty chunk id.
    rows: Vec<(String, String)>,
}

const MANIFEST_FORMAT: u32 = 1;
const BASENAME: &str = "dense";

#[derive(Default)]
pub struct DenseIndex {
    inner: RwLock<Inner>,
    config: AnnConfig,
    /// Where the graph is persisted (none: memory only).
    dir: Option<PathBuf>,
    /// One save at a time.
    save_lock: std::sync::Mutex<()>,
}

/// FNV-1a over the vector's bits: identifies a vector in the manifest.
fn fingerprint(vector: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for x in vector {
        for b in x.to_bits().to_le_bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

impl DenseIndex {
    /// An in-memory index with the default [`AnnConfig`].
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_config(config: AnnConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// An index persisted under `dir`: a graph saved there earlier is loaded, and its rows
    /// are reused as the same vectors are upserted again (see the module docs). A missing or
    /// unreadable snapshot is not an error: the graph is rebuilt when needed.
    pub fn open(dir: &Path, config: AnnConfig) -> Self {
        let index = Self {
            config,
            dir: Some(dir.to_path_buf()),
            ..Self::default()
        };
        match load_snapshot(dir) {
            Ok(Some((manifest, graph))) => {
                if let Ok(mut inner) = index.inner.write() {
                    let n = manifest.rows.len();
                    inner.dims = manifest.dims;
                    inner.vectors = vec![0.0; n * manifest.dims];
                    for (row, (chunk_id, fp)) in manifest.rows.into_iter().enumerate() {
                        if !chunk_id.is_empty() {
                            inner.pending.insert(chunk_id.clone(), row);
                        }
                        inner.entries.push(Entry {
                            chunk_id,
                            document_id: DocumentId(uuid::Uuid::nil()),
                            workspace: WorkspaceId(uuid::Uuid::nil()),
                            acl: Vec::new(),
                            fingerprint: u64::from_str_radix(&fp, 16).unwrap_or(0),
                            alive: false,
                        });
                    }
                    inner.dead = n;
                    inner.graph = Some(graph);
                    inner.graph_rows = n;
                    tracing::info!(rows = n, dir = %dir.display(), "dense graph loaded");
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "dense graph snapshot unreadable; it will be rebuilt");
            }
        }
        index
    }

    /// Live vectors.
    pub fn len(&self) -> usize {
        self.inner.read().map(|i| i.live()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether searches go through the graph now.
    pub fn uses_graph(&self) -> bool {
        self.inner
            .read()
            .map(|i| i.graph.is_some() && i.live() >= self.config.threshold)
            .unwrap_or(false)
    }

    /// Adds or replaces chunks' vectors.
    pub fn upsert(&self, items: Vec<DenseItem>) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        for item in items {
            if inner.dims == 0 {
                inner.dims = item.vector.len();
            }
            if item.vector.len() != inner.dims {
                tracing::warn!(
                    chunk_id = item.chunk_id,
                    "vector of a different dimension ignored"
                );
                continue;
            }
            let fp = fingerprint(&item.vector);
            if let Some(row) = inner.by_chunk.get(&item.chunk_id).copied() {
                if inner.entries[row].fingerprint == fp {
                    // Same vector: only what the filter reads may have changed.
                    let old_doc = inner.entries[row].document_id;
                    if old_doc != item.document_id {
                        inner.kill(row);
                        inner.push(item, fp);
                    } else {
                        let entry = &mut inner.entries[row];
                        entry.workspace = item.workspace;
                        entry.acl = item.acl;
                    }
                    continue;
                }
                inner.kill(row);
            }
            if let Some(row) = inner.pending.remove(&item.chunk_id)
                && inner.entries[row].fingerprint == fp
            {
                inner.revive(row, item, fp);
                continue;
            }
            inner.push(item, fp);
        }
    }

    /// Removes every chunk of these documents.
    pub fn remove_documents(&self, documents: &[DocumentId]) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        for d in documents {
            let rows = inner.by_document.get(d).cloned().unwrap_or_default();
            for row in rows {
                inner.kill(row);
            }
        }
    }

    pub fn clear(&self) {
        if let Ok(mut inner) = self.inner.write() {
            let generation = inner.generation + 1;
            *inner = Inner {
                generation,
                changes: 1,
                ..Inner::default()
            };
        }
    }

    /// Brings the index to its steady state after a load or a sync: compacts when dead rows
    /// reach a quarter of the live ones, builds the graph when the live vectors reach the
    /// threshold (outside the lock: searches go on meanwhile, exact), and saves it when it
    /// changed. Returns whether a graph was built.
    pub fn settle(&self) -> bool {
        let snapshot = {
            let Ok(mut inner) = self.inner.write() else {
                return false;
            };
            inner.pending.clear();
            if inner.dead > 0 && inner.dead * 4 >= inner.live().max(1) {
                inner.compact();
            }
            if inner.live() < self.config.threshold {
                if inner.graph.is_some() {
                    inner.graph = None;
                    inner.graph_rows = 0;
                    inner.changes += 1;
                }
                None
            } else if inner.graph.is_none() {
                Some((inner.generation, inner.dims, inner.vectors.clone()))
            } else {
                None
            }
        };
        let mut built = false;
        if let Some((generation, dims, vectors)) = snapshot {
            let rows = vectors.len() / dims.max(1);
            let graph = self.build(&vectors, dims);
            if let Ok(mut inner) = self.inner.write()
                && inner.generation == generation
                && inner.graph.is_none()
            {
                // Rows appended while building.
                for row in rows..inner.entries.len() {
                    graph.insert_slice((&inner.vectors[row * dims..(row + 1) * dims], row));
                }
                inner.graph_rows = inner.entries.len();
                inner.graph = Some(graph);
                inner.changes += 1;
                built = true;
            }
        }
        if let Err(e) = self.save() {
            tracing::warn!(error = %e, "dense graph not saved; it will be rebuilt at start");
        }
        built
    }

    fn build(&self, vectors: &[f32], dims: usize) -> Graph {
        let rows = vectors.len() / dims.max(1);
        let graph: Graph = Hnsw::new(
            self.config.connections.clamp(4, 256),
            rows,
            // hnsw_rs only dumps graphs built with its maximum number of layers (16).
            16,
            self.config.ef_construction,
            UnitDot,
        );
        let data: Vec<(&[f32], usize)> = (0..rows)
            .map(|row| (&vectors[row * dims..(row + 1) * dims], row))
            .collect();
        graph.parallel_insert_slice(&data);
        graph
    }

    /// Writes the graph and its manifest under the index directory if they changed (into a
    /// temporary directory first, swapped in whole).
    pub fn save(&self) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let Ok(_saving) = self.save_lock.lock() else {
            return Ok(());
        };
        // Dumped under the read lock: searches go on while the files are written.
        let version = {
            let Ok(inner) = self.inner.read() else {
                return Ok(());
            };
            if inner.changes == inner.saved {
                return Ok(());
            }
            let tmp = dir.with_extension("tmp");
            if tmp.exists() {
                std::fs::remove_dir_all(&tmp)?;
            }
            if let Some(graph) = &inner.graph {
                std::fs::create_dir_all(&tmp)?;
                let basename = graph
                    .file_dump(&tmp, BASENAME)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let manifest = Manifest {
                    format: MANIFEST_FORMAT,
                    dims: inner.dims,
                    basename,
                    connections: self.config.connections,
                    rows: inner.entries[..inner.graph_rows]
                        .iter()
                        .map(|e| {
                            if e.alive {
                                (e.chunk_id.clone(), format!("{:016x}", e.fingerprint))
                            } else {
                                (String::new(), String::new())
                            }
                        })
                        .collect(),
                };
                std::fs::write(tmp.join("manifest.json"), serde_json::to_vec(&manifest)?)?;
            }
            inner.changes
        };
        let tmp = dir.with_extension("tmp");
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        if tmp.exists() {
            std::fs::rename(&tmp, dir)?;
        }
        if let Ok(mut inner) = self.inner.write() {
            inner.saved = inner.saved.max(version);
        }
        Ok(())
    }

    /// The `k` chunks most similar to `query` (a unit vector) that `principals` may read.
    pub fn search(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &[f32],
        k: usize,
    ) -> Vec<DenseHit> {
        self.search_with_kind(workspace, principals, query, k).0
    }

    /// Mean and standard deviation of the query's similarity over the chunks `principals` may
    /// read: exact up to `sample` readable rows, above that over an even stride of them (the
    /// statistic, not a ranking, so a sample is enough and keeps graph searches fast).
    pub fn score_stats(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &[f32],
        sample: usize,
    ) -> crate::index::ScoreStats {
        let Ok(inner) = self.inner.read() else {
            return Default::default();
        };
        if inner.dims == 0 || query.len() != inner.dims {
            return Default::default();
        }
        let dims = inner.dims;
        let stride = (inner.entries.len() / sample.max(1)).max(1);
        let (mut n, mut sum, mut sum_sq) = (0u64, 0f64, 0f64);
        for row in (0..inner.entries.len()).step_by(stride) {
            let e = &inner.entries[row];
            if !(e.alive && e.workspace == workspace && principals.can_read(&e.acl)) {
                continue;
            }
            let x = f64::from(dot(query, &inner.vectors[row * dims..(row + 1) * dims]));
            n += 1;
            sum += x;
            sum_sq += x * x;
        }
        crate::index::ScoreStats::from_sums(n, sum, sum_sq)
    }

    /// The similarity of `query` to each of these chunks (those without a vector are absent).
    pub fn scores_for(&self, query: &[f32], chunk_ids: &[String]) -> HashMap<String, f32> {
        let Ok(inner) = self.inner.read() else {
            return HashMap::new();
        };
        let dims = inner.dims;
        chunk_ids
            .iter()
            .filter_map(|id| {
                let row = *inner.by_chunk.get(id)?;
                (query.len() == dims).then(|| {
                    (
                        id.clone(),
                        dot(query, &inner.vectors[row * dims..(row + 1) * dims]),
                    )
                })
            })
            .collect()
    }

    /// The mean of these chunks' vectors (none: no such vector).
    pub fn mean_vector(&self, chunk_ids: &[String]) -> Option<Vec<f32>> {
        let inner = self.inner.read().ok()?;
        let dims = inner.dims;
        crate::embed::mean(
            chunk_ids
                .iter()
                .filter_map(|id| inner.by_chunk.get(id))
                .map(|row| &inner.vectors[row * dims..(row + 1) * dims]),
        )
    }

    /// [`Self::search`] by the exact scan alone (the reference for the graph's recall).
    pub fn search_exact(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &[f32],
        k: usize,
    ) -> Vec<DenseHit> {
        self.search_inner(workspace, principals, query, k, None).0
    }

    /// [`Self::search`], also saying whether the graph or the exact scan answered.
    pub fn search_with_kind(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &[f32],
        k: usize,
    ) -> (Vec<DenseHit>, SearchKind) {
        self.search_inner(workspace, principals, query, k, Some(self.config.ef_search))
    }

    /// [`Self::search`] with another graph candidate-list size (a quick, rougher search for
    /// a few neighbours; exact below the threshold as always).
    pub fn search_with_ef(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &[f32],
        k: usize,
        ef: usize,
    ) -> Vec<DenseHit> {
        self.search_inner(workspace, principals, query, k, Some(ef))
            .0
    }

    fn search_inner(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        query: &[f32],
        k: usize,
        graph_ef: Option<usize>,
    ) -> (Vec<DenseHit>, SearchKind) {
        let Ok(inner) = self.inner.read() else {
            return (Vec::new(), SearchKind::Exact);
        };
        if inner.dims == 0 || query.len() != inner.dims || k == 0 {
            return (Vec::new(), SearchKind::Exact);
        }
        let readable =
            |e: &Entry| e.alive && e.workspace == workspace && principals.can_read(&e.acl);
        let mut kind = SearchKind::Exact;
        let mut scored: Vec<(f32, usize)> = Vec::new();
        if let (Some(graph), Some(ef)) = (&inner.graph, graph_ef)
            && inner.live() >= self.config.threshold
        {
            let graph_rows = inner.graph_rows;
            let filter = |row: &usize| *row < graph_rows && readable(&inner.entries[*row]);
            let found = graph.search_filter(query, k, ef.max(k), Some(&filter));
            if found.len() >= k {
                kind = SearchKind::Graph;
                scored = found
                    .into_iter()
                    .map(|n| (1.0 - n.distance, n.d_id))
                    .collect();
            }
        }
        if kind == SearchKind::Exact {
            scored = inner.exact(readable, query, k);
        }
        let mut hits: Vec<DenseHit> = scored
            .into_iter()
            .map(|(score, row)| DenseHit {
                chunk_id: inner.entries[row].chunk_id.clone(),
                document_id: inner.entries[row].document_id,
                score,
            })
            .collect();
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.chunk_id.cmp(&b.chunk_id))
        });
        (hits, kind)
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn load_snapshot(dir: &Path) -> Result<Option<(Manifest, Graph)>, BoxError> {
    let path = dir.join("manifest.json");
    if !path.exists() {
        return Ok(None);
    }
    let manifest: Manifest = serde_json::from_slice(&std::fs::read(&path)?)?;
    if manifest.format != MANIFEST_FORMAT {
        return Ok(None);
    }
    // The loaded graph borrows its loader (hnsw_rs ties their lifetimes even without mmap); the
    // loader is a few paths and options, so it is kept for the life of the process.
    let io: &'static HnswIo = Box::leak(Box::new(HnswIo::new(dir, &manifest.basename)));
    let graph: Graph = io
        .load_hnsw_with_dist(UnitDot)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    if graph.get_nb_point() != manifest.rows.len() {
        return Ok(None);
    }
    Ok(Some((manifest, graph)))
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

#[cfg(test)]
mod graph_tests {
    use super::*;

    /// Deterministic pseudo-random unit vectors.
    fn vectors(n: usize, dims: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut state = seed;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dims).map(|_| next()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.into_iter().map(|x| x / norm).collect()
            })
            .collect()
    }

    fn items(ws: WorkspaceId, vs: &[Vec<f32>], docs: &[DocumentId]) -> Vec<DenseItem> {
        vs.iter()
            .enumerate()
            .map(|(i, v)| DenseItem {
                chunk_id: format!("c{i}"),
                document_id: docs[i % docs.len()],
                workspace: ws,
                // Every fifth chunk is staff-only.
                acl: if i % 5 == 0 {
                    vec!["group:staff".into()]
                } else {
                    vec!["public".into()]
                },
                vector: v.clone(),
            })
            .collect()
    }

    const CONFIG: AnnConfig = AnnConfig {
        threshold: 100,
        connections: 16,
        ef_construction: 100,
        ef_search: 64,
    };

    fn ids(hits: &[DenseHit]) -> Vec<String> {
        hits.iter().map(|h| h.chunk_id.clone()).collect()
    }

    #[test]
    fn the_graph_agrees_with_the_exact_scan_and_honours_the_filter() {
        let ws = WorkspaceId::new();
        let docs: Vec<DocumentId> = (0..50).map(|_| DocumentId::new()).collect();
        let data = vectors(600, 32, 7);
        let exact = DenseIndex::with_config(AnnConfig {
            threshold: usize::MAX,
            ..CONFIG
        });
        let graph = DenseIndex::with_config(CONFIG);
        exact.upsert(items(ws, &data, &docs));
        graph.upsert(items(ws, &data, &docs));
        assert!(!exact.settle());
        assert!(
            graph.settle(),
            "600 live vectors ≥ threshold 100: a graph is built"
        );
        assert!(graph.uses_graph() && !exact.uses_graph());
        let public = Principals::public();
        let mut overlap = 0;
        for q in vectors(40, 32, 99) {
            let (e, ek) = exact.search_with_kind(ws, &public, &q, 10);
            let (g, gk) = graph.search_with_kind(ws, &public, &q, 10);
            assert_eq!((ek, gk), (SearchKind::Exact, SearchKind::Graph));
            for hit in &g {
                let row: usize = hit.chunk_id[1..].parse().unwrap();
                assert_ne!(row % 5, 0, "a staff-only chunk reached a public asker");
            }
            overlap += ids(&g).iter().filter(|id| ids(&e).contains(id)).count();
        }
        let recall = overlap as f64 / 400.0;
        assert!(recall >= 0.9, "graph recall@10 {recall}");
        // Another workspace sees nothing; the graph finds too little and the exact scan confirms.
        let (none, kind) = graph.search_with_kind(WorkspaceId::new(), &public, &data[0], 5);
        assert!(none.is_empty());
        assert_eq!(kind, SearchKind::Exact);
    }

    #[test]
    fn removed_and_replaced_vectors_leave_the_results_and_compaction_rebuilds() {
        let ws = WorkspaceId::new();
        let docs: Vec<DocumentId> = (0..60).map(|_| DocumentId::new()).collect();
        let data = vectors(300, 16, 3);
        let index = DenseIndex::with_config(CONFIG);
        index.upsert(items(ws, &data, &docs));
        assert!(index.settle());
        let staff = Principals::with(["group:staff".to_string(), "public".to_string()]);
        // The nearest chunk to data[1] is c1 itself; remove its document.
        let top = index.search(ws, &staff, &data[1], 1);
        assert_eq!(ids(&top), vec!["c1"]);
        index.remove_documents(&[docs[1]]);
        let after = index.search(ws, &staff, &data[1], 5);
        assert!(after.iter().all(|h| h.document_id != docs[1]), "{after:?}");
        assert_eq!(index.len(), 295);
        // Replacing c2's vector moves it.
        let mut moved = items(ws, &data[2..3], &docs[2..3]);
        moved[0].chunk_id = "c2".into();
        moved[0].vector = data[250].clone();
        index.upsert(moved);
        let near_250 = ids(&index.search(ws, &staff, &data[250], 2));
        assert!(near_250.contains(&"c2".to_string()) && near_250.contains(&"c250".to_string()));
        assert!(!ids(&index.search(ws, &staff, &data[2], 3)).contains(&"c2".to_string()));
        // Dropping a third of the documents compacts and rebuilds the graph.
        index.remove_documents(&docs[..20]);
        assert!(
            index.settle(),
            "compaction drops the graph, settle rebuilds it"
        );
        assert_eq!(index.len(), 200);
        let hits = index.search(ws, &staff, &data[30], 3);
        assert!(hits.iter().all(|h| !docs[..20].contains(&h.document_id)));
        assert_eq!(hits[0].chunk_id, "c30");
    }

    #[test]
    fn a_saved_graph_is_reused_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dense");
        let ws = WorkspaceId::new();
        let docs: Vec<DocumentId> = (0..40).map(|_| DocumentId::new()).collect();
        let data = vectors(400, 24, 11);
        let first = DenseIndex::open(&path, CONFIG);
        first.upsert(items(ws, &data, &docs));
        assert!(first.settle());
        assert!(path.join("manifest.json").exists());
        let q = &data[17];
        let before = first.search(ws, &Principals::public(), q, 5);
        drop(first);

        // Restart: the same vectors come back from the store, one chunk changed.
        let second = DenseIndex::open(&path, CONFIG);
        assert!(second.is_empty(), "rows wait for their vectors");
        let mut again = items(ws, &data, &docs);
        again[399].vector = data[17].clone();
        second.upsert(again);
        assert!(!second.settle(), "the saved graph is reused, not rebuilt");
        assert!(second.uses_graph());
        assert_eq!(second.len(), 400);
        let after = second.search(ws, &Principals::public(), q, 6);
        let after_ids = ids(&after);
        for hit in &before {
            assert!(
                after_ids.contains(&hit.chunk_id),
                "{hit:?} lost: {after_ids:?}"
            );
        }
        assert!(
            after_ids.contains(&"c399".to_string()),
            "the changed vector is searchable"
        );
    }
}
