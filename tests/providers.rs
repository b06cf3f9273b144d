//! The model layer against the stand-in server: both wire formats, timeouts, retries, cancel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use talaria::cancel::CancellationToken;
use talaria::config::{ProviderKind, Settings};
use talaria::event::ErrorKind;
use talaria::message::{Message, Thinking, ToolCall};
use talaria::provider::{
    Completion, ModelClient, ModelError, ModelRequest, RetryPolicy, StreamDelta, ToolSpec,
};
use tokio::sync::mpsc;

use crate::standin::{Reply, StandIn};

pub(crate) const BOTH: [ProviderKind; 2] = [ProviderKind::Openai, ProviderKind::Anthropic];
const KEY: &str = "sk-test-secret-0123456789";
/// Generous bound for setup waits (noisy 2-core machine); never used for the measured part.
const SETUP: Duration = Duration::from_secs(10);

pub(crate) fn settings(server: &StandIn, kind: ProviderKind) -> Settings {
    Settings {
        provider: kind,
        base_url: match kind {
            ProviderKind::Openai => server.openai_base(),
            ProviderKind::Anthropic => server.anthropic_base(),
        },
        model: "standin-model".into(),
        api_key: KEY.into(),
        connect_timeout_s: 5,
        timeout_s: 60,
        stall_timeout_s: 30,
        max_attempts: 3,
        ..Settings::default()
    }
}

/// Short backoff so retry tests stay quick.
fn fast_retry(attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts: attempts,
        base: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
        max_retry_after: Duration::from_secs(10),
    }
}

pub(crate) fn client(settings: &Settings) -> Arc<ModelClient> {
    match ModelClient::new(settings) {
        Ok(c) => Arc::new(c.with_retry_policy(fast_retry(settings.max_attempts))),
        Err(e) => panic!("client: {e}"),
    }
}

pub(crate) fn reply(kind: ProviderKind) -> Reply {
    match kind {
        ProviderKind::Openai => Reply::openai(),
        ProviderKind::Anthropic => Reply::anthropic(),
    }
}

fn tools() -> Vec<ToolSpec> {
    vec![ToolSpec {
        name: "read_file".into(),
        description: "Read a file".into(),
        parameters: json!({"type": "object", "properties": {"path": {"type": "string"}},
                           "required": ["path"]}),
    }]
}

struct Call {
    task: tokio::task::JoinHandle<Result<Completion, ModelError>>,
    deltas: mpsc::UnboundedReceiver<StreamDelta>,
    cancel: CancellationToken,
}

/// Starts one `complete` call in its own task; deltas arrive on a channel.
fn start(client: &Arc<ModelClient>, messages: Vec<Message>) -> Call {
    let (tx, deltas) = mpsc::unbounded_channel();
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let client = client.clone();
    let task = tokio::spawn(async move {
        let tools = tools();
        let req = ModelRequest {
            model: "standin-model",
            system: "You are a test.",
            messages: &messages,
            tools: &tools,
            max_tokens: 1024,
            thinking_budget: 0,
        };
        let mut on_delta = move |delta: StreamDelta| {
            let _ = tx.send(delta);
        };
        client.complete(&req, &mut on_delta, &token).await
    });
    Call {
        task,
        deltas,
        cancel,
    }
}

impl Call {
    async fn finish(self) -> (Result<Completion, ModelError>, Vec<StreamDelta>) {
        let Call {
            task, mut deltas, ..
        } = self;
        let result = match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(Ok(result)) => result,
            Ok(Err(e)) => panic!("task failed: {e}"),
            Err(_) => panic!("call did not finish in 30 s"),
        };
        let mut all = Vec::new();
        while let Ok(d) = deltas.try_recv() {
            all.push(d);
        }
        (result, all)
    }

    /// Waits for the first delta matching `pred`.
    async fn wait_delta(&mut self, pred: impl Fn(&StreamDelta) -> bool) -> StreamDelta {
        let deadline = tokio::time::Instant::now() + SETUP;
        loop {
            match tokio::time::timeout_at(deadline, self.deltas.recv()).await {
                Ok(Some(d)) if pred(&d) => return d,
                Ok(Some(_)) => {}
                Ok(None) => panic!("call ended before the expected delta"),
                Err(_) => panic!("expected delta did not arrive"),
            }
        }
    }
}

pub(crate) async fn run(
    client: &Arc<ModelClient>,
    messages: Vec<Message>,
) -> (Result<Completion, ModelError>, Vec<StreamDelta>) {
    start(client, messages).finish().await
}

pub(crate) fn hello() -> Vec<Message> {
    vec![Message::user("Say hello")]
}

