//! Session history: one append-only JSONL log per session (the truth), a writer thread that
//! never blocks the agent, a crash-tolerant reader, and a derived SQLite index for browse and
//! search that a file watcher keeps fresh. The format is documented in docs/session-format.md.

pub mod error;
pub mod index;
pub mod reader;
pub mod record;
pub mod recorder;
pub mod scan;
pub mod sink;
pub mod watcher;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Datelike, Utc};

pub use error::HistoryError;
pub use index::{Index, Progress, RefreshStats, SearchHit, SessionSummary, spawn_rebuild};
pub use reader::{SessionLog, SessionStatus, latest_todos, read_session, read_todo_at};
pub use record::{FORMAT_VERSION, Header, Record, TurnError, TurnStatus};
pub use recorder::{Recorder, flush_all_blocking};
pub use sink::{FileSink, LogFile, PartialWrite};
pub use watcher::Watcher;

/// `<data dir>/sessions`: where every session log lives, in `YYYY/MM/DD/` folders.
pub fn sessions_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sessions")
}

/// `<sessions dir>/YYYY/MM/DD/<id>.jsonl`, dated by the session's creation (UTC).
pub fn session_path(sessions_dir: &Path, created: DateTime<Utc>, id: &str) -> PathBuf {
    sessions_dir
        .join(format!("{:04}", created.year()))
        .join(format!("{:02}", created.month()))
        .join(format!("{:02}", created.day()))
        .join(format!("{id}.jsonl"))
}

/// The log of session `id`, or of the one session whose id starts with `id`, found by file
/// name (`<id>.jsonl`): works when the index is missing or stale.
pub fn find_log(sessions_dir: &Path, id: &str) -> Result<PathBuf, HistoryError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(HistoryError::NotFound(id.to_string()));
    }
    let stem = |path: &Path| {
        path.file_stem()
            .and_then(|s| s.to_str())
            .map(str::to_string)
    };
    let mut matches: Vec<PathBuf> = Vec::new();
    for (path, _, _) in index::walk_logs(sessions_dir) {
        match stem(&path) {
            Some(name) if name == id => return Ok(path),
            Some(name) if name.starts_with(id) => matches.push(path),
            Some(_) | None => {}
        }
    }
    match matches.len() {
        0 => Err(HistoryError::NotFound(id.to_string())),
        1 => Ok(matches.remove(0)),
        _ => Err(HistoryError::Ambiguous(id.to_string())),
    }
}

/// Installs a panic hook (once) that writes every live session log after the usual panic
/// message, so a crash loses nothing that was recorded.
pub fn install_panic_flush() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            previous(info);
            flush_all_blocking(std::time::Duration::from_secs(2));
        }));
    });
}
