//! The derived index: SQLite (WAL) with FTS5 at `<data dir>/index.sqlite`. The logs are the
//! truth; the index is rebuilt from them when it is missing, corrupt or from another schema
//! version, and kept fresh by reading only the bytes appended since the last look.
//!
//! `schema` opens and (re)creates the tables, `refresh` brings them up to date with the logs,
//! `queries` answers the list, lookups and search.

mod queries;
mod refresh;
mod schema;

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use serde::Serialize;

use crate::history::error::HistoryError;
use crate::history::reader::SessionStatus;

pub use queries::fts_query;
pub use refresh::walk_logs;
pub use schema::SCHEMA_VERSION;

/// One row of the session list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionSummary {
    pub id: String,
    pub path: String,
    pub title: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub status: SessionStatus,
    pub message_count: u64,
    pub provider: String,
    pub model: String,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    /// Matching text with the terms in `[` `]`.
    pub snippet: String,
    /// Higher is better (the negated bm25 rank).
    pub score: f64,
}

/// Rebuild progress: `done` of `total` files looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

#[derive(Clone, Debug, Default)]
pub struct RefreshStats {
    /// Log files found.
    pub files: usize,
    /// Sessions whose row changed (new or appended to), by id.
    pub changed: Vec<String>,
    /// Files that are gone from the folder and were dropped from the index.
    pub removed: usize,
    /// Files that could not be indexed, with why (also kept in the index: see `broken`).
    pub broken: Vec<(PathBuf, String)>,
}

pub struct Index {
    conn: Connection,
    data_dir: PathBuf,
    db_path: PathBuf,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("db_path", &self.db_path)
            .finish()
    }
}

/// The file's size and modification time (ns since the epoch).
fn file_meta(path: &Path) -> std::io::Result<(u64, i64)> {
    let meta = std::fs::metadata(path)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
    Ok((meta.len(), mtime))
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn ts_text(ts: DateTime<Utc>) -> String {
    // Fixed width, so text order is time order.
    ts.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_ts(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .map_or(DateTime::<Utc>::UNIX_EPOCH, |t| t.with_timezone(&Utc))
}

impl Index {
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub(super) fn err(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Index {
            path: self.db_path.clone(),
            source,
        }
    }

    pub(super) fn begin(&self) -> Result<Transaction<'_>, HistoryError> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))
    }
}

/// Opens the index of `data_dir` on a thread of its own and brings it up to date, reporting
/// progress. Listing through another `Index` works meanwhile (WAL): it sees each batch as it
/// is committed.
pub fn spawn_rebuild(
    data_dir: PathBuf,
    progress: impl Fn(Progress) + Send + 'static,
) -> std::thread::JoinHandle<Result<RefreshStats, HistoryError>> {
    std::thread::spawn(move || {
        let index = Index::open(&data_dir)?;
        index.refresh_all(&progress)
    })
}
