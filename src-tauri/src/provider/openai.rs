//! OpenAI-compatible Chat Completions (OpenAI, OpenRouter, Ollama, LM Studio, llama.cpp, vLLM).

use serde_json::{Value, json};

use crate::config::ProviderKind;
use crate::event::{ErrorKind, Usage};
use crate::message::{Message, Thinking, ToolCall};
use crate::sse::SseEvent;

use super::{
    Assembly, Completion, Decoded, Decoder, ModelInfo, ModelRequest, Provider, StreamDelta,
    StreamError, listed_models,
};

/// The Chat Completions wire format.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenAi;

impl Provider for OpenAi {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Openai
    }

    fn request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        api_key: &str,
        req: &ModelRequest<'_>,
    ) -> reqwest::RequestBuilder {
        let url = format!("{}/chat/completions", base_url.trim_end_matches('/'));
        // OpenAI's own reasoning models refuse `max_tokens`; compatible servers know only it.
        let official = base_url.contains("api.openai.com");
        let mut builder = http
            .post(url)
            .header("accept", "text/event-stream")
            .json(&request_body(req, official));
        if !api_key.is_empty() {
            builder = builder.bearer_auth(api_key);
        }
        builder
    }

    fn decoder(&self) -> Box<dyn Decoder> {
        Box::new(OpenAiDecoder::default())
    }

    fn error_message(&self, body: &str) -> Option<String> {
        error_text(&serde_json::from_str(body).ok()?)
    }

    /// A `chat.completion` object: its message becomes the delta of one chunk (each tool call
    /// given its position as `index`), with the finish reason and usage, then `[DONE]`.
    fn whole_reply(&self, body: &Value) -> Option<Vec<SseEvent>> {
        let choice = body
            .get("choices")?
            .as_array()?
            .iter()
            .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)?;
        let mut delta = choice.get("message")?.as_object()?.clone();
        if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
            for (index, call) in calls.iter_mut().enumerate() {
                if let Value::Object(call) = call {
                    call.insert("index".to_string(), json!(index));
                }
            }
        }
        let finish = match choice.get("finish_reason") {
            Some(Value::String(reason)) => json!(reason),
            _ => json!("stop"),
        };
        let chunk = json!({
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": body.get("usage").cloned().unwrap_or(Value::Null),
        });
        Some(vec![
            data_event(chunk.to_string()),
            data_event("[DONE]".to_string()),
        ])
    }

    fn models_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        api_key: &str,
    ) -> reqwest::RequestBuilder {
        let builder = http.get(format!("{}/models", base_url.trim_end_matches('/')));
        if api_key.is_empty() {
            builder
        } else {
            builder.bearer_auth(api_key)
        }
    }

    /// `{"data": [{"id": ...}, ...]}`, what OpenAI and the compatible servers answer.
    fn models(&self, body: &Value) -> Option<Vec<ModelInfo>> {
        listed_models(body, None)
    }
}

fn data_event(data: String) -> SseEvent {
    SseEvent {
        event: "message".to_string(),
        data,
        id: None,
    }
}

/// The JSON body of a streaming call. `max_completion_tokens` is used for api.openai.com.
pub fn request_body(req: &ModelRequest<'_>, max_completion_tokens: bool) -> Value {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(json!({"role": "system", "content": req.system}));
    }
    messages.extend(wire_messages(req.messages));
    let mut body = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": {"include_usage": true},
    });
    if req.max_tokens > 0 {
        let key = if max_completion_tokens {
            "max_completion_tokens"
        } else {
            "max_tokens"
        };
        body[key] = json!(req.max_tokens);
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|tool| {
                json!({"type": "function", "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                }})
            })
            .collect();
    }
    body
}

/// The conversation on the wire: repaired (pairs complete, see `crate::repair`), then each
/// message translated; an assistant message with neither text nor calls (thinking alone, which
/// Chat Completions cannot carry) is left out.
fn wire_messages(messages: &[Message]) -> Vec<Value> {
    crate::repair::repaired(messages)
        .iter()
        .filter(|message| match message {
            Message::Assistant {
                content,
                tool_calls,
                ..
            } => !(content.trim().is_empty() && tool_calls.is_empty()),
            Message::User { .. } | Message::Tool { .. } => true,
        })
        .map(message_json)
        .collect()
}

