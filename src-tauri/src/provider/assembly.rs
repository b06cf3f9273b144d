//! What a stream has produced so far, shared by the provider decoders.

use crate::event::Usage;
use crate::message::{Message, Thinking, ToolCall};

use super::Completion;

/// Text, thinking and tool calls assembled from a stream.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Assembly {
    pub text: String,
    pub thinking: Vec<Thinking>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
    pub stop_reason: Option<String>,
    /// Something reached the user (text, reasoning, a tool call began): never retry after this.
    pub output_started: bool,
}

impl Assembly {
    /// What a cut-short call keeps: the text that streamed, marked partial. Thinking and
    /// unfinished tool calls are left out (a tool call without a result, or thinking without its
    /// signature, would make the next request invalid).
    pub fn partial(&self) -> Option<Message> {
        (!self.text.is_empty()).then(|| Message::Assistant {
            content: self.text.clone(),
            thinking: Vec::new(),
            tool_calls: Vec::new(),
            partial: true,
        })
    }

    pub fn into_completion(self) -> Completion {
        Completion {
            message: Message::Assistant {
                content: self.text,
                thinking: self.thinking,
                tool_calls: self.tool_calls,
                partial: false,
            },
            usage: self.usage,
            stop_reason: self.stop_reason,
        }
    }
}
