//! External MCP servers as tool sources: Concierge connects as a client (stdio child process or
//! Streamable HTTP), negotiates the version (2026-07-28 `server/discover` first over HTTP, the
//! `initialize` handshake otherwise), lists every tool across pages, and wraps each as a
//! registry [`Tool`] named `<server>.<tool>`, under the same policy as the built-in ones: a tool
//! the server does not mark read-only counts as a write (the customer confirms it, and it needs
//! an idempotency key), calls time out, and an oversized result is refused.

use concierge_agent::tools::{
    Tool, ToolAnnotations, ToolContext, ToolEnv, ToolError, ToolResult, ToolSpec,
};
use rmcp::model::{CallToolRequestParams, ClientCapabilities, ClientConfig, Implementation};
use rmcp::service::RunningService;
use rmcp::transport::{ConfigureCommandExt, StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientLifecycleMode, ClientServiceExt, RoleClient, ServiceExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How to reach one external server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    /// `[a-z0-9_-]{1,32}`: the prefix of its tools' names.
    pub name: String,
    pub transport: ServerTransport,
    /// Most time one call may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Largest result accepted from one call (its JSON), in bytes.
    #[serde(default = "default_max_output")]
    pub max_output_bytes: usize,
}

fn default_timeout() -> u64 {
    20
}