/// One neutral message on the wire. Thinking is not sent: Chat Completions has no field for it.
fn message_json(message: &Message) -> Value {
    match message {
        Message::User { content } => json!({"role": "user", "content": content}),
        Message::Assistant {
            content,
            tool_calls,
            thinking: _,
            partial: _,
        } => {
            if tool_calls.is_empty() {
                return json!({"role": "assistant", "content": content});
            }
            let calls: Vec<Value> = tool_calls
                .iter()
                .map(|call| {
                    json!({"id": call.id, "type": "function",
                           "function": {"name": call.name, "arguments": call.arguments}})
                })
                .collect();
            let content = if content.is_empty() {
                Value::Null
            } else {
                json!(content)
            };
            json!({"role": "assistant", "content": content, "tool_calls": calls})
        }
        Message::Tool {
            tool_call_id,
            content,
            mcp,
            name: _,
            is_error: _,
        } => {
            // Chat Completions tool messages carry text only: the model is told what it
            // cannot see.
            let images = mcp.as_deref().map_or(&[][..], |mcp| &mcp.images);
            let content = if images.is_empty() {
                content.clone()
            } else {
                format!(
                    "{content}\n[{} image(s) not passed on: tool results here carry text only]",
                    images.len()
                )
            };
            json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
        }
    }
}

/// The message of an `{"error": ...}` object (HTTP error body or in-stream error).
fn error_text(value: &Value) -> Option<String> {
    let error = value.get("error")?;
    let text = match error {
        Value::String(text) => text.clone(),
        other => other
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| other.to_string()),
    };
    Some(text)
}

/// A tool call being assembled from fragments: keyed by `index` when the server sends one
/// (never by id); servers that omit it (Ollama, some llama.cpp and vLLM versions) are followed
/// by id and by order instead.
#[derive(Debug, Default)]
struct PendingCall {
    index: Option<u64>,
    id: String,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
struct OpenAiDecoder {
    assembly: Assembly,
    reasoning: String,
    calls: Vec<PendingCall>,
    finished: bool,
}

/// `arguments` as text: usually a JSON string, but some servers send the object itself.
fn arguments_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

impl OpenAiDecoder {
    /// Which pending call a fragment belongs to (its position in `calls`), creating it if new.
    fn slot_for(&mut self, fragment: &Value, position: usize) -> usize {
        let id = fragment
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty());
        let found = match fragment.get("index").and_then(Value::as_u64) {
            Some(index) => self.calls.iter().position(|c| c.index == Some(index)),
            None => match id {
                // A new id starts a new call; a repeated one continues its call.
                Some(id) => self.calls.iter().position(|c| c.id == id),
                // Several entries of one delta are several calls.
                None if position > 0 => None,
                None => self
                    .calls
                    .len()
                    .checked_sub(1)
                    .filter(|&last| !self.starts_another_call(last, fragment)),
            },
        };
        match found {
            Some(pos) => pos,
            None => {
                self.calls.push(PendingCall {
                    index: fragment.get("index").and_then(Value::as_u64),
                    ..PendingCall::default()
                });
                self.calls.len() - 1
            }
        }
    }

    /// A fragment with neither index nor id continues the last call, unless that call is
    /// already complete (name and whole JSON arguments) and this fragment names a function:
    /// then it is the next call of a server that sends each call whole in its own chunk.
    fn starts_another_call(&self, last: usize, fragment: &Value) -> bool {
        let names_one = fragment
            .pointer("/function/name")
            .and_then(Value::as_str)
            .is_some_and(|name| !name.is_empty());
        let call = &self.calls[last];
        names_one
            && !call.name.is_empty()
            && !call.arguments.trim().is_empty()
            && serde_json::from_str::<Value>(&call.arguments).is_ok()
    }

    fn tool_fragment(&mut self, fragment: &Value, position: usize) {
        let slot = self.slot_for(fragment, position);
        let call = &mut self.calls[slot];
        if let Some(id) = fragment.get("id").and_then(Value::as_str)
            && !id.is_empty()
            && call.id.is_empty()
        {
            call.id = id.to_string();
        }
        if let Some(function) = fragment.get("function") {
            if let Some(name) = function.get("name").and_then(Value::as_str) {
                // Some servers repeat the full name in every fragment; keep the first.
                if call.name.is_empty() {
                    call.name = name.to_string();
                }
            }
            if let Some(args) = function.get("arguments").and_then(arguments_text) {
                call.arguments.push_str(&args);
            }
        }
        self.assembly.output_started = true;
    }

