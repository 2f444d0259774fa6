//! `concierge bench retrieval`: embedding throughput (against the Python peer, same texts, same
//! model), ingestion throughput, and search latency at 10k and 100k chunks, with memory.

use anyhow::{Context, bail};
use concierge_core::{Document, DocumentId, Principals, WorkspaceId};
use concierge_knowledge::dense::{AnnConfig, DenseIndex, DenseItem};
use concierge_knowledge::embed::chunk_text_for_embedding;
use concierge_knowledge::ingest::make_chunks;
use concierge_knowledge::pipeline::{Mode, Pipeline, PipelineConfig};
use concierge_knowledge::{KnowledgeIndex, KnowledgeSource};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

#[derive(clap::Args)]
pub struct RetrievalBenchArgs {
    /// Real text to build the corpus from (JSONL `{"id","title","content"}`); chunks are repeated
    /// with new ids up to each size.
    #[arg(long)]
    corpus: PathBuf,
    /// Questions, one per line.
    #[arg(long)]
    queries: PathBuf,
    /// Index sizes in chunks.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000")]
    sizes: Vec<usize>,
    /// Live vectors from which dense search uses the HNSW graph (as `knowledge.ann_threshold`).
    #[arg(long, default_value_t = 20_000)]
    ann_threshold: usize,
    /// A cross-encoder folder (as `knowledge.cross_encoder.dir`): times scoring the top
    /// `--cross-depth` chunks of each query with it.
    #[arg(long)]
    cross_encoder: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    cross_depth: usize,
    /// HNSW candidate list size while searching (as `knowledge.ann_ef_search`).
    #[arg(long, default_value_t = 128)]
    ef_search: usize,
    /// Chunks embedded for the throughput figure.
    #[arg(long, default_value_t = 512)]
    sample: usize,
    /// Python with sentence-transformers for the peer comparison (skipped when absent).
    #[arg(long, default_value = "python3")]
    python: String,
    /// A sentence-transformers model folder for the peer (the original all-MiniLM-L6-v2 files).
    #[arg(long)]
    peer_model: Option<PathBuf>,
}

