//! What the index answers: the session list, lookups by id, where a message starts, and
//! full-text search ranked per session.

use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::snippet::{ChunkSpot, cut_snippet};
use super::{Index, SearchHit, SessionSummary, parse_ts, to_i64};
use crate::event::Usage;
use crate::history::error::HistoryError;
use crate::history::reader::{SessionStatus, honest_status};
use crate::history::record::ForkOrigin;

/// At most this many words of a query are used (a pasted page must not become a huge query).
const QUERY_WORDS: usize = 32;
/// Longest word of a query, in characters.
const QUERY_WORD_CHARS: usize = 100;

/// The words of what the user typed, as search uses them: split on white space and control
/// characters, at most 32 words of at most 100 characters.
pub fn query_words(input: &str) -> Vec<String> {
    input
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .take(QUERY_WORDS)
        .map(|w| w.chars().take(QUERY_WORD_CHARS).collect())
        .collect()
}

/// Turns what the user typed into an FTS5 query that cannot be a syntax error: every word is
/// a quoted string (inner quotes doubled), all words must match, the last one as a prefix.
/// Very long input is cut to its first words. Control characters separate words (FTS5 reads
/// a NUL as the end of the query, which made it an unterminated string).
pub fn fts_query(input: &str) -> Option<String> {
    let words: Vec<String> = query_words(input)
        .iter()
        .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
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

/// Which sessions a list shows by their archive state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Archived {
    /// Everything (the CLI).
    #[default]
    Include,
    /// Only sessions not archived (the app's list).
    Hide,
    /// Only archived sessions (the app's filter).
    Only,
}

/// A page of the session list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ListQuery {
    pub limit: usize,
    pub offset: usize,
    pub archived: Archived,
    /// Pinned sessions first (the app); else strictly newest first (the CLI).
    pub pinned_first: bool,
}

/// Where to start reading to reach a message: message number `first_index` starts at byte
/// `offset` of the log, and `first_index` is at most `BLOCK` - 1 before the one wanted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageBlock {
    pub first_index: u64,
    pub offset: u64,
}

const SUMMARY_COLUMNS: &str = "id, path, title, created, updated, status, message_count, provider,
    model, pinned, archived, parent, parent_message, compressed, disk_size, text_size,
    skipped_lines, log, workdir, turns, input_tokens, output_tokens, cache_read_tokens";

impl Index {
    /// Newest first by last activity, every session.
    pub fn list(&self, limit: usize, offset: usize) -> Result<Vec<SessionSummary>, HistoryError> {
        self.list_with(ListQuery {
            limit,
            offset,
            archived: Archived::Include,
            pinned_first: false,
        })
    }

