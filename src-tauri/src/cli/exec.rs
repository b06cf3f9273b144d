//! `talaria exec`: one prompt, run to completion headless. Events go to a printer thread over
//! an unbounded channel, so a slow terminal or pipe never holds up the agent.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::agent::{Agent, AgentError, ApprovalPolicy, SafetyOptions, TurnOutcome};
use crate::cancel::CancellationToken;
use crate::config::{ConfigError, ProviderKind, Settings};
use crate::event::{ErrorKind, Event, EventSink};
use crate::history::{self, Header, HistoryError, Recorder, SessionLog};
use crate::mcp::{McpError, McpManager, OnBroken};

pub const EXIT_DONE: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = super::EXIT_USAGE;
pub const EXIT_CANCELLED: i32 = 130;

/// How long the exit path waits for the session log to reach the disk.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, clap::Args)]
pub struct ExecArgs {
    /// Provider protocol [env: TALARIA_PROVIDER]
    #[arg(long, value_name = "openai|anthropic", value_parser = ["openai", "anthropic"])]
    pub provider: Option<String>,
    /// openai: the base ending in /v1; anthropic: the host [env: TALARIA_BASE_URL]
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Model name sent to the provider [env: TALARIA_MODEL]
    #[arg(long, value_name = "NAME")]
    pub model: Option<String>,
    /// Where sessions and the index live [env: TALARIA_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where tools run and which files they may touch (default: the current directory)
    /// [env: TALARIA_WORKDIR]
    #[arg(long, value_name = "DIR")]
    pub workdir: Option<PathBuf>,
    /// Continue a recorded session (appends to the same log)
    #[arg(long, value_name = "SESSION_ID")]
    pub resume: Option<String>,
    /// Total deadline per API call in seconds, 0 = none [env: TALARIA_TIMEOUT_S]
    #[arg(long, value_name = "N")]
    pub timeout_s: Option<u64>,
    /// Longest wait for data inside a stream, in seconds [env: TALARIA_STALL_TIMEOUT_S]
    #[arg(long, value_name = "N")]
    pub stall_timeout_s: Option<u64>,
    /// Connect timeout in seconds [env: TALARIA_CONNECT_TIMEOUT_S]
    #[arg(long, value_name = "N")]
    pub connect_timeout_s: Option<u64>,
    /// Most model calls in one turn (default 90)
    #[arg(long, value_name = "N")]
    pub max_iterations: Option<u32>,
    /// Longest reply in tokens, sent as max_tokens (default 8192)
    #[arg(long, value_name = "N")]
    pub max_tokens: Option<u32>,
    /// Anthropic extended thinking budget in tokens: 0 is off (the default), else at least 1024
    /// and below --max-tokens
    #[arg(long, value_name = "N")]
    pub thinking_budget: Option<u32>,
    /// Run commands that need approval, and the tools of MCP servers not marked trusted,
    /// without asking (otherwise they are refused)
    #[arg(long)]
    pub approve_all: bool,
    /// Run terminal commands without the Landlock sandbox (needed for commands that must
    /// write outside the working folder)
    #[arg(long)]
    pub no_sandbox: bool,
    /// With --approve-all, also let tools read and write secrets (.env files, keys, Talaria's
    /// data)
    #[arg(long)]
    pub allow_secrets: bool,
    /// Take the MCP servers from FILE instead of <data dir>/mcp.json
    #[arg(long, value_name = "FILE", conflicts_with = "no_mcp")]
    pub mcp_config: Option<PathBuf>,
    /// Start no MCP servers
    #[arg(long)]
    pub no_mcp: bool,
    /// One JSON event per line on stdout
    #[arg(long)]
    pub json: bool,
    /// What to ask
    pub prompt: String,
}

#[derive(Debug, thiserror::Error)]
enum SetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("the prompt is empty: pass what to ask as the last argument")]
    EmptyPrompt,
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Workdir(#[from] crate::safety::WorkdirError),
    #[error("{0}; fix it, or run with --no-mcp")]
    Mcp(McpError),
    #[error("the MCP server list {0} does not exist; check the path given to --mcp-config")]
    NoMcpConfig(PathBuf),
}

