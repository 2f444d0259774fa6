//! Procedures: declarative per-intent flows from the workspace configuration, run
//! deterministically with or without an LLM. A procedure collects and validates slots (from the
//! message or by asking), calls tools, branches on their results, answers from templates, and
//! asks for explicit confirmation before any write. A run that waits for the customer is stored
//! with the conversation and resumed by the next message.
//!
//! Templates and conditions are Jinja (minijinja, sandboxed: no IO) over the run's variables:
//! the slots, the results saved by `call` steps, `customer`, `candidates` (the orders an `order`
//! slot may mean), `error` (the last tool failure).
//!
//! Invariants:
//! - a write tool runs only when the step right before it in the flow was a confirmation the
//!   customer answered "yes" in this run; the registry refuses it otherwise;
//! - each write carries the key `<run id>:<step path>`, so a retried turn or a duplicated
//!   confirmation replays the first outcome instead of acting twice;
//! - every step is recorded as an `agent.step` event.

use crate::tools::{ToolContext, ToolEnv, ToolError, ToolRegistry};
use concierge_core::*;
use regex::Regex;
use serde::{Deserialize, Serialize};
use std::sync::LazyLock;

/// The workspace setting holding the procedures.
pub const PROCEDURES_SETTING: &str = "procedures";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcedureSettings {
    pub procedures: Vec<Procedure>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Procedure {
    pub name: String,
    /// The intent that starts it.
    pub intent: String,
    /// Start only when the message asks for something to be done, not how to do it ("how do
    /// returns work?" gets a knowledge answer, "I want to return my order" the procedure).
    #[serde(default)]
    pub requires_action: bool,
    #[serde(default)]
    pub description: String,
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// Fill a slot from the message, or ask for it and wait.
    Ask(Ask),
    /// Call a tool; a failure replies `on_error` (default: the tool's message) and ends the run.
    Call(Call),
    /// Branch on a condition.
    If(If),
    /// Ask the customer to confirm the write that follows, and wait.
    Confirm(Confirm),
    /// Say something (replies of one turn are sent together).
    Reply(String),
    /// Hand the conversation to a person.
    Handoff(HandoffStep),
    /// Stop here.
    End,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotKind {
    /// One of the customer's orders (its number).
    Order,
    /// A postal address ("street, city, state ZIP").
    Address,
    /// Free text (at least 3 characters).
    Text,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ask {
    pub slot: String,
    pub kind: SlotKind,
    /// Template of the question.
    pub prompt: String,
    /// `order` slots: which orders qualify (a condition over `o`, an order summary). When the
    /// message names no order and exactly one qualifies, it is taken.
    #[serde(default)]
    pub filter: Option<String>,
    /// `order` slots: what to say (and end) when no order qualifies. Without it, all orders are
    /// offered.
    #[serde(default)]
    pub none: Option<String>,
    /// `text` slots: also fill from the message that started the procedure.
    #[serde(default)]
    pub from_message: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Call {
    pub tool: String,
    /// Argument templates. A string that is exactly `{{ expression }}` keeps the expression's
    /// type (e.g. an address object); other strings are rendered as text.
    #[serde(default)]
    pub args: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub save_as: Option<String>,
    #[serde(default)]
    pub on_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct If {
    pub cond: String,
    #[serde(default)]
    pub then: Vec<Step>,
    #[serde(default, rename = "else")]
    pub otherwise: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirm {
    pub prompt: String,
    /// What to say when the customer says no (the run ends).
    pub declined: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandoffStep {
    pub reason: String,
    #[serde(default)]
    pub reply: Option<String>,
}

fn jinja() -> &'static minijinja::Environment<'static> {
    static ENV: LazyLock<minijinja::Environment<'static>> = LazyLock::new(|| {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
        env.set_keep_trailing_newline(false);
        env
    });
    &ENV
}

fn render(template: &str, vars: &serde_json::Value) -> Result<String, String> {
    jinja()
        .render_str(template, vars)
        .map(|s| s.trim().to_string())
        .map_err(|e| format!("template error: {e}"))
}

fn eval(expr: &str, vars: &serde_json::Value) -> Result<serde_json::Value, String> {
    let e = jinja()
        .compile_expression(expr)
        .map_err(|e| format!("bad condition {expr:?}: {e}"))?;
    let v = e
        .eval(vars)
        .map_err(|e| format!("cannot evaluate {expr:?}: {e}"))?;
    serde_json::to_value(&v).map_err(|e| e.to_string())
}

fn truthy(expr: &str, vars: &serde_json::Value) -> Result<bool, String> {
    let e = jinja()
        .compile_expression(expr)
        .map_err(|e| format!("bad condition {expr:?}: {e}"))?;
    e.eval(vars)
        .map(|v| v.is_true())
        .map_err(|e| format!("cannot evaluate {expr:?}: {e}"))
}

impl ProcedureSettings {
    /// Checks every template and condition compiles and every tool exists in the workspace
    /// (built in, or from one of its MCP servers); all problems at once.
    pub fn validate(&self, tools: &ToolRegistry, ws: WorkspaceId) -> Result<(), Vec<String>> {
        let mut problems = vec![];
        let mut names = std::collections::HashSet::new();
        for p in &self.procedures {
            if p.name.trim().is_empty() {
                problems.push("a procedure has an empty name".into());
            }
            if !names.insert(p.name.clone()) {
                problems.push(format!("procedure {} is defined twice", p.name));
            }
            if p.steps.is_empty() {
                problems.push(format!("procedure {} has no steps", p.name));
            }
            validate_steps(&p.name, &p.steps, (tools, ws), &mut problems);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// The procedure for a message's intent, if it should start.
    pub fn for_intent(&self, intent: &str, needs_action: bool) -> Option<&Procedure> {
        self.procedures
            .iter()
            .find(|p| p.intent == intent && (!p.requires_action || needs_action))
    }

    pub fn get(&self, name: &str) -> Option<&Procedure> {
        self.procedures.iter().find(|p| p.name == name)
    }
}

fn validate_steps(
    proc: &str,
    steps: &[Step],
    tools: (&ToolRegistry, WorkspaceId),
    out: &mut Vec<String>,
) {
    let template = |t: &str, out: &mut Vec<String>| {
        if let Err(e) = jinja().template_from_str(t) {
            out.push(format!("procedure {proc}: template {t:?}: {e}"));
        }
    };
    let expr = |e: &str, out: &mut Vec<String>| {
        if let Err(err) = jinja().compile_expression(e) {
            out.push(format!("procedure {proc}: condition {e:?}: {err}"));
        }
    };
    for s in steps {
        match s {
            Step::Ask(a) => {
                template(&a.prompt, out);
                if let Some(f) = &a.filter {
                    expr(f, out);
                }
                if let Some(n) = &a.none {
                    template(n, out);
                }
                if a.slot.trim().is_empty() {
                    out.push(format!("procedure {proc}: a slot has no name"));
                }
            }
            Step::Call(c) => {
                if tools.0.spec_in(tools.1, &c.tool).is_none() {
                    out.push(format!("procedure {proc}: unknown tool {}", c.tool));
                }
                for v in c.args.values() {
                    if let Some(t) = v.as_str() {
                        template(t, out);
                    }
                }
                if let Some(t) = &c.on_error {
                    template(t, out);
                }
            }
            Step::If(i) => {
                expr(&i.cond, out);
                validate_steps(proc, &i.then, tools, out);
                validate_steps(proc, &i.otherwise, tools, out);
            }
            Step::Confirm(c) => {
                template(&c.prompt, out);
                template(&c.declined, out);
            }
            Step::Reply(t) => template(t, out),
            Step::Handoff(h) => {
                template(&h.reason, out);
                if let Some(r) = &h.reply {
                    template(r, out);
                }
            }
            Step::End => {}
        }
    }
}

/// Where a paused run waits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Waiting {
    Slot { slot: String, attempts: u32 },
    Confirmation { attempts: u32 },
}

/// A run of a procedure, stored while it waits for the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    pub procedure: String,
    pub intent: String,
    pub run_id: String,
    /// Path of the current step: top-level index, then (branch, index) pairs inside `if`s.
    pub pc: Vec<usize>,
    pub vars: serde_json::Map<String, serde_json::Value>,
    pub waiting: Option<Waiting>,
    /// The customer confirmed the write that comes next.
    pub confirmed: bool,
}

fn step_at<'a>(steps: &'a [Step], path: &[usize]) -> Option<&'a Step> {
    match path {
        [] => None,
        [i] => steps.get(*i),
        [i, b, rest @ ..] => match steps.get(*i)? {
            Step::If(s) => step_at(if *b == 0 { &s.then } else { &s.otherwise }, rest),
            _ => None,
        },
    }
}

/// The path of the step after `path` (leaving finished branches), or `None` at the end.
fn advance(steps: &[Step], mut path: Vec<usize>) -> Option<Vec<usize>> {
    loop {
        let last = path.last_mut()?;
        *last += 1;
        if step_at(steps, &path).is_some() {
            return Some(path);
        }
        if path.len() < 3 {
            return None;
        }
        path.truncate(path.len() - 2);
    }
}

fn path_text(path: &[usize]) -> String {
    path.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(".")
}

/// What a run did in one turn.
#[derive(Debug, Default)]
pub struct TurnOutcome {
    pub replies: Vec<String>,
    pub steps: Vec<StepRecord>,
    /// Hand the conversation to a person for this reason.
    pub handoff: Option<String>,
    /// The run waits for the customer: store this.
    pub paused: Option<RunState>,
    /// The customer moved on: handle the message as if no run were waiting.
    pub reprocess: bool,
}

/// Words that mean yes / no to a confirmation.
static YES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(yes|yeah|yep|yup|ya|y|sure|ok|okay|confirm(ed)?|correct|right|please do|please|go ahead|do it|absolutely|of course|definitely|affirmative|that'?s right|sounds good)\b")
        .unwrap_or_else(|_| unreachable!())
});
static NO: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(no|nope|nah|n|don'?t|do not|stop|not now|never ?mind|keep it|cancel that|wait|hold on)\b")
        .unwrap_or_else(|_| unreachable!())
});
/// The customer drops what the run is doing.
static ABANDON: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)^\W*(never ?mind|forget (it|about it)|stop|cancel (that|this|it)|leave it|nothing|no thanks?)\W*$")
        .unwrap_or_else(|_| unreachable!())
});
static ORDER_NUMBER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)(?:^|[^\w-])(#?[a-z]{1,3}-?\d{3,8}|#?\d{3,8})\b")
        .unwrap_or_else(|_| unreachable!())
});
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(concat!(
        r"(?i)(?P<line1>\d+[a-z]?\s+[^,\n]+?)\s*,\s*(?:(?P<line2>(?:apt|apartment|unit|suite|ste|#)[^,\n]*?)\s*,\s*)?",
        r"(?P<city>[\p{L} .'-]+?)\s*,?\s+(?P<region>[a-z]{2})\s*,?\s+",
        r"(?P<postal>\d{5}(?:-\d{4})?|[a-z]\d[a-z]\s?\d[a-z]\d)\b(?:\s*,?\s*(?P<country>usa?|united states|canada|ca))?"
    ))
    .unwrap_or_else(|_| unreachable!())
});

