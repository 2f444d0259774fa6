//! Concierge over the Model Context Protocol (the official SDK, `rmcp`): the agent's tool
//! registry served to MCP clients, over stdio (`concierge mcp`) and Streamable HTTP (`/mcp`).
//!
//! Who calls decides what a call may do, exactly as over the REST API:
//! - a **workspace API key** (or the local operator over stdio) is staff: every customer of the
//!   workspace, named per call by the extra `customer` argument (their external id), and every
//!   conversation of the workspace;
//! - a **conversation token** is that conversation's customer: their own records only (the
//!   registry's identity rule: no argument names a customer).
//!
//! The caller's own call is their explicit decision, so a write runs when called (the
//! confirmation step exists for writes a model proposes); it carries the idempotency key the
//! client sends in `_meta["concierge/idempotencyKey"]`, so a retried call never writes twice.
//! A tool failure is a result with `isError`; a protocol failure (unknown tool, bad arguments
//! shape, bad cursor) is a JSON-RPC error, as the specification separates them.

use concierge_agent::Service;
use concierge_agent::tools::{REQUEST_HUMAN, ToolContext, ToolError, ToolSpec};
use concierge_core::*;
use rmcp::model::*;
use rmcp::service::RequestContext;
use rmcp::{ErrorData as McpError, RoleServer, ServerHandler};
use serde_json::{Value, json};
use std::sync::Arc;

/// Tools per page of `tools/list`.
const PAGE: usize = 50;
/// The `_meta` key a client sets to make a write idempotent.
pub mod client;

pub const IDEMPOTENCY_META: &str = "concierge/idempotencyKey";
/// The argument staff name the customer with.
const CUSTOMER_ARG: &str = "customer";
const GET_CONVERSATION: &str = "get_conversation";
/// Knowledge-base documents are resources under this scheme.
const DOC_URI: &str = "concierge://documents/";
const ANSWER_PROMPT: &str = "answer_support_question";
/// Passages the answer prompt carries.
const PROMPT_PASSAGES: usize = 5;
const HAND_OVER: &str = "hand_over_conversation";

/// Who is calling, resolved from the transport (the HTTP layer puts it in the request's
/// extensions after checking the bearer token; stdio has a fixed one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Staff {
        workspace: WorkspaceId,
    },
    Customer {
        workspace: WorkspaceId,
        customer: CustomerId,
        conversation: ConversationId,
    },
}

impl Caller {
    fn workspace(&self) -> WorkspaceId {
        match self {
            Caller::Staff { workspace } | Caller::Customer { workspace, .. } => *workspace,
        }
    }
}

/// The MCP server handler. Cheap to clone (the transport makes one per session or request).
#[derive(Clone)]
pub struct ConciergeMcp {
    service: Arc<Service>,
    fixed: Option<Caller>,
}

impl ConciergeMcp {
    /// For one known caller (stdio: the local operator, as staff of `workspace`).
    pub fn for_caller(service: Arc<Service>, caller: Caller) -> Self {
        Self {
            service,
            fixed: Some(caller),
        }
    }

    /// For HTTP: the caller of each request comes from its extensions.
    pub fn per_request(service: Arc<Service>) -> Self {
        Self {
            service,
            fixed: None,
        }
    }

    fn caller(&self, cx: &RequestContext<RoleServer>) -> Result<Caller, McpError> {
        if let Some(c) = self.fixed {
            return Ok(c);
        }
        cx.extensions
            .get::<axum::http::request::Parts>()
            .and_then(|p| p.extensions.get::<Caller>())
            .copied()
            .ok_or_else(|| McpError::invalid_request("the request carries no credentials", None))
    }

    /// The documents `caller` may read: public ones and, for a customer, those shared with them
    /// (staff read every document of the workspace).
    fn principals(caller: Caller) -> Option<Principals> {
        match caller {
            Caller::Staff { .. } => None,
            Caller::Customer { customer, .. } => {
                Some(Principals::with([format!("customer:{customer}")]))
            }
        }
    }

    fn may_read(caller: Caller, doc: &Document) -> bool {
        doc.workspace_id == caller.workspace()
            && Self::principals(caller).is_none_or(|p| p.can_read(&doc.acl))
    }

