//! The headless front end: `talaria exec`, `talaria sessions`, `talaria --version`.
//! docs/cli.md is the reference for every flag, event and exit code; a test keeps it in step
//! with `--help`.

pub mod exec;
pub mod mcp;
pub mod sessions;

use std::ffi::OsString;

use clap::{CommandFactory, Parser, Subcommand};

/// Exit code for bad usage or configuration.
pub const EXIT_USAGE: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "talaria",
    version,
    about = "Talaria: a desktop LLM agent, and its headless command line",
    override_usage = "talaria [COMMAND]",
    after_help = "With no command, talaria opens the desktop window.\n\
                  Exit codes of the window: 0 closed, or handed over to the open window; \
                  1 could not start, or the display was lost; 129 SIGHUP; 130 SIGINT; \
                  143 SIGTERM.\n\
                  Reference: docs/cli.md (installed as /usr/share/doc/talaria/cli.md)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run one prompt to completion without the window
    // A flag given twice takes its last value, so wrappers can append overrides.
    #[command(
        args_override_self = true,
        after_help = "Exit codes: 0 done; 1 failed; 2 bad usage or configuration; \
                      130 cancelled (SIGINT or SIGTERM).\n\
                      With --json, stdout has one JSON event per line (docs/cli.md, \"Events\")."
    )]
    Exec(exec::ExecArgs),
    /// Browse, search and export recorded sessions
    #[command(
        after_help = "Exit codes: 0 done; 1 failed (no such session, unreadable data); \
                            2 bad usage."
    )]
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

/// True when the arguments ask for the CLI rather than the desktop window: a subcommand
/// name (whatever subcommands exist), or a help or version flag.
pub fn is_cli_invocation(args: &[OsString]) -> bool {
    let Some(first) = args.get(1).and_then(|a| a.to_str()) else {
        return false;
    };
    matches!(first, "--version" | "-V" | "--help" | "-h" | "help")
        || Cli::command()
            .get_subcommands()
            .any(|command| command.get_name() == first)
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
