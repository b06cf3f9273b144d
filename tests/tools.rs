// tests: tools — the built-in tools through their public entry point `tools::run`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use talaria::cancel::CancellationToken;
use talaria::message::ToolCall;
use talaria::safety::{Safety, SafetySettings};
use talaria::todo::{TodoItem, TodoStatus, TodoStore};
use talaria::tools::{self, ToolContext, ToolOutput, specs};

fn call(name: &str, arguments: impl Into<String>) -> ToolCall {
    ToolCall {
        id: "call_1".into(),
        name: name.into(),
        arguments: arguments.into(),
    }
}

async fn run_in(dir: &Path, store: &mut TodoStore, name: &str, args: Value) -> ToolOutput {
    let cancel = CancellationToken::new();
    tools::run(
        &call(name, args.to_string()),
        ToolContext::new(dir, store, &cancel, &safety_for(dir)),
    )
    .await
}

async fn run(dir: &Path, name: &str, args: Value) -> ToolOutput {
    run_in(dir, &mut TodoStore::default(), name, args).await
}

/// The default safety rules for a working folder (the data folder is elsewhere and absent).
fn safety_for(dir: &Path) -> Safety {
    let data = std::env::temp_dir().join("talaria-tools-test-data-absent");
    Safety::new(&SafetySettings::default(), &data, dir)
}

fn workdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temp dir")
}

// ---------------------------------------------------------------- schemas and dispatch

