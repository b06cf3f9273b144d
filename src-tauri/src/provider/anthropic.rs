//! Anthropic Messages API, streaming.

use serde_json::{Map, Value, json};

use crate::config::ProviderKind;
use crate::event::{ErrorKind, Usage};
use crate::message::{Message, Thinking, ToolCall, ToolImage};
use crate::sse::SseEvent;

use super::{
    Assembly, Completion, Decoded, Decoder, ModelInfo, ModelRequest, Provider, StreamDelta,
    StreamError, listed_models,
};

pub const API_VERSION: &str = "2023-06-01";

/// The Messages wire format.
#[derive(Clone, Copy, Debug, Default)]
pub struct Anthropic;

impl Provider for Anthropic {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Anthropic
    }

    fn request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        api_key: &str,
        req: &ModelRequest<'_>,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/v1/messages", base_url.trim_end_matches('/'));
        let mut builder = http
            .post(url)
            .header("anthropic-version", API_VERSION)
            .header("accept", "text/event-stream")
            .json(&request_body(req));
        if !api_key.is_empty() {
            builder = builder.header("x-api-key", api_key);
        }
        builder
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(AnthropicDecoder::default())
    }

    fn error_message(&self, body: &str) -> Option<String> {
        let value: Value = serde_json::from_str(body).ok()?;
        error_parts(&value).map(|(_, message)| message)
    }

    /// A `message` object: the events that stream it (each content block started whole, a
    /// tool's input as one JSON delta), its stop reason and usage, then `message_stop`.
    fn whole_reply(&self, body: &Value) -> Option<Vec<SseEvent>> {
        if body.get("type").and_then(Value::as_str) != Some("message") {
            return None;
        }
        let content = body.get("content")?.as_array()?;
        let usage = body.get("usage").cloned().unwrap_or_else(|| json!({}));
        let mut events = vec![named(
            "message_start",
            json!({"type": "message_start", "message": {"usage": usage}}),
        )];
        for (index, block) in content.iter().enumerate() {
            let start = if str_of(block, "type") == "tool_use" {
                let mut start = block.clone();
                start["input"] = json!({});
                start
            } else {
                block.clone()
            };
            events.push(named(
                "content_block_start",
                json!({"type": "content_block_start", "index": index, "content_block": start}),
            ));
            if str_of(block, "type") == "tool_use" {
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                events.push(named(
                    "content_block_delta",
                    json!({"type": "content_block_delta", "index": index,
                           "delta": {"type": "input_json_delta", "partial_json": input.to_string()}}),
                ));
            }
            events.push(named(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
        let stop_reason = match body.get("stop_reason") {
            Some(Value::String(reason)) => json!(reason),
            _ => json!("end_turn"),
        };
        events.push(named(
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason},
                   "usage": {"output_tokens": usage.get("output_tokens").cloned().unwrap_or(json!(0))}}),
        ));
        events.push(named("message_stop", json!({"type": "message_stop"})));
        Some(events)
    }

    fn models_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        api_key: &str,
    ) -> reqwest::RequestBuilder {
        // The largest page the API gives: one request lists them all.
        let url = format!("{}/v1/models?limit=1000", base_url.trim_end_matches('/'));
        let builder = http.get(url).header("anthropic-version", API_VERSION);
        if api_key.is_empty() {
            builder
        } else {
            builder.header("x-api-key", api_key)
        }
    }

    /// `{"data": [{"type": "model", "id", "display_name"}, ...], "has_more", ...}`.
    fn models(&self, body: &Value) -> Option<Vec<ModelInfo>> {
        listed_models(body, Some("display_name"))
    }
}

fn named(event: &str, data: Value) -> SseEvent {
    SseEvent {
        event: event.to_string(),
        data: data.to_string(),
        id: None,
    }
}

/// The JSON body of a streaming call.
pub fn request_body(req: &ModelRequest<'_>) -> Value {
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens.max(1),
        "messages": messages_json(req.messages),
        "stream": true,
    });
    if !req.system.is_empty() {
        body["system"] = json!(req.system);
    }
    if req.thinking_budget > 0 {
        body["thinking"] = json!({"type": "enabled", "budget_tokens": req.thinking_budget});
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|tool| {
                json!({"name": tool.name, "description": tool.description,
                       "input_schema": tool.parameters})
            })
            .collect();
    }
    body
}

