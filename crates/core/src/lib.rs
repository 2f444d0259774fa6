//! Concierge's domain: the types every crate shares and the traits that separate the agent from
//! storage and transport.
//!
//! Architecture invariant: this crate does no IO and knows no wire format. Types here derive
//! `Serialize` only so the store can keep them as JSON columns; the HTTP API has its own DTOs.

pub mod actions;
pub mod domain;
pub mod events;
pub mod handoff;
pub mod knowledge;
pub mod llm;
pub mod store;
pub mod triage;

pub use actions::*;
pub use domain::*;
pub use events::*;
pub use handoff::*;
pub use knowledge::*;
pub use llm::*;
pub use store::*;
pub use triage::*;
