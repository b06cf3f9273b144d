//! Sending one call and reading its stream: the total deadline, the stall timer, cancellation,
//! and the retry loop around attempts.
//!
//! Every await goes through `or_cancel` (timers inside it). Returning drops the response
//! and its body stream, which closes the connection at once: that is how a cancel, a timeout or
//! a stall stops the server.

use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::{Instant, sleep_until};

use crate::cancel::{CancellationToken, Cancelled, OrCancel};
use crate::config::ProviderKind;
use crate::event::ErrorKind;
use crate::sse::{SseItem, SseParser};

use super::retry::{RetryDecision, classify_status, retry_after};
use super::{
    Completion, Decoded, Decoder, ModelClient, ModelError, ModelInfo, ModelRequest, StreamDelta,
    StreamError,
};

/// How one attempt ended, when it did not succeed.
enum Failure {
    /// Report this; no other attempt.
    Final(ModelError),
    /// Nothing was shown yet and another attempt may work.
    Retryable {
        kind: ErrorKind,
        message: String,
        /// Short, for the `retry` event.
        reason: String,
        retry_after: Option<Duration>,
    },
}

pub(super) async fn complete_with_retries(
    client: &ModelClient,
    req: &ModelRequest<'_>,
    on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    cancel: &CancellationToken,
) -> Result<Completion, ModelError> {
    let max_attempts = client.retry.max_attempts.max(1);
    let mut attempt = 1;
    loop {
        if cancel.is_cancelled() {
            return Err(ModelError::Cancelled { partial: None });
        }
        let (kind, message, reason, wait) =
            match attempt_once(client, req, &mut *on_delta, cancel).await {
                Ok(completion) => return Ok(completion),
                Err(Failure::Final(error)) => return Err(error),
                Err(Failure::Retryable {
                    kind,
                    message,
                    reason,
                    retry_after,
                }) => (kind, message, reason, retry_after),
            };
        if attempt >= max_attempts {
            let message = if max_attempts > 1 {
                format!("{message} (gave up after {max_attempts} attempts)")
            } else {
                message
            };
            return Err(failed(kind, message));
        }
        let delay = match client.retry.decide(attempt, wait) {
            RetryDecision::Wait(delay) => delay,
            RetryDecision::TooLong(delay) => {
                return Err(failed(
                    kind,
                    format!(
                        "{message}; the server asks to wait {} s before trying again — try again later",
                        delay.as_secs()
                    ),
                ));
            }
        };
        attempt += 1;
        on_delta(StreamDelta::Retry {
            attempt,
            max_attempts,
            delay_ms: delay.as_millis() as u64,
            reason,
        });
        if tokio::time::sleep(delay).or_cancel(cancel).await.is_err() {
            return Err(ModelError::Cancelled { partial: None });
        }
    }
}

fn failed(kind: ErrorKind, message: String) -> ModelError {
    ModelError::Failed {
        kind,
        message,
        partial: None,
    }
}

/// `host[:port]` of the base URL, for messages (never the path or query).
fn host_of(base_url: &str) -> &str {
    let rest = base_url
        .split_once("://")
        .map_or(base_url, |(_, rest)| rest);
    let host = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    // Drop any userinfo: it could hold a credential.
    host.rsplit_once('@').map_or(host, |(_, host)| host)
}

/// The innermost cause of an error chain: "Connection refused (os error 111)" rather than
/// reqwest's "error sending request for url (...)".
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    while let Some(source) = current.source() {
        current = source;
    }
    current.to_string()
}

fn key_env(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Openai => "OPENAI_API_KEY",
        ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
    }
}

impl ModelClient {
    /// Removes the API key from text that came from the server (some echo part of it back).
    fn scrub(&self, text: &str) -> String {
        let key = self.api_key.trim();
        if key.len() >= 4 {
            text.replace(key, "[key hidden]")
        } else {
            text.to_string()
        }
    }

    fn stall_failure(&self) -> String {
        let secs = self.limits.stall.map_or(0, |d| d.as_secs());
        format!(
            "no data from the model for {secs} s; the server may be overloaded — try again or \
             raise the stall timeout in Settings"
        )
    }

    fn timeout_failure(&self) -> String {
        let secs = self.limits.total.map_or(0, |d| d.as_secs());
        format!(
            "the model call took longer than the {secs} s limit and was stopped; try again, or \
             raise the timeout in Settings (0 = no limit)"
        )
    }

