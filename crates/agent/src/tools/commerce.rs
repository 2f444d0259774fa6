//! Commerce actions against the workspace's own order data: cancel an order that has not
//! shipped, change its shipping address, start a return, resend an invoice. Each checks the
//! workspace's [`CommercePolicy`] and the order's current state, then writes through the store
//! with a compare-and-set on the order's status.

use super::builtin::{OrderArgs, money};
use super::{ToolAnnotations, ToolContext, ToolEnv, ToolError, own_order, tool, write};
use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};
use concierge_core::*;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

pub(super) fn all() -> Vec<Arc<dyn super::Tool>> {
    vec![
        CancelOrder::arc(),
        ChangeShippingAddress::arc(),
        StartReturn::arc(),
        ResendInvoice::arc(),
    ]
}

/// The workspace's order rules: the `commerce_policy` workspace setting, or these defaults
/// (Nimbus Home's published policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CommercePolicy {
    /// Statuses in which an order can still be cancelled.
    pub cancellable: Vec<String>,
    /// Statuses in which the shipping address can still change.
    pub address_changeable: Vec<String>,
    /// Statuses in which an invoice exists.
    pub invoiced: Vec<String>,
    /// Days from delivery within which a return can start.
    pub return_window_days: i64,
    /// Items delivered from this month/day to the end of the year can be returned until
    /// `holiday_return_until` (month/day) of the next year. `None`: no holiday extension.
    pub holiday_from: Option<(u32, u32)>,
    pub holiday_return_until: Option<(u32, u32)>,
    /// What the customer is told about the refund of a cancelled order.
    pub cancel_refund_note: String,
    /// What the customer is told about the refund of a return.
    pub return_refund_note: String,
}

impl Default for CommercePolicy {
    fn default() -> Self {
        CommercePolicy {
            cancellable: vec!["processing".into()],
            address_changeable: vec!["processing".into()],
            invoiced: vec!["shipped".into(), "delivered".into(), "returned".into()],
            return_window_days: 30,
            holiday_from: Some((11, 15)),
            holiday_return_until: Some((1, 31)),
            cancel_refund_note: "The authorization hold on your payment is released within 3–5 \
                                 business days, depending on your bank."
                .into(),
            return_refund_note: "The refund reaches your original payment method within 5–7 \
                                 business days after we receive the return."
                .into(),
        }
    }
}

/// The setting a workspace overrides the defaults with.
pub const COMMERCE_POLICY_SETTING: &str = "commerce_policy";

pub(super) async fn policy(env: &ToolEnv, ctx: &ToolContext) -> Result<CommercePolicy, ToolError> {
    match env
        .store
        .setting(ctx.workspace, COMMERCE_POLICY_SETTING)
        .await?
    {
        Some(v) => serde_json::from_value(v).map_err(|e| {
            ToolError::Infrastructure(format!("the workspace's commerce policy is invalid: {e}"))
        }),
        None => Ok(CommercePolicy::default()),
    }
}

fn has(list: &[String], status: &str) -> bool {
    list.iter().any(|s| s.eq_ignore_ascii_case(status))
}

impl CommercePolicy {
    pub fn can_cancel(&self, order: &Order) -> bool {
        has(&self.cancellable, &order.status)
    }

    pub fn can_change_address(&self, order: &Order) -> bool {
        has(&self.address_changeable, &order.status)
    }

    pub fn can_resend_invoice(&self, order: &Order) -> bool {
        has(&self.invoiced, &order.status)
    }

    /// The last moment a return of `order` can start, or why it cannot.
    pub fn return_deadline(
        &self,
        order: &Order,
        now: DateTime<Utc>,
    ) -> Result<DateTime<Utc>, String> {
        if !order.status.eq_ignore_ascii_case("delivered") {
            return Err(match order.status.as_str() {
                "processing" | "shipped" => format!(
                    "order {} has not been delivered yet; a return can start once it arrives",
                    order.number
                ),
                "return_started" => {
                    format!("a return for order {} has already started", order.number)
                }
                s => format!("order {} is {s} and cannot be returned", order.number),
            });
        }
        // Without a recorded delivery date the order date is used: never later than delivery.
        let delivered = order.details["delivered_at"]
            .as_str()
            .and_then(|d| DateTime::parse_from_rfc3339(d).ok())
            .map(|d| d.with_timezone(&Utc))
            .unwrap_or(order.placed_at);
        let mut deadline = delivered + Duration::days(self.return_window_days);
        if let (Some((fm, fd)), Some((um, ud))) = (self.holiday_from, self.holiday_return_until) {
            let year = delivered.year();
            let from = NaiveDate::from_ymd_opt(year, fm, fd);
            let until = NaiveDate::from_ymd_opt(year + 1, um, ud)
                .and_then(|d| d.and_hms_opt(23, 59, 59))
                .map(|d| Utc.from_utc_datetime(&d));
            if let (Some(from), Some(until)) = (from, until)
                && delivered.date_naive() >= from
                && until > deadline
            {
                deadline = until;
            }
        }
        if now > deadline {
            return Err(format!(
                "the return window for order {} closed on {}",
                order.number,
                deadline.format("%B %-d, %Y")
            ));
        }
        Ok(deadline)
    }
}

