//! `talaria sessions list | show | search | export` (docs/cli.md). Reads go
//! through the index, refreshed first by comparing each log's size and mtime (unchanged logs
//! are not opened).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::history::{self, HistoryError, Index, SessionLog};
use crate::message::Message;
use crate::todo::TodoStatus;

#[derive(Debug, clap::Subcommand)]
pub enum SessionsCommand {
    /// List sessions, newest first.
    List {
        /// Where sessions and the index live [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// At most this many sessions (default: all).
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Skip this many of the newest sessions first.
        #[arg(long, value_name = "N", default_value_t = 0)]
        offset: usize,
        /// A JSON array of {id, path, title, created, updated, status, message_count}.
        #[arg(long)]
        json: bool,
    },
    /// Print one session (id or a unique prefix of it).
    Show {
        /// The session id, or a unique prefix of it
        id: String,
        /// Where sessions and the index live [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// One JSON object: {id, title, created, messages, todos, skipped_lines, ...}.
        #[arg(long, conflicts_with = "markdown")]
        json: bool,
        /// The conversation as Markdown.
        #[arg(long)]
        markdown: bool,
    },
    /// Full-text search over titles and user and assistant text.
    Search {
        /// Words to look for
        query: String,
        /// Where sessions and the index live [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// At most this many matches, best first
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
        /// A JSON array of {id, title, snippet, score} (higher score is better).
        #[arg(long)]
        json: bool,
    },
    /// Write one session as Markdown or JSON (the JSON of `show --json`).
    Export {
        /// The session id, or a unique prefix of it
        id: String,
        /// What to write on stdout
        #[arg(long, value_enum)]
        format: ExportFormat,
        /// Where sessions and the index live [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Markdown,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ShowFormat {
    Text,
    Markdown,
    Json,
}

/// Runs one `sessions` subcommand; returns the exit code (0 ok, 1 failure).
pub fn run(command: SessionsCommand) -> i32 {
    match execute(command) {
        Ok(()) => 0,
        Err(error) => {
            eprintln!("talaria: {error}");
            1
        }
    }
}

fn execute(command: SessionsCommand) -> Result<(), HistoryError> {
    let mut out = std::io::stdout().lock();
    match command {
        SessionsCommand::List {
            data_dir,
            limit,
            offset,
            json,
        } => {
            let sessions = match open_index(data_dir)? {
                Some(index) => index.list(limit.unwrap_or(usize::MAX >> 1), offset)?,
                None => Vec::new(),
            };
            if json {
                let rows: Vec<serde_json::Value> = sessions
                    .iter()
                    .map(|s| {
                        json!({
                            "id": s.id, "path": s.path, "title": s.title,
                            "created": s.created.to_rfc3339(), "updated": s.updated.to_rfc3339(),
                            "status": s.status.as_str(), "message_count": s.message_count,
                            "provider": s.provider, "model": s.model,
                        })
                    })
                    .collect();
                print_json(&mut out, &serde_json::Value::Array(rows));
            } else if sessions.is_empty() {
                // stdout stays empty (scripts read it); the hint is for people.
                eprintln!("talaria: no sessions yet");
            } else {
                for s in &sessions {
                    let _ = writeln!(
                        out,
                        "{}  {}  {:<9}  {:>4} msgs  {}",
                        s.id,
                        s.updated.format("%Y-%m-%d %H:%M"),
                        s.status.as_str(),
                        s.message_count,
                        title_or_untitled(&s.title)
                    );
                }
            }
            Ok(())
        }
        SessionsCommand::Show {
            id,
            data_dir,
            json,
            markdown,
        } => {
            let format = if json {
                ShowFormat::Json
            } else if markdown {
                ShowFormat::Markdown
            } else {
                ShowFormat::Text
            };
            show(&mut out, data_dir, &id, format)
        }
        SessionsCommand::Export {
            id,
            format,
            data_dir,
        } => {
            let format = match format {
                ExportFormat::Markdown => ShowFormat::Markdown,
                ExportFormat::Json => ShowFormat::Json,
            };
            show(&mut out, data_dir, &id, format)
        }
        SessionsCommand::Search {
            query,
            data_dir,
            limit,
            json,
        } => {
            let hits = match open_index(data_dir)? {
                Some(index) => index.search(&query, limit)?,
                None => Vec::new(),
            };
            if json {
                let rows: Vec<serde_json::Value> = hits
                    .iter()
                    .map(|h| json!({"id": h.id, "title": h.title, "snippet": h.snippet, "score": h.score}))
                    .collect();
                print_json(&mut out, &serde_json::Value::Array(rows));
            } else if hits.is_empty() {
                eprintln!("talaria: no session matches {query:?}");
            } else {
                for h in &hits {
                    let _ = writeln!(out, "{}  {}", h.id, title_or_untitled(&h.title));
                    let _ = writeln!(out, "    {}", h.snippet.replace('\n', " "));
                }
            }
            Ok(())
        }
    }
}

fn title_or_untitled(title: &str) -> &str {
    if title.is_empty() {
        "(untitled)"
    } else {
        title
    }
}

fn print_json(out: &mut impl Write, value: &serde_json::Value) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => {
            let _ = writeln!(out, "{text}");
        }
        Err(error) => eprintln!("talaria: could not encode the output: {error}"),
    }
}

