//! Talaria: a desktop LLM agent. Everything here but `desktop` is free of Tauri, so the
//! engine is tested headless and shared with the `talaria exec` / `talaria sessions` CLI.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod agent;
pub mod cancel;
pub mod cli;
pub mod config;
pub mod desktop;
pub mod event;
pub mod history;
pub mod instance;
pub mod keystore;
pub mod local_servers;
pub mod logging;
pub mod mcp;
pub mod message;
pub mod private;
pub mod provider;
pub mod repair;
pub mod safety;
pub mod sse;
pub mod sync;
pub mod todo;
pub mod tools;
pub mod window_state;
