//! Built-in tools: knowledge search, the customer's profile, orders and tickets, and asking for a
//! person.

use super::{ToolAnnotations, ToolContext, ToolEnv, ToolError, own_order, tool, write};
use chrono::{DateTime, Utc};
use concierge_core::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The tool that asks for a person; the agent performs the handoff after it returns.
pub const REQUEST_HUMAN: &str = "request_human";

pub(super) fn all() -> Vec<Arc<dyn super::Tool>> {
    vec![
        SearchKnowledge::arc(),
        GetCustomerProfile::arc(),
        ListOrders::arc(),
        GetOrder::arc(),
        ListTickets::arc(),
        OpenTicket::arc(),
        UpdateTicket::arc(),
        RequestHuman::arc(),
    ]
}

// --- search_knowledge ---------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchArgs {
    /// What to look for, in the customer's words.
    pub query: String,
    /// How many passages to return (1–10, default 5).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Passage {
    /// Citation number, from 1.
    pub n: usize,
    pub title: String,
    pub url: Option<String>,
    pub heading_path: Vec<String>,
    pub text: String,
    pub score: f32,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct SearchResult {
    pub passages: Vec<Passage>,
}

async fn search(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: SearchArgs,
) -> Result<SearchResult, ToolError> {
    let query = a.query.trim();
    if query.is_empty() {
        return Err(ToolError::Failed("the query is empty".into()));
    }
    let k = a.limit.unwrap_or(5).clamp(1, 10);
    let retrieval = env
        .knowledge
        .retrieve(ctx.workspace, &ctx.principals(), query, k)
        .await
        .map_err(|e| ToolError::Infrastructure(e.to_string()))?;
    Ok(SearchResult {
        passages: retrieval
            .hits
            .into_iter()
            .enumerate()
            .map(|(i, h)| Passage {
                n: i + 1,
                title: h.title,
                url: h.url,
                heading_path: h.heading_path,
                text: h.text,
                score: h.score,
            })
            .collect(),
    })
}

tool!(
    SearchKnowledge, SearchArgs => SearchResult, "search_knowledge", "Search the knowledge base",
    ToolAnnotations::READ, search,
    "Searches the help center and product documentation the customer may read, with hybrid \
     retrieval and reranking. Returns numbered passages to cite."
);

// --- get_customer_profile -----------------------------------------------------------------

#[derive(Debug, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArgs {}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Profile {
    pub name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    /// Membership or CRM tier, e.g. `standard`, `plus`, `vip`.
    pub tier: Option<String>,
    pub customer_since: DateTime<Utc>,
}

async fn profile(env: &ToolEnv, ctx: &ToolContext, _: NoArgs) -> Result<Profile, ToolError> {
    let c = env
        .store
        .customer(ctx.customer)
        .await?
        .filter(|c| c.workspace_id == ctx.workspace)
        .ok_or_else(|| ToolError::Failed("no customer profile for this conversation".into()))?;
    Ok(Profile {
        name: c.name,
        email: c.email,
        phone: c.phone,
        tier: c.tier,
        customer_since: c.created_at,
    })
}

tool!(
    GetCustomerProfile, NoArgs => Profile, "get_customer_profile", "Get the customer's profile",
    ToolAnnotations::READ, profile,
    "The profile of the customer in this conversation: name, contact details, tier."
);

// --- orders ---------------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListOrdersArgs {
    /// Only orders with this status (processing, shipped, delivered, cancelled, returned, ...).
    #[serde(default)]
    pub status: Option<String>,
    /// At most this many, newest first (default 10).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct OrderSummary {
    pub number: String,
    pub status: String,
    pub placed_at: DateTime<Utc>,
    /// Formatted total, e.g. `$94.98`.
    pub total: String,
    /// Item names with quantities, e.g. `2 × Nimbus Smart Plug`.
    pub items: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OrderList {
    pub orders: Vec<OrderSummary>,
}

/// `$94.98` for USD, `94.98 EUR` otherwise.
pub fn money(cents: i64, currency: &str) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (units, rest) = (cents.abs() / 100, cents.abs() % 100);
    match currency {
        "USD" | "CAD" | "AUD" => format!("{sign}${units}.{rest:02}"),
        "EUR" => format!("{sign}€{units}.{rest:02}"),
        "GBP" => format!("{sign}£{units}.{rest:02}"),
        other => format!("{sign}{units}.{rest:02} {other}"),
    }
}