impl SetupError {
    fn kind(&self) -> ErrorKind {
        match self {
            SetupError::Config(_)
            | SetupError::EmptyPrompt
            | SetupError::Workdir(_)
            | SetupError::Mcp(_)
            | SetupError::NoMcpConfig(_) => ErrorKind::Config,
            SetupError::Agent(error) => error.kind(),
            SetupError::History(error) => error.error_kind(),
            SetupError::Runtime(_) => ErrorKind::Io,
        }
    }

    fn exit_code(&self) -> i32 {
        match self.kind() {
            ErrorKind::Config => EXIT_USAGE,
            ErrorKind::Auth
            | ErrorKind::Http
            | ErrorKind::Network
            | ErrorKind::Timeout
            | ErrorKind::Stall
            | ErrorKind::Protocol
            | ErrorKind::MaxIterations
            | ErrorKind::Io => EXIT_FAILED,
        }
    }
}

/// Runs `talaria exec` and returns the exit code.
pub fn run(args: ExecArgs) -> i32 {
    crate::logging::init("warn");
    history::install_panic_flush();
    let printer = Printer::start(args.json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            let error = SetupError::Runtime(error);
            printer.sink().emit(Event::Error {
                kind: error.kind(),
                message: error.to_string(),
            });
            printer.finish();
            return EXIT_FAILED;
        }
    };
    let (code, mcp) = runtime.block_on(exec(args, printer.sink()));
    if let Some(mcp) = mcp {
        mcp.shutdown(crate::mcp::EXIT_GRACE);
    }
    // Tools may leave blocking work behind (a search walking a huge tree); do not wait on it.
    runtime.shutdown_timeout(Duration::from_millis(500));
    printer.finish();
    code
}

/// Runs the turn; hands back the exit code and the MCP servers (stopped by the caller, off the
/// runtime).
async fn exec(args: ExecArgs, sink: PrinterSink) -> (i32, Option<McpManager>) {
    let cancel = CancellationToken::new();
    let signals = match watch_signals(cancel.clone()) {
        Ok(task) => Some(task),
        Err(error) => {
            sink.emit(Event::StorageError {
                kind: ErrorKind::Io,
                message: format!(
                    "cannot watch SIGINT/SIGTERM ({error}); Ctrl-C will not stop the turn cleanly"
                ),
                path: String::new(),
            });
            None
        }
    };
    let mut mcp = None;
    let code = match prepare(&args, &sink, &mut mcp) {
        Ok(mut agent) => {
            let approvals = if args.approve_all {
                ApprovalPolicy::ApproveAll
            } else {
                ApprovalPolicy::DenyAll
            };
            let outcome = agent
                .run_turn(args.prompt.clone(), &sink, &approvals, cancel)
                .await;
            let saved = match agent.recorder() {
                Some(recorder) => flush(recorder).await,
                None => Err("it could not be created, so nothing of it was saved".to_string()),
            };
            let code = match outcome {
                TurnOutcome::Done => EXIT_DONE,
                TurnOutcome::Cancelled => EXIT_CANCELLED,
                TurnOutcome::Failed { .. } => EXIT_FAILED,
            };
            match saved {
                // The reply is printed; a log that misses part of it is still a failure.
                Err(why) if code == EXIT_DONE => {
                    sink.emit(Event::Error {
                        kind: ErrorKind::Io,
                        message: format!(
                            "the reply is complete, but the session log could not be saved \
                             completely: {why}. Free some disk space; the log keeps what was \
                             written before"
                        ),
                    });
                    EXIT_FAILED
                }
                Ok(()) | Err(_) => code,
            }
        }
        Err(error) => {
            sink.emit(Event::Error {
                kind: error.kind(),
                message: error.to_string(),
            });
            error.exit_code()
        }
    };
    if let Some(task) = signals {
        task.abort();
    }
    (code, mcp)
}

/// Writes what is pending; an error says why the log is not complete (write errors were
/// also reported as they happened, through the recorder's error sink).
async fn flush(recorder: &Recorder) -> Result<(), String> {
    match tokio::time::timeout(FLUSH_TIMEOUT, recorder.flush()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!(
            "writing {} took longer than {} s",
            recorder.path().display(),
            FLUSH_TIMEOUT.as_secs()
        )),
    }
}