pub fn confirmation(text: &str) -> Option<bool> {
    // "no" first: "no, don't" is never a yes; a bare "please" after "no" is not reached.
    if NO.is_match(text) {
        Some(false)
    } else if YES.is_match(text) {
        Some(true)
    } else {
        None
    }
}

/// Parses "1234 SE Hawthorne Blvd, Portland, OR 97214" (US or Canadian format) anywhere in
/// the text, as the `change_shipping_address` tool's address object.
pub fn parse_address(text: &str) -> Option<serde_json::Value> {
    let flat = text.replace(['\n', '\r'], ", ");
    let c = ADDRESS.captures(&flat)?;
    let get = |n: &str| c.name(n).map(|m| m.as_str().trim().to_string());
    let postal = get("postal")?.to_uppercase();
    let country = match get("country").map(|s| s.to_lowercase()) {
        Some(s) if s.starts_with("ca") => "CA",
        Some(_) => "US",
        None if postal
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic()) =>
        {
            "CA"
        }
        None => "US",
    };
    let mut address = serde_json::json!({
        "line1": get("line1")?,
        "city": get("city")?,
        "region": get("region")?.to_uppercase(),
        "postal_code": postal,
        "country": country,
    });
    if let Some(l2) = get("line2") {
        address["line2"] = l2.into();
    }
    Some(address)
}

