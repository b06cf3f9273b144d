//! The model layer: one streaming call to an LLM, with timeouts, retries and cancellation.
//!
//! `ModelClient::complete` is the only entry point. Each provider module only knows its wire
//! format (request body, SSE decoding, error bodies); sending, timing, retrying and cancelling
//! live in `transport` and `retry`, so adding a provider touches one module.

pub mod anthropic;
mod assembly;
pub mod openai;
pub mod retry;
mod transport;

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::cancel::CancellationToken;
use crate::config::{ProviderKind, Settings};
use crate::event::{ErrorKind, Usage};
use crate::message::Message;
use crate::sse::SseEvent;

pub use assembly::Assembly;
pub use retry::RetryPolicy;

/// A tool the model may call, with its JSON schema.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// JSON schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// One model call: the whole conversation so far.
#[derive(Clone, Copy, Debug)]
pub struct ModelRequest<'a> {
    pub model: &'a str,
    pub system: &'a str,
    pub messages: &'a [Message],
    pub tools: &'a [ToolSpec],
    pub max_tokens: u32,
    /// Anthropic extended thinking: the token budget, 0 for off (other providers ignore it).
    pub thinking_budget: u32,
}

/// What streams out of a call while it runs.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamDelta {
    Text(String),
    Reasoning(String),
    /// Sent before each backoff wait. `attempt` is the number of the attempt about to be made
    /// (2 for the first retry), out of `max_attempts`.
    Retry {
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
        reason: String,
    },
}

/// A model the server offers (`GET /v1/models`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub id: String,
    /// A display name, where the server gives one (Anthropic does).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// The `data` array of a model list: each entry's `id`, and its display name from
/// `name_field` where the format has one.
fn listed_models(body: &serde_json::Value, name_field: Option<&str>) -> Option<Vec<ModelInfo>> {
    let data = body.get("data")?.as_array()?;
    Some(
        data.iter()
            .filter_map(|model| {
                let id = model.get("id")?.as_str()?.trim();
                let name = name_field
                    .and_then(|field| model.get(field))
                    .and_then(serde_json::Value::as_str)
                    .map(str::to_string);
                (!id.is_empty()).then(|| ModelInfo {
                    id: id.to_string(),
                    name,
                })
            })
            .collect(),
    )
}

/// A finished call.
#[derive(Clone, Debug, PartialEq)]
pub struct Completion {
    /// Always `Message::Assistant` with `partial: false`.
    pub message: Message,
    pub usage: Option<Usage>,
    pub stop_reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// Our own cancel; never retried. `partial` holds the text that had streamed.
    #[error("cancelled")]
    Cancelled { partial: Option<Message> },
    /// `partial` is `Message::Assistant { partial: true, .. }` with what had streamed, if anything.
    #[error("{message}")]
    Failed {
        kind: ErrorKind,
        message: String,
        partial: Option<Message>,
    },
}

impl ModelError {
    pub(crate) fn config(message: impl Into<String>) -> Self {
        ModelError::Failed {
            kind: ErrorKind::Config,
            message: message.into(),
            partial: None,
        }
    }

    /// The error kind; `None` for a cancel.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ModelError::Cancelled { .. } => None,
            ModelError::Failed { kind, .. } => Some(*kind),
        }
    }

    /// What had streamed before the call ended.
    pub fn partial(&self) -> Option<&Message> {
        match self {
            ModelError::Cancelled { partial } | ModelError::Failed { partial, .. } => {
                partial.as_ref()
            }
        }
    }
}

/// How one SSE event advanced the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// Real data: resets the stall timer.
    Data,
    /// A keep-alive (Anthropic `ping`): does not reset the stall timer.
    KeepAlive,
    /// The model finished; stop reading.
    Done,
}

/// A failure found inside a stream (an error event, a malformed or truncated stream).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamError {
    pub kind: ErrorKind,
    pub message: String,
    /// Worth retrying if nothing had been shown yet (overloaded, server error, truncated).
    pub retryable: bool,
}

/// Turns one provider's SSE events into deltas and, at the end, a `Completion`.
pub trait Decoder: Send {
    fn event(
        &mut self,
        event: &SseEvent,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    ) -> Result<Decoded, StreamError>;
    /// What was assembled so far.
    fn assembly(&self) -> &Assembly;
    /// The stream ended (EOF or `Decoded::Done`): the completion, or why the stream is incomplete.
    fn finish(self: Box<Self>) -> Result<Completion, StreamError>;
}

