//! Self-tests of the stand-in server: wire shapes, the scripted misbehaviours, validators,
//! capture and disconnect timing.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Reply, StandIn};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .build()
        .unwrap_or_else(|e| panic!("client: {e}"))
}

fn openai_body() -> Value {
    json!({"model": "gpt-test", "stream": true, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "hi"}]})
}

fn anthropic_body() -> Value {
    json!({"model": "claude-test", "max_tokens": 100, "stream": true,
           "messages": [{"role": "user", "content": "hi"}]})
}

async fn post_openai(s: &StandIn, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/chat/completions", s.openai_base()))
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn post_anthropic(s: &StandIn, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages", s.anthropic_base()))
        .header("x-api-key", "sk-test")
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// Payloads of the `data:` lines, checking every event ends with a blank line.
fn data_lines(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n"),
        "stream must end with a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not a data event: {e:?}"))
                .to_string()
        })
        .collect()
}

/// (event name, data) pairs, checking the data `type` matches the event name.
fn named_events(body: &str) -> Vec<(String, Value)> {
    assert!(body.ends_with("\n\n"));
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let mut lines = e.lines();
            let name = lines
                .next()
                .unwrap()
                .strip_prefix("event: ")
                .unwrap()
                .to_string();
            let data: Value =
                serde_json::from_str(lines.next().unwrap().strip_prefix("data: ").unwrap())
                    .unwrap();
            assert_eq!(data["type"], name.as_str(), "{e}");
            assert!(lines.next().is_none());
            (name, data)
        })
        .collect()
}

#[tokio::test]
async fn openai_stream_shape() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .reasoning("let me think")
            .text("Hello there, friend")
            .tool_call("call_1", "read_file", r#"{"path":"a/very/long/name.txt"}"#)
            .tool_call("call_2", "todo", r#"{"todos":[]}"#)
            .usage(12, 34),
    );
    let resp = post_openai(&s, &openai_body()).await;
    assert_eq!(resp.status(), 200);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/event-stream"), "{ct}");
    assert_eq!(resp.headers()["transfer-encoding"], "chunked");
    let body = resp.text().await.unwrap();
    let lines = data_lines(&body);
    assert_eq!(lines.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for c in &chunks {
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["id"], "chatcmpl-standin0");
        assert_eq!(c["model"], "gpt-test");
        assert!(c["created"].is_i64());
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let mut content = String::new();
    let mut reasoning = String::new();
    let mut args = [String::new(), String::new()];
    let mut openings = 0;
    let mut finish = None;
    let body_chunks = &chunks[..chunks.len() - 1];
    for c in body_chunks {
        let choice = &c["choices"][0];
        assert_eq!(choice["index"], 0);
        if let Some(f) = choice["finish_reason"].as_str() {
            finish = Some(f.to_string());
        }
        let d = &choice["delta"];
        if let Some(t) = d["content"].as_str() {
            content.push_str(t);
        }
        if let Some(t) = d["reasoning_content"].as_str() {
            reasoning.push_str(t);
        }
        if let Some(calls) = d["tool_calls"].as_array() {
            assert_eq!(calls.len(), 1);
            let f = &calls[0];
            let i = f["index"].as_u64().unwrap() as usize;
            if f.get("id").is_some() {
                openings += 1;
                assert_eq!(f["type"], "function");
                assert_eq!(f["function"]["arguments"], "");
                assert_eq!(f["function"]["name"], ["read_file", "todo"][i]);
                assert_eq!(f["id"], ["call_1", "call_2"][i]);
                assert!(args[i].is_empty(), "opening fragment comes first");
            } else {
                assert!(f.get("type").is_none() && f["function"].get("name").is_none());
                args[i].push_str(f["function"]["arguments"].as_str().unwrap());
            }
        }
    }
    assert_eq!(openings, 2);
    assert_eq!(content, "Hello there, friend");
    assert_eq!(reasoning, "let me think");
    assert_eq!(args[0], r#"{"path":"a/very/long/name.txt"}"#);
    assert_eq!(args[1], r#"{"todos":[]}"#);
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 12, "completion_tokens": 34, "total_tokens": 46})
    );
    // The captured request.
    let reqs = s.requests();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v1/chat/completions");
    assert_eq!(reqs[0].body["messages"][0]["content"], "hi");
    assert!(reqs[0].headers.iter().any(|(n, _)| n == "content-type"));
    assert!(reqs[0].validation_error.is_none());
}