pub(crate) fn text_of(deltas: &[StreamDelta]) -> String {
    deltas
        .iter()
        .filter_map(|d| match d {
            StreamDelta::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

pub(crate) fn reasoning_of(deltas: &[StreamDelta]) -> String {
    deltas
        .iter()
        .filter_map(|d| match d {
            StreamDelta::Reasoning(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn retries(deltas: &[StreamDelta]) -> Vec<&StreamDelta> {
    deltas
        .iter()
        .filter(|d| matches!(d, StreamDelta::Retry { .. }))
        .collect()
}

fn ok(result: Result<Completion, ModelError>) -> Completion {
    match result {
        Ok(c) => c,
        Err(e) => panic!("expected a completion, got {e:?}"),
    }
}

fn failed(result: Result<Completion, ModelError>) -> (ErrorKind, String, Option<Message>) {
    match result {
        Err(ModelError::Failed {
            kind,
            message,
            partial,
        }) => (kind, message, partial),
        other => panic!("expected Failed, got {other:?}"),
    }
}

fn assistant(c: &Completion) -> (&str, &[Thinking], &[ToolCall], bool) {
    match &c.message {
        Message::Assistant {
            content,
            thinking,
            tool_calls,
            partial,
        } => (content, thinking, tool_calls, *partial),
        other => panic!("not an assistant message: {other:?}"),
    }
}

fn partial_text(partial: &Option<Message>) -> String {
    match partial {
        Some(Message::Assistant {
            content, partial, ..
        }) => {
            assert!(*partial, "partial message must be marked partial");
            content.clone()
        }
        Some(other) => panic!("partial is not an assistant message: {other:?}"),
        None => String::new(),
    }
}

/// Lets late requests (a wrong retry) arrive before counting.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn text_stream_and_request_shape() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("Hello there, how are you today?")
                .usage(12, 34),
        );
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        let completion = ok(result);
        let (content, _, calls, partial) = assistant(&completion);
        assert_eq!(content, "Hello there, how are you today?", "{kind:?}");
        assert_eq!(text_of(&deltas), content);
        assert!(
            deltas
                .iter()
                .filter(|d| matches!(d, StreamDelta::Text(_)))
                .count()
                > 1
        );
        assert!(calls.is_empty() && !partial);
        assert_eq!(
            completion
                .usage
                .as_ref()
                .map(|u| (u.input_tokens, u.output_tokens)),
            Some((12, 34))
        );
        let reqs = server.requests();
        assert_eq!(reqs.len(), 1);
        let req = &reqs[0];
        assert_eq!(req.validation_error, None);
        assert_eq!(req.body["stream"], json!(true));
        match kind {
            ProviderKind::Openai => {
                assert_eq!(req.path, "/v1/chat/completions");
                assert_eq!(
                    req.header("authorization"),
                    Some(format!("Bearer {KEY}").as_str())
                );
                assert_eq!(req.body["stream_options"]["include_usage"], json!(true));
                assert_eq!(
                    req.body["messages"][0],
                    json!({"role": "system", "content": "You are a test."})
                );
                assert_eq!(req.body["tools"][0]["type"], json!("function"));
                assert_eq!(req.body["tools"][0]["function"]["name"], json!("read_file"));
                assert!(req.body["tools"][0]["function"]["parameters"].is_object());
                assert_eq!(completion.stop_reason.as_deref(), Some("stop"));
            }
            ProviderKind::Anthropic => {
                assert_eq!(req.path, "/v1/messages");
                assert_eq!(req.header("x-api-key"), Some(KEY));
                assert_eq!(req.header("anthropic-version"), Some("2023-06-01"));
                assert!(
                    req.header("content-type")
                        .is_some_and(|v| v.contains("application/json"))
                );
                assert_eq!(req.body["system"], json!("You are a test."));
                assert_eq!(req.body["max_tokens"], json!(1024));
                assert_eq!(req.body["tools"][0]["name"], json!("read_file"));
                assert!(req.body["tools"][0]["input_schema"].is_object());
                assert_eq!(completion.stop_reason.as_deref(), Some("end_turn"));
            }
        }
    }
}

#[tokio::test]
async fn empty_api_key_sends_no_auth_header() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(reply(kind).text("ok"));
        let mut s = settings(&server, kind);
        s.api_key.clear();
        ok(run(&client(&s), hello()).await.0);
        let req = &server.requests()[0];
        assert_eq!(req.header("authorization"), None);
        assert_eq!(req.header("x-api-key"), None);
    }
}

#[tokio::test]
async fn parallel_tool_calls_assembled_by_index() {
    for kind in BOTH {
        let server = StandIn::start().await;
        let a = r#"{"path":"src/main.rs","start":1,"end":40}"#;
        let b = r#"{"pattern":"fn main","glob":"**/*.rs"}"#;
        let c = r#"{"todos":[{"content":"x","status":"pending"}]}"#;
        let r = match kind {
            ProviderKind::Openai => Reply::openai()
                .text("Let me look.")
                .tool_call("call_a", "read_file", a)
                .tool_call("call_b", "search_files", b)
                .tool_call("call_c", "todo", c),
            ProviderKind::Anthropic => Reply::anthropic()
                .text("Let me look.")
                .tool_use("toolu_a", "read_file", a)
                .tool_use("toolu_b", "search_files", b)
                .tool_use("toolu_c", "todo", c),
        };
        server.push(r);
        let completion = ok(run(&client(&settings(&server, kind)), hello()).await.0);
        let (content, _, calls, _) = assistant(&completion);
        assert_eq!(content, "Let me look.");
        let got: Vec<(&str, &str, &str)> = calls
            .iter()
            .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
            .collect();
        let ids = match kind {
            ProviderKind::Openai => ["call_a", "call_b", "call_c"],
            ProviderKind::Anthropic => ["toolu_a", "toolu_b", "toolu_c"],
        };
        assert_eq!(
            got,
            vec![
                (ids[0], "read_file", a),
                (ids[1], "search_files", b),
                (ids[2], "todo", c)
            ],
            "{kind:?}"
        );
    }
}

/// A rich reply (reasoning, text, two tool calls, usage) as a reply builder.
fn rich(kind: ProviderKind) -> Reply {
    match kind {
        ProviderKind::Openai => Reply::openai()
            .reasoning("Weighing the options… ✓")
            .text("Grüße 👋 — here is the plan: 世界")
            .tool_call("call_1", "read_file", r#"{"path":"ä.txt"}"#)
            .tool_call("call_2", "todo", r#"{"todos":[]}"#)
            .usage(7, 9),
        ProviderKind::Anthropic => Reply::anthropic()
            .thinking("Weighing the options… ✓", "sig-ünï")
            .text("Grüße 👋 — here is the plan: 世界")
            .tool_use("toolu_1", "read_file", r#"{"path":"ä.txt"}"#)
            .tool_use("toolu_2", "todo", r#"{"todos":[]}"#)
            .usage(7, 9),
    }
}

#[tokio::test]
async fn split_at_every_byte_gives_identical_results() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(rich(kind));
        server.push(rich(kind).cut_every(1));
        server.push(rich(kind).cut_at(&[1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377]));
        let c = client(&settings(&server, kind));
        let (whole, whole_deltas) = run(&c, hello()).await;
        let (bytewise, byte_deltas) = run(&c, hello()).await;
        let (cut, cut_deltas) = run(&c, hello()).await;
        let whole = ok(whole);
        assert_eq!(ok(bytewise), whole, "{kind:?}");
        assert_eq!(ok(cut), whole, "{kind:?}");
        for deltas in [&byte_deltas, &cut_deltas] {
            assert_eq!(text_of(deltas), text_of(&whole_deltas));
            assert_eq!(reasoning_of(deltas), reasoning_of(&whole_deltas));
        }
        let (content, thinking, calls, _) = assistant(&whole);
        assert_eq!(content, "Grüße 👋 — here is the plan: 世界");
        assert_eq!(thinking.len(), 1);
        assert_eq!(thinking[0].text, "Weighing the options… ✓");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].arguments, r#"{"path":"ä.txt"}"#);
        assert_eq!(
            whole
                .usage
                .as_ref()
                .map(|u| (u.input_tokens, u.output_tokens)),
            Some((7, 9))
        );
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn thinking_signature_round_trip() {
    let server = StandIn::start().await;
    let kind = ProviderKind::Anthropic;
    server.push(
        Reply::anthropic()
            .thinking("I should read the file.", "sig-abc")
            .tool_use("toolu_1", "read_file", r#"{"path":"a.txt"}"#),
    );
    server.push(Reply::anthropic().text("Done."));
    let c = client(&settings(&server, kind));
    let (first, deltas) = run(&c, hello()).await;
    let first = ok(first);
    assert_eq!(reasoning_of(&deltas), "I should read the file.");
    let (_, thinking, calls, _) = assistant(&first);
    assert_eq!(
        thinking,
        &[Thinking {
            text: "I should read the file.".into(),
            signature: Some("sig-abc".into()),
            redacted: None
        }]
    );
    assert_eq!(calls[0].id, "toolu_1");
    let mut messages = hello();
    messages.push(first.message.clone());
    messages.push(Message::tool_result(
        "toolu_1",
        "read_file",
        "file text",
        false,
    ));
    ok(run(&c, messages).await.0);
    let reqs = server.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[1].validation_error, None);
    let sent = &reqs[1].body["messages"];
    assert_eq!(
        sent[1],
        json!({"role": "assistant", "content": [
            {"type": "thinking", "thinking": "I should read the file.", "signature": "sig-abc"},
            {"type": "tool_use", "id": "toolu_1", "name": "read_file", "input": {"path": "a.txt"}},
        ]})
    );
    assert_eq!(
        sent[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "file text"},
        ]})
    );
}

#[tokio::test]
async fn openai_reasoning_is_kept_but_not_sent_back() {
    let server = StandIn::start().await;
    let kind = ProviderKind::Openai;
    server.push(Reply::openai().reasoning("Let me think.").tool_call(
        "call_1",
        "read_file",
        r#"{"path":"a.txt"}"#,
    ));
    server.push(Reply::openai().text("Done."));
    let c = client(&settings(&server, kind));
    let first = ok(run(&c, hello()).await.0);
    let (content, thinking, _, _) = assistant(&first);
    assert_eq!(content, "");
    assert_eq!(thinking[0].text, "Let me think.");
    let mut messages = hello();
    messages.push(first.message.clone());
    messages.push(Message::tool_result("call_1", "read_file", "text", true));
    ok(run(&c, messages).await.0);
    let body = &server.requests()[1].body;
    assert_eq!(server.requests()[1].validation_error, None);
    assert_eq!(
        body["messages"][2],
        json!({"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}}
        ]})
    );
    assert_eq!(
        body["messages"][3],
        json!({"role": "tool", "tool_call_id": "call_1", "content": "text"})
    );
    assert!(!body.to_string().contains("Let me think."));
}

#[tokio::test]
async fn anthropic_merges_tool_results_and_following_user_text() {
    let server = StandIn::start().await;
    server.push(Reply::anthropic().text("ok"));
    let c = client(&settings(&server, ProviderKind::Anthropic));
    let messages = vec![
        Message::user("do two things"),
        Message::Assistant {
            content: String::new(),
            thinking: vec![Thinking {
                text: String::new(),
                signature: None,
                redacted: Some("opaque".into()),
            }],
            tool_calls: vec![
                ToolCall {
                    id: "t1".into(),
                    name: "read_file".into(),
                    arguments: r#"{"path":"a"}"#.into(),
                },
                ToolCall {
                    id: "t2".into(),
                    name: "read_file".into(),
                    arguments: "{not json".into(),
                },
            ],
            partial: false,
        },
        Message::tool_result("t1", "read_file", "A", false),
        Message::tool_result("t2", "read_file", "cancelled by the user", true),
        Message::user("now something else"),
    ];
    ok(run(&c, messages).await.0);
    let req = &server.requests()[0];
    assert_eq!(req.validation_error, None);
    let sent = req.body["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(sent.len(), 3, "{sent:?}");
    assert_eq!(
        sent[1]["content"],
        json!([
            {"type": "redacted_thinking", "data": "opaque"},
            {"type": "tool_use", "id": "t1", "name": "read_file", "input": {"path": "a"}},
            {"type": "tool_use", "id": "t2", "name": "read_file", "input": {}},
        ])
    );
    assert_eq!(
        sent[2],
        json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "A"},
            {"type": "tool_result", "tool_use_id": "t2", "content": "cancelled by the user", "is_error": true},
            {"type": "text", "text": "now something else"},
        ]})
    );
}

