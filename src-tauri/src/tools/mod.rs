//! The built-in tools the model can call: their JSON schemas (`specs`) and one entry point
//! (`run`) that never panics and turns every failure into an error result the model can read.

pub mod commit;
pub mod files;
pub mod search;
pub mod terminal;
pub mod todo;
pub mod workdir;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::cancel::{CancellationToken, Cancelled, OrCancel};
use crate::message::ToolCall;
use crate::provider::ToolSpec;
use crate::safety::{Safety, SecretPaths};
use crate::todo::TodoStore;
use commit::CommitGate;

/// The content of a tool result after a cancel (the agent uses the same text for calls that
/// never started).
pub use crate::message::CANCELLED_BY_USER as CANCELLED;

/// The six tool names, in the order `specs` lists them.
pub const TOOL_NAMES: [&str; 6] = [
    "todo",
    "read_file",
    "write_file",
    "patch",
    "search_files",
    "terminal",
];

pub struct ToolContext<'a> {
    pub workdir: &'a Path,
    pub todos: &'a mut TodoStore,
    pub cancel: &'a CancellationToken,
    pub safety: &'a Safety,
    /// The user allowed this one call to touch a secret.
    pub allow_secret: bool,
    /// Run `terminal` outside the sandbox (the user allowed it after the sandbox stopped it).
    pub unsandboxed: bool,
}

