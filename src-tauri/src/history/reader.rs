//! Reading logs back, plain or compressed. Unreadable lines (a torn last line after a crash,
//! garbage) are skipped and counted; only a missing file or a missing header fails.

use std::collections::HashSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Usage;
use crate::history::error::HistoryError;
use crate::history::layout::{current_file, file_id, plain_path};
use crate::history::lock::writer_alive;
use crate::history::record::{Header, Line, Record, parse_line};
use crate::history::scan::ScanState;
use crate::history::source::LogSource;
use crate::message::Message;
use crate::todo::TodoItem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Running,
    Done,
    Cancelled,
    Error,
    /// A turn that never ended and whose writer is gone (its process died, or the disk filled
    /// before the turn's end was written).
    Interrupted,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Done => "done",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::Error => "error",
            SessionStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<SessionStatus> {
        match text {
            "running" => Some(SessionStatus::Running),
            "done" => Some(SessionStatus::Done),
            "cancelled" => Some(SessionStatus::Cancelled),
            "error" => Some(SessionStatus::Error),
            "interrupted" => Some(SessionStatus::Interrupted),
            _ => None,
        }
    }
}

/// The status to show for a log whose records say `status`: a turn without its end is
/// `running` only while a writer holds the log's lock; otherwise it was interrupted.
pub fn honest_status(status: SessionStatus, log: &Path) -> SessionStatus {
    match status {
        SessionStatus::Running if !writer_alive(&plain_path(log)) => SessionStatus::Interrupted,
        SessionStatus::Running
        | SessionStatus::Done
        | SessionStatus::Cancelled
        | SessionStatus::Error
        | SessionStatus::Interrupted => status,
    }
}

/// A whole session as read from its log.
#[derive(Clone, Debug)]
pub struct SessionLog {
    pub header: Header,
    /// The file read (plain or compressed).
    pub path: PathBuf,
    pub messages: Vec<Message>,
    /// The latest todo list that pairs with a real `todo` tool call.
    pub todos: Vec<TodoItem>,
    /// From the last turn end; `running` while a turn has no end and its writer lives,
    /// `interrupted` when the writer is gone.
    pub status: SessionStatus,
    /// Highest turn number recorded.
    pub turns: u64,
    /// The last turn started and never ended (the process died, or it is still running), or
    /// was marked interrupted on resume.
    pub interrupted: bool,
    pub skipped_lines: usize,
    /// The title shown: the user's, else the first line of the first message.
    pub title: String,
    pub pinned: bool,
    pub archived: bool,
    pub updated: DateTime<Utc>,
    /// Sum of the usage records.
    pub usage: Option<Usage>,
    /// Sum of the usage records since the last `turn_start`.
    pub last_turn_usage: Option<Usage>,
}

/// Opens the log named by `path` (either form: the file that exists now is read).
pub fn open_log(path: &Path) -> Result<LogSource, HistoryError> {
    match current_file(path) {
        Some(file) => LogSource::open(&file),
        None => LogSource::open(path),
    }
}

/// Reads a whole log, a chunk at a time: memory is the conversation, not the file as well.
pub fn read_session(path: &Path) -> Result<SessionLog, HistoryError> {
    let mut messages = Vec::new();
    let (scan, source_path) = scan_log(path, |record| {
        if let Record::Message { message, .. } = record {
            messages.push(message);
        }
    })?;
    session_log(scan, source_path, messages)
}

/// One pass over a whole log: the derived values, and each record to `keep`. Returns the
/// state and the file read.
pub fn scan_log(
    path: &Path,
    mut keep: impl FnMut(Record),
) -> Result<(ScanState, PathBuf), HistoryError> {
    let mut source = open_log(path)?;
    let mut scan = ScanState::default();
    source.lines_from(0, true, |start, line| {
        if let Some(record) = scan.feed(line, start) {
            keep(record);
        }
        true
    })?;
    Ok((scan, source.path().to_path_buf()))
}

