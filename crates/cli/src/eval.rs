//! `concierge eval evidence`: measures the answer / no-answer decision on a knowledge base with
//! answerable and unanswerable questions, and chooses the evidence threshold on that data
//! (with k-fold cross-validation to show how well the choice generalises).

use anyhow::{Context, bail};
use concierge_core::WorkspaceId;
use concierge_knowledge::KnowledgeIndex;
use concierge_knowledge::answer::evidence as passage_evidence;
use serde::Deserialize;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct EvidenceArgs {
    /// Knowledge-base directory (Markdown, HTML, text).
    #[arg(long)]
    kb: PathBuf,
    /// JSONL: {"question": …, "article": "<file stem>"} (article optional; enables retrieval hit rates).
    #[arg(long)]
    answerable: PathBuf,
    /// JSONL: {"question": …}
    #[arg(long)]
    unanswerable: PathBuf,
    /// Threshold to report operating figures for (default: the configured default).
    #[arg(long)]
    threshold: Option<f32>,
    #[arg(long, default_value_t = 5)]
    folds: usize,
    #[arg(long, default_value_t = 8)]
    top_k: usize,
    /// Write the figures as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(Deserialize)]
struct Row {
    question: String,
    article: Option<String>,
}

fn read_jsonl(path: &Path) -> anyhow::Result<Vec<Row>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| {
                format!(
                    "{}:{}: not a {{\"question\": …}} object",
                    path.display(),
                    i + 1
                )
            })
        })
        .collect()
}

