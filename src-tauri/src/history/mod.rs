//! Session history: one append-only JSONL log per session (the truth), a writer thread that
//! never blocks the agent, a crash-tolerant reader, and a derived SQLite index for browse and
//! search that a file watcher keeps fresh. Finished logs may be stored compressed. The format
//! is documented in docs/session-format.md.

pub mod compress;
pub mod durable;
pub mod error;
pub mod export;
pub mod fork;
pub mod index;
pub mod layout;
pub mod lock;
pub mod metadata;
pub mod reader;
pub mod record;
pub mod recorder;
pub mod scan;
pub mod sink;
pub mod source;
pub mod storage;
pub mod trash;
pub mod view;
pub mod watcher;

pub use error::HistoryError;
pub use index::{Index, Progress, RefreshStats, SearchHit, SessionSummary, spawn_rebuild};
pub use layout::{find_log, session_path, sessions_dir, trash_dir};
pub use reader::{SessionLog, SessionStatus, latest_todos, read_session, read_todo_at};
pub use record::{FORMAT_VERSION, Header, Record, TurnError, TurnStatus};
pub use recorder::{Recorder, flush_all_blocking};
pub use sink::{FileSink, LogFile, PartialWrite};
pub use source::LogSource;
pub use watcher::{Callbacks, WatchHealth, WatchMode, Watcher};

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
