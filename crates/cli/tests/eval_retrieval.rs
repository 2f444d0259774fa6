//! `concierge eval retrieval` and `concierge ingest --resolved` as processes: every mode's
//! figures in the report, a TREC run file, and resolved questions voting in the reranker (each
//! query left out of its own vote). The retrieval part needs the local model files
//! (`CONCIERGE_MODEL_DIR`, set by `.ci/run`; fetched into it when missing).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use serde_json::{Value, json};
use std::path::Path;
use std::process::Command;

/// A small corpus whose procedure documents share no words with the questions that need them,
/// and paired questions (two customers asking the same thing in different words).
fn write_data(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let corpus = dir.join("corpus.jsonl");
    let docs = [
        (
            "lookup",
            "Internal: account records",
            "Use get_all_user_accounts_4411 with the user_id. It returns account_id, class, status, balance and date_opened.",
        ),
        (
            "replace",
            "Internal: card reissue",
            "Call reissue_card_2210 with the card_id and the delivery address on file. Reissue takes 5 business days.",
        ),
        (
            "fees",
            "Checking account fees",
            "The monthly maintenance fee is 12 dollars, waived with a balance above 1500 dollars.",
        ),
        (
            "travel",
            "Travel notices",
            "Tell us before you travel abroad so your card keeps working in other countries.",
        ),
        (
            "interest",
            "Savings interest",
            "Savings accounts earn 2.1 percent yearly interest, paid monthly.",
        ),
        (
            "dispute",
            "Disputing a charge",
            "If you do not recognise a charge, you can dispute it within 60 days of the statement.",
        ),
    ];
    let lines: Vec<String> = docs
        .iter()
        .map(|(id, title, content)| {
            json!({ "id": id, "title": title, "content": content }).to_string()
        })
        .collect();
    std::fs::write(&corpus, lines.join("\n")).expect("corpus");
    let qrels = dir.join("qrels.jsonl");
    let queries = [
        (
            "q1",
            "I want to know whether my checking account still pays a monthly fee, my balance is low",
            vec!["fees", "lookup"],
        ),
        (
            "q2",
            "Does my checking account charge me a monthly fee? My balance dropped",
            vec!["fees", "lookup"],
        ),
        (
            "q3",
            "My card broke in half and I need a new card sent to my home",
            vec!["replace"],
        ),
        (
            "q4",
            "Please send me a new card, mine broke",
            vec!["replace"],
        ),
        // Asked once, and answered by a page that shares no word with it: only its own label
        // could lift that page, and a query never votes for itself.
        ("q5", "How much interest do savings earn?", vec!["lookup"]),
    ];
    let lines: Vec<String> = queries
        .iter()
        .map(|(id, q, rel)| {
            json!({ "query_id": id, "query": q, "relevant_doc_ids": rel }).to_string()
        })
        .collect();
    std::fs::write(&qrels, lines.join("\n")).expect("qrels");
    (corpus, qrels)
}

fn eval(dir: &Path, corpus: &Path, qrels: &Path, extra: &[&str]) -> Value {
    let models = std::env::var("CONCIERGE_MODEL_DIR").expect("CONCIERGE_MODEL_DIR");
    let report = dir.join(format!("report-{}.json", extra.len()));
    let out = Command::new(env!("CARGO_BIN_EXE_concierge"))
        .args(["eval", "retrieval", "--corpus"])
        .arg(corpus)
        .arg("--qrels")
        .arg(qrels)
        .arg("--report")
        .arg(&report)
        .args(extra)
        .env("CONCIERGE__STORAGE__DATA_DIR", dir.join("data"))
        .env("CONCIERGE__KNOWLEDGE__EMBEDDINGS__MODEL_DIR", &models)
        .env("CONCIERGE__KNOWLEDGE__EMBEDDINGS__FETCH_MISSING", "true")
        .env("RUST_LOG", "warn")
        .output()
        .expect("run concierge eval retrieval");
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&report).expect("report")).expect("json")
}

fn ndcg(report: &Value, mode: &str) -> f64 {
    report["modes"][mode]["ndcg@10"].as_f64().expect("ndcg@10")
}