#[tokio::test]
async fn error_in_a_200_stream() {
    for kind in BOTH {
        // After text was shown: fail at once, keep the text, no retry.
        let server = StandIn::start().await;
        let r = match kind {
            ProviderKind::Openai => Reply::openai()
                .text("Partial answer")
                .error_in_stream("upstream exploded"),
            ProviderKind::Anthropic => Reply::anthropic()
                .text("Partial answer")
                .error_event("overloaded_error", "upstream exploded"),
        };
        server.push(r);
        let (result, _) = run(&client(&settings(&server, kind)), hello()).await;
        let (err_kind, message, partial) = failed(result);
        assert_eq!(err_kind, ErrorKind::Http, "{kind:?}");
        assert!(message.contains("upstream exploded"), "{message}");
        assert_eq!(partial_text(&partial), "Partial answer");
        settle().await;
        assert_eq!(server.requests().len(), 1);

        // Before any token: an overload/server error is retried.
        let server = StandIn::start().await;
        let r = match kind {
            ProviderKind::Openai => Reply::openai().error_in_stream("busy"),
            ProviderKind::Anthropic => {
                Reply::anthropic().error_event("overloaded_error", "Overloaded")
            }
        };
        server.push(r);
        server.push(reply(kind).text("second try"));
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        assert_eq!(assistant(&ok(result)).0, "second try");
        assert_eq!(retries(&deltas).len(), 1);
        assert_eq!(server.requests().len(), 2);
    }
}

