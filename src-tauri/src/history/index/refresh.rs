//! Bringing the index up to date with the logs: only what changed is read, and of a log that
//! grew only the appended bytes.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, Transaction, params};

use super::{Index, Progress, RefreshStats, file_meta, to_i64, ts_text};
use crate::history::error::HistoryError;
use crate::history::scan::ScanState;
use crate::history::sessions_dir;

/// How many files a rebuild indexes per transaction (listing sees progress at this pace).
const BATCH_FILES: usize = 100;
/// Bytes read from a log at a time while indexing it (a large log is never held whole).
const READ_CHUNK: usize = 1024 * 1024;

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

impl Index {
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