#[test]
#[cfg_attr(
    not(concierge_model_tests),
    ignore = "set CONCIERGE_MODEL_DIR (model files are fetched into it when missing)"
)]
fn every_mode_is_reported_and_resolved_questions_vote_without_seeing_their_own_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (corpus, qrels) = write_data(dir.path());
    let run = dir.path().join("runs");
    let plain = eval(
        dir.path(),
        &corpus,
        &qrels,
        &["--run", run.to_str().unwrap()],
    );
    for mode in ["bm25", "dense", "hybrid", "hybrid+rerank"] {
        for key in [
            "recall@5",
            "recall@10",
            "recall@20",
            "ndcg@10",
            "mrr",
            "latency_ms_p50",
            "latency_ms_p99",
        ] {
            let x = plain["modes"][mode][key].as_f64();
            assert!(x.is_some_and(|x| x >= 0.0), "{mode} {key}: {plain}");
        }
    }
    assert_eq!(plain["resolved_questions"], 0);
    // TREC runs, one file per mode: `query Q0 document rank score mode`, ranks from 1, scores
    // falling strictly with rank.
    for mode in ["bm25", "dense", "hybrid", "hybrid+rerank"] {
        let text = std::fs::read_to_string(run.join(format!("{mode}.run"))).expect("run file");
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        assert!(
            rows.iter()
                .all(|r| r.len() == 6 && r[1] == "Q0" && r[5] == mode),
            "{text}"
        );
        let q3: Vec<&Vec<&str>> = rows.iter().filter(|r| r[0] == "q3").collect();
        assert_eq!(q3[0][3], "1", "{mode}");
        let scores: Vec<f64> = q3.iter().map(|r| r[4].parse().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] > w[1]), "{mode}: {scores:?}");
    }

    // The qrels themselves as resolved questions: each query is left out of its own vote, so
    // q5 (asked once) gains nothing, and the paired questions lend each other their documents.
    let voted = eval(
        dir.path(),
        &corpus,
        &qrels,
        &["--resolved", qrels.to_str().unwrap()],
    );
    assert_eq!(voted["resolved_questions"], 5);
    assert_eq!(
        ndcg(&voted, "bm25"),
        ndcg(&plain, "bm25"),
        "BM25 stays BM25"
    );
    assert_eq!(ndcg(&voted, "hybrid"), ndcg(&plain, "hybrid"));
    assert!(
        ndcg(&voted, "hybrid+rerank") > ndcg(&plain, "hybrid+rerank"),
        "{voted}\n{plain}"
    );
    let q5 = |r: &Value| r["modes"]["hybrid+rerank"]["per_query_ndcg@10"]["q5"].as_f64();
    assert_eq!(q5(&voted), q5(&plain), "nobody else asked q5: {voted}");
    assert!(
        q5(&plain).unwrap() < 1.0,
        "the lookup page is not first without help: {plain}"
    );
    assert_eq!(
        voted["modes"]["hybrid+rerank"]["per_query_ndcg@10"]["q4"].as_f64(),
        Some(1.0),
        "q3 answered the same question with the reissue procedure: {voted}"
    );
}

#[test]
fn ingest_imports_resolved_questions_and_skips_unknown_documents() {
    let dir = tempfile::tempdir().expect("tempdir");
    let kb = dir.path().join("kb");
    std::fs::create_dir_all(&kb).expect("kb");
    std::fs::write(
        kb.join("returns.md"),
        "# Returns\n\nReturn within 30 days.\n",
    )
    .expect("doc");
    let resolved = dir.path().join("tickets.jsonl");
    std::fs::write(
        &resolved,
        [
            json!({ "id": "T-1", "question": "can I send it back?", "relevant_doc_ids": ["returns.md", "gone.md"] }),
            json!({ "id": "T-2", "question": "where is my parcel?", "relevant_doc_ids": ["gone.md"] }),
        ]
        .map(|v| v.to_string())
        .join("\n"),
    )
    .expect("tickets");
    let out = ingest(dir.path(), &kb, &resolved);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "1 resolved questions imported (2 documents not in the workspace skipped); 1 vote"
        ),
        "{stdout}"
    );
    // A malformed file is an error, not a silent zero.
    std::fs::write(&resolved, "{\"id\": \"T-3\", \"question\": \"x\"}\n").expect("write");
    let out = ingest(dir.path(), &kb, &resolved);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("relevant_doc_ids"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `concierge ingest KB --workspace acme --resolved FILE` on a BM25-only data folder in `dir`.
fn ingest(dir: &Path, kb: &Path, resolved: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_concierge"))
        .arg("ingest")
        .arg(kb)
        .args(["--workspace", "acme", "--resolved"])
        .arg(resolved)
        .env("CONCIERGE__STORAGE__DATA_DIR", dir.join("data"))
        .env("CONCIERGE__KNOWLEDGE__EMBEDDINGS__PROVIDER", "none")
        .env("RUST_LOG", "error")
        .output()
        .expect("run concierge ingest")
}