#[tokio::test]
async fn stall_with_only_keepalives() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("never")
                .keepalive_only(Duration::from_millis(100)),
        );
        let mut s = settings(&server, kind);
        s.stall_timeout_s = 1;
        let started = Instant::now();
        let (result, _) = run(&client(&s), hello()).await;
        let elapsed = started.elapsed();
        let (err_kind, message, _) = failed(result);
        println!("{kind:?}: stall after {elapsed:?}: {message}");
        assert_eq!(err_kind, ErrorKind::Stall, "{message}");
        assert!(elapsed >= Duration::from_millis(950), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
        assert!(
            message.contains("1 s") && message.contains("Settings"),
            "{message}"
        );
        // A stall is not retried, and the connection was dropped.
        assert!(server.wait_disconnect(0, SETUP).await.is_some());
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn stall_after_some_data_keeps_the_partial_text() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("one two three four five six")
                .keepalive_after(4, Duration::from_millis(100)),
        );
        let mut s = settings(&server, kind);
        s.stall_timeout_s = 1;
        let (result, deltas) = run(&client(&s), hello()).await;
        let (err_kind, _, partial) = failed(result);
        assert_eq!(err_kind, ErrorKind::Stall);
        assert_eq!(partial_text(&partial), text_of(&deltas));
    }
}

#[tokio::test]
async fn slow_drip_past_the_total_deadline() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(reply(kind).text("start").drip(Duration::from_millis(100)));
        let mut s = settings(&server, kind);
        s.timeout_s = 1;
        s.stall_timeout_s = 5;
        let started = Instant::now();
        let (result, deltas) = run(&client(&s), hello()).await;
        let elapsed = started.elapsed();
        let (err_kind, message, partial) = failed(result);
        println!("{kind:?}: timeout after {elapsed:?}: {message}");
        assert_eq!(err_kind, ErrorKind::Timeout, "{message}");
        assert!(
            elapsed >= Duration::from_millis(950) && elapsed < Duration::from_secs(2),
            "{elapsed:?}"
        );
        assert!(text_of(&deltas).contains("drip"));
        assert_eq!(partial_text(&partial), text_of(&deltas));
        assert!(server.wait_disconnect(0, SETUP).await.is_some());
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn rate_limit_honours_retry_after() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(Reply::status(429).retry_after(1));
        server.push(reply(kind).text("after the wait"));
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        assert_eq!(assistant(&ok(result)).0, "after the wait");
        let reqs = server.requests();
        assert_eq!(reqs.len(), 2);
        let gap = reqs[1].at - reqs[0].at;
        println!("{kind:?}: gap between attempts {gap:?}");
        assert!(gap >= Duration::from_secs(1), "{gap:?}");
        let retry = retries(&deltas);
        assert_eq!(retry.len(), 1);
        match retry[0] {
            StreamDelta::Retry {
                attempt,
                max_attempts,
                delay_ms,
                reason,
            } => {
                assert_eq!((*attempt, *max_attempts, *delay_ms), (2, 3, 1000));
                assert!(reason.contains("429"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn unauthorized_fails_after_one_request() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.require_api_key("sk-the-right-one");
        server.push(reply(kind).text("never"));
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        let (err_kind, message, _) = failed(result);
        println!("{kind:?}: {message}");
        assert_eq!(err_kind, ErrorKind::Auth);
        assert!(
            message.contains("401") && message.contains("API key") && message.contains("Settings")
        );
        assert!(message.contains("TALARIA_API_KEY"));
        assert!(!message.contains(KEY), "the key leaked: {message}");
        assert!(retries(&deltas).is_empty());
        settle().await;
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn bad_request_fails_fast_with_the_providers_message() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(reply(kind).text("never"));
        // A tool name with a space: both validators reject it with 400.
        let c = client(&settings(&server, kind));
        let messages = hello();
        let tools = vec![ToolSpec {
            name: "read file".into(),
            description: "bad name".into(),
            parameters: json!({"type": "object"}),
        }];
        let req = ModelRequest {
            model: "standin-model",
            system: "",
            messages: &messages,
            tools: &tools,
            max_tokens: 100,
            thinking_budget: 0,
        };
        let mut deltas = Vec::new();
        let result = c
            .complete(&req, &mut |d| deltas.push(d), &CancellationToken::new())
            .await;
        let (err_kind, message, _) = failed(result);
        println!("{kind:?}: {message}");
        assert_eq!(err_kind, ErrorKind::Http);
        assert!(message.contains("400") && message.contains("Settings"));
        let validation = server.requests()[0]
            .validation_error
            .clone()
            .unwrap_or_default();
        assert!(
            !validation.is_empty() && message.contains(&validation),
            "{message} / {validation}"
        );
        assert!(retries(&deltas).is_empty());
        settle().await;
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn server_error_then_success_is_retried() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(Reply::status(500));
        server.push(Reply::status(if kind == ProviderKind::Anthropic {
            529
        } else {
            503
        }));
        server.push(reply(kind).text("third time lucky"));
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        assert_eq!(assistant(&ok(result)).0, "third time lucky");
        let attempts: Vec<u32> = retries(&deltas)
            .iter()
            .map(|d| match d {
                StreamDelta::Retry { attempt, .. } => *attempt,
                _ => 0,
            })
            .collect();
        assert_eq!(attempts, vec![2, 3]);
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn gives_up_after_max_attempts() {
    for kind in BOTH {
        let server = StandIn::start().await;
        for _ in 0..3 {
            server.push(Reply::status(500));
        }
        server.push(reply(kind).text("too late"));
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        let (err_kind, message, _) = failed(result);
        assert_eq!(err_kind, ErrorKind::Http);
        assert!(
            message.contains("500") && message.contains("3 attempts"),
            "{message}"
        );
        assert_eq!(retries(&deltas).len(), 2);
        settle().await;
        assert_eq!(server.requests().len(), 3);
    }
}

#[tokio::test]
async fn no_retry_after_tokens_were_shown() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("one two three four five six seven")
                .reset_after(4),
        );
        server.push(reply(kind).text("must not be requested"));
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        let (err_kind, message, partial) = failed(result);
        println!("{kind:?}: {message}");
        assert_eq!(err_kind, ErrorKind::Network);
        let shown = text_of(&deltas);
        assert!(!shown.is_empty());
        assert_eq!(partial_text(&partial), shown);
        assert!(retries(&deltas).is_empty());
        settle().await;
        assert_eq!(server.requests().len(), 1);
    }
}

#[tokio::test]
async fn reset_before_any_token_is_retried() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(reply(kind).text("lost").reset_after(0));
        server.push(reply(kind).text("recovered"));
        let (result, deltas) = run(&client(&settings(&server, kind)), hello()).await;
        assert_eq!(assistant(&ok(result)).0, "recovered");
        assert_eq!(retries(&deltas).len(), 1);
        assert_eq!(server.requests().len(), 2);
    }
}

