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
    /// The kind the desktop reports as `{kind, message}`: each failure under its own name, so
    /// the UI can say what to do (a busy session is not a disk problem).
    pub fn kind(&self) -> &'static str {
        match self {
            HistoryError::Io { .. }
            | HistoryError::WriterGone(_)
            | HistoryError::FlushTimeout { .. } => "io",
            HistoryError::NotASession { .. } => "corrupt",
            HistoryError::Index { .. } => "index",
            HistoryError::InUse(_) => "busy",
            HistoryError::NotFound(_) => "not_found",
            HistoryError::Ambiguous(_) => "ambiguous",
            HistoryError::Watch { .. } => "watch",
        }
    }

    /// The kind in `exec`'s terms (docs/cli.md, "Error kinds"): naming a session that is not there is a
    /// usage error; everything else is a storage failure.
    pub fn error_kind(&self) -> crate::event::ErrorKind {
        match self {
            HistoryError::NotFound(_) | HistoryError::Ambiguous(_) => {
                crate::event::ErrorKind::Config
            }
            HistoryError::Io { .. }
            | HistoryError::WriterGone(_)
            | HistoryError::FlushTimeout { .. }
            | HistoryError::NotASession { .. }
            | HistoryError::Index { .. }
            | HistoryError::InUse(_)
            | HistoryError::Watch { .. } => crate::event::ErrorKind::Io,
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ErrorKind;

    #[test]
    fn each_failure_keeps_its_own_kind() {
        let busy = HistoryError::InUse(PathBuf::from("a.jsonl"));
        assert_eq!((busy.kind(), busy.error_kind()), ("busy", ErrorKind::Io));
        let missing = HistoryError::NotFound("abc".into());
        assert_eq!(
            (missing.kind(), missing.error_kind()),
            ("not_found", ErrorKind::Config)
        );
        let broken = HistoryError::NotASession {
            path: PathBuf::from("a.jsonl"),
            reason: "no header".into(),
        };
        assert_eq!(broken.kind(), "corrupt");
        let disk = HistoryError::io("write", "a.jsonl", std::io::Error::other("full"));
        assert_eq!((disk.kind(), disk.error_kind()), ("io", ErrorKind::Io));
    }
}
