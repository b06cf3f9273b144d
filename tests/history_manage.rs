// tests: managing sessions — rename, pin and archive as records in the session's own log
// (seen live by a watcher in another process's role), delete to the trash and restore, forks;
// the watcher's health (polling when events are not available, a removed folder watched again).

use std::path::Path;
use std::process::Command;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use talaria::history::index::{Archived, ListQuery};
use talaria::history::{
    self, Callbacks, Header, Index, Record, WatchHealth, WatchMode, Watcher, trash,
};
use talaria::message::Message;

const BIN: &str = env!("CARGO_BIN_EXE_talaria");

fn sessions(data: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .arg("sessions")
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .env_remove("TALARIA_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A finished session with `turns` turns (a question and an answer each); returns its id and path.
fn session(data: &Path, first: &str, turns: usize) -> (String, std::path::PathBuf) {
    let header = Header::new("openai", "m", "/work");
    let path = history::session_path(&history::sessions_dir(data), header.created, &header.id);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut text = Record::Session(header.clone()).to_line().unwrap();
    for turn in 0..turns {
        let question = if turn == 0 {
            first.to_string()
        } else {
            format!("question {turn}")
        };
        text.push_str(&Record::turn_start(turn as u64 + 1).to_line().unwrap());
        text.push_str(&Record::message(Message::user(question)).to_line().unwrap());
        text.push_str(
            &Record::message(Message::Assistant {
                content: format!("answer {turn}"),
                thinking: Vec::new(),
                tool_calls: Vec::new(),
                partial: false,
            })
            .to_line()
            .unwrap(),
        );
        text.push_str(
            &Record::turn_end(turn as u64 + 1, history::TurnStatus::Done, None)
                .to_line()
                .unwrap(),
        );
    }
    std::fs::write(&path, text).unwrap();
    (header.id, path)
}

fn watch(data: &Path, mode: WatchMode) -> (Watcher, Receiver<Vec<String>>, Receiver<WatchHealth>) {
    let (tx, rx) = channel();
    let (htx, hrx) = channel();
    let (tx, htx) = (Mutex::new(tx), Mutex::new(htx));
    let watcher = Watcher::start_with(
        data,
        mode,
        Callbacks {
            on_change: Box::new(move |ids| {
                let _ = tx.lock().unwrap().send(ids);
            }),
            on_progress: Box::new(|_| {}),
            on_health: Box::new(move |health| {
                let _ = htx.lock().unwrap().send(health);
            }),
        },
    )
    .unwrap();
    (watcher, rx, hrx)
}

/// Waits up to `within` for a report that names `id`.
fn reported(rx: &Receiver<Vec<String>>, id: &str, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(ids) = rx.recv_timeout(Duration::from_millis(50))
            && ids.iter().any(|i| i == id)
        {
            return Some(start.elapsed());
        }
    }
    None
}

#[test]
fn rename_pin_and_archive_are_records_in_the_log_and_show_up_live() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (id, path) = session(data, "the original question", 1);
    let (older, _) = session(data, "an older one", 1);
    let (_watcher, changes, _) = watch(data, WatchMode::Events);
    // The first catch-up reports both sessions; only what follows counts.
    assert!(reported(&changes, &id, Duration::from_secs(5)).is_some());
    while changes.recv_timeout(Duration::from_millis(300)).is_ok() {}

    // Another process renames it: the record lands in the log, the watcher reports it.
    let (code, out, err) = sessions(data, &["rename", &id[..32], "Release checklist"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&id), "{out}");
    let lag = reported(&changes, &id, Duration::from_secs(3)).expect("seen live");
    println!("rename seen {lag:?} after the CLI returned");
    let last_line = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .last()
        .unwrap()
        .to_string();
    let record: serde_json::Value = serde_json::from_str(&last_line).unwrap();
    assert_eq!(
        (record["type"].as_str(), record["title"].as_str()),
        (Some("title"), Some("Release checklist"))
    );
    let index = Index::open(data).unwrap();
    let summary = index.find(&id).unwrap().unwrap();
    assert_eq!(summary.title, "Release checklist");
    assert_eq!(
        index.search("checklist", 5).unwrap()[0].id,
        id,
        "the new title is searchable"
    );
    assert!(
        index
            .search("original", 5)
            .unwrap()
            .iter()
            .any(|h| h.id == id),
        "the text still is"
    );

    // Pin: on top of the app's list; renaming or pinning is not activity.
    assert_eq!(sessions(data, &["pin", &older]).0, 0);
    let page = |archived| {
        index
            .list_with(ListQuery {
                limit: 10,
                offset: 0,
                archived,
                pinned_first: true,
            })
            .unwrap()
            .into_iter()
            .map(|s| (s.id, s.pinned))
            .collect::<Vec<_>>()
    };
    index.refresh_all(&|_| {}).unwrap();
    assert_eq!(
        page(Archived::Hide),
        [(older.clone(), true), (id.clone(), false)]
    );
    // Archive: gone from the list, in the archived filter; --off brings it back.
    assert_eq!(sessions(data, &["archive", &id]).0, 0);
    index.refresh_all(&|_| {}).unwrap();
    assert_eq!(page(Archived::Hide), [(older.clone(), true)]);
    assert_eq!(page(Archived::Only), [(id.clone(), false)]);
    let (_, listed, _) = sessions(data, &["list", "--json"]);
    assert!(
        listed.contains("\"archived\": true"),
        "the CLI lists everything: {listed}"
    );
    assert_eq!(sessions(data, &["archive", &id, "--off"]).0, 0);
    index.refresh_all(&|_| {}).unwrap();
    assert_eq!(page(Archived::Hide).len(), 2);

    // The index is derived: rebuilt from the logs, it says the same.
    drop(index);
    std::fs::remove_file(data.join("index.sqlite")).unwrap();
    let rebuilt = Index::open(data).unwrap();
    rebuilt.refresh_all(&|_| {}).unwrap();
    let summary = rebuilt.find(&id).unwrap().unwrap();
    assert_eq!(
        (summary.title.as_str(), summary.archived),
        ("Release checklist", false)
    );
    assert!(rebuilt.find(&older).unwrap().unwrap().pinned);
}