fn one_line(address: &serde_json::Value) -> String {
    let s = |k: &str| address[k].as_str().unwrap_or("").to_string();
    let mut parts = vec![s("line1")];
    if !s("line2").is_empty() {
        parts.push(s("line2"));
    }
    parts.push(s("city"));
    parts.push(format!("{} {}", s("region"), s("postal_code")));
    parts.join(", ")
}

/// Runs procedures for one conversation turn.
pub struct Runner<'a> {
    pub tools: &'a ToolRegistry,
    pub env: &'a ToolEnv,
    pub ctx: ToolContext,
    /// The customer's orders (workspace-scoped), for `order` slots.
    pub orders: Vec<Order>,
    pub max_steps: u32,
    /// The run stops (and offers a person) when a step would start after this.
    pub deadline: std::time::Instant,
}

enum Flow {
    /// Go on with the next step.
    Continue,
    /// The step moved the pc itself (into a branch).
    Jumped,
    Pause,
    End(&'static str),
}

enum Fill {
    Filled,
    /// Nothing can fill it (no qualifying order); the `none` reply was given.
    NothingQualifies,
    NotFilled,
}

impl Runner<'_> {
    fn base_vars(&self, customer: Option<&Customer>) -> serde_json::Map<String, serde_json::Value> {
        let mut vars = serde_json::Map::new();
        if let Some(c) = customer {
            let name = c.name.clone().unwrap_or_default();
            vars.insert(
                "customer".into(),
                serde_json::json!({
                    "name": name,
                    "first_name": name.split_whitespace().next().unwrap_or(""),
                    "tier": c.tier,
                }),
            );
        }
        vars
    }

