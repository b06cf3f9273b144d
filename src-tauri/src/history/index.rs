//! The derived index: SQLite (WAL) with FTS5 at `<data dir>/index.sqlite`. The logs are the
//! truth; the index is rebuilt from them when it is missing, corrupt or from another schema
//! version, and kept fresh by reading only the bytes appended since the last look.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;

use crate::history::error::HistoryError;
use crate::history::reader::SessionStatus;
use crate::history::scan::ScanState;
use crate::history::sessions_dir;

/// Bump when the tables change: an index of another version is deleted and rebuilt.
pub const SCHEMA_VERSION: i64 = 1;
/// How many files a rebuild indexes per transaction (listing sees progress at this pace).
const BATCH_FILES: usize = 100;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files(
    path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime INTEGER NOT NULL, id TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, path TEXT NOT NULL, title TEXT NOT NULL, created TEXT NOT NULL,
    updated TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    message_count INTEGER NOT NULL, status TEXT NOT NULL, size INTEGER NOT NULL,
    mtime INTEGER NOT NULL, todo_offset INTEGER, state TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_by_updated ON sessions(updated DESC, id DESC);
CREATE TABLE IF NOT EXISTS chunks(n INTEGER PRIMARY KEY, session TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_session ON chunks(session);
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(title, body, tokenize = 'unicode61 remove_diacritics 2');
";

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

/// Every `*.jsonl` under `dir`, with size and mtime.
pub fn walk_logs(dir: &Path) -> Vec<(PathBuf, u64, i64)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("jsonl")
                && let Ok((size, mtime)) = file_meta(&path)
            {
                found.push((path, size, mtime));
            }
        }
    }
    found
}

/// At most this many words of a query are used (a pasted page must not become a huge query).
const QUERY_WORDS: usize = 32;
/// Longest word of a query, in characters.
const QUERY_WORD_CHARS: usize = 100;
/// Bytes read from a log at a time while indexing it (a large log is never held whole).
const READ_CHUNK: usize = 1024 * 1024;

/// Turns what the user typed into an FTS5 query that cannot be a syntax error: every word is
/// a quoted string (inner quotes doubled), all words must match, the last one as a prefix.
/// Very long input is cut to its first words. Control characters separate words (FTS5 reads
/// a NUL as the end of the query, which made it an unterminated string).
pub fn fts_query(input: &str) -> Option<String> {
    let words: Vec<String> = input
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .take(QUERY_WORDS)
        .map(|w| {
            let w: String = w.chars().take(QUERY_WORD_CHARS).collect();
            format!("\"{}\"", w.replace('"', "\"\""))
        })
        .collect();
    let (last, rest) = words.split_last()?;
    let mut query = rest.join(" ");
    if !query.is_empty() {
        query.push(' ');
    }
    query.push_str(last);
    query.push('*');
    Some(query)
}

impl Index {
    /// Opens (or creates) the index. Cheap: it does not read any log. An index that is
    /// corrupt or of another schema version is deleted and created empty; call `refresh_all`
    /// (or `spawn_rebuild`, or start a `Watcher`, which does it in the background) to fill it.
    pub fn open(data_dir: &Path) -> Result<Index, HistoryError> {
        crate::private::private_dir(data_dir)
            .map_err(|e| HistoryError::io("create the data folder", data_dir, e))?;
        let db_path = data_dir.join("index.sqlite");
        // SQLite gives its -wal and -shm files the database file's mode: make that 0600.
        crate::private::create_private_file(&db_path, b"")
            .map_err(|e| HistoryError::io("create the index", &db_path, e))?;
        let conn = match Self::try_open_patiently(&db_path) {
            Ok(conn) => conn,
            // Only a file SQLite cannot read is deleted; a busy or locked one is an error.
            Err(error) if is_corrupt(&error) => {
                for suffix in ["", "-wal", "-shm"] {
                    let mut name = db_path.clone().into_os_string();
                    name.push(suffix);
                    let _ = std::fs::remove_file(PathBuf::from(name));
                }
                Self::try_open_patiently(&db_path).map_err(|source| HistoryError::Index {
                    path: db_path.clone(),
                    source,
                })?
            }
            Err(source) => {
                return Err(HistoryError::Index {
                    path: db_path,
                    source,
                });
            }
        };
        Ok(Index {
            conn,
            data_dir: data_dir.to_path_buf(),
            db_path,
        })
    }

