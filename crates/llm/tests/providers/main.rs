//! The provider adapters through their real HTTP clients against in-process fakes of each
//! vendor's API (one test binary; a module per provider, one for retries and timeouts).
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod anthropic;
mod anthropic_wire;
mod config;
mod fake;
mod openai;
mod openai_wire;
mod retry;