    /// The tools `caller` may use, in a stable order.
    pub fn tools_for(&self, caller: Caller) -> Vec<Tool> {
        let staff = matches!(caller, Caller::Staff { .. });
        // The built-in tools and the workspace's external servers' (`<server>.<tool>`).
        let mut specs = self.service.tools.specs_in(caller.workspace());
        specs.sort_by(|a, b| a.name.cmp(&b.name));
        let mut tools: Vec<Tool> = specs
            .iter()
            // Handing over is a conversation's business: `hand_over_conversation` below.
            .filter(|s| s.name != REQUEST_HUMAN)
            .map(|s| registry_tool(s, staff))
            .collect();
        tools.push(
            Tool::new(
                GET_CONVERSATION,
                "A conversation's status, customer and messages, oldest first.",
                object(json!({
                    "type": "object",
                    "properties": {"conversation_id": {"type": "string", "format": "uuid"}},
                    "required": ["conversation_id"],
                    "additionalProperties": false
                })),
            )
            .with_title("Look up a conversation")
            .with_annotations(
                ToolAnnotations::new()
                    .read_only(true)
                    .destructive(false)
                    .idempotent(true)
                    .open_world(false),
            ),
        );
        tools.push(
            Tool::new(
                HAND_OVER,
                "Hands a conversation to a person from the support team (the AI stops \
                 replying and the customer is told), with the reason.",
                object(json!({
                    "type": "object",
                    "properties": {
                        "conversation_id": {"type": "string", "format": "uuid"},
                        "reason": {"type": "string", "minLength": 1}
                    },
                    "required": ["conversation_id", "reason"],
                    "additionalProperties": false
                })),
            )
            .with_title("Hand a conversation to a person")
            .with_annotations(
                ToolAnnotations::new()
                    .read_only(false)
                    .destructive(false)
                    .idempotent(true)
                    .open_world(false),
            ),
        );
        tools
    }

    async fn run(
        &self,
        caller: Caller,
        name: &str,
        mut args: serde_json::Map<String, Value>,
        key: Option<String>,
    ) -> Result<CallToolResult, McpError> {
        match name {
            GET_CONVERSATION | HAND_OVER => {
                return self.conversation_tool(caller, name, args).await;
            }
            REQUEST_HUMAN => return Err(unknown_tool(name)),
            _ => {}
        }
        let spec = self
            .service
            .tools
            .spec_in(caller.workspace(), name)
            .ok_or_else(|| unknown_tool(name))?;
        let spec = &spec;
        let ctx = match caller {
            Caller::Customer {
                workspace,
                customer,
                conversation,
            } => ToolContext {
                workspace,
                customer,
                conversation: Some(conversation),
                confirmed: true,
                idempotency_key: None,
            },
            Caller::Staff { workspace } => {
                let named = match (!is_external(spec))
                    .then(|| args.remove(CUSTOMER_ARG))
                    .flatten()
                {
                    Some(Value::String(s)) => Some(s),
                    // Input errors are tool results, so a model can correct its call.
                    Some(_) => {
                        return Ok(failure(
                            "`customer` is the customer's external id, a string".into(),
                        ));
                    }
                    None => None,
                };
                let customer = match named {
                    Some(external) => match self
                        .service
                        .store
                        .customer_by_external_id(workspace, &external)
                        .await
                        .map_err(internal)?
                    {
                        Some(c) => c.id,
                        None => {
                            return Ok(failure(format!(
                                "There is no customer {external} in this workspace."
                            )));
                        }
                    },
                    // Only the knowledge search does without: it then reads public documents.
                    None if !needs_customer(spec) => CustomerId(uuid::Uuid::nil()),
                    None => {
                        return Ok(failure(format!(
                            "{name} needs `customer` (the customer's external id)"
                        )));
                    }
                };
                ToolContext {
                    workspace,
                    customer,
                    conversation: None,
                    confirmed: true,
                    idempotency_key: None,
                }
            }
        };
        let ctx = ToolContext {
            idempotency_key: (!spec.annotations.read_only)
                .then(|| key.unwrap_or_else(|| format!("mcp:{}", uuid::Uuid::now_v7()))),
            ..ctx
        };
        match self
            .service
            .call_tool(&ctx, name, Value::Object(args))
            .await
        {
            Ok(value) => Ok(success(value)),
            Err(ToolError::Infrastructure(m)) => Err(McpError::internal_error(m, None)),
            Err(e) => Ok(failure(e.to_string())),
        }
    }