/// SIGINT and SIGTERM cancel the turn. A second signal means "now": the log is flushed
/// (briefly) and the process exits at once, in case something refuses to wind down.
fn watch_signals(cancel: CancellationToken) -> std::io::Result<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::spawn(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        cancel.cancel();
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        history::flush_all_blocking(Duration::from_secs(1));
        crate::mcp::kill_all_servers();
        std::process::exit(EXIT_CANCELLED);
    }))
}

/// Settings, MCP servers (started in the background, into `mcp`), history and the agent;
/// emits the `session` line.
fn prepare(
    args: &ExecArgs,
    sink: &PrinterSink,
    mcp: &mut Option<McpManager>,
) -> Result<Agent, SetupError> {
    if args.prompt.trim().is_empty() {
        return Err(SetupError::EmptyPrompt);
    }
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(crate::config::data_dir);
    let resumed = match &args.resume {
        Some(id) => Some(load_session(&data_dir, id)?),
        None => None,
    };
    let settings = settings_from(args, resumed.as_ref(), |name| {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    })?;
    settings.validate()?;
    let current = std::env::current_dir().map_err(|_| ConfigError::BadWorkdir(".".into()))?;
    // A resumed session goes on in its own folder unless a flag says otherwise.
    let recorded = resumed
        .as_ref()
        .map(|log| PathBuf::from(&log.header.workdir))
        .filter(|dir| args.workdir.is_none() && dir.is_dir());
    let workdir = match recorded {
        Some(dir) => dir,
        None => settings.resolve_workdir(current)?,
    };
    let workdir = crate::safety::check_workdir(&workdir, &data_dir)?;
    // Logs and settings are the user's alone, whoever made the folder first.
    if let Err(error) = crate::private::private_dir(&data_dir) {
        tracing::warn!(folder = %data_dir.display(), %error, "could not make the data folder private");
    }
    let options = SafetyOptions {
        data_dir: data_dir.clone(),
        no_sandbox: args.no_sandbox,
        allow_secrets: args.allow_secrets,
    };
    *mcp = start_mcp(args, &data_dir)?;

    let errors: Arc<dyn EventSink> = Arc::new(sink.clone());
    match resumed {
        Some(log) => {
            let (recorder, failure) = match Recorder::reopen(&log.path, errors) {
                Ok(recorder) => (Some(recorder), None),
                // Another process is writing this session: going on would fork the
                // conversation, so stop and say where it is open.
                Err(error @ HistoryError::InUse(_)) => return Err(error.into()),
                Err(error) => (None, Some(error)),
            };
            // A compressed log is made plain to be continued: name the file written to.
            let path = recorder
                .as_ref()
                .map_or_else(|| log.path.clone(), |r| r.path().to_path_buf());
            sink.emit(Event::Session {
                id: log.header.id.clone(),
                path: path.display().to_string(),
            });
            report_storage(sink, failure, &path);
            let mut agent = Agent::from_history(settings, workdir, log, recorder)?;
            agent.set_safety_options(options);
            agent.set_mcp(mcp.clone());
            Ok(agent)
        }
        None => {
            let header = Header::new(
                settings.provider.as_str(),
                settings.model.clone(),
                workdir.display().to_string(),
            );
            let sessions = history::sessions_dir(&data_dir);
            let path = history::session_path(&sessions, header.created, &header.id);
            let id = header.id.clone();
            let (recorder, failure) = match Recorder::create(&sessions, header, errors) {
                Ok(recorder) => (Some(recorder), None),
                Err(error) => (None, Some(error)),
            };
            let shown = recorder
                .as_ref()
                .map(|r| r.path().to_path_buf())
                .unwrap_or(path.clone());
            sink.emit(Event::Session {
                id,
                path: shown.display().to_string(),
            });
            report_storage(sink, failure, &path);
            let mut agent = Agent::new(settings, workdir, recorder)?;
            agent.set_safety_options(options);
            agent.set_mcp(mcp.clone());
            Ok(agent)
        }
    }
}

