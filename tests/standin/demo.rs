//! The scripted demo conversation (`--demo`): a friendly reply with a `todo` tool call,
//! then, once the tool result is back, a short summary.

use std::time::Duration;

use serde_json::{Value, json};

use super::reply::Reply;

const PACE: Duration = Duration::from_millis(40);

fn todo_args() -> String {
    json!({
        "todos": [
            {"id": "1", "content": "Look around the project", "status": "completed"},
            {"id": "2", "content": "Stream a reply with a tool call", "status": "in_progress"},
            {"id": "3", "content": "Summarise what happened", "status": "pending"},
        ],
        "merge": false,
    })
    .to_string()
}

const HELLO: &str = "Hi! I'm the Talaria stand-in model, running locally with no API key. \
I'll make a short plan as a todo list so you can see tool calls at work.";

const SUMMARY: &str = "All set. I created a todo list with 3 items: one done, one in progress \
and one pending. That's the whole demo: streamed text, a tool call and a todo list. \
Point Talaria at a real provider in Settings when you are ready.";

fn seq(body: &Value) -> usize {
    body.get("messages")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// OpenAI: after a `tool` message, the summary; else reasoning + text + todo call.
pub fn openai(body: &Value) -> Reply {
    let last_is_tool = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("role"))
        .and_then(Value::as_str)
        == Some("tool");
    if last_is_tool {
        Reply::openai().text(SUMMARY).delay(PACE)
    } else {
        Reply::openai()
            .reasoning("The user wants a demo. A todo list shows tools best.")
            .text(HELLO)
            .tool_call(&format!("call_demo_{}", seq(body)), "todo", &todo_args())
            .delay(PACE)
    }
}

/// Anthropic: after a user message holding a tool_result, the summary; else text + todo.
pub fn anthropic(body: &Value) -> Reply {
    let last_is_result = body
        .get("messages")
        .and_then(Value::as_array)
        .and_then(|m| m.last())
        .and_then(|m| m.get("content"))
        .and_then(Value::as_array)
        .is_some_and(|blocks| {
            blocks
                .iter()
                .any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
    if last_is_result {
        Reply::anthropic().text(SUMMARY).delay(PACE)
    } else {
        Reply::anthropic()
            .thinking(
                "The user wants a demo. A todo list shows tools best.",
                "standin-demo-signature",
            )
            .text(HELLO)
            .tool_use(&format!("toolu_demo_{}", seq(body)), "todo", &todo_args())
            .delay(PACE)
    }
}