#[test]
fn a_running_session_refuses_another_writer_s_rename_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let (id, path) = session(dir.path(), "busy one", 1);
    let _writer = talaria::history::lock::open_locked(&path).unwrap();
    let (code, _, err) = sessions(dir.path(), &["rename", &id, "x"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("being written by another Talaria process"),
        "{err}"
    );
    let (code, _, err) = sessions(dir.path(), &["delete", &id]);
    assert_eq!(code, 1);
    assert!(err.contains("being written"), "{err}");
    assert!(path.exists());
}

#[test]
fn delete_moves_to_the_trash_and_restore_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (id, path) = session(data, "to be deleted", 2);
    let original = std::fs::read(&path).unwrap();
    assert_eq!(sessions(data, &["list"]).0, 0);
    let (code, out, err) = sessions(data, &["delete", &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restore"), "{out}");
    assert!(!path.exists());
    let in_trash = history::trash_dir(data).join(format!("{id}.jsonl"));
    assert_eq!(std::fs::read(&in_trash).unwrap(), original);
    let (_, listed, _) = sessions(data, &["list", "--json"]);
    assert_eq!(listed.trim(), "[]");
    assert!(sessions(data, &["search", "deleted", "--json"]).1.trim() == "[]");
    let trashed = trash::list(data);
    assert_eq!(trashed.len(), 1);
    assert_eq!(
        trashed[0].note.original,
        path.strip_prefix(history::sessions_dir(data)).unwrap()
    );

    let (code, _, err) = sessions(data, &["restore", &id[..10]]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), original);
    assert!(trash::list(data).is_empty());
    let (_, listed, _) = sessions(data, &["list", "--json"]);
    assert!(listed.contains(&id));
    // Nothing to restore twice.
    assert_eq!(sessions(data, &["restore", &id]).0, 1);
}

#[test]
fn a_fork_copies_the_history_before_a_user_message_and_leaves_the_original_alone() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (id, path) = session(data, "first question", 3);
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(Record::title("Named").to_line().unwrap().as_bytes())
        })
        .unwrap();
    let before = std::fs::read(&path).unwrap();
    // Message 4 is the third question ("question 2").
    let (header, fork) = history::fork::fork(&history::sessions_dir(data), &path, 4).unwrap();
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the original is untouched"
    );
    let origin = header.forked_from.clone().unwrap();
    assert_eq!((origin.id.as_str(), origin.message_index), (id.as_str(), 4));
    let log = history::read_session(&fork).unwrap();
    let original = history::read_session(&path).unwrap();
    assert_eq!(log.messages, original.messages[..4]);
    assert_eq!(log.header.forked_from, Some(origin));
    assert_eq!(
        log.title, "first question",
        "the original's rename stays there"
    );
    assert_eq!(log.turns, 0);
    // Only at a user message.
    assert!(history::fork::fork(&history::sessions_dir(data), &path, 3).is_err());
    assert!(history::fork::fork(&history::sessions_dir(data), &path, 99).is_err());
    let index = Index::open(data).unwrap();
    index.refresh_all(&|_| {}).unwrap();
    let summary = index.get(&header.id).unwrap().unwrap();
    assert_eq!(summary.forked_from.unwrap().id, id);
    assert_eq!(summary.message_count, 4);
    let (_, shown, _) = sessions(data, &["show", &header.id, "--json"]);
    let shown: serde_json::Value = serde_json::from_str(&shown).unwrap();
    assert_eq!(shown["forked_from"]["id"], id.as_str());
}

#[test]
fn the_watcher_polls_when_asked_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (_watcher, changes, health) =
        watch(dir.path(), WatchMode::Poll(Duration::from_millis(300)));
    match health.recv_timeout(Duration::from_secs(5)).unwrap() {
        WatchHealth::Polling { every_ms, .. } => assert_eq!(every_ms, 300),
        other => panic!("{other:?}"),
    }
    let (id, _) = session(dir.path(), "written while polling", 1);
    let lag = reported(&changes, &id, Duration::from_secs(5)).expect("seen by polling");
    println!("polling saw the new session after {lag:?}");
}

#[test]
fn the_watcher_follows_a_sessions_folder_that_was_removed_and_made_again() {
    let dir = tempfile::tempdir().unwrap();
    let (_watcher, changes, health) = watch(dir.path(), WatchMode::Events);
    assert_eq!(
        health.recv_timeout(Duration::from_secs(5)).unwrap(),
        WatchHealth::Live
    );
    std::thread::sleep(Duration::from_millis(200));
    let folder = history::sessions_dir(dir.path());
    std::fs::remove_dir_all(&folder).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    std::fs::create_dir_all(&folder).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    let (id, _) = session(dir.path(), "after the folder came back", 1);
    let lag = reported(&changes, &id, Duration::from_secs(5)).expect("watched again");
    println!("new session seen {lag:?} after the folder was made again");
}
