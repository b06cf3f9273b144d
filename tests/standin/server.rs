//! The server: accepts connections, records each request, answers with the next scripted
//! reply, and notes when the client went away.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinSet;

use super::encode::{Ctx, Encoded};
use super::http::{self, Request};
use super::reply::{Kind, Reply, Tail};
use super::{anthropic, control, demo, openai, validate};

/// One request as the stand-in received it.
#[derive(Clone, Debug)]
pub struct Captured {
    pub method: String,
    pub path: String,
    /// Lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// Parsed JSON body (`Null` when empty or not JSON).
    pub body: Value,
    pub at: Instant,
    /// Some when the validator rejected the request with 400 (the error message sent).
    pub validation_error: Option<String>,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
pub(super) struct Log {
    /// Bumped by reset so in-flight connections do not write into a new log.
    pub generation: u64,
    pub requests: Vec<Captured>,
    pub disconnects: Vec<Option<Instant>>,
}

pub(super) struct State {
    pub queue: Mutex<VecDeque<Reply>>,
    pub log: Mutex<Log>,
    pub api_key: Mutex<Option<String>>,
    pub demo: AtomicBool,
    pub started: Instant,
    /// Bumped on every new request / disconnect, for the `wait_*` helpers.
    pub changed: watch::Sender<u64>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not take the others down with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    fn bump(&self) {
        self.changed.send_modify(|n| *n += 1);
    }

    fn capture(&self, c: Captured) -> (u64, usize) {
        let mut log = lock(&self.log);
        log.requests.push(c);
        log.disconnects.push(None);
        let at = (log.generation, log.requests.len() - 1);
        drop(log);
        self.bump();
        at
    }

    fn record_disconnect(&self, (generation, index): (u64, usize), t: Instant) {
        let mut log = lock(&self.log);
        if log.generation == generation
            && let Some(slot) = log.disconnects.get_mut(index)
            && slot.is_none()
        {
            *slot = Some(t);
        }
        drop(log);
        self.bump();
    }

    pub fn reset(&self) {
        lock(&self.queue).clear();
        let mut log = lock(&self.log);
        log.generation += 1;
        log.requests.clear();
        log.disconnects.clear();
        drop(log);
        self.bump();
    }
}

/// The stand-in LLM server; serves until dropped.
///
/// It runs on its own thread with its own tokio runtime, so a test that blocks its thread
/// (e.g. `std::process::Command::output()` on a current-thread runtime) does not stall
/// the server, and disconnect times are taken promptly.
pub struct StandIn {
    addr: SocketAddr,
    state: Arc<State>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        // Ends the accept loop; its JoinSet and runtime drop, closing every connection.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl StandIn {
    /// Binds 127.0.0.1 on a free port. Panics if it cannot (tests only).
    pub async fn start() -> StandIn {
        StandIn::start_blocking()
    }

    /// `start` for tests without a runtime.
    pub fn start_blocking() -> StandIn {
        match StandIn::serve(0) {
            Ok(s) => s,
            Err(e) => panic!("stand-in: cannot bind 127.0.0.1:0: {e}"),
        }
    }

    /// Binds 127.0.0.1:`port` (0 = any free port).
    pub async fn bind(port: u16) -> std::io::Result<StandIn> {
        StandIn::serve(port)
    }