#[tokio::test]
async fn openai_text_only_finishes_with_stop() {
    let s = StandIn::start().await;
    s.push(Reply::openai().tokens(&["Hel", "lo"]));
    let body = post_openai(&s, &openai_body()).await.text().await.unwrap();
    let lines = data_lines(&body);
    let chunks: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "Hel");
    assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "lo");
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    assert!(chunks[4]["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn openai_error_in_stream() {
    let s = StandIn::start().await;
    s.push(Reply::openai().text("partial").error_in_stream("boom"));
    let body = post_openai(&s, &openai_body()).await.text().await.unwrap();
    let lines = data_lines(&body);
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["error"]["message"], "boom");
    assert!(!body.contains("[DONE]"));
}

#[tokio::test]
async fn anthropic_event_sequence() {
    let s = StandIn::start().await;
    s.push(
        Reply::anthropic()
            .thinking("hmm, let me see", "sig-abc")
            .text("Hello world")
            .tool_use("toolu_1", "todo", r#"{"todos":[{"id":"1"}]}"#)
            .usage(12, 34),
    );
    let resp = post_anthropic(&s, &anthropic_body()).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    let ev = named_events(&body);
    let names: Vec<&str> = ev.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
    assert_eq!(names[names.len() - 2], "message_delta");
    assert_eq!(names[names.len() - 1], "message_stop");
    assert!(names.contains(&"ping"));
    let m = &ev[0].1["message"];
    assert_eq!(m["role"], "assistant");
    assert_eq!(m["type"], "message");
    assert_eq!(m["model"], "claude-test");
    assert_eq!(m["content"], json!([]));
    assert_eq!(m["usage"]["input_tokens"], 12);
    // Blocks open, get deltas, close, in index order.
    let mut open: Option<u64> = None;
    let mut next_index = 0;
    let mut kinds = Vec::new();
    let (mut thinking, mut sig, mut text, mut json_in) =
        (String::new(), String::new(), String::new(), String::new());
    for (name, d) in &ev {
        match name.as_str() {
            "content_block_start" => {
                assert!(open.is_none());
                assert_eq!(d["index"], next_index);
                open = Some(next_index);
                let b = &d["content_block"];
                kinds.push(b["type"].as_str().unwrap().to_string());
                if b["type"] == "tool_use" {
                    assert_eq!(b["id"], "toolu_1");
                    assert_eq!(b["name"], "todo");
                    assert_eq!(b["input"], json!({}));
                }
            }
            "content_block_delta" => {
                assert_eq!(d["index"], open.unwrap());
                let delta = &d["delta"];
                match delta["type"].as_str().unwrap() {
                    "thinking_delta" => thinking.push_str(delta["thinking"].as_str().unwrap()),
                    "signature_delta" => sig.push_str(delta["signature"].as_str().unwrap()),
                    "text_delta" => text.push_str(delta["text"].as_str().unwrap()),
                    "input_json_delta" => json_in.push_str(delta["partial_json"].as_str().unwrap()),
                    other => panic!("unexpected delta {other}"),
                }
            }
            "content_block_stop" => {
                assert_eq!(d["index"], open.take().unwrap());
                next_index += 1;
            }
            "message_delta" => {
                assert!(open.is_none());
                assert_eq!(d["delta"]["stop_reason"], "tool_use");
                assert_eq!(d["usage"]["output_tokens"], 34);
            }
            "message_start" | "message_stop" | "ping" => {}
            other => panic!("unexpected event {other}"),
        }
    }
    assert_eq!(kinds, ["thinking", "text", "tool_use"]);
    assert_eq!(thinking, "hmm, let me see");
    assert_eq!(sig, "sig-abc");
    assert_eq!(text, "Hello world");
    assert_eq!(json_in, r#"{"todos":[{"id":"1"}]}"#);
}

#[tokio::test]
async fn anthropic_end_turn_and_error_event() {
    let s = StandIn::start().await;
    s.push(Reply::anthropic().text("ok"));
    s.push(
        Reply::anthropic()
            .text("partial")
            .error_event("overloaded_error", "Overloaded"),
    );
    let ev = named_events(
        &post_anthropic(&s, &anthropic_body())
            .await
            .text()
            .await
            .unwrap(),
    );
    let delta = ev.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "end_turn");
    let ev = named_events(
        &post_anthropic(&s, &anthropic_body())
            .await
            .text()
            .await
            .unwrap(),
    );
    let (name, last) = ev.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(last["error"]["type"], "overloaded_error");
    assert_eq!(last["error"]["message"], "Overloaded");
}

/// Drops the per-request fields so two streams of the same reply compare equal.
fn normalise(body: &str) -> Vec<Value> {
    data_lines(body)
        .iter()
        .map(|l| match serde_json::from_str::<Value>(l) {
            Ok(mut v) => {
                v["id"] = Value::Null;
                v["created"] = Value::Null;
                v
            }
            Err(_) => Value::from(l.as_str()),
        })
        .collect()
}

#[tokio::test]
async fn cut_every_1_yields_same_bytes() {
    let s = StandIn::start().await;
    let reply = Reply::openai().text("Grüße, wörld ✓").tool_call(
        "call_1",
        "read_file",
        r#"{"path":"ä.txt"}"#,
    );
    s.push(reply.clone());
    s.push(reply.clone().cut_every(1));
    s.push(reply.cut_at(&[1, 5, 6, 200, 201]));
    let whole = post_openai(&s, &openai_body()).await.text().await.unwrap();
    let cut = post_openai(&s, &openai_body()).await.text().await.unwrap();
    let at = post_openai(&s, &openai_body()).await.text().await.unwrap();
    assert_eq!(normalise(&whole), normalise(&cut));
    assert_eq!(normalise(&whole), normalise(&at));
    assert_eq!(whole.len(), cut.len());
}

/// Reads a raw HTTP response and returns (head, chunk payloads).
async fn raw_exchange(addr: std::net::SocketAddr, request: &[u8]) -> (String, Vec<Vec<u8>>) {
    let mut sock = tokio::net::TcpStream::connect(addr).await.unwrap();
    sock.write_all(request).await.unwrap();
    let mut all = Vec::new();
    sock.read_to_end(&mut all).await.unwrap();
    let head_end = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(all[..head_end].to_vec()).unwrap();
    let mut rest = &all[head_end + 4..];
    let mut chunks = Vec::new();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        loop {
            let nl = rest.windows(2).position(|w| w == b"\r\n").unwrap();
            let size =
                usize::from_str_radix(std::str::from_utf8(&rest[..nl]).unwrap(), 16).unwrap();
            rest = &rest[nl + 2..];
            if size == 0 {
                assert_eq!(rest, b"\r\n");
                break;
            }
            chunks.push(rest[..size].to_vec());
            assert_eq!(&rest[size..size + 2], b"\r\n");
            rest = &rest[size + 2..];
        }
    } else {
        chunks.push(rest.to_vec());
    }
    (head, chunks)
}