    fn choice(&mut self, choice: &Value, on_delta: &mut (dyn FnMut(StreamDelta) + Send)) {
        if let Some(delta) = choice.get("delta") {
            for key in ["reasoning_content", "reasoning"] {
                if let Some(text) = delta.get(key).and_then(Value::as_str) {
                    if !text.is_empty() {
                        self.reasoning.push_str(text);
                        self.assembly.output_started = true;
                        on_delta(StreamDelta::Reasoning(text.to_string()));
                    }
                    break;
                }
            }
            if let Some(text) = delta.get("content").and_then(Value::as_str)
                && !text.is_empty()
            {
                self.assembly.text.push_str(text);
                self.assembly.output_started = true;
                on_delta(StreamDelta::Text(text.to_string()));
            }
            if let Some(fragments) = delta.get("tool_calls").and_then(Value::as_array) {
                for (position, fragment) in fragments.iter().enumerate() {
                    self.tool_fragment(fragment, position);
                }
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.assembly.stop_reason = Some(reason.to_string());
        }
    }
}

fn usage_of(value: &Value) -> Option<Usage> {
    let number = |key: &str| value.get(key).and_then(Value::as_u64);
    Some(Usage {
        input_tokens: number("prompt_tokens")?,
        output_tokens: number("completion_tokens").unwrap_or(0),
        cache_read_tokens: value
            .pointer("/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64),
    })
}

/// Errors inside a 200 stream: overload and server errors are worth another attempt.
fn stream_error(value: &Value, message: String) -> StreamError {
    let error = value.get("error").unwrap_or(&Value::Null);
    let label = ["type", "code"]
        .iter()
        .filter_map(|key| error.get(*key))
        .map(|v| v.to_string().to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(" ");
    let retryable = [
        "overloaded",
        "server_error",
        "rate_limit",
        "502",
        "503",
        "529",
    ]
    .iter()
    .any(|needle| label.contains(needle));
    StreamError {
        kind: ErrorKind::Http,
        message: format!("the model server reported an error mid-stream: {message}"),
        retryable,
    }
}

impl Decoder for OpenAiDecoder {
    fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    ) -> Result<Decoded, StreamError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.finished = true;
            return Ok(Decoded::Done);
        }
        if data.is_empty() {
            return Ok(Decoded::KeepAlive);
        }
        let value: Value = serde_json::from_str(data).map_err(|error| StreamError {
            kind: ErrorKind::Protocol,
            message: format!(
                "the model server sent a stream chunk that is not JSON ({error}); \
                 check that the base URL points to an OpenAI-compatible API"
            ),
            retryable: false,
        })?;
        if let Some(message) = error_text(&value) {
            return Err(stream_error(&value, message));
        }
        if let Some(usage) = value.get("usage").and_then(usage_of) {
            self.assembly.usage = Some(usage);
        }
        if let Some(choices) = value.get("choices").and_then(Value::as_array) {
            // Only choice 0 is ours (we never ask for n > 1).
            if let Some(choice) = choices
                .iter()
                .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
            {
                self.choice(choice, on_delta);
            }
        }
        Ok(Decoded::Data)
    }

    fn assembly(&self) -> &Assembly {
        &self.assembly
    }

    fn finish(self: Box<Self>) -> Result<Completion, StreamError> {
        let this = *self;
        if !this.finished && this.assembly.stop_reason.is_none() {
            return Err(StreamError {
                kind: ErrorKind::Protocol,
                message:
                    "the model's stream ended before it finished (no finish_reason or [DONE]); \
                          the connection may have been cut — try again"
                        .to_string(),
                retryable: true,
            });
        }
        let mut assembly = this.assembly;
        if !this.reasoning.is_empty() {
            assembly.thinking.push(Thinking {
                text: this.reasoning,
                signature: None,
                redacted: None,
            });
        }
        assembly.tool_calls = finished_calls(this.calls);
        Ok(assembly.into_completion())
    }
}

/// The calls as the next request must carry them: every id present and unique (a missing id
/// would leave the tool result unpaired), empty arguments as `{}`.
fn finished_calls(calls: Vec<PendingCall>) -> Vec<ToolCall> {
    let mut seen: Vec<String> = Vec::with_capacity(calls.len());
    calls
        .into_iter()
        .map(|call| {
            let id = if call.id.is_empty() || seen.contains(&call.id) {
                generated_id()
            } else {
                call.id
            };
            seen.push(id.clone());
            ToolCall {
                id,
                name: call.name,
                arguments: if call.arguments.trim().is_empty() {
                    "{}".to_string()
                } else {
                    call.arguments
                },
            }
        })
        .collect()
}

/// An id for a call the server sent without one: `call_` and random letters and digits, so ids
/// stay unique across the whole conversation (a per-reply counter would repeat).
fn generated_id() -> String {
    let suffix: String = std::iter::repeat_with(fastrand::alphanumeric)
        .take(16)
        .collect();
    format!("call_{suffix}")
}
