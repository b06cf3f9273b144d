//! Shared shape of an encoded reply: the SSE events, where the ending starts, and how to
//! keep dripping tokens.

use super::anthropic;
use super::openai;

/// Facts about the request that the encoders echo back.
pub struct Ctx {
    /// Request index, used in ids.
    pub seq: usize,
    pub model: String,
    pub created: i64,
    pub include_usage: bool,
    /// Prompt tokens reported when the reply sets no usage.
    pub prompt_estimate: u64,
}

pub enum Drip {
    Openai(openai::Chunker),
    Anthropic { index: usize },
}

pub struct Encoded {
    /// Every SSE event of the full stream, each complete with its blank line.
    pub events: Vec<Vec<u8>>,
    /// `events[..ending_at]` is the reply without its ending (finish, usage, `[DONE]` /
    /// message_delta, message_stop), what `drip` sends before its endless tokens.
    pub ending_at: usize,
    /// Events sent after `events[..ending_at]` and before the drip tokens.
    pub drip_prefix: Vec<Vec<u8>>,
    pub drip: Drip,
}

impl Encoded {
    pub fn drip_event(&self, k: usize) -> Vec<u8> {
        match &self.drip {
            Drip::Openai(c) => openai::drip_event(c, k),
            Drip::Anthropic { index } => anthropic::drip_event(*index, k),
        }
    }

    pub fn keepalive(&self) -> &'static [u8] {
        match &self.drip {
            Drip::Openai(_) => openai::KEEPALIVE,
            Drip::Anthropic { .. } => anthropic::PING,
        }
    }
}