/// The index of the data dir, brought up to date; logs it cannot read are reported on
/// stderr and left out. None when there is no sessions folder yet (a fresh machine): there
/// is nothing to list, and reading must not create folders or an index.
fn open_index(data_dir: Option<PathBuf>) -> Result<Option<Index>, HistoryError> {
    let data_dir = data_dir.unwrap_or_else(crate::config::data_dir);
    if !history::sessions_dir(&data_dir).is_dir() {
        return Ok(None);
    }
    let index = Index::open(&data_dir)?;
    index.refresh_all(&|_| {})?;
    for (path, reason) in index.broken()? {
        eprintln!("talaria: skipped {}: {reason}", path.display());
    }
    Ok(Some(index))
}

fn show(
    out: &mut impl Write,
    data_dir: Option<PathBuf>,
    id: &str,
    format: ShowFormat,
) -> Result<(), HistoryError> {
    let summary = match open_index(data_dir)? {
        Some(index) => index.find(id)?,
        None => None,
    }
    .ok_or_else(|| HistoryError::NotFound(id.to_string()))?;
    let log = history::read_session(Path::new(&summary.path))?;
    if log.skipped_lines > 0 {
        eprintln!(
            "talaria: {} line(s) of {} could not be read and were skipped",
            log.skipped_lines,
            log.path.display()
        );
    }
    match format {
        ShowFormat::Json => print_json(out, &session_json(&log)),
        ShowFormat::Markdown => {
            let _ = out.write_all(markdown(&log).as_bytes());
        }
        ShowFormat::Text => {
            let _ = out.write_all(text(&log).as_bytes());
        }
    }
    Ok(())
}

/// The object of `show --json` and `export --format json`.
pub fn session_json(log: &SessionLog) -> serde_json::Value {
    json!({
        "id": log.header.id,
        "path": log.path.display().to_string(),
        "title": log.title,
        "created": log.header.created.to_rfc3339(),
        "updated": log.updated.to_rfc3339(),
        "provider": log.header.provider,
        "model": log.header.model,
        "workdir": log.header.workdir,
        "status": log.status.as_str(),
        "interrupted": log.interrupted,
        "turns": log.turns,
        "messages": log.messages,
        "todos": log.todos,
        "usage": log.usage,
        "skipped_lines": log.skipped_lines,
    })
}

fn todo_mark(status: TodoStatus) -> &'static str {
    match status {
        TodoStatus::Pending => "[ ]",
        TodoStatus::InProgress => "[~]",
        TodoStatus::Completed => "[x]",
        TodoStatus::Cancelled => "[-]",
    }
}

