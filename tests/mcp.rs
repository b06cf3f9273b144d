//! MCP against real servers: the in-repo stdio server (`tests/mcp_server`, built as the
//! `mcp_test_server` example) and `@modelcontextprotocol/server-everything` (pinned in
//! `tests/mcp_everything`), over stdio and streamable HTTP, through the agent loop and the
//! stand-in LLM server, and through the `talaria` binary.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use talaria::agent::{Agent, ApprovalBroker, ApprovalPolicy, TurnOutcome};
use talaria::cancel::CancellationToken;
use talaria::event::Event;
use talaria::mcp::{McpManager, OnBroken, ServerView};
use talaria::message::Message;

use crate::agent::{
    BOTH, CANCEL_BUDGET, Collector, P, assert_valid, follow_up_is_valid, last_terminal, new_agent,
    processes_with, spawn_turn, turn,
};
use crate::standin::{Reply, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_talaria");

/// The in-repo server, built once per test run (cargo knows when it is up to date).
fn test_server() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .args(["build", "--quiet", "--example", "mcp_test_server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // What `cargo test` sets for this test binary must not reach the nested build: build
        // scripts (ring's) watch CARGO_MANIFEST_DIR and would rebuild half the tree.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy().into_owned();
            let from_cargo_test = name.starts_with("CARGO_PKG_")
                || name.starts_with("CARGO_BIN_")
                || matches!(
                    name.as_str(),
                    "CARGO_MANIFEST_DIR"
                        | "CARGO_MANIFEST_PATH"
                        | "CARGO_CRATE_NAME"
                        | "CARGO_PRIMARY_PACKAGE"
                        | "CARGO_TARGET_TMPDIR"
                        | "OUT_DIR"
                );
            if from_cargo_test {
                build.env_remove(name);
            }
        }
        let status = build.status().expect("cargo runs");
        assert!(
            status.success(),
            "building the mcp_test_server example failed"
        );
        // target/debug/deps/all-… → target/debug/examples/mcp_test_server
        let exe = std::env::current_exe().unwrap();
        let path = exe
            .parent()
            .unwrap()
            .parent()
            .unwrap()
            .join("examples/mcp_test_server");
        assert!(path.is_file(), "no test server at {}", path.display());
        path
    })
}

