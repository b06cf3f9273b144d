// tests: compressed session logs — compaction through the real CLI keeps show, export,
// search and resume identical; a crash between any two steps of the switch leaves one readable
// copy; a running session is never compressed; the storage figures; exec on a full disk.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use talaria::history::compress::{self, Compacted, Step};
use talaria::history::layout::{compressed_path, plain_path};
use talaria::history::{self, Index, SessionStatus};

use crate::history_gen::{
    ARGUMENT_ONLY_WORD, Generated, LAST_TURN_WORD, RESULT_ONLY_WORD, TODO_ONLY_WORD, big_session,
};
use crate::standin::{Reply, StandIn};

const BIN: &str = env!("CARGO_BIN_EXE_talaria");

/// The `talaria` binary with a clean environment.
fn talaria(data: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    let vars = talaria::config::ENV_VARS.iter().copied();
    for var in vars.chain(["TALARIA_DATA_DIR", "OPENAI_API_KEY", "ANTHROPIC_API_KEY"]) {
        cmd.env_remove(var);
    }
    cmd.env("TALARIA_DATA_DIR", data);
    cmd
}

/// Runs `talaria sessions ARGS`; returns (exit code, stdout, stderr).
fn sessions(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = talaria(data).arg("sessions").args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Everything the CLI says about session `id`: each form of show and export, the tail, and
/// search results for the generated words.
fn everything(data: &Path, id: &str) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let queries: [&[&str]; 7] = [
        &["show", id],
        &["show", id, "--json"],
        &["show", id, "--markdown"],
        &["show", id, "--json", "--tail", "50"],
        &["show", id, "--tail", "7"],
        &["export", id, "--format", "json"],
        &["export", id, "--format", "markdown"],
    ];
    for args in queries {
        let (code, out, err) = sessions(data, args);
        assert_eq!(code, 0, "{args:?}: {err}");
        seen.push((args.join(" "), out));
    }
    for word in [
        LAST_TURN_WORD,
        RESULT_ONLY_WORD,
        ARGUMENT_ONLY_WORD,
        TODO_ONLY_WORD,
        "fn",
    ] {
        let (code, out, err) = sessions(data, &["search", word, "--json"]);
        assert_eq!(code, 0, "{err}");
        seen.push((format!("search {word}"), out));
    }
    seen
}

fn generate(data: &Path, mb: u64) -> Generated {
    big_session(&history::sessions_dir(data), mb << 20, 11)
}

#[test]
fn compaction_keeps_show_export_search_and_resume_identical() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let session = generate(&data, 24);
    let before = everything(&data, &session.id);
    let hits: serde_json::Value = serde_json::from_str(&before[7].1).unwrap();
    assert_eq!(hits[0]["id"], session.id.as_str(), "{hits}");

    let (code, out, err) = sessions(&data, &["compact", &session.id]);
    assert_eq!(code, 0, "{err}");
    println!("{}", out.trim());
    let zst = compressed_path(&session.path);
    assert!(zst.exists() && !session.path.exists());
    let ratio = session.bytes as f64 / std::fs::metadata(&zst).unwrap().len() as f64;
    println!("compressed {} MB to 1/{ratio:.1}", session.bytes >> 20);
    assert!(ratio >= 5.0, "only {ratio:.1}x smaller");

    let after = everything(&data, &session.id);
    for ((what, old), (_, new)) in before.iter().zip(&after) {
        assert!(old == new, "{what} changed after compaction");
    }
    let (_, list, _) = sessions(&data, &["list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["compressed"], true);
    assert_eq!(list[0]["path"], zst.display().to_string());

    // Resume: made plain again, then appended to; the compressed copy goes.
    let server = StandIn::start_blocking();
    server.push(Reply::openai().text("Picked up where we left off."));
    let out = talaria(&data)
        .args(["exec", "--json", "--model", "m", "--base-url"])
        .arg(server.openai_base())
        .arg("--workdir")
        .arg(dir.path())
        .args(["--resume", &session.id, "and now the next step"])
        .env("TALARIA_API_KEY", "sk-test")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().next().unwrap()).unwrap();
    assert_eq!(first["path"], session.path.display().to_string());
    assert!(session.path.exists() && !zst.exists());
    // The model got the whole conversation.
    let request = &server.requests()[0];
    let body = &request.body;
    let sent = body["messages"].as_array().unwrap().len() as u64;
    assert!(sent > session.messages, "{sent} of {}", session.messages);
    let (_, shown, _) = sessions(&data, &["show", &session.id, "--json", "--tail", "2"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(
        shown["messages"][1]["content"],
        "Picked up where we left off."
    );
    assert_eq!(shown["total_messages"], session.messages + 2);
}

/// Compresses `path`, crashing (a panic that unwinds past every clean-up, as a dead process
/// would leave things) when the compaction reaches `at`.
fn crash_at(path: &Path, at: Step) {
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compress::compress_log(path, &mut |step| {
            if step == at {
                panic!("simulated crash at {step:?}");
            }
            ControlFlow::Continue(())
        })
    }));
    assert!(outcome.is_err(), "never reached {at:?}");
}

