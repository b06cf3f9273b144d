//! The records of a session log, one JSON object per line. Every record has `type`; every
//! record after the header has `ts` (RFC 3339, UTC). See docs/session-format.md.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::{ErrorKind, Usage};
use crate::message::Message;
use crate::todo::TodoItem;

/// Bumped only for changes an older reader would misread; new record types or fields do not
/// need a bump (readers ignore what they do not know).
pub const FORMAT_VERSION: u32 = 1;

/// Line 1 of every log (`"type":"session"`). `created` is its timestamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    pub id: String,
    pub created: DateTime<Utc>,
    pub provider: String,
    pub model: String,
    pub workdir: String,
    pub version: u32,
    /// Set when this session is a fork: where its copied history came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<ForkOrigin>,
}

/// The session and message a fork started from: the fork holds a copy of the messages before
/// `message_index` of session `id`, and went on from there.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkOrigin {
    pub id: String,
    pub message_index: u64,
}

impl Header {
    /// A new session: a time-ordered UUID v7 id, created now, current format version.
    pub fn new(
        provider: impl Into<String>,
        model: impl Into<String>,
        workdir: impl Into<String>,
    ) -> Header {
        Header {
            id: uuid::Uuid::now_v7().to_string(),
            created: Utc::now(),
            provider: provider.into(),
            model: model.into(),
            workdir: workdir.into(),
            version: FORMAT_VERSION,
            forked_from: None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TurnStatus {
    Done,
    Cancelled,
    Error,
    /// Written on resume for a turn whose process died before it ended.
    Interrupted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TurnError {
    pub kind: ErrorKind,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    Session(Header),
    Message {
        ts: DateTime<Utc>,
        #[serde(flatten)]
        message: Message,
    },
    /// The full todo list after a change made by the `todo` tool call `tool_call_id`.
    Todo {
        ts: DateTime<Utc>,
        tool_call_id: String,
        todos: Vec<TodoItem>,
    },
    TurnStart {
        ts: DateTime<Utc>,
        turn: u64,
    },
    TurnEnd {
        ts: DateTime<Utc>,
        turn: u64,
        status: TurnStatus,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<TurnError>,
    },
    Usage {
        ts: DateTime<Utc>,
        usage: Usage,
    },
    /// The user renamed the session; an empty title goes back to the one taken from the first
    /// message.
    Title {
        ts: DateTime<Utc>,
        title: String,
    },
    /// Pinned sessions stay at the top of the list.
    Pin {
        ts: DateTime<Utc>,
        pinned: bool,
    },
    /// Archived sessions are hidden from the list unless asked for.
    Archive {
        ts: DateTime<Utc>,
        archived: bool,
    },
}

impl Record {
    pub fn message(message: Message) -> Record {
        Record::Message {
            ts: Utc::now(),
            message,
        }
    }

    pub fn todo(tool_call_id: impl Into<String>, todos: Vec<TodoItem>) -> Record {
        Record::Todo {
            ts: Utc::now(),
            tool_call_id: tool_call_id.into(),
            todos,
        }
    }

    pub fn turn_start(turn: u64) -> Record {
        Record::TurnStart {
            ts: Utc::now(),
            turn,
        }
    }

    pub fn turn_end(turn: u64, status: TurnStatus, error: Option<TurnError>) -> Record {
        Record::TurnEnd {
            ts: Utc::now(),
            turn,
            status,
            error,
        }
    }

    pub fn usage(usage: Usage) -> Record {
        Record::Usage {
            ts: Utc::now(),
            usage,
        }
    }

    pub fn title(title: impl Into<String>) -> Record {
        Record::Title {
            ts: Utc::now(),
            title: title.into(),
        }
    }

    pub fn pin(pinned: bool) -> Record {
        Record::Pin {
            ts: Utc::now(),
            pinned,
        }
    }

    pub fn archive(archived: bool) -> Record {
        Record::Archive {
            ts: Utc::now(),
            archived,
        }
    }

    /// Records about the session (its title, pin, archive state) rather than its
    /// conversation: they do not count as activity.
    pub fn is_metadata(&self) -> bool {
        match self {
            Record::Title { .. } | Record::Pin { .. } | Record::Archive { .. } => true,
            Record::Session(_)
            | Record::Message { .. }
            | Record::Todo { .. }
            | Record::TurnStart { .. }
            | Record::TurnEnd { .. }
            | Record::Usage { .. } => false,
        }
    }

    /// When the record was made (the header's `created`).
    pub fn ts(&self) -> DateTime<Utc> {
        match self {
            Record::Session(header) => header.created,
            Record::Message { ts, .. }
            | Record::Todo { ts, .. }
            | Record::TurnStart { ts, .. }
            | Record::TurnEnd { ts, .. }
            | Record::Usage { ts, .. }
            | Record::Title { ts, .. }
            | Record::Pin { ts, .. }
            | Record::Archive { ts, .. } => *ts,
        }
    }

    /// The record as one line of JSON, with its trailing newline.
    pub fn to_line(&self) -> Result<String, serde_json::Error> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        Ok(line)
    }
}

/// What one line of a log turned out to be.
#[derive(Debug)]
pub enum Line {
    Record(Box<Record>),
    /// A well-formed record of a type this build does not know (a newer writer): ignored.
    Unknown,
    /// Whitespace only: ignored, not counted.
    Blank,
    /// Torn or garbage: skipped and counted.
    Unreadable,
}

const KNOWN_TYPES: [&str; 9] = [
    "session",
    "message",
    "todo",
    "turn_start",
    "turn_end",
    "usage",
    "title",
    "pin",
    "archive",
];

/// Parses one line (without its newline).
pub fn parse_line(bytes: &[u8]) -> Line {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Line::Blank;
    }
    match serde_json::from_slice::<Record>(bytes) {
        Ok(record) => Line::Record(Box::new(record)),
        Err(_) => {
            #[derive(Deserialize)]
            struct Tagged {
                #[serde(rename = "type")]
                kind: String,
            }
            match serde_json::from_slice::<Tagged>(bytes) {
                Ok(tagged) if !KNOWN_TYPES.contains(&tagged.kind.as_str()) => Line::Unknown,
                Ok(_) | Err(_) => Line::Unreadable,
            }
        }
    }
}