    /// Starts `procedure` for `message`.
    pub async fn start(
        &self,
        procedure: &Procedure,
        customer: Option<&Customer>,
        message: &str,
    ) -> Result<TurnOutcome, ToolError> {
        let mut state = RunState {
            procedure: procedure.name.clone(),
            intent: procedure.intent.clone(),
            run_id: uuid::Uuid::now_v7().to_string(),
            pc: vec![0],
            vars: self.base_vars(customer),
            waiting: None,
            confirmed: false,
        };
        let mut out = TurnOutcome::default();
        out.steps.push(StepRecord::Started {
            intent: procedure.intent.clone(),
        });
        self.run(procedure, &mut state, Some(message), true, &mut out)
            .await?;
        Ok(out)
    }

    /// Resumes a paused run with the customer's answer. `other_intent`: the message's own intent
    /// when it is confidently something else, in which case an answer that fills nothing drops
    /// the run and the message is handled afresh.
    pub async fn resume(
        &self,
        procedure: &Procedure,
        mut state: RunState,
        message: &str,
        other_intent: bool,
    ) -> Result<TurnOutcome, ToolError> {
        let mut out = TurnOutcome::default();
        if ABANDON.is_match(message) {
            out.replies.push(
                "All right, I've stopped there and nothing was changed. What else can I help with?"
                    .into(),
            );
            out.steps.push(StepRecord::Finished {
                outcome: "abandoned".into(),
            });
            return Ok(out);
        }
        match state.waiting.clone() {
            Some(Waiting::Confirmation { attempts }) => match confirmation(message) {
                Some(yes) => {
                    out.steps.push(StepRecord::Confirmation { confirmed: yes });
                    state.waiting = None;
                    if !yes {
                        let declined = match step_at(&procedure.steps, &state.pc) {
                            Some(Step::Confirm(c)) => c.declined.clone(),
                            _ => "All right, nothing was changed.".into(),
                        };
                        out.replies.push(self.text(&declined, &state)?);
                        out.steps.push(StepRecord::Finished {
                            outcome: "declined".into(),
                        });
                        return Ok(out);
                    }
                    state.confirmed = true;
                    match advance(&procedure.steps, state.pc.clone()) {
                        Some(pc) => state.pc = pc,
                        None => {
                            out.steps.push(StepRecord::Finished {
                                outcome: "completed".into(),
                            });
                            return Ok(out);
                        }
                    }
                    self.run(procedure, &mut state, None, false, &mut out)
                        .await?;
                }
                None if other_intent => return Ok(self.moved_on(out)),
                None if attempts >= 1 => return Ok(self.give_up(out)),
                None => {
                    out.replies.push(
                        "Sorry, I need a clear yes or no before I go ahead. Shall I do it?".into(),
                    );
                    state.waiting = Some(Waiting::Confirmation {
                        attempts: attempts + 1,
                    });
                    out.paused = Some(state);
                }
            },
            Some(Waiting::Slot { slot, attempts }) => {
                let Some(Step::Ask(ask)) = step_at(&procedure.steps, &state.pc).cloned() else {
                    return Ok(self.give_up(out));
                };
                match self.fill(&ask, message, &mut state, &mut out)? {
                    Fill::Filled => {
                        state.waiting = None;
                        match advance(&procedure.steps, state.pc.clone()) {
                            Some(pc) => {
                                state.pc = pc;
                                self.run(procedure, &mut state, None, false, &mut out)
                                    .await?;
                            }
                            None => out.steps.push(StepRecord::Finished {
                                outcome: "completed".into(),
                            }),
                        }
                    }
                    // The slot cannot be filled at all (e.g. no qualifying order): ended.
                    Fill::NothingQualifies => out.steps.push(StepRecord::Finished {
                        outcome: "nothing_to_do".into(),
                    }),
                    Fill::NotFilled if other_intent => return Ok(self.moved_on(out)),
                    Fill::NotFilled if attempts >= 1 => return Ok(self.give_up(out)),
                    Fill::NotFilled => {
                        out.replies.push(self.text(&ask.prompt, &state)?);
                        out.steps.push(StepRecord::AskedFor { slot: slot.clone() });
                        state.waiting = Some(Waiting::Slot {
                            slot,
                            attempts: attempts + 1,
                        });
                        out.paused = Some(state);
                    }
                }
            }
            None => return Ok(self.moved_on(out)),
        }
        Ok(out)
    }

