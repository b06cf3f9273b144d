//! What the stand-in answers to one request: a builder that tests chain, serde so the
//! process mode can take the same thing as JSON.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Which wire format a reply streams in; `Status` is a plain HTTP error whose JSON shape
/// follows the endpoint the request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Openai,
    Anthropic,
    Status,
}

/// One piece of a streamed reply, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Item {
    /// Content deltas. JSON users may give `text` instead of `tokens`; it is split into words.
    Text {
        #[serde(default)]
        tokens: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
    },
    /// OpenAI `reasoning_content` deltas (on Anthropic: a thinking block with a made-up signature).
    Reasoning { tokens: Vec<String> },
    /// Anthropic thinking block (on OpenAI: `reasoning_content`).
    Thinking { text: String, signature: String },
    /// A tool call / tool_use block; `arguments` is sent in small pieces.
    ToolCall {
        id: String,
        name: String,
        arguments: String,
    },
    /// OpenAI: a `{"error":{...}}` data line inside the 200 stream, then the stream ends.
    ErrorInStream { message: String },
    /// Anthropic: `event: error` mid-stream, then the stream ends.
    ErrorEvent { error_type: String, message: String },
}

/// What happens after `n_events` events have been sent (instead of the rest of the stream).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Tail {
    /// Hold the connection open, send nothing.
    Stall,
    /// Only keep-alive comments (openai) / ping events (anthropic) every `every_ms`.
    Keepalive { every_ms: u64 },
    /// TCP reset (SO_LINGER 0).
    Reset,
    /// Never-ending real content tokens every `every_ms` (n_events is ignored: the whole
    /// reply is sent except its ending, then tokens follow forever).
    Drip { every_ms: u64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct After {
    pub n_events: usize,
    pub tail: Tail,
}

/// One scripted response. Build with [`Reply::openai`], [`Reply::anthropic`], [`Reply::status`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub kind: Kind,
    #[serde(default)]
    pub items: Vec<Item>,
    /// (input/prompt tokens, output/completion tokens); default: estimated.
    #[serde(default)]
    pub usage: Option<(u64, u64)>,
    /// HTTP status for `Kind::Status`.
    #[serde(default)]
    pub status: Option<u16>,
    /// Error message for `Kind::Status` (default: a realistic one for the status).
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub retry_after: Option<u64>,
    #[serde(default)]
    pub delay_ms: u64,
    #[serde(default)]
    pub first_byte_delay_ms: u64,
    #[serde(default)]
    pub cut_every: Option<usize>,
    #[serde(default)]
    pub cut_at: Vec<usize>,
    #[serde(default)]
    pub after: Option<After>,
    /// Send exactly these body bytes as the event stream (no encoder), still chunked.
    #[serde(default)]
    pub raw: Option<String>,
    /// Answer even a streaming request with the whole JSON message (`chat.completion` /
    /// `message`), as some proxies do (LiteLLM's Anthropic route with a mocked model).
    #[serde(default)]
    pub whole: bool,
}

impl Reply {
    fn new(kind: Kind) -> Reply {
        Reply {
            kind,
            items: Vec::new(),
            usage: None,
            status: None,
            message: None,
            retry_after: None,
            delay_ms: 0,
            first_byte_delay_ms: 0,
            cut_every: None,
            cut_at: Vec::new(),
            after: None,
            raw: None,
            whole: false,
        }
    }

    /// A Chat Completions stream.
    pub fn openai() -> Reply {
        Reply::new(Kind::Openai)
    }

    /// A Messages stream.
    pub fn anthropic() -> Reply {
        Reply::new(Kind::Anthropic)
    }

    /// A plain HTTP error in the JSON shape of the endpoint that was called.
    pub fn status(code: u16) -> Reply {
        let mut r = Reply::new(Kind::Status);
        r.status = Some(code);
        r
    }

    /// An event stream whose body is exactly `body` (for parser tests); kind decides nothing.
    pub fn raw(body: &str) -> Reply {
        let mut r = Reply::new(Kind::Openai);
        r.raw = Some(body.to_string());
        r
    }

    /// The whole JSON message, whether or not the request asked for a stream.
    pub fn whole(mut self) -> Reply {
        self.whole = true;
        self
    }

    /// Content deltas, split into word-sized tokens (`"Hello there"` → `"Hello"`, `" there"`).
    pub fn text(mut self, text: &str) -> Reply {
        self.items.push(Item::Text {
            tokens: split_words(text),
            text: None,
        });
        self
    }

