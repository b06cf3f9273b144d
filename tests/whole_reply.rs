//! A server that answers a streaming request with one whole JSON message (LiteLLM's Anthropic
//! route with a mocked model does): read as a complete reply, for both providers.

use talaria::config::ProviderKind;
use talaria::event::{ErrorKind, Usage};
use talaria::message::{Message, ToolCall};
use talaria::provider::ModelError;

use crate::providers::{BOTH, client, hello, reasoning_of, reply, run, settings, text_of};
use crate::standin::{Reply, StandIn};

#[tokio::test]
async fn a_whole_json_message_is_a_complete_reply() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("Here is the whole answer at once.")
                .tool_call("call_1", "read_file", r#"{"path":"notes.md"}"#)
                .usage(120, 34)
                .whole(),
        );
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        let completion = result.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let request = &server.requests()[0];
        assert_eq!(
            request.body["stream"], true,
            "{kind:?}: it was asked to stream"
        );
        assert_eq!(
            text_of(&deltas),
            "Here is the whole answer at once.",
            "{kind:?}"
        );
        match &completion.message {
            Message::Assistant {
                content,
                tool_calls,
                partial,
                ..
            } => {
                assert_eq!(content, "Here is the whole answer at once.", "{kind:?}");
                assert!(!partial);
                assert_eq!(
                    tool_calls,
                    &vec![ToolCall {
                        id: "call_1".into(),
                        name: "read_file".into(),
                        arguments: r#"{"path":"notes.md"}"#.into(),
                    }],
                    "{kind:?}"
                );
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        assert_eq!(
            completion.usage,
            Some(Usage {
                input_tokens: 120,
                output_tokens: 34,
                cache_read_tokens: None,
            }),
            "{kind:?}"
        );
        let stop = completion.stop_reason.as_deref();
        match kind {
            ProviderKind::Openai => assert_eq!(stop, Some("tool_calls")),
            ProviderKind::Anthropic => assert_eq!(stop, Some("tool_use")),
        }
    }
}

#[tokio::test]
async fn a_whole_message_keeps_its_thinking() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .thinking("First I think.", "sig-whole")
                .text("Then I answer.")
                .whole(),
        );
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        let completion = result.unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        assert_eq!(reasoning_of(&deltas), "First I think.", "{kind:?}");
        match &completion.message {
            Message::Assistant {
                content, thinking, ..
            } => {
                assert_eq!(content, "Then I answer.");
                assert_eq!(thinking.len(), 1, "{kind:?}");
                assert_eq!(thinking[0].text, "First I think.");
                // Anthropic needs the signature back with the block; Chat Completions has none.
                let signature = thinking[0].signature.as_deref();
                match kind {
                    ProviderKind::Anthropic => assert_eq!(signature, Some("sig-whole")),
                    ProviderKind::Openai => assert_eq!(signature, None),
                }
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn json_that_is_not_a_reply_is_still_a_clear_protocol_error() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(Reply::raw(r#"{"status": "ok", "version": "1.2.3"}"#));
        let (result, _) = run(&client(&settings(&server, kind)), hello()).await;
        match result {
            Err(ModelError::Failed {
                kind: k, message, ..
            }) => {
                assert_eq!(k, ErrorKind::Protocol, "{kind:?}: {message}");
                assert!(
                    message.contains("instead of an event stream"),
                    "{kind:?}: {message}"
                );
            }
            other => panic!("{kind:?}: {other:?}"),
        }
        assert_eq!(server.requests().len(), 1, "{kind:?}: not retried");
    }
}

#[tokio::test]
async fn an_error_object_in_a_200_answer_says_what_the_server_said() {
    for kind in BOTH {
        let server = StandIn::start().await;
        let body = match kind {
            ProviderKind::Openai => {
                r#"{"error": {"message": "model standin-x is not loaded", "type": "invalid_request_error"}}"#
            }
            ProviderKind::Anthropic => {
                r#"{"type": "error", "error": {"type": "invalid_request_error", "message": "model standin-x is not loaded"}}"#
            }
        };
        server.push(Reply::raw(body));
        let (result, _) = run(&client(&settings(&server, kind)), hello()).await;
        match result {
            Err(ModelError::Failed { message, .. }) => {
                assert!(
                    message.contains("model standin-x is not loaded"),
                    "{kind:?}: {message}"
                );
            }
            other => panic!("{kind:?}: {other:?}"),
        }
    }
}
