//! The derived index: SQLite (WAL) with FTS5 at `<data dir>/index.sqlite`. The logs are the
//! truth; the index is rebuilt from them when it is missing, corrupt or from another schema
//! version, and kept fresh by reading only the bytes appended since the last look.
//!
//! `schema` opens and (re)creates the tables, `refresh` brings them up to date with the logs
//! (`text` says what is searchable, `chunks` cuts it into rows), `queries` answers the list,
//! lookups and search, and `snippet` cuts a hit's snippet from the log itself (the full-text
//! table keeps no copy of the text).

mod chunks;
mod queries;
mod refresh;
mod schema;
mod snippet;
pub mod text;

use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::Connection;
use serde::Serialize;

use crate::event::Usage;
use crate::history::error::HistoryError;
use crate::history::reader::SessionStatus;
use crate::history::record::ForkOrigin;

pub use queries::{Archived, ListQuery, MessageBlock, fts_query};
pub use schema::SCHEMA_VERSION;

/// The index keeps the byte offset of every `BLOCK`th message: reading messages from the middle
/// of a log starts at most this many messages early.
pub const BLOCK: u64 = 64;

/// One row of the session list.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SessionSummary {
    pub id: String,
    /// The log file (plain or compressed).
    pub path: String,
    pub title: String,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub status: SessionStatus,
    pub message_count: u64,
    pub provider: String,
    pub model: String,
    pub pinned: bool,
    pub archived: bool,
    /// Set for a fork: the session and message it started from.
    pub forked_from: Option<ForkOrigin>,
    /// The log is stored compressed (`<id>.jsonl.zst`).
    pub compressed: bool,
    /// Bytes on disk.
    pub disk_size: u64,
    /// Bytes of text (what the log is uncompressed).
    pub text_size: u64,
    pub skipped_lines: u64,
    /// The log's name in plain form (`<id>.jsonl`), whichever form is on disk.
    pub log: String,
    pub workdir: String,
    /// Turns started.
    pub turns: u64,
    /// Tokens used, summed over the session.
    pub usage: Option<Usage>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SearchHit {
    pub id: String,
    pub title: String,
    /// Text around the best match, in plain text.
    pub snippet: String,
    /// Where the matched words are in `snippet`: `[start, end)` in characters (Unicode scalar
    /// values), so no marker in the text can be mistaken for one.
    pub highlights: Vec<[usize; 2]>,
    /// Higher is better (the negated bm25 rank of the session's best chunk).
    pub score: f64,
    /// The message the snippet comes from (0 is the first); opening the hit shows it.
    pub message_index: u64,
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
