//! The one error type of the history module. Messages name the file and say what to do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(
        "could not {action} {path}: {source} (check that the folder exists, is writable and the disk has free space)"
    )]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a readable session log: {reason}")]
    NotASession { path: PathBuf, reason: String },
    #[error("session index {path}: {source} (delete the file to have it rebuilt from the logs)")]
    Index {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the session log {0} is being written by another Talaria process (the app or a `talaria exec`); finish or close the session there, or start a new session"
    )]
    InUse(PathBuf),
    #[error("no session matches {0:?}; run `talaria sessions list` to see the ids")]
    NotFound(String),
    #[error("{0:?} matches several sessions; give more characters of the id")]
    Ambiguous(String),
    #[error("the session log writer for {0} has stopped")]
    WriterGone(PathBuf),
    #[error("timed out after {ms} ms waiting for the session log writer for {path}")]
    FlushTimeout { path: PathBuf, ms: u64 },
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

impl HistoryError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        HistoryError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