    /// `try_open`, retried while another opener holds the lock: some steps of opening (the
    /// switch to WAL) report "locked" at once instead of waiting.
    fn try_open_patiently(db_path: &Path) -> Result<Connection, rusqlite::Error> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match Self::try_open(db_path) {
                Err(error) if is_busy(&error) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20 + fastrand::u64(0..30)));
                }
                other => return other,
            }
        }
    }

    fn try_open(db_path: &Path) -> Result<Connection, rusqlite::Error> {
        let conn = Connection::open(db_path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let mut damaged = false;
        if version == SCHEMA_VERSION {
            match Self::sanity(&conn) {
                Ok(()) => return Ok(conn),
                Err(error) if is_corrupt(&error) => return Err(error),
                Err(_) => damaged = true,
            }
        }
        // Create (or replace another version's tables) under a write lock, so several
        // openers (the window, the watcher, a CLI) agree; other connections stay valid.
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let created = Self::create_schema(&conn, damaged);
        match created {
            Ok(()) => conn.execute_batch("COMMIT")?,
            Err(error) => {
                let _ = conn.execute_batch("ROLLBACK");
                return Err(error);
            }
        }
        Ok(conn)
    }

    /// Touches every table: a damaged file fails here.
    fn sanity(conn: &Connection) -> Result<(), rusqlite::Error> {
        conn.query_row(
            "SELECT (SELECT count(*) FROM files LIMIT 1) + (SELECT count(*) FROM chunks LIMIT 1)
             + (SELECT count(*) FROM sessions LIMIT 1)",
            [],
            |_| Ok(()),
        )?;
        conn.query_row(
            "SELECT count(*) FROM fts WHERE fts MATCH '\"x\"'",
            [],
            |_| Ok(()),
        )
    }

    fn create_schema(conn: &Connection, damaged: bool) -> Result<(), rusqlite::Error> {
        let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        if version == SCHEMA_VERSION && !damaged {
            return Ok(()); // another opener made it meanwhile
        }
        // Virtual tables first: dropping them drops their shadow tables.
        for virtual_only in [true, false] {
            let names: Vec<String> = conn
                .prepare(
                    "SELECT name FROM sqlite_master WHERE type = 'table'
                     AND name NOT LIKE 'sqlite_%' AND (sql LIKE 'CREATE VIRTUAL%') = ?1",
                )?
                .query_map([virtual_only], |row| row.get(0))?
                .collect::<Result<_, _>>()?;
            for name in names {
                conn.execute_batch(&format!(
                    "DROP TABLE IF EXISTS \"{}\"",
                    name.replace('"', "\"\"")
                ))?;
            }
        }
        conn.execute_batch(&format!("{SCHEMA} PRAGMA user_version = {SCHEMA_VERSION};"))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    fn err(&self, source: rusqlite::Error) -> HistoryError {
        HistoryError::Index {
            path: self.db_path.clone(),
            source,
        }
    }

    /// Newest first by last activity.
    pub fn list(&self, limit: usize, offset: usize) -> Result<Vec<SessionSummary>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, path, title, created, updated, status, message_count, provider, model
                 FROM sessions ORDER BY updated DESC, id DESC LIMIT ?1 OFFSET ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![to_i64(limit as u64), to_i64(offset as u64)],
                summary_row,
            )
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// How many sessions are indexed.
    pub fn count(&self) -> Result<usize, HistoryError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))
            .map_err(|e| self.err(e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Full-text search over titles and user/assistant text, best first. Any input is safe.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, HistoryError> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT c.session, bm25(fts, 5.0, 1.0) AS rank,
                        snippet(fts, -1, '[', ']', '…', 12)
                 FROM fts JOIN chunks c ON c.n = fts.rowid
                 WHERE fts MATCH ?1 ORDER BY rank LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        // A session can have several chunks: ask for more rows than hits, keep the best each.
        let rows = stmt
            .query_map(
                params![fts, to_i64(limit.saturating_mul(4) as u64)],
                |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, f64>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .map_err(|e| self.err(e))?;
        let mut hits: Vec<SearchHit> = Vec::new();
        for row in rows {
            let (id, rank, snippet) = row.map_err(|e| self.err(e))?;
            if hits.len() >= limit {
                break;
            }
            if hits.iter().any(|h| h.id == id) {
                continue;
            }
            hits.push(SearchHit {
                id,
                title: String::new(),
                snippet,
                score: -rank,
            });
        }
        let mut title = self
            .conn
            .prepare_cached("SELECT title FROM sessions WHERE id = ?1")
            .map_err(|e| self.err(e))?;
        for hit in &mut hits {
            hit.title = title
                .query_row([&hit.id], |row| row.get(0))
                .optional()
                .map_err(|e| self.err(e))?
                .unwrap_or_default();
        }
        Ok(hits)
    }

    /// A session by id, or by a prefix of its id that matches only one session.
    pub fn find(&self, id: &str) -> Result<Option<SessionSummary>, HistoryError> {
        let id = id.trim();
        if id.is_empty() {
            return Ok(None);
        }
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, path, title, created, updated, status, message_count, provider, model
                 FROM sessions WHERE id = ?1 OR substr(id, 1, length(?1)) = ?1 LIMIT 2",
            )
            .map_err(|e| self.err(e))?;
        let mut found = stmt
            .query_map([id], summary_row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        if let Some(exact) = found.iter().position(|s| s.id == id) {
            return Ok(Some(found.swap_remove(exact)));
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop()),
            _ => Err(HistoryError::Ambiguous(id.to_string())),
        }
    }

    /// Byte offset of the session's latest trusted todo snapshot (for `read_todo_at`).
    pub fn todo_offset(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        let offset: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT todo_offset FROM sessions WHERE id = ?1",
                [id],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(offset.flatten().and_then(|o| u64::try_from(o).ok()))
    }

    /// Log files that could not be indexed, with the reason.
    pub fn broken(&self) -> Result<Vec<(PathBuf, String)>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, error FROM files WHERE error IS NOT NULL ORDER BY path")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    PathBuf::from(row.get::<_, String>(0)?),
                    row.get::<_, String>(1)?,
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Brings one file's row up to date, reading only the bytes appended since the last look
    /// (the whole file if it shrank or is new). A removed file leaves the index. Returns the
    /// session id when its row changed (or was removed).
    pub fn refresh_file(&self, path: &Path) -> Result<Option<String>, HistoryError> {
        let tx = self.begin()?;
        let changed = self.refresh_in(&tx, path, None)?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(changed.ok().flatten())
    }

    /// Compares every log's size and mtime with the index and refreshes what changed; drops
    /// what is gone. Cheap when little changed: unchanged files are not opened.
    pub fn refresh_all(&self, progress: &dyn Fn(Progress)) -> Result<RefreshStats, HistoryError> {
        let found = walk_logs(&sessions_dir(&self.data_dir));
        let known = self.known_files()?;
        let mut stats = RefreshStats {
            files: found.len(),
            ..RefreshStats::default()
        };
        let total = found.len();
        let mut todo: Vec<&(PathBuf, u64, i64)> = Vec::new();
        for entry in &found {
            let key = entry.0.to_string_lossy();
            if known.get(key.as_ref()) != Some(&(entry.1, entry.2)) {
                todo.push(entry);
            }
        }
        let unchanged = total - todo.len();
        progress(Progress {
            done: unchanged,
            total,
        });
        // Newest files first (ids and folders are time-ordered), so a rebuild fills the first
        // page of the list early.
        todo.sort_by(|a, b| b.0.cmp(&a.0));
        for (batch_no, batch) in todo.chunks(BATCH_FILES).enumerate() {
            let tx = self.begin()?;
            for (path, size, mtime) in batch {
                match self.refresh_in(&tx, path, Some((*size, *mtime)))? {
                    Ok(Some(id)) => stats.changed.push(id),
                    Ok(None) => {}
                    Err(reason) => stats.broken.push((path.clone(), reason)),
                }
            }
            tx.commit().map_err(|e| self.err(e))?;
            progress(Progress {
                done: (unchanged + (batch_no + 1) * BATCH_FILES).min(total),
                total,
            });
        }
        let present: std::collections::HashSet<String> = found
            .iter()
            .map(|(p, _, _)| p.to_string_lossy().into_owned())
            .collect();
        let gone: Vec<&String> = known.keys().filter(|k| !present.contains(*k)).collect();
        if !gone.is_empty() {
            let tx = self.begin()?;
            for path in gone {
                self.forget(&tx, path)?;
                stats.removed += 1;
            }
            tx.commit().map_err(|e| self.err(e))?;
        }
        Ok(stats)
    }

    fn begin(&self) -> Result<Transaction<'_>, HistoryError> {
        Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(|e| self.err(e))
    }

    fn known_files(&self) -> Result<HashMap<String, (u64, i64)>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT path, size, mtime FROM files")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                let size: i64 = row.get(1)?;
                Ok((
                    row.get::<_, String>(0)?,
                    (u64::try_from(size).unwrap_or(0), row.get(2)?),
                ))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<HashMap<_, _>, _>>()
            .map_err(|e| self.err(e))
    }

    /// Drops a file (and its session) from the index; returns the session's id.
    fn forget(&self, tx: &Transaction<'_>, path: &str) -> Result<Option<String>, HistoryError> {
        let id: Option<Option<String>> = tx
            .query_row("SELECT id FROM files WHERE path = ?1", [path], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let id = id.flatten();
        if let Some(id) = &id {
            self.drop_text(tx, id)?;
            tx.execute(
                "DELETE FROM sessions WHERE id = ?1 AND path = ?2",
                [id, path],
            )
            .map_err(|e| self.err(e))?;
        }
        tx.execute("DELETE FROM files WHERE path = ?1", [path])
            .map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Drops every indexed log under `dir` that no longer exists (a folder was removed or
    /// renamed away). Returns the ids of the sessions that left the index.
    pub fn forget_missing_under(&self, dir: &Path) -> Result<Vec<String>, HistoryError> {
        let mut prefix = dir.to_string_lossy().into_owned();
        if !prefix.ends_with(std::path::MAIN_SEPARATOR) {
            prefix.push(std::path::MAIN_SEPARATOR);
        }
        let paths: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT path FROM files WHERE substr(path, 1, length(?1)) = ?1")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([&prefix], |row| row.get(0))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let gone: Vec<&String> = paths.iter().filter(|p| !Path::new(p).exists()).collect();
        let mut ids = Vec::new();
        if gone.is_empty() {
            return Ok(ids);
        }
        let tx = self.begin()?;
        for path in gone {
            if let Some(id) = self.forget(&tx, path)? {
                ids.push(id);
            }
        }
        tx.commit().map_err(|e| self.err(e))?;
        Ok(ids)
    }

    fn drop_text(&self, tx: &Transaction<'_>, id: &str) -> Result<(), HistoryError> {
        tx.execute(
            "DELETE FROM fts WHERE rowid IN (SELECT n FROM chunks WHERE session = ?1)",
            [id],
        )
        .map_err(|e| self.err(e))?;
        tx.execute("DELETE FROM chunks WHERE session = ?1", [id])
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The work of `refresh_file` inside a transaction. Outer error: the index failed.
    /// Inner error: the file is not a readable log (recorded, not fatal).
    fn refresh_in(
        &self,
        tx: &Transaction<'_>,
        path: &Path,
        meta: Option<(u64, i64)>,
    ) -> Result<Result<Option<String>, String>, HistoryError> {
        let key = path.to_string_lossy().into_owned();
        let (size, mtime) = match meta {
            Some(meta) => meta,
            None => match file_meta(path) {
                Ok(meta) => meta,
                Err(_) => return Ok(Ok(self.forget(tx, &key)?)),
            },
        };
        let known: Option<(i64, i64, Option<String>)> = tx
            .query_row(
                "SELECT size, mtime, id FROM files WHERE path = ?1",
                [&key],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some((known_size, known_mtime, _)) = &known
            && *known_size == to_i64(size)
            && *known_mtime == mtime
        {
            return Ok(Ok(None));
        }
        // Continue from the saved state when the file only grew.
        let mut state: Option<ScanState> = None;
        if let Some((known_size, _, Some(id))) = &known
            && to_i64(size) >= *known_size
        {
            let saved: Option<String> = tx
                .query_row(
                    "SELECT state FROM sessions WHERE id = ?1 AND path = ?2",
                    [id, &key],
                    |row| row.get(0),
                )
                .optional()
                .map_err(|e| self.err(e))?;
            state = saved.and_then(|s| serde_json::from_str(&s).ok());
        }
        let fresh = state.is_none();
        let mut state = state.unwrap_or_default();
        state.collect_body = true;
        let title_before = state.title.clone();
        let mut first_is_header = !fresh;
        let mut seen_first = !fresh;
        let mut first_ts = None;
        let fed = feed_from(path, &mut state, |record| {
            if !seen_first {
                seen_first = true;
                first_is_header = matches!(record, crate::history::Record::Session(_));
                first_ts = Some(record.ts());
            }
        });
        if let Err(error) = fed {
            let reason = format!("cannot read it: {error}");
            self.mark_broken(tx, &key, size, mtime, &reason)?;
            return Ok(Err(reason));
        }
        let recovered = match (&state.header, first_is_header, seen_first) {
            // Line 1 is damaged but records follow: list it under the id in its name.
            (Some(_), false, true) | (None, _, true) => {
                crate::history::reader::recovered_header(path, first_ts)
            }
            (Some(_), true, _) | (_, _, false) => None,
        };
        if let Some(header) = recovered {
            state.header = Some(header);
            first_is_header = true;
        }
        let header = match (&state.header, first_is_header) {
            (Some(header), true) => header.clone(),
            (Some(_), false) | (None, _) => {
                let reason = "it has no session header on its first line".to_string();
                self.mark_broken(tx, &key, size, mtime, &reason)?;
                return Ok(Err(reason));
            }
        };
        if fresh {
            self.drop_text(tx, &header.id)?;
        }
        let title_changed = state.title != title_before;
        if !state.body.is_empty() || title_changed {
            let title = if title_changed {
                state.title.as_str()
            } else {
                ""
            };
            tx.execute(
                "INSERT INTO fts(title, body) VALUES (?1, ?2)",
                params![title, state.body],
            )
            .map_err(|e| self.err(e))?;
            let n = tx.last_insert_rowid();
            tx.execute(
                "INSERT INTO chunks(n, session) VALUES (?1, ?2)",
                params![n, header.id],
            )
            .map_err(|e| self.err(e))?;
        }
        let saved = serde_json::to_string(&state).unwrap_or_default();
        tx.execute(
            "INSERT OR REPLACE INTO sessions(id, path, title, created, updated, provider, model,
                 message_count, status, size, mtime, todo_offset, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            params![
                header.id,
                key,
                state.title,
                ts_text(header.created),
                ts_text(state.updated.unwrap_or(header.created)),
                header.provider,
                header.model,
                to_i64(state.message_count),
                state.status().as_str(),
                to_i64(size),
                mtime,
                state.todo_offset.map(to_i64),
                saved,
            ],
        )
        .map_err(|e| self.err(e))?;
        tx.execute(
            "INSERT OR REPLACE INTO files(path, size, mtime, id, error) VALUES (?1, ?2, ?3, ?4, NULL)",
            params![key, to_i64(size), mtime, header.id],
        )
        .map_err(|e| self.err(e))?;
        Ok(Ok(Some(header.id)))
    }

    fn mark_broken(
        &self,
        tx: &Transaction<'_>,
        key: &str,
        size: u64,
        mtime: i64,
        reason: &str,
    ) -> Result<(), HistoryError> {
        self.forget(tx, key)?;
        tx.execute(
            "INSERT OR REPLACE INTO files(path, size, mtime, id, error) VALUES (?1, ?2, ?3, NULL, ?4)",
            params![key, to_i64(size), mtime, reason],
        )
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn is_corrupt(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(e, _)
            if matches!(e.code, rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt)
    )
}

fn summary_row(row: &rusqlite::Row<'_>) -> Result<SessionSummary, rusqlite::Error> {
    let status: String = row.get(5)?;
    let count: i64 = row.get(6)?;
    Ok(SessionSummary {
        id: row.get(0)?,
        path: row.get(1)?,
        title: row.get(2)?,
        created: parse_ts(&row.get::<_, String>(3)?),
        updated: parse_ts(&row.get::<_, String>(4)?),
        status: SessionStatus::parse(&status).unwrap_or(SessionStatus::Done),
        message_count: u64::try_from(count).unwrap_or(0),
        provider: row.get(7)?,
        model: row.get(8)?,
    })
}

/// Feeds `state` the complete lines of `path` from `state.offset` to the current end, a
/// chunk at a time: memory stays at about one chunk plus the longest line, however big the
/// log is. A last line without its newline is left for the next look.
fn feed_from(
    path: &Path,
    state: &mut ScanState,
    mut keep: impl FnMut(crate::history::Record),
) -> std::io::Result<()> {
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(state.offset))?;
    let mut buf: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(error) => return Err(error),
        };
        buf.extend_from_slice(&chunk[..n]);
        // Only look for lines once the new bytes complete one.
        if !chunk[..n].contains(&b'\n') {
            continue;
        }
        let base = state.offset;
        state.feed_bytes(&buf, base, false, &mut keep);
        let consumed = usize::try_from(state.offset - base).unwrap_or(buf.len());
        buf.drain(..consumed.min(buf.len()));
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
