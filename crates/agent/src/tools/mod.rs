//! The tool registry: every action the agent (or an MCP client) can take, with an MCP-style
//! spec (name, description, input and output JSON Schemas generated from the Rust types, and
//! annotations), and the policy every call passes through.
//!
//! Invariants:
//! - **Identity comes from the session.** A call runs for the [`ToolContext`]'s customer, set by
//!   the channel; no tool takes a customer id as an argument, and every record a tool reads or
//!   changes is looked up within that customer's own records.
//! - **Writes need confirmation and an idempotency key.** A tool that is not read-only runs only
//!   when the context says the customer confirmed it (unless its spec says it needs no
//!   confirmation, as asking for a person does) and carries a key; the store applies the write
//!   together with its record, so the same key never writes twice.
//! - **A tool failure is a result.** Bad arguments, a policy refusal or "order not found" come
//!   back as [`ToolError::Failed`]/[`ToolError::Refused`] for the agent to handle; only storage
//!   or index failures are [`ToolError::Infrastructure`] and abort the run.

mod builtin;
mod commerce;

use async_trait::async_trait;
use concierge_core::*;
use concierge_knowledge::KnowledgeBase;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use builtin::REQUEST_HUMAN;
pub(crate) use builtin::summary as order_summary;
pub use commerce::CommercePolicy;

/// MCP tool annotations (hints for clients) plus our own confirmation flag, which is policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolAnnotations {
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    /// The customer must confirm before the call runs.
    pub needs_confirmation: bool,
    /// Talks to systems outside the workspace's own data.
    pub open_world: bool,
}

impl ToolAnnotations {
    pub const READ: Self = Self {
        read_only: true,
        destructive: false,
        idempotent: true,
        needs_confirmation: false,
        open_world: false,
    };
    /// A write the customer must confirm; idempotent through its key.
    pub const WRITE: Self = Self {
        read_only: false,
        destructive: false,
        idempotent: true,
        needs_confirmation: true,
        open_world: false,
    };
    pub const DESTRUCTIVE: Self = Self {
        destructive: true,
        ..Self::WRITE
    };
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolSpec {
    pub name: String,
    pub title: String,
    pub description: String,
    pub input_schema: serde_json::Value,
    pub output_schema: Option<serde_json::Value>,
    pub annotations: ToolAnnotations,
}

/// Makes a generated JSON Schema readable by every MCP client: a property whose schema is the
/// bare `true` (any JSON value, e.g. a `serde_json::Value` field) becomes `{}`, which means the
/// same but is an object (the TypeScript SDK rejects the whole tool list otherwise), and the
/// non-standard integer formats (`uint`, `uint32`, …; the bounds are stated by `minimum`) are
/// dropped.
pub fn portable_schema(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if let Some(serde_json::Value::Object(props)) = o.get_mut("properties") {
                for p in props.values_mut() {
                    if p.as_bool() == Some(true) {
                        *p = serde_json::json!({});
                    }
                }
            }
            if o.get("format")
                .and_then(serde_json::Value::as_str)
                .is_some_and(|f| f.starts_with("uint") || matches!(f, "int8" | "int16" | "int128"))
            {
                o.remove("format");
            }
            for child in o.values_mut() {
                portable_schema(child);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(portable_schema),
        _ => {}
    }
}

impl ToolSpec {
    /// A spec whose schemas are generated from the argument and result types.
    pub fn of<A: JsonSchema, R: JsonSchema>(
        name: &str,
        title: &str,
        description: &str,
        annotations: ToolAnnotations,
    ) -> Self {
        let schema = |s: schemars::Schema| {
            let mut v = serde_json::to_value(s).unwrap_or_default();
            portable_schema(&mut v);
            v
        };
        ToolSpec {
            name: name.into(),
            title: title.into(),
            description: description.into(),
            input_schema: schema(schemars::schema_for!(A)),
            output_schema: Some(schema(schemars::schema_for!(R))),
            annotations,
        }
    }
}

/// Who a call runs for and what the customer agreed to. Built by the agent from the session.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workspace: WorkspaceId,
    pub customer: CustomerId,
    pub conversation: Option<ConversationId>,
    /// The customer confirmed this very call (set by a confirmation step, never by a model).
    pub confirmed: bool,
    /// Required for writes: the same key never writes twice.
    pub idempotency_key: Option<String>,
}