#[test]
fn specs_name_the_six_contract_tools_with_their_arguments() {
    let specs = specs();
    let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "todo",
            "read_file",
            "write_file",
            "patch",
            "search_files",
            "terminal"
        ]
    );
    let expect: [(&str, &[&str], &[&str]); 6] = [
        ("todo", &["todos", "merge"], &[]),
        ("read_file", &["path", "offset", "limit"], &["path"]),
        ("write_file", &["path", "content"], &["path", "content"]),
        (
            "patch",
            &["path", "old_string", "new_string", "replace_all"],
            &["path", "old_string", "new_string"],
        ),
        (
            "search_files",
            &["pattern", "path", "file_glob"],
            &["pattern"],
        ),
        ("terminal", &["command", "timeout"], &["command"]),
    ];
    for (spec, (name, props, required)) in specs.iter().zip(expect) {
        assert_eq!(spec.name, name);
        assert!(
            spec.description.len() > 80,
            "{name} needs a real description"
        );
        assert_eq!(spec.parameters["type"], "object");
        let mut got: Vec<&str> = spec.parameters["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        got.sort();
        let mut want = props.to_vec();
        want.sort();
        assert_eq!(got, want, "{name} properties");
        let got_required: Vec<&str> = spec.parameters["required"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(got_required, required, "{name} required");
    }
    let statuses =
        &specs[0].parameters["properties"]["todos"]["items"]["properties"]["status"]["enum"];
    assert_eq!(
        *statuses,
        json!(["pending", "in_progress", "completed", "cancelled"])
    );
    assert!(specs[1].description.contains("cat -n"));
}

#[tokio::test]
async fn invalid_json_arguments_give_an_error_the_model_can_act_on() {
    let dir = workdir();
    let cancel = CancellationToken::new();
    let mut store = TodoStore::default();
    let out = tools::run(
        &call("read_file", r#"{"path": "a.txt""#),
        ToolContext::new(dir.path(), &mut store, &cancel, &safety_for(dir.path())),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("not valid JSON"), "{}", out.content);
    assert!(
        out.content.contains("EOF"),
        "quotes the parse error: {}",
        out.content
    );
    assert!(out.content.contains("resend"), "{}", out.content);

    let out = run(dir.path(), "read_file", json!(["a.txt"])).await;
    assert!(
        out.is_error && out.content.contains("JSON object"),
        "{}",
        out.content
    );

    let out = run(dir.path(), "read_file", json!({"file": "a.txt"})).await;
    assert!(
        out.is_error && out.content.contains("missing field `path`"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn unknown_tool_lists_the_available_ones() {
    let dir = workdir();
    let out = run(dir.path(), "browse_web", json!({})).await;
    assert!(out.is_error);
    for name in tools::TOOL_NAMES {
        assert!(out.content.contains(name), "{}", out.content);
    }
}

#[tokio::test]
async fn a_call_after_cancel_does_not_run() {
    let dir = workdir();
    let cancel = CancellationToken::new();
    cancel.cancel();
    let mut store = TodoStore::default();
    let out = tools::run(
        &call(
            "write_file",
            json!({"path": "x.txt", "content": "x"}).to_string(),
        ),
        ToolContext::new(dir.path(), &mut store, &cancel, &safety_for(dir.path())),
    )
    .await;
    assert_eq!(out.content, "cancelled by the user");
    assert!(out.is_error);
    assert!(!dir.path().join("x.txt").exists());
}

// ---------------------------------------------------------------- todo

fn todos_of(out: &ToolOutput) -> Vec<TodoItem> {
    let value: Value = serde_json::from_str(&out.content).expect("todo result is JSON");
    assert!(value["summary"].as_str().is_some(), "{}", out.content);
    serde_json::from_value(value["todos"].clone()).expect("todos list")
}

#[tokio::test]
async fn todo_reads_replaces_and_merges() {
    let dir = workdir();
    let mut store = TodoStore::default();

    let out = run_in(dir.path(), &mut store, "todo", json!({})).await;
    assert!(!out.is_error && !out.todos_changed);
    assert!(todos_of(&out).is_empty());
    // Some providers send "" for a call without arguments.
    let cancel = CancellationToken::new();
    let out = tools::run(
        &call("todo", ""),
        ToolContext::new(dir.path(), &mut store, &cancel, &safety_for(dir.path())),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);

    let out = run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"todos": [
            {"id": "1", "content": "read the code", "status": "in_progress"},
            {"id": "2", "content": "write tests", "status": "pending"},
        ]}),
    )
    .await;
    assert!(!out.is_error && out.todos_changed, "{}", out.content);
    assert_eq!(todos_of(&out).len(), 2);
    assert!(
        out.content.contains("2 items: 1 pending, 1 in progress"),
        "{}",
        out.content
    );

    // merge: status-only update keeps the content; a new id is appended.
    let out = run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"merge": true, "todos": [
            {"id": "1", "status": "completed"},
            {"id": "3", "content": "ship it"},
        ]}),
    )
    .await;
    assert!(out.todos_changed, "{}", out.content);
    let items = todos_of(&out);
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].content, "read the code");
    assert_eq!(items[0].status, TodoStatus::Completed);
    assert_eq!(items[2].id, "3");
    assert_eq!(items[2].status, TodoStatus::Pending);
    assert_eq!(store.items(), items.as_slice());

    // The same write again changes nothing.
    let out = run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"merge": true, "todos": [{"id": "1", "status": "completed"}]}),
    )
    .await;
    assert!(!out.todos_changed);

    // merge false replaces.
    let out = run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"merge": false, "todos": [{"id": "a", "content": "only", "status": "pending"}]}),
    )
    .await;
    assert!(out.todos_changed);
    assert_eq!(todos_of(&out).len(), 1);

    // A read returns the full list without changing it.
    let out = run_in(dir.path(), &mut store, "todo", json!({})).await;
    assert!(!out.todos_changed);
    assert_eq!(todos_of(&out)[0].id, "a");
}

#[tokio::test]
async fn todo_refuses_bad_items_and_keeps_the_list() {
    let dir = workdir();
    let mut store = TodoStore::default();
    run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"todos": [{"id": "1", "content": "keep me", "status": "pending"}]}),
    )
    .await;
    let before = store.clone();

    let too_many: Vec<Value> = (0..257)
        .map(|i| json!({"id": i.to_string(), "content": "x", "status": "pending"}))
        .collect();
    let out = run_in(dir.path(), &mut store, "todo", json!({"todos": too_many})).await;
    assert!(
        out.is_error && out.content.contains("256"),
        "{}",
        out.content
    );
    assert!(!out.todos_changed);

    let long = "y".repeat(4001);
    let out = run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"merge": true, "todos": [{"id": "2", "content": long}]}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("4000"),
        "{}",
        out.content
    );

    let out = run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"merge": true, "todos": [{"id": "1", "status": "blocked"}]}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("in_progress"),
        "{}",
        out.content
    );

    let out = run_in(
        dir.path(),
        &mut store,
        "todo",
        json!({"todos": [{"content": "no id"}]}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("no id"),
        "{}",
        out.content
    );

    assert_eq!(store, before);

    // 256 items of 4000 chars is allowed.
    let full: Vec<Value> = (0..256)
        .map(|i| json!({"id": i.to_string(), "content": "z".repeat(4000), "status": "pending"}))
        .collect();
    let out = run_in(dir.path(), &mut store, "todo", json!({"todos": full})).await;
    assert!(!out.is_error, "{}", &out.content[..200]);
    assert_eq!(store.items().len(), 256);
}

