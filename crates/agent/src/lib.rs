//! The agent: answers customer turns from the knowledge base, hands conversations to people,
//! and publishes every step as events.
//!
//! Architecture invariant: no HTTP, SQL or vendor SDK here. It talks to storage through the core
//! `Store` trait and to live listeners through [`LiveHub`]; front ends (HTTP, Slack, CLI) call
//! [`Service`] and subscribe to the hub.

mod acting;
mod guarding;
mod hub;
pub mod humans;
pub mod outcomes;
pub mod planner;
pub mod procedures;
mod service;
pub mod tools;
mod understanding;
mod worker;

pub use guarding::Guardrails;
pub use hub::LiveHub;
pub use humans::{CaseFile, HandoffRequest, QueueItem, Suggestion};
pub use planner::{LlmAgent, LlmUsage, PlannerSettings};
pub use service::{AgentConfig, SYNC_TASK, Service, ServiceError};
pub use understanding::{IntentsStatus, TRAIN_INTENTS_TASK, train_intents};
pub use worker::{run_lease_sweeper, run_task_worker, run_workers};
