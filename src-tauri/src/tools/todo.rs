//! The `todo` tool over the session's in-memory TodoStore (hermes-agent's schema).
//! A read serializes the list held in memory: no history is scanned.

use serde::Deserialize;
use serde_json::Value;

use crate::todo::{TodoError, TodoItem, TodoStatus, TodoStore};

#[derive(Debug, thiserror::Error)]
pub enum TodoToolError {
    #[error("todos must be a list of {{id, content, status}} objects, got {0}")]
    NotAList(&'static str),
    #[error("todo item {index} is not an object with id, content and status")]
    NotAnObject { index: usize },
    #[error(
        "todo item {index} has no id; give every item a short unique id such as \"1\" or \"tests\""
    )]
    MissingId { index: usize },
    #[error(
        "todo item {id:?} has status {status:?}; use one of pending, in_progress, completed, cancelled"
    )]
    BadStatus { id: String, status: String },
    #[error("new todo item {id:?} has no content; say what the task is")]
    MissingContent { id: String },
    #[error(transparent)]
    Store(#[from] TodoError),
    #[error("merge must be true or false")]
    BadMerge,
}

/// The result of a call: the JSON the model reads, and whether the list changed.
pub struct TodoResult {
    pub content: String,
    pub changed: bool,
}

#[derive(Debug, Deserialize)]
struct Args {
    #[serde(default)]
    todos: Option<Value>,
    #[serde(default)]
    merge: Option<Value>,
}

/// One item as the model sent it; in merge mode, missing fields keep their current value.
struct Patch {
    id: String,
    content: Option<String>,
    status: Option<TodoStatus>,
}

pub fn run(args: Value, store: &mut TodoStore) -> Result<TodoResult, TodoToolError> {
    let args: Args = serde_json::from_value(args).unwrap_or(Args {
        todos: None,
        merge: None,
    });
    let merge = match args.merge {
        None | Some(Value::Null) => false,
        Some(Value::Bool(merge)) => merge,
        Some(Value::String(text)) if text.eq_ignore_ascii_case("true") => true,
        Some(Value::String(text)) if text.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(TodoToolError::BadMerge),
    };
    let todos = match args.todos {
        None | Some(Value::Null) => {
            return Ok(TodoResult {
                content: render(store),
                changed: false,
            });
        }
        // Models sometimes send the list as a JSON string.
        Some(Value::String(text)) => serde_json::from_str::<Value>(&text)
            .map_err(|_| TodoToolError::NotAList("a string that is not a JSON list"))?,
        Some(other) => other,
    };
    let Value::Array(raw) = todos else {
        return Err(TodoToolError::NotAList(kind_of(&todos)));
    };
    let patches = raw
        .iter()
        .enumerate()
        .map(|(index, value)| parse_item(index, value))
        .collect::<Result<Vec<_>, _>>()?;

    let items = patches
        .into_iter()
        .map(|patch| {
            let current = if merge {
                store.items().iter().find(|item| item.id == patch.id)
            } else {
                None
            };
            let content = match (patch.content, current) {
                (Some(content), _) => content,
                (None, Some(current)) => current.content.clone(),
                (None, None) => return Err(TodoToolError::MissingContent { id: patch.id }),
            };
            let status = patch
                .status
                .or(current.map(|item| item.status))
                .unwrap_or(TodoStatus::Pending);
            Ok(TodoItem {
                id: patch.id,
                content,
                status,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;

    let before = store.clone();
    store.write(items, merge)?;
    Ok(TodoResult {
        content: render(store),
        changed: *store != before,
    })
}

fn parse_item(index: usize, value: &Value) -> Result<Patch, TodoToolError> {
    let Value::Object(map) = value else {
        return Err(TodoToolError::NotAnObject { index });
    };
    let id = match map.get("id") {
        Some(Value::String(id)) => id.trim().to_string(),
        Some(Value::Number(number)) => number.to_string(),
        _ => String::new(),
    };
    if id.is_empty() {
        return Err(TodoToolError::MissingId { index });
    }
    let content = match map.get("content") {
        Some(Value::String(text)) if !text.trim().is_empty() => Some(text.trim().to_string()),
        _ => None,
    };
    let status = match map.get("status") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(value) => Some(parse_status(value).ok_or_else(|| TodoToolError::BadStatus {
            id: id.clone(),
            status: match value {
                Value::String(text) => text.clone(),
                other => other.to_string(),
            },
        })?),
    };
    Ok(Patch {
        id,
        content,
        status,
    })
}

fn parse_status(value: &Value) -> Option<TodoStatus> {
    let text = value
        .as_str()?
        .trim()
        .to_ascii_lowercase()
        .replace(['-', ' '], "_");
    match text.as_str() {
        "pending" | "todo" => Some(TodoStatus::Pending),
        "in_progress" | "inprogress" | "active" => Some(TodoStatus::InProgress),
        "completed" | "complete" | "done" => Some(TodoStatus::Completed),
        "cancelled" | "canceled" => Some(TodoStatus::Cancelled),
        _ => None,
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The full list as JSON plus the summary line, in one JSON object.
fn render(store: &TodoStore) -> String {
    serde_json::json!({
        "todos": store.items(),
        "summary": store.summary(),
    })
    .to_string()
}
