//! A session as text, Markdown or JSON (`sessions show`, `sessions export`, the app's Export).
//! The conversation streams from the log one line at a time, so a session of any size is
//! written with bounded memory; with `tail`, only its newest messages are read at all. The
//! output depends only on the session's text, so it is the same whether the log is stored
//! plain or compressed.

use std::io::Write;
use std::path::Path;

use crate::history::error::HistoryError;
use crate::history::index::{Index, SessionSummary};
use crate::history::reader::{SessionStatus, for_each_message};
use crate::history::view;
use crate::message::Message;
use crate::todo::{TodoItem, TodoStatus};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A plain transcript (`sessions show`).
    Text,
    Markdown,
    /// The object of `sessions show --json`.
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    History(#[from] HistoryError),
    /// Writing the output failed (a closed pipe, a full disk).
    #[error("could not write the export: {0}")]
    Write(#[from] std::io::Error),
}

/// Everything written besides the messages.
struct Frame<'a> {
    session: &'a SessionSummary,
    todos: Vec<TodoItem>,
    /// With `tail`: the number of the first message written.
    first_index: Option<u64>,
}

/// Writes session `session` (its index row brought up to date, see `view::fresh_summary`).
pub fn write_session(
    index: &Index,
    session: &SessionSummary,
    format: Format,
    tail: Option<u64>,
    out: &mut dyn Write,
) -> Result<(), ExportError> {
    let frame = Frame {
        session,
        todos: view::todos(index, session)?,
        first_index: None,
    };
    match tail {
        Some(count) => {
            let page = view::tail(index, session, count)?;
            let frame = Frame {
                first_index: Some(page.first_index),
                ..frame
            };
            let mut writer = Writer::start(format, &frame, out)?;
            for message in &page.messages {
                writer.message(message, out)?;
            }
            writer.finish(&frame, out)
        }
        None => {
            let mut writer = Writer::start(format, &frame, out)?;
            let mut failed: Option<std::io::Error> = None;
            for_each_message(
                Path::new(&session.path),
                0,
                0,
                0..u64::MAX,
                |_, message| match writer.message(&message, out) {
                    Ok(()) => true,
                    Err(ExportError::Write(error)) => {
                        failed = Some(error);
                        false
                    }
                    Err(ExportError::History(_)) => false,
                },
            )?;
            if let Some(error) = failed {
                return Err(ExportError::Write(error));
            }
            writer.finish(&frame, out)
        }
    }
}

/// Writes one format, message by message.
struct Writer {
    format: Format,
    written: usize,
    /// JSON: what follows the messages array.
    json_tail: String,
}

/// Stands for the messages array in the JSON object while the rest is laid out.
const MESSAGES_SLOT: &str = "\u{0}messages\u{0}";
/// `MESSAGES_SLOT` as serde_json writes it.
const SLOT_JSON: &str = "\"\\u0000messages\\u0000\"";

impl Writer {
    fn start(
        format: Format,
        frame: &Frame<'_>,
        out: &mut dyn Write,
    ) -> Result<Writer, ExportError> {
        let mut json_tail = String::new();
        match format {
            Format::Json => {
                let object = session_object(frame);
                let text = serde_json::to_string_pretty(&object)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                let (head, tail) = text.split_once(SLOT_JSON).unwrap_or((&text, ""));
                out.write_all(head.as_bytes())?;
                json_tail = tail.to_string();
            }
            Format::Markdown => out.write_all(markdown_head(frame).as_bytes())?,
            Format::Text => out.write_all(text_head(frame).as_bytes())?,
        }
        Ok(Writer {
            format,
            written: 0,
            json_tail,
        })
    }