/// One wire format. Implementations build the request and decode the stream; they do not send.
pub trait Provider: Send + Sync {
    fn kind(&self) -> ProviderKind;
    /// The full POST request for a streaming call, headers included.
    fn request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        api_key: &str,
        req: &ModelRequest<'_>,
    ) -> reqwest::RequestBuilder;
    fn decoder(&self) -> Box<dyn Decoder>;
    /// The human-readable message inside an HTTP error body, if the body has the provider's shape.
    fn error_message(&self, body: &str) -> Option<String>;
    /// The stream events a whole (non-streamed) reply in this format stands for, so a server
    /// that answers a streaming request with one JSON message is read like a stream. None when
    /// `body` is not such a reply.
    fn whole_reply(&self, body: &serde_json::Value) -> Option<Vec<SseEvent>>;
    /// The GET request that lists the server's models, headers included.
    fn models_request(
        &self,
        http: &reqwest::Client,
        base_url: &str,
        api_key: &str,
    ) -> reqwest::RequestBuilder;
    /// The models in a list answer, or None when the body is not one.
    fn models(&self, body: &serde_json::Value) -> Option<Vec<ModelInfo>>;
}

/// Limits applied to every call, from `Settings`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Total deadline per API call (one attempt); `None` = no limit.
    pub total: Option<Duration>,
    /// Longest wait for a data event; `None` = no limit.
    pub stall: Option<Duration>,
}

/// Makes model calls for one provider. Cheap to keep for a whole session (reuses connections).
pub struct ModelClient {
    http: reqwest::Client,
    provider: Box<dyn Provider>,
    base_url: String,
    api_key: String,
    limits: Limits,
    retry: RetryPolicy,
}

impl std::fmt::Debug for ModelClient {
    // Hand-written so the API key can never end up in a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelClient")
            .field("provider", &self.provider.kind())
            .field("base_url", &self.base_url)
            .field("limits", &self.limits)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

fn seconds(value: u64) -> Option<Duration> {
    (value > 0).then(|| Duration::from_secs(value))
}

impl ModelClient {
    pub fn new(settings: &Settings) -> Result<ModelClient, ModelError> {
        let base_url = settings.effective_base_url();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ModelError::config(format!(
                "base URL {base_url:?} is not an http(s) URL: it should look like http://127.0.0.1:11434/v1"
            )));
        }
        let mut builder = reqwest::Client::builder().tcp_nodelay(true);
        if let Some(connect) = seconds(settings.connect_timeout_s) {
            builder = builder.connect_timeout(connect);
        }
        let http = builder.build().map_err(|error| {
            ModelError::config(format!("could not set up the HTTP client: {error}"))
        })?;
        let provider: Box<dyn Provider> = match settings.provider {
            ProviderKind::Openai => Box::new(openai::OpenAi),
            ProviderKind::Anthropic => Box::new(anthropic::Anthropic),
        };
        Ok(ModelClient {
            http,
            provider,
            base_url,
            api_key: settings.api_key.clone(),
            limits: Limits {
                total: seconds(settings.timeout_s),
                stall: seconds(settings.stall_timeout_s),
            },
            retry: RetryPolicy::with_attempts(settings.max_attempts),
        })
    }

    /// Replaces the backoff policy (tests use short delays).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    pub fn provider_kind(&self) -> ProviderKind {
        self.provider.kind()
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The models the server offers, for choosing one in Settings. One attempt, bounded by
    /// the connect timeout and 20 s in all; errors read like those of a model call.
    pub async fn list_models(
        &self,
        cancel: &CancellationToken,
    ) -> Result<Vec<ModelInfo>, ModelError> {
        transport::list_models(self, cancel).await
    }

    /// One model call with retries (the retry layer lives here, nowhere else). Streams deltas
    /// through `on_delta` (a `Retry` delta before each backoff wait). Every await is raced
    /// against `cancel`; on cancel the connection is dropped at once.
    pub async fn complete(
        &self,
        req: &ModelRequest<'_>,
        on_delta: &mut (dyn FnMut(StreamDelta) + Send),
        cancel: &CancellationToken,
    ) -> Result<Completion, ModelError> {
        transport::complete_with_retries(self, req, on_delta, cancel).await
    }
}