fn default_max_output() -> usize {
    64 * 1024
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ServerTransport {
    /// A command started as a child process, speaking MCP on its stdin/stdout.
    Stdio {
        command: String,
        #[serde(default)]
        args: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        url: String,
        /// Sent as `Authorization: Bearer <token>`.
        #[serde(default)]
        bearer_token: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server: {0}")]
    Invalid(String),
    #[error("cannot reach MCP server {server}: {message}")]
    Connect { server: String, message: String },
}

impl ServerSpec {
    pub fn validate(&self) -> Result<(), ClientError> {
        let ok = !self.name.is_empty()
            && self.name.len() <= 32
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if !ok {
            return Err(ClientError::Invalid(format!(
                "server name {:?} must be 1–32 of a-z, 0-9, _ and -",
                self.name
            )));
        }
        if !(1..=600).contains(&self.timeout_seconds) {
            return Err(ClientError::Invalid(
                "timeout_seconds must be 1..=600".into(),
            ));
        }
        match &self.transport {
            ServerTransport::Stdio { command, .. } if command.trim().is_empty() => {
                Err(ClientError::Invalid("stdio needs a command".into()))
            }
            ServerTransport::Http { url, .. }
                if !(url.starts_with("http://") || url.starts_with("https://")) =>
            {
                Err(ClientError::Invalid(format!(
                    "{url:?} is not an http(s) URL"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// Our side of a client session: announces Concierge and notes `tools/list_changed`.
#[derive(Clone)]
struct Listener {
    info: ClientConfig,
    changed: Arc<tokio::sync::Notify>,
}

impl rmcp::ClientHandler for Listener {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    async fn on_tool_list_changed(&self, _cx: rmcp::service::NotificationContext<RoleClient>) {
        self.changed.notify_one();
    }
}

/// The tools a server offers, split into usable ones and skipped ones (with why).
struct Discovered {
    tools: Vec<rmcp::model::Tool>,
    skipped: Vec<String>,
}

/// A live connection to one external server and the tools it offered.
pub struct Connection {
    pub spec: ServerSpec,
    client: RunningService<RoleClient, Listener>,
    discovered: std::sync::RwLock<Discovered>,
    /// Notified when the server says its tool list changed.
    changed: Arc<tokio::sync::Notify>,
    /// Dropped with the connection: its receivers (the watchers) see the channel close.
    gone: tokio::sync::watch::Sender<()>,
}

impl Connection {
    pub async fn connect(spec: ServerSpec) -> Result<Arc<Self>, ClientError> {
        spec.validate()?;
        let fail = |message: String| ClientError::Connect {
            server: spec.name.clone(),
            message,
        };
        let changed = Arc::new(tokio::sync::Notify::new());
        let config = Listener {
            // The initialize handshake names the newest handshake-era revision; 2026-07-28 is
            // negotiated by `server/discover`, never by initialize.
            info: ClientConfig::new(
                ClientCapabilities::default(),
                Implementation::new("concierge", env!("CARGO_PKG_VERSION")),
            )
            .with_protocol_version(rmcp::model::ProtocolVersion::V_2025_11_25),
            changed: changed.clone(),
        };
        let client = match &spec.transport {
            ServerTransport::Stdio { command, args, env } => {
                let cmd = tokio::process::Command::new(command).configure(|c| {
                    c.args(args).envs(env).stderr(std::process::Stdio::null());
                });
                let transport = TokioChildProcess::new(cmd).map_err(|e| fail(e.to_string()))?;
                config
                    .serve(transport)
                    .await
                    .map_err(|e| fail(e.to_string()))?
            }
            ServerTransport::Http { url, bearer_token } => {
                let transport = || {
                    let mut c = rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig::with_uri(url.clone());
                    if let Some(t) = bearer_token {
                        c = c.auth_header(t.clone());
                    }
                    StreamableHttpClientTransport::from_config(c)
                };
                // The 2026-07-28 discovery first; a server that answers it without a version we
                // share, or not at all, gets the initialize handshake.
                match config
                    .clone()
                    .serve_with_lifecycle(
                        transport(),
                        ClientLifecycleMode::Auto {
                            preferred_versions: vec![rmcp::model::ProtocolVersion::V_2026_07_28],
                            legacy_version: Some(rmcp::model::ProtocolVersion::V_2025_11_25),
                        },
                    )
                    .await
                {
                    Ok(c) => c,
                    Err(first) => config.serve(transport()).await.map_err(|e| {
                        fail(format!("{e} (after server/discover failed: {first})"))
                    })?,
                }
            }
        };
        let discovered = discover(&spec.name, &client)
            .await
            .map_err(|e| fail(format!("tools/list: {e}")))?;
        let gone = tokio::sync::watch::channel(()).0;
        // 2026-07-28 has no sessions to carry notifications: a `subscriptions/listen` stream
        // does, when the server announces tool list changes.
        let stateless = client
            .peer_info()
            .is_some_and(|i| i.protocol_version == rmcp::model::ProtocolVersion::V_2026_07_28);
        let announces = client
            .peer_info()
            .and_then(|i| i.capabilities.tools.as_ref().and_then(|t| t.list_changed))
            .unwrap_or(false);
        if stateless && announces {
            let filter = rmcp::model::SubscriptionFilter::builder()
                .tools_list_changed()
                .build();
            match client.listen(filter).await {
                Ok(mut subscription) => {
                    let (changed, mut gone, name) =
                        (changed.clone(), gone.subscribe(), spec.name.clone());
                    tokio::spawn(async move {
                        loop {
                            tokio::select! {
                                _ = gone.changed() => return,
                                next = subscription.next() => match next {
                                    Ok(Some(rmcp::model::ServerNotification::ToolListChangedNotification(_))) => {
                                        changed.notify_one();
                                    }
                                    Ok(Some(_)) => {}
                                    Ok(None) | Err(_) => {
                                        tracing::info!(server = %name, "MCP subscription ended");
                                        return;
                                    }
                                },
                            }
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(server = %spec.name, error = %e, "cannot subscribe to tool changes");
                }
            }
        }
        Ok(Arc::new(Self {
            spec,
            client,
            discovered: std::sync::RwLock::new(discovered),
            changed,
            gone,
        }))
    }

    /// Lists the server's tools again (after `tools/list_changed`).
    pub async fn refresh(&self) -> Result<(), ClientError> {
        let d =
            discover(&self.spec.name, &self.client)
                .await
                .map_err(|e| ClientError::Connect {
                    server: self.spec.name.clone(),
                    message: format!("tools/list: {e}"),
                })?;
        if let Ok(mut current) = self.discovered.write() {
            *current = d;
        }
        Ok(())
    }

    /// Whether the transport died (the server exited or the connection broke).
    pub fn is_closed(&self) -> bool {
        self.client.is_transport_closed()
    }

    /// Tools skipped at discovery, with why (bad name or schema).
    pub fn skipped(&self) -> Vec<String> {
        self.discovered
            .read()
            .map(|d| d.skipped.clone())
            .unwrap_or_default()
    }

    /// The tools as the server described them.
    pub fn tools(&self) -> Vec<rmcp::model::Tool> {
        self.discovered
            .read()
            .map(|d| d.tools.clone())
            .unwrap_or_default()
    }

    /// The negotiated protocol version.
    pub fn protocol_version(&self) -> Option<String> {
        self.client
            .peer_info()
            .map(|i| i.protocol_version.to_string())
    }

    /// Each tool as a registry tool named `<server>.<tool>`.
    pub fn registry_tools(self: &Arc<Self>) -> Vec<Arc<dyn Tool>> {
        self.tools()
            .iter()
            .map(|t| {
                let a = t.annotations.clone().unwrap_or_default();
                // MCP's defaults: not read-only, destructive, not idempotent, open world.
                let read_only = a.read_only_hint.unwrap_or(false);
                let annotations = ToolAnnotations {
                    read_only,
                    destructive: !read_only && a.destructive_hint.unwrap_or(true),
                    idempotent: a.idempotent_hint.unwrap_or(false),
                    needs_confirmation: !read_only,
                    open_world: a.open_world_hint.unwrap_or(true),
                };
                let spec = ToolSpec {
                    name: format!("{}.{}", self.spec.name, t.name),
                    title: t
                        .title
                        .clone()
                        .or_else(|| a.title.clone())
                        .unwrap_or_else(|| t.name.to_string()),
                    description: t.description.as_deref().unwrap_or_default().to_string(),
                    input_schema: Value::Object((*t.input_schema).clone()),
                    output_schema: t
                        .output_schema
                        .as_ref()
                        .map(|s| Value::Object((**s).clone())),
                    annotations,
                };
                Arc::new(ExternalTool {
                    connection: self.clone(),
                    remote: t.name.to_string(),
                    spec,
                }) as Arc<dyn Tool>
            })
            .collect()
    }

    /// Calls a tool of this server by its own name.
    pub async fn call(&self, tool: &str, args: Value) -> ToolResult {
        let arguments = match args {
            Value::Object(o) => o,
            Value::Null => serde_json::Map::new(),
            _ => return Err(ToolError::Failed("arguments must be an object".into())),
        };
        let request = CallToolRequestParams::new(tool.to_string()).with_arguments(arguments);
        let timeout = Duration::from_secs(self.spec.timeout_seconds);
        let result = match tokio::time::timeout(timeout, self.client.call_tool(request)).await {
            Err(_) => {
                return Err(ToolError::Failed(format!(
                    "{}.{tool} did not answer within {}s",
                    self.spec.name, self.spec.timeout_seconds
                )));
            }
            Ok(Err(e)) => {
                return Err(ToolError::Failed(format!("{}.{tool}: {e}", self.spec.name)));
            }
            Ok(Ok(r)) => r,
        };
        let size = serde_json::to_vec(&result)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > self.spec.max_output_bytes {
            return Err(ToolError::Failed(format!(
                "{}.{tool} returned {size} bytes, more than the {} allowed",
                self.spec.name, self.spec.max_output_bytes
            )));
        }
        let text: Vec<String> = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        if result.is_error == Some(true) {
            return Err(ToolError::Failed(if text.is_empty() {
                format!("{}.{tool} failed", self.spec.name)
            } else {
                text.join("\n")
            }));
        }
        Ok(match result.structured_content {
            Some(v) => v,
            None => serde_json::json!({ "text": text.join("\n") }),
        })
    }

    /// Closes the connection (a child process is stopped), even while registry tools still
    /// hold it: their calls fail from then on.
    pub async fn close(self: Arc<Self>) {
        self.client.cancellation_token().cancel();
    }
}

/// One external tool in the registry.
struct ExternalTool {
    connection: Arc<Connection>,
    remote: String,
    spec: ToolSpec,
}

#[async_trait::async_trait]
impl Tool for ExternalTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    fn check_args(&self, args: &Value) -> Result<(), ToolError> {
        let Some(object) = args.as_object() else {
            return Err(ToolError::Failed("invalid arguments: not an object".into()));
        };
        let missing: Vec<&str> = self.spec.input_schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|k| !object.contains_key(*k))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(ToolError::Failed(format!(
                "invalid arguments: missing {}",
                missing.join(", ")
            )))
        }
    }

    async fn call(&self, _env: &ToolEnv, _ctx: &ToolContext, args: Value) -> ToolResult {
        self.check_args(&args)?;
        self.connection.call(&self.remote, args).await
    }
}

/// The workspace setting listing its external MCP servers.
pub const MCP_SERVERS_SETTING: &str = "mcp_servers";

/// A workspace's external MCP servers (`GET/PUT /v1/mcp/servers`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpServers {
    pub servers: Vec<ServerSpec>,
}

impl McpServers {
    /// Every problem, so a bad list is rejected whole.
    pub fn validate(&self) -> Result<(), Vec<String>> {
        let mut problems: Vec<String> = self
            .servers
            .iter()
            .filter_map(|s| s.validate().err().map(|e| e.to_string()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for s in &self.servers {
            if !seen.insert(s.name.as_str()) {
                problems.push(format!("server name {:?} is used twice", s.name));
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// One server's state, for the admin API and the CLI.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServerHealth {
    pub name: String,
    pub connected: bool,
    pub protocol_version: Option<String>,
    /// Its tools as the registry names them (`<server>.<tool>`).
    pub tools: Vec<String>,
    pub skipped: Vec<String>,
    pub error: Option<String>,
    pub checked_at: chrono::DateTime<chrono::Utc>,
}

/// The live connections to every workspace's external servers, their tools registered in the
/// agent's registry. A server that cannot be reached contributes no tools and reports why;
/// [`ExternalServers::supervise`] reconnects dead connections with backoff.
pub struct ExternalServers {
    service: Arc<concierge_agent::Service>,
    connections: tokio::sync::Mutex<
        std::collections::HashMap<(concierge_core::WorkspaceId, String), Arc<Connection>>,
    >,
    health:
        std::sync::Mutex<std::collections::HashMap<concierge_core::WorkspaceId, Vec<ServerHealth>>>,
    /// The configuration each workspace's connections were made from (as JSON), so a change
    /// stored by the CLI or another replica is noticed and applied.
    loaded: std::sync::Mutex<std::collections::HashMap<concierge_core::WorkspaceId, String>>,
}

impl ExternalServers {
    pub fn new(service: Arc<concierge_agent::Service>) -> Arc<Self> {
        Arc::new(Self {
            service,
            connections: Default::default(),
            health: Default::default(),
            loaded: Default::default(),
        })
    }

    async fn settings(&self, ws: concierge_core::WorkspaceId) -> Result<McpServers, String> {
        match self
            .service
            .store
            .setting(ws, MCP_SERVERS_SETTING)
            .await
            .map_err(|e| e.to_string())?
        {
            Some(v) => serde_json::from_value(v).map_err(|e| format!("stored MCP servers: {e}")),
            None => Ok(McpServers::default()),
        }
    }

    pub async fn get(&self, ws: concierge_core::WorkspaceId) -> Result<McpServers, String> {
        self.settings(ws).await
    }

    /// Stores the workspace's servers and connects to them; returns their health.
    pub async fn put(
        &self,
        ws: concierge_core::WorkspaceId,
        servers: &McpServers,
    ) -> Result<Vec<ServerHealth>, Vec<String>> {
        servers.validate()?;
        let value = serde_json::to_value(servers).map_err(|e| vec![e.to_string()])?;
        self.service
            .store
            .put_setting(ws, MCP_SERVERS_SETTING, &value)
            .await
            .map_err(|e| vec![e.to_string()])?;
        self.load(ws).await.map_err(|e| vec![e])
    }

    /// (Re)connects to the workspace's servers as configured and registers their tools.
    pub async fn load(&self, ws: concierge_core::WorkspaceId) -> Result<Vec<ServerHealth>, String> {
        let settings = self.settings(ws).await?;
        if let Ok(mut loaded) = self.loaded.lock() {
            loaded.insert(ws, serde_json::to_string(&settings).unwrap_or_default());
        }
        let mut connections = self.connections.lock().await;
        // Servers no longer listed: tools removed, connections closed.
        let listed: std::collections::HashSet<&str> =
            settings.servers.iter().map(|s| s.name.as_str()).collect();
        let gone: Vec<(concierge_core::WorkspaceId, String)> = connections
            .keys()
            .filter(|(w, name)| *w == ws && !listed.contains(name.as_str()))
            .cloned()
            .collect();
        for key in gone {
            self.service.tools.set_external(ws, &key.1, vec![]);
            if let Some(c) = connections.remove(&key) {
                c.close().await;
            }
        }
        let mut health = Vec::new();
        for spec in settings.servers {
            let key = (ws, spec.name.clone());
            if let Some(old) = connections.remove(&key) {
                old.close().await;
            }
            let checked_at = chrono::Utc::now();
            match Connection::connect(spec.clone()).await {
                Ok(c) => {
                    let tools = c.registry_tools();
                    let names = tools.iter().map(|t| t.spec().name.clone()).collect();
                    self.service.tools.set_external(ws, &spec.name, tools);
                    health.push(ServerHealth {
                        name: spec.name.clone(),
                        connected: true,
                        protocol_version: c.protocol_version(),
                        tools: names,
                        skipped: c.skipped(),
                        error: None,
                        checked_at,
                    });
                    self.watch(ws, &c);
                    connections.insert(key, c);
                }
                Err(e) => {
                    tracing::warn!(server = %spec.name, error = %e, "MCP server unavailable");
                    self.service.tools.set_external(ws, &spec.name, vec![]);
                    health.push(ServerHealth {
                        name: spec.name.clone(),
                        connected: false,
                        protocol_version: None,
                        tools: vec![],
                        skipped: vec![],
                        error: Some(e.to_string()),
                        checked_at,
                    });
                }
            }
        }
        if let Ok(mut h) = self.health.lock() {
            h.insert(ws, health.clone());
        }
        Ok(health)
    }

    /// Re-lists a server's tools whenever it announces a change, until the connection goes.
    fn watch(&self, ws: concierge_core::WorkspaceId, connection: &Arc<Connection>) {
        let weak = Arc::downgrade(connection);
        let changed = connection.changed.clone();
        let mut gone = connection.gone.subscribe();
        let service = self.service.clone();
        let name = connection.spec.name.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = gone.changed() => return,
                    _ = changed.notified() => {}
                }
                let Some(c) = weak.upgrade() else { return };
                match c.refresh().await {
                    Ok(()) => {
                        tracing::info!(server = %name, "MCP server's tools changed: re-listed");
                        service.tools.set_external(ws, &name, c.registry_tools());
                    }
                    Err(e) => tracing::warn!(server = %name, error = %e, "cannot re-list tools"),
                }
            }
        });
    }

    /// The last known health of the workspace's servers.
    pub fn health(&self, ws: concierge_core::WorkspaceId) -> Vec<ServerHealth> {
        self.health
            .lock()
            .ok()
            .and_then(|h| h.get(&ws).cloned())
            .unwrap_or_default()
    }

    /// Connects every workspace's configured servers.
    pub async fn load_all(&self) {
        let Ok(workspaces) = self.service.store.list_workspaces().await else {
            return;
        };
        for w in workspaces {
            if let Err(e) = self.load(w.id).await {
                tracing::warn!(workspace = %w.slug, error = %e, "cannot load MCP servers");
            }
        }
    }

    /// Until `stop` resolves: applies configuration stored elsewhere (the CLI, another replica)
    /// within 5 s, and reconnects workspaces whose connections died or whose servers were
    /// unreachable, with exponential backoff (5 s doubling to 5 min).
    pub async fn supervise(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut backoff = SETTINGS_POLL;
        let mut retry_at = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(SETTINGS_POLL) => {}
            }
            // Configuration changed elsewhere (the CLI, another replica): apply it now.
            for ws in self.changed_settings().await {
                tracing::info!(workspace = %ws, "MCP servers changed in the store: reconnecting");
                let _ = self.load(ws).await;
            }
            // Dead or failing servers: retried with exponential backoff.
            if tokio::time::Instant::now() < retry_at {
                continue;
            }
            let unhealthy: std::collections::HashSet<concierge_core::WorkspaceId> = {
                let connections = self.connections.lock().await;
                let dead = connections
                    .iter()
                    .filter(|(_, c)| c.is_closed())
                    .map(|((ws, _), _)| *ws);
                let failing = self
                    .health
                    .lock()
                    .map(|h| {
                        h.iter()
                            .filter(|(_, list)| list.iter().any(|s| !s.connected))
                            .map(|(ws, _)| *ws)
                            .collect::<Vec<_>>()
                    })
                    .unwrap_or_default();
                dead.chain(failing).collect()
            };
            if unhealthy.is_empty() {
                backoff = SETTINGS_POLL;
                continue;
            }
            for ws in unhealthy {
                let _ = self.load(ws).await;
            }
            backoff = (backoff * 2).min(Duration::from_secs(300));
            retry_at = tokio::time::Instant::now() + backoff;
        }
    }

    /// Workspaces whose stored MCP servers differ from what their connections were made from.
    async fn changed_settings(&self) -> Vec<concierge_core::WorkspaceId> {
        let Ok(workspaces) = self.service.store.list_workspaces().await else {
            return vec![];
        };
        let mut out = Vec::new();
        for w in workspaces {
            let Ok(now) = self.settings(w.id).await else {
                continue;
            };
            let now = serde_json::to_string(&now).unwrap_or_default();
            let loaded = self
                .loaded
                .lock()
                .map(|l| l.get(&w.id).cloned())
                .unwrap_or(None);
            let empty = serde_json::to_string(&McpServers::default()).unwrap_or_default();
            if loaded.unwrap_or(empty) != now {
                out.push(w.id);
            }
        }
        out
    }
}

/// How often the supervisor looks at the stored configuration and at dead connections.
const SETTINGS_POLL: Duration = Duration::from_secs(5);

/// Every tool of the server across pages, minus those with an invalid name or input schema.
async fn discover(
    server: &str,
    client: &RunningService<RoleClient, Listener>,
) -> Result<Discovered, rmcp::ServiceError> {
    let all = client.list_all_tools().await?;
    let mut tools = Vec::new();
    let mut skipped = Vec::new();
    for t in all {
        let valid_name = !t.name.is_empty()
            && t.name.len() <= 64
            && t.name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        let object = t.input_schema.get("type").and_then(Value::as_str) == Some("object");
        if valid_name && object {
            tools.push(t);
        } else {
            skipped.push(format!("{server}.{}: invalid name or input schema", t.name));
        }
    }
    Ok(Discovered { tools, skipped })
}