    /// A page of the list as `query` asks. Each order has an index: no page sorts the table.
    pub fn list_with(&self, query: ListQuery) -> Result<Vec<SessionSummary>, HistoryError> {
        let filter = match query.archived {
            Archived::Include => "",
            Archived::Hide => "WHERE archived = 0",
            Archived::Only => "WHERE archived = 1",
        };
        let order = match (query.pinned_first, query.archived) {
            (true, Archived::Hide | Archived::Only) => {
                "archived, pinned DESC, updated DESC, id DESC"
            }
            (true, Archived::Include) => "pinned DESC, updated DESC, id DESC",
            (false, _) => "updated DESC, id DESC",
        };
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM sessions {filter} ORDER BY {order} LIMIT ?1 OFFSET ?2"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(
                params![to_i64(query.limit as u64), to_i64(query.offset as u64)],
                summary_row,
            )
            .map_err(|e| self.err(e))?;
        let rows = rows
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(with_honest_status).collect())
    }

    /// How many sessions are indexed.
    pub fn count(&self) -> Result<usize, HistoryError> {
        let n: i64 = self
            .conn
            .query_row("SELECT count(*) FROM sessions", [], |row| row.get(0))
            .map_err(|e| self.err(e))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Full-text search over everything the logs hold, one hit per session (its best chunk),
    /// best first, each with a snippet cut from the log around the match. Any input is safe.
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, HistoryError> {
        let Some(fts) = fts_query(query) else {
            return Ok(Vec::new());
        };
        let spots: Vec<(String, f64, ChunkSpot)> = {
            let mut stmt = self
                .conn
                .prepare_cached(
                    // Materialized: bm25() works only in the full-text query itself.
                    "WITH f AS MATERIALIZED (
                         SELECT rowid, bm25(fts, 5.0, 1.0) AS rank FROM fts WHERE fts MATCH ?1)
                     SELECT c.session, min(f.rank) AS best, c.kind, c.first_msg, c.msg_at_start,
                            c.start, c.stop
                     FROM f JOIN chunks AS c ON c.n = f.rowid
                     GROUP BY c.session ORDER BY best LIMIT ?2",
                )
                .map_err(|e| self.err(e))?;
            let rows = stmt
                .query_map(params![fts, to_i64(limit as u64)], |row| {
                    let get = |i: usize| -> Result<u64, rusqlite::Error> {
                        Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
                    };
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, f64>(1)?,
                        ChunkSpot {
                            title: row.get::<_, i64>(2)? == 1,
                            first_msg: get(3)?,
                            msg_at_start: get(4)?,
                            start: get(5)?,
                            stop: get(6)?,
                        },
                    ))
                })
                .map_err(|e| self.err(e))?;
            rows.collect::<Result<_, _>>().map_err(|e| self.err(e))?
        };
        let words = query_words(query);
        let mut hits = Vec::with_capacity(spots.len());
        for (id, rank, spot) in spots {
            let Some(session) = self.get(&id)? else {
                continue;
            };
            let snippet = cut_snippet(Path::new(&session.path), &spot, &session.title, &words);
            hits.push(SearchHit {
                id,
                title: session.title,
                snippet: snippet.text,
                highlights: snippet.highlights,
                score: -rank,
                message_index: snippet.message,
            });
        }
        Ok(hits)
    }

    /// The session with exactly this id.
    pub fn get(&self, id: &str) -> Result<Option<SessionSummary>, HistoryError> {
        let sql = format!("SELECT {SUMMARY_COLUMNS} FROM sessions WHERE id = ?1");
        let found = self
            .conn
            .prepare_cached(&sql)
            .and_then(|mut stmt| stmt.query_row([id], summary_row).optional())
            .map_err(|e| self.err(e))?;
        Ok(found.map(with_honest_status))
    }

    /// A session by id, or by a prefix of its id that matches only one session.
    pub fn find(&self, id: &str) -> Result<Option<SessionSummary>, HistoryError> {
        let id = id.trim();
        if id.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT {SUMMARY_COLUMNS} FROM sessions
             WHERE id = ?1 OR substr(id, 1, length(?1)) = ?1 LIMIT 2"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(|e| self.err(e))?;
        let mut found = stmt
            .query_map([id], summary_row)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        if let Some(exact) = found.iter().position(|s| s.id == id) {
            return Ok(Some(with_honest_status(found.swap_remove(exact))));
        }
        match found.len() {
            0 => Ok(None),
            1 => Ok(found.pop().map(with_honest_status)),
            _ => Err(HistoryError::Ambiguous(id.to_string())),
        }
    }

    /// Bytes of text the compressed logs hold once decompressed.
    pub fn compressed_text_bytes(&self) -> Result<u64, HistoryError> {
        let n: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(sum(text_size), 0) FROM sessions WHERE compressed = 1",
                [],
                |row| row.get(0),
            )
            .map_err(|e| self.err(e))?;
        Ok(u64::try_from(n).unwrap_or(0))
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

    /// Where to start reading to reach message number `index` of session `id`.
    pub fn message_block(&self, id: &str, index: u64) -> Result<MessageBlock, HistoryError> {
        let block: Option<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT block, offset FROM blocks WHERE session = ?1 AND block <= ?2
                 ORDER BY block DESC LIMIT 1",
            )
            .and_then(|mut stmt| {
                stmt.query_row(params![id, to_i64(index / super::BLOCK)], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .optional()
            })
            .map_err(|e| self.err(e))?;
        Ok(match block {
            Some((block, offset)) => MessageBlock {
                first_index: u64::try_from(block).unwrap_or(0) * super::BLOCK,
                offset: u64::try_from(offset).unwrap_or(0),
            },
            None => MessageBlock {
                first_index: 0,
                offset: 0,
            },
        })
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
}

/// `running` only while a writer holds the log (a lock probe, for running rows alone).
fn with_honest_status(mut summary: SessionSummary) -> SessionSummary {
    summary.status = honest_status(summary.status, Path::new(&summary.path));
    summary
}

fn summary_row(row: &rusqlite::Row<'_>) -> Result<SessionSummary, rusqlite::Error> {
    let status: String = row.get(5)?;
    let count: i64 = row.get(6)?;
    let parent: Option<String> = row.get(11)?;
    let parent_message: Option<i64> = row.get(12)?;
    let unsigned = |i: usize| -> Result<u64, rusqlite::Error> {
        Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
    };
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
        pinned: row.get(9)?,
        archived: row.get(10)?,
        forked_from: parent.map(|id| ForkOrigin {
            id,
            message_index: parent_message
                .and_then(|m| u64::try_from(m).ok())
                .unwrap_or(0),
        }),
        compressed: row.get(13)?,
        disk_size: unsigned(14)?,
        text_size: unsigned(15)?,
        skipped_lines: unsigned(16)?,
        log: row.get(17)?,
        workdir: row.get(18)?,
        turns: unsigned(19)?,
        usage: match (
            row.get::<_, Option<i64>>(20)?,
            row.get::<_, Option<i64>>(21)?,
        ) {
            (Some(input), Some(output)) => Some(Usage {
                input_tokens: u64::try_from(input).unwrap_or(0),
                output_tokens: u64::try_from(output).unwrap_or(0),
                cache_read_tokens: row
                    .get::<_, Option<i64>>(22)?
                    .and_then(|n| u64::try_from(n).ok()),
            }),
            _ => None,
        },
    })
}