/// Area under the ROC curve (probability a random positive outscores a random negative).
pub fn auroc(pos: &[f32], neg: &[f32]) -> f64 {
    if pos.is_empty() || neg.is_empty() {
        return f64::NAN;
    }
    let mut wins = 0.0;
    for p in pos {
        for n in neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (pos.len() * neg.len()) as f64
}

/// Balanced accuracy of "answer when score >= t".
fn balanced_accuracy(pos: &[f32], neg: &[f32], t: f32) -> f64 {
    let tpr = pos.iter().filter(|s| **s >= t).count() as f64 / pos.len().max(1) as f64;
    let tnr = neg.iter().filter(|s| **s < t).count() as f64 / neg.len().max(1) as f64;
    (tpr + tnr) / 2.0
}

/// The threshold with the best balanced accuracy (midpoints between observed scores; ties go
/// to the lower threshold, which answers more).
pub fn best_threshold(pos: &[f32], neg: &[f32]) -> f32 {
    let mut scores: Vec<f32> = pos.iter().chain(neg).copied().collect();
    scores.sort_by(|a, b| a.total_cmp(b));
    scores.dedup();
    let mut candidates = vec![0.0];
    candidates.extend(scores.windows(2).map(|w| (w[0] + w[1]) / 2.0));
    candidates.push(1.0);
    let mut best = (f64::MIN, 0.0f32);
    for t in candidates {
        let acc = balanced_accuracy(pos, neg, t);
        if acc > best.0 + 1e-12 {
            best = (acc, t);
        }
    }
    best.1
}

pub async fn evidence_impl(args: &EvidenceArgs) -> anyhow::Result<serde_json::Value> {
    let source = concierge_knowledge::source::open_path(&args.kb)?;
    let snapshot = source.snapshot().await?;
    if snapshot.documents.is_empty() {
        bail!("{} has no documents", args.kb.display());
    }
    for (id, why) in &snapshot.failed {
        eprintln!("skipped {id}: {why}");
    }
    let workspace = WorkspaceId::new();
    let index = KnowledgeIndex::in_memory()?;
    let documents = concierge_knowledge::ingest::index_snapshot(
        &index,
        None,
        None,
        workspace,
        &source.id(),
        &snapshot,
    )
    .await?;
    let stem_of = |doc_id: &str| -> String {
        documents
            .iter()
            .find(|d| d.id.to_string() == doc_id)
            .and_then(|d| {
                Path::new(&d.external_id)
                    .file_stem()
                    .map(|s| s.to_string_lossy().to_string())
            })
            .unwrap_or_default()
    };
    let principals = concierge_core::Principals::public();
    let score = |q: &str| -> anyhow::Result<(f32, Vec<String>)> {
        let terms = index.query_terms(q);
        let hits = index.search(workspace, &principals, &terms, args.top_k)?;
        let e = hits
            .first()
            .map_or(0.0, |h| passage_evidence(&index, &terms, h));
        let mut articles = Vec::new();
        for h in &hits {
            let s = stem_of(&h.document_id);
            if !articles.contains(&s) {
                articles.push(s);
            }
        }
        Ok((e, articles))
    };
    let answerable = read_jsonl(&args.answerable)?;
    let unanswerable = read_jsonl(&args.unanswerable)?;
    let mut pos = Vec::new();
    let (mut hit1, mut hit3, mut labelled) = (0, 0, 0);
    for row in &answerable {
        let (e, articles) = score(&row.question)?;
        pos.push(e);
        if let Some(a) = &row.article {
            labelled += 1;
            hit1 += usize::from(articles.first() == Some(a));
            hit3 += usize::from(articles.iter().take(3).any(|x| x == a));
        }
    }
    let mut neg = Vec::new();
    for row in &unanswerable {
        neg.push(score(&row.question)?.0);
    }
    // k-fold: choose on k-1 folds, measure on the held-out one.
    let k = args.folds.max(2);
    let mut cv = Vec::new();
    let mut fold_thresholds = Vec::new();
    for f in 0..k {
        let split = |v: &[f32]| -> (Vec<f32>, Vec<f32>) {
            let (mut train, mut test) = (Vec::new(), Vec::new());
            for (i, s) in v.iter().enumerate() {
                if i % k == f {
                    test.push(*s)
                } else {
                    train.push(*s)
                }
            }
            (train, test)
        };
        let (ptr, pte) = split(&pos);
        let (ntr, nte) = split(&neg);
        let t = best_threshold(&ptr, &ntr);
        fold_thresholds.push(t);
        cv.push(balanced_accuracy(&pte, &nte, t));
    }
    let cv_mean = cv.iter().sum::<f64>() / cv.len() as f64;
    let chosen = best_threshold(&pos, &neg);
    let operating = args
        .threshold
        .unwrap_or(concierge_config::DEFAULT_MIN_EVIDENCE as f32);
    let answered = pos.iter().filter(|s| **s >= operating).count() as f64 / pos.len().max(1) as f64;
    let false_answers =
        neg.iter().filter(|s| **s >= operating).count() as f64 / neg.len().max(1) as f64;
    Ok(serde_json::json!({
        "documents": documents.len(),
        "answerable": pos.len(),
        "unanswerable": neg.len(),
        "auroc": auroc(&pos, &neg),
        "best_threshold": chosen,
        "best_balanced_accuracy": balanced_accuracy(&pos, &neg, chosen),
        "cv_folds": k,
        "cv_thresholds": fold_thresholds,
        "cv_balanced_accuracy": cv_mean,
        "operating_threshold": operating,
        "operating_answer_rate": answered,
        "operating_false_answer_rate": false_answers,
        "operating_balanced_accuracy": balanced_accuracy(&pos, &neg, operating),
        "retrieval_labelled": labelled,
        "retrieval_hit_at_1": hit1 as f64 / labelled.max(1) as f64,
        "retrieval_hit_at_3": hit3 as f64 / labelled.max(1) as f64,
    }))
}

pub async fn evidence(args: EvidenceArgs) -> anyhow::Result<()> {
    let report = evidence_impl(&args).await?;
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    println!(
        "documents={} answerable={} unanswerable={}",
        report["documents"], report["answerable"], report["unanswerable"]
    );
    println!("auroc={:.3}", f("auroc"));
    println!(
        "best_threshold={:.3} balanced_accuracy={:.3}",
        f("best_threshold"),
        f("best_balanced_accuracy")
    );
    println!(
        "cv{}_balanced_accuracy={:.3} fold_thresholds={}",
        report["cv_folds"],
        f("cv_balanced_accuracy"),
        report["cv_thresholds"]
    );
    println!(
        "at threshold {:.3}: answer_rate={:.3} false_answer_rate={:.3} balanced_accuracy={:.3}",
        f("operating_threshold"),
        f("operating_answer_rate"),
        f("operating_false_answer_rate"),
        f("operating_balanced_accuracy")
    );
    if report["retrieval_labelled"].as_u64().unwrap_or(0) > 0 {
        println!(
            "retrieval hit@1={:.3} hit@3={:.3}",
            f("retrieval_hit_at_1"),
            f("retrieval_hit_at_3")
        );
    }
    if let Some(path) = &args.report {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_and_threshold_on_separable_scores() {
        let pos = [0.9, 0.8, 0.7];
        let neg = [0.1, 0.2, 0.6];
        assert_eq!(auroc(&pos, &neg), 1.0);
        let t = best_threshold(&pos, &neg);
        assert!(t > 0.6 && t < 0.7, "{t}");
        assert_eq!(balanced_accuracy(&pos, &neg, t), 1.0);
        assert_eq!(auroc(&neg, &pos), 0.0);
    }
}

// ---------------------------------------------------------------------------------------------
// `concierge eval retrieval`

#[derive(clap::Args)]
pub struct RetrievalArgs {
    /// Corpus JSONL: {"id", "title", "content", "url"?, "acl"?}.
    #[arg(long)]
    corpus: PathBuf,
    /// Qrels JSONL: a query id (`query_id` or `task_id`), the query text (`query` or
    /// `query_scenario`) and `relevant_doc_ids` (a JSON array, or a string holding a list).
    #[arg(long)]
    qrels: PathBuf,
    /// Write the figures as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Weight of the dense ranking in the fusion (BM25's is 1).
    #[arg(long, default_value_t = concierge_knowledge::pipeline::PipelineConfig::default().dense_weight)]
    dense_weight: f32,
    /// Reranker weights of the standardised BM25 and dense scores (default: the shipped ones).
    #[arg(long, value_parser = parse_weights)]
    rerank_weights: Option<[f32; 2]>,
    /// Resolved questions (past questions with the documents that answered them), in the same
    /// format as `--qrels`: their votes join the reranker. A query never learns from itself: a
    /// resolved question with the query's id or text does not vote for it, so the qrels file
    /// itself can be passed to measure leave-one-out.
    #[arg(long)]
    resolved: Option<PathBuf>,
    /// Write each mode's ranking as a TREC run file in this folder (`bm25.run`, `dense.run`,
    /// `hybrid.run`, `hybrid+rerank.run`; lines `query Q0 document rank score mode`), for
    /// trec_eval and similar tools. A document's score is its best chunk's, lowered where needed
    /// so that scores fall strictly with rank (the reranked top and the fused tail of
    /// `hybrid+rerank` are on different scales); whitespace in ids becomes `_`.
    #[arg(long)]
    run: Option<PathBuf>,
}

/// One query's TREC run lines: documents in rank order with their scores made strictly
/// decreasing (trec_eval orders by score, not by the rank column).
fn trec_lines(query: &str, ranked: &[(String, f32)], tag: &str) -> String {
    let clean = |s: &str| s.split_whitespace().collect::<Vec<_>>().join("_");
    let mut out = String::new();
    let mut previous = f64::INFINITY;
    for (rank, (doc, score)) in ranked.iter().enumerate() {
        let score = f64::from(*score).min(previous - 1e-4);
        previous = score;
        out.push_str(&format!(
            "{} Q0 {} {} {score:.6} {tag}\n",
            clean(query),
            clean(doc),
            rank + 1
        ));
    }
    out
}

/// `BM25,DENSE`, e.g. `0.5,0.5`.
fn parse_weights(s: &str) -> Result<[f32; 2], String> {
    let parts: Vec<f32> = s
        .split(',')
        .map(|p| p.trim().parse::<f32>().map_err(|e| format!("{p:?}: {e}")))
        .collect::<Result<_, _>>()?;
    match parts.as_slice() {
        [b, d] => Ok([*b, *d]),
        _ => Err("two weights, BM25 then dense, e.g. 0.5,0.5".into()),
    }
}

#[derive(Debug)]
pub struct Query {
    pub id: String,
    pub text: String,
    pub relevant: Vec<String>,
}

fn string_field(v: &serde_json::Value, names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| match &v[*n] {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(x) => Some(x.to_string()),
        _ => None,
    })
}

/// `relevant_doc_ids` as a JSON array, or as a string holding a list (`"['a', 'b']"`).
fn id_list(v: &serde_json::Value) -> Vec<String> {
    match v {
        serde_json::Value::Array(items) => items
            .iter()
            .map(|i| match i {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        serde_json::Value::String(s) => {
            if let Ok(serde_json::Value::Array(items)) =
                serde_json::from_str::<serde_json::Value>(s)
            {
                return id_list(&serde_json::Value::Array(items));
            }
            s.trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|p| p.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
                .filter(|p| !p.is_empty())
                .collect()
        }
        _ => Vec::new(),
    }
}

pub fn read_qrels(path: &Path) -> anyhow::Result<Vec<Query>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not JSON", path.display(), n + 1))?;
        let id = string_field(&v, &["query_id", "task_id", "id"])
            .unwrap_or_else(|| format!("line-{}", n + 1));
        let text = string_field(&v, &["query", "query_scenario", "question", "text"])
            .with_context(|| {
                format!(
                    "{}:{}: no `query` or `query_scenario`",
                    path.display(),
                    n + 1
                )
            })?;
        let relevant = id_list(&v["relevant_doc_ids"]);
        if relevant.is_empty() {
            bail!("{}:{}: no `relevant_doc_ids`", path.display(), n + 1);
        }
        out.push(Query { id, text, relevant });
    }
    Ok(out)
}

pub struct ResolvedImport {
    pub questions: usize,
    pub unknown_documents: usize,
}

/// Imports a qrels-format file as the workspace's resolved questions (origin `import`, keyed by
/// the query id). Documents the workspace does not have are skipped and counted; a question left
/// with none is not imported.
pub async fn import_resolved(
    store: &dyn concierge_core::Store,
    workspace: WorkspaceId,
    path: &Path,
) -> anyhow::Result<ResolvedImport> {
    let known = concierge_knowledge::resolved::nameable_documents(store, workspace).await?;
    let mut out = ResolvedImport {
        questions: 0,
        unknown_documents: 0,
    };
    for q in read_qrels(path)? {
        let (documents, unknown): (Vec<String>, Vec<String>) =
            q.relevant.into_iter().partition(|d| known.contains(d));
        out.unknown_documents += unknown.len();
        if documents.is_empty() {
            continue;
        }
        store
            .put_resolved_question(&concierge_core::ResolvedQuestion {
                workspace_id: workspace,
                key: q.id,
                question: q.text,
                documents,
                origin: "import".into(),
                updated_at: chrono::Utc::now(),
            })
            .await?;
        out.questions += 1;
    }
    Ok(out)
}

/// Ranking metrics of one query, given the ranked document ids.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct QueryMetrics {
    pub recall5: f64,
    pub recall10: f64,
    pub recall20: f64,
    pub ndcg10: f64,
    pub mrr: f64,
}

