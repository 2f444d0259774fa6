//! `concierge chat`: a terminal chat client for a running server. Replies stream in as they
//! are produced; sources are listed under each answer. `/person` asks for a human, `/quit` ends.

use crate::sse::Client;
use futures::StreamExt;
use std::io::Write;
use tokio::io::{AsyncBufReadExt, BufReader};

#[derive(clap::Args)]
pub struct ChatArgs {
    /// Server base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "CONCIERGE_URL")]
    url: String,
    /// Workspace slug (defaults to the server's public workspace).
    #[arg(long)]
    workspace: Option<String>,
    /// Chat as this known customer (their external id, e.g. `cus_1005` in the demo), so order
    /// look-ups and actions work on their records. Needs a workspace API key (`--key`).
    #[arg(long = "as", requires = "key")]
    as_customer: Option<String>,
    /// Workspace API key (only used with `--as`).
    #[arg(long, env = "CONCIERGE_API_KEY")]
    key: Option<String>,
}

pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.url)?;
    let conv = client
        .create_conversation(
            args.workspace.as_deref(),
            args.key.as_deref().zip(args.as_customer.as_deref()),
        )
        .await?;
    println!(
        "Connected to {} (conversation {}). Type your question; /person for a human, /quit to leave.",
        args.url,
        conv.id()
    );
    let mut events = Box::pin(client.events(&conv, 0).await?);
    let printer = tokio::spawn(async move {
        let mut streaming: Option<String> = None;
        while let Some(item) = events.next().await {
            let Ok(e) = item else { break };
            match e.event.as_str() {
                "message.delta" => {
                    let id = e.data["message_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    if streaming.as_deref() != Some(id.as_str()) {
                        print!("\nassistant> ");
                        streaming = Some(id);
                    }
                    print!("{}", e.data["delta"].as_str().unwrap_or_default());
                    let _ = std::io::stdout().flush();
                }
                "message.created" => {
                    let m = &e.data["message"];
                    let author = m["author"].as_str().unwrap_or_default();
                    let id = m["id"].as_str().unwrap_or_default();
                    if author == "customer" {
                        continue;
                    }
                    if streaming.as_deref() != Some(id) {
                        print!("\n{author}> {}", m["text"].as_str().unwrap_or_default());
                    }
                    streaming = None;
                    println!();
                    if let Some(cites) = m["citations"].as_array().filter(|c| !c.is_empty()) {
                        println!("sources:");
                        for c in cites {
                            println!(
                                "  [{}] {} {}",
                                c["n"],
                                c["title"].as_str().unwrap_or_default(),
                                c["url"].as_str().unwrap_or_default()
                            );
                        }
                    }
                    print!("you> ");
                    let _ = std::io::stdout().flush();
                }
                "status.changed" => {
                    println!(
                        "\n[status: {} -> {}]",
                        e.data["from"].as_str().unwrap_or("?"),
                        e.data["to"].as_str().unwrap_or("?")
                    );
                }
                _ => {}
            }
        }
    });
    print!("you> ");
    let _ = std::io::stdout().flush();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let line = line.trim();
        match line {
            "" => {
                print!("you> ");
                let _ = std::io::stdout().flush();
            }
            "/quit" | "/exit" => break,
            "/person" => {
                client.handoff(&conv).await?;
            }
            text => {
                client.post_message(&conv, text).await?;
            }
        }
    }
    printer.abort();
    Ok(())
}