fn raw_post(path: &str, body: &Value) -> Vec<u8> {
    let b = body.to_string();
    format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{b}",
        b.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn raw_framing_event_per_chunk_and_cut_every() {
    let s = StandIn::start().await;
    s.push(Reply::openai().text("a b"));
    s.push(Reply::openai().text("a b").cut_every(1));
    let (head, chunks) =
        raw_exchange(s.addr(), &raw_post("/v1/chat/completions", &openai_body())).await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("content-type: text/event-stream"));
    for c in &chunks {
        assert!(
            c.ends_with(b"\n\n") && c.starts_with(b"data: "),
            "one event per chunk"
        );
    }
    let (_, cut) = raw_exchange(s.addr(), &raw_post("/v1/chat/completions", &openai_body())).await;
    assert!(cut.iter().all(|c| c.len() == 1));
    assert_eq!(cut.len(), chunks.concat().len());
}

#[tokio::test]
async fn chunked_request_body_is_read() {
    let s = StandIn::start().await;
    s.push(Reply::openai().text("ok"));
    let b = openai_body().to_string();
    let (first, second) = b.split_at(10);
    let req = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{first}\r\n{:x}\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    );
    let (head, _) = raw_exchange(s.addr(), req.as_bytes()).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(s.requests()[0].body, openai_body());
}

#[tokio::test]
async fn stall_after_sends_n_events_then_nothing() {
    let s = StandIn::start().await;
    s.push(Reply::openai().text("one two three four").stall_after(2));
    let resp = post_openai(&s, &openai_body()).await;
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while got.windows(2).filter(|w| w == b"\n\n").count() < 2 {
        let c = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.extend_from_slice(&c);
    }
    assert_eq!(got.windows(2).filter(|w| w == b"\n\n").count(), 2);
    let more = tokio::time::timeout(Duration::from_millis(400), stream.next()).await;
    assert!(
        more.is_err(),
        "nothing may arrive after the stall: {more:?}"
    );
    assert!(s.disconnect_at(0).is_none());
    drop(stream);
    assert!(s.wait_disconnect(0, Duration::from_secs(5)).await.is_some());
}