/// The `SessionLog` of a finished scan.
fn session_log(
    mut scan: ScanState,
    path: PathBuf,
    messages: Vec<Message>,
) -> Result<SessionLog, HistoryError> {
    let header = scan
        .resolved_header(&path)
        .ok_or_else(|| HistoryError::NotASession {
            path: path.clone(),
            reason: "it has no session header on its first line".into(),
        })?;
    Ok(SessionLog {
        status: honest_status(scan.status(), &path),
        interrupted: scan.interrupted(),
        updated: scan.updated.unwrap_or(header.created),
        title: scan.shown_title().to_string(),
        pinned: scan.pinned,
        archived: scan.archived,
        header,
        path,
        messages,
        todos: scan.todos.take().unwrap_or_default(),
        turns: scan.turns,
        skipped_lines: usize::try_from(scan.skipped_lines).unwrap_or(usize::MAX),
        usage: scan.usage,
        last_turn_usage: scan.last_turn_usage,
    })
}

/// The messages numbered `range` (0 is the first message of the session), reading from byte
/// `offset`, where message number `first_index` starts (an offset the index keeps). Only the
/// lines from `offset` to the end of the range are read.
pub fn read_messages(
    path: &Path,
    offset: u64,
    first_index: u64,
    range: Range<u64>,
) -> Result<Vec<Message>, HistoryError> {
    let mut messages = Vec::new();
    for_each_message(path, offset, first_index, range, |_, message| {
        messages.push(message);
        true
    })?;
    Ok(messages)
}

/// Calls `each` with the number and the content of every message in `range`, read one line at
/// a time from byte `offset` (where message number `first_index` starts); `each` returns false
/// to stop.
pub fn for_each_message(
    path: &Path,
    offset: u64,
    first_index: u64,
    range: Range<u64>,
    mut each: impl FnMut(u64, Message) -> bool,
) -> Result<(), HistoryError> {
    if range.is_empty() {
        return Ok(());
    }
    let mut source = open_log(path)?;
    let mut index = first_index;
    source.lines_from(offset, true, |_, line| {
        if let Line::Record(record) = parse_line(line)
            && let Record::Message { message, .. } = *record
        {
            let at = index;
            index += 1;
            if range.contains(&at) && !each(at, message) {
                return false;
            }
        }
        index < range.end
    })?;
    Ok(())
}

/// A stand-in header for a log whose line 1 is damaged (torn, garbage) or missing, when its
/// file name is a session id: the id comes from the name, `created` from the id's UUID v7
/// time (else the first record's), and provider, model and workdir are unknown (empty).
/// None when the name is not a UUID (then it is not a Talaria log).
pub fn recovered_header(path: &Path, first_ts: Option<DateTime<Utc>>) -> Option<Header> {
    let id = uuid::Uuid::parse_str(&file_id(path)?).ok()?;
    let from_id = id.get_timestamp().and_then(|ts| {
        let (secs, nanos) = ts.to_unix();
        DateTime::<Utc>::from_timestamp(i64::try_from(secs).ok()?, nanos)
    });
    Some(Header {
        id: id.to_string(),
        created: from_id.or(first_ts).unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        provider: String::new(),
        model: String::new(),
        workdir: String::new(),
        version: crate::history::record::FORMAT_VERSION,
        forked_from: None,
    })
}

/// Size of the blocks read backwards by `latest_todos`.
const BLOCK: u64 = 64 * 1024;