    fn serve(port: u16) -> std::io::Result<StandIn> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (changed, _) = watch::channel(0u64);
        let state = Arc::new(State {
            queue: Mutex::new(VecDeque::new()),
            log: Mutex::new(Log::default()),
            api_key: Mutex::new(None),
            demo: AtomicBool::new(false),
            started: Instant::now(),
            changed,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let st = state.clone();
        std::thread::Builder::new()
            .name(format!("standin-{}", addr.port()))
            .spawn(move || {
                rt.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            eprintln!("stand-in: cannot serve: {e}");
                            return;
                        }
                    };
                    tokio::select! {
                        _ = accept_loop(listener, st) => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(StandIn {
            addr,
            state,
            stop: Some(stop),
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://127.0.0.1:PORT/v1` (requests go to `{base}/chat/completions`).
    pub fn openai_base(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// `http://127.0.0.1:PORT` (requests go to `{base}/v1/messages`).
    pub fn anthropic_base(&self) -> String {
        self.url()
    }

    /// Queues a reply; each model request pops one, first in first out.
    pub fn push(&self, reply: Reply) {
        lock(&self.state.queue).push_back(reply);
    }

    /// Replies still queued.
    pub fn pending(&self) -> usize {
        lock(&self.state.queue).len()
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Captured> {
        lock(&self.state.log).requests.clone()
    }

    /// When the client closed request `i`'s connection (or the server reset it).
    pub fn disconnect_at(&self, i: usize) -> Option<Instant> {
        lock(&self.state.log).disconnects.get(i).copied().flatten()
    }

    pub async fn wait_disconnect(&self, i: usize, timeout: Duration) -> Option<Instant> {
        let mut rx = self.state.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(t) = self.disconnect_at(i) {
                return Some(t);
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return self.disconnect_at(i),
            }
        }
    }

    /// Waits until at least `n` requests have arrived; false on timeout.
    pub async fn wait_requests(&self, n: usize, timeout: Duration) -> bool {
        let mut rx = self.state.changed.subscribe();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if lock(&self.state.log).requests.len() >= n {
                return true;
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return lock(&self.state.log).requests.len() >= n,
            }
        }
    }

    /// From now on a missing or wrong key gets 401 in the provider's error shape.
    pub fn require_api_key(&self, key: &str) {
        *lock(&self.state.api_key) = Some(key.to_string());
    }

    /// When on, an empty queue answers with the demo conversation instead of 500.
    pub fn set_demo(&self, on: bool) {
        self.state.demo.store(on, Ordering::SeqCst);
    }

    /// Forgets queued replies and recorded requests.
    pub fn reset(&self) {
        self.state.reset();
    }
}

async fn accept_loop(listener: TcpListener, state: Arc<State>) {
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                let _ = stream.set_nodelay(true);
                conns.spawn(serve_conn(stream, state.clone()));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Provider {
    Openai,
    Anthropic,
}

/// How a response ended.
enum End {
    /// Sent completely; the client may close whenever it likes.
    Finished,
    /// The client closed (or failed a write) at this instant.
    Gone(Instant),
    /// Close with a TCP reset.
    Reset,
}

async fn serve_conn(mut stream: TcpStream, state: Arc<State>) {
    let req = match http::read_request(&mut stream).await {
        Ok(Some(r)) => r,
        Ok(None) | Err(_) => return,
    };
    if req.path.starts_with("/_standin/") {
        let (status, body) = control::handle(&state, &req);
        let bytes = http::response(status, &[], "application/json", body.to_string().as_bytes());
        let _ = stream.write_all(&bytes).await;
        let _ = stream.shutdown().await;
        return;
    }
    let body: Value = if req.body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&req.body).unwrap_or(Value::Null)
    };
    let provider = match (req.method.as_str(), req.path.as_str()) {
        ("POST", "/v1/chat/completions" | "/chat/completions") => Some(Provider::Openai),
        ("POST", "/v1/messages") => Some(Provider::Anthropic),
        _ => None,
    };
    let Some(provider) = provider else {
        let key = lock(&state.api_key).clone();
        let (status, json) = other_route(&req, key.as_deref());
        let slot = state.capture(captured(&req, body, None));
        let bytes = http::response(status, &[], "application/json", json.to_string().as_bytes());
        let end = write_all_or_gone(&mut stream, &bytes).await;
        finish(stream, &state, slot, end).await;
        return;
    };

    let key_ok = match lock(&state.api_key).as_deref() {
        None => true,
        Some(key) => match provider {
            Provider::Openai => req.header("authorization") == Some(&format!("Bearer {key}")),
            Provider::Anthropic => req.header("x-api-key") == Some(key),
        },
    };
    let invalid = if !req.body.is_empty() && body.is_null() {
        Some("We could not parse the JSON body of your request.".to_string())
    } else if key_ok {
        match provider {
            Provider::Openai => validate::openai(&body).err(),
            Provider::Anthropic => validate::anthropic(&body).err(),
        }
    } else {
        None
    };
    let slot = state.capture(captured(&req, body.clone(), invalid.clone()));

    let error = |status: u16, msg: Option<&str>| match provider {
        Provider::Openai => openai::error_body(status, msg),
        Provider::Anthropic => anthropic::error_body(status, msg),
    };
    let end = if !key_ok {
        let bytes = json_response(401, &[], &error(401, None));
        write_all_or_gone(&mut stream, &bytes).await
    } else if let Some(msg) = invalid {
        let bytes = json_response(400, &[], &error(400, Some(&msg)));
        write_all_or_gone(&mut stream, &bytes).await
    } else {
        let next = lock(&state.queue).pop_front();
        let reply = match next {
            Some(r) => Some(r),
            None if state.demo.load(Ordering::SeqCst) => Some(match provider {
                Provider::Openai => demo::openai(&body),
                Provider::Anthropic => demo::anthropic(&body),
            }),
            None => None,
        };
        match reply {
            None => {
                let bytes =
                    json_response(500, &[], &error(500, Some("stand-in: no scripted reply")));
                write_all_or_gone(&mut stream, &bytes).await
            }
            Some(reply) => serve_reply(&mut stream, provider, &body, slot.1, &reply, &error).await,
        }
    };
    finish(stream, &state, slot, end).await;
}

fn captured(req: &Request, body: Value, validation_error: Option<String>) -> Captured {
    Captured {
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.clone(),
        body,
        at: Instant::now(),
        validation_error,
    }
}

fn other_route(req: &Request, key: Option<&str>) -> (u16, Value) {
    match (req.method.as_str(), req.path.as_str()) {
        ("GET", "/v1/models" | "/models") => models(req, key),
        _ => (
            404,
            json!({"error": {"message": format!("stand-in: no route for {} {}", req.method, req.path),
                             "type": "invalid_request_error", "param": null, "code": "unknown_url"}}),
        ),
    }
}

/// `GET /v1/models` in the shape of the API that asked: Anthropic clients send
/// `anthropic-version` and authenticate with `x-api-key`, OpenAI ones with a bearer token.
fn models(req: &Request, key: Option<&str>) -> (u16, Value) {
    let anthropic_client = req.header("anthropic-version").is_some();
    let key_ok = key.is_none_or(|key| {
        if anthropic_client {
            req.header("x-api-key") == Some(key)
        } else {
            req.header("authorization") == Some(&format!("Bearer {key}"))
        }
    });
    if anthropic_client {
        if !key_ok {
            return (401, anthropic::error_body(401, None));
        }
        let model = |id: &str, name: &str| json!({"type": "model", "id": id, "display_name": name, "created_at": "2025-05-14T00:00:00Z"});
        return (
            200,
            json!({"data": [model("claude-standin", "Claude Stand-in"), model("claude-standin-mini", "Claude Stand-in Mini")],
                   "has_more": false, "first_id": "claude-standin", "last_id": "claude-standin-mini"}),
        );
    }
    if !key_ok {
        return (401, openai::error_body(401, None));
    }
    let model = |id: &str| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "talaria-standin"});
    (
        200,
        json!({"object": "list", "data": [model("standin-model"), model("standin-large")]}),
    )
}

fn json_response(status: u16, extra: &[(String, String)], v: &Value) -> Vec<u8> {
    http::response(status, extra, "application/json", v.to_string().as_bytes())
}

async fn write_all_or_gone(stream: &mut TcpStream, bytes: &[u8]) -> End {
    match stream.write_all(bytes).await {
        Ok(()) => End::Finished,
        Err(_) => End::Gone(Instant::now()),
    }
}

/// Closes the connection the way `end` says and records when the client went away.
async fn finish(mut stream: TcpStream, state: &State, slot: (u64, usize), end: End) {
    match end {
        End::Gone(t) => state.record_disconnect(slot, t),
        End::Reset => {
            // SO_LINGER 0 makes close() send RST; a zero linger never blocks the thread.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
            state.record_disconnect(slot, Instant::now());
        }
        End::Finished => {
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
            // Wait (bounded) for the client to close its side, so the time is known.
            let mut buf = [0u8; 1024];
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            loop {
                match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        state.record_disconnect(slot, Instant::now());
                        break;
                    }
                    Ok(Ok(_)) => {}
                    Err(_) => break,
                }
            }
        }
    }
}

fn request_ctx(provider: Provider, body: &Value, seq: usize) -> Ctx {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(match provider {
            Provider::Openai => "standin-model",
            Provider::Anthropic => "claude-standin",
        })
        .to_string();
    Ctx {
        seq,
        model,
        created: chrono::Utc::now().timestamp(),
        include_usage: body
            .pointer("/stream_options/include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        prompt_estimate: (body.to_string().len() / 4) as u64 + 1,
    }
}

async fn serve_reply(
    stream: &mut TcpStream,
    provider: Provider,
    body: &Value,
    seq: usize,
    reply: &Reply,
    error: &(dyn Fn(u16, Option<&str>) -> Value + Sync),
) -> End {
    let (mut r, mut w) = stream.split();
    if reply.first_byte_delay_ms > 0
        && let Some(t) = pause(&mut r, Duration::from_millis(reply.first_byte_delay_ms)).await
    {
        return End::Gone(t);
    }
    let request_id = match provider {
        Provider::Openai => ("x-request-id".to_string(), format!("req_standin{seq}")),
        Provider::Anthropic => ("request-id".to_string(), format!("req_standin{seq}")),
    };
    if reply.kind == Kind::Status {
        let status = reply.status.unwrap_or(500);
        let mut extra = vec![request_id];
        if let Some(s) = reply.retry_after {
            extra.push(("retry-after".to_string(), s.to_string()));
        }
        let bytes = json_response(status, &extra, &error(status, reply.message.as_deref()));
        return match w.write_all(&bytes).await {
            Ok(()) => End::Finished,
            Err(_) => End::Gone(Instant::now()),
        };
    }
    let ctx = request_ctx(provider, body, seq);
    let streaming = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    if (!streaming || reply.whole) && reply.raw.is_none() {
        let v = match reply.kind {
            Kind::Anthropic => anthropic::complete(reply, &ctx),
            Kind::Openai | Kind::Status => openai::complete(reply, &ctx),
        };
        return match w.write_all(&json_response(200, &[request_id], &v)).await {
            Ok(()) => End::Finished,
            Err(_) => End::Gone(Instant::now()),
        };
    }
    let mut enc = match reply.kind {
        Kind::Anthropic => anthropic::encode(reply, &ctx),
        Kind::Openai | Kind::Status => openai::encode(reply, &ctx),
    };
    if let Some(raw) = &reply.raw {
        enc.events = split_raw(raw);
        enc.ending_at = enc.events.len();
        enc.drip_prefix.clear();
    }
    stream_events(&mut r, &mut w, reply, &enc, request_id).await
}

/// Raw bodies count as events at blank-line boundaries.
fn split_raw(raw: &str) -> Vec<Vec<u8>> {
    let bytes = raw.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    while let Some(p) = http::find(&bytes[start..], b"\n\n") {
        out.push(bytes[start..start + p + 2].to_vec());
        start += p + 2;
    }
    if start < bytes.len() {
        out.push(bytes[start..].to_vec());
    }
    out
}

async fn stream_events(
    r: &mut ReadHalf<'_>,
    w: &mut WriteHalf<'_>,
    reply: &Reply,
    enc: &Encoded,
    request_id: (String, String),
) -> End {
    if let Err(t) = write(w, &http::stream_head(&[request_id])).await {
        return End::Gone(t);
    }
    let (mut events, tail): (Vec<&[u8]>, Option<&Tail>) = match &reply.after {
        None => (enc.events.iter().map(Vec::as_slice).collect(), None),
        Some(a) => match &a.tail {
            Tail::Drip { .. } => (
                enc.events[..enc.ending_at]
                    .iter()
                    .chain(enc.drip_prefix.iter())
                    .map(Vec::as_slice)
                    .collect(),
                Some(&a.tail),
            ),
            Tail::Stall | Tail::Keepalive { .. } | Tail::Reset => (
                enc.events[..a.n_events.min(enc.events.len())]
                    .iter()
                    .map(Vec::as_slice)
                    .collect(),
                Some(&a.tail),
            ),
        },
    };
    let body: Vec<u8> = events.concat();
    let pieces: Vec<&[u8]>;
    if let Some(n) = reply.cut_every {
        pieces = body.chunks(n.max(1)).collect();
        events = pieces;
    } else if !reply.cut_at.is_empty() {
        let mut cuts: Vec<usize> = reply
            .cut_at
            .iter()
            .copied()
            .filter(|&c| c > 0 && c < body.len())
            .collect();
        cuts.sort_unstable();
        cuts.dedup();
        let mut v = Vec::new();
        let mut prev = 0;
        for c in cuts.into_iter().chain(std::iter::once(body.len())) {
            v.push(&body[prev..c]);
            prev = c;
        }
        events = v;
    }
    let delay = Duration::from_millis(reply.delay_ms);
    for (k, seg) in events.iter().enumerate() {
        if k > 0
            && !delay.is_zero()
            && let Some(t) = pause(r, delay).await
        {
            return End::Gone(t);
        }
        if seg.is_empty() {
            continue;
        }
        if let Err(t) = write(w, &http::chunk(seg)).await {
            return End::Gone(t);
        }
    }
    match tail {
        None => match write(w, b"0\r\n\r\n").await {
            Ok(()) => End::Finished,
            Err(t) => End::Gone(t),
        },
        Some(Tail::Reset) => End::Reset,
        Some(Tail::Stall) => loop {
            if let Some(t) = pause(r, Duration::from_secs(3600)).await {
                return End::Gone(t);
            }
        },
        Some(Tail::Keepalive { every_ms }) => loop {
            if let Some(t) = pause(r, Duration::from_millis((*every_ms).max(1))).await {
                return End::Gone(t);
            }
            if let Err(t) = write(w, &http::chunk(enc.keepalive())).await {
                return End::Gone(t);
            }
        },
        Some(Tail::Drip { every_ms }) => {
            for k in 0.. {
                if let Some(t) = pause(r, Duration::from_millis((*every_ms).max(1))).await {
                    return End::Gone(t);
                }
                if let Err(t) = write(w, &http::chunk(&enc.drip_event(k))).await {
                    return End::Gone(t);
                }
            }
            End::Finished
        }
    }
}

async fn write(w: &mut WriteHalf<'_>, bytes: &[u8]) -> Result<(), Instant> {
    match w.write_all(bytes).await {
        Ok(()) => match w.flush().await {
            Ok(()) => Ok(()),
            Err(_) => Err(Instant::now()),
        },
        Err(_) => Err(Instant::now()),
    }
}

/// Waits `d` while watching the socket; `Some(when)` if the client closed meanwhile.
async fn pause(r: &mut ReadHalf<'_>, d: Duration) -> Option<Instant> {
    let sleep = tokio::time::sleep(d);
    tokio::pin!(sleep);
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            _ = &mut sleep => return None,
            res = r.read(&mut buf) => match res {
                Ok(0) | Err(_) => return Some(Instant::now()),
                // Anything else the client sends (pipelining) is ignored.
                Ok(_) => {}
            },
        }
    }
}