#[tokio::test]
async fn keepalive_only_sends_comments_and_pings() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .text("never")
            .keepalive_only(Duration::from_millis(30)),
    );
    s.push(
        Reply::anthropic()
            .text("never")
            .keepalive_only(Duration::from_millis(30)),
    );
    for (i, expect) in [
        (0, &b": keep-alive\n\n"[..]),
        (1, &b"event: ping\ndata: {\"type\": \"ping\"}\n\n"[..]),
    ] {
        let resp = if i == 0 {
            post_openai(&s, &openai_body()).await
        } else {
            post_anthropic(&s, &anthropic_body()).await
        };
        let mut stream = resp.bytes_stream();
        let mut got = Vec::new();
        while got.len() < expect.len() * 3 {
            let c = tokio::time::timeout(Duration::from_secs(5), stream.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap();
            got.extend_from_slice(&c);
        }
        assert_eq!(got.len() % expect.len(), 0);
        assert!(got.chunks(expect.len()).all(|c| c == expect));
    }
}

#[tokio::test]
async fn keepalive_after_and_drip() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .text("a b c")
            .keepalive_after(2, Duration::from_millis(20)),
    );
    s.push(
        Reply::anthropic()
            .text("a b")
            .drip(Duration::from_millis(10)),
    );
    let mut stream = post_openai(&s, &openai_body()).await.bytes_stream();
    let mut got = Vec::new();
    while !got.ends_with(b": keep-alive\n\n: keep-alive\n\n") {
        got.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    assert_eq!(String::from_utf8_lossy(&got).matches("data: ").count(), 2);
    let mut stream = post_anthropic(&s, &anthropic_body()).await.bytes_stream();
    let mut got = String::new();
    while !got.contains("drip3 ") {
        let c = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.push_str(&String::from_utf8_lossy(&c));
    }
    assert!(!got.contains("message_stop"));
    assert!(
        got.contains("\"index\":1"),
        "drip opens a new text block: {got}"
    );
}

