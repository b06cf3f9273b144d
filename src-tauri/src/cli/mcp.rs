//! `talaria mcp list | add | remove`: the MCP servers of `<data dir>/mcp.json`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::Subcommand;

use super::EXIT_USAGE;
use crate::mcp::{ConfigError, McpFile, McpManager, OnBroken, ServerEntry, ServerView};

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Start every server, then print its state and tools
    List {
        /// Where mcp.json lives [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Read the servers from FILE instead of <data dir>/mcp.json
        #[arg(long, value_name = "FILE")]
        mcp_config: Option<PathBuf>,
        /// One JSON array on stdout
        #[arg(long)]
        json: bool,
    },
    /// Add a server: `talaria mcp add NAME -- COMMAND [ARGS…]`, or `--url URL` for a remote one
    #[command(arg_required_else_help = true)]
    Add {
        /// The server's name; its tools reach the model as NAME__tool
        name: String,
        /// Where mcp.json lives [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// A remote server's streamable HTTP address (instead of a command)
        #[arg(long, value_name = "URL", conflicts_with = "command")]
        url: Option<String>,
        /// An HTTP header for a remote server, as "Name: value" (repeatable)
        #[arg(long = "header", value_name = "NAME: VALUE", requires = "url")]
        headers: Vec<String>,
        /// An environment variable for the server, as KEY=VALUE (repeatable)
        #[arg(long = "env", value_name = "KEY=VALUE")]
        env: Vec<String>,
        /// The folder the server starts in
        #[arg(long, value_name = "DIR")]
        cwd: Option<String>,
        /// Let its tools run without asking
        #[arg(long)]
        trusted: bool,
        /// Add it switched off
        #[arg(long)]
        disabled: bool,
        /// Seconds it may take to start (default 10)
        #[arg(long, value_name = "N")]
        startup_timeout_s: Option<u64>,
        /// Seconds one tool call may take (default 120)
        #[arg(long, value_name = "N")]
        tool_timeout_s: Option<u64>,
        /// The command and its arguments, after `--`
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
    },
    /// Remove a server
    Remove {
        name: String,
        /// Where mcp.json lives [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

/// Runs `talaria mcp …` and returns the exit code.
pub fn run(command: McpCommand) -> i32 {
    crate::logging::init("warn");
    match command {
        McpCommand::List {
            data_dir,
            mcp_config,
            json,
        } => list(data_dir, mcp_config, json),
        McpCommand::Add {
            name,
            data_dir,
            url,
            headers,
            env,
            cwd,
            trusted,
            disabled,
            startup_timeout_s,
            tool_timeout_s,
            command,
        } => {
            let entry = match (url, command.split_first()) {
                (Some(url), _) => {
                    let mut entry = ServerEntry::http(url);
                    match pairs(&headers, ':', "--header", "\"Authorization: Bearer …\"") {
                        Ok(headers) => entry.headers = headers,
                        Err(message) => return usage(&message),
                    }
                    entry
                }
                (None, Some((program, args))) => ServerEntry::stdio(program.clone(), args.to_vec()),
                (None, None) => {
                    return usage(
                        "give the command after `--` (talaria mcp add NAME -- npx -y some-server) \
                         or a remote server's address with --url",
                    );
                }
            };
            let mut entry = entry;
            match pairs(&env, '=', "--env", "KEY=VALUE") {
                Ok(env) => entry.env = env,
                Err(message) => return usage(&message),
            }
            entry.cwd = cwd;
            entry.trusted = trusted.then_some(true);
            entry.enabled = disabled.then_some(false);
            entry.startup_timeout_s = startup_timeout_s;
            entry.tool_timeout_s = tool_timeout_s;
            add(&name, data_dir, &entry)
        }
        McpCommand::Remove { name, data_dir } => remove(&name, data_dir),
    }
}

fn usage(message: &str) -> i32 {
    eprintln!("talaria: {message}");
    EXIT_USAGE
}

/// `KEY=VALUE` (or `Name: value`) arguments as a map.
fn pairs(
    items: &[String],
    separator: char,
    flag: &str,
    example: &str,
) -> Result<BTreeMap<String, String>, String> {
    items
        .iter()
        .map(|item| match item.split_once(separator) {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.trim_start().to_string()))
            }
            _ => Err(format!("{flag} {item:?} should look like {example}")),
        })
        .collect()
}

