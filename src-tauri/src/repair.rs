//! Keeping a conversation valid for both providers: it starts with the user, every tool call
//! is answered by a result right after it, no result lacks its call, no assistant message is
//! empty. The agent repairs its history after a cancel or a crash; the providers send only
//! repaired histories, so neither re-implements the pairing rules.

use crate::message::Message;

/// The synthetic result of a tool call that never finished.
pub use crate::message::CANCELLED_BY_USER as CANCELLED_RESULT;

/// Repairs `messages` in place and returns the synthetic results appended at the very end (the
/// ones a recorder can append to the log; earlier fixes only exist in memory, and are redone on
/// every load).
pub fn repair_history(messages: &mut Vec<Message>) -> Vec<Message> {
    let old = std::mem::take(messages);
    let mut out: Vec<Message> = Vec::with_capacity(old.len());
    // Calls of the latest assistant message still waiting for their result.
    let mut open: Vec<(String, String)> = Vec::new();
    for message in old {
        match message {
            Message::Tool {
                ref tool_call_id, ..
            } => {
                if let Some(pos) = open.iter().position(|(id, _)| id == tool_call_id) {
                    open.remove(pos);
                    out.push(message);
                }
                // else: a result without a call; both providers reject it, so it goes.
            }
            Message::User { .. } | Message::Assistant { .. } => {
                close_open(&mut out, &mut open);
                // Empty, or before the first user message (a log cut at its start).
                if is_empty_assistant(&message) || (out.is_empty() && message.role() != "user") {
                    continue;
                }
                if let Message::Assistant { tool_calls, .. } = &message {
                    open = tool_calls
                        .iter()
                        .map(|call| (call.id.clone(), call.name.clone()))
                        .collect();
                }
                out.push(message);
            }
        }
    }
    let before = out.len();
    close_open(&mut out, &mut open);
    let appended = out[before..].to_vec();
    *messages = out;
    appended
}

/// A repaired copy, for a request: what the providers translate to their wire formats.
pub fn repaired(messages: &[Message]) -> Vec<Message> {
    let mut copy = messages.to_vec();
    repair_history(&mut copy);
    copy
}

fn close_open(out: &mut Vec<Message>, open: &mut Vec<(String, String)>) {
    for (tool_call_id, name) in open.drain(..) {
        out.push(Message::tool_result(
            tool_call_id,
            name,
            CANCELLED_RESULT,
            true,
        ));
    }
}

/// An assistant message with nothing to send: Anthropic rejects empty text blocks.
pub(crate) fn is_empty_assistant(message: &Message) -> bool {
    match message {
        Message::Assistant {
            content,
            thinking,
            tool_calls,
            ..
        } => content.trim().is_empty() && thinking.is_empty() && tool_calls.is_empty(),
        Message::User { .. } | Message::Tool { .. } => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::message::ToolCall;

    fn assistant(calls: &[&str]) -> Message {
        Message::Assistant {
            content: String::new(),
            thinking: vec![],
            tool_calls: calls
                .iter()
                .map(|id| ToolCall {
                    id: id.to_string(),
                    name: "terminal".into(),
                    arguments: "{}".into(),
                })
                .collect(),
            partial: false,
        }
    }

    fn result(id: &str) -> Message {
        Message::tool_result(id, "terminal", "ok", false)
    }

    #[test]
    fn answers_dangling_calls_at_the_end() {
        let mut messages = vec![Message::user("hi"), assistant(&["a", "b"]), result("a")];
        let appended = repair_history(&mut messages);
        assert_eq!(appended.len(), 1);
        assert_eq!(messages.len(), 4);
        match &messages[3] {
            Message::Tool {
                tool_call_id,
                content,
                is_error,
                ..
            } => {
                assert_eq!(tool_call_id, "b");
                assert_eq!(content, CANCELLED_RESULT);
                assert!(is_error);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fixes_the_middle_and_drops_orphans_and_empties() {
        let mut messages = vec![
            Message::user("hi"),
            assistant(&["a"]),
            Message::user("again"),
            result("zzz"),
            Message::Assistant {
                content: "  ".into(),
                thinking: vec![],
                tool_calls: vec![],
                partial: true,
            },
        ];
        let appended = repair_history(&mut messages);
        assert!(appended.is_empty());
        let roles: Vec<&str> = messages.iter().map(Message::role).collect();
        assert_eq!(roles, ["user", "assistant", "tool", "user"]);
    }

    #[test]
    fn a_history_starts_with_the_user() {
        let mut messages = vec![assistant(&["a"]), result("a"), Message::user("hi")];
        repair_history(&mut messages);
        assert_eq!(messages, vec![Message::user("hi")]);
    }

    #[test]
    fn valid_history_is_unchanged() {
        let original = vec![Message::user("hi"), assistant(&["a"]), result("a")];
        let mut messages = original.clone();
        assert!(repair_history(&mut messages).is_empty());
        assert_eq!(messages, original);
    }
}
