//! The real `talaria` binary in headless mode against the stand-in server.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::standin::{Reply, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_talaria");

/// `talaria exec --json` with a clean environment, against the stand-in's OpenAI endpoint.
pub(crate) fn exec(server: &StandIn, data: &Path, extra: &[&str]) -> Command {
    let mut cmd = exec_plain(server, data, &[]);
    cmd.arg("--json").args(extra);
    cmd
}

/// The same `talaria exec` without `--json` (human output); `extra` ends with the prompt.
fn exec_plain(server: &StandIn, data: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    let vars = talaria::config::ENV_VARS.iter().copied();
    for var in vars.chain(["TALARIA_DATA_DIR", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"]) {
        cmd.env_remove(var);
    }
    cmd.env("TALARIA_API_KEY", "sk-test");
    cmd.args([
        "exec",
        "--base-url",
        &server.openai_base(),
        "--model",
        "stand-in-model",
    ]);
    cmd.arg("--data-dir").arg(data.join("data"));
    cmd.arg("--workdir").arg(data);
    cmd.args(extra);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd.kill_on_drop(true);
    cmd
}

struct Run {
    code: i32,
    lines: Vec<Value>,
    stderr: String,
}

async fn run(mut cmd: Command) -> Run {
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("exec finishes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    Run {
        code: out.status.code().unwrap_or(-1),
        lines,
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

fn kind(line: &Value) -> &str {
    line["type"].as_str().unwrap_or("")
}

fn tokens(lines: &[Value]) -> String {
    lines
        .iter()
        .filter(|l| kind(l) == "token")
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn exec_json_streams_session_tokens_and_done() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.push(Reply::openai().tool_call(
        "call_1",
        "write_file",
        r#"{"path":"hi.txt","content":"hi"}"#,
    ));
    server.push(Reply::openai().text("All done, the file is written."));
    let out = run(exec(&server, dir.path(), &["write hi.txt"])).await;
    assert_eq!(out.code, 0, "stderr: {}", out.stderr);
    let first = &out.lines[0];
    assert_eq!(kind(first), "session", "{:?}", out.lines);
    let path = first["path"].as_str().unwrap();
    assert!(first["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(kind(out.lines.last().unwrap()), "done");
    assert_eq!(tokens(&out.lines), "All done, the file is written.");
    assert!(
        out.lines
            .iter()
            .any(|l| kind(l) == "tool_call" && l["arguments"]["path"] == "hi.txt")
    );
    assert!(
        out.lines
            .iter()
            .any(|l| kind(l) == "tool_result" && l["is_error"] == false)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("hi.txt")).unwrap(),
        "hi"
    );
    let log = std::fs::read_to_string(path).unwrap();
    assert!(
        log.contains("write hi.txt") && log.contains("All done"),
        "{log}"
    );
    assert_eq!(server.requests()[1].validation_error, None);
}

#[tokio::test]
async fn exec_without_json_prints_the_reply_on_stdout() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.push(Reply::openai().text("Plain text reply."));
    let mut plain = exec_plain(&server, dir.path(), &["hello"]);
    let out = tokio::time::timeout(Duration::from_secs(60), plain.output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "Plain text reply.\n");
}

#[tokio::test]
async fn exec_auth_failure_is_kind_auth_exit_1() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.require_api_key("sk-the-right-one");
    let out = run(exec(&server, dir.path(), &["hi"])).await;
    assert_eq!(out.code, 1);
    assert_eq!(kind(&out.lines[0]), "session");
    let last = out.lines.last().unwrap();
    assert_eq!(kind(last), "error");
    assert_eq!(last["kind"], "auth");
    assert!(
        !last["message"].as_str().unwrap().contains("sk-test"),
        "no key in error text"
    );
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn exec_bad_usage_exits_2() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    // An unknown flag, a missing prompt, an unknown provider: clap errors.
    for extra in [
        &["--bogus", "hi"][..],
        &[][..],
        &["--provider", "gemini", "hi"][..],
    ] {
        let out = run(exec(&server, dir.path(), extra)).await;
        assert_eq!(out.code, 2, "{extra:?}: {}", out.stderr);
    }
    // A configuration error: the JSON error line, kind config.
    let mut cmd = exec(&server, dir.path(), &["--model", "", "hi"]);
    cmd.env_remove("TALARIA_MODEL");
    let out = run(cmd).await;
    assert_eq!(out.code, 2, "{}", out.stderr);
    let last = out.lines.last().unwrap();
    assert_eq!(
        (kind(last), last["kind"].as_str()),
        ("error", Some("config"))
    );
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn version_flag() {
    for flag in ["--version", "-V"] {
        let out = Command::new(BIN).arg(flag).output().await.unwrap();
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("talaria {}", env!("CARGO_PKG_VERSION"))
        );
    }
}

async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: &mut Vec<Value>,
    what: &str,
) {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}: {seen:?}"))
            .unwrap()
            .unwrap_or_else(|| panic!("stdout closed before {what}: {seen:?}"));
        let value: Value = serde_json::from_str(&line).unwrap();
        let done = kind(&value) == what;
        seen.push(value);
        if done {
            return;
        }
    }
}

