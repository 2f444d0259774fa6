//! The sync engine against a real (SQLite) store: incremental updates, deletions, failures that
//! keep the previous version, JSONL corpora with access lists.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use concierge_core::{Principals, Store};
use concierge_knowledge::source::{JsonlSource, KnowledgeSource};
use concierge_knowledge::{DirectorySource, KnowledgeIndex, sync_source};
use concierge_store::SqlStore;
use std::sync::Mutex;

async fn setup() -> (
    tempfile::TempDir,
    SqlStore,
    KnowledgeIndex,
    concierge_core::Workspace,
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqlStore::open_sqlite(&dir.path().join("db.sqlite"), 2)
        .await
        .expect("store");
    let index = KnowledgeIndex::open(&dir.path().join("index")).expect("index");
    let ws = store.ensure_workspace("w", "W", true).await.expect("ws");
    (dir, store, index, ws)
}

fn titles(
    index: &KnowledgeIndex,
    ws: &concierge_core::Workspace,
    p: &Principals,
    q: &str,
) -> Vec<String> {
    let terms = index.query_terms(q);
    let mut t: Vec<String> = index
        .search(ws.id, p, &terms, 20)
        .expect("search")
        .into_iter()
        .map(|h| h.title)
        .collect();
    t.sort();
    t.dedup();
    t
}

#[tokio::test]
async fn directory_sync_is_incremental_and_keeps_documents_that_fail_to_parse() {
    let (dir, store, index, ws) = setup().await;
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(&kb).expect("mkdir");
    std::fs::write(
        kb.join("a.md"),
        "---\ntitle: Alpha guide\n---\nAlpha widgets need charging.\n",
    )
    .expect("write");
    std::fs::write(
        kb.join("b.md"),
        "---\ntitle: Beta guide\n---\nBeta widgets need cleaning.\n",
    )
    .expect("write");
    std::fs::write(
        kb.join("c.txt"),
        "Gamma guide\n\nGamma widgets need love.\n",
    )
    .expect("write");
    let source = DirectorySource::new(&kb).expect("source");
    let calls = Mutex::new(Vec::new());
    let first = sync_source(&store, &index, None, ws.id, &source, &|done, total| {
        calls.lock().expect("lock").push((done, total))
    })
    .await
    .expect("sync");
    assert_eq!(
        (first.added, first.updated, first.unchanged, first.deleted),
        (3, 0, 0, 0)
    );
    assert_eq!(
        calls.lock().expect("lock").last(),
        Some(&(3, 3)),
        "progress reaches the total"
    );

    // Change one, delete one, break one: only the changed one is rewritten.
    std::fs::write(
        kb.join("a.md"),
        "---\ntitle: Alpha guide\n---\nAlpha widgets need charging every week.\n",
    )
    .expect("write");
    std::fs::remove_file(kb.join("b.md")).expect("rm");
    std::fs::write(kb.join("c.txt"), [0xff, 0xfe, 0x00]).expect("write");
    let second = sync_source(&store, &index, None, ws.id, &source, &|_, _| {})
        .await
        .expect("sync");
    assert_eq!(
        (
            second.added,
            second.updated,
            second.unchanged,
            second.deleted
        ),
        (0, 1, 0, 1)
    );
    assert_eq!(second.errors.len(), 1, "{:?}", second.errors);
    let all = titles(&index, &ws, &Principals::public(), "widgets");
    assert_eq!(
        all,
        vec!["Alpha guide", "Gamma guide"],
        "deleted doc gone, broken doc kept"
    );
    assert_eq!(
        titles(&index, &ws, &Principals::public(), "every week"),
        vec!["Alpha guide"]
    );

    let third = sync_source(&store, &index, None, ws.id, &source, &|_, _| {})
        .await
        .expect("sync");
    assert_eq!((third.added, third.updated, third.unchanged), (0, 0, 1));
    assert_eq!(
        store
            .knowledge_stats(Some(ws.id))
            .await
            .expect("stats")
            .chunks,
        index.num_chunks()
    );
}

