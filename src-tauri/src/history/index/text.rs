//! What a log gives to full-text search: user and assistant text, tool call arguments and tool
//! results (the first 16 KiB of each), and todo items, for the whole log. The same function
//! serves indexing and, later, rebuilding a chunk's text for its snippet.

use std::collections::HashSet;

use crate::history::record::Record;
use crate::message::Message;

/// Longest text one chunk (one FTS row) holds, in bytes.
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Of each tool result and each tool call's arguments, this much is indexed.
pub const TOOL_TEXT_BYTES: usize = 16 * 1024;

/// One piece of searchable text and the message it belongs to.
#[derive(Debug, PartialEq, Eq)]
pub struct Piece {
    pub message: u64,
    pub text: String,
}

/// Todo items already given to search, so the full list that every snapshot repeats is
/// indexed once per change, not once per snapshot.
pub type SeenTodos = HashSet<String>;

/// The pieces of `record`. `message_count` is how many messages came before it (a message
/// record is number `message_count`; a todo snapshot belongs to the message before it).
/// `seen` is None to take every todo item (rebuilding a chunk's text).
pub fn pieces(record: &Record, message_count: u64, seen: Option<&mut SeenTodos>) -> Vec<Piece> {
    let piece = |message: u64, text: String| Piece { message, text };
    match record {
        Record::Message { message, .. } => {
            let at = message_count;
            match message {
                Message::User { content } => vec![piece(at, content.clone())],
                Message::Assistant {
                    content,
                    tool_calls,
                    ..
                } => {
                    let mut out = Vec::with_capacity(1 + tool_calls.len());
                    if !content.is_empty() {
                        out.push(piece(at, content.clone()));
                    }
                    for call in tool_calls {
                        let mut text = call.name.clone();
                        text.push(' ');
                        text.push_str(&argument_text(&call.arguments));
                        out.push(piece(at, cut(&text, TOOL_TEXT_BYTES).to_string()));
                    }
                    out
                }
                Message::Tool { content, .. } => {
                    vec![piece(at, cut(content, TOOL_TEXT_BYTES).to_string())]
                }
            }
        }
        Record::Todo { todos, .. } => {
            let at = message_count.saturating_sub(1);
            let mut seen = seen;
            todos
                .iter()
                .filter(|item| match seen.as_deref_mut() {
                    Some(seen) => seen.insert(item.content.clone()),
                    None => true,
                })
                .map(|item| piece(at, item.content.clone()))
                .collect()
        }
        Record::Session(_)
        | Record::TurnStart { .. }
        | Record::TurnEnd { .. }
        | Record::Usage { .. }
        | Record::Title { .. }
        | Record::Pin { .. }
        | Record::Archive { .. } => Vec::new(),
    }
    .into_iter()
    .filter(|p| !p.text.trim().is_empty())
    .collect()
}

/// A tool call's arguments as words: the string and number values of its JSON (keys are
/// the tool's, not the user's), or the raw text when it is not JSON. Raw JSON would glue
/// escapes to words (`\nfoo` reads as `nfoo`).
fn argument_text(arguments: &str) -> String {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(arguments) else {
        return arguments.to_string();
    };
    let mut out = String::new();
    let mut stack = vec![&value];
    while let Some(value) = stack.pop() {
        match value {
            serde_json::Value::String(text) => {
                if !out.is_empty() {
                    out.push('\n');
                }
                out.push_str(text);
            }
            serde_json::Value::Number(n) => {
                if !out.is_empty() {
                    out.push(' ');
                }
                out.push_str(&n.to_string());
            }
            serde_json::Value::Array(items) => stack.extend(items.iter().rev()),
            serde_json::Value::Object(map) => stack.extend(map.values().rev()),
            serde_json::Value::Null | serde_json::Value::Bool(_) => {}
        }
        if out.len() > TOOL_TEXT_BYTES {
            break;
        }
    }
    out
}

/// The longest prefix of `text` that is at most `max` bytes and ends on a char boundary.
pub fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// A word as search compares it: lower case, without diacritics (as SQLite's `unicode61`
/// tokenizer with `remove_diacritics 2` does).
pub fn fold(word: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    use unicode_normalization::char::is_combining_mark;
    word.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// The words of `text` as the tokenizer sees them (runs of letters and digits), each with its
/// byte range in `text`.
pub fn words(text: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut chars = text.char_indices().peekable();
    std::iter::from_fn(move || {
        let (start, _) = loop {
            let (i, c) = chars.next()?;
            if c.is_alphanumeric() {
                break (i, c);
            }
        };
        let mut end = text.len();
        while let Some(&(i, c)) = chars.peek() {
            if !c.is_alphanumeric() {
                end = i;
                break;
            }
            chars.next();
        }
        Some((start, end))
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::message::ToolCall;
    use crate::todo::{TodoItem, TodoStatus};

    #[test]
    fn tool_arguments_results_and_todos_are_searchable() {
        let call = Record::message(Message::Assistant {
            content: "Reading it".into(),
            thinking: Vec::new(),
            tool_calls: vec![ToolCall {
                id: "c1".into(),
                name: "terminal".into(),
                arguments: r#"{"command":"grep -n zebra\nsrc/main.rs","timeout":5}"#.into(),
            }],
            partial: false,
        });
        let texts: Vec<String> = pieces(&call, 3, None).into_iter().map(|p| p.text).collect();
        assert_eq!(texts[0], "Reading it");
        assert!(
            texts[1].starts_with("terminal grep -n zebra\nsrc/main.rs"),
            "{texts:?}"
        );
        let result = Record::message(Message::Tool {
            tool_call_id: "c1".into(),
            name: "terminal".into(),
            content: "x".repeat(40_000),
            is_error: false,
            mcp: None,
        });
        let piece = &pieces(&result, 4, None)[0];
        assert_eq!((piece.message, piece.text.len()), (4, TOOL_TEXT_BYTES));
        let item = |content: &str| TodoItem {
            id: content.into(),
            content: content.into(),
            status: TodoStatus::Pending,
        };
        let snapshot = Record::todo("c2", vec![item("write docs"), item("ship")]);
        let mut seen = SeenTodos::new();
        assert_eq!(pieces(&snapshot, 5, Some(&mut seen)).len(), 2);
        assert!(
            pieces(&snapshot, 6, Some(&mut seen)).is_empty(),
            "indexed once"
        );
        assert_eq!(pieces(&snapshot, 6, None)[0].message, 5);
    }

    #[test]
    fn words_and_folding_follow_the_tokenizer() {
        let text = "Café, naïve-ID_42!";
        let found: Vec<&str> = words(text).map(|(a, b)| &text[a..b]).collect();
        assert_eq!(found, ["Café", "naïve", "ID", "42"]);
        assert_eq!(fold("Café"), "cafe");
        assert_eq!(cut("héllo", 2), "h");
    }
}