impl<'a> ToolContext<'a> {
    /// An ordinary call: secrets refused, the terminal sandboxed.
    pub fn new(
        workdir: &'a Path,
        todos: &'a mut TodoStore,
        cancel: &'a CancellationToken,
        safety: &'a Safety,
    ) -> Self {
        ToolContext {
            workdir,
            todos,
            cancel,
            safety,
            allow_secret: false,
            unsandboxed: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolOutput {
    pub content: String,
    pub is_error: bool,
    /// The todo list changed: the agent emits a `todo` event and records a snapshot.
    pub todos_changed: bool,
    /// A sandboxed command failed the way the sandbox makes commands fail.
    pub sandbox_denied: bool,
}

impl ToolOutput {
    pub fn ok(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: false,
            todos_changed: false,
            sandbox_denied: false,
        }
    }

    pub fn error(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: true,
            todos_changed: false,
            sandbox_denied: false,
        }
    }

    pub fn cancelled() -> Self {
        ToolOutput::error(CANCELLED)
    }
}

/// The JSON schemas the model sees.
pub fn specs() -> Vec<ToolSpec> {
    vec![
        ToolSpec {
            name: "todo".into(),
            description: "Keep a task list for multi-step work (3 or more steps, or when the user gives several tasks). \
Call with no arguments to read the current list. Pass `todos` to write: with merge=false (the default) the list is \
replaced by the one you send; with merge=true items are updated by id (fields you leave out keep their value) and \
new ids are appended. Keep exactly one item in_progress while working; mark an item completed only once it is \
verified done, and cancelled if it is dropped. List order is priority. Every call returns the full list as JSON \
and a summary line. At most 256 items of at most 4000 characters each."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "todos": {
                        "type": "array",
                        "description": "Items to write. Leave out to read the list.",
                        "items": {
                            "type": "object",
                            "properties": {
                                "id": {"type": "string", "description": "Short unique id, e.g. \"1\" or \"tests\"."},
                                "content": {"type": "string", "description": "What the task is (may be left out when merging to change only the status)."},
                                "status": {"type": "string", "enum": ["pending", "in_progress", "completed", "cancelled"]}
                            },
                            "required": ["id"]
                        }
                    },
                    "merge": {
                        "type": "boolean",
                        "description": "false (default): replace the whole list. true: update items by id and append new ones.",
                        "default": false
                    }
                }
            }),
        },
        ToolSpec {
            name: "read_file".into(),
            description: format!(
                "Read a text file in the working folder. Output lines are numbered like `cat -n`: the line number \
right-aligned in 6 columns, a tab, then the line (the number and tab are not part of the file; leave them out of \
patch's old_string). Reads up to {} lines from `offset` (1-based, default 1); pass offset/limit to page through \
long files, a note at the end says how to read on. Lines over {} characters are cut, output stops at about {} \
characters, files over {} MB and binary files are refused (use the terminal for those).",
                files::DEFAULT_LINE_LIMIT,
                files::MAX_LINE_CHARS,
                files::MAX_OUTPUT_CHARS,
                files::MAX_FILE_BYTES / (1024 * 1024),
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the working folder (absolute paths must be inside it)."},
                    "offset": {"type": "integer", "minimum": 1, "description": "First line to read, 1-based. Default 1."},
                    "limit": {"type": "integer", "minimum": 1, "description": format!("How many lines to read. Default {}.", files::DEFAULT_LINE_LIMIT)}
                },
                "required": ["path"]
            }),
        },
        ToolSpec {
            name: "write_file".into(),
            description: "Create a file or replace its whole content. Missing parent folders are created. The write is \
atomic (a temp file renamed over the target), so the file is never left half written. For small changes to an \
existing file prefer `patch`, which does not need the whole content. Paths must stay inside the working folder."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the working folder."},
                    "content": {"type": "string", "description": "The complete new content of the file."}
                },
                "required": ["path", "content"]
            }),
        },
        ToolSpec {
            name: "patch".into(),
            description: "Edit a file by exact find-and-replace: `old_string` must match the file's text exactly \
(whitespace, indentation and line breaks included) and exactly once, unless replace_all is true. Include enough \
surrounding lines to make the match unique. If it matches nothing or several places, the call fails and says so \
(with the line numbers); read the file with read_file and retry. Do not include read_file's line-number prefixes."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string", "description": "File path, relative to the working folder."},
                    "old_string": {"type": "string", "description": "The exact text to replace."},
                    "new_string": {"type": "string", "description": "The text to put in its place."},
                    "replace_all": {"type": "boolean", "default": false, "description": "Replace every occurrence instead of exactly one."}
                },
                "required": ["path", "old_string", "new_string"]
            }),
        },
        ToolSpec {
            name: "search_files".into(),
            description: format!(
                "Search file contents with a regular expression (Rust regex syntax, like ripgrep), recursively under \
the working folder or `path`. Files ignored by .gitignore/.ignore, hidden files, binary files and symlinks are skipped. \
Results are `path:line: text`, paths relative to the working folder; at most {} matches, long lines cut to {} \
characters. Use `file_glob` (e.g. \"*.rs\" or \"src/**/*.ts\") to limit which files are searched.",
                search::MAX_MATCHES,
                search::MAX_LINE_CHARS,
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression to search for, e.g. \"fn main\" or \"TODO|FIXME\"."},
                    "path": {"type": "string", "description": "Folder (or file) to search, relative to the working folder. Default: the whole working folder."},
                    "file_glob": {"type": "string", "description": "Only search files matching this glob, e.g. \"*.py\"."}
                },
                "required": ["pattern"]
            }),
        },
        ToolSpec {
            name: "terminal".into(),
            description: format!(
                "Run a shell command (bash -c) in the working folder and return its output (stdout and stderr \
merged in order) and exit code. stdin is empty, so interactive programs cannot be answered: pass flags such as \
-y, and avoid pagers and editors. Default timeout {} s (set `timeout` in seconds, at most {}); on timeout the \
command and everything it started are stopped. Output over {} characters keeps its head and tail. Background \
processes that still write to the output are stopped when the command ends; to keep one running, redirect its \
output (nohup CMD > file.log 2>&1 &). Commands run in a sandbox: they may write only inside the working folder and \
temp folders, and cannot read secrets (SSH keys, cloud credentials, .env files). Commands that are not known to be \
read-only may wait for the user's approval, and may be denied.",
                terminal::DEFAULT_TIMEOUT_S,
                terminal::MAX_TIMEOUT_S,
                terminal::MAX_OUTPUT_CHARS,
            ),
            parameters: json!({
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": "The shell command line."},
                    "timeout": {"type": "number", "description": format!("Seconds before the command is stopped. Default {}, at most {}.", terminal::DEFAULT_TIMEOUT_S, terminal::MAX_TIMEOUT_S)}
                },
                "required": ["command"]
            }),
        },
    ]
}

