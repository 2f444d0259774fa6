//! The provider adapters through their real HTTP clients against in-process fakes of each
//! vendor's API (one test binary; a module per provider, one for retries and timeouts).

mod anthropic;
mod config;
mod fake;
mod openai;
mod retry;