    fn moved_on(&self, mut out: TurnOutcome) -> TurnOutcome {
        out.steps.push(StepRecord::Finished {
            outcome: "abandoned".into(),
        });
        out.reprocess = true;
        out
    }

    fn give_up(&self, mut out: TurnOutcome) -> TurnOutcome {
        out.replies.push(
            "Sorry, I couldn't work this out with you. Nothing was changed. Press \"Talk to a \
             person\" and someone from our team will help."
                .into(),
        );
        out.steps.push(StepRecord::Finished {
            outcome: "gave_up".into(),
        });
        out
    }

    fn vars(state: &RunState) -> serde_json::Value {
        serde_json::Value::Object(state.vars.clone())
    }

    fn text(&self, template: &str, state: &RunState) -> Result<String, ToolError> {
        render(template, &Self::vars(state)).map_err(ToolError::Infrastructure)
    }

    fn summaries(&self) -> Vec<serde_json::Value> {
        self.orders
            .iter()
            .map(|o| serde_json::to_value(crate::tools::order_summary(o)).unwrap_or_default())
            .collect()
    }

    /// Tries to fill `ask` from `message`.
    fn fill(
        &self,
        ask: &Ask,
        message: &str,
        state: &mut RunState,
        out: &mut TurnOutcome,
    ) -> Result<Fill, ToolError> {
        let value: Option<serde_json::Value> = match ask.kind {
            SlotKind::Order => {
                let summaries = self.summaries();
                let mut qualifying = vec![];
                for (o, s) in self.orders.iter().zip(&summaries) {
                    let ok = match &ask.filter {
                        Some(f) => truthy(f, &serde_json::json!({ "o": s }))
                            .map_err(ToolError::Infrastructure)?,
                        None => true,
                    };
                    if ok {
                        qualifying.push((o, s.clone()));
                    }
                }
                state.vars.insert(
                    "candidates".into(),
                    serde_json::Value::Array(if qualifying.is_empty() {
                        summaries.clone()
                    } else {
                        qualifying.iter().map(|(_, s)| s.clone()).collect()
                    }),
                );
                let typed: Vec<String> = ORDER_NUMBER
                    .captures_iter(message)
                    .filter_map(|c| c.get(1).map(|m| m.as_str().to_string()))
                    .collect();
                let named = typed.iter().find_map(|t| {
                    self.orders
                        .iter()
                        .find(|o| order_number_matches(o, t))
                        .map(|o| o.number.clone())
                });
                if let Some(n) = named {
                    Some(n.into())
                } else if let Some(t) = typed.first() {
                    // A number that is not one of theirs: say so, then ask.
                    out.replies.push(format!(
                        "I could not find an order {} in your account.",
                        t.trim_start_matches('#')
                    ));
                    None
                } else if qualifying.is_empty() && ask.none.is_some() {
                    let none = ask.none.clone().unwrap_or_default();
                    out.replies.push(self.text(&none, state)?);
                    return Ok(Fill::NothingQualifies);
                } else if qualifying.len() == 1 {
                    Some(qualifying[0].0.number.clone().into())
                } else {
                    // "the doorbell one": a word found in exactly one candidate's items.
                    let words: Vec<String> = message
                        .split(|c: char| !c.is_alphanumeric())
                        .filter(|w| w.chars().count() >= 4)
                        .map(str::to_lowercase)
                        .collect();
                    let pool: Vec<&Order> = if qualifying.is_empty() {
                        self.orders.iter().collect()
                    } else {
                        qualifying.iter().map(|(o, _)| *o).collect()
                    };
                    let hits: Vec<&&Order> = pool
                        .iter()
                        .filter(|o| {
                            let items = crate::tools::order_summary(o)
                                .items
                                .join(" ")
                                .to_lowercase();
                            words.iter().any(|w| items.contains(w.as_str()))
                        })
                        .collect();
                    (hits.len() == 1).then(|| hits[0].number.clone().into())
                }
            }
            SlotKind::Address => parse_address(message),
            SlotKind::Text => {
                let t = message.trim();
                (t.chars().count() >= 3).then(|| t.to_string().into())
            }
        };
        let Some(value) = value else {
            return Ok(Fill::NotFilled);
        };
        let shown = match ask.kind {
            SlotKind::Address => one_line(&value),
            _ => value.as_str().unwrap_or_default().to_string(),
        };
        out.steps.push(StepRecord::SlotFilled {
            slot: ask.slot.clone(),
            value: shown.clone(),
        });
        if ask.kind == SlotKind::Address {
            state
                .vars
                .insert(format!("{}_text", ask.slot), shown.into());
        }
        state.vars.insert(ask.slot.clone(), value);
        Ok(Fill::Filled)
    }