#[tokio::test]
async fn todo_read_cost_does_not_grow_with_history() {
    // The store lives in memory: a read after 10 000 writes costs what a read after one does.
    let dir = workdir();
    let mut store = TodoStore::default();
    for i in 0..10_000 {
        let status = if i % 2 == 0 { "pending" } else { "in_progress" };
        let out = run_in(
            dir.path(),
            &mut store,
            "todo",
            json!({"merge": true, "todos": [{"id": "1", "content": "task", "status": status}]}),
        )
        .await;
        assert!(!out.is_error);
    }
    let started = Instant::now();
    for _ in 0..1000 {
        let out = run_in(dir.path(), &mut store, "todo", json!({})).await;
        assert!(!out.todos_changed);
    }
    let per_read = started.elapsed() / 1000;
    println!("todo read: {per_read:?} per call");
    assert!(per_read < Duration::from_millis(5), "{per_read:?}");
}

// ---------------------------------------------------------------- read_file

#[tokio::test]
async fn read_file_numbers_lines_and_pages() {
    let dir = workdir();
    let text: String = (1..=3000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(dir.path().join("long.txt"), &text).expect("write");

    let out = run(dir.path(), "read_file", json!({"path": "long.txt"})).await;
    assert!(!out.is_error);
    assert!(
        out.content.starts_with("     1\tline 1\n     2\tline 2\n"),
        "{}",
        &out.content[..40]
    );
    assert!(out.content.contains("  2000\tline 2000\n"));
    assert!(!out.content.contains("line 2001"));
    assert!(out.content.contains("offset=2001"), "tells how to read on");

    let out = run(
        dir.path(),
        "read_file",
        json!({"path": "long.txt", "offset": 10, "limit": 3}),
    )
    .await;
    assert!(
        out.content
            .starts_with("    10\tline 10\n    11\tline 11\n    12\tline 12\n["),
        "{}",
        out.content
    );

    // Models sometimes send numbers as strings.
    let out = run(
        dir.path(),
        "read_file",
        json!({"path": "long.txt", "offset": "2999", "limit": null}),
    )
    .await;
    assert!(out.content.contains("  3000\tline 3000"), "{}", out.content);

    let out = run(
        dir.path(),
        "read_file",
        json!({"path": "long.txt", "offset": 5000}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("3000 lines"),
        "{}",
        out.content
    );

    std::fs::write(dir.path().join("crlf.txt"), "a\r\nb\r\n").expect("write");
    let out = run(dir.path(), "read_file", json!({"path": "crlf.txt"})).await;
    assert_eq!(out.content, "     1\ta\n     2\tb");

    std::fs::write(dir.path().join("empty.txt"), "").expect("write");
    let out = run(dir.path(), "read_file", json!({"path": "empty.txt"})).await;
    assert!(
        !out.is_error && out.content.contains("empty"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn read_file_caps_output_and_refuses_binary_large_and_missing() {
    let dir = workdir();
    let wide: String = (1..=1500)
        .map(|i| format!("{i:04} {}\n", "x".repeat(195)))
        .collect();
    std::fs::write(dir.path().join("wide.txt"), &wide).expect("write");
    let out = run(dir.path(), "read_file", json!({"path": "wide.txt"})).await;
    assert!(!out.is_error);
    assert!(out.content.len() < 101_000, "{}", out.content.len());
    assert!(out.content.contains("output capped"), "notes the cap");
    assert!(out.content.contains("offset="), "says how to read the rest");

    std::fs::write(
        dir.path().join("blob.bin"),
        [0x7fu8, b'E', b'L', b'F', 0, 1, 2],
    )
    .expect("write");
    let out = run(dir.path(), "read_file", json!({"path": "blob.bin"})).await;
    assert!(
        out.is_error && out.content.contains("binary"),
        "{}",
        out.content
    );

    let big = std::fs::File::create(dir.path().join("big.log")).expect("create");
    big.set_len(11 * 1024 * 1024).expect("set_len");
    let out = run(dir.path(), "read_file", json!({"path": "big.log"})).await;
    assert!(
        out.is_error && out.content.contains("terminal"),
        "{}",
        out.content
    );

    let out = run(dir.path(), "read_file", json!({"path": "src/nope.rs"})).await;
    assert!(out.is_error);
    assert!(
        out.content.contains("file not found: src/nope.rs"),
        "{}",
        out.content
    );

    std::fs::create_dir(dir.path().join("folder")).expect("mkdir");
    let out = run(dir.path(), "read_file", json!({"path": "folder"})).await;
    assert!(
        out.is_error && out.content.contains("folder"),
        "{}",
        out.content
    );
}

// ---------------------------------------------------------------- write_file and patch

#[tokio::test]
async fn write_file_creates_folders_and_replaces_atomically() {
    let dir = workdir();
    let out = run(
        dir.path(),
        "write_file",
        json!({"path": "a/b/c.txt", "content": "héllo\n"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("7 bytes"), "{}", out.content);
    assert!(out.content.contains("a/b/c.txt"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("a/b/c.txt")).expect("read"),
        "héllo\n"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let script = dir.path().join("run.sh");
        std::fs::write(&script, "old").expect("write");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let out = run(
            dir.path(),
            "write_file",
            json!({"path": "run.sh", "content": "#!/bin/sh\necho new\n"}),
        )
        .await;
        assert!(
            !out.is_error && out.content.contains("replaced"),
            "{}",
            out.content
        );
        let mode = std::fs::metadata(&script)
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755, "keeps the file's permissions");
    }

    // No temp files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .expect("ls")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().contains("talaria"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let out = run(
        dir.path(),
        "write_file",
        json!({"path": "a", "content": "x"}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("folder"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn patch_needs_exactly_one_match() {
    let dir = workdir();
    let file = dir.path().join("code.rs");
    std::fs::write(&file, "fn a() {}\nlet x = 1;\nfn b() {}\nlet x = 1;\n").expect("write");

    let out = run(
        dir.path(),
        "patch",
        json!({"path": "code.rs", "old_string": "fn a() {}", "new_string": "fn a() { run(); }"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("line 1"), "{}", out.content);

    let out = run(
        dir.path(),
        "patch",
        json!({"path": "code.rs", "old_string": "let x = 1;", "new_string": "let x = 2;"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("2 times"), "{}", out.content);
    assert!(out.content.contains("lines 2, 4"), "{}", out.content);
    assert!(out.content.contains("replace_all"), "{}", out.content);

    let out = run(
        dir.path(),
        "patch",
        json!({"path": "code.rs", "old_string": "fn  c()", "new_string": "x"}),
    )
    .await;
    assert!(out.is_error);
    assert!(out.content.contains("not found"), "{}", out.content);
    assert!(out.content.contains("read_file"), "{}", out.content);

    let out = run(
        dir.path(),
        "patch",
        json!({"path": "code.rs", "old_string": "let x = 1;", "new_string": "let x = 2;", "replace_all": true}),
    )
    .await;
    assert!(
        !out.is_error && out.content.contains("2 occurrences"),
        "{}",
        out.content
    );
    assert_eq!(
        std::fs::read_to_string(&file).expect("read"),
        "fn a() { run(); }\nlet x = 2;\nfn b() {}\nlet x = 2;\n"
    );

    // A CRLF file matches an old_string written with "\n".
    std::fs::write(dir.path().join("win.txt"), "one\r\ntwo\r\nthree\r\n").expect("write");
    let out = run(
        dir.path(),
        "patch",
        json!({"path": "win.txt", "old_string": "one\ntwo", "new_string": "1\n2"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(
        std::fs::read_to_string(dir.path().join("win.txt")).expect("read"),
        "1\r\n2\r\nthree\r\n"
    );

    let out = run(
        dir.path(),
        "patch",
        json!({"path": "missing.rs", "old_string": "a", "new_string": "b"}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("missing.rs"),
        "{}",
        out.content
    );
}

// ---------------------------------------------------------------- confinement

#[tokio::test]
async fn paths_outside_the_workdir_are_refused() {
    let outer = workdir();
    let dir = outer.path().join("work");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(outer.path().join("secret.txt"), "secret").expect("write");
    std::os::unix::fs::symlink(outer.path().join("secret.txt"), dir.join("link.txt"))
        .expect("symlink");
    std::os::unix::fs::symlink(outer.path(), dir.join("up")).expect("symlink");
    std::os::unix::fs::symlink(outer.path().join("gone.txt"), dir.join("dangling"))
        .expect("symlink");

    let refused = [
        json!({"path": "../secret.txt"}),
        json!({"path": "a/../../secret.txt"}),
        json!({"path": outer.path().join("secret.txt")}),
        json!({"path": "/etc/passwd"}),
        json!({"path": "link.txt"}),
        json!({"path": "up/secret.txt"}),
        json!({"path": "up/new/file.txt"}),
    ];
    for args in refused {
        let out = run(&dir, "read_file", args.clone()).await;
        assert!(out.is_error, "read {args}: {}", out.content);
        assert!(
            out.content.contains("outside the working folder")
                && out.content.contains("tools may only touch files inside it"),
            "read {args}: {}",
            out.content
        );
        let mut write_args = args.clone();
        write_args["content"] = json!("pwned");
        let out = run(&dir, "write_file", write_args).await;
        assert!(out.is_error, "write {args}: {}", out.content);
    }
    assert_eq!(
        std::fs::read_to_string(outer.path().join("secret.txt")).expect("read"),
        "secret"
    );
    assert!(!outer.path().join("new").exists());

    let out = run(
        &dir,
        "write_file",
        json!({"path": "dangling", "content": "x"}),
    )
    .await;
    assert!(out.is_error, "{}", out.content);
    assert!(!outer.path().join("gone.txt").exists());

    let out = run(
        &dir,
        "search_files",
        json!({"pattern": "secret", "path": ".."}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("outside"),
        "{}",
        out.content
    );

    // The walk does not follow links out of the working folder.
    let out = run(&dir, "search_files", json!({"pattern": "secret"})).await;
    assert!(out.content.contains("no matches"), "{}", out.content);

    // Absolute paths inside, and symlinks that stay inside, are fine.
    std::fs::write(dir.join("inside.txt"), "ok").expect("write");
    std::os::unix::fs::symlink(dir.join("inside.txt"), dir.join("alias.txt")).expect("symlink");
    let out = run(&dir, "read_file", json!({"path": dir.join("inside.txt")})).await;
    assert!(!out.is_error, "{}", out.content);
    let out = run(&dir, "read_file", json!({"path": "alias.txt"})).await;
    assert!(!out.is_error, "{}", out.content);
    // `..` is resolved as the shell does: through the folder `sub` that exists.
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    let out = run(&dir, "read_file", json!({"path": "sub/../inside.txt"})).await;
    assert!(!out.is_error, "{}", out.content);
}

// ---------------------------------------------------------------- search_files

#[tokio::test]
async fn search_files_honours_gitignore_glob_and_path() {
    let dir = workdir();
    let root = dir.path();
    std::fs::create_dir_all(root.join("src/deep")).expect("mkdir");
    std::fs::create_dir_all(root.join("target")).expect("mkdir");
    std::fs::write(root.join(".gitignore"), "target/\n*.log\n").expect("write");
    std::fs::write(root.join("src/main.rs"), "fn main() {\n    needle();\n}\n").expect("write");
    std::fs::write(root.join("src/deep/lib.rs"), "// needle here\n").expect("write");
    std::fs::write(root.join("src/notes.md"), "a needle in markdown\n").expect("write");
    std::fs::write(root.join("target/out.rs"), "needle\n").expect("write");
    std::fs::write(root.join("debug.log"), "needle\n").expect("write");
    std::fs::write(root.join("src/data.bin"), b"needle\0\0\0").expect("write");

    let out = run(root, "search_files", json!({"pattern": "needle"})).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(
        out.content.contains("src/main.rs:2:     needle();"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("src/deep/lib.rs:1: // needle here"),
        "{}",
        out.content
    );
    assert!(out.content.contains("src/notes.md:1:"), "{}", out.content);
    assert!(
        !out.content.contains("target/"),
        "gitignored folder: {}",
        out.content
    );
    assert!(
        !out.content.contains("debug.log"),
        "gitignored file: {}",
        out.content
    );
    assert!(
        !out.content.contains("data.bin"),
        "binary file: {}",
        out.content
    );

    let out = run(
        root,
        "search_files",
        json!({"pattern": "need(le|ful)", "file_glob": "*.rs"}),
    )
    .await;
    assert!(out.content.contains("src/main.rs:2:"), "{}", out.content);
    assert!(
        out.content.contains("src/deep/lib.rs:1:"),
        "{}",
        out.content
    );
    assert!(!out.content.contains("notes.md"), "{}", out.content);
    assert!(
        !out.content.contains("target/"),
        "glob does not re-include ignored files: {}",
        out.content
    );

    let out = run(
        root,
        "search_files",
        json!({"pattern": "needle", "path": "src/deep"}),
    )
    .await;
    assert!(
        out.content.contains("src/deep/lib.rs:1:"),
        "{}",
        out.content
    );
    assert!(!out.content.contains("src/main.rs"), "{}", out.content);

    let out = run(
        root,
        "search_files",
        json!({"pattern": "nothing_like_this"}),
    )
    .await;
    assert!(
        !out.is_error && out.content.contains("no matches"),
        "{}",
        out.content
    );

    let out = run(root, "search_files", json!({"pattern": "fn (main"})).await;
    assert!(
        out.is_error && out.content.contains("regular expression"),
        "{}",
        out.content
    );

    let out = run(
        root,
        "search_files",
        json!({"pattern": "x", "path": "nope"}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("nope"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn search_files_caps_matches_and_long_lines() {
    let dir = workdir();
    let many: String = (0..500).map(|i| format!("hit {i}\n")).collect();
    std::fs::write(dir.path().join("many.txt"), many).expect("write");
    std::fs::write(
        dir.path().join("wide.txt"),
        format!("hit {}\n", "w".repeat(5000)),
    )
    .expect("write");

    let out = run(
        dir.path(),
        "search_files",
        json!({"pattern": "^hit", "file_glob": "many.txt"}),
    )
    .await;
    assert_eq!(
        out.content
            .lines()
            .filter(|l| l.starts_with("many.txt:"))
            .count(),
        200
    );
    assert!(
        out.content.contains("stopped after 200 matches"),
        "{}",
        out.content
    );

    let out = run(
        dir.path(),
        "search_files",
        json!({"pattern": "hit", "file_glob": "wide.txt"}),
    )
    .await;
    assert!(out.content.len() < 600, "{}", out.content.len());
    assert!(out.content.contains("5004 chars"), "{}", out.content);
}

// ---------------------------------------------------------------- terminal

#[tokio::test]
async fn terminal_runs_in_the_workdir_and_reports_exit_code() {
    let dir = workdir();
    let canonical = std::fs::canonicalize(dir.path()).expect("canonical");
    let out = run(
        dir.path(),
        "terminal",
        json!({"command": "pwd; echo out; echo err >&2; echo out2; echo \"$TERM $PAGER\"; cat; exit 3"}),
    )
    .await;
    assert!(out.is_error, "non-zero exit is an error result");
    let expected = format!(
        "{}\nout\nerr\nout2\ndumb cat\n[exit code 3]",
        canonical.display()
    );
    assert_eq!(out.content, expected);

    let out = run(dir.path(), "terminal", json!({"command": "true"})).await;
    assert!(!out.is_error);
    assert_eq!(out.content, "(no output)\n[exit code 0]");

    let out = run(dir.path(), "terminal", json!({"command": "  "})).await;
    assert!(
        out.is_error && out.content.contains("empty"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn terminal_output_keeps_head_and_tail() {
    let dir = workdir();
    let out = run(
        dir.path(),
        "terminal",
        json!({"command": "echo FIRST; head -c 300000 /dev/zero | tr '\\0' 'a'; echo; echo LAST"}),
    )
    .await;
    assert!(!out.is_error, "{}", &out.content[..100]);
    assert!(out.content.starts_with("FIRST\n"));
    assert!(
        out.content.ends_with("LAST\n[exit code 0]"),
        "{}",
        &out.content[out.content.len() - 80..]
    );
    assert!(out.content.contains(" chars omitted …]"));
    assert!(
        out.content.chars().count() < 100_200,
        "{}",
        out.content.len()
    );
}

#[tokio::test]
async fn terminal_handles_a_flood_of_output() {
    let dir = workdir();
    let started = Instant::now();
    let out = run(
        dir.path(),
        "terminal",
        json!({"command": "head -c 20000000 /dev/zero | tr '\\0' 'b'; echo; echo END"}),
    )
    .await;
    let took = started.elapsed();
    println!("20 MB of output handled in {took:?}");
    assert!(
        out.content.contains("[… 19900005 chars omitted …]"),
        "{}",
        &out.content[49_990..50_100]
    );
    assert!(out.content.ends_with("END\n[exit code 0]"));
    assert!(took < Duration::from_secs(20), "{took:?}");
}

/// Processes whose process group is `pgid` and that are not zombies.
fn live_members(pgid: i32) -> Vec<i32> {
    let mut pids = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return pids;
    };
    for entry in entries.filter_map(Result::ok) {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the ")" closing the command name: state ppid pgrp ...
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2].parse() == Ok(pgid) {
            pids.push(pid);
        }
    }
    pids
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
        .unwrap_or(false)
}

async fn wait_gone(pgid: i32) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let live = live_members(pgid);
        if live.is_empty() || Instant::now() > until {
            return live;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn read_pids(file: &Path) -> Vec<i32> {
    let until = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(text) = std::fs::read_to_string(file) {
            let pids: Vec<i32> = text.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if pids.len() >= 3 {
                return pids;
            }
        }
        assert!(Instant::now() < until, "the command never wrote its pids");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn terminal_cancel_kills_the_whole_group_within_50ms() {
    let dir = workdir();
    let pid_file = dir.path().join("pids");
    // Two background children plus the shell; `exec` is avoided so the shell stays the leader.
    let command = "sleep 1000 & echo $! >> pids; (sleep 1000; true) & echo $! >> pids; echo $$ >> pids; sleep 1000; true";
    let cancel = CancellationToken::new();
    let mut store = TodoStore::default();
    let tool_call = call("terminal", json!({"command": command}).to_string());
    let running = async {
        let out = tools::run(
            &tool_call,
            ToolContext::new(dir.path(), &mut store, &cancel, &safety_for(dir.path())),
        )
        .await;
        (out, Instant::now())
    };
    let canceller = async {
        let pids = read_pids(&pid_file).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let at = Instant::now();
        cancel.cancel();
        (pids, at)
    };
    let ((out, returned), (pids, cancelled_at)) = tokio::join!(running, canceller);
    let latency = returned.duration_since(cancelled_at);
    println!("terminal cancel returned {latency:?} after cancel()");
    assert_eq!(out.content, "cancelled by the user");
    assert!(out.is_error);
    assert!(latency <= Duration::from_millis(50), "{latency:?}");

    let shell = pids[2];
    let live = wait_gone(shell).await;
    assert!(live.is_empty(), "group members still running: {live:?}");
    for pid in pids {
        assert!(!alive(pid), "pid {pid} survived the cancel");
    }
}

#[tokio::test]
async fn terminal_timeout_kills_the_group_and_keeps_output() {
    let dir = workdir();
    let started = Instant::now();
    let out = run(
        dir.path(),
        "terminal",
        json!({"command": "echo $$ > pgid; echo started; trap '' TERM; sleep 1000 & sleep 1000", "timeout": 0.5}),
    )
    .await;
    let took = started.elapsed();
    println!("timeout result after {took:?}");
    assert!(out.is_error);
    assert!(out.content.starts_with("started\n"), "{}", out.content);
    assert!(
        out.content.contains("timed out after 0.5 s"),
        "{}",
        out.content
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    let pgid: i32 = std::fs::read_to_string(dir.path().join("pgid"))
        .expect("pgid")
        .trim()
        .parse()
        .expect("number");
    assert!(wait_gone(pgid).await.is_empty());
}

#[tokio::test]
async fn terminal_stops_background_jobs_that_hold_the_output() {
    let dir = workdir();
    let out = run(
        dir.path(),
        "terminal",
        json!({"command": "echo $$ > pgid; sleep 1000 & echo done"}),
    )
    .await;
    assert!(
        out.content.starts_with("done\n[exit code 0]"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("background processes"),
        "{}",
        out.content
    );
    let pgid: i32 = std::fs::read_to_string(dir.path().join("pgid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("number");
    assert!(wait_gone(pgid).await.is_empty());
}

#[tokio::test]
async fn terminal_leaves_detached_background_jobs_running() {
    let dir = workdir();
    let out = run(
        dir.path(),
        "terminal",
        json!({"command": "nohup sleep 30 > /dev/null 2>&1 & echo $!"}),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(
        !out.content.contains("background processes"),
        "{}",
        out.content
    );
    let pid: i32 = out
        .content
        .lines()
        .next()
        .expect("pid")
        .trim()
        .parse()
        .expect("number");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(alive(pid), "a job with its output redirected keeps running");
    // Clean up the job we deliberately left running.
    let _ = std::process::Command::new("kill")
        .arg("-KILL")
        .arg(pid.to_string())
        .status();
}

#[tokio::test]
async fn dropping_a_running_terminal_call_kills_its_group() {
    let dir = workdir();
    let pid_file = dir.path().join("pids");
    let command =
        "sleep 1000 & echo $! >> pids; sleep 1000 & echo $! >> pids; echo $$ >> pids; wait";
    let cancel = CancellationToken::new();
    let mut store = TodoStore::default();
    let tool_call = call("terminal", json!({"command": command}).to_string());
    let safety = safety_for(dir.path());
    let fut = tools::run(
        &tool_call,
        ToolContext::new(dir.path(), &mut store, &cancel, &safety),
    );
    let pids = tokio::select! {
        _ = fut => panic!("the command cannot finish"),
        pids = read_pids(&pid_file) => pids,
    };
    // `fut` is dropped here, mid-run.
    assert!(wait_gone(pids[2]).await.is_empty());
}

// ---------------------------------------------------------------- search cancel and approval

#[tokio::test]
async fn search_cancel_returns_promptly() {
    let dir = workdir();
    // Nothing matches, so every file is read: long enough for the cancel to land mid-walk.
    let body = "x\n".repeat(10_000);
    for i in 0..500 {
        std::fs::write(dir.path().join(format!("f{i}.txt")), &body).expect("write");
    }
    let cancel = CancellationToken::new();
    let mut store = TodoStore::default();
    let tool_call = call("search_files", json!({"pattern": "zz+y"}).to_string());
    let cancel_soon = async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        cancel.cancel();
        Instant::now()
    };
    let running = async {
        let out = tools::run(
            &tool_call,
            ToolContext::new(dir.path(), &mut store, &cancel, &safety_for(dir.path())),
        )
        .await;
        (out, Instant::now())
    };
    let ((out, done), at) = tokio::join!(running, cancel_soon);
    // The search may legitimately finish before the cancel lands.
    if out.content == "cancelled by the user" {
        let latency = done.saturating_duration_since(at);
        println!("search cancel returned {latency:?} after cancel()");
        assert!(latency <= Duration::from_millis(50), "{latency:?}");
    } else {
        println!("search finished before the cancel landed");
        assert!(out.content.contains("no matches"), "{}", out.content);
    }
}
