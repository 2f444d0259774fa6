//! `concierge demo`: the Nimbus Home demo workspace (fictional company; content in `demo/`),
//! ingested and served. Re-running reuses the workspace and its history.

use anyhow::Context;
use chrono::{DateTime, Utc};
use concierge_config::Config;
use concierge_core::*;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEMO_WORKSPACE: &str = "nimbus";

#[derive(clap::Args)]
pub struct DemoArgs {
    /// Where the demo content lives (knowledge base, customers).
    #[arg(long, env = "CONCIERGE_DEMO_DIR")]
    demo_dir: Option<PathBuf>,
    /// Address to serve on (overrides server.bind).
    #[arg(long)]
    bind: Option<String>,
    /// Prepare the workspace and exit without serving.
    #[arg(long)]
    no_serve: bool,
}

/// A customer of `demo/customers.json`, with their orders.
#[derive(Deserialize)]
pub struct DemoCustomer {
    pub external_id: String,
    pub name: String,
    pub email: String,
    phone: Option<String>,
    tier: Option<String>,
    #[serde(default)]
    pub orders: Vec<DemoOrder>,
}

#[derive(Deserialize)]
pub struct DemoOrder {
    pub number: String,
    status: String,
    placed_at: DateTime<Utc>,
    currency: String,
    total_cents: i64,
    #[serde(flatten)]
    details: serde_json::Map<String, serde_json::Value>,
}

/// The demo folder: `--demo-dir`, else the repository's `demo/` (where the binary was built
/// from), else `./demo`.
pub(crate) fn demo_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let candidates = [
        arg,
        Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../demo")),
        Some(PathBuf::from("demo")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.join("kb").is_dir())
        .context("cannot find the demo content (a folder with kb/); pass --demo-dir")
}

async fn load_customers(
    store: &dyn Store,
    workspace: WorkspaceId,
    path: &Path,
) -> anyhow::Result<Vec<DemoCustomer>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let customers: Vec<DemoCustomer> =
        serde_json::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
    for c in &customers {
        let profile = Customer {
            id: CustomerId::new(),
            workspace_id: workspace,
            name: Some(c.name.clone()),
            email: Some(c.email.clone()),
            phone: c.phone.clone(),
            tier: c.tier.clone(),
            created_at: Utc::now(),
        };
        let identity = CustomerIdentity {
            channel: Channel::Api,
            external_id: c.external_id.clone(),
        };
        let customer = store
            .upsert_customer(workspace, &identity, &profile)
            .await?;
        for o in &c.orders {
            store
                .upsert_order(&Order {
                    id: OrderId::new(),
                    workspace_id: workspace,
                    customer_id: customer.id,
                    number: o.number.clone(),
                    status: o.status.clone(),
                    placed_at: o.placed_at,
                    currency: o.currency.clone(),
                    total_cents: o.total_cents,
                    details: serde_json::Value::Object(o.details.clone()),
                })
                .await?;
        }
    }
    Ok(customers)
}

/// The demo workspace, created (or brought up to date) in the configured store.
pub struct Prepared {
    pub store: std::sync::Arc<concierge_store::SqlStore>,
    pub kb: std::sync::Arc<concierge_knowledge::KnowledgeBase>,
    pub workspace: Workspace,
    /// The demo's customers, as loaded.
    pub customers: Vec<DemoCustomer>,
    existing: bool,
    report: concierge_knowledge::IngestReport,
    understanding: String,
    people: People,
}