/// Runs one call. Never panics; bad JSON, an unknown tool or a refused path give an error
/// result the model can read. When `cancel` fires, whatever the tool started is stopped and
/// the result is "cancelled by the user".
pub async fn run(call: &ToolCall, ctx: ToolContext<'_>) -> ToolOutput {
    let safety = ctx.safety;
    let mut output = run_unredacted(call, ctx).await;
    safety.redactor.redact_in_place(&mut output.content);
    output
}

async fn run_unredacted(call: &ToolCall, ctx: ToolContext<'_>) -> ToolOutput {
    if ctx.cancel.is_cancelled() {
        return ToolOutput::cancelled();
    }
    if !TOOL_NAMES.contains(&call.name.as_str()) {
        return ToolOutput::error(format!(
            "unknown tool {:?}; the available tools are: {}",
            call.name,
            TOOL_NAMES.join(", ")
        ));
    }
    let args = match parse_arguments(&call.name, &call.arguments) {
        Ok(args) => args,
        Err(message) => return ToolOutput::error(message),
    };
    let access = FileAccess {
        workdir: ctx.workdir.to_path_buf(),
        secrets: ctx.safety.secrets.clone(),
        allow_secret: ctx.allow_secret,
    };
    match call.name.as_str() {
        "todo" => match todo::run(args, ctx.todos) {
            Ok(result) => ToolOutput {
                todos_changed: result.changed,
                ..ToolOutput::ok(result.content)
            },
            Err(err) => ToolOutput::error(err.to_string()),
        },
        "read_file" => file_tool(&call.name, args, access, ctx.cancel, files::read_file).await,
        "write_file" => file_tool(&call.name, args, access, ctx.cancel, files::write_file).await,
        "patch" => file_tool(&call.name, args, access, ctx.cancel, files::patch).await,
        "search_files" => search_tool(args, access, ctx.cancel).await,
        "terminal" => {
            let args: terminal::TerminalArgs = match typed(&call.name, args) {
                Ok(args) => args,
                Err(message) => return ToolOutput::error(message),
            };
            let env = crate::safety::env::scrubbed_env(&ctx.safety.terminal_env);
            let launch = terminal::Launch {
                sandbox: if ctx.unsandboxed {
                    None
                } else {
                    ctx.safety.sandbox.as_ref().ok()
                },
                env: &env,
            };
            match terminal::run(ctx.workdir, args, launch, ctx.cancel).await {
                Ok(finished) => ToolOutput {
                    sandbox_denied: finished.sandbox_denied,
                    is_error: finished.is_error,
                    ..ToolOutput::ok(finished.content)
                },
                Err(terminal::TerminalError::Cancelled) => ToolOutput::cancelled(),
                Err(err) => ToolOutput::error(err.to_string()),
            }
        }
        other => ToolOutput::error(format!(
            "unknown tool {other:?}; the available tools are: {}",
            TOOL_NAMES.join(", ")
        )),
    }
}

/// The arguments as a JSON object. An empty string counts as `{}` (some providers send that
/// for calls without arguments).
fn parse_arguments(tool: &str, arguments: &str) -> Result<Value, String> {
    if arguments.trim().is_empty() {
        return Ok(Value::Object(Default::default()));
    }
    match serde_json::from_str::<Value>(arguments) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(format!(
            "the arguments of {tool} must be a JSON object such as {{\"path\": \"src/main.rs\"}}; resend the call with an object"
        )),
        Err(err) => Err(format!(
            "the arguments of {tool} are not valid JSON ({err}); resend the call with valid JSON arguments"
        )),
    }
}

fn typed<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, String> {
    serde_json::from_value(args).map_err(|err| {
        format!("invalid arguments for {tool}: {err}; check the tool's schema and resend the call")
    })
}

/// What a file tool may touch, owned so it can move to the blocking thread.
struct FileAccess {
    workdir: PathBuf,
    secrets: SecretPaths,
    allow_secret: bool,
}

/// How long Stop waits for a write that had already begun committing (a rename and a sync).
const COMMIT_WAIT: Duration = Duration::from_secs(5);

