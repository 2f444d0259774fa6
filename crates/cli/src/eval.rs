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
    let documents =
        concierge_knowledge::ingest::index_snapshot(&index, workspace, &source.id(), &snapshot)?;
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