/// A code fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

/// The conversation as Markdown (`show --markdown`, `export --format markdown`).
pub fn markdown(log: &SessionLog) -> String {
    let mut md = String::new();
    md.push_str(&format!("# {}\n\n", title_or_untitled(&log.title)));
    md.push_str(&format!(
        "- id: `{}`\n- created: {}\n- model: {} / {}\n- status: {}{}\n",
        log.header.id,
        log.header.created.to_rfc3339(),
        log.header.provider,
        log.header.model,
        log.status.as_str(),
        if log.interrupted {
            " (interrupted)"
        } else {
            ""
        }
    ));
    if log.skipped_lines > 0 {
        md.push_str(&format!(
            "- unreadable log lines skipped: {}\n",
            log.skipped_lines
        ));
    }
    for message in &log.messages {
        match message {
            Message::User { content } => {
                md.push_str(&format!("\n## User\n\n{content}\n"));
            }
            Message::Assistant {
                content,
                tool_calls,
                partial,
                ..
            } => {
                md.push_str("\n## Assistant");
                if *partial {
                    md.push_str(" (cut short)");
                }
                md.push_str("\n\n");
                if !content.is_empty() {
                    md.push_str(content);
                    md.push('\n');
                }
                for call in tool_calls {
                    let args = serde_json::to_string_pretty(&call.arguments_value())
                        .unwrap_or_else(|_| call.arguments.clone());
                    let f = fence(&args);
                    md.push_str(&format!(
                        "\n**Tool call** `{}` ({})\n\n{f}json\n{args}\n{f}\n",
                        call.name, call.id
                    ));
                }
            }
            Message::Tool {
                tool_call_id,
                name,
                content,
                is_error,
            } => {
                let f = fence(content);
                md.push_str(&format!(
                    "\n### Tool result `{name}` ({tool_call_id}){}\n\n{f}\n{content}\n{f}\n",
                    if *is_error { " — error" } else { "" }
                ));
            }
        }
    }
    if !log.todos.is_empty() {
        md.push_str("\n## Todos\n\n");
        for item in &log.todos {
            md.push_str(&format!("- {} {}\n", todo_mark(item.status), item.content));
        }
    }
    md
}

/// The default `show` output: a plain transcript.
fn text(log: &SessionLog) -> String {
    let mut t = format!(
        "session {}  {}{}  {}  {} / {}\n{}\n",
        log.header.id,
        log.status.as_str(),
        if log.interrupted {
            " (interrupted)"
        } else {
            ""
        },
        log.header.created.format("%Y-%m-%d %H:%M"),
        log.header.provider,
        log.header.model,
        title_or_untitled(&log.title)
    );
    for message in &log.messages {
        match message {
            Message::User { content } => {
                t.push_str(&format!("\n> {}\n", content.replace('\n', "\n> ")))
            }
            Message::Assistant {
                content,
                tool_calls,
                partial,
                ..
            } => {
                if !content.is_empty() {
                    t.push_str(&format!(
                        "\n{content}{}\n",
                        if *partial { " [cut short]" } else { "" }
                    ));
                }
                for call in tool_calls {
                    t.push_str(&format!("  [tool call] {} {}\n", call.name, call.arguments));
                }
            }
            Message::Tool {
                name,
                content,
                is_error,
                ..
            } => {
                let short: String = content.chars().take(200).collect();
                let more = if content.chars().count() > 200 {
                    "…"
                } else {
                    ""
                };
                t.push_str(&format!(
                    "  [{}] {name}: {}{more}\n",
                    if *is_error {
                        "tool error"
                    } else {
                        "tool result"
                    },
                    short.replace('\n', " ")
                ));
            }
        }
    }
    if !log.todos.is_empty() {
        t.push_str("\nTodos:\n");
        for item in &log.todos {
            t.push_str(&format!("  {} {}\n", todo_mark(item.status), item.content));
        }
    }
    t
}