pub(crate) fn item_lines(order: &Order) -> Vec<String> {
    order.details["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| {
                    let name = i["name"].as_str().or(i["sku"].as_str()).unwrap_or("item");
                    match i["quantity"].as_i64() {
                        Some(q) if q > 1 => format!("{q} × {name}"),
                        _ => name.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn summary(order: &Order) -> OrderSummary {
    OrderSummary {
        number: order.number.clone(),
        status: order.status.clone(),
        placed_at: order.placed_at,
        total: money(order.total_cents, &order.currency),
        items: item_lines(order),
    }
}

async fn list_orders(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: ListOrdersArgs,
) -> Result<OrderList, ToolError> {
    let orders = env.store.orders_for_customer(ctx.customer).await?;
    let limit = a.limit.unwrap_or(10).clamp(1, 50);
    Ok(OrderList {
        orders: orders
            .iter()
            .filter(|o| o.workspace_id == ctx.workspace)
            .filter(|o| {
                a.status
                    .as_deref()
                    .is_none_or(|s| o.status.eq_ignore_ascii_case(s.trim()))
            })
            .take(limit)
            .map(summary)
            .collect(),
    })
}

tool!(
    ListOrders, ListOrdersArgs => OrderList, "list_orders", "List the customer's orders",
    ToolAnnotations::READ, list_orders,
    "The customer's own orders, newest first, optionally filtered by status."
);

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderArgs {
    /// The order number as the customer gave it, e.g. `A-1043`.
    pub order_number: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OrderDetail {
    #[serde(flatten)]
    pub summary: OrderSummary,
    pub currency: String,
    pub total_cents: i64,
    pub shipping_address: Option<serde_json::Value>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub delivered_at: Option<String>,
    /// What can still be done with this order under the workspace's policy.
    pub can_cancel: bool,
    pub can_change_address: bool,
    pub can_return: bool,
    /// Until when a return can start, or why it cannot.
    pub return_note: String,
    pub can_resend_invoice: bool,
}

pub(crate) async fn order_detail(
    env: &ToolEnv,
    ctx: &ToolContext,
    order: &Order,
) -> Result<OrderDetail, ToolError> {
    let policy = super::commerce::policy(env, ctx).await?;
    let s = |k: &str| order.details[k].as_str().map(str::to_string);
    let returnable = policy.return_deadline(order, Utc::now());
    Ok(OrderDetail {
        summary: summary(order),
        currency: order.currency.clone(),
        total_cents: order.total_cents,
        shipping_address: order.details.get("shipping_address").cloned(),
        carrier: s("carrier"),
        tracking_number: s("tracking_number"),
        delivered_at: s("delivered_at"),
        can_cancel: policy.can_cancel(order),
        can_change_address: policy.can_change_address(order),
        can_return: returnable.is_ok(),
        return_note: match returnable {
            Ok(deadline) => format!("returnable until {}", deadline.format("%B %-d, %Y")),
            Err(why) => why,
        },
        can_resend_invoice: policy.can_resend_invoice(order),
    })
}

async fn get_order(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: OrderArgs,
) -> Result<OrderDetail, ToolError> {
    let order = own_order(env, ctx, &a.order_number).await?;
    order_detail(env, ctx, &order).await
}

tool!(
    GetOrder, OrderArgs => OrderDetail, "get_order", "Get one of the customer's orders",
    ToolAnnotations::READ, get_order,
    "Status, items, shipping address, tracking and which changes are still possible, for one \
     of the customer's own orders."
);

// --- tickets --------------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TicketView {
    pub number: String,
    pub subject: String,
    pub status: String,
    pub priority: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub comments: usize,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TicketList {
    pub tickets: Vec<TicketView>,
}

async fn list_tickets(
    env: &ToolEnv,
    ctx: &ToolContext,
    _: NoArgs,
) -> Result<TicketList, ToolError> {
    let tickets = env.store.tickets_for_customer(ctx.customer).await?;
    Ok(TicketList {
        tickets: tickets
            .into_iter()
            .filter(|t| t.workspace_id == ctx.workspace)
            .map(|t| TicketView {
                comments: t.comments.len(),
                number: t.number,
                subject: t.subject,
                status: t.status,
                priority: t.priority,
                created_at: t.created_at,
                updated_at: t.updated_at,
            })
            .collect(),
    })
}

tool!(
    ListTickets, NoArgs => TicketList, "list_tickets", "List the customer's tickets",
    ToolAnnotations::READ, list_tickets,
    "The customer's own support tickets, newest first."
);

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OpenTicketArgs {
    /// One line: what the problem is.
    pub subject: String,
    /// What the customer reported and what was tried.
    pub description: String,
    /// low, normal (default), high or urgent.
    #[serde(default)]
    pub priority: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TicketOpened {
    /// The new ticket's number, e.g. `T-1001`.
    pub number: String,
    pub status: String,
    pub priority: String,
}

async fn open_ticket(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: OpenTicketArgs,
) -> Result<TicketOpened, ToolError> {
    let subject = a.subject.trim();
    if subject.is_empty() || subject.chars().count() > 200 {
        return Err(ToolError::Failed(
            "the subject must be 1 to 200 characters".into(),
        ));
    }
    let priority = a.priority.as_deref().unwrap_or("normal").to_lowercase();
    if !TICKET_PRIORITIES.contains(&priority.as_str()) {
        return Err(ToolError::Failed(format!(
            "priority must be one of {}",
            TICKET_PRIORITIES.join(", ")
        )));
    }
    let ticket = Ticket::new(
        ctx.workspace,
        ctx.customer,
        ctx.conversation,
        subject.to_string(),
        a.description.trim().to_string(),
        priority.clone(),
    );
    write(
        env,
        ctx,
        "open_ticket",
        serde_json::to_value(&a).unwrap_or_default(),
        Effect::CreateTicket(Box::new(ticket)),
        serde_json::json!({ "status": "open", "priority": priority }),
    )
    .await
}

tool!(
    OpenTicket, OpenTicketArgs => TicketOpened, "open_ticket", "Open a support ticket",
    ToolAnnotations::WRITE, open_ticket,
    "Opens a ticket for the customer in the ticket system, linked to this conversation. \
     The customer confirms it before it runs."
);

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTicketArgs {
    /// e.g. `T-1001`.
    pub ticket_number: String,
    /// A comment to add, in the customer's words.
    #[serde(default)]
    pub comment: Option<String>,
    /// `solved` when the customer says the problem is gone, `open` to reopen.
    #[serde(default)]
    pub status: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TicketUpdated {
    pub number: String,
    pub status: String,
}

async fn update_ticket(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: UpdateTicketArgs,
) -> Result<TicketUpdated, ToolError> {
    let number = a.ticket_number.trim().to_uppercase();
    let ticket = env
        .store
        .ticket_by_number(ctx.workspace, &number)
        .await?
        .filter(|t| t.customer_id == ctx.customer)
        .ok_or_else(|| {
            ToolError::Failed(format!("I could not find a ticket {number} of yours."))
        })?;
    let status = match a.status.as_deref().map(str::to_lowercase) {
        None => None,
        // Customers reopen or close their own tickets; "pending" is the support team's.
        Some(s) if s == "open" || s == "solved" => Some(s),
        Some(s) => {
            return Err(ToolError::Failed(format!(
                "a ticket can be set to open or solved, not {s}"
            )));
        }
    };
    let comment = a
        .comment
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|text| TicketComment {
            author: "customer".into(),
            text: text.to_string(),
            at: Utc::now(),
        });
    if status.is_none() && comment.is_none() {
        return Err(ToolError::Failed(
            "nothing to change: give a comment or a status".into(),
        ));
    }
    let new_status = status.clone().unwrap_or_else(|| ticket.status.clone());
    write(
        env,
        ctx,
        "update_ticket",
        serde_json::to_value(&a).unwrap_or_default(),
        Effect::UpdateTicket {
            ticket_id: ticket.id,
            status,
            comment,
        },
        serde_json::json!({ "number": ticket.number, "status": new_status }),
    )
    .await
}

tool!(
    UpdateTicket, UpdateTicketArgs => TicketUpdated, "update_ticket", "Update a ticket",
    ToolAnnotations::WRITE, update_ticket,
    "Adds a comment to one of the customer's tickets, or reopens or closes it. The customer confirms it before it runs."
);

// --- request_human --------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestHumanArgs {
    /// Why a person is needed, for the person who takes over.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct HumanRequested {
    pub reason: String,
}

async fn request_human(
    _: &ToolEnv,
    _: &ToolContext,
    a: RequestHumanArgs,
) -> Result<HumanRequested, ToolError> {
    Ok(HumanRequested {
        reason: a.reason.trim().to_string(),
    })
}

tool!(
    RequestHuman, RequestHumanArgs => HumanRequested, REQUEST_HUMAN, "Ask for a person",
    ToolAnnotations {
        read_only: false,
        destructive: false,
        idempotent: true,
        needs_confirmation: false,
        open_world: false,
    },
    request_human,
    "Hands the conversation to a person from the support team, with the reason. Use it when the \
     customer asks for a person or when the request needs human judgment."
);