    async fn conversation_tool(
        &self,
        caller: Caller,
        name: &str,
        args: serde_json::Map<String, Value>,
    ) -> Result<CallToolResult, McpError> {
        let id = args
            .get("conversation_id")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<uuid::Uuid>().ok())
            .map(ConversationId)
            .ok_or_else(|| McpError::invalid_params("conversation_id must be a UUID", None))?;
        let store = &self.service.store;
        let conversation = store.conversation(id).await.map_err(internal)?;
        let allowed = conversation.as_ref().is_some_and(|c| match caller {
            Caller::Staff { workspace } => c.workspace_id == workspace,
            Caller::Customer { conversation, .. } => c.id == conversation,
        });
        let Some(conversation) = conversation.filter(|_| allowed) else {
            // Another workspace's conversation and a missing one look the same.
            return Ok(failure(format!("There is no conversation {id}.")));
        };
        if name == HAND_OVER {
            let reason = args
                .get("reason")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    McpError::invalid_params("reason must be a non-empty string", None)
                })?;
            let trigger = match caller {
                Caller::Staff { .. } => HandoffTrigger::Api,
                Caller::Customer { .. } => HandoffTrigger::Customer,
            };
            let request = concierge_agent::HandoffRequest::new(trigger, reason);
            return match self.service.request_handoff(id, request).await {
                Ok(c) => Ok(success(json!({
                    "conversation_id": c.id.to_string(),
                    "status": c.status.as_str(),
                }))),
                Err(concierge_agent::ServiceError::Closed) => {
                    Ok(failure("The conversation is closed.".into()))
                }
                Err(e) => Err(McpError::internal_error(e.to_string(), None)),
            };
        }
        let messages = store.messages(id).await.map_err(internal)?;
        Ok(success(json!({
            "conversation_id": conversation.id.to_string(),
            "status": conversation.status.as_str(),
            "channel": conversation.channel.as_str(),
            "customer_id": conversation.customer_id.to_string(),
            "messages": messages.iter().map(|m| json!({
                "author": m.author.as_str(),
                "text": m.text,
                "created_at": m.created_at.to_rfc3339(),
            })).collect::<Vec<_>>(),
        })))
    }
}

/// Whether a registry tool acts on a customer's records (all but the knowledge search).
fn needs_customer(spec: &ToolSpec) -> bool {
    spec.name != "search_knowledge" && !is_external(spec)
}

/// A tool of one of the workspace's external servers (`<server>.<tool>`): its arguments are
/// its own (no `customer` is added or taken out) and it acts on no customer's records here.
fn is_external(spec: &ToolSpec) -> bool {
    spec.name.contains('.')
}

/// A registry tool as MCP lists it; staff get the `customer` argument.
fn registry_tool(spec: &ToolSpec, staff: bool) -> Tool {
    let mut schema = spec.input_schema.clone();
    if staff
        && !is_external(spec)
        && let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut)
    {
        props.insert(
            CUSTOMER_ARG.into(),
            json!({
                "type": "string",
                "description": if needs_customer(spec) {
                    "The customer's external id (e.g. their id in your CRM)."
                } else {
                    "Search as this customer (external id) would: public documents and those shared with them. Default: public documents only."
                }
            }),
        );
        if needs_customer(spec) {
            let required = schema
                .as_object_mut()
                .map(|o| o.entry("required").or_insert_with(|| json!([])));
            if let Some(Value::Array(r)) = required {
                r.push(json!(CUSTOMER_ARG));
            }
        }
    }
    let a = spec.annotations;
    // The registry describes tools for the agent, whose writes the customer confirms first;
    // over MCP the caller's own call is the decision, so that sentence would mislead.
    let description = spec
        .description
        .replace(" The customer confirms it before it runs.", "")
        .trim()
        .to_string();
    let mut tool = Tool::new(spec.name.clone(), description, object(schema))
        .with_title(spec.title.clone())
        .with_annotations(
            ToolAnnotations::new()
                .read_only(a.read_only)
                .destructive(a.destructive)
                .idempotent(a.idempotent)
                .open_world(a.open_world),
        );
    if let Some(out) = spec
        .output_schema
        .clone()
        .filter(|s| s.get("type") == Some(&json!("object")))
    {
        tool = tool.with_raw_output_schema(Arc::new(object(out)));
    }
    tool
}

fn success(value: Value) -> CallToolResult {
    let value = if value.is_object() {
        value
    } else {
        json!({ "result": value })
    };
    CallToolResult::structured(value)
}

fn failure(message: String) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message)])
}

fn unknown_tool(name: &str) -> McpError {
    McpError::invalid_params(format!("there is no tool named {name}"), None)
}

fn internal(e: StoreError) -> McpError {
    McpError::internal_error(e.to_string(), None)
}

