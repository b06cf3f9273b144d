//! The one event type that every front end consumes: the desktop Channel and `exec --json`.
//! No Tauri here: the desktop adapter forwards these values as they are.

use serde::{Deserialize, Serialize};

use crate::agent::Decision;
use crate::message::ToolImage;
use crate::safety::AskKind;
use crate::todo::TodoItem;

/// Why a turn failed. Serialized in snake_case; `exec --json` prints it as `kind`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Auth,
    Http,
    Network,
    Timeout,
    Stall,
    Protocol,
    MaxIterations,
    Io,
    Config,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::Http => "http",
            ErrorKind::Network => "network",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Stall => "stall",
            ErrorKind::Protocol => "protocol",
            ErrorKind::MaxIterations => "max_iterations",
            ErrorKind::Io => "io",
            ErrorKind::Config => "config",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Token counts as the provider reported them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_read_tokens: Option<u64>,
}

impl Usage {
    /// Adds another call's counts (cache reads stay unknown only while both are unknown).
    pub fn add(&mut self, more: &Usage) {
        self.input_tokens += more.input_tokens;
        self.output_tokens += more.output_tokens;
        self.cache_read_tokens = match (self.cache_read_tokens, more.cache_read_tokens) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
    }

    /// `more` added to `total`, which starts at nothing.
    pub fn accumulate(total: &mut Option<Usage>, more: &Usage) {
        match total {
            None => *total = Some(more.clone()),
            Some(sum) => sum.add(more),
        }
    }
}

/// Everything a turn tells its front end, in order. Scripts read these as `exec --json` lines
/// (docs/cli.md, "Events"): add types and fields freely, but never rename or remove one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// First event of a run: which session and which log file.
    Session { id: String, path: String },
    /// A turn began (the user's message is recorded by then). `message_index` is the user
    /// message's number in the session (0 is the first), as the log counts them: editing it
    /// later forks the session there.
    TurnStarted {
        turn: u64,
        #[serde(default)]
        message_index: u64,
    },
    /// Streamed reply text; a turn's tokens concatenate to the assistant's text.
    Token { text: String },
    /// Streamed thinking, where the provider sends it.
    Reasoning { text: String },
    /// A complete tool call, before it runs. `arguments` is parsed JSON, or the raw string.
    ToolCall {
        id: String,
        name: String,
        arguments: serde_json::Value,
        /// The MCP server the tool belongs to (MCP tools only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<String>,
    },
    /// After the tool ran, or was refused or cancelled.
    ToolResult {
        id: String,
        name: String,
        content: String,
        is_error: bool,
        /// The MCP server that ran the tool (MCP tools only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<String>,
        /// Images the tool returned.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        images: Vec<ToolImage>,
    },
    /// The full todo list, whenever it changes.
    Todo { todos: Vec<TodoItem> },
    /// A tool call waits for the user's decision (answer with the same `id`): a command that
    /// is not known read-only, a secret, or running a command again outside the sandbox.
    ApprovalRequest {
        id: String,
        tool_call_id: String,
        /// The command line (terminal), else a one-line summary of the call.
        command: String,
        reason: String,
        kind: AskKind,
        /// The tool's name.
        tool: String,
        /// The answers to offer, in order.
        choices: Vec<Decision>,
    },
    /// Something the user should know once (e.g. there is no sandbox on this system).
    Notice { message: String },
    /// Before a retry wait.
    Retry {
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
        reason: String,
    },
    /// Writing the session log failed; the session goes on in memory and the writer retries.
    StorageError {
        kind: ErrorKind,
        message: String,
        path: String,
    },
    /// Last event of a successful turn.
    Done {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        usage: Option<Usage>,
    },
    /// Last event of a failed turn.
    Error { kind: ErrorKind, message: String },
    /// Last event of a cancelled turn.
    Cancelled,
}

impl Event {
    /// True for the events that end a turn.
    pub fn is_terminal(&self) -> bool {
        match self {
            Event::Done { .. } | Event::Error { .. } | Event::Cancelled => true,
            Event::Session { .. }
            | Event::TurnStarted { .. }
            | Event::Token { .. }
            | Event::Reasoning { .. }
            | Event::ToolCall { .. }
            | Event::ToolResult { .. }
            | Event::Todo { .. }
            | Event::ApprovalRequest { .. }
            | Event::Notice { .. }
            | Event::Retry { .. }
            | Event::StorageError { .. } => false,
        }
    }
}

/// Where a turn sends its events. Implementations must not block: the desktop forwards to a
/// Channel, `exec` to a printer task.
pub trait EventSink: Send + Sync {
    fn emit(&self, event: Event);

    /// Shortest gap this sink wants between two `Token` events (never below 16 ms): a sink
    /// whose every event is costly asks for fewer, larger ones.
    fn token_interval(&self) -> std::time::Duration {
        std::time::Duration::ZERO
    }
}

impl<F> EventSink for F
where
    F: Fn(Event) + Send + Sync,
{
    fn emit(&self, event: Event) {
        self(event)
    }
}

impl EventSink for tokio::sync::mpsc::UnboundedSender<Event> {
    fn emit(&self, event: Event) {
        // A closed receiver means the front end is gone; the turn still finishes and records.
        let _ = self.send(event);
    }
}
