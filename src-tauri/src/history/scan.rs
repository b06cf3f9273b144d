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

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ScanState {
    pub header: Option<Header>,
    /// Bytes consumed: the end of the last complete line.
    pub offset: u64,
    pub message_count: u64,
    /// The title taken from the first user message.
    pub title: String,
    /// The title the user gave (a `title` record); empty: none.
    #[serde(default)]
    pub custom_title: String,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub archived: bool,
    pub turns: u64,
    pub open_turn: Option<u64>,
    pub last_status: Option<TurnStatus>,
    pub updated: Option<DateTime<Utc>>,
    pub skipped_lines: u64,
    pub usage: Option<Usage>,
    /// Sum of the usage records since the last `turn_start`.
    pub last_turn_usage: Option<Usage>,
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
    /// The first readable record: was it the header, and when was it made. A log whose line 1
    /// is damaged is still read under a header made from its file name.
    #[serde(default)]
    pub first: Option<(bool, DateTime<Utc>)>,
}

impl ScanState {
    /// The status the log shows: `running` while a turn has no end (whether its writer still
    /// lives is for `honest_status` to say).
    pub fn status(&self) -> SessionStatus {
        if self.open_turn.is_some() {
            return SessionStatus::Running;
        }
        match self.last_status {
            None | Some(TurnStatus::Done) => SessionStatus::Done,
            Some(TurnStatus::Cancelled) => SessionStatus::Cancelled,
            Some(TurnStatus::Error) => SessionStatus::Error,
            Some(TurnStatus::Interrupted) => SessionStatus::Interrupted,
        }
    }

    /// A turn started and never ended (the writer died, or it is still running), or the last
    /// turn was marked interrupted on resume.
    pub fn interrupted(&self) -> bool {
        self.open_turn.is_some() || self.last_status == Some(TurnStatus::Interrupted)
    }

    /// The title to show: the user's, else the one from the first message.
    pub fn shown_title(&self) -> &str {
        if self.custom_title.is_empty() {
            &self.title
        } else {
            &self.custom_title
        }
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

    /// The session's header: line 1's, or one made from the file name when line 1 is damaged
    /// and records follow. None when the file holds no readable record or its name is not a
    /// session id (then it is not a Talaria log).
    pub fn resolved_header(&self, path: &std::path::Path) -> Option<Header> {
        match (&self.header, self.first) {
            (Some(header), Some((true, _))) => Some(header.clone()),
            (_, Some((_, ts))) => crate::history::reader::recovered_header(path, Some(ts)),
            (_, None) => None,
        }
    }

    fn apply(&mut self, record: &Record, start: u64) {
        if self.first.is_none() {
            self.first = Some((matches!(record, Record::Session(_)), record.ts()));
        }
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
                    }
                    Message::Assistant { tool_calls, .. } => {
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
                self.last_turn_usage = None;
                self.turns = self.turns.max(*turn);
            }
            Record::TurnEnd { turn, status, .. } => {
                self.open_turn = None;
                self.turns = self.turns.max(*turn);
                self.last_status = Some(*status);
            }
            Record::Usage { usage, .. } => {
                Usage::accumulate(&mut self.usage, usage);
                Usage::accumulate(&mut self.last_turn_usage, usage);
            }
            Record::Title { title, .. } => self.custom_title = make_title(title),
            Record::Pin { pinned, .. } => self.pinned = *pinned,
            Record::Archive { archived, .. } => self.archived = *archived,
        }
        // Renaming or pinning a session is not activity: the list order stays.
        if record.is_metadata() {
            return;
        }
        let ts = record.ts();
        if self.updated.is_none_or(|u| ts > u) {
            self.updated = Some(ts);
        }
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