impl ServerHandler for ConciergeMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_prompts()
                .enable_resources()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("concierge", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Concierge, a customer support agent: search its knowledge base, look up and act on \
             customers' orders and tickets, look up and hand over conversations. Staff name the \
             customer of a call with the `customer` argument (their external id).",
        )
    }

    async fn list_resources(
        &self,
        request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, McpError> {
        let caller = self.caller(&cx)?;
        let docs: Vec<Resource> = self
            .service
            .store
            .workspace_documents(caller.workspace())
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|d| Self::may_read(caller, d))
            .map(|d| {
                let r = Resource::new(format!("{DOC_URI}{}", d.id), d.title.clone())
                    .with_title(d.title.clone())
                    .with_mime_type("text/markdown");
                match &d.url {
                    Some(url) => r.with_description(format!("Knowledge-base article ({url})")),
                    None => r.with_description("Knowledge-base article"),
                }
            })
            .collect();
        let (resources, next_cursor) = page(docs, request.and_then(|r| r.cursor))?;
        Ok(ListResourcesResult {
            resources,
            next_cursor,
            ..Default::default()
        })
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, McpError> {
        Ok(ListResourceTemplatesResult::with_all_items(vec![
            ResourceTemplate::new(format!("{DOC_URI}{{id}}"), "knowledge-document")
                .with_mime_type("text/markdown"),
        ]))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, McpError> {
        let caller = self.caller(&cx)?;
        let not_found =
            || McpError::resource_not_found(format!("no resource {}", request.uri), None);
        let id = request
            .uri
            .strip_prefix(DOC_URI)
            .and_then(|id| id.parse::<uuid::Uuid>().ok())
            .map(DocumentId)
            .ok_or_else(not_found)?;
        let chunks = self
            .service
            .store
            .document_chunks(id)
            .await
            .map_err(internal)?;
        let Some((doc, _)) = chunks.first().filter(|(d, _)| Self::may_read(caller, d)) else {
            // Unreadable and missing documents look the same.
            return Err(not_found());
        };
        let chunks: Vec<Chunk> = chunks.iter().map(|(_, c)| c.clone()).collect();
        let text = document_text(&doc.title, &chunks);
        Ok(ReadResourceResult::new(vec![
            ResourceContents::text(text, request.uri.clone()).with_mime_type("text/markdown"),
        ])
        .into())
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _cx: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, McpError> {
        Ok(ListPromptsResult::with_all_items(vec![Prompt::new(
            ANSWER_PROMPT,
            Some("Answer a support question from the knowledge base, citing the passages used."),
            Some(vec![
                PromptArgument::new("question")
                    .with_description("The customer's question")
                    .with_required(true),
            ]),
        )]))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, McpError> {
        let caller = self.caller(&cx)?;
        if request.name != ANSWER_PROMPT {
            return Err(McpError::invalid_params(
                format!("there is no prompt named {}", request.name),
                None,
            ));
        }
        let question = request
            .arguments
            .as_ref()
            .and_then(|a| a.get("question"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .ok_or_else(|| McpError::invalid_params("the prompt needs `question`", None))?;
        let principals = Self::principals(caller).unwrap_or_else(Principals::public);
        let retrieval = self
            .service
            .knowledge
            .retrieve(caller.workspace(), &principals, question, PROMPT_PASSAGES)
            .await
            .map_err(|e| McpError::internal_error(e.to_string(), None))?;
        let mut text = format!(
            "Answer the customer's question using only the numbered passages below. Cite each \
             passage you use with its number in brackets, like [1]. If the passages do not hold \
             the answer, say so and offer to bring in a person.\n\nQuestion: {question}\n\nPassages:\n"
        );
        if retrieval.hits.is_empty() {
            text.push_str("(none matched the question)\n");
        }
        for (i, h) in retrieval.hits.iter().enumerate() {
            text.push_str(&format!("\n[{}] {}", i + 1, h.title));
            if let Some(url) = &h.url {
                text.push_str(&format!(" ({url})"));
            }
            text.push_str(&format!("\n{}\n", h.text.trim()));
        }
        Ok(
            GetPromptResult::new(vec![PromptMessage::new_text(rmcp::model::Role::User, text)])
                .with_description(format!(
                    "{} passage(s) for: {question}",
                    retrieval.hits.len()
                ))
                .into(),
        )
    }

    /// 2026-07-28 clients subscribe to change notifications with `subscriptions/listen`: the
    /// subscription is accepted for what the server advertises.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.supported_by(&self.get_info().capabilities))
    }

    /// Holds a `subscriptions/listen` stream open and sends `notifications/tools/list_changed`
    /// whenever the caller's workspace's tools change (an external server added, removed, or
    /// its own list changed), until the client cancels.
    async fn listen(&self, context: rmcp::service::SubscriptionContext) -> Result<(), McpError> {
        let workspace = self.caller(context.request_context())?.workspace();
        let mut changes = self.service.tools.changes();
        loop {
            tokio::select! {
                _ = context.cancelled() => return Ok(()),
                changed = changes.recv() => match changed {
                    Ok(ws) if ws != workspace => {}
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if context.sink().notify_tool_list_changed().await.is_err() {
                            return Ok(());
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
                },
            }
        }
    }

    /// An `initialize` session (2025-11-25 and older): tells the client when the caller's
    /// workspace's tools change, for as long as the session lives.
    async fn on_initialized(&self, context: rmcp::service::NotificationContext<RoleServer>) {
        let caller = match self.fixed {
            Some(c) => Some(c),
            None => context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|p| p.extensions.get::<Caller>())
                .copied(),
        };
        let Some(caller) = caller else {
            return;
        };
        let workspace = caller.workspace();
        let peer = context.peer;
        let mut changes = self.service.tools.changes();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    changed = changes.recv() => match changed {
                        Ok(ws) if ws != workspace => {}
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if peer.notify_tool_list_changed().await.is_err() {
                                return;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    // A session that ended takes its listener with it.
                    _ = tokio::time::sleep(std::time::Duration::from_secs(30)) => {
                        if peer.is_transport_closed() {
                            return;
                        }
                    }
                }
            }
        });
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        // Used by the transport to check request headers; the staff view is the wider one.
        self.tools_for(Caller::Staff {
            workspace: WorkspaceId(uuid::Uuid::nil()),
        })
        .into_iter()
        .find(|t| t.name == name)
    }

    async fn list_tools(
        &self,
        request: Option<PaginatedRequestParams>,
        cx: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        let caller = self.caller(&cx)?;
        let (tools, next_cursor) = page(self.tools_for(caller), request.and_then(|r| r.cursor))?;
        Ok(ListToolsResult {
            tools,
            next_cursor,
            ..Default::default()
        })
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        cx: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let caller = self.caller(&cx)?;
        // The SDK may move the request's `_meta` into the context.
        let key = request
            .meta
            .as_ref()
            .and_then(|m| m.get(IDEMPOTENCY_META))
            .or_else(|| cx.meta.get(IDEMPOTENCY_META))
            .and_then(Value::as_str)
            .map(|k| format!("mcp:{}:{k}", caller.workspace()));
        let args = request.arguments.unwrap_or_default();
        Ok(self.run(caller, &request.name, args, key).await?.into())
    }
}

/// The page of `items` a cursor (an offset written by the previous page) points at.
fn page<T>(items: Vec<T>, cursor: Option<String>) -> Result<(Vec<T>, Option<String>), McpError> {
    let start = match cursor {
        None => 0,
        Some(c) => c
            .parse::<usize>()
            .map_err(|_| McpError::invalid_params("invalid cursor", None))?,
    };
    if start > items.len() {
        return Err(McpError::invalid_params("invalid cursor", None));
    }
    let next = (start + PAGE < items.len()).then(|| (start + PAGE).to_string());
    Ok((items.into_iter().skip(start).take(PAGE).collect(), next))
}

/// A document's text from its chunks, without the sentences a chunk repeats from the one
/// before it (chunks overlap).
fn document_text(title: &str, chunks: &[Chunk]) -> String {
    let mut out = format!("# {title}\n");
    let mut heading: &[String] = &[];
    let mut previous = "";
    for c in chunks {
        if c.heading_path.as_slice() != heading {
            heading = &c.heading_path;
            if let Some(h) = heading.last().filter(|h| h.as_str() != title) {
                out.push_str(&format!("\n## {h}\n"));
            }
        }
        let mut text = c.text.as_str();
        // Skip the overlap: the longest start of this chunk that ends the previous one.
        for (i, _) in text.char_indices().rev() {
            let head = &text[..i];
            if i > 0 && previous.ends_with(head) && head.ends_with(['.', '!', '?', '\n']) {
                text = text[i..].trim_start();
                break;
            }
        }
        out.push('\n');
        out.push_str(text.trim());
        out.push('\n');
        previous = &c.text;
    }
    out
}
