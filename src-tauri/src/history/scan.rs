//! One forward pass over log lines, shared by the reader (whole file) and the index (only the
//! appended bytes: the state is saved between passes as JSON).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Usage;
use crate::history::reader::SessionStatus;
use crate::history::record::{Header, Line, Record, TurnStatus, parse_line};
use crate::message::Message;
use crate::todo::TodoItem;

/// Longest title, in characters.
pub const TITLE_CHARS: usize = 80;
/// How many recent `todo` call ids are remembered to pair snapshots with.
const RECENT_TODO_CALLS: usize = 64;
/// Full-text search keeps at most this much of one message's text (bytes)...
pub const BODY_PER_MESSAGE: usize = 32 * 1024;
/// ...and at most this much text per session, so a huge session (a pasted log, a model that
/// echoes files) costs the index a bounded amount. Tool results are never indexed.
pub const BODY_PER_SESSION: u64 = 1024 * 1024;

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScanState {
    pub header: Option<Header>,
    /// Bytes consumed: the end of the last complete line.
    pub offset: u64,
    pub message_count: u64,
    pub title: String,
    pub turns: u64,
    pub open_turn: Option<u64>,
    pub last_status: Option<TurnStatus>,
    pub updated: Option<DateTime<Utc>>,
    pub skipped_lines: u64,
    pub usage: Option<Usage>,
    /// Byte offset of the latest snapshot that pairs with a real `todo` call.
    pub todo_offset: Option<u64>,
    /// Recent `todo` tool calls made by the assistant.
    pub todo_calls: Vec<String>,
    /// The newest snapshot not yet paired: (offset, tool_call_id). A later `todo` tool result
    /// with the same id pairs it.
    pub todo_pending: Option<(u64, String)>,
    /// The lists themselves, for the reader (not saved in the index: it keeps the offset).
    #[serde(skip)]
    pub todos: Option<Vec<TodoItem>>,
    #[serde(skip)]
    pending_todos: Option<Vec<TodoItem>>,
    /// Bytes of text given to full-text search so far (all passes), against
    /// `BODY_PER_SESSION`.
    #[serde(default)]
    pub body_indexed: u64,
    /// User and assistant text seen in this pass, for full-text search.
    #[serde(skip)]
    pub body: String,
    /// Collect `body` (the index does, the reader does not).
    #[serde(skip)]
    pub collect_body: bool,
}

impl ScanState {
    pub fn status(&self) -> SessionStatus {
        if self.open_turn.is_some() {
            return SessionStatus::Running;
        }
        match self.last_status {
            None | Some(TurnStatus::Done) => SessionStatus::Done,
            Some(TurnStatus::Cancelled) => SessionStatus::Cancelled,
            Some(TurnStatus::Error | TurnStatus::Interrupted) => SessionStatus::Error,
        }
    }

    /// A turn started and never ended (the writer died, or it is still running), or the last
    /// turn was marked interrupted on resume.
    pub fn interrupted(&self) -> bool {
        self.open_turn.is_some() || self.last_status == Some(TurnStatus::Interrupted)
    }

    /// Takes one complete line (no newline) that starts at byte `start`. Returns the record
    /// when the line held one, so the caller can keep what it needs (the reader keeps messages).
    pub fn feed(&mut self, line: &[u8], start: u64) -> Option<Record> {
        match parse_line(line) {
            Line::Blank | Line::Unknown => None,
            Line::Unreadable => {
                self.skipped_lines += 1;
                None
            }
            Line::Record(record) => {
                let record = *record;
                self.apply(&record, start);
                Some(record)
            }
        }
    }