#[test]
fn a_crash_between_any_two_steps_of_compaction_leaves_a_readable_session() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let session = generate(&data, 3);
    let original = std::fs::read(&session.path).unwrap();
    let expected = history::read_session(&session.path).unwrap().messages;
    let shown = sessions(&data, &["show", &session.id, "--json"]).1;
    for step in [
        Step::Frame(0),
        Step::Frame(1),
        Step::TempReady,
        Step::Renamed,
        Step::Removed,
    ] {
        // Start each time from the plain log alone.
        let zst = compressed_path(&session.path);
        let _ = std::fs::remove_file(&zst);
        std::fs::write(&session.path, &original).unwrap();
        crash_at(&session.path, step);
        let plain = session.path.exists();
        let compressed = zst.exists();
        println!("crash at {step:?}: plain {plain}, compressed {compressed}");
        assert!(plain || compressed, "{step:?} lost the log");
        let read = history::read_session(&session.path).unwrap();
        assert_eq!(read.messages, expected, "{step:?}");
        assert_eq!(
            sessions(&data, &["show", &session.id, "--json"]).1,
            shown,
            "{step:?}"
        );
        // A later compaction finishes the job.
        let (code, _, err) = sessions(&data, &["compact", &session.id]);
        assert_eq!(code, 0, "{step:?}: {err}");
        assert!(zst.exists() && !session.path.exists(), "{step:?}");
        assert_eq!(history::read_session(&zst).unwrap().messages, expected);
        std::fs::remove_file(&zst).unwrap();
        std::fs::write(&session.path, &original).unwrap();
    }
}

#[test]
fn a_killed_compaction_leaves_a_readable_session_and_its_leftovers_are_swept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let session = generate(&data, 40);
    let expected = history::read_session(&session.path).unwrap().messages;
    // Index first, so the child spends its time compressing.
    assert_eq!(sessions(&data, &["list"]).0, 0);
    let zst = compressed_path(&session.path);
    for delay_ms in [30, 120, 300, 700] {
        let mut child = talaria(&data)
            .args(["sessions", "compact", &session.id])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        unsafe {
            libc::kill(child.id() as i32, libc::SIGKILL);
        }
        let _ = child.wait();
        let (plain, compressed) = (session.path.exists(), zst.exists());
        println!("killed after {delay_ms} ms: plain {plain}, compressed {compressed}");
        assert!(plain || compressed);
        let read = history::read_session(&session.path).unwrap();
        assert_eq!(read.messages.len(), expected.len(), "after {delay_ms} ms");
        assert_eq!(read.messages.last(), expected.last());
        if compressed && !plain {
            break;
        }
    }
    // Finish it; the dead process's temporary file goes.
    assert_eq!(sessions(&data, &["compact", "--all"]).0, 0);
    assert!(zst.exists() && !session.path.exists());
    let folder = session.path.parent().unwrap();
    let left: Vec<PathBuf> = std::fs::read_dir(folder)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(history::read_session(&zst).unwrap().messages, expected);
}