/// One message on the wire while it is built. A user turn keeps its `tool_result` blocks apart
/// from the rest, because Anthropic wants them first.
struct Turn {
    assistant: bool,
    results: Vec<Value>,
    blocks: Vec<Value>,
}

/// Neutral messages as Anthropic wants them: the history repaired (starts with the user,
/// pairs complete: see `crate::repair`), then strictly alternating user/assistant, with
/// consecutive messages of one role merged (tool results and the user text after them, two user
/// messages left by a cancel), tool results first in their user message, and no empty or
/// whitespace-only text blocks.
pub fn messages_json(messages: &[Message]) -> Vec<Value> {
    let mut turns: Vec<Turn> = Vec::new();
    for message in &crate::repair::repaired(messages) {
        match message {
            Message::User { content } => push_user(&mut turns, None, Some(text_block(content))),
            Message::Tool {
                tool_call_id,
                content,
                is_error,
                mcp,
                name: _,
            } => {
                let images = mcp.as_deref().map_or(&[][..], |mcp| &mcp.images);
                let block = result_block(&wire_id(tool_call_id), content, *is_error, images);
                push_user(&mut turns, Some(block), None);
            }
            Message::Assistant {
                content,
                thinking,
                tool_calls,
                partial: _,
            } => {
                let blocks = assistant_blocks(content, thinking, tool_calls);
                // Thinking alone (a reply cancelled early) says nothing and has no calls.
                if blocks.is_empty() {
                    continue;
                }
                match turns.last_mut() {
                    Some(last) if last.assistant => last.blocks.extend(blocks),
                    Some(_) | None => turns.push(Turn {
                        assistant: true,
                        results: Vec::new(),
                        blocks,
                    }),
                }
            }
        }
    }
    turns
        .into_iter()
        .map(|turn| {
            let role = if turn.assistant { "assistant" } else { "user" };
            let mut content = turn.results;
            content.extend(turn.blocks);
            json!({"role": role, "content": content})
        })
        .collect()
}

/// Adds to the current user turn, or starts one.
fn push_user(turns: &mut Vec<Turn>, result: Option<Value>, block: Option<Value>) {
    let turn = match turns.last_mut() {
        Some(last) if !last.assistant => last,
        Some(_) | None => {
            turns.push(Turn {
                assistant: false,
                results: Vec::new(),
                blocks: Vec::new(),
            });
            let last = turns.len() - 1;
            &mut turns[last]
        }
    };
    turn.results.extend(result);
    turn.blocks.extend(block);
}

fn result_block(id: &str, content: &str, is_error: bool, images: &[ToolImage]) -> Value {
    // An empty result is sent with words: empty content has been rejected by the API.
    let content = if content.trim().is_empty() {
        "(no output)"
    } else {
        content
    };
    // Images ride in the result as image blocks, after its text.
    let content = if images.is_empty() {
        json!(content)
    } else {
        let mut blocks = vec![json!({"type": "text", "text": content})];
        blocks.extend(images.iter().map(|image| {
            json!({"type": "image", "source": {
                "type": "base64", "media_type": image.mime_type, "data": image.data,
            }})
        }));
        Value::Array(blocks)
    };
    let mut block = json!({"type": "tool_result", "tool_use_id": id, "content": content});
    if is_error {
        block["is_error"] = json!(true);
    }
    block
}