    fn apply(&mut self, record: &Record, start: u64) {
        match record {
            Record::Session(header) => {
                if self.header.is_none() {
                    self.header = Some(header.clone());
                    self.updated = Some(header.created);
                }
                return;
            }
            Record::Message { message, .. } => {
                self.message_count += 1;
                match message {
                    Message::User { content } => {
                        if self.title.is_empty() {
                            self.title = make_title(content);
                        }
                        self.add_body(content);
                    }
                    Message::Assistant {
                        content,
                        tool_calls,
                        ..
                    } => {
                        self.add_body(content);
                        for call in tool_calls.iter().filter(|c| c.name == "todo") {
                            self.todo_calls.push(call.id.clone());
                        }
                        let excess = self.todo_calls.len().saturating_sub(RECENT_TODO_CALLS);
                        self.todo_calls.drain(..excess);
                    }
                    Message::Tool {
                        tool_call_id, name, ..
                    } => {
                        let pairs = name == "todo"
                            && self
                                .todo_pending
                                .as_ref()
                                .is_some_and(|(_, id)| id == tool_call_id);
                        if pairs {
                            self.todo_offset = self.todo_pending.take().map(|(offset, _)| offset);
                            self.todos = self.pending_todos.take();
                        }
                    }
                }
            }
            Record::Todo {
                tool_call_id,
                todos,
                ..
            } => {
                if self.todo_calls.iter().any(|id| id == tool_call_id) {
                    self.todo_offset = Some(start);
                    self.todos = Some(todos.clone());
                    self.todo_pending = None;
                    self.pending_todos = None;
                } else {
                    self.todo_pending = Some((start, tool_call_id.clone()));
                    self.pending_todos = Some(todos.clone());
                }
            }
            Record::TurnStart { turn, .. } => {
                self.open_turn = Some(*turn);
                self.turns = self.turns.max(*turn);
            }
            Record::TurnEnd { turn, status, .. } => {
                self.open_turn = None;
                self.turns = self.turns.max(*turn);
                self.last_status = Some(*status);
            }
            Record::Usage { usage, .. } => Usage::accumulate(&mut self.usage, usage),
        }
        let ts = record.ts();
        if self.updated.is_none_or(|u| ts > u) {
            self.updated = Some(ts);
        }
    }

    fn add_body(&mut self, text: &str) {
        if !self.collect_body || text.is_empty() {
            return;
        }
        let left = BODY_PER_SESSION.saturating_sub(self.body_indexed);
        let room = usize::try_from(left).unwrap_or(usize::MAX);
        let text = truncate_at_char(text, BODY_PER_MESSAGE.min(room.saturating_sub(1)));
        if text.is_empty() {
            return;
        }
        if !self.body.is_empty() {
            self.body.push('\n');
        }
        self.body.push_str(text);
        self.body_indexed += text.len() as u64 + 1;
    }

    /// Feeds every complete line of `bytes`, which start at byte `base` of the file. A last
    /// line without its newline is left for later (it may still be being written) unless
    /// `to_end`. Advances `offset` past what was consumed; returns the records seen.
    pub fn feed_bytes(
        &mut self,
        bytes: &[u8],
        base: u64,
        to_end: bool,
        mut keep: impl FnMut(Record),
    ) {
        let mut start = 0usize;
        while start < bytes.len() {
            let (end, next) = match bytes[start..].iter().position(|b| *b == b'\n') {
                Some(i) => (start + i, start + i + 1),
                None if to_end => (bytes.len(), bytes.len()),
                None => break,
            };
            if let Some(record) = self.feed(&bytes[start..end], base + start as u64) {
                keep(record);
            }
            start = next;
        }
        self.offset = base + start as u64;
    }
}

/// The first line of the first user message, trimmed, at most 80 characters.
pub fn make_title(content: &str) -> String {
    let line = content.trim().lines().next().unwrap_or("").trim();
    if line.chars().count() <= TITLE_CHARS {
        return line.to_string();
    }
    let mut title: String = line.chars().take(TITLE_CHARS - 1).collect();
    title.push('…');
    title
}

/// The longest prefix of `text` that is at most `max` bytes and ends on a char boundary.
fn truncate_at_char(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}