/// The latest trusted todo list, read backwards from the end of the file: the cost depends on
/// how far back the snapshot is, not on how long the log is before it. A snapshot is trusted
/// when a `todo` tool result with its id follows it, or an assistant message that made a
/// `todo` call with its id precedes it. No snapshot: an empty list.
pub fn latest_todos(path: &Path) -> Result<Vec<TodoItem>, HistoryError> {
    let mut source = open_log(path)?;
    let len = source.len();
    let mut search = BackwardSearch::default();
    let mut pos = len;
    // Bytes of a line that started before `pos` and whose beginning is not read yet.
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let size = usize::try_from(pos - start).unwrap_or(0);
        let mut block = vec![0u8; size];
        source.read_exact_at(start, &mut block)?;
        block.extend_from_slice(&carry);
        // Unless at the start of the file, the bytes before the first newline belong to a
        // line that began in an earlier block.
        let first_complete = if start == 0 {
            0
        } else {
            match block.iter().position(|b| *b == b'\n') {
                Some(i) => i + 1,
                None => {
                    carry = block;
                    pos = start;
                    continue;
                }
            }
        };
        for line in block[first_complete..].rsplit(|b| *b == b'\n') {
            if let Some(found) = search.line(line) {
                return Ok(found);
            }
        }
        carry = block[..first_complete].to_vec();
        if let Some(stripped) = carry.strip_suffix(b"\n") {
            carry = stripped.to_vec();
        }
        pos = start;
    }
    Ok(search.best_unpaired_fallback())
}

#[derive(Default)]
struct BackwardSearch {
    /// Ids of `todo` tool results seen so far (they come after their snapshot).
    results: HashSet<String>,
    /// Snapshots seen without a pairing yet, newest first.
    candidates: Vec<(String, Vec<TodoItem>)>,
}

impl BackwardSearch {
    fn line(&mut self, line: &[u8]) -> Option<Vec<TodoItem>> {
        let Line::Record(record) = parse_line(line) else {
            return None;
        };
        match *record {
            Record::Todo {
                tool_call_id,
                todos,
                ..
            } => {
                if self.results.contains(&tool_call_id) {
                    return Some(todos);
                }
                self.candidates.push((tool_call_id, todos));
                None
            }
            Record::Message {
                message:
                    Message::Tool {
                        tool_call_id, name, ..
                    },
                ..
            } => {
                if name == "todo" {
                    self.results.insert(tool_call_id);
                }
                None
            }
            Record::Message {
                message: Message::Assistant { tool_calls, .. },
                ..
            } => {
                let calls: Vec<&str> = tool_calls
                    .iter()
                    .filter(|c| c.name == "todo")
                    .map(|c| c.id.as_str())
                    .collect();
                let index = self
                    .candidates
                    .iter()
                    .position(|(id, _)| calls.contains(&id.as_str()))?;
                Some(self.candidates.swap_remove(index).1)
            }
            Record::Message {
                message: Message::User { .. },
                ..
            }
            | Record::Session(_)
            | Record::TurnStart { .. }
            | Record::TurnEnd { .. }
            | Record::Usage { .. }
            | Record::Title { .. }
            | Record::Pin { .. }
            | Record::Archive { .. } => None,
        }
    }

    /// Reached the start of the file without pairing anything: nothing is trusted.
    fn best_unpaired_fallback(self) -> Vec<TodoItem> {
        Vec::new()
    }
}

/// The todo list of the snapshot that starts at byte `offset` (kept by the index), without
/// reading anything else. None when no todo snapshot starts there (the file changed).
pub fn read_todo_at(path: &Path, offset: u64) -> Result<Option<Vec<TodoItem>>, HistoryError> {
    let mut source = open_log(path)?;
    let mut line = Vec::new();
    source.lines_from(offset, true, |_, bytes| {
        line = bytes.to_vec();
        false
    })?;
    match parse_line(&line) {
        Line::Record(record) => match *record {
            Record::Todo { todos, .. } => Ok(Some(todos)),
            Record::Session(_)
            | Record::Message { .. }
            | Record::TurnStart { .. }
            | Record::TurnEnd { .. }
            | Record::Usage { .. }
            | Record::Title { .. }
            | Record::Pin { .. }
            | Record::Archive { .. } => Ok(None),
        },
        Line::Unknown | Line::Blank | Line::Unreadable => Ok(None),
    }
}
