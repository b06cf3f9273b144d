//! `talaria sessions ...` (docs/cli.md): list, show, search, export, rename, pin, archive,
//! delete, restore, compact, stats. Reads go through the index, refreshed first (logs whose
//! `stat` did not change are not opened). Compressed logs read like plain ones.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::history::export::{self, ExportError, Format};
use crate::history::storage::{self, Selection};
use crate::history::{self, HistoryError, Index, Record, trash, view};

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
        /// A JSON array of {id, path, title, created, updated, status, message_count, ...}.
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
        /// Only the newest N messages (read without reading the rest of the log).
        #[arg(long, value_name = "N")]
        tail: Option<u64>,
    },
    /// Full-text search over everything sessions hold: user and assistant text, tool
    /// arguments, tool results and todo items.
    Search {
        /// Words to look for
        query: String,
        /// Where sessions and the index live [env: TALARIA_DATA_DIR]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// At most this many matches, best first
        #[arg(long, value_name = "N", default_value_t = 20)]
        limit: usize,
        /// A JSON array of {id, title, snippet, score, highlights, message_index} (higher
        /// score is better; highlights are [start, end) character ranges in the snippet).
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
    /// Give a session a title (an empty title goes back to its first message).
    Rename {
        id: String,
        title: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Pin a session to the top of the app's list (`--off` unpins it).
    Pin {
        id: String,
        #[arg(long)]
        off: bool,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Hide a session from the app's list (`--off` brings it back).
    Archive {
        id: String,
        #[arg(long)]
        off: bool,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Move a session to the trash (kept 30 days; `restore` brings it back).
    Delete {
        id: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Bring a deleted session back from the trash.
    Restore {
        id: String,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Compress finished sessions to <id>.jsonl.zst: the ones named, all with --all, else
    /// those idle for more than 7 days (or the days set in the app).
    Compact {
        ids: Vec<String>,
        #[arg(long, conflicts_with = "ids")]
        all: bool,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
    },
    /// The space sessions take: logs (plain and compressed), the index, the trash.
    Stats {
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
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

fn data_dir_or_default(data_dir: Option<PathBuf>) -> PathBuf {
    data_dir.unwrap_or_else(crate::config::data_dir)
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
                            "provider": s.provider, "model": s.model, "pinned": s.pinned,
                            "archived": s.archived, "compressed": s.compressed,
                            "forked_from": s.forked_from,
                        })
                    })
                    .collect();
                print_json(&mut out, &serde_json::Value::Array(rows));
            } else if sessions.is_empty() {
                // stdout stays empty (scripts read it); the hint is for people.
                eprintln!("talaria: no sessions yet");
            } else {
                for s in &sessions {
                    let marks = format!(
                        "{}{}",
                        if s.pinned { "[pinned] " } else { "" },
                        if s.archived { "[archived] " } else { "" }
                    );
                    let _ = writeln!(
                        out,
                        "{}  {}  {:<11}  {:>4} msgs  {marks}{}",
                        s.id,
                        s.updated.format("%Y-%m-%d %H:%M"),
                        s.status.as_str(),
                        s.message_count,
                        export::title_or_untitled(&s.title)
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
            tail,
        } => {
            let format = if json {
                Format::Json
            } else if markdown {
                Format::Markdown
            } else {
                Format::Text
            };
            show(&mut out, data_dir, &id, format, tail)
        }
        SessionsCommand::Export {
            id,
            format,
            data_dir,
        } => {
            let format = match format {
                ExportFormat::Markdown => Format::Markdown,
                ExportFormat::Json => Format::Json,
            };
            show(&mut out, data_dir, &id, format, None)
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
                    .map(|h| {
                        json!({"id": h.id, "title": h.title, "snippet": h.snippet,
                               "score": h.score, "highlights": h.highlights,
                               "message_index": h.message_index})
                    })
                    .collect();
                print_json(&mut out, &serde_json::Value::Array(rows));
            } else if hits.is_empty() {
                eprintln!("talaria: no session matches {query:?}");
            } else {
                for h in &hits {
                    let _ = writeln!(out, "{}  {}", h.id, export::title_or_untitled(&h.title));
                    let _ = writeln!(out, "    {}", h.snippet);
                }
            }
            Ok(())
        }
        SessionsCommand::Rename {
            id,
            title,
            data_dir,
        } => annotate(data_dir, &id, Record::title(title.trim()), "renamed"),
        SessionsCommand::Pin { id, off, data_dir } => annotate(
            data_dir,
            &id,
            Record::pin(!off),
            if off { "unpinned" } else { "pinned" },
        ),
        SessionsCommand::Archive { id, off, data_dir } => annotate(
            data_dir,
            &id,
            Record::archive(!off),
            if off { "unarchived" } else { "archived" },
        ),
        SessionsCommand::Delete { id, data_dir } => {
            let data_dir = data_dir_or_default(data_dir);
            let session = find_session(&data_dir, &id)?;
            let trashed = trash::delete(&data_dir, &session)?;
            trash::empty_expired(&data_dir, trash::KEEP);
            let _ = writeln!(
                out,
                "moved {} to {} (kept 30 days; `talaria sessions restore {}` brings it back)",
                trashed.note.id,
                trashed.path.display(),
                trashed.note.id
            );
            Ok(())
        }
        SessionsCommand::Restore { id, data_dir } => {
            let data_dir = data_dir_or_default(data_dir);
            let path = trash::restore(&data_dir, &id)?;
            let _ = writeln!(out, "restored {}", path.display());
            Ok(())
        }
        SessionsCommand::Compact { ids, all, data_dir } => {
            let data_dir = data_dir_or_default(data_dir);
            let selection = if all {
                Selection::All
            } else if ids.is_empty() {
                match storage::HistorySettings::load(&data_dir).idle_limit() {
                    Some(idle) => Selection::IdleFor(idle),
                    None => {
                        eprintln!(
                            "talaria: compressing idle sessions is off in the settings; name \
                             sessions or pass --all"
                        );
                        return Ok(());
                    }
                }
            } else {
                Selection::Ids(ids)
            };
            let Some(index) = open_index(Some(data_dir))? else {
                return Ok(());
            };
            let report = storage::compact(&index, &selection, &|_| {}, &|| false)?;
            for (id, why) in &report.skipped {
                eprintln!("talaria: skipped {id}: {why}");
            }
            for (id, why) in &report.failed {
                eprintln!("talaria: could not compress {id}: {why}");
            }
            let p = &report.progress;
            let _ = writeln!(
                out,
                "compressed {} session(s): {} -> {}",
                report.compressed.len(),
                bytes(p.bytes_before),
                bytes(p.bytes_after)
            );
            if report.failed.is_empty() {
                Ok(())
            } else {
                Err(HistoryError::io(
                    "compress some sessions in",
                    history::sessions_dir(index.data_dir()),
                    std::io::Error::other(format!("{} failed", report.failed.len())),
                ))
            }
        }
        SessionsCommand::Stats { data_dir, json } => {
            let data_dir = data_dir_or_default(data_dir);
            let stats = match open_index(Some(data_dir.clone()))? {
                Some(index) => storage::stats(&data_dir, &index)?,
                None => storage::StorageStats::default(),
            };
            if json {
                print_json(&mut out, &json!(stats));
            } else {
                let _ = writeln!(
                    out,
                    "sessions: {}\nplain logs: {} ({})\ncompressed logs: {} ({}, {} of text)\n\
                     index: {}\ntrash: {} ({})",
                    stats.sessions,
                    stats.plain_logs,
                    bytes(stats.plain_bytes),
                    stats.compressed_logs,
                    bytes(stats.compressed_bytes),
                    bytes(stats.compressed_text_bytes),
                    bytes(stats.index_bytes),
                    stats.trash_logs,
                    bytes(stats.trash_bytes)
                );
            }
            Ok(())
        }
    }
}

/// A size for people: `12.3 MB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The log of session `id` (or a unique prefix), through the index, else by file name.
fn find_session(data_dir: &Path, id: &str) -> Result<PathBuf, HistoryError> {
    let sessions = history::sessions_dir(data_dir);
    if !sessions.is_dir() {
        return Err(HistoryError::NotFound(id.to_string()));
    }
    let index = Index::open(data_dir)?;
    index.refresh_all(&|_| {})?;
    match index.find(id)? {
        Some(summary) => Ok(PathBuf::from(summary.path)),
        None => history::find_log(&sessions, id),
    }
}

/// Appends a title, pin or archive record to a session's log.
fn annotate(
    data_dir: Option<PathBuf>,
    id: &str,
    record: Record,
    done: &str,
) -> Result<(), HistoryError> {
    let data_dir = data_dir_or_default(data_dir);
    let path = find_session(&data_dir, id)?;
    let plain = history::metadata::append_record(&path, &record)?;
    println!(
        "{done} {}",
        history::layout::file_id(&plain).unwrap_or_default()
    );
    Ok(())
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
    let data_dir = data_dir_or_default(data_dir);
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
    format: Format,
    tail: Option<u64>,
) -> Result<(), HistoryError> {
    let Some(index) = open_index(data_dir)? else {
        return Err(HistoryError::NotFound(id.to_string()));
    };
    let session = view::fresh_summary(&index, id)?;
    if session.skipped_lines > 0 {
        eprintln!(
            "talaria: {} line(s) of {} could not be read and were skipped",
            session.skipped_lines, session.path
        );
    }
    match export::write_session(&index, &session, format, tail, out) {
        Ok(()) => Ok(()),
        Err(ExportError::History(error)) => Err(error),
        // A closed stdout (`| head`) is not a failure of the session.
        Err(ExportError::Write(_)) => Ok(()),
    }
}