#[tokio::test]
async fn jsonl_corpora_carry_access_lists_into_the_index() {
    let (dir, store, index, ws) = setup().await;
    let path = dir.path().join("corpus.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"id": "p1", "title": "Public refund policy", "content": "Refunds take 5 to 7 business days."}"#, "\n",
            r#"{"id": "s1", "title": "Support refund override", "content": "Agents may override refund limits.", "acl": ["group:support"]}"#, "\n",
            "not json\n",
            r#"{"id": 7, "title": "", "content": "Numeric ids are fine; refund notes.", "url": "https://x/7", "version": 3}"#, "\n",
        ),
    )
    .expect("write");
    let source = JsonlSource::new(&path).expect("source");
    assert!(source.id().starts_with("jsonl:"));
    let report = sync_source(&store, &index, None, ws.id, &source, &|_, _| {})
        .await
        .expect("sync");
    assert_eq!(report.added, 3);
    assert_eq!(report.errors.len(), 1);
    assert!(
        report.errors[0].starts_with("line 3"),
        "{:?}",
        report.errors
    );
    assert_eq!(
        titles(&index, &ws, &Principals::public(), "refund"),
        vec!["7", "Public refund policy"]
    );
    assert_eq!(
        titles(
            &index,
            &ws,
            &Principals::with(["group:support".to_string()]),
            "refund"
        ),
        vec!["7", "Public refund policy", "Support refund override"]
    );
    let docs = store.documents(ws.id, &source.id()).await.expect("docs");
    let seven = docs.iter().find(|d| d.external_id == "7").expect("doc 7");
    assert_eq!(seven.source_version.as_deref(), Some("3"));
    assert_eq!(seven.url.as_deref(), Some("https://x/7"));
}