    fn message(&mut self, message: &Message, out: &mut dyn Write) -> Result<(), ExportError> {
        match self.format {
            Format::Json => {
                let item = serde_json::to_string_pretty(message)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                // The layout serde_json's pretty printer gives an array two levels deep.
                let mut text = String::from(if self.written == 0 { "[\n" } else { ",\n" });
                for (i, line) in item.lines().enumerate() {
                    if i > 0 {
                        text.push('\n');
                    }
                    text.push_str("    ");
                    text.push_str(line);
                }
                out.write_all(text.as_bytes())?;
            }
            Format::Markdown => out.write_all(markdown_message(message).as_bytes())?,
            Format::Text => out.write_all(text_message(message).as_bytes())?,
        }
        self.written += 1;
        Ok(())
    }

    fn finish(self, frame: &Frame<'_>, out: &mut dyn Write) -> Result<(), ExportError> {
        match self.format {
            Format::Json => {
                let close = if self.written == 0 { "[]" } else { "\n  ]" };
                out.write_all(close.as_bytes())?;
                out.write_all(self.json_tail.as_bytes())?;
                out.write_all(b"\n")?;
            }
            Format::Markdown => out.write_all(markdown_todos(&frame.todos).as_bytes())?,
            Format::Text => out.write_all(text_todos(&frame.todos).as_bytes())?,
        }
        out.flush()?;
        Ok(())
    }
}

/// A turn without its end: still running, or interrupted.
fn interrupted(session: &SessionSummary) -> bool {
    matches!(
        session.status,
        SessionStatus::Running | SessionStatus::Interrupted
    )
}

/// The `show --json` object, with `MESSAGES_SLOT` where the messages go.
fn session_object(frame: &Frame<'_>) -> serde_json::Value {
    let s = frame.session;
    let mut object = serde_json::json!({
        "id": s.id,
        "path": s.log,
        "title": s.title,
        "created": s.created.to_rfc3339(),
        "updated": s.updated.to_rfc3339(),
        "provider": s.provider,
        "model": s.model,
        "workdir": s.workdir,
        "status": s.status.as_str(),
        "interrupted": interrupted(s),
        "turns": s.turns,
        "messages": MESSAGES_SLOT,
        "todos": frame.todos,
        "usage": s.usage,
        "skipped_lines": s.skipped_lines,
        "pinned": s.pinned,
        "archived": s.archived,
    });
    if let Some(origin) = &s.forked_from {
        object["forked_from"] = serde_json::json!(origin);
    }
    if let Some(first) = frame.first_index {
        object["first_index"] = serde_json::json!(first);
        object["total_messages"] = serde_json::json!(s.message_count);
    }
    object
}

pub fn title_or_untitled(title: &str) -> &str {
    if title.is_empty() {
        "(untitled)"
    } else {
        title
    }
}

fn todo_mark(status: TodoStatus) -> &'static str {
    match status {
        TodoStatus::Pending => "[ ]",
        TodoStatus::InProgress => "[~]",
        TodoStatus::Completed => "[x]",
        TodoStatus::Cancelled => "[-]",
    }
}

/// A code fence longer than any run of backticks in `text`.
fn fence(text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    "`".repeat((longest + 1).max(3))
}

fn earlier_note(frame: &Frame<'_>) -> Option<String> {
    frame
        .first_index
        .filter(|first| *first > 0)
        .map(|first| format!("{first} earlier message(s) not shown"))
}

fn markdown_head(frame: &Frame<'_>) -> String {
    let s = frame.session;
    let mut md = format!("# {}\n\n", title_or_untitled(&s.title));
    md.push_str(&format!(
        "- id: `{}`\n- created: {}\n- model: {} / {}\n- status: {}{}\n",
        s.id,
        s.created.to_rfc3339(),
        s.provider,
        s.model,
        s.status.as_str(),
        if interrupted(s) { " (interrupted)" } else { "" }
    ));
    if let Some(origin) = &s.forked_from {
        md.push_str(&format!(
            "- forked from: `{}` at message {}\n",
            origin.id, origin.message_index
        ));
    }
    if s.skipped_lines > 0 {
        md.push_str(&format!(
            "- unreadable log lines skipped: {}\n",
            s.skipped_lines
        ));
    }
    if let Some(note) = earlier_note(frame) {
        md.push_str(&format!("\n*{note}*\n"));
    }
    md
}