fn masked_email(email: &str) -> String {
    match email.split_once('@') {
        Some((user, domain)) => {
            let first: String = user.chars().take(1).collect();
            format!("{first}***@{domain}")
        }
        None => "your account e-mail".into(),
    }
}

// --- cancel_order ---------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct Cancelled {
    pub order_number: String,
    pub status: String,
    /// The order total, formatted.
    pub amount: String,
    /// When and how the money comes back.
    pub refund: String,
}

async fn cancel_order(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: OrderArgs,
) -> Result<Cancelled, ToolError> {
    let order = own_order(env, ctx, &a.order_number).await?;
    let policy = policy(env, ctx).await?;
    if !policy.can_cancel(&order) {
        return Err(ToolError::Failed(match order.status.as_str() {
            "shipped" => format!(
                "Order {} has already shipped, so it can no longer be cancelled; you can return it once it arrives.",
                order.number
            ),
            s => format!(
                "Order {} is {s} and can no longer be cancelled.",
                order.number
            ),
        }));
    }
    let mut details = order.details.clone();
    if let Some(obj) = details.as_object_mut() {
        obj.insert("cancelled_at".into(), Utc::now().to_rfc3339().into());
    }
    let result = Cancelled {
        order_number: order.number.clone(),
        status: "cancelled".into(),
        amount: money(order.total_cents, &order.currency),
        refund: policy.cancel_refund_note.clone(),
    };
    write(
        env,
        ctx,
        "cancel_order",
        serde_json::json!({ "order_number": order.number }),
        Effect::UpdateOrder {
            order_id: order.id,
            expected_status: order.status.clone(),
            status: "cancelled".into(),
            details,
        },
        serde_json::to_value(&result).unwrap_or_default(),
    )
    .await
}

tool!(
    CancelOrder, OrderArgs => Cancelled, "cancel_order", "Cancel an order",
    ToolAnnotations::DESTRUCTIVE, cancel_order,
    "Cancels one of the customer's orders that has not shipped yet. The customer confirms it before it runs."
);

// --- change_shipping_address ----------------------------------------------------------------

/// A postal address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    pub line1: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    pub city: String,
    /// State, province or region code, e.g. `OR`, `QC`.
    pub region: String,
    pub postal_code: String,
    /// ISO 3166-1 alpha-2, e.g. `US`. Default: the order's current country.
    #[serde(default)]
    pub country: Option<String>,
}

