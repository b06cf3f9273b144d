//! Opening a session at any size: the index knows where every 64th message starts, so the app
//! and `sessions show --tail N` read only the messages they show (plus at most 63 before
//! them), and the todo list comes from the latest snapshot's offset, without a scan.

use std::path::Path;

use crate::history::error::HistoryError;
use crate::history::index::{Index, SessionSummary};
use crate::history::reader::{read_messages, read_todo_at};
use crate::message::{Message, page_start};
use crate::todo::TodoItem;

/// A run of a session's messages: `messages[0]` is message number `first_index`, of `total`.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub messages: Vec<Message>,
    pub first_index: u64,
    pub total: u64,
}

/// The session `id` (or a unique prefix), its index row brought up to date with its log first
/// (only the bytes appended since the last look are read).
pub fn fresh_summary(index: &Index, id: &str) -> Result<SessionSummary, HistoryError> {
    let found = index
        .find(id)?
        .ok_or_else(|| HistoryError::NotFound(id.to_string()))?;
    index.refresh_file(Path::new(&found.path))?;
    index
        .get(&found.id)?
        .ok_or_else(|| HistoryError::NotFound(id.to_string()))
}

/// The newest `count` messages of the session (more when the page would otherwise start
/// between a tool call and its results).
pub fn tail(index: &Index, session: &SessionSummary, count: u64) -> Result<Page, HistoryError> {
    let total = session.message_count;
    page(index, session, total.saturating_sub(count), total)
}

/// Up to `limit` messages before message number `before`.
pub fn before(
    index: &Index,
    session: &SessionSummary,
    before: u64,
    limit: u64,
) -> Result<Page, HistoryError> {
    let end = before.min(session.message_count);
    page(index, session, end.saturating_sub(limit), end)
}

/// Messages `start..end`, with `start` moved back over tool results so the page holds their
/// call. Reads from the block that holds the start; an earlier block only when a run of
/// results reaches back past it.
fn page(
    index: &Index,
    session: &SessionSummary,
    start: u64,
    end: u64,
) -> Result<Page, HistoryError> {
    let path = Path::new(&session.path);
    let mut from = start;
    loop {
        let block = index.message_block(&session.id, from)?;
        let messages = read_messages(
            path,
            block.offset,
            block.first_index,
            block.first_index..end,
        )?;
        let wanted = usize::try_from(start - block.first_index).unwrap_or(usize::MAX);
        let at = page_start(&messages, wanted.min(messages.len()));
        if at > 0
            || block.first_index == 0
            || !matches!(messages.first(), Some(Message::Tool { .. }))
        {
            let first_index = block.first_index + at as u64;
            return Ok(Page {
                messages: messages.into_iter().skip(at).collect(),
                first_index,
                total: session.message_count,
            });
        }
        // The results go back past this block: start one block earlier.
        from = block.first_index - 1;
    }
}

/// The session's todo list: the latest trusted snapshot, read at the offset the index keeps.
pub fn todos(index: &Index, session: &SessionSummary) -> Result<Vec<TodoItem>, HistoryError> {
    match index.todo_offset(&session.id)? {
        Some(offset) => Ok(read_todo_at(Path::new(&session.path), offset)?.unwrap_or_default()),
        None => Ok(Vec::new()),
    }
}