fn markdown_message(message: &Message) -> String {
    match message {
        Message::User { content } => format!("\n## User\n\n{content}\n"),
        Message::Assistant {
            content,
            tool_calls,
            partial,
            ..
        } => {
            let mut md = String::from("\n## Assistant");
            if *partial {
                md.push_str(" (cut short)");
            }
            md.push_str("\n\n");
            if !content.is_empty() {
                md.push_str(content);
                md.push('\n');
            }
            for call in tool_calls {
                let args = serde_json::to_string_pretty(&call.arguments_value())
                    .unwrap_or_else(|_| call.arguments.clone());
                let f = fence(&args);
                md.push_str(&format!(
                    "\n**Tool call** `{}` ({})\n\n{f}json\n{args}\n{f}\n",
                    call.name, call.id
                ));
            }
            md
        }
        Message::Tool {
            tool_call_id,
            name,
            content,
            is_error,
            mcp,
        } => {
            let f = fence(content);
            let from = match mcp {
                Some(mcp) => format!(" from MCP server `{}`", mcp.server),
                None => String::new(),
            };
            format!(
                "\n### Tool result `{name}`{from} ({tool_call_id}){}\n\n{f}\n{content}\n{f}\n",
                if *is_error { " — error" } else { "" }
            )
        }
    }
}

fn markdown_todos(todos: &[TodoItem]) -> String {
    if todos.is_empty() {
        return String::new();
    }
    let mut md = String::from("\n## Todos\n\n");
    for item in todos {
        md.push_str(&format!("- {} {}\n", todo_mark(item.status), item.content));
    }
    md
}

fn text_head(frame: &Frame<'_>) -> String {
    let s = frame.session;
    let mut t = format!(
        "session {}  {}{}  {}  {} / {}\n{}\n",
        s.id,
        s.status.as_str(),
        if interrupted(s) && s.status != SessionStatus::Interrupted {
            " (interrupted)"
        } else {
            ""
        },
        s.created.format("%Y-%m-%d %H:%M"),
        s.provider,
        s.model,
        title_or_untitled(&s.title)
    );
    if let Some(note) = earlier_note(frame) {
        t.push_str(&format!("({note})\n"));
    }
    t
}

fn text_message(message: &Message) -> String {
    match message {
        Message::User { content } => format!("\n> {}\n", content.replace('\n', "\n> ")),
        Message::Assistant {
            content,
            tool_calls,
            partial,
            ..
        } => {
            let mut t = String::new();
            if !content.is_empty() {
                t.push_str(&format!(
                    "\n{content}{}\n",
                    if *partial { " [cut short]" } else { "" }
                ));
            }
            for call in tool_calls {
                t.push_str(&format!("  [tool call] {} {}\n", call.name, call.arguments));
            }
            t
        }
        Message::Tool {
            name,
            content,
            is_error,
            ..
        } => {
            let short: String = content.chars().take(200).collect();
            let more = if content.chars().count() > 200 {
                "…"
            } else {
                ""
            };
            format!(
                "  [{}] {name}: {}{more}\n",
                if *is_error {
                    "tool error"
                } else {
                    "tool result"
                },
                short.replace('\n', " ")
            )
        }
    }
}

fn text_todos(todos: &[TodoItem]) -> String {
    if todos.is_empty() {
        return String::new();
    }
    let mut t = String::from("\nTodos:\n");
    for item in todos {
        t.push_str(&format!("  {} {}\n", todo_mark(item.status), item.content));
    }
    t
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_is_written_as_expected() {
        assert_eq!(serde_json::to_string(MESSAGES_SLOT).unwrap(), SLOT_JSON);
    }
}