impl ToolContext {
    /// Documents the customer may read: public ones and those shared with them.
    pub fn principals(&self) -> Principals {
        Principals::with([format!("customer:{}", self.customer)])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The tool ran and could not do what was asked; the message is for the customer.
    #[error("{0}")]
    Failed(String),
    /// Policy stopped the call before it ran.
    #[error("refused: {0}")]
    Refused(String),
    /// Storage or index failure: the run aborts (and the turn is retried).
    #[error("infrastructure failure: {0}")]
    Infrastructure(String),
}

impl From<StoreError> for ToolError {
    fn from(e: StoreError) -> Self {
        match e {
            // A write whose precondition no longer holds is an ordinary failure.
            StoreError::Conflict(m) => ToolError::Failed(format!("this could not be done: {m}")),
            other => ToolError::Infrastructure(other.to_string()),
        }
    }
}

pub type ToolResult = Result<serde_json::Value, ToolError>;

/// What tools may use.
pub struct ToolEnv {
    pub store: Arc<dyn Store>,
    pub knowledge: Arc<KnowledgeBase>,
}

#[async_trait]
pub trait Tool: Send + Sync {
    fn spec(&self) -> &ToolSpec;
    /// Whether `args` are arguments this tool takes, without running it (a write is checked
    /// before the customer is asked to confirm it).
    fn check_args(&self, _args: &serde_json::Value) -> Result<(), ToolError> {
        Ok(())
    }
    async fn call(&self, env: &ToolEnv, ctx: &ToolContext, args: serde_json::Value) -> ToolResult;
}

/// Reads typed arguments; a mismatch is a failure the caller sees.
pub(crate) fn parse_args<T: DeserializeOwned>(args: serde_json::Value) -> Result<T, ToolError> {
    let args = if args.is_null() {
        serde_json::json!({})
    } else {
        args
    };
    serde_json::from_value(args).map_err(|e| ToolError::Failed(format!("invalid arguments: {e}")))
}

pub(crate) fn to_value<T: Serialize>(v: &T) -> ToolResult {
    serde_json::to_value(v).map_err(|e| ToolError::Infrastructure(e.to_string()))
}

/// Defines a tool type from its argument and result types and an async function
/// `(env, ctx, args) -> Result<R, ToolError>`.
macro_rules! tool {
    ($ty:ident, $args:ty => $out:ty, $name:expr, $title:expr, $ann:expr, $f:path, $desc:expr $(,)?) => {
        pub(crate) struct $ty(crate::tools::ToolSpec);
        impl $ty {
            pub(crate) fn arc() -> std::sync::Arc<dyn crate::tools::Tool> {
                std::sync::Arc::new($ty(crate::tools::ToolSpec::of::<$args, $out>(
                    $name, $title, $desc, $ann,
                )))
            }
        }
        #[async_trait::async_trait]
        impl crate::tools::Tool for $ty {
            fn spec(&self) -> &crate::tools::ToolSpec {
                &self.0
            }
            fn check_args(&self, args: &serde_json::Value) -> Result<(), crate::tools::ToolError> {
                crate::tools::parse_args::<$args>(args.clone()).map(|_| ())
            }
            async fn call(
                &self,
                env: &crate::tools::ToolEnv,
                ctx: &crate::tools::ToolContext,
                args: serde_json::Value,
            ) -> crate::tools::ToolResult {
                let args: $args = crate::tools::parse_args(args)?;
                let out: $out = $f(env, ctx, args).await?;
                crate::tools::to_value(&out)
            }
        }
    };
}
pub(crate) use tool;

/// Per-call time limit.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// Tools by name.
type ToolMap = BTreeMap<String, Arc<dyn Tool>>;

pub struct ToolRegistry {
    /// Built-in tools, the same for every workspace.
    tools: ToolMap,
    /// Tools of a workspace's external (MCP) servers, named `<server>.<tool>`.
    external: std::sync::RwLock<std::collections::HashMap<WorkspaceId, ToolMap>>,
    /// The workspace whose tool list just changed (MCP sessions tell their clients).
    changes: tokio::sync::broadcast::Sender<WorkspaceId>,
}

/// The name a tool goes by for a language model: `[A-Za-z0-9_-]` only, so an external tool's
/// `<server>.<tool>` becomes `<server>__<tool>`.
pub fn model_name(name: &str) -> String {
    name.replace('.', "__")
}

impl ToolRegistry {
    /// The built-in tools and the commerce actions against the workspace's own data.
    pub fn builtin() -> Self {
        let mut r = ToolRegistry {
            tools: BTreeMap::new(),
            external: Default::default(),
            changes: tokio::sync::broadcast::channel(64).0,
        };
        for t in builtin::all().into_iter().chain(commerce::all()) {
            r.register(t);
        }
        r
    }

    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.spec().name.clone(), tool);
    }

    pub fn specs(&self) -> Vec<&ToolSpec> {
        self.tools.values().map(|t| t.spec()).collect()
    }

    pub fn spec(&self, name: &str) -> Option<&ToolSpec> {
        self.tools.get(name).map(|t| t.spec())
    }

    /// Checks a call's arguments without running it.
    /// Replaces the tools of the workspace's external server `server` (none: removes them).
    /// Listeners learn which workspace's tool list changed (a reconnect with the same tools
    /// is no change).
    pub fn set_external(&self, ws: WorkspaceId, server: &str, tools: Vec<Arc<dyn Tool>>) {
        let prefix = format!("{server}.");
        let fingerprint = |map: &ToolMap| -> Vec<String> {
            map.iter()
                .filter(|(name, _)| name.starts_with(&prefix))
                .map(|(name, t)| {
                    format!(
                        "{name}\u{0}{}",
                        serde_json::to_string(t.spec()).unwrap_or_default()
                    )
                })
                .collect()
        };
        let changed = match self.external.write() {
            Ok(mut all) => {
                let map = all.entry(ws).or_default();
                let before = fingerprint(map);
                map.retain(|name, _| !name.starts_with(&prefix));
                for t in tools {
                    let name = t.spec().name.clone();
                    if name.starts_with(&prefix) {
                        map.insert(name, t);
                    }
                }
                before != fingerprint(map)
            }
            Err(_) => false,
        };
        if changed {
            // Nobody listening is fine.
            let _ = self.changes.send(ws);
        }
    }

    /// Tells which workspace's tool list changed, from now on.
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<WorkspaceId> {
        self.changes.subscribe()
    }

    /// A tool by name: built in, or one of the workspace's external tools.
    fn find(&self, ws: WorkspaceId, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools.get(name).cloned().or_else(|| {
            self.external
                .read()
                .ok()?
                .get(&ws)
                .and_then(|m| m.get(name).cloned())
        })
    }

    /// Every tool the workspace can use: the built-in ones, then its external ones.
    pub fn specs_in(&self, ws: WorkspaceId) -> Vec<ToolSpec> {
        let mut out: Vec<ToolSpec> = self.tools.values().map(|t| t.spec().clone()).collect();
        if let Ok(all) = self.external.read()
            && let Some(m) = all.get(&ws)
        {
            out.extend(m.values().map(|t| t.spec().clone()));
        }
        out
    }

    /// A tool's spec in the workspace.
    pub fn spec_in(&self, ws: WorkspaceId, name: &str) -> Option<ToolSpec> {
        self.find(ws, name).map(|t| t.spec().clone())
    }

    pub fn check_args(
        &self,
        ws: WorkspaceId,
        name: &str,
        args: &serde_json::Value,
    ) -> Result<(), ToolError> {
        self.find(ws, name)
            .ok_or_else(|| ToolError::Failed(format!("there is no tool named {name}")))?
            .check_args(args)
    }

    /// Runs a tool under the policy (see the module invariants).
    pub async fn call(
        &self,
        env: &ToolEnv,
        ctx: &ToolContext,
        name: &str,
        args: serde_json::Value,
    ) -> ToolResult {
        let tool = self
            .find(ctx.workspace, name)
            .ok_or_else(|| ToolError::Failed(format!("there is no tool named {name}")))?;
        let a = tool.spec().annotations;
        if !a.read_only {
            if a.needs_confirmation && !ctx.confirmed {
                return Err(ToolError::Refused(
                    "the customer has not confirmed this action".into(),
                ));
            }
            if ctx.idempotency_key.is_none() {
                return Err(ToolError::Refused(
                    "a write needs an idempotency key".into(),
                ));
            }
        }
        match tokio::time::timeout(CALL_TIMEOUT, tool.call(env, ctx, args)).await {
            Ok(r) => r,
            Err(_) => Err(ToolError::Failed(format!(
                "{name} did not finish within {}s",
                CALL_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// Applies a write for the calling customer and returns the recorded result (the first one,
/// when the key was used before), read back as the tool's result type.
pub(crate) async fn write<R: DeserializeOwned>(
    env: &ToolEnv,
    ctx: &ToolContext,
    tool: &str,
    arguments: serde_json::Value,
    effect: Effect,
    result: serde_json::Value,
) -> Result<R, ToolError> {
    let key = ctx
        .idempotency_key
        .clone()
        .ok_or_else(|| ToolError::Refused("a write needs an idempotency key".into()))?;
    let applied = env
        .store
        .apply_action(ActionWrite {
            workspace_id: ctx.workspace,
            conversation_id: ctx.conversation,
            key,
            tool: tool.into(),
            arguments,
            effect,
            result,
        })
        .await?;
    serde_json::from_value(applied.record.result)
        .map_err(|e| ToolError::Infrastructure(e.to_string()))
}

/// One of the calling customer's orders by the number they typed. Another customer's order and
/// a number that does not exist get the same answer, so nothing leaks.
pub(crate) async fn own_order(
    env: &ToolEnv,
    ctx: &ToolContext,
    typed: &str,
) -> Result<Order, ToolError> {
    let orders = env.store.orders_for_customer(ctx.customer).await?;
    orders
        .into_iter()
        .find(|o| o.workspace_id == ctx.workspace && order_number_matches(o, typed))
        .ok_or_else(|| {
            ToolError::Failed(format!(
                "I could not find an order {} in your account.",
                typed.trim()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn visit(v: &serde_json::Value, at: &str, problems: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(o) => {
                if let Some(serde_json::Value::Object(props)) = o.get("properties") {
                    for (k, p) in props {
                        if p.is_boolean() {
                            problems.push(format!("{at}.properties.{k} is a bare boolean"));
                        }
                    }
                }
                if let Some(f) = o.get("format").and_then(serde_json::Value::as_str)
                    && f.starts_with("uint")
                {
                    problems.push(format!("{at}: format {f}"));
                }
                for (k, c) in o {
                    visit(c, &format!("{at}.{k}"), problems);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| visit(c, at, problems)),
            _ => {}
        }
    }

    #[test]
    fn every_schema_is_portable_to_every_mcp_client() {
        let mut problems = vec![];
        for spec in ToolRegistry::builtin().specs() {
            visit(
                &spec.input_schema,
                &format!("{}.input", spec.name),
                &mut problems,
            );
            if let Some(out) = &spec.output_schema {
                visit(out, &format!("{}.output", spec.name), &mut problems);
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
        // get_order's free-form shipping address is an empty schema, not `true`.
        let order = ToolRegistry::builtin()
            .spec("get_order")
            .cloned()
            .expect("get_order");
        let out = order.output_schema.expect("output schema");
        assert_eq!(out["properties"]["shipping_address"], serde_json::json!({}));
    }
}
