//! Bringing the index up to date with the logs: only what changed is read, and of a log that
//! only grew, only the appended bytes. A log counts as unchanged when `stat` says so (size,
//! mtime, ctime and inode); a changed one goes on from where the last look stopped only when
//! the text read then is still there (same length at least, same first and last 4 KiB),
//! otherwise it is read again from the start. Compressing a log keeps its text, so it is not
//! read again.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::chunks::{self, LineAt, OpenChunk};
use super::text::{SeenTodos, pieces};
use super::{BLOCK, Index, Progress, RefreshStats, to_i64, ts_text};
use crate::history::error::HistoryError;
use crate::history::layout::{
    FileStamp, FoundLog, current_file, is_compressed, plain_path, sessions_dir, walk_logs,
};
use crate::history::record::Record;
use crate::history::scan::ScanState;
use crate::history::source::LogSource;

/// How many files a rebuild indexes per transaction (listing sees progress at this pace).
const BATCH_FILES: usize = 100;
/// A log that gives this much new text is committed in steps of it, so other writers of the
/// index (another process's refresh) never wait long and a crash keeps what was done.
const COMMIT_TEXT: usize = 4 * 1024 * 1024;
/// Bytes hashed at each end of the text read so far.
const HASH_SPAN: u64 = 4096;

/// What a look at one log found.
#[derive(Debug)]
enum Outcome {
    Unchanged,
    /// The session's row changed (or appeared).
    Changed(String),
    /// The log is gone; the id of the session that left the index, if it had one.
    Removed(Option<String>),
    /// Not a readable log: why.
    Broken(String),
}

/// The index's reading position in one session, kept between looks.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Saved {
    scan: ScanState,
    open: OpenChunk,
    title_row: Option<i64>,
    indexed_title: String,
    todos_seen: SeenTodos,
}

/// Why reading a log stopped early.
enum Failure {
    /// The index failed (or the file could not be read).
    Index(HistoryError),
    /// The file is not a session log.
    NotALog(String),
    /// Another process went on with this log while a large one was committed in steps.
    Overtaken,
}

impl From<HistoryError> for Failure {
    fn from(error: HistoryError) -> Self {
        Failure::Index(error)
    }
}

/// What a full-text row holds: a piece of the conversation, or the session's title.
#[derive(Clone, Copy)]
enum Kind<'a> {
    Body,
    Title(&'a str),
}

/// A row of `files` to write.
struct FileRow<'a> {
    stamp: FileStamp,
    checked_len: u64,
    hashes: (i64, i64),
    id: Option<&'a str>,
    error: Option<&'a str>,
}

/// What `files` says about a log.
struct Known {
    path: String,
    stamp: FileStamp,
    checked_len: u64,
    head_hash: i64,
    tail_hash: i64,
    id: Option<String>,
}

/// The write transaction of a refresh: `BEGIN IMMEDIATE` ... `COMMIT`, rolled back if dropped
/// open (an error part-way).
struct Tx<'a> {
    index: &'a Index,
    open: bool,
}

impl<'a> Tx<'a> {
    fn begin(index: &'a Index) -> Result<Tx<'a>, HistoryError> {
        index
            .conn
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| index.err(e))?;
        Ok(Tx { index, open: true })
    }

    fn commit(mut self) -> Result<(), HistoryError> {
        self.open = false;
        self.index
            .conn
            .execute_batch("COMMIT")
            .map_err(|e| self.index.err(e))
    }

    /// Commits what is done and goes on in a new transaction.
    fn restart(&mut self) -> Result<(), HistoryError> {
        self.open = false;
        self.index
            .conn
            .execute_batch("COMMIT; BEGIN IMMEDIATE")
            .map_err(|e| self.index.err(e))?;
        self.open = true;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open {
            let _ = self.index.conn.execute_batch("ROLLBACK");
        }
    }
}

/// FNV-1a: a stable hash (the index outlives builds) of a few KiB, to see that text changed.
fn fnv1a(bytes: &[u8]) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_ne_bytes(hash.to_ne_bytes())
}