    /// Runs steps from `state.pc` until the run pauses or ends.
    async fn run(
        &self,
        procedure: &Procedure,
        state: &mut RunState,
        first_message: Option<&str>,
        starting: bool,
        out: &mut TurnOutcome,
    ) -> Result<(), ToolError> {
        let mut taken = 0u32;
        loop {
            taken += 1;
            if taken > self.max_steps || std::time::Instant::now() > self.deadline {
                out.replies.push(
                    "Sorry, this is taking longer than it should. Press \"Talk to a person\" and \
                     someone from our team will take it from here."
                        .into(),
                );
                out.steps.push(StepRecord::Finished {
                    outcome: "budget_exhausted".into(),
                });
                return Ok(());
            }
            let Some(step) = step_at(&procedure.steps, &state.pc).cloned() else {
                out.steps.push(StepRecord::Finished {
                    outcome: "completed".into(),
                });
                return Ok(());
            };
            let flow = self
                .step(&step, state, first_message, starting, out)
                .await?;
            match flow {
                Flow::Pause => {
                    out.paused = Some(state.clone());
                    return Ok(());
                }
                Flow::End(outcome) => {
                    out.steps.push(StepRecord::Finished {
                        outcome: outcome.into(),
                    });
                    return Ok(());
                }
                Flow::Jumped => continue,
                Flow::Continue => {}
            }
            match advance(&procedure.steps, state.pc.clone()) {
                Some(pc) => state.pc = pc,
                None => {
                    out.steps.push(StepRecord::Finished {
                        outcome: "completed".into(),
                    });
                    return Ok(());
                }
            }
        }
    }