/// The MCP servers of `--mcp-config FILE` or `<data dir>/mcp.json`, starting in the
/// background (the turn waits for them up to their startup timeout). None with `--no-mcp`.
fn start_mcp(args: &ExecArgs, data_dir: &Path) -> Result<Option<McpManager>, SetupError> {
    if args.no_mcp {
        return Ok(None);
    }
    let (path, editable) = match &args.mcp_config {
        Some(path) if !path.is_file() => return Err(SetupError::NoMcpConfig(path.clone())),
        Some(path) => (path.clone(), false),
        None => (crate::mcp::config::default_path(data_dir), true),
    };
    let runtime = tokio::runtime::Handle::current();
    McpManager::start(path, editable, OnBroken::Fail, runtime)
        .map(Some)
        .map_err(SetupError::Mcp)
}

fn report_storage(sink: &PrinterSink, failure: Option<HistoryError>, path: &Path) {
    if let Some(error) = failure {
        sink.emit(Event::StorageError {
            kind: ErrorKind::Io,
            message: format!("{error}; this session is kept in memory only"),
            path: path.display().to_string(),
        });
    }
}

/// Flags over environment over defaults. When resuming, the session's provider and model fill
/// in what neither a flag nor the environment sets.
fn settings_from(
    args: &ExecArgs,
    resumed: Option<&SessionLog>,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let mut settings = Settings::default();
    let flag_provider = match &args.provider {
        Some(text) => Some(
            ProviderKind::parse(text).ok_or_else(|| ConfigError::UnknownProvider(text.clone()))?,
        ),
        None => None,
    };
    if flag_provider.is_none()
        && var("TALARIA_PROVIDER").is_none()
        && let Some(kind) = resumed.and_then(|log| ProviderKind::parse(&log.header.provider))
    {
        settings.provider = kind;
    }
    if let Some(kind) = flag_provider {
        settings.provider = kind;
    }
    // The flag's provider must also pick which *_API_KEY variable applies.
    settings.apply_vars(|name| {
        if name == "TALARIA_PROVIDER" && flag_provider.is_some() {
            None
        } else {
            var(name)
        }
    })?;
    if settings.model.trim().is_empty()
        && let Some(log) = resumed
    {
        settings.model = log.header.model.clone();
    }
    if let Some(base) = &args.base_url {
        settings.base_url = base.clone();
    }
    if let Some(model) = &args.model {
        settings.model = model.clone();
    }
    if let Some(dir) = &args.workdir {
        settings.workdir = dir.display().to_string();
    }
    if let Some(n) = args.timeout_s {
        settings.timeout_s = n;
    }
    if let Some(n) = args.stall_timeout_s {
        settings.stall_timeout_s = n;
    }
    if let Some(n) = args.connect_timeout_s {
        settings.connect_timeout_s = n;
    }
    if let Some(n) = args.max_iterations {
        settings.max_iterations = n;
    }
    if let Some(n) = args.max_tokens {
        settings.max_tokens = n;
    }
    if let Some(n) = args.thinking_budget {
        settings.thinking_budget = n;
    }
    Ok(settings)
}

/// Finds a session by id (or a unique prefix of it) and reads it.
fn load_session(data_dir: &Path, id: &str) -> Result<SessionLog, HistoryError> {
    let path = history::find_log(&history::sessions_dir(data_dir), id)?;
    history::read_session(&path)
}

enum Line {
    Event(Event),
    End,
}

/// The sending half: cheap, never blocks.
#[derive(Clone)]
struct PrinterSink(mpsc::UnboundedSender<Line>);

impl EventSink for PrinterSink {
    fn emit(&self, event: Event) {
        let _ = self.0.send(Line::Event(event));
    }
}

/// A thread that writes events to stdout/stderr, one line (and one flush) per event.
struct Printer {
    tx: mpsc::UnboundedSender<Line>,
    thread: Option<JoinHandle<()>>,
}

impl Printer {
    fn start(json: bool) -> Printer {
        let (tx, mut rx) = mpsc::unbounded_channel::<Line>();
        let thread = std::thread::Builder::new()
            .name("talaria-printer".into())
            .spawn(move || {
                let mut human = Human::default();
                while let Some(Line::Event(event)) = rx.blocking_recv() {
                    if json {
                        print_json(&event);
                    } else {
                        human.print(&event);
                    }
                }
                human.end();
            })
            .ok();
        Printer { tx, thread }
    }

