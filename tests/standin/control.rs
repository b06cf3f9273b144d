//! `/_standin/*`: drive the server over HTTP when it runs as a process.
//!
//! - `POST /_standin/push`       body: a Reply or an array of Replies → `{"queued": n}`
//! - `GET  /_standin/requests`   → array of `{index, method, path, headers, body, at_ms,
//!   validation_error, disconnect_ms}` (ms since the server started)
//! - `GET  /_standin/disconnects` → array of ms since start, or null
//! - `POST /_standin/reset`      forget queued replies and recorded requests
//! - `POST /_standin/api_key`    body `{"key": "sk-..."}` or `{"key": null}`
//! - `POST /_standin/demo`       body `{"on": true|false}`

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde_json::{Value, json};

use super::http::Request;
use super::reply::Reply;
use super::server::{State, lock};

pub fn handle(state: &State, req: &Request) -> (u16, Value) {
    let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
    let ms = |t: Instant| t.saturating_duration_since(state.started).as_secs_f64() * 1000.0;
    match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/_standin/push") => {
            let replies: Result<Vec<Reply>, _> = if body.is_array() {
                serde_json::from_value(body)
            } else {
                serde_json::from_value(body).map(|r| vec![r])
            };
            match replies {
                Ok(rs) => {
                    let n = rs.len();
                    lock(&state.queue).extend(rs);
                    (200, json!({"queued": n}))
                }
                Err(e) => (400, json!({"error": format!("not a Reply: {e}")})),
            }
        }
        ("GET", "/_standin/requests") => {
            let log = lock(&state.log);
            let list: Vec<Value> = log
                .requests
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    json!({
                        "index": i,
                        "method": c.method,
                        "path": c.path,
                        "headers": c.headers,
                        "body": c.body,
                        "at_ms": ms(c.at),
                        "validation_error": c.validation_error,
                        "disconnect_ms": log.disconnects.get(i).copied().flatten().map(ms),
                    })
                })
                .collect();
            (200, Value::from(list))
        }
        ("GET", "/_standin/disconnects") => {
            let log = lock(&state.log);
            let list: Vec<Value> = log
                .disconnects
                .iter()
                .map(|d| d.map_or(Value::Null, |t| Value::from(ms(t))))
                .collect();
            (200, Value::from(list))
        }
        ("POST", "/_standin/reset") => {
            state.reset();
            (200, json!({"ok": true}))
        }
        ("POST", "/_standin/api_key") => {
            *lock(&state.api_key) = body.get("key").and_then(Value::as_str).map(str::to_string);
            (200, json!({"ok": true}))
        }
        ("POST", "/_standin/demo") => {
            let on = body.get("on").and_then(Value::as_bool).unwrap_or(true);
            state.demo.store(on, Ordering::SeqCst);
            (200, json!({"ok": true, "demo": on}))
        }
        _ => (
            404,
            json!({"error": format!("stand-in: no control endpoint {} {}", req.method, req.path)}),
        ),
    }
}