    async fn step(
        &self,
        step: &Step,
        state: &mut RunState,
        first_message: Option<&str>,
        starting: bool,
        out: &mut TurnOutcome,
    ) -> Result<Flow, ToolError> {
        match step {
            Step::Ask(ask) => {
                if ask.kind != SlotKind::Text || ask.from_message {
                    // The message that started the run may already hold the slot; later in the
                    // run an order slot may still be decided without asking (one candidate).
                    let source = match first_message.filter(|_| starting) {
                        Some(m) => Some(m),
                        None if ask.kind == SlotKind::Order => Some(""),
                        None => None,
                    };
                    if let Some(message) = source {
                        match self.fill(ask, message, state, out)? {
                            Fill::Filled => return Ok(Flow::Continue),
                            Fill::NothingQualifies => return Ok(Flow::End("nothing_to_do")),
                            Fill::NotFilled => {}
                        }
                    }
                }
                if ask.kind == SlotKind::Order && !state.vars.contains_key("candidates") {
                    state.vars.insert(
                        "candidates".into(),
                        serde_json::Value::Array(self.summaries()),
                    );
                }
                out.replies.push(self.text(&ask.prompt, state)?);
                out.steps.push(StepRecord::AskedFor {
                    slot: ask.slot.clone(),
                });
                state.waiting = Some(Waiting::Slot {
                    slot: ask.slot.clone(),
                    attempts: 0,
                });
                Ok(Flow::Pause)
            }
            Step::Confirm(c) => {
                let summary = self.text(&c.prompt, state)?;
                out.replies.push(summary.clone());
                out.steps.push(StepRecord::AwaitingConfirmation { summary });
                state.waiting = Some(Waiting::Confirmation { attempts: 0 });
                Ok(Flow::Pause)
            }
            Step::Reply(t) => {
                out.replies.push(self.text(t, state)?);
                Ok(Flow::Continue)
            }
            Step::End => Ok(Flow::End("completed")),
            Step::Handoff(h) => {
                let reason = self.text(&h.reason, state)?;
                if let Some(r) = &h.reply {
                    out.replies.push(self.text(r, state)?);
                }
                out.steps.push(StepRecord::Handoff {
                    reason: reason.clone(),
                });
                out.handoff = Some(reason);
                Ok(Flow::End("handed_off"))
            }
            Step::If(i) => {
                let taken =
                    truthy(&i.cond, &Self::vars(state)).map_err(ToolError::Infrastructure)?;
                out.steps.push(StepRecord::Branch {
                    condition: i.cond.clone(),
                    taken,
                });
                let block = if taken { &i.then } else { &i.otherwise };
                if block.is_empty() {
                    return Ok(Flow::Continue);
                }
                state.pc.extend([usize::from(!taken), 0]);
                Ok(Flow::Jumped)
            }
            Step::Call(c) => self.call(c, state, out).await,
        }
    }

    async fn call(
        &self,
        c: &Call,
        state: &mut RunState,
        out: &mut TurnOutcome,
    ) -> Result<Flow, ToolError> {
        let vars = Self::vars(state);
        let mut args = serde_json::Map::new();
        for (k, v) in &c.args {
            let value = match v.as_str() {
                Some(t) => match whole_expression(t) {
                    Some(expr) => eval(expr, &vars).map_err(ToolError::Infrastructure)?,
                    None => render(t, &vars).map_err(ToolError::Infrastructure)?.into(),
                },
                None => v.clone(),
            };
            args.insert(k.clone(), value);
        }
        let args = serde_json::Value::Object(args);
        let spec = self.tools.spec_in(self.ctx.workspace, &c.tool);
        let write = spec.is_some_and(|s| !s.annotations.read_only);
        let mut ctx = self.ctx.clone();
        if write {
            ctx.confirmed = std::mem::take(&mut state.confirmed);
            ctx.idempotency_key = Some(format!("{}:{}", state.run_id, path_text(&state.pc)));
        }
        let started = std::time::Instant::now();
        let result = self.tools.call(self.env, &ctx, &c.tool, args.clone()).await;
        let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
        let (ok, value) = match result {
            Ok(v) => (true, v),
            Err(ToolError::Infrastructure(e)) => return Err(ToolError::Infrastructure(e)),
            Err(ToolError::Refused(reason)) => {
                out.steps.push(StepRecord::ToolRefused {
                    tool: c.tool.clone(),
                    reason: reason.clone(),
                });
                (
                    false,
                    serde_json::Value::String(format!("refused: {reason}")),
                )
            }
            Err(ToolError::Failed(m)) => (false, serde_json::Value::String(m)),
        };
        out.steps.push(StepRecord::ToolCall {
            tool: c.tool.clone(),
            arguments: args,
            ok,
            result: value.clone(),
            latency_ms,
            idempotency_key: ctx.idempotency_key.clone(),
        });
        if ok {
            if let Some(name) = &c.save_as {
                state.vars.insert(name.clone(), value);
            }
            if c.tool == crate::tools::REQUEST_HUMAN {
                out.handoff = Some(
                    state
                        .vars
                        .get("reason")
                        .and_then(|v| v.as_str())
                        .map(str::to_string)
                        .unwrap_or_else(|| {
                            format!("procedure {} asked for a person", state.procedure)
                        }),
                );
                return Ok(Flow::End("handed_off"));
            }
            Ok(Flow::Continue)
        } else {
            state.vars.insert("error".into(), value.clone());
            let text = match &c.on_error {
                Some(t) => self.text(t, state)?,
                None => value
                    .as_str()
                    .unwrap_or("Sorry, that did not work.")
                    .to_string(),
            };
            out.replies.push(text);
            Ok(Flow::End("failed"))
        }
    }
}

