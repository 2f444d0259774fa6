//! The BM25 index (tantivy). Derived data: it is rebuilt from the store whenever it disagrees
//! with it, so it can be deleted at any time.

use crate::text::{is_stopword, words};
use crate::{KnowledgeError, Result};
use concierge_core::{Chunk, Document, DocumentId, Principals, WorkspaceId};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;
use tantivy::collector::{Collector, Count, SegmentCollector, TopDocs};
use tantivy::directory::MmapDirectory;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions, Value,
};
use tantivy::tokenizer::{TextAnalyzer, TokenStream};
use tantivy::{
    DocId, Index, IndexReader, ReloadPolicy, Score, SegmentOrdinal, SegmentReader, TantivyDocument,
    Term, doc,
};

const TOKENIZER: &str = "en_stem";
const WRITER_MEMORY: usize = 50_000_000;
/// Field boosts: a match in a title or heading says more than one in body text.
const TITLE_BOOST: f32 = 2.0;
const HEADINGS_BOOST: f32 = 1.5;

#[derive(Clone, Copy)]
struct Fields {
    chunk_id: Field,
    document_id: Field,
    workspace_id: Field,
    /// One value per principal allowed to read the document.
    acl: Field,
    title: Field,
    headings: Field,
    body: Field,
    url: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqsAndPositions),
        )
        .set_stored();
    let fields = Fields {
        chunk_id: b.add_text_field("chunk_id", STRING | STORED),
        document_id: b.add_text_field("document_id", STRING | STORED),
        workspace_id: b.add_text_field("workspace_id", STRING | STORED),
        acl: b.add_text_field("acl", STRING),
        title: b.add_text_field("title", text.clone()),
        headings: b.add_text_field("headings", text.clone()),
        body: b.add_text_field("body", text),
        url: b.add_text_field("url", STORED),
    };
    (b.build(), fields)
}

/// A retrieved chunk with its BM25 score.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub chunk_id: String,
    pub document_id: String,
    pub title: String,
    pub url: Option<String>,
    pub heading_path: Vec<String>,
    pub text: String,
    pub score: f32,
}

/// A content word of a query: its stem, inverse document frequency, and weight in the BM25
/// query, `1 + ln(occurrences in the query)` (the query-term-frequency part of BM25: a word a
/// long query repeats matters more, with diminishing returns).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryTerm {
    pub stem: String,
    pub idf: f32,
    pub weight: f32,
}

/// The distribution of a query's BM25 scores over every chunk the asker may read in the
/// workspace (chunks that match no term score 0), for standardising scores across queries.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ScoreStats {
    pub readable: u64,
    pub mean: f32,
    pub std: f32,
}

impl ScoreStats {
    /// `(x - mean) / std` (0 when every score is the same).
    pub fn z(&self, x: f32) -> f32 {
        if self.std > 1e-9 {
            (x - self.mean) / self.std
        } else {
            0.0
        }
    }

    /// From a count and the sum and sum of squares of the non-zero scores.
    pub fn from_sums(readable: u64, sum: f64, sum_sq: f64) -> Self {
        if readable == 0 {
            return Self::default();
        }
        let n = readable as f64;
        let mean = sum / n;
        let var = (sum_sq / n - mean * mean).max(0.0);
        Self {
            readable,
            mean: mean as f32,
            std: var.sqrt() as f32,
        }
    }
}

/// Sums the scores of every match (count, Σ, Σ²).
struct SumCollector;

struct SegmentSums(u64, f64, f64);

impl Collector for SumCollector {
    type Fruit = (u64, f64, f64);
    type Child = SegmentSums;

    fn for_segment(&self, _: SegmentOrdinal, _: &SegmentReader) -> tantivy::Result<SegmentSums> {
        Ok(SegmentSums(0, 0.0, 0.0))
    }

    fn requires_scoring(&self) -> bool {
        true
    }

    fn merge_fruits(&self, parts: Vec<(u64, f64, f64)>) -> tantivy::Result<(u64, f64, f64)> {
        Ok(parts
            .into_iter()
            .fold((0, 0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1, a.2 + b.2)))
    }
}

impl SegmentCollector for SegmentSums {
    type Fruit = (u64, f64, f64);

