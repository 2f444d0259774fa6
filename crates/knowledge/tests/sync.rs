//! The sync engine against a real (SQLite) store: incremental updates, deletions, failures that
//! keep the previous version, JSONL corpora with access lists.

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
    let first = sync_source(&store, &index, ws.id, &source, &|done, total| {
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
    let second = sync_source(&store, &index, ws.id, &source, &|_, _| {})
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

    let third = sync_source(&store, &index, ws.id, &source, &|_, _| {})
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
    let report = sync_source(&store, &index, ws.id, &source, &|_, _| {})
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