impl Address {
    pub fn one_line(&self) -> String {
        let mut parts = vec![self.line1.clone()];
        parts.extend(self.line2.clone());
        parts.push(self.city.clone());
        parts.push(format!("{} {}", self.region, self.postal_code));
        if let Some(c) = &self.country {
            parts.push(c.clone());
        }
        parts.join(", ")
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeAddressArgs {
    pub order_number: String,
    pub address: Address,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct AddressChanged {
    pub order_number: String,
    /// The new address on one line.
    pub address: String,
}

async fn change_address(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: ChangeAddressArgs,
) -> Result<AddressChanged, ToolError> {
    let order = own_order(env, ctx, &a.order_number).await?;
    let policy = policy(env, ctx).await?;
    if !policy.can_change_address(&order) {
        return Err(ToolError::Failed(format!(
            "Order {} is {} and its address can no longer be changed.",
            order.number, order.status
        )));
    }
    let mut address = a.address.clone();
    for (name, v) in [
        ("street", &address.line1),
        ("city", &address.city),
        ("region", &address.region),
        ("postal code", &address.postal_code),
    ] {
        if v.trim().is_empty() {
            return Err(ToolError::Failed(format!("the new address has no {name}")));
        }
    }
    let current_country = order.details["shipping_address"]["country"]
        .as_str()
        .unwrap_or("US")
        .to_uppercase();
    let country = address
        .country
        .clone()
        .unwrap_or_else(|| current_country.clone())
        .to_uppercase();
    if country != current_country {
        return Err(ToolError::Failed(format!(
            "An order cannot be sent to another country ({current_country} → {country}); cancel it and order again instead."
        )));
    }
    address.country = Some(country);
    let mut details = order.details.clone();
    if let Some(obj) = details.as_object_mut() {
        obj.insert(
            "shipping_address".into(),
            serde_json::to_value(&address).unwrap_or_default(),
        );
    }
    let result = AddressChanged {
        order_number: order.number.clone(),
        address: address.one_line(),
    };
    write(
        env,
        ctx,
        "change_shipping_address",
        serde_json::json!({ "order_number": order.number, "address": address }),
        Effect::UpdateOrder {
            order_id: order.id,
            expected_status: order.status.clone(),
            status: order.status.clone(),
            details,
        },
        serde_json::to_value(&result).unwrap_or_default(),
    )
    .await
}

tool!(
    ChangeShippingAddress, ChangeAddressArgs => AddressChanged, "change_shipping_address",
    "Change an order's shipping address", ToolAnnotations::WRITE, change_address,
    "Changes where one of the customer's orders will be delivered, while it has not shipped \
     (same country only). The customer confirms it before it runs."
);

// --- start_return ---------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnArgs {
    pub order_number: String,
    /// Why the customer returns it, in their words.
    pub reason: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ReturnStarted {
    pub order_number: String,
    /// The return's reference, e.g. `R-1043`.
    pub return_id: String,
    /// Where the prepaid label goes.
    pub label_sent_to: String,
    pub refund: String,
}

async fn start_return(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: ReturnArgs,
) -> Result<ReturnStarted, ToolError> {
    let order = own_order(env, ctx, &a.order_number).await?;
    let policy = policy(env, ctx).await?;
    policy
        .return_deadline(&order, Utc::now())
        .map_err(|why| ToolError::Failed(format!("{}.", capitalized(&why))))?;
    let customer = env.store.customer(ctx.customer).await?;
    let email = customer
        .and_then(|c| c.email)
        .map(|e| masked_email(&e))
        .unwrap_or_else(|| "your account e-mail".into());
    let return_id = format!(
        "R-{}",
        order
            .number
            .trim_start_matches(|c: char| !c.is_ascii_digit())
    );
    let mut details = order.details.clone();
    if let Some(obj) = details.as_object_mut() {
        obj.insert(
            "return".into(),
            serde_json::json!({ "id": return_id, "reason": a.reason.trim(), "started_at": Utc::now().to_rfc3339() }),
        );
    }
    let result = ReturnStarted {
        order_number: order.number.clone(),
        return_id,
        label_sent_to: email,
        refund: policy.return_refund_note.clone(),
    };
    write(
        env,
        ctx,
        "start_return",
        serde_json::json!({ "order_number": order.number, "reason": a.reason.trim() }),
        Effect::UpdateOrder {
            order_id: order.id,
            expected_status: order.status.clone(),
            status: "return_started".into(),
            details,
        },
        serde_json::to_value(&result).unwrap_or_default(),
    )
    .await
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

tool!(
    StartReturn, ReturnArgs => ReturnStarted, "start_return", "Start a return",
    ToolAnnotations::WRITE, start_return,
    "Starts a return of one of the customer's delivered orders within the return window and \
     e-mails a prepaid label. The customer confirms it before it runs."
);

// --- resend_invoice -------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct InvoiceQueued {
    pub order_number: String,
    /// The (masked) address the invoice goes to: the account's e-mail.
    pub sent_to: String,
}

async fn resend_invoice(
    env: &ToolEnv,
    ctx: &ToolContext,
    a: OrderArgs,
) -> Result<InvoiceQueued, ToolError> {
    let order = own_order(env, ctx, &a.order_number).await?;
    let policy = policy(env, ctx).await?;
    if !policy.can_resend_invoice(&order) {
        return Err(ToolError::Failed(format!(
            "Order {} is {}: its invoice is issued when it ships (until then, the order confirmation serves as the receipt).",
            order.number, order.status
        )));
    }
    let email = env
        .store
        .customer(ctx.customer)
        .await?
        .and_then(|c| c.email)
        .ok_or_else(|| ToolError::Failed("there is no e-mail address on your account".into()))?;
    let result = InvoiceQueued {
        order_number: order.number.clone(),
        sent_to: masked_email(&email),
    };
    // The action record is the outbox the mailer reads.
    write(
        env,
        ctx,
        "resend_invoice",
        serde_json::json!({ "order_number": order.number }),
        Effect::RecordOnly,
        serde_json::to_value(&result).unwrap_or_default(),
    )
    .await
}

tool!(
    ResendInvoice, OrderArgs => InvoiceQueued, "resend_invoice", "Resend an invoice",
    ToolAnnotations::WRITE, resend_invoice,
    "E-mails the invoice of one of the customer's shipped or delivered orders to the account's \
     e-mail address. The customer confirms it before it runs."
);