fn signal(child: &Child, sig: i32) {
    let pid = child.id().expect("running") as i32;
    // SAFETY-free: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_sigterm_mid_stream_cancels_and_exits_130() {
    for sig in [libc::SIGTERM, libc::SIGINT] {
        let server = StandIn::start().await;
        let dir = tempfile::tempdir().unwrap();
        server.push(
            Reply::openai()
                .text("Streaming forever")
                .drip(Duration::from_millis(5)),
        );
        let mut child = exec(&server, dir.path(), &["go"]).spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        read_until(&mut lines, &mut seen, "token").await;
        let t0 = Instant::now();
        signal(&child, sig);
        read_until(&mut lines, &mut seen, "cancelled").await;
        let cancelled_line = t0.elapsed();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .expect("exits")
            .unwrap();
        let exited = t0.elapsed();
        let disconnect = server
            .wait_disconnect(0, Duration::from_secs(2))
            .await
            .map(|at| at.saturating_duration_since(t0));
        println!(
            "signal {sig}: cancelled line after {cancelled_line:?}, exit after {exited:?}, disconnect after {disconnect:?}"
        );
        assert_eq!(status.code(), Some(130));
        assert!(
            lines.next_line().await.unwrap().is_none(),
            "cancelled is the last line"
        );
        assert!(
            disconnect.is_some_and(|d| d <= Duration::from_millis(50)),
            "disconnect {disconnect:?}"
        );
        assert!(exited < Duration::from_secs(3), "exit took {exited:?}");
        // The log was flushed: it holds the user message, the partial reply and the turn end.
        let path = seen[0]["path"].as_str().unwrap().to_string();
        let log = std::fs::read_to_string(&path).unwrap();
        assert!(log.contains("\"partial\":true"), "{log}");
        assert!(log.contains("\"status\":\"cancelled\""), "{log}");
    }
}

#[tokio::test]
async fn exec_resume_continues_the_same_file() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.push(Reply::openai().text("First answer."));
    let first = run(exec(&server, dir.path(), &["first question"])).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let id = first.lines[0]["id"].as_str().unwrap().to_string();
    let path = first.lines[0]["path"].as_str().unwrap().to_string();

    server.push(Reply::openai().text("Second answer."));
    let second = run(exec(
        &server,
        dir.path(),
        &["--resume", &id, "second question"],
    ))
    .await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_eq!(second.lines[0]["id"], id.as_str());
    assert_eq!(second.lines[0]["path"], path.as_str());
    assert_eq!(tokens(&second.lines), "Second answer.");
    let request = &server.requests()[1];
    assert_eq!(request.validation_error, None);
    let sent = request.body["messages"].to_string();
    assert!(
        sent.contains("first question")
            && sent.contains("First answer.")
            && sent.contains("second question"),
        "{sent}"
    );
    let log = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        log.matches("\"type\":\"session\"").count(),
        1,
        "one header: {log}"
    );
    assert!(log.contains("Second answer."));
    // Every session dir holds one file: the resume did not start a new one.
    let files = walk(&dir.path().join("data/sessions"));
    assert_eq!(files.len(), 1, "{files:?}");

    // An unknown id is a usage error.
    let out = run(exec(
        &server,
        dir.path(),
        &["--resume", "no-such-session", "hi"],
    ))
    .await;
    assert_eq!(out.code, 2, "{}", out.stderr);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else if path.extension().is_some_and(|e| e == "jsonl") {
            out.push(path);
        }
    }
    out
}

#[tokio::test]
async fn exec_without_history_prints_the_reply_then_fails_with_io() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The data dir is a file: no sessions folder can be created under it.
    std::fs::write(dir.path().join("data"), "not a folder").unwrap();
    server.push(Reply::openai().text("Still answering."));
    let out = run(exec(&server, dir.path(), &["hi"])).await;
    assert_eq!(kind(&out.lines[0]), "session");
    let storage = out
        .lines
        .iter()
        .find(|l| kind(l) == "storage_error")
        .expect("an io error event");
    assert_eq!(storage["kind"], "io");
    // The reply is printed in full, and the turn is done...
    assert_eq!(tokens(&out.lines), "Still answering.");
    assert!(out.lines.iter().any(|l| kind(l) == "done"));
    // ...but nothing of it was saved: exit 1, with an io error as the last line.
    assert_eq!(out.code, 1, "{}", out.stderr);
    let last = out.lines.last().unwrap();
    assert_eq!((kind(last), last["kind"].as_str()), ("error", Some("io")));
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("could not be saved")
    );
}