    /// What a 404 most likely means for this provider's base URL.
    fn not_found_hint(&self) -> String {
        let base = self.base_url.trim_end_matches('/');
        match self.provider.kind() {
            ProviderKind::Openai if !base.ends_with("/v1") => format!(
                "does the base URL end in /v1? Requests go to {base}/chat/completions; most \
                 servers want {base}/v1 (e.g. http://127.0.0.1:11434/v1). Also check the model name"
            ),
            ProviderKind::Anthropic if base.ends_with("/v1") => format!(
                "the Anthropic base URL is the host without /v1 (requests go to \
                 {base}/v1/messages); set it to {}",
                base.trim_end_matches("/v1")
            ),
            ProviderKind::Openai | ProviderKind::Anthropic => {
                "check the base URL and the model name in Settings".to_string()
            }
        }
    }

    /// A 200 answer labelled as a web page (the base URL points at a website or a UI), which
    /// may still hold the provider's error object. Never worth another attempt; say what to fix.
    async fn not_a_stream(
        &self,
        response: reqwest::Response,
        content_type: &str,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Failure {
        let Some(body) = read_small_body(response, cancel, deadline).await else {
            return Failure::Final(ModelError::Cancelled { partial: None });
        };
        let host = host_of(&self.base_url);
        if let Some(message) = self.provider.error_message(&body) {
            let message = self.scrub(message.trim());
            return Failure::Final(failed(
                ErrorKind::Http,
                format!("{host} answered with an error: {message}"),
            ));
        }
        let what = if content_type.contains("html") {
            "a web page"
        } else if content_type.contains("json") {
            "a single JSON object (the server does not seem to support streaming)"
        } else {
            "something that is not an event stream"
        };
        let hint = match self.provider.kind() {
            ProviderKind::Openai => {
                "check that the base URL is the server's OpenAI-compatible API (it usually ends in /v1)"
            }
            ProviderKind::Anthropic => {
                "check that the base URL is the Anthropic API host (without /v1)"
            }
        };
        Failure::Final(failed(
            ErrorKind::Protocol,
            format!(
                "{host} answered with {what} ({content_type}) instead of an event stream; {hint}"
            ),
        ))
    }

    fn not_sse_failure(&self, start: &[u8]) -> String {
        let host = host_of(&self.base_url);
        let text = String::from_utf8_lossy(start);
        // A proxy that answers 200 with the provider's error object (when it fits in `start`).
        if let Some(message) = self.provider.error_message(&text) {
            return format!(
                "{host} answered with an error: {}",
                self.scrub(message.trim())
            );
        }
        let looks = if text.trim_start().starts_with('<') {
            "a web page".to_string()
        } else {
            format!("{:?}", self.scrub(&plain_detail(&text)))
        };
        let hint = match self.provider.kind() {
            ProviderKind::Openai => {
                "check that the base URL is the server's OpenAI-compatible API (it usually ends in /v1)"
            }
            ProviderKind::Anthropic => {
                "check that the base URL is the Anthropic API host (without /v1)"
            }
        };
        format!("{host} answered with {looks} instead of an event stream; {hint}")
    }

    /// A failed `send()`: nothing reached us, so it is worth another attempt.
    fn send_failure(&self, error: &reqwest::Error) -> Failure {
        let host = host_of(&self.base_url);
        let cause = self.scrub(&root_cause(error));
        let message = if error.is_timeout() {
            format!(
                "connecting to {host} timed out ({cause}); is the server running and reachable? \
                 The connect timeout is in Settings"
            )
        } else {
            format!(
                "could not reach the model server at {host}: {cause}; is the server running and \
                 is the base URL in Settings right?"
            )
        };
        Failure::Retryable {
            kind: ErrorKind::Network,
            message,
            reason: format!("network error: {cause}"),
            retry_after: None,
        }
    }

    /// A non-2xx answer: read the provider's error text (within the deadline) and classify it.
    async fn http_failure(
        &self,
        response: reqwest::Response,
        cancel: &CancellationToken,
        deadline: Option<Instant>,
    ) -> Failure {
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let Some(body) = read_small_body(response, cancel, deadline).await else {
            return Failure::Final(ModelError::Cancelled { partial: None });
        };
        let detail = self
            .provider
            .error_message(&body)
            .unwrap_or_else(|| plain_detail(&body));
        let detail = self.scrub(detail.trim());
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        let host = host_of(&self.base_url);
        let (kind, retryable) = classify_status(status);
        // The statuses `classify_status` calls `Auth` come first.
        let message = match status {
            401 | 403 if self.api_key.is_empty() => format!(
                "{host} refused the request (HTTP {status}{detail}); no API key is set — enter \
                 one in Settings or set TALARIA_API_KEY or {}",
                key_env(self.provider.kind())
            ),
            401 | 403 => format!(
                "{host} refused the API key (HTTP {status}{detail}); check the API key in \
                 Settings or TALARIA_API_KEY / {}",
                key_env(self.provider.kind())
            ),
            429 => format!(
                "{host} is rate limiting requests (HTTP 429{detail}); wait a minute and try \
                 again, or check the rate limits of your plan"
            ),
            529 => format!("{host} is overloaded (HTTP 529{detail}); try again in a moment"),
            404 => format!(
                "{host} answered HTTP 404 (not found){detail}; {}",
                self.not_found_hint()
            ),
            413 => format!(
                "{host} refused the request as too large (HTTP 413{detail}); the conversation \
                 may be too long for it — start a new session"
            ),
            400 | 422 => format!(
                "{host} rejected the request (HTTP {status}{detail}); check the model name in \
                 Settings, and if the conversation is too long for the model, start a new session"
            ),
            500..=599 => {
                format!("{host} had a server error (HTTP {status}{detail}); try again in a moment")
            }
            _ => format!(
                "{host} rejected the request (HTTP {status}{detail}); check the base URL and the \
                 model name in Settings"
            ),
        };
        if retryable {
            Failure::Retryable {
                kind,
                message,
                reason: format!("HTTP {status}"),
                retry_after: wait,
            }
        } else {
            Failure::Final(failed(kind, message))
        }
    }
}

/// The text of an error body that is not the provider's JSON: short, on one line, and no
/// markup (a proxy's HTML error page says nothing useful in a message).
fn plain_detail(body: &str) -> String {
    let body = body.trim();
    if body.starts_with('<') {
        return String::new();
    }
    let line = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut chars = line.chars();
    let mut text: String = chars.by_ref().take(300).collect();
    if chars.next().is_some() {
        text.push('…');
    }
    text
}

/// A failure after the stream began: retried only if nothing was shown yet.
fn stream_failure(decoder: &dyn Decoder, error: StreamError) -> Failure {
    let assembly = decoder.assembly();
    if error.retryable && !assembly.output_started {
        return Failure::Retryable {
            kind: error.kind,
            reason: error.message.chars().take(120).collect(),
            message: error.message,
            retry_after: None,
        };
    }
    Failure::Final(ModelError::Failed {
        kind: error.kind,
        message: error.message,
        partial: assembly.partial(),
    })
}

/// A stall or deadline hit after the model already said it finished (a stop reason arrived but
/// the server never sent `[DONE]` / `message_stop` nor closed): the answer is complete, keep it.
/// Otherwise the failure, with what had streamed.
fn finished_or(
    decoder: Box<dyn Decoder>,
    kind: ErrorKind,
    message: String,
) -> Result<Completion, Failure> {
    let partial = decoder.assembly().partial();
    if decoder.assembly().stop_reason.is_some()
        && let Ok(completion) = decoder.finish()
    {
        return Ok(completion);
    }
    Err(Failure::Final(ModelError::Failed {
        kind,
        message,
        partial,
    }))
}

async fn attempt_once(
    client: &ModelClient,
    req: &ModelRequest<'_>,
    on_delta: &mut (dyn FnMut(StreamDelta) + Send),
    cancel: &CancellationToken,
) -> Result<Completion, Failure> {
    let started = Instant::now();
    let deadline = client.limits.total.map(|d| started + d);
    // Sleeps are only polled when their limit is set (the `if` guards below).
    let total = sleep_until(deadline.unwrap_or(started));
    tokio::pin!(total);
    let stall = sleep_until(client.limits.stall.map_or(started, |d| started + d));
    tokio::pin!(stall);
    let has_total = deadline.is_some();
    let has_stall = client.limits.stall.is_some();

    let request = client
        .provider
        .request(&client.http, &client.base_url, &client.api_key, req);
    let waited = async {
        tokio::select! {
            biased;
            _ = &mut total, if has_total => Err(ErrorKind::Timeout),
            _ = &mut stall, if has_stall => Err(ErrorKind::Stall),
            response = request.send() => Ok(response),
        }
    }
    .or_cancel(cancel)
    .await;
    let response = match waited {
        Err(Cancelled) => return Err(Failure::Final(ModelError::Cancelled { partial: None })),
        Ok(Err(ErrorKind::Timeout)) => {
            return Err(Failure::Final(failed(
                ErrorKind::Timeout,
                client.timeout_failure(),
            )));
        }
        Ok(Err(_)) => {
            return Err(Failure::Final(failed(
                ErrorKind::Stall,
                client.stall_failure(),
            )));
        }
        Ok(Ok(response)) => response,
    };
    let response = response.map_err(|error| client.send_failure(&error))?;
    if !response.status().is_success() {
        return Err(client.http_failure(response, cancel, deadline).await);
    }
    // No content type, or an event stream: read it as one (some servers send text/plain).
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    // Only a web page is refused on its label: some servers label real event streams as JSON
    // or plain text, so those are judged by their body (see `unrecognized` below).
    if content_type.starts_with("text/html") {
        return Err(client
            .not_a_stream(response, &content_type, cancel, deadline)
            .await);
    }

    let mut body = response.bytes_stream();
    let mut parser = SseParser::new();
    let mut decoder = client.provider.decoder();
    let mut items = Vec::new();
    // The body while no SSE line was recognised. A body that never has one is either one whole
    // JSON reply (some servers and proxies answer a streaming request that way) or not an event
    // stream at all (a web page, plain text), which another attempt will not change.
    let mut unrecognized: Option<Vec<u8>> = Some(Vec::new());
    loop {
        let waited = async {
            tokio::select! {
                biased;
                _ = &mut total, if has_total => Err(ErrorKind::Timeout),
                _ = &mut stall, if has_stall => Err(ErrorKind::Stall),
                chunk = body.next() => Ok(chunk),
            }
        }
        .or_cancel(cancel)
        .await;
        let chunk = match waited {
            Err(Cancelled) => {
                return Err(Failure::Final(ModelError::Cancelled {
                    partial: decoder.assembly().partial(),
                }));
            }
            Ok(Err(ErrorKind::Timeout)) => {
                return finished_or(decoder, ErrorKind::Timeout, client.timeout_failure());
            }
            Ok(Err(_)) => return finished_or(decoder, ErrorKind::Stall, client.stall_failure()),
            Ok(Ok(chunk)) => chunk,
        };
        let ended = match chunk {
            Some(Ok(bytes)) => {
                parser.feed_into(&bytes, &mut items);
                if let Some(body) = unrecognized.as_mut() {
                    let room = MAX_WHOLE_REPLY.saturating_sub(body.len());
                    body.extend_from_slice(&bytes[..bytes.len().min(room)]);
                }
                false
            }
            Some(Err(error)) => {
                let cause = client.scrub(&root_cause(&error));
                let host = host_of(&client.base_url);
                let message = format!(
                    "the connection to {host} broke while the model was answering: {cause}; try again"
                );
                return Err(stream_failure(
                    &*decoder,
                    StreamError {
                        kind: ErrorKind::Network,
                        message,
                        retryable: true,
                    },
                ));
            }
            None => {
                items.extend(parser.finish());
                true
            }
        };
        if !items.is_empty() || parser.has_fields() {
            unrecognized = None;
        }
        for item in items.drain(..) {
            let event = match item {
                SseItem::Event(event) => event,
                // Keep-alive comments are not data: the stall timer keeps running.
                SseItem::Comment(_) => continue,
            };
            match decoder.event(&event, &mut *on_delta) {
                Ok(Decoded::Data) => {
                    if let Some(limit) = client.limits.stall {
                        stall.as_mut().reset(Instant::now() + limit);
                    }
                }
                Ok(Decoded::KeepAlive) => {}
                Ok(Decoded::Done) => {
                    drain_in_background(body);
                    return decoder
                        .finish()
                        .map_err(|error| Failure::Final(failed(error.kind, error.message)));
                }
                Err(error) => return Err(stream_failure(&*decoder, error)),
            }
        }
        if ended {
            if let Some(body) = unrecognized.filter(|body| !body.is_empty()) {
                return whole_reply(client, decoder, &body, on_delta);
            }
            // `finish` needs the decoder by value; keep what streamed for the error case.
            let partial = decoder.assembly().partial();
            let started_output = decoder.assembly().output_started;
            return decoder.finish().map_err(|error| {
                if error.retryable && !started_output {
                    Failure::Retryable {
                        kind: error.kind,
                        reason: "the stream ended early".to_string(),
                        message: error.message,
                        retry_after: None,
                    }
                } else {
                    Failure::Final(ModelError::Failed {
                        kind: error.kind,
                        message: error.message,
                        partial,
                    })
                }
            });
        }
    }
}

/// How long listing the models may take in all.
const MODELS_TIMEOUT: Duration = Duration::from_secs(20);

pub(super) async fn list_models(
    client: &ModelClient,
    cancel: &CancellationToken,
) -> Result<Vec<ModelInfo>, ModelError> {
    let deadline = Instant::now() + MODELS_TIMEOUT;
    let request = client
        .provider
        .models_request(&client.http, &client.base_url, &client.api_key)
        .timeout(MODELS_TIMEOUT);
    let response = match request.send().or_cancel(cancel).await {
        Err(Cancelled) => return Err(ModelError::Cancelled { partial: None }),
        Ok(response) => response.map_err(|error| final_error(client.send_failure(&error)))?,
    };
    if !response.status().is_success() {
        return Err(final_error(
            client.http_failure(response, cancel, Some(deadline)).await,
        ));
    }
    let Some(body) = read_small_body(response, cancel, Some(deadline)).await else {
        return Err(ModelError::Cancelled { partial: None });
    };
    let models = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|value| client.provider.models(&value));
    models.ok_or_else(|| {
        failed(
            ErrorKind::Protocol,
            format!(
                "{} answered the model list request with something that is not a model list; \
                 type the model name instead",
                host_of(&client.base_url)
            ),
        )
    })
}