pub fn query_metrics(ranked: &[String], relevant: &[String]) -> QueryMetrics {
    let rel = |d: &String| relevant.contains(d);
    let recall = |k: usize| {
        ranked.iter().take(k).filter(|d| rel(d)).count() as f64 / relevant.len().max(1) as f64
    };
    let dcg: f64 = ranked
        .iter()
        .take(10)
        .enumerate()
        .filter(|(_, d)| rel(d))
        .map(|(i, _)| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let idcg: f64 = (0..relevant.len().min(10))
        .map(|i| 1.0 / ((i + 2) as f64).log2())
        .sum();
    let mrr = ranked
        .iter()
        .position(rel)
        .map_or(0.0, |p| 1.0 / (p + 1) as f64);
    QueryMetrics {
        recall5: recall(5),
        recall10: recall(10),
        recall20: recall(20),
        ndcg10: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        mrr,
    }
}

/// How many chunks are retrieved before they are grouped into documents.
const CHUNK_DEPTH: usize = 200;

pub async fn retrieval(
    args: RetrievalArgs,
    config: &concierge_config::Config,
) -> anyhow::Result<()> {
    use concierge_knowledge::pipeline::{Mode, Pipeline, PipelineConfig};
    let embedder = concierge_server::embedder(config).await?;
    let source = concierge_knowledge::JsonlSource::new(&args.corpus)?;
    let snapshot = concierge_knowledge::KnowledgeSource::snapshot(&source).await?;
    for (id, why) in &snapshot.failed {
        eprintln!("skipped {id}: {why}");
    }
    let queries = read_qrels(&args.qrels)?;
    let workspace = WorkspaceId::new();
    let index = std::sync::Arc::new(KnowledgeIndex::in_memory()?);
    let dense = std::sync::Arc::new(concierge_knowledge::dense::DenseIndex::new());
    let vectors = embedder
        .as_deref()
        .map(|e| concierge_knowledge::ingest::Vectors {
            embedder: e,
            dense: &dense,
        });
    // Embeddings are cached between runs (keyed by model and text), like the product's store does.
    let cache =
        concierge_store::SqlStore::open_sqlite(&config.storage.data_dir.join("eval-cache.db"), 2)
            .await?;
    let started = std::time::Instant::now();
    let documents = concierge_knowledge::ingest::index_snapshot(
        &index,
        vectors,
        Some(&cache as &dyn concierge_core::Store),
        workspace,
        "eval",
        &snapshot,
    )
    .await?;
    eprintln!(
        "indexed {} documents ({} chunks, {} vectors) in {:.1}s; {} queries",
        documents.len(),
        index.num_chunks(),
        dense.len(),
        started.elapsed().as_secs_f64(),
        queries.len()
    );
    let pipeline = Pipeline {
        index: index.clone(),
        dense,
        embedder: embedder.clone(),
        reranker: match args.rerank_weights {
            Some(weights) => concierge_knowledge::rerank::Reranker {
                weights,
                ..Default::default()
            },
            None => Default::default(),
        },
        cross_encoder: concierge_server::cross_encoder(config)?,
        config: PipelineConfig {
            candidates: CHUNK_DEPTH,
            dense_weight: args.dense_weight,
            cross_depth: config.knowledge.cross_encoder.depth,
            ..PipelineConfig::default()
        },
        resolved: Default::default(),
    };
    let by_id: std::collections::HashMap<String, String> = documents
        .iter()
        .map(|d| (d.id.to_string(), d.external_id.clone()))
        .collect();
    let mut resolved_count = 0;
    if let Some(path) = &args.resolved {
        let questions = read_qrels(path)?.into_iter().map(|q| {
            concierge_knowledge::resolved::ResolvedQuestion {
                id: q.id,
                text: q.text,
                documents: q.relevant,
            }
        });
        let model = concierge_knowledge::resolved::ResolvedQuestions::build_named(
            questions,
            &documents,
            |t| index.stems(t),
        );
        resolved_count = model.len();
        eprintln!(
            "{resolved_count} resolved questions vote in the reranker (each query left out of its own vote)"
        );
        pipeline.set_resolved(workspace, model);
    }
    let available: Vec<Mode> = if embedder.is_some() {
        Mode::ALL.to_vec()
    } else {
        vec![Mode::Bm25]
    };
    if embedder.is_none() {
        eprintln!("no embedder configured (knowledge.embeddings.provider = none): BM25 only");
    }
    let principals = concierge_core::Principals::public();
    let mut modes = serde_json::Map::new();
    if let Some(dir) = &args.run {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    for mode in available {
        let mut run = String::new();
        let mut sums = QueryMetrics::default();
        let mut latencies = Vec::with_capacity(queries.len());
        let mut per_query = serde_json::Map::new();
        for q in &queries {
            let t = std::time::Instant::now();
            let options = concierge_knowledge::pipeline::RetrieveOptions {
                exclude_resolved: Some(&q.id),
            };
            let hits = pipeline
                .retrieve_with_options(workspace, &principals, &q.text, CHUNK_DEPTH, mode, options)
                .await?
                .hits;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            // Documents ranked by their best chunk.
            let mut ranked: Vec<String> = Vec::new();
            let mut scored: Vec<(String, f32)> = Vec::new();
            for h in &hits {
                if let Some(ext) = by_id.get(&h.document_id)
                    && !ranked.contains(ext)
                {
                    ranked.push(ext.clone());
                    scored.push((ext.clone(), h.score));
                }
            }
            if args.run.is_some() {
                run.push_str(&trec_lines(&q.id, &scored, mode.name()));
            }
            let m = query_metrics(&ranked, &q.relevant);
            per_query.insert(q.id.clone(), serde_json::json!(m.ndcg10));
            sums.recall5 += m.recall5;
            sums.recall10 += m.recall10;
            sums.recall20 += m.recall20;
            sums.ndcg10 += m.ndcg10;
            sums.mrr += m.mrr;
        }
        latencies.sort_by(|a, b| a.total_cmp(b));
        let n = queries.len().max(1) as f64;
        let figures = serde_json::json!({
            "recall@5": sums.recall5 / n,
            "recall@10": sums.recall10 / n,
            "recall@20": sums.recall20 / n,
            "ndcg@10": sums.ndcg10 / n,
            "mrr": sums.mrr / n,
            "latency_ms_p50": crate::bench::percentile(&latencies, 50.0),
            "latency_ms_p99": crate::bench::percentile(&latencies, 99.0),
            "per_query_ndcg@10": per_query,
        });
        let mode = mode.name();
        println!(
            "{mode:<14} recall@5={:.3} recall@10={:.3} recall@20={:.3} ndcg@10={:.3} mrr={:.3} latency_ms p50={:.2} p99={:.2}",
            figures["recall@5"].as_f64().unwrap_or(f64::NAN),
            figures["recall@10"].as_f64().unwrap_or(f64::NAN),
            figures["recall@20"].as_f64().unwrap_or(f64::NAN),
            figures["ndcg@10"].as_f64().unwrap_or(f64::NAN),
            figures["mrr"].as_f64().unwrap_or(f64::NAN),
            figures["latency_ms_p50"].as_f64().unwrap_or(f64::NAN),
            figures["latency_ms_p99"].as_f64().unwrap_or(f64::NAN),
        );
        modes.insert(mode.to_string(), figures);
        if let Some(dir) = &args.run {
            let path = dir.join(format!("{mode}.run"));
            std::fs::write(&path, run)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
    }
    if let Some(path) = &args.report {
        let report = serde_json::json!({ "modes": modes, "queries": queries.len(), "documents": documents.len(), "resolved_questions": resolved_count });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod retrieval_tests {
    use super::*;

    #[test]
    fn trec_scores_fall_strictly_with_rank_and_ids_have_no_spaces() {
        let ranked = vec![
            ("a b.md".to_string(), 2.5),
            ("c".to_string(), -1.0),
            ("d".to_string(), 0.03),
            ("e".to_string(), 0.03),
        ];
        let text = trec_lines("q 1", &ranked, "hybrid+rerank");
        let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split(' ').collect()).collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(
            rows[0],
            vec!["q_1", "Q0", "a_b.md", "1", "2.500000", "hybrid+rerank"]
        );
        let scores: Vec<f64> = rows.iter().map(|r| r[4].parse().unwrap()).collect();
        assert!(scores.windows(2).all(|w| w[0] > w[1]), "{scores:?}");
        assert_eq!(
            scores[1], -1.0,
            "a real score is kept when it already falls"
        );
    }

    #[test]
    fn rerank_weights_parse_as_two_numbers() {
        assert_eq!(super::parse_weights("0.2, 0.8"), Ok([0.2, 0.8]));
        assert!(super::parse_weights("0.5").is_err());
        assert!(super::parse_weights("a,b").is_err());
    }

    #[test]
    fn metrics_on_a_known_ranking() {
        let ranked: Vec<String> = ["a", "x", "b", "y"].iter().map(|s| s.to_string()).collect();
        let relevant: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let m = query_metrics(&ranked, &relevant);
        assert!((m.recall5 - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.mrr, 1.0);
        let dcg = 1.0 + 1.0 / 4f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!((m.ndcg10 - dcg / idcg).abs() < 1e-9);
        assert_eq!(query_metrics(&[], &relevant), QueryMetrics::default());
    }

    #[test]
    fn relevant_ids_as_array_or_python_list_string() {
        assert_eq!(id_list(&serde_json::json!(["a", "b"])), vec!["a", "b"]);
        assert_eq!(
            id_list(&serde_json::json!("['doc_1', 'doc_2']")),
            vec!["doc_1", "doc_2"]
        );
        assert_eq!(id_list(&serde_json::json!("[\"x\"]")), vec!["x"]);
    }
}