#[tokio::test]
async fn reset_after_breaks_the_stream() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .text("one two three four five")
            .reset_after(2),
    );
    let resp = post_openai(&s, &openai_body()).await;
    assert_eq!(resp.status(), 200);
    let res = resp.bytes().await;
    assert!(res.is_err(), "a reset stream must not end cleanly: {res:?}");
    // Raw: the events sent before the reset are still readable, then ECONNRESET.
    s.push(Reply::openai().text("one two three").reset_after(3));
    let mut sock = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    sock.write_all(&raw_post("/v1/chat/completions", &openai_body()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let err = loop {
        match sock.read(&mut buf).await {
            Ok(0) => panic!("clean end instead of a reset"),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => break e,
        }
    };
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    assert_eq!(String::from_utf8_lossy(&got).matches("data: ").count(), 3);
    assert!(
        s.disconnect_at(1).is_some(),
        "a reset counts as the disconnect"
    );
}

#[tokio::test]
async fn status_replies_in_provider_shapes() {
    let s = StandIn::start().await;
    s.push(Reply::status(429).retry_after(2));
    s.push(Reply::status(429).retry_after(2));
    s.push(Reply::status(529));
    s.push(Reply::status(500).message("custom words"));
    let resp = post_openai(&s, &openai_body()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    assert!(v["error"]["message"].is_string());
    assert!(v["error"].get("param").is_some());
    let resp = post_anthropic(&s, &anthropic_body()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "rate_limit_error");
    let resp = post_anthropic(&s, &anthropic_body()).await;
    assert_eq!(resp.status().as_u16(), 529);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
    let v: Value = post_openai(&s, &openai_body()).await.json().await.unwrap();
    assert_eq!(v["error"]["message"], "custom words");
    // Empty queue.
    let resp = post_openai(&s, &openai_body()).await;
    assert_eq!(resp.status(), 500);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["message"], "stand-in: no scripted reply");
}

#[tokio::test]
async fn first_byte_delay_holds_the_headers() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .text("late")
            .first_byte_delay(Duration::from_millis(300)),
    );
    let t = Instant::now();
    let resp = post_openai(&s, &openai_body()).await;
    let waited = t.elapsed();
    assert!(waited >= Duration::from_millis(290), "{waited:?}");
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn delay_paces_the_chunks() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .tokens(&["a", "b", "c"])
            .delay(Duration::from_millis(50)),
    );
    let t = Instant::now();
    let body = post_openai(&s, &openai_body()).await.text().await.unwrap();
    // 7 events (role, 3 tokens, finish, usage, DONE) → 6 pauses.
    assert!(
        t.elapsed() >= Duration::from_millis(290),
        "{:?}",
        t.elapsed()
    );
    assert!(body.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn validator_rejects_dangling_openai_tool_call() {
    let s = StandIn::start().await;
    s.push(Reply::openai().text("fine"));
    let mut body = openai_body();
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "todo", "arguments": "{}"}},
            {"id": "call_b", "type": "function", "function": {"name": "todo", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "done"},
        {"role": "user", "content": "and?"}
    ]);
    let resp = post_openai(&s, &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("call_b"), "{msg}");
    assert!(
        s.requests()[0]
            .validation_error
            .as_deref()
            .unwrap()
            .contains("call_b")
    );
    // A tool message answering nothing.
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "tool", "tool_call_id": "call_x", "content": "done"}
    ]);
    assert_eq!(post_openai(&s, &body).await.status(), 400);
    // Arguments must be a string.
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "todo", "arguments": {}}}]},
        {"role": "tool", "tool_call_id": "call_a", "content": "done"}
    ]);
    assert_eq!(post_openai(&s, &body).await.status(), 400);
    // The valid history passes and gets the queued reply (rejections do not pop it).
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "todo", "arguments": "{}"}},
            {"id": "call_b", "type": "function", "function": {"name": "todo", "arguments": "{}"}}
        ]},
        {"role": "tool", "tool_call_id": "call_b", "content": "done"},
        {"role": "tool", "tool_call_id": "call_a", "content": "done"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "and?"}
    ]);
    let resp = post_openai(&s, &body).await;
    assert_eq!(resp.status(), 200);
    assert!(s.requests()[3].validation_error.is_none());
}