/// SIGKILL (no chance to flush) mid-stream: the log stays readable, the user's message is in
/// it, and `--resume` continues the session with the crashed turn marked interrupted.
#[tokio::test]
async fn exec_sigkill_mid_stream_keeps_the_user_message_and_resumes() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.push(
        Reply::openai()
            .text("Streaming until killed")
            .drip(Duration::from_millis(5)),
    );
    let mut child = exec(&server, dir.path(), &["remember this question"])
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    read_until(&mut lines, &mut seen, "token").await;
    // Let a batch window pass so some streamed state could have been written.
    tokio::time::sleep(Duration::from_millis(700)).await;
    signal(&child, libc::SIGKILL);
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert_eq!(status.code(), None, "killed by a signal");
    let id = seen[0]["id"].as_str().unwrap().to_string();
    let path = seen[0]["path"].as_str().unwrap().to_string();
    let log = talaria::history::read_session(Path::new(&path)).unwrap();
    assert_eq!(log.skipped_lines, 0, "no torn line: whole lines only");
    assert_eq!(log.messages[0].content(), "remember this question");
    assert!(log.interrupted, "the turn never ended");

    server.push(Reply::openai().text("Back again."));
    let resumed = run(exec(&server, dir.path(), &["--resume", &id, "go on"])).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let request = server.requests().last().cloned().unwrap();
    assert_eq!(request.validation_error, None);
    assert!(
        request.body["messages"]
            .to_string()
            .contains("remember this question")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("\"status\":\"interrupted\""), "{text}");
    assert_eq!(
        text.matches("\"type\":\"session\"").count(),
        1,
        "one header"
    );
}

#[tokio::test]
async fn exec_human_output_shows_tool_activity_on_stderr() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "line one\nline two\n").unwrap();
    server.push(
        Reply::openai()
            .text("Reading it.")
            .tool_call("call_1", "read_file", r#"{"path":"notes.txt"}"#)
            .tool_call("call_2", "read_file", r#"{"path":"missing.txt"}"#),
    );
    server.push(Reply::openai().text("The notes have two lines."));
    let mut plain = exec_plain(&server, dir.path(), &["read notes"]);
    let out = tokio::time::timeout(Duration::from_secs(60), plain.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Only the reply on stdout, each model call's text on its own line.
    assert_eq!(stdout, "Reading it.\nThe notes have two lines.\n");
    let notes: Vec<&str> = stderr.lines().collect();
    assert!(
        notes.contains(&"talaria: > read_file notes.txt"),
        "{stderr}"
    );
    assert!(
        notes
            .iter()
            .any(|l| l.starts_with("talaria: < read_file ok") && l.contains("line one")),
        "{stderr}"
    );
    assert!(
        notes
            .iter()
            .any(|l| l.starts_with("talaria: < read_file failed: ")),
        "{stderr}"
    );
}

/// One writer per session log: `--resume` of a session another process is writing fails
/// with a clear `io` error instead of forking the conversation, and works once it is free.
#[tokio::test]
async fn exec_resume_of_a_session_open_elsewhere_is_refused() {
    let server = StandIn::start().await;
    let dir = tempfile::tempdir().unwrap();
    server.push(Reply::openai().text("First answer."));
    let first = run(exec(&server, dir.path(), &["first question"])).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let id = first.lines[0]["id"].as_str().unwrap().to_string();
    let path = first.lines[0]["path"].as_str().unwrap().to_string();

    // Another writer (as the desktop app holds it) has the log open.
    let holder = talaria::history::Recorder::reopen(
        Path::new(&path),
        std::sync::Arc::new(|_: talaria::event::Event| {}),
    )
    .unwrap();
    let refused = run(exec(&server, dir.path(), &["--resume", &id, "second"])).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    let last = refused.lines.last().unwrap();
    assert_eq!(last["type"], "error");
    assert_eq!(last["kind"], "io");
    assert!(
        last["message"]
            .as_str()
            .unwrap()
            .contains("another Talaria process"),
        "{last}"
    );
    assert_eq!(server.requests().len(), 1, "no model call was made");

    drop(holder);
    server.push(Reply::openai().text("Second answer."));
    let second = run(exec(&server, dir.path(), &["--resume", &id, "second"])).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
}
