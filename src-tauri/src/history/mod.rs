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