/// Creates or updates the demo workspace from `dir` (`--demo-dir`; default: the repository's
/// `demo/`): customers and orders, the knowledge base, intents, routing, procedures, teams and
/// console accounts. `progress` shows the knowledge base's sync.
pub async fn prepare(
    config: &Config,
    dir: Option<PathBuf>,
    progress: bool,
) -> anyhow::Result<Prepared> {
    let dir = demo_dir(dir)?;
    let store = concierge_server::open_store(config).await?;
    let existing = store.workspace_by_slug(DEMO_WORKSPACE).await?.is_some();
    let workspace = store
        .ensure_workspace(DEMO_WORKSPACE, "Nimbus Home (demo)", true)
        .await?;
    let ws = workspace.id;
    let customers = load_customers(store.as_ref(), ws, &dir.join("customers.json")).await?;
    let kb = concierge_server::open_knowledge(config, store.clone()).await?;
    let source = concierge_knowledge::DirectorySource::new(&dir.join("kb"))?;
    let bar = progress.then(crate::progress_bar);
    let report = kb
        .sync(ws, &source, &|done, total| {
            if let Some(bar) = &bar {
                bar(done, total)
            }
        })
        .await?;
    if progress {
        eprintln!();
    }
    for e in &report.errors {
        eprintln!("skipped {e}");
    }
    let understanding = load_understanding(store.as_ref(), &kb, ws, &dir).await?;
    let people = load_people(store.as_ref(), ws, &dir).await?;
    Ok(Prepared {
        store,
        kb,
        workspace,
        existing,
        report,
        customers,
        understanding,
        people,
    })
}

pub async fn run(mut config: Config, args: DemoArgs) -> anyhow::Result<()> {
    config.server.public_workspace = DEMO_WORKSPACE.to_string();
    config.server.chat_title = "Nimbus Home Support".to_string();
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    let Prepared {
        store,
        kb,
        workspace: ws,
        existing,
        report,
        customers,
        understanding,
        people,
    } = prepare(&config, args.demo_dir, true).await?;
    let key = if store.list_api_keys(ws.id).await?.is_empty() {
        let (_, key) = concierge_server::create_api_key(store.as_ref(), ws.id, "demo")
            .await
            .map_err(|e| anyhow::anyhow!(e.detail))?;
        Some(key)
    } else {
        None
    };
    println!(
        "Nimbus Home demo workspace {}: {} articles ({} new, {} updated, {} unchanged, {} removed), {} chunks; {} customers, {} orders.",
        if existing { "reused" } else { "created" },
        report.added + report.updated + report.unchanged,
        report.added,
        report.updated,
        report.unchanged,
        report.deleted,
        report.chunks,
        customers.len(),
        customers.iter().map(|c| c.orders.len()).sum::<usize>()
    );
    println!("{understanding}");
    println!("Data directory: {}", config.storage.data_dir.display());
    if args.no_serve {
        return Ok(());
    }
    let app = concierge_server::Application::build_with(config, store, kb).await?;
    let base = format!("http://{}", app.local_addr()?);
    println!();
    println!("  Web chat        {base}/");
    println!("  Widget example  {base}/widget-demo");
    println!("  API docs        {base}/docs   (OpenAPI: {base}/openapi.json)");
    println!("  Health          {base}/healthz  {base}/readyz  {base}/metrics");
    println!("  Terminal chat   concierge chat --url {base}");
    println!(
        "  Agent console   {base}/console   sign in to workspace {DEMO_WORKSPACE} as {} with the password {}   (new each run)",
        people.emails.join(", "),
        people.password
    );
    match key {
        Some(k) => println!("  Admin API key   {k}   (shown once; list conversations with it)"),
        None => println!(
            "  Admin API key   created on the first run; make another with `concierge keys create --workspace {DEMO_WORKSPACE}`"
        ),
    }
    println!();
    println!(
        "Try: \"How long do refunds take?\", \"My thermostat shows E4\", \"Can I change my shipping address?\""
    );
    println!("Press Ctrl-C to stop; history is kept for the next run.");
    app.run_until_stopped().await
}