#[tokio::test]
async fn validator_rejects_dangling_anthropic_tool_use() {
    let s = StandIn::start().await;
    s.push(Reply::anthropic().text("fine"));
    let tool_use = json!({"role": "assistant", "content": [
        {"type": "thinking", "thinking": "hm", "signature": "sig"},
        {"type": "text", "text": "let me look"},
        {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a"}}]});
    let mut body = anthropic_body();
    body["messages"] = json!([
        {"role": "user", "content": "hi"}, tool_use,
        {"role": "user", "content": "what now?"}
    ]);
    let resp = post_anthropic(&s, &body).await;
    assert_eq!(resp.status(), 400);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].as_str().unwrap().contains("toolu_1"));
    let bad = [
        // tool_result not first.
        json!([{"role": "user", "content": "hi"}, tool_use, {"role": "user", "content": [
            {"type": "text", "text": "x"},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]}]),
        // Not alternating.
        json!([{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]),
        // Starts with assistant.
        json!([{"role": "assistant", "content": "hi"}, {"role": "user", "content": "x"}]),
        // Empty text block.
        json!([{"role": "user", "content": [{"type": "text", "text": ""}]}]),
        // Thinking without signature.
        json!([{"role": "user", "content": "hi"}, {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hm"}, {"type": "text", "text": "x"}]},
            {"role": "user", "content": "y"}]),
        // tool_result with no tool_use.
        json!([{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_9", "content": "r"}]}]),
    ];
    for m in bad {
        body["messages"] = m.clone();
        assert_eq!(post_anthropic(&s, &body).await.status(), 400, "{m}");
    }
    let mut no_max = anthropic_body();
    no_max.as_object_mut().unwrap().remove("max_tokens");
    assert_eq!(post_anthropic(&s, &no_max).await.status(), 400);
    body["messages"] = json!([
        {"role": "user", "content": "hi"}, tool_use,
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"},
            {"type": "text", "text": "go on"}]}
    ]);
    assert_eq!(post_anthropic(&s, &body).await.status(), 200);
}

#[tokio::test]
async fn validator_checks_images_in_tool_results_and_unique_tool_names() {
    let s = StandIn::start().await;
    s.push(Reply::anthropic().text("fine"));
    s.push(Reply::openai().text("fine"));
    let tool_use = json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "shot", "input": {}}]});
    let result = |content: Value| {
        json!([{"role": "user", "content": "hi"}, tool_use.clone(), {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": content}]}])
    };
    let image = |media: &str, data: &str| json!({"type": "image", "source": {"type": "base64", "media_type": media, "data": data}});
    let mut body = anthropic_body();
    for bad in [
        json!([{"type": "text", "text": "x"}, image("image/svg+xml", "PHN2Zz4=")]),
        json!([image("image/png", "")]),
        json!([{"type": "text", "text": ""}]),
        json!([{"type": "audio", "data": "AAAA"}]),
    ] {
        body["messages"] = result(bad.clone());
        assert_eq!(post_anthropic(&s, &body).await.status(), 400, "{bad}");
    }
    body["messages"] = result(
        json!([{"type": "text", "text": "a red square"}, image("image/png", "iVBORw0KGgo=")]),
    );
    let mut twice = body.clone();
    twice["tools"] = json!([
        {"name": "shot", "input_schema": {"type": "object"}},
        {"name": "shot", "input_schema": {"type": "object"}}]);
    assert_eq!(post_anthropic(&s, &twice).await.status(), 400);
    assert_eq!(post_anthropic(&s, &body).await.status(), 200);

    let mut body = openai_body();
    let call = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_a", "type": "function", "function": {"name": "shot", "arguments": "{}"}}]});
    body["messages"] = json!([{"role": "user", "content": "hi"}, call, {"role": "tool", "tool_call_id": "call_a",
        "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]);
    assert_eq!(post_openai(&s, &body).await.status(), 400);
    body["messages"][2]["content"] = json!([{"type": "text", "text": "no image here"}]);
    assert_eq!(post_openai(&s, &body).await.status(), 200);
}

#[tokio::test]
async fn disconnect_is_recorded_when_client_drops_mid_stream() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .text("a b c")
            .drip(Duration::from_millis(200)),
    );
    s.push(Reply::anthropic().text("a").stall_after(3));
    let resp = post_openai(&s, &openai_body()).await;
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    let dropped = Instant::now();
    drop(stream);
    let at = s
        .wait_disconnect(0, Duration::from_secs(5))
        .await
        .expect("disconnect recorded");
    let took = at.saturating_duration_since(dropped);
    println!("stand-in saw the openai client drop after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");

    let resp = post_anthropic(&s, &anthropic_body()).await;
    let mut stream = resp.bytes_stream();
    stream.next().await.unwrap().unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let dropped = Instant::now();
    drop(stream);
    let at = s
        .wait_disconnect(1, Duration::from_secs(5))
        .await
        .expect("disconnect recorded");
    let took = at.saturating_duration_since(dropped);
    println!("stand-in saw the anthropic client drop (stalled stream) after {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
}

#[tokio::test]
async fn api_key_wait_requests_models_and_404() {
    let s = StandIn::start().await;
    s.require_api_key("sk-test");
    s.push(Reply::openai().text("ok"));
    let resp = client()
        .post(format!("{}/chat/completions", s.openai_base()))
        .bearer_auth("sk-wrong")
        .json(&openai_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(!text.contains("sk-wrong"));
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    let resp = client()
        .post(format!("{}/chat/completions", s.openai_base()))
        .bearer_auth("sk-test")
        .json(&openai_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client()
        .post(format!("{}/v1/messages", s.anthropic_base()))
        .json(&anthropic_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    assert!(s.wait_requests(3, Duration::from_secs(1)).await);
    assert!(!s.wait_requests(4, Duration::from_millis(50)).await);

    let v: Value = client()
        .get(format!("{}/models", s.openai_base()))
        .bearer_auth("sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    assert!(v["data"][0]["id"].is_string());
    let resp = client()
        .get(format!("{}/models", s.openai_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401, "the model list wants the key too");
    let v: Value = client()
        .get(format!("{}/v1/models?limit=1000", s.anthropic_base()))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "sk-test")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["data"][0]["type"], "model");
    assert!(v["data"][0]["display_name"].is_string());
    assert_eq!(v["has_more"], false);
    let resp = client()
        .post(format!("{}/nowhere", s.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert!(v["error"]["message"].is_string());
}

#[tokio::test]
async fn control_endpoints_and_reply_json() {
    let s = StandIn::start().await;
    let reply = Reply::anthropic()
        .text("from json")
        .tool_use("toolu_1", "todo", "{}")
        .delay(Duration::from_millis(1))
        .stall_after(99);
    let round: Reply = serde_json::from_str(&serde_json::to_string(&reply).unwrap()).unwrap();
    assert_eq!(round, reply);
    let v: Value = client()
        .post(format!("{}/_standin/push", s.url()))
        .json(&json!([
            {"kind": "openai", "items": [{"type": "text", "text": "hello from json"}]},
            {"kind": "status", "status": 429, "retry_after": 3}
        ]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["queued"], 2);
    let body = post_openai(&s, &openai_body()).await.text().await.unwrap();
    assert!(body.contains("\" from\""));
    let resp = post_openai(&s, &openai_body()).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "3");
    assert!(s.wait_disconnect(1, Duration::from_secs(5)).await.is_some());
    let reqs: Value = client()
        .get(format!("{}/_standin/requests", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reqs.as_array().unwrap().len(), 2);
    assert_eq!(reqs[0]["path"], "/v1/chat/completions");
    assert!(reqs[1]["disconnect_ms"].is_number());
    let d: Value = client()
        .get(format!("{}/_standin/disconnects", s.url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d.as_array().unwrap().len(), 2);
    client()
        .post(format!("{}/_standin/reset", s.url()))
        .send()
        .await
        .unwrap();
    assert!(s.requests().is_empty());
}

#[tokio::test]
async fn non_streaming_and_demo() {
    let s = StandIn::start().await;
    s.push(
        Reply::openai()
            .text("whole answer")
            .tool_call("call_1", "todo", "{}"),
    );
    let mut body = openai_body();
    body["stream"] = json!(false);
    let v: Value = post_openai(&s, &body).await.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["content"], "whole answer");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");

    // Demo answers (non-streamed here, so the test skips the demo's pacing).
    s.set_demo(true);
    let first: Value = post_openai(&s, &body).await.json().await.unwrap();
    let msg = &first["choices"][0]["message"];
    assert!(msg["reasoning_content"].is_string());
    assert!(msg["content"].as_str().unwrap().starts_with("Hi!"));
    assert_eq!(msg["tool_calls"][0]["function"]["name"], "todo");
    let args: Value = serde_json::from_str(
        msg["tool_calls"][0]["function"]["arguments"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(args["merge"], false);
    assert_eq!(args["todos"].as_array().unwrap().len(), 3);
    for t in args["todos"].as_array().unwrap() {
        assert!(t["id"].is_string() && t["content"].is_string() && t["status"].is_string());
    }
    body["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "x", "tool_calls": [
            {"id": "call_demo_1", "type": "function", "function": {"name": "todo", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_demo_1", "content": "3 items"}
    ]);
    let second: Value = post_openai(&s, &body).await.json().await.unwrap();
    assert_eq!(second["choices"][0]["finish_reason"], "stop");
    let mut a = anthropic_body();
    a["stream"] = json!(false);
    let v: Value = post_anthropic(&s, &a).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "tool_use");
    a["messages"] = json!([
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_demo_1", "name": "todo", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_demo_1", "content": "ok"}]}
    ]);
    let v: Value = post_anthropic(&s, &a).await.json().await.unwrap();
    assert_eq!(v["stop_reason"], "end_turn");
    // One streamed demo reply, to see the pacing is real but bounded.
    a["stream"] = json!(true);
    let t = Instant::now();
    let streamed = post_anthropic(&s, &a).await.text().await.unwrap();
    assert!(streamed.contains("message_stop"));
    println!("demo summary streamed in {:?}", t.elapsed());
}

#[test]
fn serves_a_test_that_blocks_its_thread() {
    use std::io::{Read, Write};
    let s = StandIn::start_blocking();
    s.push(Reply::openai().text("blocking is fine"));
    let mut sock = std::net::TcpStream::connect(s.addr()).unwrap();
    sock.write_all(&raw_post("/v1/chat/completions", &openai_body()))
        .unwrap();
    let mut all = String::new();
    sock.read_to_string(&mut all).unwrap();
    assert!(all.contains(" fine"), "{all}");
    assert!(all.ends_with("data: [DONE]\n\n\r\n0\r\n\r\n"));
    drop(sock);
    let deadline = Instant::now() + Duration::from_secs(5);
    while s.disconnect_at(0).is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(s.disconnect_at(0).is_some());
}
