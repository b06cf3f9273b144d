//! The MCP client: tools from any Model Context Protocol server, configured in `mcp.json`
//! like Claude Desktop. Servers run as child processes (stdio) or remotely (streamable HTTP),
//! on the official Rust SDK, `rmcp`. No Tauri here: the app and `talaria exec` share it.

pub mod config;
mod connect;
pub mod content;
pub mod env;
mod error_text;
mod manager;
pub mod names;
mod process;
pub mod tools;

pub use config::{ConfigError, McpFile, ServerEntry};
pub use content::McpOutput;
pub use manager::{
    EXIT_GRACE, McpError, McpManager, OnBroken, Overview, RESTART_BACKOFF, ServerView, ToolView,
};
pub use process::kill_all as kill_all_servers;
pub use tools::{Route, TurnTools};