#[tokio::test]
async fn connection_refused_is_a_network_error_with_a_hint() {
    // Bind then drop to get a port nobody listens on.
    let port = match std::net::TcpListener::bind("127.0.0.1:0") {
        Ok(l) => l.local_addr().map(|a| a.port()).unwrap_or(9),
        Err(e) => panic!("{e}"),
    };
    let s = Settings {
        provider: ProviderKind::Openai,
        base_url: format!("http://127.0.0.1:{port}/v1"),
        model: "m".into(),
        api_key: KEY.into(),
        max_attempts: 2,
        ..Settings::default()
    };
    let (result, deltas) = run(&client(&s), hello()).await;
    let (err_kind, message, _) = failed(result);
    println!("{message}");
    assert_eq!(err_kind, ErrorKind::Network);
    assert!(message.contains(&format!("127.0.0.1:{port}")) && message.contains("running"));
    assert!(!message.contains(KEY));
    assert_eq!(retries(&deltas).len(), 1);
}

#[tokio::test]
async fn truncated_stream_is_a_protocol_error() {
    for kind in BOTH {
        let server = StandIn::start().await;
        // Text shown, then the body ends cleanly without [DONE] / message_stop.
        let body = match kind {
            ProviderKind::Openai => {
                "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Half\"},\"finish_reason\":null}]}\n\n"
            }
            ProviderKind::Anthropic => concat!(
                "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n",
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
                "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Half\"}}\n\n",
            ),
        };
        server.push(Reply::raw(body));
        let (result, _) = run(&client(&settings(&server, kind)), hello()).await;
        let (err_kind, message, partial) = failed(result);
        assert_eq!(err_kind, ErrorKind::Protocol, "{message}");
        assert_eq!(partial_text(&partial), "Half");
        settle().await;
        assert_eq!(server.requests().len(), 1);
    }
}

// ---- cancellation: from cancel() to the stand-in seeing the socket closed ----

const CANCEL_BOUND: Duration = Duration::from_millis(50);

/// Cancels `call` now and returns (cancel → server-observed disconnect of request `index`,
/// cancel → complete() returned, the result).
async fn cancel_and_measure(
    server: &StandIn,
    call: Call,
    index: usize,
) -> (Duration, Duration, Result<Completion, ModelError>) {
    let Call { task, cancel, .. } = call;
    let before = Instant::now();
    cancel.cancel();
    let result = match tokio::time::timeout(SETUP, task).await {
        Ok(Ok(r)) => r,
        other => panic!("call did not end after cancel: {other:?}"),
    };
    let returned = before.elapsed();
    let closed = match server.wait_disconnect(index, SETUP).await {
        Some(at) => at.checked_duration_since(before).unwrap_or_else(|| {
            panic!("the connection closed before cancel() — the state was not reached")
        }),
        None => panic!("the stand-in never saw the connection close"),
    };
    (closed, returned, result)
}

fn assert_cancelled(result: &Result<Completion, ModelError>) -> Option<Message> {
    match result {
        Err(ModelError::Cancelled { partial }) => partial.clone(),
        other => panic!("expected Cancelled, got {other:?}"),
    }
}

#[tokio::test]
async fn cancel_while_waiting_for_the_first_byte() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("late")
                .first_byte_delay(Duration::from_secs(30)),
        );
        let call = start(&client(&settings(&server, kind)), hello());
        assert!(server.wait_requests(1, SETUP).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (closed, returned, result) = cancel_and_measure(&server, call, 0).await;
        println!(
            "{kind:?} first-byte wait: socket closed {closed:?} after cancel, returned {returned:?}"
        );
        assert_eq!(assert_cancelled(&result), None);
        assert!(closed <= CANCEL_BOUND, "{closed:?}");
        assert!(returned <= CANCEL_BOUND, "{returned:?}");
    }
}

#[tokio::test]
async fn cancel_mid_stream() {
    for kind in BOTH {
        let server = StandIn::start().await;
        let words: Vec<String> = (0..200).map(|n| format!("w{n} ")).collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        server.push(reply(kind).tokens(&words).delay(Duration::from_millis(20)));
        let mut call = start(&client(&settings(&server, kind)), hello());
        call.wait_delta(|d| matches!(d, StreamDelta::Text(_))).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (closed, returned, result) = cancel_and_measure(&server, call, 0).await;
        println!(
            "{kind:?} mid-stream: socket closed {closed:?} after cancel, returned {returned:?}"
        );
        let partial = assert_cancelled(&result);
        assert!(partial_text(&partial).starts_with("w0 "), "{partial:?}");
        assert!(closed <= CANCEL_BOUND, "{closed:?}");
        assert!(returned <= CANCEL_BOUND, "{returned:?}");
    }
}

