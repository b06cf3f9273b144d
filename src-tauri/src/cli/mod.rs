//! The headless front end: `talaria exec`, `talaria sessions`, `talaria --version`.

pub mod exec;
pub mod mcp;
pub mod sessions;

use std::ffi::OsString;

use clap::{Parser, Subcommand};

/// Exit code for bad usage or configuration.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "talaria",
    version,
    about = "Talaria: a desktop LLM agent, and its headless command line"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one prompt to completion without the window (see CONTRACTS.md, "Headless mode").
    // A flag given twice takes its last value, so wrappers can append overrides.
    #[command(args_override_self = true)]
    Exec(exec::ExecArgs),
    /// Browse, search and export recorded sessions.
    Sessions {
        #[command(subcommand)]
        command: sessions::SessionsCommand,
    },
    /// List, add and remove MCP servers (mcp.json in the data dir).
    Mcp {
        #[command(subcommand)]
        command: mcp::McpCommand,
    },
}

/// True when the arguments ask for the CLI rather than the desktop window.
pub fn is_cli_invocation(args: &[OsString]) -> bool {
    matches!(
        args.get(1).and_then(|a| a.to_str()),
        Some("exec" | "sessions" | "mcp" | "--version" | "-V" | "--help" | "-h" | "help")
    )
}

/// Runs the CLI and returns the process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version come through here too, with exit code 0.
            let _ = error.print();
            return error.exit_code();
        }
    };
    match cli.command {
        Command::Exec(args) => exec::run(args),
        Command::Sessions { command } => sessions::run(command),
        Command::Mcp { command } => mcp::run(command),
    }
}