/// A tool call id as Anthropic accepts it (`^[a-zA-Z0-9_-]+$`). Ids made by other servers
/// (after a provider switch) may hold `.` or `:`; the same mapping is applied to the call and
/// its result, so they still pair.
fn wire_id(id: &str) -> String {
    if id.is_empty() {
        return "toolu_missing".to_string();
    }
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn text_block(text: &str) -> Value {
    // Empty text blocks are rejected; a user message always has some text.
    let text = if text.trim().is_empty() {
        "(empty message)"
    } else {
        text
    };
    json!({"type": "text", "text": text})
}

/// The blocks of an assistant message; empty when it has neither text nor tool calls (thinking
/// alone, from a cancelled reply, tells the model nothing and is not worth a turn).
fn assistant_blocks(content: &str, thinking: &[Thinking], tool_calls: &[ToolCall]) -> Vec<Value> {
    if content.trim().is_empty() && tool_calls.is_empty() {
        return Vec::new();
    }
    let mut blocks = Vec::new();
    for block in thinking {
        if let Some(data) = &block.redacted {
            blocks.push(json!({"type": "redacted_thinking", "data": data}));
        } else if let Some(signature) = &block.signature {
            blocks.push(json!({"type": "thinking", "thinking": block.text,
                               "signature": signature}));
        }
        // Thinking without a signature (another provider's reasoning) cannot be sent back.
    }
    if !content.trim().is_empty() {
        blocks.push(json!({"type": "text", "text": content}));
    }
    for call in tool_calls {
        // Invalid arguments were already reported to the model as an error result.
        let input = match serde_json::from_str::<Value>(&call.arguments) {
            Ok(Value::Object(map)) => Value::Object(map),
            _ => Value::Object(Map::new()),
        };
        blocks.push(
            json!({"type": "tool_use", "id": wire_id(&call.id), "name": call.name,
                           "input": input}),
        );
    }
    blocks
}

/// `(type, message)` of an Anthropic error object `{"type":"error","error":{...}}`.
fn error_parts(value: &Value) -> Option<(String, String)> {
    let error = value.get("error")?;
    let kind = error
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("error")
        .to_string();
    let message = error
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| error.to_string());
    Some((kind, message))
}

#[derive(Debug)]
enum Block {
    /// Text goes straight into the assembly.
    Text,
    Thinking {
        text: String,
        signature: String,
    },
    Redacted(String),
    ToolUse {
        id: String,
        name: String,
        json: String,
    },
    Other,
}

#[derive(Debug, Default)]
struct AnthropicDecoder {
    assembly: Assembly,
    /// Content blocks by their `index`, in the order they started.
    blocks: Vec<(u64, Block)>,
    stopped: bool,
}

fn str_of<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

impl AnthropicDecoder {
    fn start_block(&mut self, value: &Value, on_delta: &mut (dyn FnMut(StreamDelta) + Send)) {
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        let start = value.get("content_block").unwrap_or(&Value::Null);
        let block = match str_of(start, "type") {
            "text" => {
                let text = str_of(start, "text").to_string();
                self.text_delta(&text, on_delta);
                Block::Text
            }
            "thinking" => {
                let text = str_of(start, "thinking").to_string();
                if !text.is_empty() {
                    self.assembly.output_started = true;
                    on_delta(StreamDelta::Reasoning(text.clone()));
                }
                Block::Thinking {
                    text,
                    signature: str_of(start, "signature").to_string(),
                }
            }
            "redacted_thinking" => Block::Redacted(str_of(start, "data").to_string()),
            "tool_use" => {
                self.assembly.output_started = true;
                // `input` in the start event is `{}`; the real input streams as JSON pieces.
                Block::ToolUse {
                    id: str_of(start, "id").to_string(),
                    name: str_of(start, "name").to_string(),
                    json: String::new(),
                }
            }
            _ => Block::Other,
        };
        self.blocks.push((index, block));
    }

    fn text_delta(&mut self, text: &str, on_delta: &mut (dyn FnMut(StreamDelta) + Send)) {
        if !text.is_empty() {
            self.assembly.text.push_str(text);
            self.assembly.output_started = true;
            on_delta(StreamDelta::Text(text.to_string()));
        }
    }

    fn delta(
        &mut self,
        value: &Value,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    ) -> Result<(), StreamError> {
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        let delta = value.get("delta").unwrap_or(&Value::Null);
        // Borrow the block list and the assembly separately.
        let Some((_, block)) = self.blocks.iter_mut().find(|(i, _)| *i == index) else {
            return Err(protocol(format!(
                "the model sent a delta for content block {index} that never started"
            )));
        };
        let assembly = &mut self.assembly;
        match (str_of(delta, "type"), block) {
            ("text_delta", Block::Text) => {
                let piece = str_of(delta, "text");
                if !piece.is_empty() {
                    assembly.text.push_str(piece);
                    assembly.output_started = true;
                    on_delta(StreamDelta::Text(piece.to_string()));
                }
            }
            ("thinking_delta", Block::Thinking { text, .. }) => {
                let piece = str_of(delta, "thinking");
                if !piece.is_empty() {
                    text.push_str(piece);
                    assembly.output_started = true;
                    on_delta(StreamDelta::Reasoning(piece.to_string()));
                }
            }
            ("signature_delta", Block::Thinking { signature, .. }) => {
                signature.push_str(str_of(delta, "signature"));
            }
            ("input_json_delta", Block::ToolUse { json, .. }) => {
                json.push_str(str_of(delta, "partial_json"));
            }
            // Unknown delta kinds (newer API features) are ignored, as Anthropic advises.
            _ => {}
        }
        Ok(())
    }
}