/// A test double for the embedding model: words hashed into 64 buckets, normalized. Similar word
/// sets give similar vectors, which is all these tests need.
struct BagOfWords {
    calls: std::sync::atomic::AtomicUsize,
    texts: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl concierge_knowledge::embed::Embedder for BagOfWords {
    fn model_id(&self) -> &str {
        "test-bag-of-words"
    }
    fn dims(&self) -> usize {
        64
    }
    async fn embed(
        &self,
        texts: &[String],
    ) -> Result<Vec<Vec<f32>>, concierge_knowledge::embed::EmbedError> {
        use std::sync::atomic::Ordering;
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.texts.fetch_add(texts.len(), Ordering::SeqCst);
        Ok(texts
            .iter()
            .map(|t| {
                let mut v = vec![0f32; 64];
                for w in t
                    .to_lowercase()
                    .split(|c: char| !c.is_alphanumeric())
                    .filter(|w| w.len() > 2)
                {
                    let h = w
                        .bytes()
                        .fold(7u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
                    v[(h % 64) as usize] += 1.0;
                }
                let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
                v.iter().map(|x| x / n).collect()
            })
            .collect())
    }
}

#[tokio::test]
async fn vectors_follow_the_sync_and_come_from_the_cache_after_a_restart() {
    use concierge_knowledge::dense::DenseIndex;
    use concierge_knowledge::ingest::{Vectors, load_dense};
    use concierge_knowledge::pipeline::{Mode, Pipeline, PipelineConfig};
    use std::sync::atomic::Ordering;
    let (dir, store, index, ws) = setup().await;
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(&kb).expect("mkdir");
    std::fs::write(kb.join("a.md"), "---\ntitle: Thermostat wiring\n---\n## C wire\nThe thermostat needs a common wire for power.\n\n## Batteries\nNo batteries are needed.\n").expect("write");
    std::fs::write(kb.join("b.md"), "---\ntitle: Staff notes\nacl: group:staff\n---\nThermostat returns are inspected by staff.\n").expect("write");
    let embedder = BagOfWords {
        calls: Default::default(),
        texts: Default::default(),
    };
    let dense = DenseIndex::new();
    let vectors = Vectors {
        embedder: &embedder,
        dense: &dense,
    };
    let source = DirectorySource::new(&kb).expect("source");
    sync_source(&store, &index, Some(vectors), ws.id, &source, &|_, _| {})
        .await
        .expect("sync");
    assert_eq!(dense.len() as u64, index.num_chunks());
    let embedded = embedder.texts.load(Ordering::SeqCst);
    assert_eq!(embedded, 3);

    // Shrinking a document drops its stale vectors.
    std::fs::write(
        kb.join("a.md"),
        "---\ntitle: Thermostat wiring\n---\nThe thermostat needs a common wire for power.\n",
    )
    .expect("write");
    sync_source(&store, &index, Some(vectors), ws.id, &source, &|_, _| {})
        .await
        .expect("sync");
    assert_eq!(dense.len() as u64, index.num_chunks());

    // A restart rebuilds the dense index from the cache without embedding again.
    let before = embedder.texts.load(Ordering::SeqCst);
    let fresh = DenseIndex::new();
    load_dense(
        &store,
        Vectors {
            embedder: &embedder,
            dense: &fresh,
        },
    )
    .await
    .expect("load");
    assert_eq!(fresh.len(), dense.len());
    assert_eq!(
        embedder.texts.load(Ordering::SeqCst),
        before,
        "everything came from the cache"
    );

    // The pipeline: every mode answers, and the staff-only document stays hidden from the public.
    let pipeline = Pipeline {
        index: std::sync::Arc::new(index),
        dense: std::sync::Arc::new(fresh),
        embedder: Some(std::sync::Arc::new(embedder)),
        reranker: Default::default(),
        cross_encoder: None,
        config: PipelineConfig::default(),
        resolved: Default::default(),
    };
    for mode in Mode::ALL {
        let r = pipeline
            .retrieve(
                ws.id,
                &Principals::public(),
                "does the thermostat need a common wire",
                5,
                mode,
            )
            .await
            .expect("retrieve");
        assert!(!r.hits.is_empty(), "{}", mode.name());
        assert_eq!(r.hits[0].title, "Thermostat wiring", "{}", mode.name());
        assert!(
            r.hits.iter().all(|h| h.title != "Staff notes"),
            "{}: {:?}",
            mode.name(),
            r.hits
        );
    }
    let staff = pipeline
        .retrieve(
            ws.id,
            &Principals::with(["group:staff".to_string()]),
            "thermostat returns inspected",
            5,
            Mode::Dense,
        )
        .await
        .expect("retrieve");
    assert!(
        staff.hits.iter().any(|h| h.title == "Staff notes"),
        "staff see staff documents: {:?}",
        staff.hits
    );
    let full = pipeline
        .retrieve(
            ws.id,
            &Principals::public(),
            "thermostat wire",
            5,
            Mode::HybridRerank,
        )
        .await
        .expect("retrieve");
    assert!(
        !full.bm25.is_empty()
            && !full.dense.is_empty()
            && !full.fused.is_empty()
            && !full.reranked.is_empty()
    );

    // A cross-encoder reorders the top of the reranked list (here one preferring short passages),
    // sees only what the asker may read, and its order is the final one.
    let crossed = Pipeline {
        cross_encoder: Some(std::sync::Arc::new(ShortestFirst)),
        ..pipeline
    }
    .retrieve(
        ws.id,
        &Principals::public(),
        "thermostat wire",
        5,
        Mode::HybridRerank,
    )
    .await
    .expect("retrieve");
    assert!(!crossed.cross_encoded.is_empty());
    let order: Vec<&str> = crossed.hits.iter().map(|h| h.chunk_id.as_str()).collect();
    let expected: Vec<&str> = crossed
        .cross_encoded
        .iter()
        .take(order.len())
        .map(|c| c.chunk_id.as_str())
        .collect();
    assert_eq!(order, expected);
    let scores: Vec<f32> = crossed.cross_encoded.iter().map(|c| c.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
    assert!(crossed.hits.iter().all(|h| h.title != "Staff notes"));
}

struct ShortestFirst;

#[async_trait::async_trait]
impl concierge_knowledge::rerank::CrossEncoder for ShortestFirst {
    fn model_id(&self) -> &str {
        "test:shortest-first"
    }

    async fn score(
        &self,
        _query: &str,
        passages: &[String],
    ) -> Result<Vec<f32>, concierge_knowledge::embed::EmbedError> {
        assert!(passages.iter().all(|p| !p.contains("Staff notes")));
        Ok(passages.iter().map(|p| -(p.len() as f32)).collect())
    }
}

#[tokio::test]
async fn resolved_questions_vote_for_documents_the_asker_may_read() {
    use concierge_knowledge::KnowledgeBase;
    use concierge_knowledge::pipeline::Mode;
    use std::sync::Arc;
    let (dir, store, index, ws) = setup().await;
    let kb_dir = dir.path().join("kb");
    std::fs::create_dir_all(&kb_dir).expect("mkdir");
    std::fs::write(
        kb_dir.join("a.md"),
        "---\ntitle: Thermostat wiring\n---\nThe thermostat needs a common wire for power.\n",
    )
    .expect("write");
    std::fs::write(
        kb_dir.join("r.md"),
        "---\ntitle: Returns\n---\nSend a product back within 30 days for a full refund.\n",
    )
    .expect("write");
    std::fs::write(kb_dir.join("s.md"), "---\ntitle: Staff notes\nacl: group:staff\n---\nReturned thermostats are inspected by staff.\n").expect("write");
    let store: Arc<dyn Store> = Arc::new(store);
    let kb = KnowledgeBase::new(
        store.clone(),
        Arc::new(index),
        Some(Arc::new(BagOfWords {
            calls: Default::default(),
            texts: Default::default(),
        })),
    );
    // Resolved questions written before their documents exist vote once they are synced.
    for (key, question, documents) in [
        (
            "T-1",
            "my thermostat stopped working, can I send it back for a refund",
            vec!["r.md", "s.md"],
        ),
        (
            "T-2",
            "thermostat stopped working, I want a refund",
            vec!["r.md"],
        ),
        (
            "T-3",
            "can I send back a thermostat that stopped working",
            vec!["r.md"],
        ),
    ] {
        store
            .put_resolved_question(&concierge_core::ResolvedQuestion {
                workspace_id: ws.id,
                key: key.into(),
                question: question.into(),
                documents: documents.into_iter().map(String::from).collect(),
                origin: "import".into(),
                updated_at: chrono::Utc::now(),
            })
            .await
            .expect("put");
    }
    let question = "the thermostat stopped working, what now";
    let public = Principals::public();
    let titles_for = |r: &concierge_knowledge::pipeline::Retrieval| -> Vec<String> {
        r.hits.iter().map(|h| h.title.clone()).collect()
    };
    kb.pipeline.set_resolved(
        ws.id,
        concierge_knowledge::resolved::ResolvedQuestions::default(),
    );
    assert_eq!(
        kb.refresh_resolved(ws.id).await.expect("refresh"),
        0,
        "no documents yet"
    );
    let source = DirectorySource::new(&kb_dir).expect("source");
    kb.sync(ws.id, &source, &|_, _| {}).await.expect("sync");
    let docs = store.workspace_documents(ws.id).await.expect("docs");
    let id_of = |title: &str| {
        docs.iter()
            .find(|d| d.title == title)
            .map(|d| d.id.to_string())
            .expect("document")
    };
    let with_votes = kb
        .retrieve_with(ws.id, &public, question, 5, Mode::HybridRerank)
        .await
        .expect("retrieve");
    assert_eq!(
        titles_for(&with_votes)[0],
        "Returns",
        "{:?}",
        with_votes.votes
    );
    assert_eq!(
        with_votes.votes.len(),
        1,
        "only what the asker may read: {:?}",
        with_votes.votes
    );
    assert_eq!(with_votes.votes[0].0, id_of("Returns"));
    assert!(titles_for(&with_votes).iter().all(|t| t != "Staff notes"));
    let staff = kb
        .retrieve_with(
            ws.id,
            &Principals::with(["group:staff".to_string()]),
            question,
            5,
            Mode::HybridRerank,
        )
        .await
        .expect("retrieve");
    assert!(staff.votes.iter().any(|(d, _)| *d == id_of("Staff notes")));

    // Another replica (its own indexes, the same store) sees questions written elsewhere at its
    // next version check, and their removal too.
    let replica = KnowledgeBase::new(
        store.clone(),
        Arc::new(KnowledgeIndex::in_memory().expect("index")),
        Some(Arc::new(BagOfWords {
            calls: Default::default(),
            texts: Default::default(),
        })),
    )
    .with_resolved_check(std::time::Duration::ZERO);
    replica.load().await.expect("load");
    let seen = replica
        .retrieve_with(ws.id, &public, question, 5, Mode::HybridRerank)
        .await
        .expect("retrieve");
    assert_eq!(titles_for(&seen)[0], "Returns", "{:?}", seen.votes);
    // Replaced elsewhere with the same count and an older timestamp (a replica whose clock is
    // behind): still noticed.
    store
        .put_resolved_question(&concierge_core::ResolvedQuestion {
            workspace_id: ws.id,
            key: "T-2".into(),
            question: "where do I find my invoices".into(),
            documents: vec!["a.md".into()],
            origin: "import".into(),
            updated_at: chrono::Utc::now() - chrono::Duration::hours(1),
        })
        .await
        .expect("replace");
    let fewer = replica
        .retrieve_with(ws.id, &public, question, 5, Mode::HybridRerank)
        .await
        .expect("retrieve");
    let returns_vote = |r: &concierge_knowledge::pipeline::Retrieval| {
        r.votes
            .iter()
            .find(|(d, _)| *d == id_of("Returns"))
            .map(|(_, v)| *v)
            .unwrap_or(0.0)
    };
    assert!(
        returns_vote(&fewer) < returns_vote(&seen),
        "{:?} then {:?}",
        seen.votes,
        fewer.votes
    );

    // Without the resolved questions, the same search does not put Returns first.
    for key in ["T-1", "T-2", "T-3"] {
        assert!(
            store
                .delete_resolved_question(ws.id, key)
                .await
                .expect("delete")
        );
    }
    assert_eq!(kb.refresh_resolved(ws.id).await.expect("refresh"), 0);
    let without = kb
        .retrieve_with(ws.id, &public, question, 5, Mode::HybridRerank)
        .await
        .expect("retrieve");
    assert!(without.votes.is_empty());
    assert_ne!(titles_for(&without)[0], "Returns", "{:?}", without.hits);
}