fn rss_mib(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub async fn run(
    args: RetrievalBenchArgs,
    config: &concierge_config::Config,
) -> anyhow::Result<()> {
    let Some(embedder) = concierge_server::embedder(config).await? else {
        bail!(
            "no embedder is available (knowledge.embeddings.provider, or `concierge models fetch`)"
        );
    };
    let source = concierge_knowledge::JsonlSource::new(&args.corpus)?;
    let snapshot = source.snapshot().await?;
    let workspace = WorkspaceId::new();
    // Real chunks as the product makes them.
    let mut base: Vec<(Document, concierge_core::Chunk)> = Vec::new();
    for d in &snapshot.documents {
        let id = DocumentId::new();
        let doc = concierge_knowledge::ingest::to_document(id, workspace, "bench", d);
        for c in make_chunks(id, &d.markdown) {
            base.push((doc.clone(), c));
        }
    }
    if base.is_empty() {
        bail!("{} has no text", args.corpus.display());
    }
    let queries: Vec<String> = std::fs::read_to_string(&args.queries)
        .with_context(|| format!("cannot read {}", args.queries.display()))?
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    println!(
        "corpus: {} documents, {} real chunks; {} queries; RSS {:.0} MiB",
        snapshot.documents.len(),
        base.len(),
        queries.len(),
        rss_mib("VmRSS:")
    );
    if let Some(dir) = &args.cross_encoder {
        cross_encoder_latency(dir, args.cross_depth, &queries, &base).await?;
    }

    // 1. Embedding throughput on real chunks (median of 3 runs), and the Python peer.
    let sample: Vec<String> = base
        .iter()
        .take(args.sample)
        .map(|(d, c)| chunk_text_for_embedding(&d.title, &c.heading_path, &c.text))
        .collect();
    let words = sample
        .iter()
        .map(|t| t.split_whitespace().count())
        .sum::<usize>() as f64
        / sample.len() as f64;
    embedder
        .embed(&sample[..sample.len().min(32)])
        .await
        .map_err(|e| anyhow::anyhow!(e.0))?;
    let mut rates = Vec::new();
    let mut vectors = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        vectors = embedder
            .embed(&sample)
            .await
            .map_err(|e| anyhow::anyhow!(e.0))?;
        rates.push(sample.len() as f64 / t.elapsed().as_secs_f64());
    }
    let ours = median(rates.clone());
    println!(
        "embedding: {} chunks of ~{:.0} words (~{:.0} tokens), {}: {:.1} chunks/s (runs {:?})",
        sample.len(),
        words,
        words * 1.3,
        embedder.model_id(),
        ours,
        rates.iter().map(|r| format!("{r:.1}")).collect::<Vec<_>>()
    );
    match peer(&args, &sample, config.knowledge.embeddings.threads) {
        Ok(p) => println!(
            "python peer: sentence-transformers, same texts, batch 32: {:.1} chunks/s (peak RSS {:.0} MiB); ratio ours/peer = {:.2}",
            p.0,
            p.1,
            ours / p.0
        ),
        Err(e) => println!("python peer: not measured ({e})"),
    }

    // 2. Search latency at each size: real chunks repeated with new ids (vectors reused).
    let vectors_by_text: Vec<Vec<f32>> = {
        let mut all = vectors;
        let rest: Vec<String> = base
            .iter()
            .skip(sample.len())
            .map(|(d, c)| chunk_text_for_embedding(&d.title, &c.heading_path, &c.text))
            .collect();
        let t = Instant::now();
        for group in rest.chunks(256) {
            all.extend(
                embedder
                    .embed(group)
                    .await
                    .map_err(|e| anyhow::anyhow!(e.0))?,
            );
        }
        if !rest.is_empty() {
            println!(
                "ingestion: embedded the other {} chunks at {:.1} chunks/s; RSS {:.0} MiB (peak {:.0} MiB)",
                rest.len(),
                rest.len() as f64 / t.elapsed().as_secs_f64(),
                rss_mib("VmRSS:"),
                rss_mib("VmHWM:")
            );
        }
        all
    };
    let principals = Principals::public();
    for &size in &args.sizes {
        let index = Arc::new(KnowledgeIndex::in_memory()?);
        let dense = Arc::new(DenseIndex::with_config(AnnConfig {
            threshold: args.ann_threshold,
            ef_search: args.ef_search,
            ..AnnConfig::default()
        }));
        let started = Instant::now();
        let mut batch = Vec::new();
        let mut items = Vec::new();
        for i in 0..size {
            let (doc, chunk) = &base[i % base.len()];
            let id = DocumentId::new();
            let doc = Document { id, ..doc.clone() };
            let chunk = concierge_core::Chunk {
                id: concierge_core::Chunk::id_for(id, 0),
                document_id: id,
                ..chunk.clone()
            };
            items.push(DenseItem {
                chunk_id: chunk.id.clone(),
                document_id: id,
                workspace,
                acl: doc.acl.clone(),
                vector: perturbed(&vectors_by_text[i % base.len()], i / base.len()),
            });
            batch.push((doc, vec![chunk]));
            if batch.len() == 5000 {
                index.apply(&batch, &[])?;
                batch.clear();
            }
        }
        index.apply(&batch, &[])?;
        let probes: Vec<Vec<f32>> = items
            .iter()
            .step_by(size / 50 + 1)
            .map(|i| i.vector.clone())
            .collect();
        dense.upsert(items);
        let build = started.elapsed().as_secs_f64();
        let t = Instant::now();
        let graph_built = dense.settle();
        let graph_secs = t.elapsed().as_secs_f64();
        if dense.uses_graph() {
            // Recall of the graph against the exact scan, for real queries and for stored
            // vectors used as queries.
            let mut query_vectors = Vec::new();
            for q in &queries {
                query_vectors.extend(embedder.embed(std::slice::from_ref(q)).await?);
            }
            query_vectors.extend(probes);
            let mut found = 0usize;
            let mut wanted = 0usize;
            let mut walk = Vec::new();
            for q in &query_vectors {
                let t = Instant::now();
                dense.search(workspace, &principals, q, 50);
                walk.push(t.elapsed().as_secs_f64() * 1000.0);
                let exact: Vec<String> = dense
                    .search_exact(workspace, &principals, q, 10)
                    .into_iter()
                    .map(|h| h.chunk_id)
                    .collect();
                let graph = dense.search(workspace, &principals, q, 10);
                wanted += exact.len();
                found += graph.iter().filter(|h| exact.contains(&h.chunk_id)).count();
            }
            walk.sort_by(|a, b| a.total_cmp(b));
            println!(
                "graph  {size:>6} chunks: HNSW built in {graph_secs:.1}s (built={graph_built}), recall@10 vs exact {:.3} over {} queries; top-50 walk p50={:.2} ms p99={:.2} ms",
                found as f64 / wanted.max(1) as f64,
                query_vectors.len(),
                crate::bench::percentile(&walk, 50.0),
                crate::bench::percentile(&walk, 99.0)
            );
        } else {
            println!(
                "graph  {size:>6} chunks: exact scan (below knowledge.ann_threshold {})",
                args.ann_threshold
            );
        }
        let pipeline = Pipeline {
            index,
            dense,
            embedder: Some(embedder.clone()),
            reranker: Default::default(),
            cross_encoder: None,
            config: PipelineConfig::default(),
            resolved: Default::default(),
        };
        // The question's embedding alone: the part of every dense search that does not depend
        // on the index.
        let mut embed_lat = Vec::new();
        for _ in 0..2 {
            for q in &queries {
                let t = Instant::now();
                pipeline.embed_query(q).await?;
                embed_lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        embed_lat.sort_by(|a, b| a.total_cmp(b));
        println!(
            "embed  {size:>6} chunks question only   p50={:.2} ms p99={:.2} ms",
            crate::bench::percentile(&embed_lat, 50.0),
            crate::bench::percentile(&embed_lat, 99.0)
        );
        for mode in [Mode::Bm25, Mode::Dense, Mode::Hybrid, Mode::HybridRerank] {
            let mut lat = Vec::new();
            for _ in 0..2 {
                for q in &queries {
                    let t = Instant::now();
                    pipeline
                        .retrieve(workspace, &principals, q, 8, mode)
                        .await?;
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
            }
            lat.sort_by(|a, b| a.total_cmp(b));
            println!(
                "search {size:>6} chunks {:<14} p50={:.2} ms p99={:.2} ms",
                mode.name(),
                crate::bench::percentile(&lat, 50.0),
                crate::bench::percentile(&lat, 99.0)
            );
        }
        // As many resolved questions as chunks (real text: each chunk's first 30 words, voting
        // for its document), then the full pipeline again.
        let t = Instant::now();
        let questions: Vec<concierge_knowledge::resolved::ResolvedQuestion> = (0..size)
            .map(|i| {
                let (doc, chunk) = &base[i % base.len()];
                concierge_knowledge::resolved::ResolvedQuestion {
                    id: format!("q{i}"),
                    text: chunk
                        .text
                        .split_whitespace()
                        .take(30)
                        .collect::<Vec<_>>()
                        .join(" "),
                    documents: vec![doc.id.to_string()],
                }
            })
            .collect();
        let model = concierge_knowledge::resolved::ResolvedQuestions::build(questions, |t| {
            pipeline.index.stems(t)
        });
        let model_secs = t.elapsed().as_secs_f64();
        pipeline.set_resolved(workspace, model);
        let mut lat = Vec::new();
        for _ in 0..2 {
            for q in &queries {
                let t = Instant::now();
                pipeline
                    .retrieve(workspace, &principals, q, 8, Mode::HybridRerank)
                    .await?;
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
        }
        lat.sort_by(|a, b| a.total_cmp(b));
        println!(
            "search {size:>6} chunks hybrid+rerank with {size} resolved questions (model built in {model_secs:.1}s) p50={:.2} ms p99={:.2} ms",
            crate::bench::percentile(&lat, 50.0),
            crate::bench::percentile(&lat, 99.0)
        );
        println!(
            "index {size:>6} chunks: built in {build:.1}s; RSS {:.0} MiB (peak {:.0} MiB)",
            rss_mib("VmRSS:"),
            rss_mib("VmHWM:")
        );
    }
    Ok(())
}

/// Per-query latency of a cross-encoder scoring `depth` real chunks (title, headings, body).
async fn cross_encoder_latency(
    dir: &std::path::Path,
    depth: usize,
    queries: &[String],
    base: &[(Document, concierge_core::Chunk)],
) -> anyhow::Result<()> {
    use concierge_knowledge::rerank::CrossEncoder;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let model =
        concierge_embed::BertCrossEncoder::load(dir, threads).map_err(|e| anyhow::anyhow!(e.0))?;
    let mut lat = Vec::new();
    for (i, q) in queries.iter().enumerate().take(20) {
        let passages: Vec<String> = (0..depth)
            .map(|j| {
                let (doc, chunk) = &base[(i * depth + j) % base.len()];
                concierge_knowledge::embed::chunk_text_for_embedding(
                    &doc.title,
                    &chunk.heading_path,
                    &chunk.text,
                )
            })
            .collect();
        let t = Instant::now();
        model
            .score(q, &passages)
            .await
            .map_err(|e| anyhow::anyhow!(e.0))?;
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    println!(
        "cross-encoder {}: {depth} passages per query on {threads} threads: p50={:.0} ms p99={:.0} ms ({} queries)",
        model.model_id(),
        crate::bench::percentile(&lat, 50.0),
        crate::bench::percentile(&lat, 99.0),
        lat.len()
    );
    Ok(())
}

/// The `copy`-th repetition of a real vector, nudged so that repeated texts are distinct
/// points (a graph over exact duplicates would be a degenerate benchmark): a deterministic
/// perturbation of about 0.2 relative norm, renormalised (cosine to the original ≈ 0.98).
fn perturbed(v: &[f32], copy: usize) -> Vec<f32> {
    if copy == 0 {
        return v.to_vec();
    }
    let mut state = copy as u64 * 0x9e37_79b9_7f4a_7c15;
    let noise: Vec<f32> = v
        .iter()
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        })
        .collect();
    let scale = 0.2 / noise.iter().map(|x| x * x).sum::<f32>().sqrt();
    let out: Vec<f32> = v.iter().zip(&noise).map(|(a, n)| a + n * scale).collect();
    let norm = out.iter().map(|x| x * x).sum::<f32>().sqrt();
    out.into_iter().map(|x| x / norm).collect()
}

/// Runs the Python peer on the same texts; returns (chunks/s, peak RSS MiB).
fn peer(args: &RetrievalBenchArgs, texts: &[String], threads: usize) -> anyhow::Result<(f64, f64)> {
    let model = args
        .peer_model
        .clone()
        .context("pass --peer-model (a sentence-transformers folder of all-MiniLM-L6-v2)")?;
    let dir = std::env::temp_dir().join(format!("concierge-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let script = dir.join("peer.py");
    let input = dir.join("texts.txt");
    std::fs::write(&script, include_str!("bench_assets/peer.py"))?;
    std::fs::write(
        &input,
        texts
            .iter()
            .map(|t| t.replace('\n', " "))
            .collect::<Vec<_>>()
            .join("\n"),
    )?;
    let out = std::process::Command::new(&args.python)
        .arg(&script)
        .arg(&model)
        .arg(&input)
        .arg(threads.to_string())
        .output()
        .with_context(|| format!("cannot run {}", args.python))?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!(
            "{}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("peer failed")
        );
    }
    let line = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(line.trim().lines().last().unwrap_or("{}"))?;
    Ok((
        v["chunks_per_second"].as_f64().unwrap_or(f64::NAN),
        v["peak_rss_mib"].as_f64().unwrap_or(f64::NAN),
    ))
}