#[tokio::test]
async fn cancel_while_stalled() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("one two three four five six")
                .stall_after(5),
        );
        let mut call = start(&client(&settings(&server, kind)), hello());
        call.wait_delta(|d| matches!(d, StreamDelta::Text(_))).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        let (closed, returned, result) = cancel_and_measure(&server, call, 0).await;
        println!("{kind:?} stalled: socket closed {closed:?} after cancel, returned {returned:?}");
        assert!(partial_text(&assert_cancelled(&result)).starts_with("one"));
        assert!(closed <= CANCEL_BOUND, "{closed:?}");
        assert!(returned <= CANCEL_BOUND, "{returned:?}");
    }
}

#[tokio::test]
async fn cancel_while_only_keepalives_arrive() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(
            reply(kind)
                .text("never")
                .keepalive_only(Duration::from_millis(300)),
        );
        let call = start(&client(&settings(&server, kind)), hello());
        assert!(server.wait_requests(1, SETUP).await);
        // Past a few keep-alives, and between two of them.
        tokio::time::sleep(Duration::from_millis(750)).await;
        let (closed, returned, result) = cancel_and_measure(&server, call, 0).await;
        println!(
            "{kind:?} keep-alive only: socket closed {closed:?} after cancel, returned {returned:?}"
        );
        assert_eq!(assert_cancelled(&result), None);
        assert!(closed <= CANCEL_BOUND, "{closed:?}");
        assert!(returned <= CANCEL_BOUND, "{returned:?}");
    }
}

#[tokio::test]
async fn cancel_during_retry_backoff() {
    for kind in BOTH {
        let server = StandIn::start().await;
        server.push(Reply::status(503).retry_after(5));
        server.push(reply(kind).text("must not be requested"));
        let mut call = start(&client(&settings(&server, kind)), hello());
        call.wait_delta(|d| matches!(d, StreamDelta::Retry { .. }))
            .await;
        // The failed attempt's connection is already closed; what must stop is the wait.
        assert!(server.wait_disconnect(0, SETUP).await.is_some());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Call { task, cancel, .. } = call;
        let before = Instant::now();
        cancel.cancel();
        let result = match tokio::time::timeout(SETUP, task).await {
            Ok(Ok(r)) => r,
            other => panic!("call did not end after cancel: {other:?}"),
        };
        let returned = before.elapsed();
        println!("{kind:?} retry backoff: returned {returned:?} after cancel");
        assert_eq!(assert_cancelled(&result), None);
        assert!(returned <= CANCEL_BOUND, "{returned:?}");
        settle().await;
        assert_eq!(server.requests().len(), 1, "no attempt after the cancel");
    }
}

#[tokio::test]
async fn already_cancelled_sends_nothing() {
    let server = StandIn::start().await;
    server.push(Reply::openai().text("never"));
    let c = client(&settings(&server, ProviderKind::Openai));
    let cancel = CancellationToken::new();
    cancel.cancel();
    let messages = hello();
    let req = ModelRequest {
        model: "m",
        system: "",
        messages: &messages,
        tools: &[],
        max_tokens: 10,
        thinking_budget: 0,
    };
    let result = c.complete(&req, &mut |_| {}, &cancel).await;
    assert_cancelled(&result);
    settle().await;
    assert_eq!(server.requests().len(), 0);
}

#[tokio::test]
async fn config_errors() {
    let s = Settings {
        base_url: "ftp://example.com".into(),
        model: "m".into(),
        ..Settings::default()
    };
    match ModelClient::new(&s) {
        Err(e) => assert_eq!(e.kind(), Some(ErrorKind::Config)),
        Ok(_) => panic!("ftp base URL accepted"),
    }
    let s = Settings {
        api_key: KEY.into(),
        model: "m".into(),
        ..Settings::default()
    };
    match ModelClient::new(&s) {
        Ok(c) => assert!(!format!("{c:?}").contains(KEY)),
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn finished_but_never_closed_counts_as_complete() {
    // finish_reason arrived, then neither [DONE] nor a close: the stall timer ends the wait and
    // the complete answer is kept rather than reported as a stall.
    let server = StandIn::start().await;
    let body = concat!(
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"All done\"},\"finish_reason\":null}]}\n\n",
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n",
    );
    server.push(Reply::raw(body).stall_after(2));
    let mut s = settings(&server, ProviderKind::Openai);
    s.stall_timeout_s = 1;
    let completion = ok(run(&client(&s), hello()).await.0);
    assert_eq!(assistant(&completion).0, "All done");
    assert_eq!(completion.stop_reason.as_deref(), Some("stop"));
}

// ---- real OpenAI-compatible servers that differ from OpenAI (Ollama, llama.cpp, vLLM, LM Studio) ----

/// One `data:` line of a chat.completion.chunk with this delta and finish reason.
fn chunk(delta: serde_json::Value, finish: Option<&str>) -> String {
    let value = json!({"id": "chatcmpl-q", "object": "chat.completion.chunk", "model": "m",
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]});
    format!("data: {value}\n\n")
}

fn tool_results(calls: &[ToolCall]) -> Vec<Message> {
    calls
        .iter()
        .map(|c| Message::tool_result(c.id.clone(), c.name.clone(), "ok", false))
        .collect()
}

/// Runs `body` as the raw stream, then a follow-up request with a result for every call; the
/// follow-up must pass the stand-in's pairing validator. Returns the calls.
async fn quirk_calls(body: &str) -> Vec<ToolCall> {
    let server = StandIn::start().await;
    server.push(Reply::raw(body));
    server.push(Reply::openai().text("fine"));
    let c = client(&settings(&server, ProviderKind::Openai));
    let completion = ok(run(&c, hello()).await.0);
    let calls = assistant(&completion).2.to_vec();
    let mut next = hello();
    next.push(completion.message.clone());
    next.extend(tool_results(&calls));
    let (result, _) = run(&c, next).await;
    let requests = server.requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[1].validation_error, None, "follow-up rejected");
    assert_eq!(assistant(&ok(result)).0, "fine");
    calls
}

