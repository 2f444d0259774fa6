//! API tests: each test spawns the real application on a random port (SQLite in a temp dir,
//! or PostgreSQL in a fresh schema when `CONCIERGE_TEST_DATABASE_URL` is set) and drives it
//! over HTTP.
#![allow(clippy::expect_used, clippy::unwrap_used)]

mod helpers;

mod access;
mod browser;
mod console;
mod conversations;
mod errors;
mod events;
mod knowledge;
mod mcp;
mod operations;
mod understanding;