    fn sink(&self) -> PrinterSink {
        PrinterSink(self.tx.clone())
    }

    /// Prints what is queued, then stops the thread. Events sent after this are dropped.
    fn finish(mut self) {
        let _ = self.tx.send(Line::End);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn print_json(event: &Event) {
    let Ok(mut line) = serde_json::to_vec(event) else {
        return;
    };
    line.push(b'\n');
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader went away) must not stop the turn.
    let _ = out.write_all(&line);
    let _ = out.flush();
}

/// Readable output: the reply on stdout as it streams, everything else on stderr.
#[derive(Default)]
struct Human {
    /// The reply on stdout does not end with a newline yet.
    open_line: bool,
    /// Reasoning text on stderr does not end with a newline yet.
    open_reasoning: bool,
}

impl Human {
    fn print(&mut self, event: &Event) {
        match event {
            Event::Token { text } => {
                self.close_reasoning();
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes());
                let _ = out.flush();
                self.open_line = !text.ends_with('\n');
            }
            Event::Reasoning { text } => {
                let mut err = std::io::stderr().lock();
                let _ = err.write_all(text.as_bytes());
                let _ = err.flush();
                self.open_reasoning = !text.ends_with('\n');
            }
            Event::Session { id, path } => self.note(&format!("session {id} ({path})")),
            Event::TurnStarted { .. } => {}
            Event::ToolCall {
                name, arguments, ..
            } => self.note(&format!("> {name} {}", call_summary(arguments))),
            Event::ToolResult {
                name,
                content,
                is_error,
                ..
            } => self.note(&result_summary(name, content, *is_error)),
            Event::Todo { todos } => {
                let mut text = String::from("todo:");
                for item in todos {
                    let mark = match item.status {
                        crate::todo::TodoStatus::Pending => "[ ]",
                        crate::todo::TodoStatus::InProgress => "[~]",
                        crate::todo::TodoStatus::Completed => "[x]",
                        crate::todo::TodoStatus::Cancelled => "[-]",
                    };
                    text.push_str(&format!("\n  {mark} {}", clip(&item.content, 200)));
                }
                self.note(&text);
            }
            Event::ApprovalRequest {
                command, reason, ..
            } => self.note(&format!(
                "needs approval ({reason}): {}",
                clip(command, 300)
            )),
            Event::Notice { message } => self.note(message),
            Event::Retry {
                attempt,
                max_attempts,
                delay_ms,
                reason,
            } => self.note(&format!(
                "retry {attempt}/{max_attempts} in {delay_ms} ms: {reason}"
            )),
            Event::StorageError { message, .. } => self.note(&format!("history: {message}")),
            Event::Done { .. } => self.end(),
            Event::Error { kind, message } => self.note(&format!("error ({kind}): {message}")),
            Event::Cancelled => self.note("cancelled"),
        }
    }

    fn note(&mut self, text: &str) {
        self.close_reasoning();
        if self.open_line {
            // Keep the reply and the notes on separate lines when both go to a terminal.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\n");
            let _ = out.flush();
            self.open_line = false;
        }
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "talaria: {text}");
        let _ = err.flush();
    }

    fn close_reasoning(&mut self) {
        if self.open_reasoning {
            let mut err = std::io::stderr().lock();
            let _ = err.write_all(b"\n");
            let _ = err.flush();
            self.open_reasoning = false;
        }
    }

    fn end(&mut self) {
        self.close_reasoning();
        if self.open_line {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b"\n");
            let _ = out.flush();
            self.open_line = false;
        }
    }
}

/// A tool call on one line: the argument a person looks for first (the command, the path,
/// the pattern), else the arguments as compact JSON.
fn call_summary(arguments: &serde_json::Value) -> String {
    let text = |key: &str| arguments.get(key).and_then(serde_json::Value::as_str);
    let summary = if let Some(command) = text("command") {
        format!("$ {}", one_line(command))
    } else if let Some(pattern) = text("pattern") {
        match text("path") {
            Some(path) => format!("/{pattern}/ in {path}"),
            None => format!("/{pattern}/"),
        }
    } else if let Some(path) = text("path") {
        path.to_string()
    } else if let Some(todos) = arguments.get("todos").and_then(|t| t.as_array()) {
        format!("{} item(s)", todos.len())
    } else {
        match arguments {
            serde_json::Value::String(raw) => one_line(raw),
            serde_json::Value::Object(map) if map.is_empty() => String::new(),
            other => other.to_string(),
        }
    };
    clip(&summary, 200)
}