/// What a failure means when there is no other attempt.
fn final_error(failure: Failure) -> ModelError {
    match failure {
        Failure::Final(error) => error,
        Failure::Retryable { kind, message, .. } => failed(kind, message),
    }
}

/// Longest body kept while it may be one whole JSON reply; a longer one is not read as one.
const MAX_WHOLE_REPLY: usize = 16 * 1024 * 1024;

/// A body with no SSE line in it: one whole reply in the provider's JSON format, decoded as
/// the stream it stands for (its text reaches `on_delta` at once), else a clear error.
fn whole_reply(
    client: &ModelClient,
    mut decoder: Box<dyn Decoder>,
    body: &[u8],
    on_delta: &mut (dyn FnMut(StreamDelta) + Send),
) -> Result<Completion, Failure> {
    let events = if body.len() < MAX_WHOLE_REPLY {
        serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| client.provider.whole_reply(&value))
    } else {
        None
    };
    let Some(events) = events else {
        let start = &body[..body.len().min(200)];
        return Err(Failure::Final(failed(
            ErrorKind::Protocol,
            client.not_sse_failure(start),
        )));
    };
    for event in &events {
        match decoder.event(event, &mut *on_delta) {
            Ok(Decoded::Done) => break,
            Ok(Decoded::Data | Decoded::KeepAlive) => {}
            Err(error) => return Err(stream_failure(&*decoder, error)),
        }
    }
    decoder
        .finish()
        .map_err(|error| Failure::Final(failed(error.kind, error.message)))
}

/// After the model finished, read the rest of the body (usually just the chunked terminator)
/// off the caller's path, so the connection goes back to the pool instead of being closed.
fn drain_in_background<S>(mut body: S)
where
    S: futures_util::Stream + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while body.next().await.is_some() {}
        })
        .await;
    });
}

/// Reads a small (error or non-stream) body, giving up after 10 s or the call's deadline so a
/// server that never finishes it cannot hold the turn. None when cancelled.
async fn read_small_body(
    response: reqwest::Response,
    cancel: &CancellationToken,
    deadline: Option<Instant>,
) -> Option<String> {
    let read_until = Instant::now() + Duration::from_secs(10);
    let read_until = deadline.map_or(read_until, |d| d.min(read_until));
    async {
        tokio::select! {
            _ = sleep_until(read_until) => String::new(),
            body = response.text() => body.unwrap_or_default(),
        }
    }
    .or_cancel(cancel)
    .await
    .ok()
}
