//! `concierge eval guardrails` measures the input guard (attack detection rate, benign
//! false-positive rate, latency) on attack and benign files; `concierge train guardrails`
//! trains its classifier and thresholds and writes the model the binary ships
//! (`crates/understand/assets/guardrail.json`).
//!
//! Both read any file `read_records` reads (JSON, JSONL with a text field found by name, CSV
//! or TSV with a text column, plain text one per line) and can keep one half of each file
//! (`--split dev|holdout`, by the hash of each text's opening; see
//! `concierge_understand::guardrails::is_held_out`): training uses the development half, the
//! figures in `docs/evaluation.md` come from the held-out half.

use crate::eval_intents::{embed_all, read_texts};
use anyhow::Context;
use concierge_knowledge::embed::Embedder;
use concierge_understand::guardrails::{
    self, Guard, GuardCategory, GuardExample, GuardTrainConfig, GuardVerdict, Origin,
};
use concierge_understand::triage::{IntentSettings, WorkspaceIntents};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Which half of each file to use.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// The development half (what training uses).
    Dev,
    /// The held-out half (what the reported figures use).
    Holdout,
    /// Every text.
    All,
}

impl Split {
    fn keeps(self, text: &str) -> bool {
        match self {
            Split::Dev => !guardrails::is_held_out(text),
            Split::Holdout => guardrails::is_held_out(text),
            Split::All => true,
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Split::Dev => "dev",
            Split::Holdout => "holdout",
            Split::All => "all",
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Attack files (every text is an attack). Repeat the flag for several files.
    #[arg(long, required = true, num_args = 1..)]
    attacks: Vec<PathBuf>,
    /// Benign customer messages (every text is benign).
    #[arg(long, required = true, num_args = 1..)]
    benign: Vec<PathBuf>,
    /// Benign retrieved passages or tool results, checked as retrieved text.
    #[arg(long, num_args = 1..)]
    passages: Vec<PathBuf>,
    /// The half of each file to evaluate on.
    #[arg(long, value_enum, default_value = "all")]
    split: Split,
    /// Check every file as retrieved text (indirect injection: the attacks as if they were
    /// found in a passage or a tool's result), with the retrieved-text threshold.
    #[arg(long)]
    as_retrieved: bool,
    /// JSON files made of splits (CLINC150): the splits to read (default: all of them).
    #[arg(long, value_delimiter = ',')]
    splits: Vec<String>,
    /// A guard model file (default: the one shipped in the binary).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Messages timed end to end (windows, embedding, check) for the latency figures.
    #[arg(long, default_value_t = 300)]
    latency_samples: usize,
    /// A workspace's intent settings (e.g. `demo/intents.json`). An attack the guard lets
    /// through but that workspace's intent engine declares out of scope is counted as
    /// neutralised: the agent answers it with a clarifying question, and no answer, tool or
    /// model sees it. Benign messages are still counted as refused only when blocked.
    #[arg(long)]
    intents: Option<PathBuf>,
    /// Print up to this many missed attacks and blocked benign messages.
    #[arg(long, default_value_t = 0)]
    show: usize,
    /// Write the figures as JSON.
    #[arg(long)]
    report: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Attack files. Repeat the flag for several files.
    #[arg(long, required = true, num_args = 1..)]
    attacks: Vec<PathBuf>,
    /// Benign customer messages.
    #[arg(long, required = true, num_args = 1..)]
    benign: Vec<PathBuf>,
    /// Benign passages (knowledge-base documents): they set the threshold for retrieved text.
    #[arg(long, num_args = 1..)]
    passages: Vec<PathBuf>,
    /// The half of each file to train on.
    #[arg(long, value_enum, default_value = "dev")]
    split: Split,
    /// JSON files made of splits (CLINC150): the splits to read (default: all of them).
    #[arg(long, value_delimiter = ',')]
    splits: Vec<String>,
    /// Cross-validation folds for the penalty and the thresholds.
    #[arg(long, default_value_t = 5)]
    folds: usize,
    /// Most benign messages (and passages) the thresholds may block on the out-of-fold scores.
    #[arg(long, default_value_t = GuardTrainConfig::default().max_benign_rate)]
    max_benign_rate: f64,
    /// L2 penalties to try (the best out-of-fold detection at the benign budget is kept).
    #[arg(long, value_delimiter = ',', default_values_t = GuardTrainConfig::default().l2_candidates)]
    l2: Vec<f32>,
    /// The attacks' share of the training weight.
    #[arg(long, default_value_t = GuardTrainConfig::default().attack_share)]
    attack_share: f32,
    /// Print up to this many out-of-fold missed attacks and blocked benign messages.
    #[arg(long, default_value_t = 0)]
    show: usize,
    /// Where to write the model.
    #[arg(long, default_value = "crates/understand/assets/guardrail.json")]
    out: PathBuf,
}

/// The texts of one file, after the split.
pub(crate) struct FileTexts {
    pub path: PathBuf,
    pub texts: Vec<String>,
}

pub(crate) fn load(
    paths: &[PathBuf],
    splits: &[String],
    split: Split,
) -> anyhow::Result<Vec<FileTexts>> {
    paths
        .iter()
        .map(|path| {
            let texts: Vec<String> = read_texts(path, splits)?
                .into_iter()
                .filter(|t| split.keeps(t))
                .collect();
            Ok(FileTexts {
                path: path.clone(),
                texts,
            })
        })
        .collect()
}

/// The vectors of every window of every text, by window text (embedded once, cached in the
/// evaluation cache like `eval intents`).
async fn window_vectors(
    embedder: &dyn Embedder,
    cache: &dyn concierge_core::Store,
    texts: &[&str],
) -> anyhow::Result<HashMap<String, Vec<f32>>> {
    let mut seen = HashSet::new();
    let windows: Vec<String> = texts
        .iter()
        .flat_map(|t| guardrails::windows(t))
        .filter(|w| seen.insert(w.clone()))
        .collect();
    let vectors = embed_all(embedder, cache, &windows).await?;
    Ok(windows.into_iter().zip(vectors).collect())
}

fn vectors_of(text: &str, table: &HashMap<String, Vec<f32>>) -> Vec<Vec<f32>> {
    guardrails::windows(text)
        .iter()
        .filter_map(|w| table.get(w).cloned())
        .collect()
}

/// The embedder and the evaluation cache.
struct Embedding {
    embedder: Option<std::sync::Arc<dyn Embedder>>,
    cache: concierge_store::SqlStore,
}

async fn open(config: &concierge_config::Config) -> anyhow::Result<Embedding> {
    let embedder = concierge_server::embedder(config).await?;
    let cache =
        concierge_store::SqlStore::open_sqlite(&config.storage.data_dir.join("eval-cache.db"), 2)
            .await?;
    Ok(Embedding { embedder, cache })
}

pub(crate) fn short(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(160) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

#[derive(serde::Serialize)]
struct FileFigures {
    file: String,
    kind: &'static str,
    texts: usize,
    blocked: usize,
    rate: f64,
    /// With `--intents`: blocked, or let through and declared out of scope.
    #[serde(skip_serializing_if = "Option::is_none")]
    blocked_or_out_of_scope: Option<usize>,
}

/// The workspace's intent model, trained from its settings file, for `--intents`.
async fn workspace_intents(
    path: &Path,
    embedder: &dyn Embedder,
    cache: &dyn concierge_core::Store,
) -> anyhow::Result<WorkspaceIntents> {
    let settings: IntentSettings = serde_json::from_str(
        &std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    )
    .with_context(|| format!("{} is not intent settings", path.display()))?;
    let texts: Vec<String> = settings
        .labelled()
        .iter()
        .map(|(t, _)| t.to_string())
        .collect();
    let vectors = embed_all(embedder, cache, &texts).await?;
    WorkspaceIntents::train(settings, &vectors).map_err(|e| anyhow::anyhow!(e))
}

pub async fn eval(args: EvalArgs, config: &concierge_config::Config) -> anyhow::Result<()> {
    let guard = match &args.model {
        Some(path) => Guard::from_json(
            &std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        )?,
        None => Guard::shipped()?,
    };
    let ctx = open(config).await?;
    let attacks = load(&args.attacks, &args.splits, args.split)?;
    let benign = load(&args.benign, &args.splits, args.split)?;
    let passages = load(&args.passages, &args.splits, args.split)?;
    let all_texts: Vec<&str> = attacks
        .iter()
        .chain(&benign)
        .chain(&passages)
        .flat_map(|f| f.texts.iter().map(String::as_str))
        .collect();
    let table = match &ctx.embedder {
        Some(embedder) => {
            if embedder.model_id() != guard.model().embedding_model {
                eprintln!(
                    "warning: the guard was trained on vectors of {:?}, the embedder is {:?}",
                    guard.model().embedding_model,
                    embedder.model_id()
                );
            }
            window_vectors(embedder.as_ref(), &ctx.cache, &all_texts).await?
        }
        None => {
            eprintln!("warning: no embedder configured: patterns only");
            HashMap::new()
        }
    };

    // With --intents: the workspace's intent model and the whole-text vectors it reads.
    let intents = match (&args.intents, &ctx.embedder) {
        (Some(path), Some(embedder)) => {
            let model = workspace_intents(path, embedder.as_ref(), &ctx.cache).await?;
            let texts: Vec<String> = attacks
                .iter()
                .chain(&benign)
                .flat_map(|f| f.texts.iter().cloned())
                .collect::<HashSet<_>>()
                .into_iter()
                .collect();
            let vectors = embed_all(embedder.as_ref(), &ctx.cache, &texts).await?;
            let whole: HashMap<String, Vec<f32>> = texts.into_iter().zip(vectors).collect();
            Some((model, whole))
        }
        (Some(_), None) => {
            anyhow::bail!("--intents needs sentence embeddings (knowledge.embeddings)")
        }
        (None, _) => None,
    };
    let out_of_scope = |text: &str| -> bool {
        intents.as_ref().is_some_and(|(model, whole)| {
            whole
                .get(text)
                .is_some_and(|v| model.classify(text, v).out_of_scope)
        })
    };
    let mut neutralised_totals: HashMap<&'static str, usize> = HashMap::new();

    let mut files = Vec::new();
    let mut categories: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut misses = Vec::new();
    let mut false_positives = Vec::new();
    let mut totals: HashMap<&'static str, (usize, usize)> = HashMap::new();
    let message = if args.as_retrieved {
        Origin::Retrieved
    } else {
        Origin::Message
    };
    let groups: [(&'static str, &[FileTexts], Origin); 3] = [
        ("attack", &attacks, message),
        ("benign", &benign, message),
        ("passage", &passages, Origin::Retrieved),
    ];
    for (kind, group, origin) in groups {
        for file in group {
            let mut blocked = 0;
            let mut neutralised = 0;
            for text in &file.texts {
                let verdict = guard.check_origin(text, &vectors_of(text, &table), origin);
                if kind != "passage" && (verdict.blocked || out_of_scope(text)) {
                    neutralised += 1;
                }
                if verdict.blocked {
                    blocked += 1;
                    if kind == "attack" {
                        let c = verdict.category.map_or("none", GuardCategory::as_str);
                        *categories.entry(c).or_default() += 1;
                    } else {
                        false_positives.push((verdict, file.path.clone(), text.clone()));
                    }
                } else if kind == "attack" {
                    misses.push((verdict, file.path.clone(), text.clone()));
                }
            }
            let n = file.texts.len();
            let total = totals.entry(kind).or_default();
            total.0 += n;
            total.1 += blocked;
            *neutralised_totals.entry(kind).or_default() += neutralised;
            files.push(FileFigures {
                file: file.path.display().to_string(),
                kind,
                texts: n,
                blocked,
                rate: blocked as f64 / n.max(1) as f64,
                blocked_or_out_of_scope: (intents.is_some() && kind != "passage")
                    .then_some(neutralised),
            });
        }
    }
    let rate = |kind: &str| {
        totals
            .get(kind)
            .map(|(n, b)| (*n, *b, *b as f64 / (*n).max(1) as f64))
            .unwrap_or((0, 0, f64::NAN))
    };
    let (attack_n, attack_blocked, detection) = rate("attack");
    let (benign_n, benign_blocked, fpr) = rate("benign");
    let (passage_n, passage_blocked, passage_fpr) = rate("passage");
    let attack_files: Vec<&FileFigures> = files.iter().filter(|f| f.kind == "attack").collect();
    let macro_detection =
        attack_files.iter().map(|f| f.rate).sum::<f64>() / attack_files.len().max(1) as f64;

    // Latency of one message end to end: its windows, their embedding (no cache) and the
    // check, over a sample spread across every file.
    let mut latencies = Vec::new();
    if let Some(embedder) = &ctx.embedder {
        let pool: Vec<&str> = all_texts.clone();
        let step = (pool.len() / args.latency_samples.max(1)).max(1);
        embedder
            .embed(&["warm up".to_string()])
            .await
            .map_err(|e| anyhow::anyhow!(e.0))?;
        for text in pool.iter().step_by(step).take(args.latency_samples) {
            let started = Instant::now();
            let windows = guardrails::windows(text);
            let vectors = embedder
                .embed(&windows)
                .await
                .map_err(|e| anyhow::anyhow!(e.0))?;
            let _ = guard.check(text, &vectors);
            latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    latencies.sort_by(|a, b| a.total_cmp(b));
    let p50 = crate::bench::percentile(&latencies, 50.0);
    let p99 = crate::bench::percentile(&latencies, 99.0);

    println!(
        "split={}{} threshold={:.4} retrieved_threshold={:.4} embedder={}",
        args.split.as_str(),
        if args.as_retrieved {
            " (every text checked as retrieved text)"
        } else {
            ""
        },
        guard.threshold(Origin::Message),
        guard.threshold(Origin::Retrieved),
        ctx.embedder
            .as_ref()
            .map_or("none (patterns only)", |e| e.model_id())
    );
    for f in &files {
        println!(
            "  {:<7} {:>6} texts  {:>6} blocked  {:.4}  {}",
            f.kind, f.texts, f.blocked, f.rate, f.file
        );
    }
    println!(
        "attack_detection_rate={detection:.4} ({attack_blocked}/{attack_n}; mean over files {macro_detection:.4})"
    );
    println!("benign_false_positive_rate={fpr:.4} ({benign_blocked}/{benign_n})");
    let neutralised = |kind: &str, n: usize| {
        intents
            .is_some()
            .then(|| *neutralised_totals.get(kind).unwrap_or(&0) as f64 / n.max(1) as f64)
    };
    let attack_neutralised = neutralised("attack", attack_n);
    let benign_out_of_scope = neutralised("benign", benign_n);
    if let (Some(a), Some(b)) = (attack_neutralised, benign_out_of_scope) {
        println!(
            "with the workspace intents: attacks blocked or out of scope (neutralised) {a:.4}; \
             benign blocked or out of scope (asked to clarify, not refused) {b:.4}"
        );
        for f in files.iter().filter(|f| f.kind == "attack") {
            if let Some(x) = f.blocked_or_out_of_scope {
                println!(
                    "  attack  {:>6} texts  {:>6} blocked or out of scope  {:.4}  {}",
                    f.texts,
                    x,
                    x as f64 / f.texts.max(1) as f64,
                    f.file
                );
            }
        }
    }
    if passage_n > 0 {
        println!("passage_false_positive_rate={passage_fpr:.4} ({passage_blocked}/{passage_n})");
    }
    println!(
        "blocked attacks by category: {}",
        categories
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "latency_ms p50={p50:.2} p99={p99:.2} ({} messages: windows, embedding, check)",
        latencies.len()
    );
    if args.show > 0 {
        let show = |title: &str, list: &mut Vec<(GuardVerdict, PathBuf, String)>| {
            list.sort_by(|a, b| b.0.score.total_cmp(&a.0.score));
            println!("{title}");
            for (verdict, path, text) in list.iter().take(args.show) {
                let signals: Vec<&str> =
                    verdict.signals.iter().map(|s| s.source.as_str()).collect();
                println!(
                    "  {:.3} {}: {}\n        [{}]",
                    verdict.score,
                    path.display(),
                    short(text),
                    signals.join(" ")
                );
            }
        };
        show("missed attacks (highest scores first):", &mut misses);
        show("blocked benign texts:", &mut false_positives);
    }
    if let Some(path) = &args.report {
        let report = serde_json::json!({
            "attack_detection_rate": detection,
            "benign_false_positive_rate": fpr,
            "attack_neutralised_rate": attack_neutralised,
            "benign_out_of_scope_or_blocked_rate": benign_out_of_scope,
            "intents": args.intents.as_ref().map(|p| p.display().to_string()),
            "attack_detection_rate_mean_over_files": macro_detection,
            "attacks": attack_n,
            "attacks_blocked": attack_blocked,
            "benign": benign_n,
            "benign_blocked": benign_blocked,
            "passages": passage_n,
            "passages_blocked": passage_blocked,
            "passage_false_positive_rate": (passage_n > 0).then_some(passage_fpr),
            "blocked_attacks_by_category": categories,
            "files": files,
            "split": args.split.as_str(),
            "as_retrieved": args.as_retrieved,
            "threshold": guard.threshold(Origin::Message),
            "retrieved_threshold": guard.threshold(Origin::Retrieved),
            "embedder": ctx.embedder.as_ref().map(|e| e.model_id().to_string()),
            "latency_ms_p50": p50,
            "latency_ms_p99": p99,
            "latency_samples": latencies.len(),
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

pub async fn train(args: TrainArgs, config: &concierge_config::Config) -> anyhow::Result<()> {
    let ctx = open(config).await?;
    let embedder = ctx.embedder.clone().context(
        "train guardrails needs sentence embeddings: set knowledge.embeddings.provider to local",
    )?;
    let attacks = load(&args.attacks, &args.splits, args.split)?;
    let benign = load(&args.benign, &args.splits, args.split)?;
    let passages = load(&args.passages, &args.splits, args.split)?;
    // Each distinct text once (the attack sets repeat templates and prompts).
    let mut seen = HashSet::new();
    let mut labelled: Vec<(String, bool, Origin)> = Vec::new();
    let mut per_file = Vec::new();
    for (group, attack, origin) in [
        (&attacks, true, Origin::Message),
        (&benign, false, Origin::Message),
        (&passages, false, Origin::Retrieved),
    ] {
        for file in group {
            let before = labelled.len();
            for text in &file.texts {
                if seen.insert(text.clone()) {
                    labelled.push((text.clone(), attack, origin));
                }
            }
            per_file.push(serde_json::json!({
                "file": file.path.display().to_string(),
                "texts": labelled.len() - before,
            }));
        }
    }
    let texts: Vec<&str> = labelled.iter().map(|(t, _, _)| t.as_str()).collect();
    let table = window_vectors(embedder.as_ref(), &ctx.cache, &texts).await?;
    let examples: Vec<GuardExample> = labelled
        .iter()
        .map(|(text, attack, origin)| GuardExample {
            text: text.clone(),
            vectors: vectors_of(text, &table),
            attack: *attack,
            origin: *origin,
        })
        .collect();
    let count = |attack: bool, origin: Origin| {
        examples
            .iter()
            .filter(|e| e.attack == attack && (attack || e.origin == origin))
            .count()
    };
    eprintln!(
        "training on {} attacks, {} benign messages, {} benign passages ({} windows)",
        count(true, Origin::Message),
        count(false, Origin::Message),
        count(false, Origin::Retrieved),
        examples.iter().map(|e| e.vectors.len()).sum::<usize>()
    );
    let started = Instant::now();
    let train_config = GuardTrainConfig {
        embedding_model: embedder.model_id().to_string(),
        folds: args.folds,
        max_benign_rate: args.max_benign_rate,
        l2_candidates: args.l2.clone(),
        attack_share: args.attack_share,
        ..GuardTrainConfig::default()
    };
    let guardrails::Trained {
        mut model,
        validations,
        out_of_fold,
        out_of_fold_retrieved,
    } = guardrails::train(&examples, &train_config)?;
    let seconds = started.elapsed().as_secs_f64();
    for v in &validations {
        println!(
            "l2={:e} threshold={:.4} retrieved_threshold={:.4} out-of-fold: attack_detection_rate={:.4} benign_false_positive_rate={:.4}{}",
            v.l2,
            v.threshold,
            v.retrieved_threshold,
            v.attack_detection_rate,
            v.benign_false_positive_rate,
            v.passage_false_positive_rate
                .map(|p| format!(" passage_false_positive_rate={p:.4}"))
                .unwrap_or_default()
        );
    }
    // Out-of-fold detection per attack file and the worst cases, at the chosen threshold.
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, e) in examples.iter().enumerate() {
        index.entry(e.text.as_str()).or_insert(i);
    }
    for (group, kind, threshold, oof) in [
        (&attacks, "attack", model.threshold, &out_of_fold),
        (&benign, "benign", model.threshold, &out_of_fold),
        (
            &passages,
            "passage",
            model.retrieved_threshold,
            &out_of_fold_retrieved,
        ),
    ] {
        for file in group {
            let scores: Vec<f32> = file
                .texts
                .iter()
                .filter_map(|t| index.get(t.as_str()).map(|i| oof[*i]))
                .collect();
            let blocked = scores.iter().filter(|s| **s >= threshold).count();
            println!(
                "  out-of-fold {:<7} {:>6} texts {:>6} blocked {:.4}  {}",
                kind,
                scores.len(),
                blocked,
                blocked as f64 / scores.len().max(1) as f64,
                file.path.display()
            );
        }
    }
    // The trade-off on the out-of-fold scores: detection at other benign budgets.
    let oof = |attack: bool, origin: Origin| -> Vec<f32> {
        examples
            .iter()
            .zip(&out_of_fold)
            .filter(|(e, _)| e.attack == attack && (attack || e.origin == origin))
            .map(|(_, s)| *s)
            .collect()
    };
    let (attack_scores, benign_scores) = (oof(true, Origin::Message), oof(false, Origin::Message));
    let curve: Vec<String> = [0.005, 0.01, 0.015, 0.02, 0.03]
        .iter()
        .map(|rate| {
            let below: Vec<f32> = benign_scores.iter().copied().filter(|s| *s < 1.0).collect();
            let t =
                guardrails::threshold_for_rate(&below, benign_scores.len() - below.len(), *rate);
            let detected = attack_scores.iter().filter(|s| **s >= t).count();
            format!(
                "{:.1}%→{:.4}",
                rate * 100.0,
                detected as f64 / attack_scores.len().max(1) as f64
            )
        })
        .collect();
    println!(
        "out-of-fold detection at benign false-positive budgets: {}",
        curve.join(" ")
    );
    if args.show > 0 {
        let mut misses: Vec<(f32, &str)> = examples
            .iter()
            .zip(&out_of_fold)
            .filter(|(e, s)| e.attack && **s < model.threshold)
            .map(|(e, s)| (*s, e.text.as_str()))
            .collect();
        misses.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("out-of-fold missed attacks:");
        for (s, t) in misses.iter().take(args.show) {
            println!("  {s:.3} {}", short(t));
        }
        let mut fps: Vec<(f32, &str)> = examples
            .iter()
            .zip(&out_of_fold)
            .filter(|(e, s)| !e.attack && e.origin == Origin::Message && **s >= model.threshold)
            .map(|(e, s)| (*s, e.text.as_str()))
            .collect();
        fps.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("out-of-fold blocked benign messages:");
        for (s, t) in fps.iter().take(args.show) {
            println!("  {s:.3} {}", short(t));
        }
    }
    let command: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| if a.contains(' ') { format!("{a:?}") } else { a })
        .collect();
    model.training = serde_json::json!({
        "command": format!("concierge {}", command.join(" ")),
        "split": args.split.as_str(),
        "files": per_file,
        "attacks": count(true, Origin::Message),
        "benign_messages": count(false, Origin::Message),
        "benign_passages": count(false, Origin::Retrieved),
        "max_benign_rate": args.max_benign_rate,
        "folds": args.folds,
        "validation": validations,
        "train_seconds": seconds,
    });
    // Round the weights: six significant digits are plenty, and the file stays small.
    let round = |v: &mut Vec<f32>| {
        for w in v.iter_mut() {
            *w = format!("{:.6e}", w).parse().unwrap_or(*w);
        }
    };
    round(&mut model.classifier.weights);
    round(&mut model.classifier.bias);
    Guard::new(model.clone())?;
    write(&args.out, &serde_json::to_string_pretty(&model)?)?;
    println!(
        "model written to {} (threshold {:.4}, retrieved {:.4}; trained in {seconds:.1}s)",
        args.out.display(),
        model.threshold,
        model.retrieved_threshold
    );
    Ok(())
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, format!("{text}\n"))
        .with_context(|| format!("cannot write {}", path.display()))
}
