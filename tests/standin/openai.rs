//! Chat Completions streaming, byte for byte as api.openai.com sends it (plus
//! `reasoning_content` as DeepSeek / llama.cpp send it).

use serde_json::{Value, json};

use super::encode::{Ctx, Drip, Encoded};
use super::reply::{Item, Reply, split_pieces, split_words};

/// Bytes of one `data:` event.
pub fn data(v: &Value) -> Vec<u8> {
    format!("data: {v}\n\n").into_bytes()
}

/// An SSE comment, what proxies and llama.cpp send to keep a quiet stream alive.
pub const KEEPALIVE: &[u8] = b": keep-alive\n\n";

pub struct Chunker {
    pub id: String,
    pub created: i64,
    pub model: String,
    pub include_usage: bool,
}

impl Chunker {
    pub fn chunk(&self, delta: Value, finish: Option<&str>) -> Vec<u8> {
        let mut v = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_standin",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            v["usage"] = Value::Null;
        }
        data(&v)
    }

    fn usage(&self, prompt: u64, completion: u64) -> Vec<u8> {
        data(&json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": "fp_standin",
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            },
        }))
    }
}

pub fn encode(reply: &Reply, ctx: &Ctx) -> Encoded {
    let c = Chunker {
        id: format!("chatcmpl-standin{}", ctx.seq),
        created: ctx.created,
        model: ctx.model.clone(),
        include_usage: ctx.include_usage,
    };
    let mut events = vec![c.chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        None,
    )];
    let mut completion = 0u64;
    let mut any_tool = false;
    let mut tool_index = 0usize;
    let mut i = 0;
    while i < reply.items.len() {
        match &reply.items[i] {
            Item::Text { tokens, text } => {
                let toks = match text {
                    Some(t) if tokens.is_empty() => split_words(t),
                    _ => tokens.clone(),
                };
                for t in toks {
                    completion += 1;
                    events.push(c.chunk(json!({"content": t}), None));
                }
            }
            Item::Reasoning { tokens } => {
                for t in tokens {
                    completion += 1;
                    events.push(c.chunk(json!({"reasoning_content": t}), None));
                }
            }
            Item::Thinking { text, .. } => {
                for t in split_words(text) {
                    completion += 1;
                    events.push(c.chunk(json!({"reasoning_content": t}), None));
                }
            }
            Item::ToolCall { .. } => {
                // A run of consecutive calls is one set of parallel calls: fragments interleave.
                let mut group = Vec::new();
                while let Some(Item::ToolCall {
                    id,
                    name,
                    arguments,
                }) = reply.items.get(i)
                {
                    group.push((tool_index, id, name, split_pieces(arguments, 7)));
                    tool_index += 1;
                    i += 1;
                }
                i -= 1;
                any_tool = true;
                let rounds = group.iter().map(|g| g.3.len()).max().unwrap_or(0) + 1;
                for round in 0..rounds {
                    for (index, id, name, pieces) in &group {
                        if round == 0 {
                            events.push(c.chunk(
                                json!({"tool_calls": [{
                                    "index": index, "id": id, "type": "function",
                                    "function": {"name": name, "arguments": ""},
                                }]}),
                                None,
                            ));
                        } else if let Some(p) = pieces.get(round - 1) {
                            completion += 1;
                            events.push(c.chunk(
                                json!({"tool_calls": [{"index": index, "function": {"arguments": p}}]}),
                                None,
                            ));
                        }
                    }
                }
            }
            Item::ErrorInStream { message } => {
                events.push(data(&json!({"error": {
                    "message": message, "type": "server_error", "param": null, "code": null,
                }})));
                let n = events.len();
                return Encoded {
                    events,
                    ending_at: n,
                    drip_prefix: Vec::new(),
                    drip: Drip::Openai(c),
                };
            }
            Item::ErrorEvent {
                error_type,
                message,
            } => {
                events.push(data(&json!({"error": {
                    "message": message, "type": error_type, "param": null, "code": null,
                }})));
                let n = events.len();
                return Encoded {
                    events,
                    ending_at: n,
                    drip_prefix: Vec::new(),
                    drip: Drip::Openai(c),
                };
            }
        }
        i += 1;
    }
    let ending_at = events.len();
    let finish = if any_tool { "tool_calls" } else { "stop" };
    events.push(c.chunk(json!({}), Some(finish)));
    let (prompt, completion) = reply.usage.unwrap_or((ctx.prompt_estimate, completion));
    events.push(c.usage(prompt, completion));
    events.push(b"data: [DONE]\n\n".to_vec());
    Encoded {
        events,
        ending_at,
        drip_prefix: Vec::new(),
        drip: Drip::Openai(c),
    }
}

/// The non-streaming `chat.completion` object for the same reply (when `stream` is not true).
pub fn complete(reply: &Reply, ctx: &Ctx) -> Value {
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut calls = Vec::new();
    let mut completion = 0u64;
    for item in &reply.items {
        match item {
            Item::Text { tokens, text } => {
                if tokens.is_empty() {
                    content.push_str(text.as_deref().unwrap_or(""));
                } else {
                    content.push_str(&tokens.concat());
                }
                completion += 1;
            }
            Item::Reasoning { tokens } => reasoning.push_str(&tokens.concat()),
            Item::Thinking { text, .. } => reasoning.push_str(text),
            Item::ToolCall {
                id,
                name,
                arguments,
            } => calls.push(json!({"id": id, "type": "function",
                "function": {"name": name, "arguments": arguments}})),
            Item::ErrorInStream { .. } | Item::ErrorEvent { .. } => {}
        }
    }
    let (prompt, completion) = reply.usage.unwrap_or((ctx.prompt_estimate, completion));
    let mut message = json!({"role": "assistant", "content": if content.is_empty() && !calls.is_empty() { Value::Null } else { Value::from(content) }, "refusal": null});
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::from(reasoning);
    }
    let finish = if calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    if !calls.is_empty() {
        message["tool_calls"] = Value::from(calls);
    }
    json!({
        "id": format!("chatcmpl-standin{}", ctx.seq),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    })
}

/// `{"error": {...}}` as OpenAI returns it with a non-2xx status.
pub fn error_body(status: u16, message: Option<&str>) -> Value {
    let (msg, typ, code) = match status {
        400 => ("Invalid request.", "invalid_request_error", Value::Null),
        401 => (
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            Value::from("invalid_api_key"),
        ),
        403 => (
            "You are not allowed to access this resource.",
            "invalid_request_error",
            Value::Null,
        ),
        404 => (
            "The model does not exist or you do not have access to it.",
            "invalid_request_error",
            Value::from("model_not_found"),
        ),
        429 => (
            "Rate limit reached for requests. Please try again in 2s.",
            "requests",
            Value::from("rate_limit_exceeded"),
        ),
        503 => (
            "The engine is currently overloaded, please try again later.",
            "server_error",
            Value::Null,
        ),
        _ => (
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            Value::Null,
        ),
    };
    json!({"error": {"message": message.unwrap_or(msg), "type": typ, "param": null, "code": code}})
}

/// Turn `split_words` output for drip tokens.
pub fn drip_event(c: &Chunker, k: usize) -> Vec<u8> {
    c.chunk(json!({"content": format!("drip{k} ")}), None)
}