#[test]
fn a_running_session_is_never_compressed_and_stats_add_up() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let running = generate(&data, 2);
    let idle = generate(&data, 2);
    // A writer holds the first one (as a running turn does).
    let _writer = talaria::history::lock::open_locked(&running.path).unwrap();
    let (code, _, err) = sessions(&data, &["compact", "--all"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("skipped") && err.contains(&running.id),
        "{err}"
    );
    assert!(running.path.exists() && !compressed_path(&running.path).exists());
    assert!(!idle.path.exists() && compressed_path(&idle.path).exists());
    // Nothing is idle for 7 days yet: plain `compact` leaves everything.
    assert_eq!(sessions(&data, &["compact"]).0, 0);
    assert!(running.path.exists());

    let (code, out, err) = sessions(&data, &["stats", "--json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["sessions"], 2);
    assert_eq!(stats["plain_logs"], 1);
    assert_eq!(stats["compressed_logs"], 1);
    assert_eq!(stats["plain_bytes"], running.bytes);
    assert_eq!(stats["compressed_text_bytes"], idle.bytes);
    assert!(stats["compressed_bytes"].as_u64().unwrap() * 4 < idle.bytes);
    assert!(stats["index_bytes"].as_u64().unwrap() > 0);
    let (_, text, _) = sessions(&data, &["stats"]);
    assert!(text.contains("compressed logs: 1"), "{text}");
    let index = Index::open(&data).unwrap();
    let summary = index.find(&idle.id).unwrap().unwrap();
    assert!(summary.compressed);
    assert_eq!(plain_path(Path::new(&summary.path)), idle.path);
    assert_eq!(
        compress::compress_log(Path::new(&summary.path), &mut |_| ControlFlow::Continue(()))
            .unwrap(),
        Compacted::Skipped(compress::SkipReason::AlreadyCompressed)
    );
}

/// A tmpfs of `size` mounted under `dir` (root only); unmounted when dropped.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<SmallDisk> {
        let mount = dir.join("small");
        std::fs::create_dir_all(&mount).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&mount)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(SmallDisk(mount))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn exec_on_a_full_disk_prints_the_reply_exits_1_and_lists_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path(), "2m") else {
        println!("skipped: cannot mount a tmpfs here (not root?)");
        return;
    };
    let data = disk.0.join("data");
    // An earlier session, saved whole.
    let server = StandIn::start_blocking();
    server.push(Reply::openai().text("The first answer."));
    let exec = |prompt: &str| {
        talaria(&data)
            .args(["exec", "--json", "--model", "m", "--base-url"])
            .arg(server.openai_base())
            .arg("--workdir")
            .arg(dir.path())
            .arg(prompt)
            .env("TALARIA_API_KEY", "sk-test")
            .output()
            .unwrap()
    };
    assert!(exec("first question").status.success());
    // Fill the disk, then ask for a reply far larger than what is left.
    let filler = disk.0.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        // Leave about 40 KB free: the header and the question fit, the reply does not.
        let total = free_bytes(&disk.0).saturating_sub(40 * 1024);
        let block = vec![b'x'; 4096];
        let mut written = 0u64;
        while written < total && f.write_all(&block).is_ok() {
            written += 4096;
        }
        let _ = f.sync_all();
    }
    server.push(Reply::openai().text(&"long answer ".repeat(30_000)));
    let out = exec("second question");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
    let notable: Vec<&&str> = kinds.iter().filter(|k| **k != "token").collect();
    println!("{notable:?}");
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        kinds.contains(&"storage_error") && kinds.contains(&"done"),
        "{kinds:?}"
    );
    let tokens: String = lines
        .iter()
        .filter(|l| l["type"] == "token")
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        tokens.len(),
        "long answer ".len() * 30_000,
        "the reply printed whole"
    );
    let last = lines.last().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["kind"].as_str()),
        (Some("error"), Some("io"))
    );
    let id = lines[0]["id"].as_str().unwrap().to_string();
    // Space comes back: the earlier session is whole; the cut one reads as interrupted.
    std::fs::remove_file(&filler).unwrap();
    let (code, list, err) = sessions(&data, &["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let status = |id: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .map(|s| s["status"].as_str().unwrap().to_string())
    };
    assert_eq!(status(&id).as_deref(), Some("interrupted"));
    let others: Vec<&serde_json::Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["id"] != id.as_str())
        .collect();
    assert_eq!(others.len(), 1);
    assert_eq!(others[0]["status"], "done");
    assert_eq!(others[0]["message_count"], 2);
    let index = Index::open(&data).unwrap();
    assert_eq!(
        index.find(&id).unwrap().unwrap().status,
        SessionStatus::Interrupted
    );
}

/// Free bytes on the file system of `path`.
fn free_bytes(path: &Path) -> u64 {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: statvfs fills the struct we own.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut stat) };
    assert_eq!(rc, 0);
    stat.f_bavail as u64 * stat.f_frsize as u64
}

#[test]
fn a_damaged_compressed_log_is_reported_and_the_others_still_list() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let damaged = generate(&data, 2);
    let fine = generate(&data, 1);
    assert_eq!(sessions(&data, &["compact", &damaged.id]).0, 0);
    let zst = compressed_path(&damaged.path);
    // Cut the file: its seek table (at the end) is gone.
    let bytes = std::fs::read(&zst).unwrap();
    std::fs::write(&zst, &bytes[..bytes.len() / 2]).unwrap();
    let (code, out, err) = sessions(&data, &["list", "--json"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("skipped") && err.contains(".jsonl.zst"),
        "{err}"
    );
    let list: serde_json::Value = serde_json::from_str(&out).unwrap();
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [fine.id.as_str()]);
    let (code, _, err) = sessions(&data, &["show", &damaged.id]);
    assert_eq!(code, 1);
    assert!(err.contains("talaria:"), "{err}");
}
