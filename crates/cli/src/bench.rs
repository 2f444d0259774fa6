//! `concierge bench chat`: N concurrent conversations against a running server, each sending
//! questions from a file; prints turn latency (message posted → reply stored and streamed)
//! percentiles and replies per second.

use crate::sse::Client;
use anyhow::{Context, bail};
use futures::StreamExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct BenchArgs {
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Concurrent conversations.
    #[arg(long, short = 'n', default_value_t = 50)]
    conversations: usize,
    /// Messages per conversation.
    #[arg(long, default_value_t = 5)]
    turns: usize,
    /// One question per line.
    #[arg(long)]
    questions: PathBuf,
    #[arg(long)]
    workspace: Option<String>,
    /// Give up on a reply after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout_seconds: u64,
}

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn conversation(
    client: Client,
    questions: Vec<String>,
    offset: usize,
    args: (usize, Option<String>, Duration),
) -> anyhow::Result<Vec<f64>> {
    let (turns, workspace, timeout) = args;
    let conv = client
        .create_conversation(workspace.as_deref(), None)
        .await?;
    let mut events = Box::pin(client.events(&conv, 0).await?);
    let mut latencies = Vec::with_capacity(turns);
    for t in 0..turns {
        let q = &questions[(offset + t) % questions.len()];
        let started = Instant::now();
        let posted = client.post_message(&conv, q).await?;
        let my_id = posted["message"]["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // Wait for the AI (or system) message that follows ours.
        let mut seen_mine = false;
        let wait = async {
            while let Some(item) = events.next().await {
                let e = item?;
                if e.event != "message.created" {
                    continue;
                }
                let m = &e.data["message"];
                if m["id"].as_str() == Some(my_id.as_str()) {
                    seen_mine = true;
                } else if seen_mine && matches!(m["author"].as_str(), Some("ai" | "system")) {
                    return Ok(());
                }
            }
            bail!("event stream ended")
        };
        tokio::time::timeout(timeout, wait)
            .await
            .context("no reply before the timeout")??;
        latencies.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(latencies)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.questions)
        .with_context(|| format!("cannot read {}", args.questions.display()))?;
    let questions: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect();
    if questions.is_empty() {
        bail!("{} has no questions", args.questions.display());
    }
    let client = Client::new(&args.url)?;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..args.conversations {
        let spec = (
            args.turns,
            args.workspace.clone(),
            Duration::from_secs(args.timeout_seconds),
        );
        tasks.push(tokio::spawn(conversation(
            client.clone(),
            questions.clone(),
            i * 7,
            spec,
        )));
    }
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for t in tasks {
        match t.await {
            Ok(Ok(l)) => latencies.extend(l),
            Ok(Err(e)) => errors.push(e.to_string()),
            Err(e) => errors.push(e.to_string()),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    println!(
        "conversations={} turns_each={} replies={} errors={} elapsed_s={:.2}",
        args.conversations,
        args.turns,
        latencies.len(),
        errors.len(),
        elapsed
    );
    println!(
        "turn_latency_ms p50={:.1} p95={:.1} p99={:.1} max={:.1}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 95.0),
        percentile(&latencies, 99.0),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!("replies_per_second={:.1}", latencies.len() as f64 / elapsed);
    for e in errors.iter().take(5) {
        eprintln!("error: {e}");
    }
    if !errors.is_empty() {
        bail!("{} conversations failed", errors.len());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[7.0], 95.0), 7.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
