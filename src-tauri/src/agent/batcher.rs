//! Token batching: at most one `Token` event per interval per turn (16 ms unless the sink asks
//! for more, see `EventSink::token_interval`). Text that arrives sooner waits in a buffer that a
//! timer flushes when its slot comes, and that is flushed at once before any other event (so
//! order is kept) and at turn end.

use std::future::Future;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::event::{Event, EventSink};

/// Shortest gap between two `Token` events of one turn, unless the sink asks for a longer one.
pub const TOKEN_INTERVAL: Duration = Duration::from_millis(16);

#[derive(Default)]
struct State {
    buffer: String,
    last_emit: Option<Instant>,
}

/// Wraps a turn's sink. Every event of the turn goes through it so batched text is never
/// overtaken by a later event.
pub struct TokenBatcher<'a> {
    sink: &'a dyn EventSink,
    interval: Duration,
    state: Mutex<State>,
    wake: Notify,
}

impl<'a> TokenBatcher<'a> {
    pub fn new(sink: &'a dyn EventSink) -> Self {
        Self {
            sink,
            interval: sink.token_interval().max(TOKEN_INTERVAL),
            state: Mutex::new(State::default()),
            wake: Notify::new(),
        }
    }

    /// Streamed reply text: sent now if the last `Token` is at least an interval old, else
    /// buffered.
    pub fn push(&self, text: &str) {
        if text.is_empty() {
            return;
        }
        let mut state = self.lock();
        state.buffer.push_str(text);
        let now = Instant::now();
        match state.last_emit {
            Some(last) if now < last + self.interval => {
                drop(state);
                // Wakes `drive` so it arms the timer for this buffer.
                self.wake.notify_one();
            }
            Some(_) | None => self.emit_buffer(&mut state, now),
        }
    }

    /// Sends whatever text is buffered, regardless of the interval.
    pub fn flush(&self) {
        let mut state = self.lock();
        self.emit_buffer(&mut state, Instant::now());
    }

    /// Any other event: buffered text first, then the event.
    pub fn emit(&self, event: Event) {
        let mut state = self.lock();
        self.emit_buffer(&mut state, Instant::now());
        self.sink.emit(event);
    }

    /// Runs `work` while flushing buffered text when its slot comes. Polls `work` first, so a
    /// finished (or cancelled) call is never held up by the timer.
    pub async fn drive<F: Future>(&self, work: F) -> F::Output {
        tokio::pin!(work);
        loop {
            let due = self.due_at();
            tokio::select! {
                biased;
                output = &mut work => return output,
                _ = self.wake.notified() => {}
                _ = sleep_until(due) => self.flush_due(),
            }
        }
    }

    fn due_at(&self) -> Option<Instant> {
        let state = self.lock();
        match state.last_emit {
            Some(last) if !state.buffer.is_empty() => Some(last + self.interval),
            Some(_) | None => None,
        }
    }

    fn flush_due(&self) {
        let mut state = self.lock();
        let now = Instant::now();
        let due = match state.last_emit {
            Some(last) => now >= last + self.interval,
            None => true,
        };
        if due {
            self.emit_buffer(&mut state, now);
        }
    }

    fn emit_buffer(&self, state: &mut State, now: Instant) {
        if state.buffer.is_empty() {
            return;
        }
        let text = std::mem::take(&mut state.buffer);
        state.last_emit = Some(now);
        self.sink.emit(Event::Token { text });
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    type Seen = Arc<Mutex<Vec<(Instant, Event)>>>;

    fn collector() -> (Seen, impl Fn(Event) + Send + Sync) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink_seen = seen.clone();
        let sink = move |event: Event| {
            sink_seen.lock().unwrap().push((Instant::now(), event));
        };
        (seen, sink)
    }

    #[tokio::test]
    async fn batches_fast_tokens_and_keeps_text() {
        let (seen, sink) = collector();
        let batcher = TokenBatcher::new(&sink);
        let mut expected = String::new();
        batcher
            .drive(async {
                for i in 0..100 {
                    let piece = format!("t{i} ");
                    expected.push_str(&piece);
                    batcher.push(&piece);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await;
        batcher.emit(Event::Done { usage: None });
        let seen = seen.lock().unwrap();
        let tokens: Vec<&(Instant, Event)> = seen
            .iter()
            .filter(|(_, e)| matches!(e, Event::Token { .. }))
            .collect();
        let text: String = tokens
            .iter()
            .map(|(_, e)| match e {
                Event::Token { text } => text.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(text, expected);
        assert!(tokens.len() < 50, "{} token events", tokens.len());
        // The final flush may come early; every other gap respects the interval.
        for pair in tokens[..tokens.len() - 1].windows(2) {
            assert!(pair[1].0 - pair[0].0 >= TOKEN_INTERVAL);
        }
        assert!(matches!(seen.last(), Some((_, Event::Done { .. }))));
    }

    /// A sink that wants at most one token event per 50 ms.
    struct Slow(Seen);

    impl EventSink for Slow {
        fn emit(&self, event: Event) {
            self.0.lock().unwrap().push((Instant::now(), event));
        }

        fn token_interval(&self) -> Duration {
            Duration::from_millis(50)
        }
    }

    #[tokio::test]
    async fn a_sink_may_ask_for_a_longer_interval() {
        let seen: Seen = Arc::new(Mutex::new(Vec::new()));
        let sink = Slow(seen.clone());
        let batcher = TokenBatcher::new(&sink);
        batcher
            .drive(async {
                for i in 0..100 {
                    batcher.push(&format!("t{i} "));
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            })
            .await;
        batcher.flush();
        let seen = seen.lock().unwrap();
        let at: Vec<Instant> = seen.iter().map(|(at, _)| *at).collect();
        assert!(at.len() < 10, "{} token events for 100 pieces", at.len());
        for pair in at[..at.len() - 1].windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_millis(50));
        }
    }

    #[tokio::test]
    async fn buffered_text_is_flushed_by_the_timer() {
        let (seen, sink) = collector();
        let batcher = TokenBatcher::new(&sink);
        batcher
            .drive(async {
                batcher.push("a");
                batcher.push("b");
                // Nothing more arrives for a while: "b" must not wait for the next token.
                tokio::time::sleep(Duration::from_millis(60)).await;
                assert_eq!(seen.lock().unwrap().len(), 2);
            })
            .await;
    }
}