fn triples(calls: &[ToolCall]) -> Vec<(&str, &str)> {
    calls
        .iter()
        .map(|c| (c.name.as_str(), c.arguments.as_str()))
        .collect()
}

#[tokio::test]
async fn whole_calls_without_index_each_in_one_chunk() {
    // Ollama: each call whole in its own chunk, an id but no index, finish_reason "stop"
    // although tools were called, no usage chunk, no [DONE]: the connection just closes.
    let body = [
        chunk(
            json!({"role": "assistant", "content": "",
                   "tool_calls": [{"id": "call_o1", "function": {"name": "read_file", "arguments": "{\"path\":\"a.txt\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"id": "call_o2", "function": {"name": "read_file", "arguments": "{\"path\":\"b.txt\"}"}}]}),
            None,
        ),
        chunk(json!({}), Some("stop")),
    ]
    .concat();
    let calls = quirk_calls(&body).await;
    let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_o1", "call_o2"]);
    assert_eq!(
        triples(&calls),
        [
            ("read_file", r#"{"path":"a.txt"}"#),
            ("read_file", r#"{"path":"b.txt"}"#)
        ]
    );
}

#[tokio::test]
async fn calls_without_index_or_id_get_unique_ids() {
    // llama.cpp / vLLM builds that send neither index nor id; two calls, two chunks, and a
    // third pair in a single delta array.
    let body = [
        chunk(
            json!({"tool_calls": [{"function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"id": "", "function": {"name": "todo", "arguments": "{}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [
                {"function": {"name": "read_file", "arguments": "{\"path\":\"c\"}"}},
                {"function": {"name": "read_file", "arguments": "{\"path\":\"d\"}"}}
            ]}),
            Some("tool_calls"),
        ),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let calls = quirk_calls(&body).await;
    assert_eq!(
        triples(&calls),
        [
            ("read_file", r#"{"path":"a"}"#),
            ("todo", "{}"),
            ("read_file", r#"{"path":"c"}"#),
            ("read_file", r#"{"path":"d"}"#)
        ]
    );
    let mut ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    assert!(ids.iter().all(|id| id.starts_with("call_")), "{ids:?}");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "ids must be unique");
}

#[tokio::test]
async fn fragments_without_index_continue_the_last_call() {
    // The first fragment carries id and name; the argument pieces carry neither id nor index.
    let body = [
        chunk(json!({"content": "Reading."}), None),
        chunk(
            json!({"tool_calls": [{"id": "call_f", "type": "function", "function": {"name": "read_file", "arguments": ""}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"function": {"arguments": "{\"pa"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"function": {"arguments": "th\":\"x.txt\"}"}}]}),
            None,
        ),
        chunk(
            json!({"tool_calls": [{"id": "call_g", "function": {"name": "todo", "arguments": "{}"}}]}),
            None,
        ),
        chunk(json!({}), Some("tool_calls")),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let calls = quirk_calls(&body).await;
    let got: Vec<(&str, &str, &str)> = calls
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str(), c.arguments.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("call_f", "read_file", r#"{"path":"x.txt"}"#),
            ("call_g", "todo", "{}")
        ]
    );
}

#[tokio::test]
async fn arguments_sent_as_an_object() {
    let body = [
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_j", "type": "function",
                   "function": {"name": "read_file", "arguments": {"path": "a.txt", "limit": 5}}}]}),
            Some("tool_calls"),
        ),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let calls = quirk_calls(&body).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].id, "call_j");
    assert_eq!(
        calls[0].arguments_value(),
        json!({"path": "a.txt", "limit": 5})
    );
}

#[tokio::test]
async fn repeated_ids_across_indexes_are_made_unique() {
    // Some servers give every call of a reply the same id; pairing needs distinct ones.
    let body = [
        chunk(
            json!({"tool_calls": [
                {"index": 0, "id": "call_same", "function": {"name": "read_file", "arguments": "{\"path\":\"a\"}"}},
                {"index": 1, "id": "call_same", "function": {"name": "read_file", "arguments": "{\"path\":\"b\"}"}}
            ]}),
            Some("tool_calls"),
        ),
        "data: [DONE]\n\n".to_string(),
    ]
    .concat();
    let calls = quirk_calls(&body).await;
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].id, "call_same");
    assert_ne!(calls[1].id, "call_same");
}

#[tokio::test]
async fn comments_and_data_without_a_space() {
    // LM Studio's `: ping` comments, `data:` with no space, CRLF line ends, a text-only reply
    // that ends with finish_reason and a close (no usage, no [DONE]).
    let body = concat!(
        ": ping - 2025-01-01 00:00:00\r\n\r\n",
        "data:{\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\r\n\r\n",
        ": ping\r\n\r\n",
        "data:{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"},\"finish_reason\":null}]}\r\n\r\n",
        "data:{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\r\n\r\n",
    );
    let server = StandIn::start().await;
    server.push(Reply::raw(body));
    let (result, deltas) = run(&client(&settings(&server, ProviderKind::Openai)), hello()).await;
    let completion = ok(result);
    assert_eq!(assistant(&completion).0, "Hello");
    assert_eq!(text_of(&deltas), "Hello");
    assert_eq!(completion.usage, None);
    assert_eq!(completion.stop_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn not_found_hints_at_the_base_url() {
    let server = StandIn::start().await;
    // Ollama's native API path instead of its /v1: /api/chat/completions does not exist.
    let mut s = settings(&server, ProviderKind::Openai);
    s.base_url = format!("{}/api", server.url());
    s.api_key = KEY.into();
    let (result, deltas) = run(&client(&s), hello()).await;
    let (kind, message, _) = failed(result);
    println!("{message}");
    assert_eq!(kind, ErrorKind::Http);
    assert!(
        message.contains("404") && message.contains("/v1"),
        "{message}"
    );
    assert!(!message.contains(KEY));
    assert!(retries(&deltas).is_empty());

    // Anthropic with /v1 on the host: /v1/v1/messages.
    let mut s = settings(&server, ProviderKind::Anthropic);
    s.base_url = format!("{}/v1", server.anthropic_base());
    let (result, _) = run(&client(&s), hello()).await;
    let (kind, message, _) = failed(result);
    println!("{message}");
    assert_eq!(kind, ErrorKind::Http);
    assert!(
        message.contains("404") && message.contains("without /v1"),
        "{message}"
    );
}

#[tokio::test]
async fn html_page_instead_of_a_stream_is_not_retried() {
    // A base URL that points at a web UI answering 200 with a page.
    let server = StandIn::start().await;
    server.push(Reply::raw(
        "<!doctype html><html><body>Open WebUI</body></html>",
    ));
    server.push(Reply::openai().text("must not be requested"));
    let (result, _) = run(&client(&settings(&server, ProviderKind::Openai)), hello()).await;
    let (kind, message, _) = failed(result);
    println!("{message}");
    // The stand-in labels raw bodies as event streams: the body itself shows it is not one.
    assert_eq!(kind, ErrorKind::Protocol);
    assert!(
        message.contains("web page") && message.contains("/v1"),
        "{message}"
    );
    settle().await;
    assert_eq!(server.requests().len(), 1, "not retried");
}

// ---- Anthropic: histories left by cancels, crashes and provider switches ----

fn signed(text: &str) -> Thinking {
    Thinking {
        text: text.into(),
        signature: Some("sig-1".into()),
        redacted: None,
    }
}

fn call(id: &str) -> ToolCall {
    ToolCall {
        id: id.into(),
        name: "read_file".into(),
        arguments: r#"{"path":"a.txt"}"#.into(),
    }
}

fn tool(id: &str, content: &str) -> Message {
    Message::tool_result(id, "read_file", content, false)
}

fn said(content: &str, thinking: Vec<Thinking>, calls: Vec<ToolCall>, partial: bool) -> Message {
    Message::Assistant {
        content: content.into(),
        thinking,
        tool_calls: calls,
        partial,
    }
}

/// Histories that the neutral log can hold and both wire formats must turn into valid requests.
fn awkward_histories() -> Vec<(&'static str, Vec<Message>)> {
    vec![
        (
            "cancelled with thinking but no text",
            vec![
                Message::user("a"),
                said("", vec![signed("hmm")], vec![], true),
                Message::user("b"),
            ],
        ),
        (
            "empty content and tool calls",
            vec![
                Message::user("a"),
                said("", vec![], vec![call("toolu_1"), call("toolu_2")], false),
                tool("toolu_1", "one"),
                tool("toolu_2", ""),
                Message::user("b"),
            ],
        ),
        (
            "consecutive user messages",
            vec![Message::user("a"), Message::user("b"), Message::user("c")],
        ),
        (
            "starts with tool results",
            vec![tool("toolu_9", "stale"), Message::user("a")],
        ),
        (
            "starts with an assistant that called a tool",
            vec![
                said("hi", vec![], vec![call("toolu_8")], false),
                tool("toolu_8", "x"),
                Message::user("a"),
            ],
        ),
        (
            "a call never answered, then the user",
            vec![
                Message::user("a"),
                said("let me", vec![], vec![call("toolu_3")], false),
                Message::user("b"),
                tool("toolu_3", "late"),
            ],
        ),
        (
            "whitespace text and ids from another server",
            vec![
                Message::user("a"),
                said(
                    "  ",
                    vec![],
                    vec![call("functions.read_file:0"), call("call 1")],
                    false,
                ),
                tool("functions.read_file:0", "x"),
                tool("call 1", "y"),
                Message::user("b"),
            ],
        ),
        (
            "user text between results",
            vec![
                Message::user("a"),
                said("", vec![], vec![call("toolu_4"), call("toolu_5")], false),
                tool("toolu_4", "x"),
                Message::user("stop that"),
                tool("toolu_5", "y"),
            ],
        ),
    ]
}

#[tokio::test]
async fn awkward_histories_are_valid_requests() {
    for kind in BOTH {
        let server = StandIn::start().await;
        let histories = awkward_histories();
        for _ in &histories {
            server.push(reply(kind).text("ok"));
        }
        let c = client(&settings(&server, kind));
        for (n, (name, history)) in histories.into_iter().enumerate() {
            let (result, _) = run(&c, history).await;
            let request = &server.requests()[n];
            assert_eq!(
                request.validation_error, None,
                "{kind:?} {name}: {}",
                request.body["messages"]
            );
            assert_eq!(assistant(&ok(result)).0, "ok", "{kind:?} {name}");
        }
    }
}

#[tokio::test]
async fn anthropic_merges_users_and_keeps_results_first() {
    let server = StandIn::start().await;
    server.push(Reply::anthropic().text("ok"));
    let history = vec![
        Message::user("a"),
        said("", vec![signed("hmm")], vec![], true),
        Message::user("b"),
        said("", vec![signed("t")], vec![call("functions.x:0")], false),
        tool("functions.x:0", ""),
        Message::user("c"),
    ];
    ok(run(
        &client(&settings(&server, ProviderKind::Anthropic)),
        history,
    )
    .await
    .0);
    let body = &server.requests()[0].body;
    let messages = body["messages"].as_array().cloned().unwrap_or_default();
    let roles: Vec<&str> = messages.iter().filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(messages[0]["content"][0]["text"], "a");
    assert_eq!(messages[0]["content"][1]["text"], "b");
    // Thinking kept with its signature before the call; the id made valid on both sides.
    assert_eq!(messages[1]["content"][0]["type"], "thinking");
    assert_eq!(messages[1]["content"][1]["id"], "functions_x_0");
    assert_eq!(messages[2]["content"][0]["type"], "tool_result");
    assert_eq!(messages[2]["content"][0]["tool_use_id"], "functions_x_0");
    assert_eq!(messages[2]["content"][1]["text"], "c");
}