/// The hashes of the first and the last `HASH_SPAN` bytes of the first `len` bytes of text.
fn end_hashes(source: &mut LogSource, len: u64) -> Result<(i64, i64), HistoryError> {
    let span = len.min(HASH_SPAN);
    let mut buf = vec![0u8; usize::try_from(span).unwrap_or(0)];
    source.read_exact_at(0, &mut buf)?;
    let head = fnv1a(&buf);
    source.read_exact_at(len - span, &mut buf)?;
    Ok((head, fnv1a(&buf)))
}

fn key_of(path: &Path) -> String {
    plain_path(path).to_string_lossy().into_owned()
}

impl Index {
    /// Brings one log's rows up to date (`path` in either form), reading only the bytes
    /// appended since the last look (the whole log if it was rewritten or is new). A removed
    /// log leaves the index. Returns the session id when its row changed (or was removed).
    pub fn refresh_file(&self, path: &Path) -> Result<Option<String>, HistoryError> {
        let key = key_of(path);
        let found = current_file(path).and_then(|path| {
            let stamp = FileStamp::of(&path).ok()?;
            Some(FoundLog { path, stamp })
        });
        let mut tx = Tx::begin(self)?;
        let outcome = self.refresh_log(&mut tx, &key, found.as_ref())?;
        tx.commit()?;
        Ok(match outcome {
            Outcome::Changed(id) => Some(id),
            Outcome::Removed(id) => id,
            Outcome::Unchanged | Outcome::Broken(_) => None,
        })
    }

    /// Looks at every log (`stat` only) and refreshes what changed; drops what is gone. Cheap
    /// when little changed: unchanged logs are not opened.
    pub fn refresh_all(&self, progress: &dyn Fn(Progress)) -> Result<RefreshStats, HistoryError> {
        let found = walk_logs(&sessions_dir(&self.data_dir));
        let known = self.known_stamps()?;
        let mut stats = RefreshStats {
            files: found.len(),
            ..RefreshStats::default()
        };
        let total = found.len();
        let mut todo: Vec<(String, &FoundLog)> = found
            .iter()
            .map(|log| (key_of(&log.path), log))
            .filter(|(key, log)| {
                known.get(key) != Some(&(log.path.to_string_lossy().into_owned(), log.stamp))
            })
            .collect();
        let unchanged = total - todo.len();
        progress(Progress {
            done: unchanged,
            total,
        });
        // Newest logs first (ids and folders are time-ordered), so a rebuild fills the first
        // page of the list early.
        todo.sort_by(|a, b| b.0.cmp(&a.0));
        for (batch_no, batch) in todo.chunks(BATCH_FILES).enumerate() {
            let mut tx = Tx::begin(self)?;
            for (key, log) in batch {
                match self.refresh_log(&mut tx, key, Some(log))? {
                    Outcome::Changed(id) => stats.changed.push(id),
                    Outcome::Broken(reason) => stats.broken.push((log.path.clone(), reason)),
                    Outcome::Unchanged | Outcome::Removed(_) => {}
                }
            }
            tx.commit()?;
            progress(Progress {
                done: (unchanged + (batch_no + 1) * BATCH_FILES).min(total),
                total,
            });
        }
        let present: HashSet<String> = found.iter().map(|log| key_of(&log.path)).collect();
        let gone: Vec<&String> = known.keys().filter(|k| !present.contains(*k)).collect();
        if !gone.is_empty() {
            let tx = Tx::begin(self)?;
            for key in gone {
                self.forget(key)?;
                stats.removed += 1;
            }
            tx.commit()?;
        }
        Ok(stats)
    }