/// `{{ expr }}` with nothing around it.
fn whole_expression(t: &str) -> Option<&str> {
    let inner = t.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner.trim())
}

/// Reads the workspace's procedures (none configured: an empty set).
pub async fn load(store: &dyn Store, ws: WorkspaceId) -> StoreResult<ProcedureSettings> {
    match store.setting(ws, PROCEDURES_SETTING).await? {
        Some(v) => serde_json::from_value(v)
            .map_err(|e| StoreError::Backend(format!("stored procedures are invalid: {e}"))),
        None => Ok(ProcedureSettings::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confirmations_are_read_from_the_first_words() {
        for yes in [
            "yes",
            "Yes please",
            "ok",
            "sure, go ahead",
            "y",
            "Confirm",
            "that's right",
        ] {
            assert_eq!(confirmation(yes), Some(true), "{yes}");
        }
        for no in ["no", "No, keep it", "nope", "don't", "never mind", "wait"] {
            assert_eq!(confirmation(no), Some(false), "{no}");
        }
        for unclear in ["what does that mean?", "maybe", "the blue one", "yesterday"] {
            assert_eq!(confirmation(unclear), None, "{unclear}");
        }
    }

    #[test]
    fn addresses_are_parsed_in_us_and_canadian_formats() {
        let a = parse_address("Ship it to 55 Main St, Apt 4, Springfield, IL 62701 please")
            .expect("us address");
        assert_eq!(a["line1"], "55 Main St");
        assert_eq!(a["line2"], "Apt 4");
        assert_eq!(a["city"], "Springfield");
        assert_eq!(a["region"], "IL");
        assert_eq!(a["postal_code"], "62701");
        assert_eq!(a["country"], "US");
        let c = parse_address("1200 Rue Sainte-Catherine O\nMontréal, QC H3B 1K9").expect("ca");
        assert_eq!(c["country"], "CA");
        assert_eq!(c["postal_code"], "H3B 1K9");
        assert_eq!(c["region"], "QC");
        for not_an_address in [
            "somewhere else",
            "my office",
            "Springfield IL",
            "order A-1043",
        ] {
            assert_eq!(parse_address(not_an_address), None, "{not_an_address}");
        }
    }

    #[test]
    fn the_program_counter_walks_into_and_out_of_branches() {
        let steps: Vec<Step> = serde_json::from_value(serde_json::json!([
            {"reply": "a"},
            {"if": {"cond": "x", "then": [{"reply": "b"}, {"reply": "c"}], "else": [{"reply": "d"}]}},
            {"reply": "e"}
        ]))
        .expect("steps");
        assert_eq!(advance(&steps, vec![0]), Some(vec![1]));
        assert!(matches!(step_at(&steps, &[1, 0, 1]), Some(Step::Reply(t)) if t == "c"));
        assert!(matches!(step_at(&steps, &[1, 1, 0]), Some(Step::Reply(t)) if t == "d"));
        // Leaving either branch continues after the `if`.
        assert_eq!(advance(&steps, vec![1, 0, 1]), Some(vec![2]));
        assert_eq!(advance(&steps, vec![1, 1, 0]), Some(vec![2]));
        assert_eq!(advance(&steps, vec![2]), None);
    }

    #[test]
    fn templates_render_and_whole_expressions_keep_their_type() {
        let vars = serde_json::json!({"order": {"number": "A-1", "items": ["Hub", "Plug"]},
            "address": {"city": "Portland"}});
        assert_eq!(
            render("{{ order.number }}: {{ order.items|join(', ') }}", &vars).expect("render"),
            "A-1: Hub, Plug"
        );
        let expr = whole_expression("{{ address }}").expect("whole");
        assert_eq!(eval(expr, &vars).expect("eval")["city"], "Portland");
        assert_eq!(whole_expression("Order {{ order.number }}"), None);
        assert!(truthy("order.number == 'A-1'", &vars).expect("cond"));
        assert!(!truthy("missing.field", &vars).expect("undefined is false"));
    }
}