    fn collect(&mut self, _doc: DocId, score: Score) {
        let s = f64::from(score);
        self.0 += 1;
        self.1 += s;
        self.2 += s * s;
    }

    fn harvest(self) -> (u64, f64, f64) {
        (self.0, self.1, self.2)
    }
}

pub struct KnowledgeIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    /// One writer at a time within this process; tantivy's lock file guards across processes.
    write_lock: Mutex<()>,
}

impl KnowledgeIndex {
    /// Opens the index in `dir`, creating it if needed. An index with an incompatible schema is
    /// wiped and recreated (it is rebuilt from the store afterwards).
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| KnowledgeError::Directory(format!("{}: {e}", dir.display())))?;
        let (schema, fields) = schema();
        let open = |dir: &Path| -> Result<Index> {
            let mmap =
                MmapDirectory::open(dir).map_err(|e| KnowledgeError::Directory(e.to_string()))?;
            Ok(Index::open_or_create(mmap, schema.clone())?)
        };
        let index = match open(dir) {
            Ok(index) => index,
            Err(err) => {
                tracing::warn!(%err, dir = %dir.display(), "search index unusable; recreating it");
                std::fs::remove_dir_all(dir)
                    .map_err(|e| KnowledgeError::Directory(e.to_string()))?;
                std::fs::create_dir_all(dir)
                    .map_err(|e| KnowledgeError::Directory(e.to_string()))?;
                open(dir)?
            }
        };
        Self::with_index(index, fields)
    }

    /// An index held in memory (evaluation, tests).
    pub fn in_memory() -> Result<Self> {
        let (schema, fields) = schema();
        Self::with_index(Index::create_in_ram(schema), fields)
    }

    fn with_index(index: Index, fields: Fields) -> Result<Self> {
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        let analyzer = index
            .tokenizers()
            .get(TOKENIZER)
            .ok_or_else(|| KnowledgeError::Directory(format!("tokenizer {TOKENIZER} missing")))?;
        Ok(Self {
            index,
            reader,
            fields,
            analyzer,
            write_lock: Mutex::new(()),
        })
    }

    /// Number of chunks currently searchable.
    pub fn num_chunks(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// Stems of `text` as the index sees them.
    pub fn stems(&self, text: &str) -> Vec<String> {
        let mut analyzer = self.analyzer.clone();
        let mut stream = analyzer.token_stream(text);
        let mut out = Vec::new();
        while stream.advance() {
            out.push(stream.token().text.clone());
        }
        out
    }

    /// The content words of a query (stopwords removed), stemmed and deduplicated, with IDF
    /// and weight (see [`QueryTerm`]).
    pub fn query_terms(&self, query: &str) -> Vec<QueryTerm> {
        let searcher = self.reader.searcher();
        let n = searcher.num_docs() as f32;
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out: Vec<QueryTerm> = Vec::new();
        for word in words(query) {
            if is_stopword(&word) {
                continue;
            }
            for stem in self.stems(&word) {
                if let Some(i) = seen.get(&stem) {
                    out[*i].weight += 1.0;
                    continue;
                }
                seen.insert(stem.clone(), out.len());
                let df = [self.fields.body, self.fields.title, self.fields.headings]
                    .iter()
                    .map(|f| {
                        searcher
                            .doc_freq(&Term::from_field_text(*f, &stem))
                            .unwrap_or(0)
                    })
                    .max()
                    .unwrap_or(0) as f32;
                let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
                // Occurrences for now; turned into the weight below.
                out.push(QueryTerm {
                    stem,
                    idf,
                    weight: 1.0,
                });
            }
        }
        for t in &mut out {
            t.weight = 1.0 + t.weight.ln();
        }
        out
    }

    /// BM25 search within one workspace, over the documents `principals` may read (filtered
    /// inside the index query). Returns at most `k` hits, best first.
    pub fn search(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        terms: &[QueryTerm],
        k: usize,
    ) -> Result<Vec<Hit>> {
        if terms.is_empty() || k == 0 {
            return Ok(Vec::new());
        }
        let query = self.query(workspace, principals, terms, None);
        let searcher = self.reader.searcher();
        let top = searcher.search(&query, &TopDocs::with_limit(k).order_by_score())?;
        let mut hits = Vec::with_capacity(top.len());
        for (score, address) in top {
            let d: TantivyDocument = searcher.doc(address)?;
            hits.push(self.hit_from_doc(&d, score));
        }
        Ok(hits)
    }

    /// The distribution of this query's scores over the chunks `principals` may read (one
    /// pass over every match, so it costs more than [`Self::search`] on long queries).
    pub fn score_stats(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        terms: &[QueryTerm],
    ) -> Result<ScoreStats> {
        let searcher = self.reader.searcher();
        let readable =
            searcher.search(&self.query(workspace, principals, &[], None), &Count)? as u64;
        if terms.is_empty() {
            return Ok(ScoreStats::from_sums(readable, 0.0, 0.0));
        }
        let (_, sum, sum_sq) = searcher.search(
            &self.query(workspace, principals, terms, None),
            &SumCollector,
        )?;
        Ok(ScoreStats::from_sums(readable, sum, sum_sq))
    }

    /// The BM25 scores of these chunks (those that match no term are absent).
    pub fn scores_for(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        terms: &[QueryTerm],
        chunk_ids: &[String],
    ) -> Result<HashMap<String, f32>> {
        if terms.is_empty() || chunk_ids.is_empty() {
            return Ok(HashMap::new());
        }
        let query = self.query(workspace, principals, terms, Some(chunk_ids));
        let searcher = self.reader.searcher();
        let top = searcher.search(
            &query,
            &TopDocs::with_limit(chunk_ids.len()).order_by_score(),
        )?;
        let mut out = HashMap::with_capacity(top.len());
        for (score, address) in top {
            let d: TantivyDocument = searcher.doc(address)?;
            if let Some(id) = d.get_first(self.fields.chunk_id).and_then(|v| v.as_str()) {
                out.insert(id.to_string(), score);
            }
        }
        Ok(out)
    }

    /// Workspace and access filter, the weighted terms (none: every readable chunk), and
    /// optionally a set of chunks.
    fn query(
        &self,
        workspace: WorkspaceId,
        principals: &Principals,
        terms: &[QueryTerm],
        only: Option<&[String]>,
    ) -> BooleanQuery {
        let f = self.fields;
        let mut should: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for t in terms {
            for (field, boost) in [
                (f.title, TITLE_BOOST),
                (f.headings, HEADINGS_BOOST),
                (f.body, 1.0),
            ] {
                let q = TermQuery::new(
                    Term::from_field_text(field, &t.stem),
                    IndexRecordOption::WithFreqs,
                );
                should.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(q), boost * t.weight)),
                ));
            }
        }
        let filter = TermQuery::new(
            Term::from_field_text(f.workspace_id, &workspace.to_string()),
            IndexRecordOption::Basic,
        );
        let readable: Vec<(Occur, Box<dyn Query>)> = principals
            .as_slice()
            .iter()
            .map(|p| {
                let q = TermQuery::new(Term::from_field_text(f.acl, p), IndexRecordOption::Basic);
                (Occur::Should, Box::new(q) as Box<dyn Query>)
            })
            .collect();
        let mut clauses = vec![
            (Occur::Must, Box::new(filter) as Box<dyn Query>),
            (Occur::Must, Box::new(BooleanQuery::new(readable))),
        ];
        if !should.is_empty() {
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(should))));
        }
        if let Some(ids) = only {
            let ids: Vec<(Occur, Box<dyn Query>)> = ids
                .iter()
                .map(|id| {
                    let q = TermQuery::new(
                        Term::from_field_text(f.chunk_id, id),
                        IndexRecordOption::Basic,
                    );
                    (Occur::Should, Box::new(q) as Box<dyn Query>)
                })
                .collect();
            clauses.push((Occur::Must, Box::new(BooleanQuery::new(ids))));
        }
        BooleanQuery::new(clauses)
    }

    fn hit_from_doc(&self, d: &TantivyDocument, score: f32) -> Hit {
        let f = self.fields;
        let get = |field: Field| {
            d.get_first(field)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let headings = get(f.headings);
        Hit {
            chunk_id: get(f.chunk_id),
            document_id: get(f.document_id),
            title: get(f.title),
            url: Some(get(f.url)).filter(|u| !u.is_empty()),
            heading_path: headings
                .split('\n')
                .filter(|h| !h.is_empty())
                .map(str::to_string)
                .collect(),
            text: get(f.body),
            score,
        }
    }

    fn tantivy_doc(&self, document: &Document, chunk: &Chunk) -> TantivyDocument {
        let f = self.fields;
        let mut d = doc!(
            f.chunk_id => chunk.id.clone(),
            f.document_id => document.id.to_string(),
            f.workspace_id => document.workspace_id.to_string(),
            f.title => document.title.clone(),
            f.headings => chunk.heading_path.join("\n"),
            f.body => chunk.text.clone(),
            f.url => document.url.clone().unwrap_or_default(),
        );
        for principal in &document.acl {
            d.add_text(f.acl, principal);
        }
        d
    }

    fn write<F>(&self, apply: F) -> Result<()>
    where
        F: FnOnce(&tantivy::IndexWriter<TantivyDocument>) -> Result<()>,
    {
        let _guard = self
            .write_lock
            .lock()
            .map_err(|_| KnowledgeError::Directory("index writer lock poisoned".into()))?;
        let mut writer = self.index.writer(WRITER_MEMORY)?;
        apply(&writer)?;
        writer.commit()?;
        writer.wait_merging_threads()?;
        self.reader.reload()?;
        Ok(())
    }

    /// Replaces the chunks of `upserts` and removes `deletes`, in one commit.
    pub fn apply(&self, upserts: &[(Document, Vec<Chunk>)], deletes: &[DocumentId]) -> Result<()> {
        if upserts.is_empty() && deletes.is_empty() {
            return Ok(());
        }
        self.write(|w| {
            for id in deletes.iter().chain(upserts.iter().map(|(d, _)| &d.id)) {
                w.delete_term(Term::from_field_text(
                    self.fields.document_id,
                    &id.to_string(),
                ));
            }
            for (document, chunks) in upserts {
                for chunk in chunks {
                    w.add_document(self.tantivy_doc(document, chunk))?;
                }
            }
            Ok(())
        })
    }

    /// Drops everything and indexes `all` (from the store).
    pub fn rebuild(&self, all: &[(Document, Chunk)]) -> Result<()> {
        self.write(|w| {
            w.delete_all_documents()?;
            for (document, chunk) in all {
                w.add_document(self.tantivy_doc(document, chunk))?;
            }
            Ok(())
        })
    }

    /// Rebuilds the index from the store when their chunk counts disagree (first start, crash
    /// between store and index writes, index deleted).
    pub async fn sync_with_store(&self, store: &dyn concierge_core::Store) -> Result<bool> {
        let stats = store.knowledge_stats(None).await?;
        if stats.chunks == self.num_chunks() {
            return Ok(false);
        }
        let all = store.all_chunks().await?;
        tracing::info!(chunks = all.len(), "rebuilding search index from the store");
        self.rebuild(&all)?;
        Ok(true)
    }

    /// The stored chunks with these ids (any workspace; callers filter by what they searched).
    pub fn chunks_by_id(&self, ids: &[String]) -> Result<HashMap<String, Hit>> {
        let f = self.fields;
        let searcher = self.reader.searcher();
        let mut out = HashMap::with_capacity(ids.len());
        for id in ids {
            let q = TermQuery::new(
                Term::from_field_text(f.chunk_id, id),
                IndexRecordOption::Basic,
            );
            for (_, address) in searcher.search(&q, &TopDocs::with_limit(1).order_by_score())? {
                let d: TantivyDocument = searcher.doc(address)?;
                out.insert(id.clone(), self.hit_from_doc(&d, 0.0));
            }
        }
        Ok(out)
    }

    /// For each hit, the set of query stems it contains (title, headings and text).
    pub fn matched_terms(&self, hit: &Hit, terms: &[QueryTerm]) -> HashSet<String> {
        let mut present: HashMap<String, ()> = HashMap::new();
        for text in [
            hit.title.as_str(),
            &hit.heading_path.join(" "),
            hit.text.as_str(),
        ] {
            for s in self.stems(text) {
                present.insert(s, ());
            }
        }
        terms
            .iter()
            .filter(|t| present.contains_key(&t.stem))
            .map(|t| t.stem.clone())
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use chrono::Utc;

    /// A one-chunk document for tests: `heading` may be empty, the url is derived from the title.
    pub(crate) fn test_doc(
        ws: WorkspaceId,
        title: &str,
        heading: &str,
        body: &str,
    ) -> (Document, Vec<Chunk>) {
        let d = Document {
            id: DocumentId::new(),
            workspace_id: ws,
            source: "test".into(),
            external_id: title.into(),
            title: title.into(),
            url: Some(format!("https://help.example/{}", title.replace(' ', "-"))),
            tags: vec![],
            content_hash: "h".into(),
            source_version: None,
            acl: vec![concierge_core::PUBLIC.to_string()],
            updated_at: Utc::now(),
        };
        let c = Chunk {
            id: Chunk::id_for(d.id, 0),
            document_id: d.id,
            ordinal: 0,
            heading_path: if heading.is_empty() {
                vec![]
            } else {
                vec![heading.into()]
            },
            text: body.into(),
        };
        (d, vec![c])
    }

    fn doc(ws: WorkspaceId, title: &str, body: &str) -> (Document, Vec<Chunk>) {
        test_doc(ws, title, "", body)
    }

    #[test]
    fn search_is_scoped_to_the_workspace_and_ranked() {
        let index = KnowledgeIndex::in_memory().expect("index");
        let a = WorkspaceId::new();
        let b = WorkspaceId::new();
        let docs = vec![
            doc(
                a,
                "Reset your password",
                "Open the sign-in page and choose Forgot password.",
            ),
            doc(
                a,
                "Shipping times",
                "Standard shipping takes 3-5 business days.",
            ),
            doc(
                b,
                "Other tenant password",
                "Secret password policy of tenant B.",
            ),
        ];
        index.apply(&docs, &[]).expect("apply");
        assert_eq!(index.num_chunks(), 3);
        let terms = index.query_terms("How do I reset my passwords?");
        assert_eq!(
            terms.iter().map(|t| t.stem.as_str()).collect::<Vec<_>>(),
            vec!["reset", "password"]
        );
        let hits = index
            .search(a, &Principals::public(), &terms, 5)
            .expect("search");
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].title, "Reset your password");
        assert_eq!(index.matched_terms(&hits[0], &terms).len(), 2);
        index.apply(&[], &[docs[0].0.id]).expect("delete");
        assert!(
            index
                .search(a, &Principals::public(), &terms, 5)
                .expect("search")
                .is_empty()
        );
    }

    #[test]
    fn documents_are_filtered_by_principals_inside_the_query() {
        let index = KnowledgeIndex::in_memory().expect("index");
        let ws = WorkspaceId::new();
        let mut internal = test_doc(
            ws,
            "Refund override",
            "",
            "Agents may override the refund limit up to $500.",
        );
        internal.0.acl = vec!["group:support".into()];
        let mut private = test_doc(
            ws,
            "Refund for Ada",
            "",
            "Ada's refund was approved on Monday.",
        );
        private.0.acl = vec!["user:ada".into()];
        let public = test_doc(
            ws,
            "Refund policy",
            "",
            "Refunds take 5 to 7 business days.",
        );
        index
            .apply(&[internal, private, public], &[])
            .expect("apply");
        let terms = index.query_terms("refund");
        let titles = |p: &Principals| -> Vec<String> {
            let mut t: Vec<String> = index
                .search(ws, p, &terms, 10)
                .expect("search")
                .into_iter()
                .map(|h| h.title)
                .collect();
            t.sort();
            t
        };
        assert_eq!(titles(&Principals::public()), vec!["Refund policy"]);
        assert_eq!(
            titles(&Principals::with(["user:ada".to_string()])),
            vec!["Refund for Ada", "Refund policy"]
        );
        assert_eq!(
            titles(&Principals::with([
                "group:support".to_string(),
                "user:bob".to_string()
            ])),
            vec!["Refund override", "Refund policy"]
        );
        // The filter runs inside the query: asking for the top 1 still returns a readable one.
        let top = index
            .search(ws, &Principals::public(), &terms, 1)
            .expect("search");
        assert_eq!(top[0].title, "Refund policy");
    }
}
