//! The conversation in one provider-neutral shape: what the session log stores, what
//! providers translate to their wire format, and what `sessions show` prints.

use serde::{Deserialize, Serialize};

/// One thinking block, kept with its signature because Anthropic requires it sent back as is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Thinking {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Anthropic's `redacted_thinking` payload, when the block came redacted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redacted: Option<String>,
}

/// A tool call as the model made it. `arguments` is the raw JSON text the model produced,
/// kept verbatim so invalid JSON can be reported back to the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl ToolCall {
    /// Parsed arguments, or the raw string when they are not valid JSON.
    pub fn arguments_value(&self) -> serde_json::Value {
        serde_json::from_str(&self.arguments)
            .unwrap_or_else(|_| serde_json::Value::String(self.arguments.clone()))
    }
}

/// An image a tool returned (MCP tools can), passed to providers that take images in tool
/// results and shown on the tool card.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolImage {
    pub mime_type: String,
    /// Base64, as the tool sent it.
    pub data: String,
}

/// The result text of a tool call that was stopped, or never ran, because the user cancelled.
pub const CANCELLED_BY_USER: &str = "cancelled by the user";

fn is_false(value: &bool) -> bool {
    !*value
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    User {
        content: String,
    },
    Assistant {
        content: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        thinking: Vec<Thinking>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
        /// Cut short by a cancel or an error; the text is what had streamed by then.
        #[serde(default, skip_serializing_if = "is_false")]
        partial: bool,
    },
    Tool {
        tool_call_id: String,
        name: String,
        content: String,
        #[serde(default, skip_serializing_if = "is_false")]
        is_error: bool,
        /// Set for an MCP tool: its server, and the images it returned. Boxed, so the
        /// results of built-in tools stay small.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mcp: Option<Box<McpResult>>,
    },
}

/// What an MCP tool's result adds to a tool message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct McpResult {
    /// The server's name in mcp.json.
    pub server: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ToolImage>,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Message::User {
            content: content.into(),
        }
    }

    /// A built-in tool's result (no server, no images).
    pub fn tool_result(
        tool_call_id: impl Into<String>,
        name: impl Into<String>,
        content: impl Into<String>,
        is_error: bool,
    ) -> Self {
        Message::Tool {
            tool_call_id: tool_call_id.into(),
            name: name.into(),
            content: content.into(),
            is_error,
            mcp: None,
        }
    }

    pub fn role(&self) -> &'static str {
        match self {
            Message::User { .. } => "user",
            Message::Assistant { .. } => "assistant",
            Message::Tool { .. } => "tool",
        }
    }

    pub fn content(&self) -> &str {
        match self {
            Message::User { content }
            | Message::Assistant { content, .. }
            | Message::Tool { content, .. } => content,
        }
    }
}

/// Where a page of a conversation that should start at `start` really starts: moved back over
/// tool results, so a page never begins with results whose call is on the page before.
pub fn page_start(messages: &[Message], start: usize) -> usize {
    let mut start = start.min(messages.len());
    while start > 0 && matches!(messages.get(start), Some(Message::Tool { .. })) {
        start -= 1;
    }
    start
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool() -> Message {
        Message::tool_result("c", "todo", "", false)
    }

    fn assistant() -> Message {
        Message::Assistant {
            content: String::new(),
            thinking: Vec::new(),
            tool_calls: Vec::new(),
            partial: false,
        }
    }

    #[test]
    fn pages_never_start_with_tool_results() {
        let messages = vec![
            Message::user("a"),
            assistant(),
            tool(),
            tool(),
            Message::user("b"),
        ];
        assert_eq!(page_start(&messages, 3), 1);
        assert_eq!(page_start(&messages, 2), 1);
        assert_eq!(page_start(&messages, 4), 4);
        assert_eq!(page_start(&messages, 0), 0);
        assert_eq!(page_start(&messages, 99), 5);
    }
}
