//! Renaming, pinning and archiving a session: small records appended to the session's own log
//! (the log stays the truth; the index takes them from there, and a watcher in another process
//! sees them as it sees any append).

use std::path::{Path, PathBuf};

use crate::history::error::HistoryError;
use crate::history::record::Record;
use crate::history::recorder::open_for_append;
use crate::history::sink::LogFile;

/// Appends `record` to the log at `path` (either form) as its writer would: under the log's
/// lock (a session running in another process is refused with `InUse`), on a fresh line after
/// a torn one, synced before this returns. Returns the log's (plain) path.
pub fn append_record(path: &Path, record: &Record) -> Result<PathBuf, HistoryError> {
    let (plain, _, mut sink, torn) = open_for_append(path)?;
    let line = record
        .to_line()
        .map_err(|e| HistoryError::io("encode a record for", &plain, std::io::Error::other(e)))?;
    let mut bytes = Vec::with_capacity(line.len() + 1);
    if torn {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(line.as_bytes());
    sink.write_all(&bytes)
        .map_err(|failed| HistoryError::io("write the session log", &plain, failed.error))?;
    sink.sync_data()
        .map_err(|e| HistoryError::io("sync the session log", &plain, e))?;
    Ok(plain)
}