/// Stores the demo's intents (`intents.json`), routing policy (`routing.json`) and procedures
/// (`procedures.json`) as the
/// workspace's settings and trains the intent model when the intents changed.
async fn load_understanding(
    store: &dyn Store,
    kb: &concierge_knowledge::KnowledgeBase,
    ws: WorkspaceId,
    dir: &Path,
) -> anyhow::Result<String> {
    use concierge_understand::routing::{ROUTING, RoutingPolicy};
    use concierge_understand::triage::{INTENTS, IntentSettings};
    let read = |name: &str| -> anyhow::Result<serde_json::Value> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))
    };
    let intents = read("intents.json")?;
    let settings: IntentSettings =
        serde_json::from_value(intents.clone()).context("demo/intents.json")?;
    settings
        .validate()
        .map_err(|p| anyhow::anyhow!("demo/intents.json: {p:?}"))?;
    let routing = read("routing.json")?;
    let policy: RoutingPolicy =
        serde_json::from_value(routing.clone()).context("demo/routing.json")?;
    policy
        .validate()
        .map_err(|p| anyhow::anyhow!("demo/routing.json: {p:?}"))?;
    store
        .put_setting(ws, INTENTS, &serde_json::to_value(&settings)?)
        .await?;
    store
        .put_setting(ws, ROUTING, &serde_json::to_value(&policy)?)
        .await?;
    let procedures: concierge_agent::procedures::ProcedureSettings =
        serde_json::from_value(read("procedures.json")?).context("demo/procedures.json")?;
    procedures
        .validate(&concierge_agent::tools::ToolRegistry::builtin(), ws)
        .map_err(|p| anyhow::anyhow!("demo/procedures.json: {}", p.join("; ")))?;
    store
        .put_setting(
            ws,
            concierge_agent::procedures::PROCEDURES_SETTING,
            &serde_json::to_value(&procedures)?,
        )
        .await?;
    let (result, _) = concierge_agent::train_intents(store, kb, ws)
        .await
        .map_err(|e| anyhow::anyhow!("training the demo intents: {e}"))?;
    Ok(format!(
        "{} intents ({}), {} routing rules, {} procedures.",
        settings.intents.len(),
        if result["trained"] == true {
            format!(
                "model trained on {} examples in {:.1}s",
                result["examples"],
                result["train_seconds"].as_f64().unwrap_or(0.0)
            )
        } else {
            "model up to date".to_string()
        },
        policy.rules.len(),
        procedures.procedures.len()
    ))
}

/// The demo's console accounts, with this run's password.
struct People {
    emails: Vec<String>,
    password: String,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoAgent {
    email: String,
    name: String,
    role: Role,
    teams: Vec<String>,
    skills: Skills,
    capacity: u32,
}

/// Stores the demo's teams (`teams.json`) and console accounts (`agents.json`). The accounts'
/// password is new on every run (printed with the addresses): this is demo data.
async fn load_people(store: &dyn Store, ws: WorkspaceId, dir: &Path) -> anyhow::Result<People> {
    let read = |name: &str| -> anyhow::Result<String> {
        let path = dir.join(name);
        std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))
    };
    let teams: TeamSettings =
        serde_json::from_str(&read("teams.json")?).context("demo/teams.json")?;
    teams
        .validate()
        .map_err(|p| anyhow::anyhow!("demo/teams.json: {}", p.join("; ")))?;
    store
        .put_setting(
            ws,
            concierge_agent::humans::TEAMS,
            &serde_json::to_value(&teams)?,
        )
        .await?;
    let agents: Vec<DemoAgent> =
        serde_json::from_str(&read("agents.json")?).context("demo/agents.json")?;
    let mut bytes = [0u8; 9];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let password = format!("nimbus-{}", hex::encode(bytes));
    let hash =
        concierge_server::auth::hash_password(&password).map_err(|e| anyhow::anyhow!(e.detail))?;
    let mut emails = Vec::new();
    for a in agents {
        let account = AgentAccount {
            id: AgentId::new(),
            workspace_id: ws,
            email: a.email.to_lowercase(),
            name: a.name,
            role: a.role,
            password_hash: hash.clone(),
            teams: a.teams,
            skills: a.skills,
            capacity: a.capacity,
            available: true,
            last_seen_at: None,
            created_at: Utc::now(),
        };
        match store.agent_by_email(ws, &account.email).await? {
            Some(existing) => {
                store
                    .update_agent(&AgentAccount {
                        id: existing.id,
                        available: existing.available,
                        created_at: existing.created_at,
                        ..account.clone()
                    })
                    .await?
            }
            None => store.create_agent(&account).await?,
        }
        emails.push(account.email);
    }
    Ok(People { emails, password })
}
