//! Opening the index file, and creating (or replacing) its tables.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use super::Index;
use crate::history::error::HistoryError;

/// Bump when the tables change: an index of another version is deleted and rebuilt.
/// 2: chunked full-text rows over everything a log holds, message offsets, file fingerprints,
/// session metadata (title, pin, archive, fork).
pub const SCHEMA_VERSION: i64 = 2;

/// `files`: one row per log (keyed by the plain path `<id>.jsonl`, whichever form is on disk),
/// with what `stat` said (`path` is the file that was read) and the hashes of the first and
/// last 4 KiB of text read so far (`checked_len` bytes): a log that did not just grow is read
/// again from the start.
/// `sessions`: one row per session. `scan_state`: where the reader stopped, to go on from there.
/// `chunks`: one row per full-text row, with the message range and byte range it came from
/// (`kind` 1 is the session's title row). `fts` holds no text of its own (the logs do).
/// `blocks`: the byte offset of every 64th message.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS files(
    log TEXT PRIMARY KEY, path TEXT NOT NULL, size INTEGER NOT NULL, mtime INTEGER NOT NULL,
    ctime INTEGER NOT NULL, inode INTEGER NOT NULL, checked_len INTEGER NOT NULL,
    head_hash INTEGER NOT NULL, tail_hash INTEGER NOT NULL, id TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS sessions(
    id TEXT PRIMARY KEY, log TEXT NOT NULL, path TEXT NOT NULL, title TEXT NOT NULL,
    created TEXT NOT NULL, updated TEXT NOT NULL, provider TEXT NOT NULL, model TEXT NOT NULL,
    message_count INTEGER NOT NULL, status TEXT NOT NULL, pinned INTEGER NOT NULL,
    archived INTEGER NOT NULL, parent TEXT, parent_message INTEGER, todo_offset INTEGER,
    skipped_lines INTEGER NOT NULL, input_tokens INTEGER, output_tokens INTEGER,
    cache_read_tokens INTEGER, turns INTEGER NOT NULL, workdir TEXT NOT NULL,
    compressed INTEGER NOT NULL, disk_size INTEGER NOT NULL, text_size INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS sessions_by_updated ON sessions(updated DESC, id DESC);
CREATE INDEX IF NOT EXISTS sessions_for_browsing
    ON sessions(archived, pinned DESC, updated DESC, id DESC);
CREATE INDEX IF NOT EXISTS sessions_by_parent ON sessions(parent);
CREATE TABLE IF NOT EXISTS scan_state(id TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS chunks(
    n INTEGER PRIMARY KEY, session TEXT NOT NULL, kind INTEGER NOT NULL,
    first_msg INTEGER NOT NULL, last_msg INTEGER NOT NULL, msg_at_start INTEGER NOT NULL,
    start INTEGER NOT NULL, stop INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS chunks_by_session ON chunks(session);
CREATE TABLE IF NOT EXISTS blocks(
    session TEXT NOT NULL, block INTEGER NOT NULL, offset INTEGER NOT NULL,
    PRIMARY KEY(session, block)) WITHOUT ROWID;
CREATE VIRTUAL TABLE IF NOT EXISTS fts USING fts5(
    title, body, content = '', contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2');
";

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
        // Indexing a large log writes a lot to the WAL; give the space back after checkpoints.
        conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
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
             + (SELECT count(*) FROM sessions LIMIT 1) + (SELECT count(*) FROM blocks LIMIT 1)
             + (SELECT count(*) FROM scan_state LIMIT 1)",
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