    /// Every indexed log's file and `stat` stamp, by key.
    fn known_stamps(&self) -> Result<HashMap<String, (String, FileStamp)>, HistoryError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT log, path, size, mtime, ctime, inode FROM files")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((row.get::<_, String>(0)?, (row.get(1)?, stamp_from(row, 2)?)))
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<HashMap<_, _>, _>>()
            .map_err(|e| self.err(e))
    }

    fn known(&self, key: &str) -> Result<Option<Known>, HistoryError> {
        self.conn
            .prepare_cached(
                "SELECT path, size, mtime, ctime, inode, checked_len, head_hash, tail_hash, id,
                        error IS NOT NULL
                 FROM files WHERE log = ?1",
            )
            .and_then(|mut stmt| {
                stmt.query_row([key], |row| {
                    let broken: bool = row.get(9)?;
                    Ok(Known {
                        path: row.get(0)?,
                        stamp: stamp_from(row, 1)?,
                        checked_len: u64::try_from(row.get::<_, i64>(5)?).unwrap_or(0),
                        head_hash: row.get(6)?,
                        tail_hash: row.get(7)?,
                        id: if broken { None } else { row.get(8)? },
                    })
                })
                .optional()
            })
            .map_err(|e| self.err(e))
    }

    fn load_state(&self, id: &str) -> Result<Option<Saved>, HistoryError> {
        let text: Option<String> = self
            .conn
            .prepare_cached("SELECT state FROM scan_state WHERE id = ?1")
            .and_then(|mut stmt| stmt.query_row([id], |row| row.get(0)).optional())
            .map_err(|e| self.err(e))?;
        Ok(text.and_then(|text| serde_json::from_str(&text).ok()))
    }

    /// Drops a log (and its session) from the index; returns the session's id.
    pub(super) fn forget(&self, key: &str) -> Result<Option<String>, HistoryError> {
        let id: Option<Option<String>> = self
            .conn
            .query_row("SELECT id FROM files WHERE log = ?1", [key], |row| {
                row.get(0)
            })
            .optional()
            .map_err(|e| self.err(e))?;
        let id = id.flatten();
        if let Some(id) = &id {
            let owner: Option<String> = self
                .conn
                .query_row("SELECT log FROM sessions WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .optional()
                .map_err(|e| self.err(e))?;
            // Another file may hold the same session now (it was moved): leave its rows.
            if owner.as_deref().is_none_or(|owner| owner == key) {
                self.drop_session(id)?;
                self.conn
                    .execute("DELETE FROM sessions WHERE id = ?1", [id])
                    .map_err(|e| self.err(e))?;
            }
        }
        self.conn
            .execute("DELETE FROM files WHERE log = ?1", [key])
            .map_err(|e| self.err(e))?;
        Ok(id)
    }

    /// Drops every indexed log under `dir` that no longer exists in either form (a folder
    /// was removed or renamed away). Returns the ids of the sessions that left the index.
    pub fn forget_missing_under(&self, dir: &Path) -> Result<Vec<String>, HistoryError> {
        let mut prefix = dir.to_string_lossy().into_owned();
        if !prefix.ends_with(std::path::MAIN_SEPARATOR) {
            prefix.push(std::path::MAIN_SEPARATOR);
        }
        let keys: Vec<String> = {
            let mut stmt = self
                .conn
                .prepare_cached("SELECT log FROM files WHERE substr(log, 1, length(?1)) = ?1")
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map([&prefix], |row| row.get(0))
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let gone: Vec<&String> = keys
            .iter()
            .filter(|key| current_file(Path::new(key)).is_none())
            .collect();
        let mut ids = Vec::new();
        if gone.is_empty() {
            return Ok(ids);
        }
        let tx = Tx::begin(self)?;
        for key in gone {
            if let Some(id) = self.forget(key)? {
                ids.push(id);
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Drops a session's full-text rows, offsets and saved state (not its row).
    fn drop_session(&self, id: &str) -> Result<(), HistoryError> {
        for sql in [
            "DELETE FROM fts WHERE rowid IN (SELECT n FROM chunks WHERE session = ?1)",
            "DELETE FROM chunks WHERE session = ?1",
            "DELETE FROM blocks WHERE session = ?1",
            "DELETE FROM scan_state WHERE id = ?1",
        ] {
            self.conn.execute(sql, [id]).map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Writes one chunk as a full-text row (replacing its earlier version); returns its row.
    fn write_chunk(
        &self,
        id: &str,
        chunk: &OpenChunk,
        kind: Kind<'_>,
    ) -> Result<i64, HistoryError> {
        if let Some(row) = chunk.row {
            self.conn
                .execute("DELETE FROM fts WHERE rowid = ?1", [row])
                .map_err(|e| self.err(e))?;
        }
        let (title, body, kind) = match kind {
            Kind::Title(title) => (title, "", 1),
            Kind::Body => ("", chunk.text.as_str(), 0),
        };
        self.conn
            .prepare_cached("INSERT INTO fts(rowid, title, body) VALUES (?1, ?2, ?3)")
            .and_then(|mut stmt| stmt.execute(params![chunk.row, title, body]))
            .map_err(|e| self.err(e))?;
        let row = self.conn.last_insert_rowid();
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO chunks(n, session, kind, first_msg, last_msg, msg_at_start,
                     start, stop) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    row,
                    id,
                    kind,
                    to_i64(chunk.first_msg),
                    to_i64(chunk.last_msg),
                    to_i64(chunk.msg_at_start),
                    to_i64(chunk.start),
                    to_i64(chunk.stop),
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(row)
    }

    /// The work of a refresh for one log, inside `tx` (which it may commit in steps).
    fn refresh_log(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        found: Option<&FoundLog>,
    ) -> Result<Outcome, HistoryError> {
        let Some(found) = found else {
            return Ok(Outcome::Removed(self.forget(key)?));
        };
        let known = self.known(key)?;
        let path_text = found.path.to_string_lossy().into_owned();
        if let Some(k) = &known
            && k.path == path_text
            && k.stamp == found.stamp
        {
            return Ok(Outcome::Unchanged);
        }
        let mut source = match LogSource::open(&found.path) {
            Ok(source) => source,
            Err(error) => return self.mark_broken(key, found, format!("cannot read it: {error}")),
        };
        let mut saved: Option<Saved> = None;
        if let Some(k) = &known
            && let Some(id) = &k.id
        {
            let state = self.load_state(id)?;
            let same_text = match &state {
                Some(state)
                    if state.scan.offset == k.checked_len && k.checked_len <= source.len() =>
                {
                    // Unreadable where it was read before: read it again from the start (and
                    // report it broken if that fails too).
                    end_hashes(&mut source, k.checked_len)
                        .is_ok_and(|hashes| hashes == (k.head_hash, k.tail_hash))
                }
                Some(_) | None => false,
            };
            if same_text {
                saved = state;
            } else {
                self.drop_session(id)?;
            }
        }
        self.conn
            .execute_batch("SAVEPOINT log")
            .map_err(|e| self.err(e))?;
        let scanned = self.scan_into(tx, key, found, &mut source, saved);
        match scanned {
            Ok(Ok(id)) => {
                self.conn
                    .execute_batch("RELEASE log")
                    .map_err(|e| self.err(e))?;
                Ok(Outcome::Changed(id))
            }
            Ok(Err(reason)) => {
                self.conn
                    .execute_batch("ROLLBACK TO log; RELEASE log")
                    .map_err(|e| self.err(e))?;
                self.mark_broken(key, found, reason)
            }
            Err(error @ HistoryError::Index { .. }) => Err(error),
            Err(error) => {
                self.conn
                    .execute_batch("ROLLBACK TO log; RELEASE log")
                    .map_err(|e| self.err(e))?;
                self.mark_broken(key, found, format!("cannot read it: {error}"))
            }
        }
    }

    /// Reads the log from where `saved` stopped (the start without it) and writes what it
    /// gives. Outer error: the index or the file failed. Inner error: not a session log.
    fn scan_into(
        &self,
        tx: &mut Tx<'_>,
        key: &str,
        found: &FoundLog,
        source: &mut LogSource,
        saved: Option<Saved>,
    ) -> Result<Result<String, String>, HistoryError> {
        let fresh = saved.is_none();
        let mut state = saved.unwrap_or_default();
        let mut id: Option<String> = state.scan.resolved_header(&found.path).map(|h| h.id);
        let mut failure: Option<Failure> = None;
        let mut text_since_commit = 0usize;
        let mut sealed: Vec<OpenChunk> = Vec::new();
        let from = state.scan.offset;
        let text_len = source.len();
        source.lines_from(from, false, |start, line| {
            let stop = start + line.len() as u64 + 1;
            let before = state.scan.message_count;
            let record = state.scan.feed(line, start);
            state.scan.offset = stop;
            let Some(record) = record else {
                return true;
            };
            let step = (|| -> Result<(), Failure> {
                let session = match &id {
                    Some(session) => session.clone(),
                    None => {
                        let header = state.scan.resolved_header(&found.path).ok_or_else(|| {
                            Failure::NotALog("it has no session header on its first line".into())
                        })?;
                        if fresh {
                            self.drop_session(&header.id)?;
                        }
                        id = Some(header.id.clone());
                        header.id
                    }
                };
                if matches!(record, Record::Message { .. }) && before.is_multiple_of(BLOCK) {
                    self.conn
                        .prepare_cached(
                            "INSERT OR REPLACE INTO blocks(session, block, offset)
                             VALUES (?1, ?2, ?3)",
                        )
                        .and_then(|mut stmt| {
                            stmt.execute(params![session, to_i64(before / BLOCK), to_i64(start)])
                        })
                        .map_err(|e| self.err(e))?;
                }
                let at = LineAt {
                    start,
                    stop,
                    messages_before: before,
                };
                for piece in pieces(&record, before, Some(&mut state.todos_seen)) {
                    chunks::add(&mut state.open, at, &piece, &mut |chunk| sealed.push(chunk));
                }
                for chunk in sealed.drain(..) {
                    text_since_commit += chunk.text.len();
                    self.write_chunk(&session, &chunk, Kind::Body)?;
                }
                if text_since_commit >= COMMIT_TEXT {
                    text_since_commit = 0;
                    self.checkpoint(tx, &session, key, found, text_len, &mut state)?;
                }
                Ok(())
            })();
            match step {
                Ok(()) => true,
                Err(stop) => {
                    failure = Some(stop);
                    false
                }
            }
        })?;
        match failure {
            None => {}
            Some(Failure::NotALog(reason)) => return Ok(Err(reason)),
            Some(Failure::Index(error)) => return Err(error),
            // Someone else is on it: what is committed stays theirs to finish.
            Some(Failure::Overtaken) => return Ok(Ok(id.unwrap_or_default())),
        }
        if state.scan.first.is_none() {
            return Ok(Err("it holds no readable record".into()));
        }
        let Some(session) = id else {
            return Ok(Err("it has no session header on its first line".into()));
        };
        let len = text_len.max(state.scan.offset);
        self.save(&session, key, found, len, &mut state, None)?;
        let hashes = end_hashes(source, state.scan.offset)?;
        self.set_hashes(key, hashes)?;
        Ok(Ok(session))
    }

    /// Commits a large log's progress part-way (so other writers of the index never wait
    /// long, and a crash keeps it), then goes on unless another process took over the log.
    fn checkpoint(
        &self,
        tx: &mut Tx<'_>,
        session: &str,
        key: &str,
        found: &FoundLog,
        text_len: u64,
        state: &mut Saved,
    ) -> Result<(), Failure> {
        // The reading source is busy: hash the text read so far through a second one.
        let hashes = end_hashes(&mut LogSource::open(&found.path)?, state.scan.offset)?;
        self.save(session, key, found, text_len, state, Some(hashes))?;
        self.conn
            .execute_batch("RELEASE log")
            .map_err(|e| self.err(e))?;
        tx.restart()?;
        self.conn
            .execute_batch("SAVEPOINT log")
            .map_err(|e| self.err(e))?;
        let theirs = self.load_state(session)?;
        if theirs.is_none_or(|theirs| theirs.scan.offset != state.scan.offset) {
            return Err(Failure::Overtaken);
        }
        Ok(())
    }

    fn set_hashes(&self, key: &str, (head, tail): (i64, i64)) -> Result<(), HistoryError> {
        self.conn
            .execute(
                "UPDATE files SET head_hash = ?2, tail_hash = ?3 WHERE log = ?1",
                params![key, head, tail],
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Writes the session's row, its open chunk and title row, its saved state and its file
    /// row. `partway`: more of the log is still to read; the hashes of what was read so far
    /// (the file row's stamp is left blank so the next look goes on).
    fn save(
        &self,
        id: &str,
        key: &str,
        found: &FoundLog,
        text_len: u64,
        state: &mut Saved,
        partway: Option<(i64, i64)>,
    ) -> Result<(), HistoryError> {
        if state.open.dirty && !state.open.is_empty() {
            state.open.row = Some(self.write_chunk(id, &state.open, Kind::Body)?);
            state.open.dirty = false;
        }
        let title = state.scan.shown_title().to_string();
        if title != state.indexed_title {
            if let Some(row) = state.title_row.take() {
                self.conn
                    .execute("DELETE FROM fts WHERE rowid = ?1", [row])
                    .and_then(|_| self.conn.execute("DELETE FROM chunks WHERE n = ?1", [row]))
                    .map_err(|e| self.err(e))?;
            }
            if !title.is_empty() {
                let row = self.write_chunk(id, &OpenChunk::default(), Kind::Title(&title))?;
                state.title_row = Some(row);
            }
            state.indexed_title = title.clone();
        }
        let header = state
            .scan
            .resolved_header(&found.path)
            .or_else(|| file_header(found))
            .ok_or_else(|| HistoryError::NotASession {
                path: found.path.clone(),
                reason: "it has no session header on its first line".into(),
            })?;
        let scan = &state.scan;
        let (parent, parent_message) = match &header.forked_from {
            Some(origin) => (Some(origin.id.clone()), Some(to_i64(origin.message_index))),
            None => (None, None),
        };
        let usage = scan.usage.as_ref();
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO sessions(id, log, path, title, created, updated, provider,
                     model, message_count, status, pinned, archived, parent, parent_message,
                     todo_offset, skipped_lines, input_tokens, output_tokens, cache_read_tokens,
                     turns, workdir, compressed, disk_size, text_size)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,
                     ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    id,
                    key,
                    found.path.to_string_lossy(),
                    title,
                    ts_text(header.created),
                    ts_text(scan.updated.unwrap_or(header.created)),
                    header.provider,
                    header.model,
                    to_i64(scan.message_count),
                    scan.status().as_str(),
                    scan.pinned,
                    scan.archived,
                    parent,
                    parent_message,
                    scan.todo_offset.map(to_i64),
                    to_i64(scan.skipped_lines),
                    usage.map(|u| to_i64(u.input_tokens)),
                    usage.map(|u| to_i64(u.output_tokens)),
                    usage.and_then(|u| u.cache_read_tokens).map(to_i64),
                    to_i64(scan.turns),
                    header.workdir,
                    is_compressed(&found.path),
                    to_i64(found.stamp.size),
                    to_i64(text_len),
                ])
            })
            .map_err(|e| self.err(e))?;
        let saved = serde_json::to_string(&*state).unwrap_or_default();
        self.conn
            .prepare_cached("INSERT OR REPLACE INTO scan_state(id, state) VALUES (?1, ?2)")
            .and_then(|mut stmt| stmt.execute(params![id, saved]))
            .map_err(|e| self.err(e))?;
        // Part-way, the stamp is left blank: the next look sees a change and goes on.
        let (stamp, (head, tail)) = match partway {
            Some(hashes) => (FileStamp::default(), hashes),
            None => (found.stamp, (0, 0)),
        };
        let row = FileRow {
            stamp,
            checked_len: state.scan.offset,
            hashes: (head, tail),
            id: Some(id),
            error: None,
        };
        self.write_file_row(key, found, &row)
    }

    fn mark_broken(
        &self,
        key: &str,
        found: &FoundLog,
        reason: String,
    ) -> Result<Outcome, HistoryError> {
        self.forget(key)?;
        let row = FileRow {
            stamp: found.stamp,
            checked_len: 0,
            hashes: (0, 0),
            id: None,
            error: Some(&reason),
        };
        self.write_file_row(key, found, &row)?;
        Ok(Outcome::Broken(reason))
    }

    fn write_file_row(
        &self,
        key: &str,
        found: &FoundLog,
        row: &FileRow<'_>,
    ) -> Result<(), HistoryError> {
        self.conn
            .prepare_cached(
                "INSERT OR REPLACE INTO files(log, path, size, mtime, ctime, inode, checked_len,
                     head_hash, tail_hash, id, error)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .and_then(|mut stmt| {
                stmt.execute(params![
                    key,
                    found.path.to_string_lossy(),
                    to_i64(row.stamp.size),
                    row.stamp.mtime,
                    row.stamp.ctime,
                    to_i64(row.stamp.inode),
                    to_i64(row.checked_len),
                    row.hashes.0,
                    row.hashes.1,
                    row.id,
                    row.error,
                ])
            })
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn file_header(found: &FoundLog) -> Option<crate::history::Header> {
    crate::history::reader::recovered_header(&found.path, None)
}

fn stamp_from(row: &rusqlite::Row<'_>, first: usize) -> Result<FileStamp, rusqlite::Error> {
    Ok(FileStamp {
        size: u64::try_from(row.get::<_, i64>(first)?).unwrap_or(0),
        mtime: row.get(first + 1)?,
        ctime: row.get(first + 2)?,
        inode: u64::try_from(row.get::<_, i64>(first + 3)?).unwrap_or(0),
    })
}