/// A temp dir with a data folder and an event log for the test server.
struct Fixture {
    dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        Fixture { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn mcp_json(&self) -> PathBuf {
        self.data().join("mcp.json")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The test server's entry, logging to this fixture's log; `extra` merges in.
    fn server_entry(&self, extra: Value) -> Value {
        let mut entry = json!({
            "command": test_server(),
            "args": ["--log", self.log()],
        });
        if let (Some(entry), Some(extra)) = (entry.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                entry.insert(k.clone(), v.clone());
            }
        }
        entry
    }

    fn write(&self, servers: Value) {
        std::fs::write(
            self.mcp_json(),
            serde_json::to_string_pretty(&json!({ "mcpServers": servers })).unwrap(),
        )
        .unwrap();
    }

    fn manager(&self) -> McpManager {
        McpManager::start(
            self.mcp_json(),
            true,
            OnBroken::KeepAside,
            tokio::runtime::Handle::current(),
        )
        .unwrap()
    }

    /// The test server's events so far.
    fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    async fn wait_event(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(found) = self.events().into_iter().find(|e| pred(e)) {
                return found;
            }
            assert!(
                Instant::now() < deadline,
                "the server never logged {what}: {:?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

/// Stops the servers off the async threads (shutdown blocks for its grace period).
async fn stop(mcp: McpManager) {
    tokio::task::spawn_blocking(move || mcp.shutdown(talaria::mcp::EXIT_GRACE))
        .await
        .unwrap();
}

fn server_view(mcp: &McpManager, name: &str) -> ServerView {
    mcp.overview()
        .servers
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no server {name}"))
}

async fn wait_state(mcp: &McpManager, name: &str, state: &str) -> ServerView {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = server_view(mcp, name);
        if view.state == state {
            return view;
        }
        assert!(
            Instant::now() < deadline,
            "{name} never became {state}: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn agent_with(p: P, server: &StandIn, dir: &Path, mcp: &McpManager) -> Agent {
    let mut agent = new_agent(p, server, dir);
    agent.set_mcp(Some(mcp.clone()));
    agent
}

fn tool_names(body: &Value) -> Vec<String> {
    body["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| {
            t.pointer("/function/name")
                .or_else(|| t.get("name"))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

fn results(events: &[Event]) -> Vec<(String, String, bool, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::ToolResult {
                name,
                content,
                is_error,
                server,
                ..
            } => Some((name.clone(), content.clone(), *is_error, server.clone())),
            _ => None,
        })
        .collect()
}

// ---------------------------------------------------------------- calls through the agent

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_calls_echo_through_the_standin() {
    for p in BOTH {
        let fx = Fixture::new();
        fx.write(json!({ "test": fx.server_entry(json!({})) }));
        let mcp = fx.manager();
        let server = StandIn::start().await;
        let id = p.call_id(1);
        server.push(
            p.reply()
                .tool_call(&id, "test__echo", r#"{"message":"hello over MCP"}"#),
        );
        server.push(p.reply().text("The server said hello."));
        let mut agent = agent_with(p, &server, fx.dir.path(), &mcp);
        let (outcome, events) = turn(&mut agent, "say hello", &ApprovalPolicy::ApproveAll).await;
        assert_eq!(outcome, TurnOutcome::Done, "{p:?}: {:?}", events.events());
        let all = events.events();
        assert!(all.iter().any(|e| matches!(e,
            Event::ToolCall { name, server: Some(s), .. } if name == "test__echo" && s == "test")));
        assert_eq!(
            results(&all),
            vec![(
                "test__echo".into(),
                "hello over MCP".into(),
                false,
                Some("test".into())
            )]
        );
        let requests = server.requests();
        let first = &requests[0].body;
        let names = tool_names(first);
        for name in [
            "todo",
            "terminal",
            "test__echo",
            "test__slow",
            "test__image",
        ] {
            assert!(names.contains(&name.to_string()), "{p:?}: {names:?}");
        }
        assert_valid(&server, 0);
        assert_valid(&server, 1);
        assert!(requests[1].body.to_string().contains("hello over MCP"));
        let recorded = agent.messages().iter().find_map(|m| match m {
            Message::Tool { mcp, .. } => Some(mcp.as_ref().map(|mcp| mcp.server.clone())),
            _ => None,
        });
        assert_eq!(recorded, Some(Some("test".to_string())));
        stop(mcp).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_is_asked_once_per_server_per_session() {
    let p = P::OpenAi;
    let fx = Fixture::new();
    fx.write(json!({
        "test": fx.server_entry(json!({})),
        "sure": fx.server_entry(json!({"trusted": true})),
    }));
    let mcp = fx.manager();
    let server = StandIn::start().await;

    // exec without --approve-all: an untrusted server's tools are refused, a trusted one runs.
    server.push(
        p.reply()
            .tool_call("call_1", "test__echo", r#"{"message":"a"}"#),
    );
    server.push(
        p.reply()
            .tool_call("call_2", "sure__echo", r#"{"message":"b"}"#),
    );
    server.push(p.reply().text("ok"));
    let mut agent = agent_with(p, &server, fx.dir.path(), &mcp);
    let (outcome, events) = turn(&mut agent, "go", &ApprovalPolicy::DenyAll).await;
    assert_eq!(outcome, TurnOutcome::Done);
    let got = results(&events.events());
    assert!(
        got[0].2 && got[0].1.contains("--approve-all") && got[0].1.contains("trusted"),
        "{got:?}"
    );
    assert_eq!((got[1].1.as_str(), got[1].2), ("b", false));

    // The app: the first call asks, the second call to the same server does not.
    let broker = std::sync::Arc::new(ApprovalBroker::new());
    server.push(
        p.reply()
            .tool_call("call_3", "test__echo", r#"{"message":"c"}"#),
    );
    server.push(
        p.reply()
            .tool_call("call_4", "test__echo", r#"{"message":"d"}"#),
    );
    server.push(p.reply().text("ok"));
    let events = Collector::default();
    let running = spawn_turn(
        agent,
        "again",
        ApprovalPolicy::Ask(broker.clone()),
        events.clone(),
        CancellationToken::new(),
    );
    events
        .wait_for("an approval request", |e| {
            matches!(e, Event::ApprovalRequest { .. })
        })
        .await;
    let request = events
        .events()
        .into_iter()
        .find_map(|e| match e {
            Event::ApprovalRequest {
                id,
                command,
                reason,
                ..
            } => Some((id, command, reason)),
            _ => None,
        })
        .unwrap();
    assert!(
        request.1.contains("test") && request.1.contains("echo"),
        "{request:?}"
    );
    assert!(request.2.contains("MCP server"), "{request:?}");
    // "For the session" covers the server's later calls.
    assert!(broker.respond(&request.0, talaria::agent::Decision::Session));
    let (_agent, outcome) = running.await.unwrap();
    assert_eq!(outcome, TurnOutcome::Done);
    let all = events.events();
    let asked = all
        .iter()
        .filter(|e| matches!(e, Event::ApprovalRequest { .. }))
        .count();
    assert_eq!(asked, 1, "{all:?}");
    let got = results(&all);
    assert_eq!(
        got.iter().map(|r| r.1.as_str()).collect::<Vec<_>>(),
        ["c", "d"]
    );
    stop(mcp).await;
}

// ---------------------------------------------------------------- cancel and timeout

/// Runs a turn whose tool call is `tool` with `arguments`, cancels once the server is in the
/// call, and checks the turn ends within the budget and the server hears of it.
async fn stop_during(p: P, fx: &Fixture, mcp: &McpManager, tool: &str, arguments: Value) {
    let server = StandIn::start().await;
    let id = p.call_id(7);
    server.push(
        p.reply()
            .tool_call(&id, &format!("test__{tool}"), &arguments.to_string()),
    );
    let events = Collector::default();
    let cancel = CancellationToken::new();
    let running = spawn_turn(
        agent_with(p, &server, fx.dir.path(), mcp),
        "wait",
        ApprovalPolicy::ApproveAll,
        events.clone(),
        cancel.clone(),
    );
    let calls_before = fx
        .events()
        .iter()
        .filter(|e| e["event"] == "call" && e["tool"] == tool)
        .count();
    let deadline = Instant::now() + Duration::from_secs(15);
    while fx
        .events()
        .iter()
        .filter(|e| e["event"] == "call" && e["tool"] == tool)
        .count()
        == calls_before
    {
        assert!(Instant::now() < deadline, "the server never got the call");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let call = fx
        .events()
        .into_iter()
        .rfind(|e| e["event"] == "call" && e["tool"] == tool)
        .unwrap();
    let request = call["request"].clone();
    let t0 = Instant::now();
    let wall0 = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    cancel.cancel();
    let (mut agent, outcome) = tokio::time::timeout(Duration::from_secs(5), running)
        .await
        .expect("the turn ends after Stop")
        .unwrap();
    assert_eq!(outcome, TurnOutcome::Cancelled);
    assert!(matches!(last_terminal(&events.events()), Event::Cancelled));
    let latency = events.at_of(|e| matches!(e, Event::Cancelled)).unwrap() - t0;
    println!("Stop during {tool} ({p:?}): cancelled event after {latency:?}");
    assert!(latency <= CANCEL_BUDGET, "{tool} {p:?}: {latency:?}");
    let heard = fx
        .wait_event("notifications/cancelled", |e| {
            e["event"] == "cancelled" && e["request"] == request
        })
        .await;
    let heard_after = heard["at_ms"].as_u64().unwrap().saturating_sub(wall0);
    println!("Stop during {tool} ({p:?}): the server heard the cancel {heard_after} ms after Stop");
    let cancelled_results: Vec<_> = results(&events.events());
    assert!(
        matches!(&cancelled_results[..], [(_, content, true, Some(s))] if content.contains("cancelled") && s == "test"),
        "{cancelled_results:?}"
    );
    follow_up_is_valid(p, &server, &mut agent).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_during_slow_and_during_ignore_cancel_ends_the_turn_at_once() {
    for p in BOTH {
        let fx = Fixture::new();
        fx.write(json!({ "test": fx.server_entry(json!({})) }));
        let mcp = fx.manager();
        stop_during(p, &fx, &mcp, "slow", json!({"seconds": 30})).await;
        fx.wait_event("slow stopping early", |e| e["event"] == "slow_cancelled")
            .await;
        stop_during(p, &fx, &mcp, "ignore_cancel", json!({"seconds": 2})).await;
        // The server went on regardless, and nobody waited for it.
        fx.wait_event("ignore_cancel running on", |e| {
            e["event"] == "ignored_cancel"
        })
        .await;
        assert_eq!(server_view(&mcp, "test").state, "ready");
        stop(mcp).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tool_timeout_cancels_the_call_and_reports_timeout() {
    let p = P::Anthropic;
    let fx = Fixture::new();
    fx.write(json!({ "test": fx.server_entry(json!({"tool_timeout_s": 1})) }));
    let mcp = fx.manager();
    let server = StandIn::start().await;
    server.push(
        p.reply()
            .tool_call(&p.call_id(1), "test__slow", r#"{"seconds": 30}"#),
    );
    server.push(p.reply().text("It timed out."));
    let mut agent = agent_with(p, &server, fx.dir.path(), &mcp);
    let started = Instant::now();
    let (outcome, events) = turn(&mut agent, "wait", &ApprovalPolicy::ApproveAll).await;
    assert_eq!(outcome, TurnOutcome::Done);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let got = results(&events.events());
    assert!(got[0].2 && got[0].1.starts_with("timeout:"), "{got:?}");
    fx.wait_event("the timeout's cancel", |e| e["event"] == "cancelled")
        .await;
    fx.wait_event("slow stopping early", |e| e["event"] == "slow_cancelled")
        .await;
    assert_valid(&server, 1);
    stop(mcp).await;
}

// ---------------------------------------------------------------- crashes and start-up

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_call_is_a_clear_error_the_turn_goes_on_and_the_server_shows_failed() {
    let p = P::OpenAi;
    let fx = Fixture::new();
    fx.write(json!({ "test": fx.server_entry(json!({})) }));
    let mcp = fx.manager();
    let server = StandIn::start().await;
    server.push(p.reply().tool_call("call_1", "test__crash", "{}"));
    server.push(p.reply().text("The server crashed; I will do without it."));
    let mut agent = agent_with(p, &server, fx.dir.path(), &mcp);
    let (outcome, events) = turn(&mut agent, "crash it", &ApprovalPolicy::ApproveAll).await;
    assert_eq!(outcome, TurnOutcome::Done, "{:?}", events.events());
    let got = results(&events.events());
    assert!(got[0].2, "{got:?}");
    assert!(
        got[0]
            .1
            .contains("stopped or could not be reached during the call"),
        "{got:?}"
    );
    assert!(
        got[0].1.contains("crashing on purpose"),
        "stderr in the result: {got:?}"
    );
    assert_eq!(events.text(), "The server crashed; I will do without it.");
    assert_valid(&server, 1);

    let failed = wait_state(&mcp, "test", "failed").await;
    assert!(
        failed.error.as_deref().unwrap().contains("exited"),
        "{failed:?}"
    );
    assert!(
        failed
            .stderr
            .iter()
            .any(|l| l.contains("crashing on purpose")),
        "{failed:?}"
    );
    assert!(
        failed.restart_in_s.is_some(),
        "an automatic restart is planned: {failed:?}"
    );

    // Restarted once on its own, after the backoff.
    let t0 = Instant::now();
    wait_state(&mcp, "test", "ready").await;
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );

    // A second crash stays failed: the button is for the user now.
    server.push(p.reply().tool_call("call_2", "test__crash", "{}"));
    server.push(p.reply().text("Again."));
    let (outcome, _) = turn(&mut agent, "crash it again", &ApprovalPolicy::ApproveAll).await;
    assert_eq!(outcome, TurnOutcome::Done);
    let failed = wait_state(&mcp, "test", "failed").await;
    assert!(failed.restart_in_s.is_none(), "{failed:?}");
    assert!(
        failed.error.as_deref().unwrap().contains("Restart"),
        "{failed:?}"
    );
    tokio::time::sleep(talaria::mcp::RESTART_BACKOFF + Duration::from_millis(500)).await;
    assert_eq!(server_view(&mcp, "test").state, "failed");

    // A turn now runs without its tools, at once.
    server.push(p.reply().text("fine"));
    let before = server.requests().len();
    let t0 = Instant::now();
    let (outcome, _) = turn(&mut agent, "and now?", &ApprovalPolicy::ApproveAll).await;
    assert_eq!(outcome, TurnOutcome::Done);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    let names = tool_names(&server.requests()[before].body);
    assert!(!names.iter().any(|n| n.starts_with("test__")), "{names:?}");

    // The Restart button brings it back.
    mcp.restart("test").unwrap();
    wait_state(&mcp, "test", "ready").await;
    stop(mcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_waits_for_starting_servers_up_to_their_startup_timeout() {
    let p = P::OpenAi;
    let fx = Fixture::new();
    fx.write(json!({
        // Ready after 1.5 s: the first request waits for it.
        "late": fx.server_entry(json!({"args": ["--startup-delay-ms", "1500"]})),
        // Never ready within its 1 s: the turn goes on without it.
        "stuck": fx.server_entry(json!({"args": ["--startup-delay-ms", "60000"], "startup_timeout_s": 1})),
        "broken": fx.server_entry(json!({"args": ["--exit-at-start"]})),
    }));
    let server = StandIn::start().await;
    server.push(p.reply().text("hi"));
    let t0 = Instant::now();
    let mcp = fx.manager();
    let mut agent = agent_with(p, &server, fx.dir.path(), &mcp);
    let (outcome, _) = turn(&mut agent, "hello", &ApprovalPolicy::ApproveAll).await;
    assert_eq!(outcome, TurnOutcome::Done);
    let waited = t0.elapsed();
    println!("first request after {waited:?}");
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
    assert!(waited < Duration::from_secs(8), "{waited:?}");
    let names = tool_names(&server.requests()[0].body);
    assert!(names.contains(&"late__echo".to_string()), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("stuck__") || n.starts_with("broken__"))
    );

    let stuck = server_view(&mcp, "stuck");
    assert_eq!(stuck.state, "failed");
    assert!(
        stuck
            .error
            .as_deref()
            .unwrap()
            .contains("did not start within 1 s"),
        "{stuck:?}"
    );
    let broken = server_view(&mcp, "broken");
    assert_eq!(broken.state, "failed");
    assert!(
        broken
            .stderr
            .iter()
            .any(|l| l.contains("refusing to start")),
        "{broken:?}"
    );
    // Its process is gone.
    assert!(processes_with("--startup-delay-ms 60000").is_empty());

    // Dead servers do not make the next turn wait.
    server.push(p.reply().text("again"));
    let t0 = Instant::now();
    let (outcome, _) = turn(&mut agent, "again", &ApprovalPolicy::ApproveAll).await;
    assert_eq!(outcome, TurnOutcome::Done);
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    stop(mcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_a_server_off_drops_its_tools_at_the_next_turn_and_stops_its_process() {
    let p = P::OpenAi;
    let fx = Fixture::new();
    let marker = format!("{}", fx.log().display());
    fx.write(json!({ "test": fx.server_entry(json!({})) }));
    let mcp = fx.manager();
    wait_state(&mcp, "test", "ready").await;
    assert!(!processes_with(&marker).is_empty());
    mcp.set_enabled("test", false).unwrap();
    assert_eq!(server_view(&mcp, "test").state, "disabled");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.mcp_json()).unwrap()).unwrap();
    assert_eq!(saved["mcpServers"]["test"]["enabled"], false);
    let server = StandIn::start().await;
    server.push(p.reply().text("hi"));
    let mut agent = agent_with(p, &server, fx.dir.path(), &mcp);
    turn(&mut agent, "hello", &ApprovalPolicy::ApproveAll).await;
    let names = tool_names(&server.requests()[0].body);
    assert!(!names.iter().any(|n| n.starts_with("test__")), "{names:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !processes_with(&marker).is_empty() {
        assert!(
            Instant::now() < deadline,
            "left running: {:?}",
            processes_with(&marker)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Trusted changes apply without a restart.
    mcp.set_enabled("test", true).unwrap();
    wait_state(&mcp, "test", "ready").await;
    let pid = fx
        .events()
        .iter()
        .rfind(|e| e["event"] == "started")
        .unwrap()["pid"]
        .clone();
    mcp.set_trusted("test", true).unwrap();
    assert!(server_view(&mcp, "test").trusted);
    assert_eq!(server_view(&mcp, "test").state, "ready");
    let started = fx
        .events()
        .iter()
        .filter(|e| e["event"] == "started")
        .count();
    assert_eq!(started, 2, "no restart for a trust change (pid {pid})");
    stop(mcp).await;
    assert!(
        processes_with(&marker).is_empty(),
        "shutdown kills the servers"
    );
}

// ---------------------------------------------------------------- images and history

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_reach_anthropic_as_image_blocks_and_the_log_replays_them() {
    for p in BOTH {
        let fx = Fixture::new();
        fx.write(json!({ "test": fx.server_entry(json!({})) }));
        let mcp = fx.manager();
        let server = StandIn::start().await;
        server.push(p.reply().tool_call(&p.call_id(1), "test__image", "{}"));
        server.push(p.reply().text("A red square."));
        let sessions = fx.data().join("sessions");
        let header = talaria::history::Header::new(
            match p {
                P::OpenAi => "openai",
                P::Anthropic => "anthropic",
            },
            "stand-in-model",
            fx.dir.path().display().to_string(),
        );
        let errors: std::sync::Arc<dyn talaria::event::EventSink> =
            std::sync::Arc::new(Collector::default());
        let recorder = talaria::history::Recorder::create(&sessions, header, errors).unwrap();
        let path = recorder.path().to_path_buf();
        let mut agent = Agent::new(
            crate::agent::settings(p, &server),
            fx.dir.path().to_path_buf(),
            Some(recorder.clone()),
        )
        .unwrap();
        agent.set_mcp(Some(mcp.clone()));
        let (outcome, events) = turn(&mut agent, "show me", &ApprovalPolicy::ApproveAll).await;
        assert_eq!(outcome, TurnOutcome::Done);
        let image = events.events().into_iter().find_map(|e| match e {
            Event::ToolResult { images, .. } => images.first().cloned(),
            _ => None,
        });
        let image = image.expect("the event carries the image");
        assert_eq!(image.mime_type, "image/png");
        assert_valid(&server, 1);
        let body = server.requests()[1].body.to_string();
        match p {
            P::Anthropic => {
                assert!(body.contains(r#""type":"image""#), "{body}");
                assert!(body.contains(&image.data));
            }
            P::OpenAi => {
                assert!(!body.contains(&image.data));
                assert!(body.contains("not passed on"), "{body}");
            }
        }
        recorder.flush().await.unwrap();
        drop(agent);
        drop(recorder);
        stop(mcp).await;
        // The log holds the call with its server and image, and a resumed session without
        // that server still sends a valid history.
        let log = talaria::history::read_session(&path).unwrap();
        let tool = log
            .messages
            .iter()
            .find_map(|m| match m {
                Message::Tool { mcp: Some(mcp), .. } => {
                    Some((Some(mcp.server.clone()), mcp.images.clone()))
                }
                _ => None,
            })
            .unwrap();
        assert_eq!(tool.0.as_deref(), Some("test"));
        assert_eq!(tool.1, vec![image]);
        let mut resumed = Agent::from_history(
            crate::agent::settings(p, &server),
            fx.dir.path().to_path_buf(),
            log,
            None,
        )
        .unwrap();
        server.push(p.reply().text("Still here."));
        let (outcome, _) = turn(&mut resumed, "and now?", &ApprovalPolicy::ApproveAll).await;
        assert_eq!(outcome, TurnOutcome::Done);
        assert_valid(&server, 2);
        let names = tool_names(&server.requests()[2].body);
        assert!(!names.iter().any(|n| n.starts_with("test__")));
    }
}

// ---------------------------------------------------------------- the binary

/// `talaria exec --json` against the stand-in, with the fixture's data dir and workdir.
fn exec(server: &StandIn, fx: &Fixture, extra: &[&str]) -> tokio::process::Command {
    crate::cli::exec(server, fx.dir.path(), extra)
}

struct Ran {
    code: i32,
    lines: Vec<Value>,
    stdout: String,
    stderr: String,
}

async fn run(mut cmd: tokio::process::Command) -> Ran {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("talaria finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    Ran {
        code: out.status.code().unwrap_or(-1),
        lines: stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect(),
        stdout,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn of_type<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
    lines.iter().filter(|l| l["type"] == kind).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_sees_the_tools_on_its_first_request_and_the_child_gets_no_api_keys() {
    let fx = Fixture::new();
    fx.write(json!({ "test": fx.server_entry(json!({
        "trusted": true,
        "env": {"MY_SERVICE_TOKEN": "configured-on-purpose"},
    })) }));
    let server = StandIn::start().await;
    server.push(Reply::openai().tool_call("call_1", "test__env", "{}"));
    server.push(Reply::openai().text("Looked at the environment."));
    let mut cmd = exec(&server, &fx, &["show the environment"]);
    cmd.env("OPENAI_API_KEY", "sk-parent-openai")
        .env("ANTHROPIC_API_KEY", "sk-parent-anthropic")
        .env("GITHUB_TOKEN", "ghp-parent")
        .env("SOME_PASSWORD", "hunter2")
        .env("LANG", "C.UTF-8");
    let out = run(cmd).await;
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    let names = tool_names(&server.requests()[0].body);
    assert!(names.contains(&"test__env".to_string()), "{names:?}");
    let result = of_type(&out.lines, "tool_result")[0];
    assert_eq!(result["server"], "test");
    let env: Value = serde_json::from_str(result["content"].as_str().unwrap()).unwrap();
    let env = env.as_object().unwrap();
    let leaked: Vec<&String> = env
        .keys()
        .filter(|k| k.contains("API_KEY") || *k == "GITHUB_TOKEN" || *k == "SOME_PASSWORD")
        .collect();
    assert!(leaked.is_empty(), "leaked to the server: {leaked:?}");
    assert!(!result["content"].as_str().unwrap().contains("sk-"));
    assert_eq!(env["MY_SERVICE_TOKEN"], "configured-on-purpose");
    assert_eq!(env["LANG"], "C.UTF-8");
    assert!(env.contains_key("PATH"));
    let marker = fx.log().display().to_string();
    assert!(
        processes_with(&marker).is_empty(),
        "exec leaves no server behind"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_refuses_untrusted_tools_unless_approve_all_and_takes_mcp_flags() {
    let fx = Fixture::new();
    fx.write(json!({ "test": fx.server_entry(json!({})) }));
    let server = StandIn::start().await;
    server.push(Reply::openai().tool_call("call_1", "test__echo", r#"{"message":"x"}"#));
    server.push(Reply::openai().text("Refused."));
    let out = run(exec(&server, &fx, &["echo"])).await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let result = of_type(&out.lines, "tool_result")[0];
    assert_eq!(result["is_error"], true);
    assert!(
        result["content"]
            .as_str()
            .unwrap()
            .contains("--approve-all"),
        "{result}"
    );

    server.push(Reply::openai().tool_call("call_1", "test__echo", r#"{"message":"x"}"#));
    server.push(Reply::openai().text("Done."));
    let out = run(exec(&server, &fx, &["--approve-all", "echo"])).await;
    let result = of_type(&out.lines, "tool_result")[0];
    assert_eq!(
        (result["content"].as_str(), result["is_error"].as_bool()),
        (Some("x"), Some(false))
    );

    // --no-mcp: no MCP tools at all.
    server.reset();
    server.push(Reply::openai().text("plain"));
    let out = run(exec(&server, &fx, &["--no-mcp", "hi"])).await;
    assert_eq!(out.code, 0);
    assert!(
        !tool_names(&server.requests()[0].body)
            .iter()
            .any(|n| n.contains("__"))
    );

    // --mcp-config FILE replaces the data dir's list.
    let other = fx.dir.path().join("other.json");
    std::fs::write(
        &other,
        json!({"mcpServers": {"alt": fx.server_entry(json!({}))}}).to_string(),
    )
    .unwrap();
    server.reset();
    server.push(Reply::openai().text("alt"));
    let out = run(exec(
        &server,
        &fx,
        &["--mcp-config", other.to_str().unwrap(), "hi"],
    ))
    .await;
    assert_eq!(out.code, 0, "{}", out.stderr);
    let names = tool_names(&server.requests()[0].body);
    assert!(
        names.contains(&"alt__echo".to_string()) && !names.iter().any(|n| n.starts_with("test__")),
        "{names:?}"
    );
    let missing = fx.dir.path().join("missing.json");
    let out = run(exec(
        &server,
        &fx,
        &["--mcp-config", missing.to_str().unwrap(), "hi"],
    ))
    .await;
    assert_eq!(out.code, 2);
    assert_eq!(of_type(&out.lines, "error")[0]["kind"], "config");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_mcp_json_is_kept_and_reported() {
    let fx = Fixture::new();
    let broken = "{\"mcpServers\": {\"test\": {\"command\": \"x\",}}";
    std::fs::write(fx.mcp_json(), broken).unwrap();
    let server = StandIn::start().await;

    // exec: a config error that says what to do; the file is left as it was.
    let out = run(exec(&server, &fx, &["hi"])).await;
    assert_eq!(out.code, 2, "{}", out.stdout);
    let error = of_type(&out.lines, "error")[0];
    assert_eq!(error["kind"], "config");
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("mcp.json") && message.contains("--no-mcp"),
        "{message}"
    );
    assert_eq!(std::fs::read_to_string(fx.mcp_json()).unwrap(), broken);
    assert!(server.requests().is_empty());

    // The CLI refuses to list or edit it.
    let list = run(cli(&fx, &["mcp", "list"])).await;
    assert_eq!(list.code, 2);
    assert!(list.stderr.contains("mcp.json"), "{}", list.stderr);
    let add = run(cli(&fx, &["mcp", "add", "x", "--", "true"])).await;
    assert_eq!(add.code, 2);
    assert_eq!(std::fs::read_to_string(fx.mcp_json()).unwrap(), broken);

    // The app: kept aside as mcp.json.broken-<time>, reported, no servers.
    let mcp = fx.manager();
    let warning = mcp.overview().warning.expect("a warning");
    assert!(warning.contains("kept as"), "{warning}");
    assert!(mcp.overview().servers.is_empty());
    let kept: Vec<String> = std::fs::read_dir(fx.data())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("mcp.json.broken-"))
        .collect();
    assert_eq!(kept.len(), 1);
    assert_eq!(
        std::fs::read_to_string(fx.data().join(&kept[0])).unwrap(),
        broken
    );
    // Adding a server from the app starts a fresh file; the broken one stays aside.
    mcp.save_server(
        None,
        "test",
        &serde_json::from_value(fx.server_entry(json!({}))).unwrap(),
    )
    .unwrap();
    wait_state(&mcp, "test", "ready").await;
    assert!(mcp.overview().warning.is_none());
    stop(mcp).await;
}

/// `talaria ARGS… --data-dir DATA` (the flag goes before a `--`, which ends the options).
fn cli(fx: &Fixture, args: &[&str]) -> tokio::process::Command {
    let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.env_remove("TALARIA_DATA_DIR")
        .args(&args[..at])
        .arg("--data-dir")
        .arg(fx.data())
        .args(&args[at..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_add_list_remove() {
    let fx = Fixture::new();
    let server = test_server().display().to_string();
    let log = fx.log().display().to_string();
    let add = run(cli(
        &fx,
        &[
            "mcp", "add", "test", "--env", "A=1", "--", &server, "--log", &log,
        ],
    ))
    .await;
    assert_eq!(add.code, 0, "{}", add.stderr);
    assert!(add.stdout.contains("added the MCP server test"));
    let again = run(cli(&fx, &["mcp", "add", "test", "--", &server])).await;
    assert_eq!(again.code, 2);
    assert!(again.stderr.contains("already"), "{}", again.stderr);
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.mcp_json()).unwrap()).unwrap();
    assert_eq!(saved["mcpServers"]["test"]["args"], json!(["--log", log]));
    assert_eq!(saved["mcpServers"]["test"]["env"], json!({"A": "1"}));

    let list = run(cli(&fx, &["mcp", "list"])).await;
    assert_eq!(list.code, 0, "{}", list.stderr);
    assert!(
        list.stdout.contains("test  [ready, 6 tool(s)]"),
        "{}",
        list.stdout
    );
    assert!(list.stdout.contains("test__echo"));
    let list = run(cli(&fx, &["mcp", "list", "--json"])).await;
    let servers: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(servers[0]["name"], "test");
    assert_eq!(servers[0]["state"], "ready");
    assert!(
        servers[0].get("entry").is_none(),
        "no env values in the listing"
    );
    let tools: Vec<&str> = servers[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        tools,
        ["echo", "slow", "ignore_cancel", "crash", "image", "env"]
    );
    assert!(
        processes_with(&log).is_empty(),
        "list stops what it started"
    );

    let remove = run(cli(&fx, &["mcp", "remove", "test"])).await;
    assert_eq!(remove.code, 0, "{}", remove.stderr);
    let remove = run(cli(&fx, &["mcp", "remove", "test"])).await;
    assert_eq!(remove.code, 2);
    let list = run(cli(&fx, &["mcp", "list"])).await;
    assert!(list.stdout.contains("no MCP servers"), "{}", list.stdout);
}

// ---------------------------------------------------------------- a server nobody here wrote

fn everything() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/mcp_everything/node_modules/@modelcontextprotocol/server-everything/dist/index.js",
    );
    assert!(
        path.is_file(),
        "server-everything is not installed: run `make deps` (or npm ci in tests/mcp_everything)"
    );
    path
}

/// Lists the tools and calls echo and add, through the agent loop and the stand-in.
async fn use_everything(fx: &Fixture, mcp: &McpManager) {
    let view = wait_state(mcp, "everything", "ready").await;
    let tools: Vec<&str> = view.tools.iter().map(|t| t.name.as_str()).collect();
    assert!(
        tools.contains(&"echo") && tools.contains(&"add"),
        "{tools:?}"
    );
    let p = P::Anthropic;
    let server = StandIn::start().await;
    server.push(
        p.reply()
            .tool_call("toolu_1", "everything__echo", r#"{"message":"hi there"}"#),
    );
    server.push(
        p.reply()
            .tool_call("toolu_2", "everything__add", r#"{"a": 2, "b": 3}"#),
    );
    server.push(p.reply().text("2 + 3 = 5"));
    let mut agent = agent_with(p, &server, fx.dir.path(), mcp);
    let (outcome, events) = turn(&mut agent, "echo and add", &ApprovalPolicy::ApproveAll).await;
    assert_eq!(outcome, TurnOutcome::Done, "{:?}", events.events());
    let got = results(&events.events());
    assert_eq!(got[0].1, "Echo: hi there");
    assert!(got[1].1.contains("The sum of 2 and 3 is 5"), "{got:?}");
    assert!(!got[0].2 && !got[1].2);
    assert_valid(&server, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_stdio() {
    let fx = Fixture::new();
    fx.write(json!({ "everything": {
        "command": "node",
        "args": [everything(), "stdio"],
        "startup_timeout_s": 30,
    } }));
    let mcp = fx.manager();
    use_everything(&fx, &mcp).await;
    stop(mcp).await;
}

/// server-everything's streamable HTTP server on a free port, once it listens.
async fn everything_http() -> (tokio::process::Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let node = tokio::process::Command::new("node")
        .arg(everything())
        .arg("streamableHttp")
        .env("PORT", port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "server-everything never listened on {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (node, port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_everything_over_streamable_http() {
    let (mut node, port) = everything_http().await;
    let fx = Fixture::new();
    fx.write(json!({ "everything": { "url": format!("http://127.0.0.1:{port}/mcp") } }));
    let mcp = fx.manager();
    use_everything(&fx, &mcp).await;
    stop(mcp).await;
    let _ = node.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_server_that_goes_away() {
    let (mut node, port) = everything_http().await;
    let fx = Fixture::new();
    fx.write(json!({ "everything": { "url": format!("http://127.0.0.1:{port}/mcp"), "tool_timeout_s": 5 } }));
    let mcp = fx.manager();
    wait_state(&mcp, "everything", "ready").await;
    node.kill().await.unwrap();
    let _ = node.wait().await;
    let route = mcp.turn_tools().await.routes["everything__echo"].clone();
    let t0 = Instant::now();
    let out = mcp.call(&route, r#"{"message": "anyone?"}"#).await;
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(out.is_error, "{out:?}");
    assert!(
        out.content.contains("could not be reached"),
        "{}",
        out.content
    );
    assert!(
        !out.content.contains("::"),
        "no Rust type names: {}",
        out.content
    );
    // Not left looking ready: failed, restarted once (still gone), failed for good.
    let failed = wait_state(&mcp, "everything", "failed").await;
    assert!(
        failed.error.as_deref().unwrap().contains("closed"),
        "{failed:?}"
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let view = server_view(&mcp, "everything");
        if view.state == "failed" && view.restart_in_s.is_none() {
            assert!(
                view.error.as_deref().unwrap().contains("could not reach"),
                "{view:?}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "{view:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop(mcp).await;
}

// ---------------------------------------------------------------- bench figures

/// Not a test: the figures for the bench. `cargo test --release --test all bench_mcp -- --ignored --nocapture`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_mcp_call_overhead_and_cancel_latency() {
    let fx = Fixture::new();
    fx.write(json!({ "test": fx.server_entry(json!({"trusted": true})) }));
    let mcp = fx.manager();
    wait_state(&mcp, "test", "ready").await;
    let tools = mcp.turn_tools().await;
    let route = tools.routes["test__echo"].clone();
    let mut times = Vec::new();
    for i in 0..500 {
        let t0 = Instant::now();
        let out = mcp
            .call(&route, &json!({"message": format!("m{i}")}).to_string())
            .await;
        times.push(t0.elapsed());
        assert!(!out.is_error);
    }
    times.sort();
    let pct = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize];
    println!(
        "BENCH mcp echo round trip (stdio, 500 calls): median {:?}, p95 {:?}, max {:?}",
        pct(0.5),
        pct(0.95),
        times.last().unwrap()
    );

    let p = P::OpenAi;
    let server = StandIn::start().await;
    let mut event_latency = Vec::new();
    let mut heard_latency = Vec::new();
    for n in 0..20 {
        server.push(
            p.reply()
                .tool_call(&format!("call_{n}"), "test__slow", r#"{"seconds": 30}"#),
        );
        let events = Collector::default();
        let cancel = CancellationToken::new();
        let before = fx.events().iter().filter(|e| e["event"] == "call").count();
        let running = spawn_turn(
            agent_with(p, &server, fx.dir.path(), &mcp),
            "wait",
            ApprovalPolicy::ApproveAll,
            events.clone(),
            cancel.clone(),
        );
        while fx.events().iter().filter(|e| e["event"] == "call").count() == before {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let request = fx
            .events()
            .into_iter()
            .rfind(|e| e["event"] == "call")
            .unwrap()["request"]
            .clone();
        let wall0 = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as f64
            / 1000.0;
        let t0 = Instant::now();
        cancel.cancel();
        let _ = running.await.unwrap();
        event_latency.push(events.at_of(|e| matches!(e, Event::Cancelled)).unwrap() - t0);
        let heard = fx
            .wait_event("the cancel", |e| {
                e["event"] == "cancelled" && e["request"] == request
            })
            .await;
        heard_latency.push((heard["at_ms"].as_f64().unwrap() - wall0).max(0.0));
    }
    event_latency.sort();
    heard_latency.sort_by(f64::total_cmp);
    println!(
        "BENCH Stop during slow (20 runs): cancelled event median {:?}, max {:?}; the server heard notifications/cancelled after median {:.0} ms, max {:.0} ms (ms clock)",
        event_latency[10],
        event_latency.last().unwrap(),
        heard_latency[10],
        heard_latency.last().unwrap()
    );
    stop(mcp).await;
}
