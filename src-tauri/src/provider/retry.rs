//! When and how long to wait before another attempt. The decision to retry is made in one
//! place (`transport`), with this policy.

use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::event::ErrorKind;

/// Exponential backoff with jitter, capped, and a limit on how long a `Retry-After` may ask.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, the first included (at least 1).
    pub max_attempts: u32,
    /// Delay before the first retry, before jitter.
    pub base: Duration,
    /// Cap on the exponential delay.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the call fails and says so.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base: Duration::from_millis(1000),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// What to do after a retryable failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
    Wait(Duration),
    /// The server asked for a wait longer than `max_retry_after`.
    TooLong(Duration),
}

impl RetryPolicy {
    pub fn with_attempts(max_attempts: u32) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            ..Self::default()
        }
    }

    /// Backoff after failed attempt number `attempt` (1-based): base * 2^(attempt-1), capped,
    /// jittered to between half and all of it so clients that failed together spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self
            .base
            .saturating_mul(1u32 << exp)
            .min(self.max_delay)
            .as_millis() as u64;
        let half = full / 2;
        Duration::from_millis(half + fastrand::u64(0..=full - half))
    }

    /// The wait before the next attempt: the server's `Retry-After` when it gave one, else backoff.
    pub fn decide(&self, attempt: u32, retry_after: Option<Duration>) -> RetryDecision {
        match retry_after {
            Some(wait) if wait > self.max_retry_after => RetryDecision::TooLong(wait),
            Some(wait) => RetryDecision::Wait(wait),
            None => RetryDecision::Wait(self.backoff(attempt)),
        }
    }
}

/// How an HTTP status is treated: its error kind, and whether another attempt may help.
pub fn classify_status(status: u16) -> (ErrorKind, bool) {
    match status {
        401 | 403 => (ErrorKind::Auth, false),
        408 | 409 | 425 | 429 => (ErrorKind::Http, true),
        500..=599 => (ErrorKind::Http, true),
        _ => (ErrorKind::Http, false),
    }
}

/// `retry-after-ms` (OpenAI), else `Retry-After` as seconds or as an HTTP date.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_millis(ms as u64));
    }
    parse_retry_after(text("retry-after")?, chrono::Utc::now())
}

/// Parses a `Retry-After` value: delay-seconds or an HTTP date (a past date means now).
pub fn parse_retry_after(value: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = date.with_timezone(&chrono::Utc) - now;
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_date() {
        let now = chrono::DateTime::parse_from_rfc2822("Sun, 06 Nov 1994 08:49:37 GMT")
            .map(|d| d.with_timezone(&chrono::Utc))
            .unwrap_or_default();
        assert_eq!(parse_retry_after("3", now), Some(Duration::from_secs(3)));
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:42 GMT", now),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy::default();
        for attempt in 1..10 {
            let full = (1000u64 << (attempt - 1)).min(30_000);
            let wait = policy.backoff(attempt).as_millis() as u64;
            assert!(wait >= full / 2 && wait <= full, "{attempt}: {wait}");
        }
    }
}