    /// Exact content deltas.
    pub fn tokens(mut self, tokens: &[&str]) -> Reply {
        self.items.push(Item::Text {
            tokens: tokens.iter().map(|t| t.to_string()).collect(),
            text: None,
        });
        self
    }

    /// `delta.reasoning_content` (DeepSeek / llama.cpp style).
    pub fn reasoning(mut self, text: &str) -> Reply {
        self.items.push(Item::Reasoning {
            tokens: split_words(text),
        });
        self
    }

    /// Anthropic thinking block: thinking_delta(s) then signature_delta.
    pub fn thinking(mut self, text: &str, signature: &str) -> Reply {
        self.items.push(Item::Thinking {
            text: text.to_string(),
            signature: signature.to_string(),
        });
        self
    }

    /// OpenAI tool call; several in a row are parallel calls with interleaved fragments.
    pub fn tool_call(mut self, id: &str, name: &str, arguments: &str) -> Reply {
        self.items.push(Item::ToolCall {
            id: id.to_string(),
            name: name.to_string(),
            arguments: arguments.to_string(),
        });
        self
    }

    /// Anthropic tool_use block (same item as `tool_call`).
    pub fn tool_use(self, id: &str, name: &str, input_json: &str) -> Reply {
        self.tool_call(id, name, input_json)
    }

    pub fn usage(mut self, input: u64, output: u64) -> Reply {
        self.usage = Some((input, output));
        self
    }

    pub fn error_in_stream(mut self, message: &str) -> Reply {
        self.items.push(Item::ErrorInStream {
            message: message.to_string(),
        });
        self
    }

    pub fn error_event(mut self, error_type: &str, message: &str) -> Reply {
        self.items.push(Item::ErrorEvent {
            error_type: error_type.to_string(),
            message: message.to_string(),
        });
        self
    }

    /// Error message of a `status` reply.
    pub fn message(mut self, message: &str) -> Reply {
        self.message = Some(message.to_string());
        self
    }

    pub fn retry_after(mut self, secs: u64) -> Reply {
        self.retry_after = Some(secs);
        self
    }

    /// Pause between written chunks.
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay_ms = ms(d);
        self
    }

    /// Pause before the response headers are sent.
    pub fn first_byte_delay(mut self, d: Duration) -> Reply {
        self.first_byte_delay_ms = ms(d);
        self
    }

    /// Write the body in pieces of `n` bytes, each its own flushed write (and HTTP chunk).
    pub fn cut_every(mut self, n: usize) -> Reply {
        self.cut_every = Some(n.max(1));
        self
    }

    /// Write the body split at these byte offsets.
    pub fn cut_at(mut self, offsets: &[usize]) -> Reply {
        self.cut_at = offsets.to_vec();
        self
    }

    /// Send `n` events, then hold the connection open sending nothing.
    pub fn stall_after(mut self, n: usize) -> Reply {
        self.after = Some(After {
            n_events: n,
            tail: Tail::Stall,
        });
        self
    }

    /// After the headers, only keep-alives every `every`, forever.
    pub fn keepalive_only(self, every: Duration) -> Reply {
        self.keepalive_after(0, every)
    }

    pub fn keepalive_after(mut self, n: usize, every: Duration) -> Reply {
        self.after = Some(After {
            n_events: n,
            tail: Tail::Keepalive {
                every_ms: ms(every),
            },
        });
        self
    }

    /// Send `n` events, then reset the TCP connection.
    pub fn reset_after(mut self, n: usize) -> Reply {
        self.after = Some(After {
            n_events: n,
            tail: Tail::Reset,
        });
        self
    }

    /// Send the reply without its ending, then a content token every `every`, forever.
    pub fn drip(mut self, every: Duration) -> Reply {
        self.after = Some(After {
            n_events: usize::MAX,
            tail: Tail::Drip {
                every_ms: ms(every),
            },
        });
        self
    }
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Word-sized tokens with the leading space attached, like real tokenizers:
/// "Hello there" → ["Hello", " there"]. Concatenation gives back the input.
pub fn split_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let mut prev_ws = false;
    for c in text.chars() {
        let ws = c.is_whitespace();
        if ws && !prev_ws && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
        prev_ws = ws;
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Split `s` into pieces of at most `n` bytes on char boundaries (tool arguments).
pub fn split_pieces(s: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if cur.len() + c.len_utf8() > n && !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}