/// Runs a blocking file tool on the blocking pool, raced against the cancel token. A write
/// that Stop catches before its commit is abandoned; one already committing finishes, and its
/// real result is returned (so the log says what happened to the file).
async fn file_tool<A, E>(
    name: &str,
    args: Value,
    access: FileAccess,
    cancel: &CancellationToken,
    tool: fn(&files::Scope<'_>, A) -> Result<String, E>,
) -> ToolOutput
where
    A: DeserializeOwned + Send + 'static,
    E: std::fmt::Display + Send + 'static,
{
    let args: A = match typed(name, args) {
        Ok(args) => args,
        Err(message) => return ToolOutput::error(message),
    };
    let gate = CommitGate::new();
    let task_gate = gate.clone();
    let mut task = tokio::task::spawn_blocking(move || {
        let scope = files::Scope {
            workdir: &access.workdir,
            secrets: &access.secrets,
            allow_secret: access.allow_secret,
            gate: &task_gate,
        };
        tool(&scope, args).map_err(|e| e.to_string())
    });
    match (&mut task).or_cancel(cancel).await {
        Ok(joined) => output_of(name, joined),
        Err(Cancelled) if gate.cancel() => ToolOutput::cancelled(),
        // The write had begun committing: wait for its rename (not the sync after it), or for
        // the task to end if the rename failed.
        Err(Cancelled) => {
            let finished = async {
                tokio::select! {
                    committed = gate.wait_committed() => committed.map(ToolOutput::ok),
                    joined = task => Some(output_of(name, joined)),
                }
            };
            match tokio::time::timeout(COMMIT_WAIT, finished).await {
                Ok(Some(mut output)) => {
                    output
                        .content
                        .push_str("\n[Stop came after this write had begun; it was completed]");
                    output
                }
                Ok(None) | Err(_) => ToolOutput::error(format!(
                    "cancelled by the user while {name} was replacing the file; it is either the old or the new version, never a mix"
                )),
            }
        }
    }
}

async fn search_tool(args: Value, access: FileAccess, cancel: &CancellationToken) -> ToolOutput {
    let args: search::SearchArgs = match typed("search_files", args) {
        Ok(args) => args,
        Err(message) => return ToolOutput::error(message),
    };
    // Set when this future ends or is dropped: the walk checks it between files and matches
    // and ends on its own.
    let stop = StopOnDrop(Arc::new(AtomicBool::new(false)));
    let flag = Arc::clone(&stop.0);
    let mut task = tokio::task::spawn_blocking(move || {
        search::search_files(
            &access.workdir,
            &access.secrets,
            access.allow_secret,
            args,
            flag,
        )
        .map_err(|e| e.to_string())
    });
    match (&mut task).or_cancel(cancel).await {
        Err(Cancelled) => ToolOutput::cancelled(),
        Ok(joined) => output_of("search_files", joined),
    }
}

fn output_of(
    name: &str,
    joined: Result<Result<String, String>, tokio::task::JoinError>,
) -> ToolOutput {
    match joined {
        Ok(Ok(content)) => ToolOutput::ok(content),
        Ok(Err(message)) => ToolOutput::error(message),
        Err(err) => ToolOutput::error(format!("{name} failed unexpectedly: {err}")),
    }
}

struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Deserializers that accept what models actually send: numbers as strings ("10"), booleans as
/// strings ("true"), and null for "not given".
pub(crate) mod lenient {
    use serde::{Deserialize, Deserializer, de::Error};
    use serde_json::Value;

    pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or_else(|| {
                    D::Error::custom(format!("expected a positive whole number, got {n}"))
                }),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s.trim().parse().map(Some).map_err(|_| {
                D::Error::custom(format!("expected a positive whole number, got {s:?}"))
            }),
            other => Err(D::Error::custom(format!(
                "expected a positive whole number, got {other}"
            ))),
        }
    }

    pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(None),
            Value::Number(n) => Ok(n.as_f64()),
            Value::String(s) if s.trim().is_empty() => Ok(None),
            Value::String(s) => s
                .trim()
                .trim_end_matches('s')
                .parse()
                .map(Some)
                .map_err(|_| D::Error::custom(format!("expected a number of seconds, got {s:?}"))),
            other => Err(D::Error::custom(format!(
                "expected a number of seconds, got {other}"
            ))),
        }
    }

    pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
        match Value::deserialize(d)? {
            Value::Null => Ok(false),
            Value::Bool(b) => Ok(b),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") || s.is_empty() => Ok(false),
            other => Err(D::Error::custom(format!(
                "expected true or false, got {other}"
            ))),
        }
    }
}