fn protocol(message: String) -> StreamError {
    StreamError {
        kind: ErrorKind::Protocol,
        message,
        retryable: false,
    }
}

impl Decoder for AnthropicDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    ) -> Result<Decoded, StreamError> {
        if event.event == "ping" {
            return Ok(Decoded::KeepAlive);
        }
        let value: Value = serde_json::from_str(&event.data).map_err(|error| {
            protocol(format!(
                "the model server sent an event that is not JSON ({error}); \
                 check that the base URL points to the Anthropic API"
            ))
        })?;
        let kind = match str_of(&value, "type") {
            "" => event.event.as_str(),
            kind => kind,
        };
        match kind {
            "ping" => return Ok(Decoded::KeepAlive),
            "message_start" => {
                let usage = value.pointer("/message/usage").unwrap_or(&Value::Null);
                let number = |key: &str| usage.get(key).and_then(Value::as_u64);
                self.assembly.usage = Some(Usage {
                    input_tokens: number("input_tokens").unwrap_or(0),
                    output_tokens: number("output_tokens").unwrap_or(0),
                    cache_read_tokens: number("cache_read_input_tokens"),
                });
            }
            "content_block_start" => self.start_block(&value, on_delta),
            "content_block_delta" => self.delta(&value, on_delta)?,
            "content_block_stop" => {}
            "message_delta" => {
                if let Some(reason) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.assembly.stop_reason = Some(reason.to_string());
                }
                if let Some(out) = value
                    .pointer("/usage/output_tokens")
                    .and_then(Value::as_u64)
                {
                    let usage = self.assembly.usage.get_or_insert_with(Usage::default);
                    usage.output_tokens = out;
                    if let Some(input) =
                        value.pointer("/usage/input_tokens").and_then(Value::as_u64)
                    {
                        usage.input_tokens = input;
                    }
                }
            }
            "message_stop" => {
                self.stopped = true;
                return Ok(Decoded::Done);
            }
            "error" => {
                let (error_type, message) =
                    error_parts(&value).unwrap_or_else(|| ("error".to_string(), value.to_string()));
                let retryable = matches!(error_type.as_str(), "overloaded_error" | "api_error");
                let hint = if error_type == "overloaded_error" {
                    " (Anthropic is overloaded — try again in a moment)"
                } else {
                    ""
                };
                return Err(StreamError {
                    kind: ErrorKind::Http,
                    message: format!("Anthropic reported {error_type}: {message}{hint}"),
                    retryable,
                });
            }
            // New event types may appear; the API docs say to ignore them.
            _ => {}
        }
        Ok(Decoded::Data)
    }

    fn assembly(&self) -> &Assembly {
        &self.assembly
    }

    fn finish(self: Box<Self>) -> Result<Completion, StreamError> {
        let this = *self;
        if !this.stopped && this.assembly.stop_reason.is_none() {
            return Err(StreamError {
                kind: ErrorKind::Protocol,
                message: "the model's stream ended before message_stop; the connection may have \
                          been cut — try again"
                    .to_string(),
                retryable: true,
            });
        }
        let mut assembly = this.assembly;
        for (_, block) in this.blocks {
            match block {
                Block::Thinking { text, signature } => assembly.thinking.push(Thinking {
                    text,
                    signature: (!signature.is_empty()).then_some(signature),
                    redacted: None,
                }),
                Block::Redacted(data) => assembly.thinking.push(Thinking {
                    text: String::new(),
                    signature: None,
                    redacted: Some(data),
                }),
                Block::ToolUse { id, name, json } => assembly.tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: if json.trim().is_empty() {
                        "{}".to_string()
                    } else {
                        json
                    },
                }),
                Block::Text | Block::Other => {}
            }
        }
        Ok(assembly.into_completion())
    }
}
