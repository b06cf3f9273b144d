//! Messages API streaming, as api.anthropic.com sends it: `event:` + `data:` pairs from
//! message_start to message_stop, with ping events in between.

use serde_json::{Value, json};

use super::encode::{Ctx, Drip, Encoded};
use super::reply::{Item, Reply, split_pieces, split_words};

pub const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// Bytes of one named event; the data carries the same `type` as the event name.
pub fn event(name: &str, v: &Value) -> Vec<u8> {
    format!("event: {name}\ndata: {v}\n\n").into_bytes()
}

fn start(index: usize, block: Value) -> Vec<u8> {
    event(
        "content_block_start",
        &json!({"type": "content_block_start", "index": index, "content_block": block}),
    )
}

fn delta(index: usize, d: Value) -> Vec<u8> {
    event(
        "content_block_delta",
        &json!({"type": "content_block_delta", "index": index, "delta": d}),
    )
}

fn stop(index: usize) -> Vec<u8> {
    event(
        "content_block_stop",
        &json!({"type": "content_block_stop", "index": index}),
    )
}

pub fn encode(reply: &Reply, ctx: &Ctx) -> Encoded {
    let (input, output_set) = match reply.usage {
        Some((i, o)) => (i, Some(o)),
        None => (ctx.prompt_estimate, None),
    };
    let mut events = vec![event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": format!("msg_standin{}", ctx.seq),
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": [],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": input, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1},
        }}),
    )];
    let mut index = 0usize;
    let mut output = 0u64;
    let mut any_tool = false;
    let mut i = 0;
    while i < reply.items.len() {
        match &reply.items[i] {
            Item::Text { .. } => {
                // Consecutive text items are one text block.
                let mut toks = Vec::new();
                while let Some(Item::Text { tokens, text }) = reply.items.get(i) {
                    match text {
                        Some(t) if tokens.is_empty() => toks.extend(split_words(t)),
                        _ => toks.extend(tokens.iter().cloned()),
                    }
                    i += 1;
                }
                i -= 1;
                events.push(start(index, json!({"type": "text", "text": ""})));
                if index == 0 {
                    events.push(PING.to_vec());
                }
                for t in toks {
                    output += 1;
                    events.push(delta(index, json!({"type": "text_delta", "text": t})));
                }
                events.push(stop(index));
                index += 1;
            }
            Item::Reasoning { tokens } => {
                thinking_block(
                    &mut events,
                    &mut output,
                    index,
                    tokens.clone(),
                    "standin-signature",
                );
                index += 1;
            }
            Item::Thinking { text, signature } => {
                thinking_block(
                    &mut events,
                    &mut output,
                    index,
                    split_words(text),
                    signature,
                );
                index += 1;
            }
            Item::ToolCall {
                id,
                name,
                arguments,
            } => {
                any_tool = true;
                events.push(start(
                    index,
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                ));
                if index == 0 {
                    events.push(PING.to_vec());
                }
                events.push(delta(
                    index,
                    json!({"type": "input_json_delta", "partial_json": ""}),
                ));
                for p in split_pieces(arguments, 7) {
                    output += 1;
                    events.push(delta(
                        index,
                        json!({"type": "input_json_delta", "partial_json": p}),
                    ));
                }
                events.push(stop(index));
                index += 1;
            }
            Item::ErrorEvent {
                error_type,
                message,
            } => {
                events.push(error_event(error_type, message));
                let n = events.len();
                return Encoded {
                    events,
                    ending_at: n,
                    drip_prefix: Vec::new(),
                    drip: Drip::Anthropic { index },
                };
            }
            Item::ErrorInStream { message } => {
                events.push(error_event("api_error", message));
                let n = events.len();
                return Encoded {
                    events,
                    ending_at: n,
                    drip_prefix: Vec::new(),
                    drip: Drip::Anthropic { index },
                };
            }
        }
        i += 1;
    }
    let ending_at = events.len();
    let stop_reason = if any_tool { "tool_use" } else { "end_turn" };
    events.push(event(
        "message_delta",
        &json!({"type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": null},
                "usage": {"output_tokens": output_set.unwrap_or(output)}}),
    ));
    events.push(event("message_stop", &json!({"type": "message_stop"})));
    Encoded {
        events,
        ending_at,
        drip_prefix: vec![start(index, json!({"type": "text", "text": ""}))],
        drip: Drip::Anthropic { index },
    }
}

fn thinking_block(
    events: &mut Vec<Vec<u8>>,
    output: &mut u64,
    index: usize,
    tokens: Vec<String>,
    signature: &str,
) {
    events.push(start(
        index,
        json!({"type": "thinking", "thinking": "", "signature": ""}),
    ));
    if index == 0 {
        events.push(PING.to_vec());
    }
    for t in tokens {
        *output += 1;
        events.push(delta(
            index,
            json!({"type": "thinking_delta", "thinking": t}),
        ));
    }
    events.push(delta(
        index,
        json!({"type": "signature_delta", "signature": signature}),
    ));
    events.push(stop(index));
}

pub fn error_event(error_type: &str, message: &str) -> Vec<u8> {
    event(
        "error",
        &json!({"type": "error", "error": {"type": error_type, "message": message}}),
    )
}

pub fn drip_event(index: usize, k: usize) -> Vec<u8> {
    delta(
        index,
        json!({"type": "text_delta", "text": format!("drip{k} ")}),
    )
}

/// The non-streaming Message object for the same reply (when `stream` is not true).
pub fn complete(reply: &Reply, ctx: &Ctx) -> Value {
    let mut content = Vec::new();
    let mut any_tool = false;
    for item in &reply.items {
        match item {
            Item::Text { tokens, text } => {
                let t = if tokens.is_empty() {
                    text.clone().unwrap_or_default()
                } else {
                    tokens.concat()
                };
                content.push(json!({"type": "text", "text": t}));
            }
            Item::Reasoning { tokens } => content.push(
                json!({"type": "thinking", "thinking": tokens.concat(), "signature": "standin-signature"}),
            ),
            Item::Thinking { text, signature } => content
                .push(json!({"type": "thinking", "thinking": text, "signature": signature})),
            Item::ToolCall {
                id,
                name,
                arguments,
            } => {
                any_tool = true;
                let input: Value = serde_json::from_str(arguments).unwrap_or_else(|_| json!({}));
                content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
            Item::ErrorInStream { .. } | Item::ErrorEvent { .. } => {}
        }
    }
    let (input, output) = reply.usage.unwrap_or((ctx.prompt_estimate, 10));
    json!({
        "id": format!("msg_standin{}", ctx.seq),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": if any_tool { "tool_use" } else { "end_turn" },
        "stop_sequence": null,
        "usage": {"input_tokens": input, "output_tokens": output},
    })
}

/// `{"type":"error","error":{...}}` as Anthropic returns it with a non-2xx status.
pub fn error_body(status: u16, message: Option<&str>) -> Value {
    let (typ, msg) = match status {
        400 => ("invalid_request_error", "Invalid request."),
        401 => ("authentication_error", "invalid x-api-key"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed number of bytes.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization. Please try again later.",
        ),
        529 => ("overloaded_error", "Overloaded"),
        _ => ("api_error", "Internal server error"),
    };
    json!({"type": "error", "error": {"type": typ, "message": message.unwrap_or(msg)}})
}
