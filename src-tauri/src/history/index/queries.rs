//! What the index answers: the session list, lookups by id, and full-text search.

use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};

use super::{Index, SearchHit, SessionSummary, parse_ts, to_i64};
use crate::history::error::HistoryError;
use crate::history::reader::SessionStatus;

/// At most this many words of a query are used (a pasted page must not become a huge query).
const QUERY_WORDS: usize = 32;
/// Longest word of a query, in characters.
const QUERY_WORD_CHARS: usize = 100;
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
