//! Understanding incoming messages. Architecture invariant: no HTTP, SQL or model runtime; it
//! works on texts and the sentence vectors the embedding boundary produces.

pub mod guardrails;
pub mod intent;
pub mod language;
pub mod lexical;
pub mod linear;
pub mod pii;
pub mod routing;
pub mod signals;
pub mod triage;