fn path_for(data_dir: Option<PathBuf>) -> PathBuf {
    crate::mcp::config::default_path(&data_dir.unwrap_or_else(crate::config::data_dir))
}

/// Reads `mcp.json`, changes it and writes it back; a file that cannot be read is left as
/// it is.
fn edit(
    data_dir: Option<PathBuf>,
    change: impl FnOnce(&mut McpFile) -> Result<(), ConfigError>,
) -> Result<PathBuf, ConfigError> {
    let path = path_for(data_dir);
    let mut file = McpFile::load(&path)?;
    change(&mut file)?;
    file.save(&path)?;
    Ok(path)
}

fn add(name: &str, data_dir: Option<PathBuf>, entry: &ServerEntry) -> i32 {
    match edit(data_dir, |file| file.add(name, entry)) {
        Ok(path) => {
            println!(
                "added the MCP server {name} ({}) to {}",
                entry.summary(),
                path.display()
            );
            0
        }
        Err(error) => usage(&error.to_string()),
    }
}

fn remove(name: &str, data_dir: Option<PathBuf>) -> i32 {
    match edit(data_dir, |file| file.remove_existing(name)) {
        Ok(path) => {
            println!("removed the MCP server {name} from {}", path.display());
            0
        }
        Err(error) => usage(&error.to_string()),
    }
}

fn list(data_dir: Option<PathBuf>, mcp_config: Option<PathBuf>, json: bool) -> i32 {
    let (path, editable) = match mcp_config {
        Some(path) => (path, false),
        None => (path_for(data_dir), true),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return usage(&format!("cannot start the async runtime: {error}")),
    };
    let started = McpManager::start(path, editable, OnBroken::Fail, runtime.handle().clone());
    let manager = match started {
        Ok(manager) => manager,
        Err(error) => return usage(&error.to_string()),
    };
    runtime.block_on(manager.settled());
    let overview = manager.overview();
    manager.shutdown(crate::mcp::EXIT_GRACE);
    runtime.shutdown_timeout(Duration::from_millis(500));
    let mut out = std::io::stdout().lock();
    let text = if json {
        let servers: Vec<serde_json::Value> = overview.servers.iter().map(public_json).collect();
        serde_json::to_string_pretty(&servers).unwrap_or_default() + "\n"
    } else if overview.servers.is_empty() {
        format!(
            "no MCP servers in {}; add one with: talaria mcp add NAME -- COMMAND [ARGS…]\n",
            overview.path.unwrap_or_default()
        )
    } else {
        overview.servers.iter().map(human).collect()
    };
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    0
}

/// A server for `--json`: everything but the entry itself, which may hold tokens.
fn public_json(server: &ServerView) -> serde_json::Value {
    let mut value = serde_json::to_value(server).unwrap_or_default();
    if let Some(object) = value.as_object_mut() {
        object.remove("entry");
    }
    value
}

fn human(server: &ServerView) -> String {
    let state = match server.state {
        "ready" => format!("ready, {} tool(s)", server.tools.len()),
        "failed" => format!("failed: {}", server.error.as_deref().unwrap_or("")),
        other => other.to_string(),
    };
    let trusted = if server.trusted { ", trusted" } else { "" };
    let mut text = format!("{}  [{state}{trusted}]\n", server.name);
    if !server.summary.is_empty() {
        text.push_str(&format!("  {}: {}\n", server.transport, server.summary));
    }
    for tool in &server.tools {
        let description = tool.description.lines().next().unwrap_or("");
        text.push_str(&format!("  - {}  {description}\n", tool.model_name));
    }
    if !server.stderr.is_empty() {
        text.push_str("  stderr:\n");
        for line in &server.stderr {
            text.push_str(&format!("    {line}\n"));
        }
    }
    text
}
