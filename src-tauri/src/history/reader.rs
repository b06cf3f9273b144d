//! Reading logs back. Unreadable lines (a torn last line after a crash, garbage) are skipped
//! and counted; only a missing file or a missing header fails.

use std::collections::HashSet;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Usage;
use crate::history::error::HistoryError;
use crate::history::record::{Header, Line, Record, parse_line};
use crate::history::scan::ScanState;
use crate::message::Message;
use crate::todo::TodoItem;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Running,
    Done,
    Cancelled,
    Error,
}

impl SessionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Done => "done",
            SessionStatus::Cancelled => "cancelled",
            SessionStatus::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<SessionStatus> {
        match text {
            "running" => Some(SessionStatus::Running),
            "done" => Some(SessionStatus::Done),
            "cancelled" => Some(SessionStatus::Cancelled),
            "error" => Some(SessionStatus::Error),
            _ => None,
        }
    }
}

/// A whole session as read from its log.
#[derive(Clone, Debug)]
pub struct SessionLog {
    pub header: Header,
    pub path: PathBuf,
    pub messages: Vec<Message>,
    /// The latest todo list that pairs with a real `todo` tool call.
    pub todos: Vec<TodoItem>,
    /// From the last turn end; `running` while a turn has no end (see `interrupted`).
    pub status: SessionStatus,
    /// Highest turn number recorded.
    pub turns: u64,
    /// The last turn started and never ended (the process died, or it is still running), or
    /// was marked interrupted on resume.
    pub interrupted: bool,
    pub skipped_lines: usize,
    pub title: String,
    pub updated: DateTime<Utc>,
    /// Sum of the usage records.
    pub usage: Option<Usage>,
    /// Sum of the usage records since the last `turn_start`.
    pub last_turn_usage: Option<Usage>,
}

fn open(path: &Path) -> Result<File, HistoryError> {
    File::open(path).map_err(|e| HistoryError::io("open the session log", path, e))
}

/// Reads a whole log.
pub fn read_session(path: &Path) -> Result<SessionLog, HistoryError> {
    let mut bytes = Vec::new();
    open(path)?
        .read_to_end(&mut bytes)
        .map_err(|e| HistoryError::io("read the session log", path, e))?;
    let mut scan = ScanState::default();
    let mut messages = Vec::new();
    let mut first = true;
    let mut bad_header = false;
    let mut first_ts = None;
    let mut last_turn_usage = None;
    scan.feed_bytes(&bytes, 0, true, |record| {
        if first {
            first = false;
            bad_header = !matches!(record, Record::Session(_));
            first_ts = Some(record.ts());
        }
        match record {
            Record::Message { message, .. } => messages.push(message),
            Record::TurnStart { .. } => last_turn_usage = None,
            Record::Usage { usage, .. } => Usage::accumulate(&mut last_turn_usage, &usage),
            Record::Session(_) | Record::Todo { .. } | Record::TurnEnd { .. } => {}
        }
    });
    let header = match (&scan.header, bad_header) {
        (Some(header), false) => header.clone(),
        (Some(_), true) | (None, _) => {
            // A damaged line 1 with readable records after it: keep the conversation.
            match (first, recovered_header(path, first_ts)) {
                (false, Some(header)) => {
                    scan.header = Some(header.clone());
                    header
                }
                (true, _) | (false, None) => {
                    return Err(HistoryError::NotASession {
                        path: path.to_path_buf(),
                        reason: "it has no session header on its first line".into(),
                    });
                }
            }
        }
    };
    Ok(SessionLog {
        status: scan.status(),
        interrupted: scan.interrupted(),
        updated: scan.updated.unwrap_or(header.created),
        header,
        path: path.to_path_buf(),
        messages,
        todos: scan.todos.take().unwrap_or_default(),
        turns: scan.turns,
        skipped_lines: usize::try_from(scan.skipped_lines).unwrap_or(usize::MAX),
        title: scan.title,
        usage: scan.usage,
        last_turn_usage,
    })
}

/// A stand-in header for a log whose line 1 is damaged (torn, garbage) or missing, when its
/// file name is a session id: the id comes from the name, `created` from the id's UUID v7
/// time (else the first record's), and provider, model and workdir are unknown (empty).
/// None when the name is not a UUID (then it is not a Talaria log).
pub fn recovered_header(path: &Path, first_ts: Option<DateTime<Utc>>) -> Option<Header> {
    let stem = path.file_stem()?.to_str()?;
    let id = uuid::Uuid::parse_str(stem).ok()?;
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
    })
}

/// Size of the blocks read backwards by `latest_todos`.
const BLOCK: u64 = 64 * 1024;

/// The latest trusted todo list, read backwards from the end of the file: the cost depends on
/// how far back the snapshot is, not on how long the log is before it. A snapshot is trusted
/// when a `todo` tool result with its id follows it, or an assistant message that made a
/// `todo` call with its id precedes it. No snapshot: an empty list.
pub fn latest_todos(path: &Path) -> Result<Vec<TodoItem>, HistoryError> {
    let mut file = open(path)?;
    let len = file
        .seek(SeekFrom::End(0))
        .map_err(|e| HistoryError::io("read the session log", path, e))?;
    let mut search = BackwardSearch::default();
    let mut pos = len;
    // Bytes of a line that started before `pos` and whose beginning is not read yet.
    let mut carry: Vec<u8> = Vec::new();
    while pos > 0 {
        let start = pos.saturating_sub(BLOCK);
        let size = usize::try_from(pos - start).unwrap_or(0);
        let mut block = vec![0u8; size];
        file.seek(SeekFrom::Start(start))
            .and_then(|_| file.read_exact(&mut block))
            .map_err(|e| HistoryError::io("read the session log", path, e))?;
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
            | Record::Usage { .. } => None,
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
    let mut file = open(path)?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| HistoryError::io("read the session log", path, e))?;
    let mut line = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = file
            .read(&mut chunk)
            .map_err(|e| HistoryError::io("read the session log", path, e))?;
        if n == 0 {
            break;
        }
        if let Some(i) = chunk[..n].iter().position(|b| *b == b'\n') {
            line.extend_from_slice(&chunk[..i]);
            break;
        }
        line.extend_from_slice(&chunk[..n]);
    }
    match parse_line(&line) {
        Line::Record(record) => match *record {
            Record::Todo { todos, .. } => Ok(Some(todos)),
            Record::Session(_)
            | Record::Message { .. }
            | Record::TurnStart { .. }
            | Record::TurnEnd { .. }
            | Record::Usage { .. } => Ok(None),
        },
        Line::Unknown | Line::Blank | Line::Unreadable => Ok(None),
    }
}