/// A tool result on one line: ok and its size, or the error's first line.
fn result_summary(name: &str, content: &str, is_error: bool) -> String {
    let lines = content.lines().count();
    let first = content.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if is_error {
        format!("< {name} failed: {}", clip(first.trim(), 200))
    } else if lines <= 1 {
        format!("< {name} ok: {}", clip(first.trim(), 200))
    } else {
        format!("< {name} ok ({lines} lines): {}", clip(first.trim(), 160))
    }
}

/// Newlines and runs of spaces folded, so a multi-line command stays on one line.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(text: &str, max_chars: usize) -> String {
    let mut chars = text.chars();
    let mut out: String = chars.by_ref().take(max_chars).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrapper {
        #[command(flatten)]
        args: ExecArgs,
    }

    fn args(extra: &[&str]) -> ExecArgs {
        let mut argv = vec!["exec"];
        argv.extend_from_slice(extra);
        argv.push("hello");
        Wrapper::try_parse_from(argv).unwrap().args
    }

    #[test]
    fn flags_beat_env_and_pick_the_key_variable() {
        let args = args(&[
            "--provider",
            "anthropic",
            "--model",
            "m-flag",
            "--timeout-s",
            "7",
        ]);
        let env = |name: &str| match name {
            "TALARIA_PROVIDER" => Some("openai".to_string()),
            "TALARIA_MODEL" => Some("m-env".to_string()),
            "TALARIA_TIMEOUT_S" => Some("99".to_string()),
            "OPENAI_API_KEY" => Some("sk-openai".to_string()),
            "ANTHROPIC_API_KEY" => Some("sk-ant".to_string()),
            _ => None,
        };
        let settings = settings_from(&args, None, env).unwrap();
        assert_eq!(settings.provider, ProviderKind::Anthropic);
        assert_eq!(settings.model, "m-flag");
        assert_eq!(settings.timeout_s, 7);
        assert_eq!(settings.api_key, "sk-ant");
    }

    #[test]
    fn env_beats_defaults() {
        let args = args(&[]);
        let env = |name: &str| match name {
            "TALARIA_MODEL" => Some("m-env".to_string()),
            "TALARIA_STALL_TIMEOUT_S" => Some("5".to_string()),
            _ => None,
        };
        let settings = settings_from(&args, None, env).unwrap();
        assert_eq!(settings.model, "m-env");
        assert_eq!(settings.stall_timeout_s, 5);
        assert_eq!(settings.timeout_s, 300);
        assert_eq!(settings.max_iterations, 90);
    }

    #[test]
    fn bad_env_number_is_a_config_error() {
        let args = args(&[]);
        let env = |name: &str| (name == "TALARIA_TIMEOUT_S").then(|| "soon".to_string());
        assert!(matches!(
            settings_from(&args, None, env),
            Err(ConfigError::NotANumber { .. })
        ));
    }

    #[test]
    fn tool_lines_are_short_and_readable() {
        let call = serde_json::json!({"command": "ls -la\n  | head", "timeout": 5});
        assert_eq!(call_summary(&call), "$ ls -la | head");
        let call = serde_json::json!({"pattern": "fn main", "path": "src"});
        assert_eq!(call_summary(&call), "/fn main/ in src");
        assert_eq!(call_summary(&serde_json::json!({"path": "a.txt"})), "a.txt");
        assert_eq!(call_summary(&serde_json::json!({})), "");
        assert_eq!(
            result_summary("terminal", "\nfirst\nsecond\n", false),
            "< terminal ok (3 lines): first"
        );
        assert_eq!(
            result_summary("read_file", "no such file: a.txt", true),
            "< read_file failed: no such file: a.txt"
        );
    }

    #[test]
    fn clip_respects_characters() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("hi", 5), "hi");
    }
}
