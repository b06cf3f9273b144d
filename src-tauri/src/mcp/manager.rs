//! The servers of one `mcp.json` and their lives: started in the background, ready with their
//! tools, failed with the reason and the last stderr lines, restarted on request and once on
//! their own after a crash, stopped with their process group.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rmcp::model::Tool;
use serde::Serialize;
use tokio::runtime::Handle;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::{self, ConfigError, McpFile, ServerConfig, ServerEntry, Transport};
use super::connect::{self, Connection, Running};
use super::content::McpOutput;
use super::tools::{self, Route, TurnTools};
use crate::cancel::OrCancel as _;
use crate::sync::lock;

/// Before the one automatic restart after a crash.
pub const RESTART_BACKOFF: Duration = Duration::from_secs(2);
/// A server that stayed up this long earns a new automatic restart.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);
/// Longest wait for a refreshed tool list after the server says it changed.
const LIST_TIMEOUT: Duration = Duration::from_secs(10);
/// On exit, how long servers get after SIGTERM before the SIGKILL.
pub const EXIT_GRACE: Duration = Duration::from_millis(200);

#[derive(Debug, thiserror::Error)]
pub enum McpError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("these MCP servers come from a file given on the command line; edit that file instead")]
    ReadOnly,
}

/// What to do with an `mcp.json` that cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnBroken {
    /// The app: move it aside (kept as `mcp.json.broken-<time>`), report it, run no servers.
    KeepAside,
    /// The CLI: refuse to go on, so the user fixes it.
    Fail,
}

/// Where a server is in its life.
#[derive(Clone, Debug)]
pub enum State {
    Disabled,
    Starting {
        deadline: Instant,
    },
    Ready {
        tools: Arc<Vec<Tool>>,
    },
    Failed {
        reason: String,
        stderr: Vec<String>,
        restart_at: Option<Instant>,
    },
    /// The manager was shut down.
    Stopped,
}

/// A server as the Tools page and `talaria mcp list` show it.
#[derive(Clone, Debug, Serialize)]
pub struct ServerView {
    pub name: String,
    /// The entry as written; None when it cannot be read (see `error`).
    pub entry: Option<ServerEntry>,
    /// `stdio` or `http`; empty for an unreadable entry.
    pub transport: &'static str,
    /// The command line or the URL.
    pub summary: String,
    pub enabled: bool,
    pub trusted: bool,
    /// `disabled`, `starting`, `ready`, `failed` or `stopped`.
    pub state: &'static str,
    pub error: Option<String>,
    pub stderr: Vec<String>,
    /// Seconds until the automatic restart, while one is planned.
    pub restart_in_s: Option<u64>,
    pub tools: Vec<ToolView>,
}

#[derive(Clone, Debug, Serialize)]
pub struct ToolView {
    /// The server's name for the tool.
    pub name: String,
    /// The name the model sees (`SERVER__tool`).
    pub model_name: String,
    pub description: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Overview {
    /// The file the servers come from.
    pub path: Option<String>,
    /// Set when the file could not be used; says what happened and what to do.
    pub warning: Option<String>,
    pub servers: Vec<ServerView>,
}

/// The MCP servers of one configuration. Cheap to clone; every clone is the same manager.
#[derive(Clone)]
pub struct McpManager {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for McpManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpManager")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

struct Inner {
    path: PathBuf,
    /// False for a file named on the command line: it is read, never written.
    editable: bool,
    on_broken: OnBroken,
    runtime: Handle,
    servers: Mutex<BTreeMap<String, Arc<Server>>>,
    changes: Arc<watch::Sender<u64>>,
    warning: Mutex<Option<String>>,
    /// Size and modification time of the file when it was last read.
    stamp: Mutex<Option<(u64, SystemTime)>>,
    /// Held while the file is read, changed and written.
    editing: Mutex<()>,
    closed: AtomicBool,
}

/// One configured server.
struct Server {
    name: String,
    spec: Mutex<Spec>,
    state: watch::Sender<State>,
    run: Mutex<Option<Run>>,
    /// The automatic restart after a crash was used (reset by a long healthy run or by hand).
    restart_spent: AtomicBool,
    changes: Arc<watch::Sender<u64>>,
    runtime: Handle,
}

#[derive(Clone, Debug, PartialEq)]
struct Spec {
    entry: Result<ServerEntry, String>,
    config: Result<ServerConfig, String>,
}

impl Spec {
    fn new(name: &str, entry: Result<ServerEntry, String>) -> Spec {
        let config = match &entry {
            Ok(entry) => entry.check(name).map_err(|e| e.to_string()),
            Err(error) => Err(error.clone()),
        };
        Spec { entry, config }
    }

    /// Same process and handshake: a change of `trusted` or `tool_timeout_s` alone applies
    /// without a restart.
    fn same_launch(&self, other: &Spec) -> bool {
        match (&self.config, &other.config) {
            (Ok(a), Ok(b)) => {
                a.transport == b.transport
                    && a.enabled == b.enabled
                    && a.startup_timeout == b.startup_timeout
            }
            (a, b) => a == b,
        }
    }
}

/// One attempt to run a server; its token stops it.
struct Run {
    id: u64,
    stop: CancellationToken,
    connection: Option<Arc<Connection>>,
}

static RUN_IDS: AtomicU64 = AtomicU64::new(1);

impl McpManager {
    /// The servers listed in `path` (none when it is missing), each started in the
    /// background on `runtime`. `editable` is false for a file given on the command line.
    pub fn start(
        path: PathBuf,
        editable: bool,
        on_broken: OnBroken,
        runtime: Handle,
    ) -> Result<McpManager, McpError> {
        let (changes, _) = watch::channel(0);
        let manager = McpManager {
            inner: Arc::new(Inner {
                path,
                editable,
                on_broken,
                runtime,
                servers: Mutex::new(BTreeMap::new()),
                changes: Arc::new(changes),
                warning: Mutex::new(None),
                stamp: Mutex::new(None),
                editing: Mutex::new(()),
                closed: AtomicBool::new(false),
            }),
        };
        manager.reload()?;
        Ok(manager)
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Ticks whenever a server changes state or the list changes (the desktop forwards it).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.inner.changes.subscribe()
    }

    /// Why the file could not be used, if that happened.
    pub fn warning(&self) -> Option<String> {
        lock(&self.inner.warning).clone()
    }

    /// Reads the file again and applies what changed: new servers start, removed ones stop,
    /// changed ones restart. A broken file is handled as `OnBroken` says.
    pub fn reload(&self) -> Result<(), McpError> {
        let _editing = lock(&self.inner.editing);
        self.reload_locked()
    }

    fn reload_locked(&self) -> Result<(), McpError> {
        let path = &self.inner.path;
        let stamp = file_stamp(path);
        let file = match McpFile::load(path) {
            Ok(file) => file,
            Err(error @ ConfigError::Broken { .. }) => match self.inner.on_broken {
                OnBroken::Fail => return Err(error.into()),
                OnBroken::KeepAside => {
                    let warning =
                        config::keep_broken_aside(path).unwrap_or_else(|| error.to_string());
                    tracing::warn!("{warning}");
                    *lock(&self.inner.warning) = Some(warning);
                    *lock(&self.inner.stamp) = file_stamp(path);
                    McpFile::default()
                }
            },
            Err(error) => match self.inner.on_broken {
                OnBroken::Fail => return Err(error.into()),
                OnBroken::KeepAside => {
                    let warning = format!("{error}; no MCP server is running");
                    tracing::warn!("{warning}");
                    *lock(&self.inner.warning) = Some(warning);
                    McpFile::default()
                }
            },
        };
        *lock(&self.inner.stamp) = stamp;
        self.apply(&file);
        Ok(())
    }

    /// `reload`, only when the file changed since it was last read.
    fn reload_if_changed(&self) {
        if *lock(&self.inner.stamp) == file_stamp(&self.inner.path) {
            return;
        }
        if let Err(error) = self.reload() {
            tracing::warn!(
                "{} could not be read again: {error}",
                self.inner.path.display()
            );
        }
    }

    /// Makes the running servers match `file`.
    fn apply(&self, file: &McpFile) {
        if self.inner.closed.load(Ordering::SeqCst) {
            return;
        }
        let listed = file.servers();
        let mut servers = lock(&self.inner.servers);
        servers.retain(|name, server| {
            let keep = listed.iter().any(|l| &l.name == name);
            if !keep {
                server.halt(State::Disabled);
            }
            keep
        });
        for item in listed {
            let spec = Spec::new(&item.name, item.entry);
            if let Some(existing) = servers.get(&item.name) {
                let mut current = lock(&existing.spec);
                if *current == spec {
                    continue;
                }
                if current.same_launch(&spec) {
                    *current = spec;
                    drop(current);
                    existing.touch();
                    continue;
                }
                drop(current);
                existing.halt(State::Disabled);
            }
            let (state, _) = watch::channel(State::Disabled);
            let server = Arc::new(Server {
                name: item.name.clone(),
                spec: Mutex::new(spec),
                state,
                run: Mutex::new(None),
                restart_spent: AtomicBool::new(false),
                changes: self.inner.changes.clone(),
                runtime: self.inner.runtime.clone(),
            });
            server.begin();
            servers.insert(item.name, server);
        }
        drop(servers);
        self.inner.changes.send_modify(|n| *n += 1);
    }

    fn servers(&self) -> Vec<Arc<Server>> {
        lock(&self.inner.servers).values().cloned().collect()
    }

    fn server(&self, name: &str) -> Option<Arc<Server>> {
        lock(&self.inner.servers).get(name).cloned()
    }

    /// Every server with its state and tools, after picking up changes to the file.
    pub fn overview(&self) -> Overview {
        self.reload_if_changed();
        let servers = self.servers();
        let ready: Vec<_> = servers.iter().filter_map(|s| s.ready_tools()).collect();
        let names = tools::model_names(&ready);
        Overview {
            path: Some(self.inner.path.display().to_string()),
            warning: self.warning(),
            servers: servers.iter().map(|s| s.view(&names)).collect(),
        }
    }

    /// Waits until no server is starting (each for at most its startup timeout).
    pub async fn settled(&self) {
        let waits = self
            .servers()
            .into_iter()
            .map(|s| async move { s.settled().await });
        futures_util::future::join_all(waits).await;
    }

    /// The tools for a turn: the servers still starting are waited for (up to their startup
    /// timeout, so a one-shot `exec` sees their tools), failed and disabled ones are not.
    pub async fn turn_tools(&self) -> TurnTools {
        self.reload_if_changed();
        self.settled().await;
        let ready: Vec<_> = self
            .servers()
            .iter()
            .filter_map(|s| s.ready_tools())
            .collect();
        tools::assemble(&ready)
    }

    /// Runs one tool call. `arguments` is the model's raw JSON. Drop the future to cancel:
    /// the server is sent `notifications/cancelled` and nobody waits for its answer.
    pub async fn call(&self, route: &Route, arguments: &str) -> McpOutput {
        let arguments = match tools::parse_arguments(arguments) {
            Ok(arguments) => arguments,
            Err(message) => return McpOutput::error(message),
        };
        let Some(server) = self.server(&route.server) else {
            return McpOutput::error(format!(
                "the MCP server {:?} is no longer configured, so {} cannot run",
                route.server, route.tool
            ));
        };
        let Some(connection) = server.connection() else {
            return McpOutput::error(format!(
                "the MCP server {:?} is not running ({}), so its tool {} cannot run now; \
                 do without it or ask the user to restart it in Settings → Tools",
                route.server,
                server.state_text(),
                route.tool
            ));
        };
        tools::call(&connection, route, arguments).await
    }

    /// Stops and starts a server again (the Restart button); it earns a new automatic restart.
    pub fn restart(&self, name: &str) -> Result<(), McpError> {
        let server = self
            .server(name)
            .ok_or_else(|| ConfigError::NoSuchServer(name.to_string()))?;
        server.restart_spent.store(false, Ordering::SeqCst);
        server.halt(State::Disabled);
        server.begin();
        Ok(())
    }

    /// Turns a server on or off (saved in the file).
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), McpError> {
        self.update(name, |entry| entry.enabled = (!enabled).then_some(false))
    }

    /// Lets a server's tools run without asking, or not (saved in the file).
    pub fn set_trusted(&self, name: &str, trusted: bool) -> Result<(), McpError> {
        self.update(name, |entry| entry.trusted = trusted.then_some(true))
    }

    fn update(&self, name: &str, change: impl FnOnce(&mut ServerEntry)) -> Result<(), McpError> {
        self.edit(|file| {
            let mut entry = file
                .get(name)
                .ok_or_else(|| ConfigError::NoSuchServer(name.to_string()))?
                .map_err(ConfigError::BadServer)?;
            change(&mut entry);
            file.set(name, &entry)
        })
    }

    /// Adds a server, or replaces `original` (which may be renamed to `name`).
    pub fn save_server(
        &self,
        original: Option<&str>,
        name: &str,
        entry: &ServerEntry,
    ) -> Result<(), McpError> {
        entry.check(name)?;
        self.edit(|file| match original {
            None => file.add(name, entry),
            Some(original) => {
                if !file.contains(original) {
                    return Err(ConfigError::NoSuchServer(original.to_string()));
                }
                file.rename(original, name)?;
                file.set(name, entry)
            }
        })
    }

    /// Removes a server from the file and stops it.
    pub fn remove_server(&self, name: &str) -> Result<(), McpError> {
        self.edit(|file| file.remove_existing(name))
    }

    /// Reads the file, changes it, writes it, and applies the result. A file that cannot be
    /// read is never overwritten.
    fn edit(
        &self,
        change: impl FnOnce(&mut McpFile) -> Result<(), ConfigError>,
    ) -> Result<(), McpError> {
        if !self.inner.editable {
            return Err(McpError::ReadOnly);
        }
        let _editing = lock(&self.inner.editing);
        let path = &self.inner.path;
        let mut file = McpFile::load(path)?;
        change(&mut file)?;
        file.save(path)?;
        *lock(&self.inner.stamp) = file_stamp(path);
        *lock(&self.inner.warning) = None;
        self.apply(&file);
        Ok(())
    }

    /// Stops every server and its process group: SIGTERM, up to `grace` for them to go, then
    /// SIGKILL. Blocks the calling thread (exit paths); call it off the runtime's workers.
    pub fn shutdown(&self, grace: Duration) {
        self.inner.closed.store(true, Ordering::SeqCst);
        let connections: Vec<Arc<Connection>> = self
            .servers()
            .iter()
            .filter_map(|server| server.halt_for_exit())
            .collect();
        if connections.is_empty() {
            return;
        }
        for connection in &connections {
            connection.signal_term();
        }
        let (gone, wait) = std::sync::mpsc::channel();
        let watched = connections.clone();
        self.inner.runtime.spawn(async move {
            let closes = watched.iter().map(|c| c.stderr_closed());
            futures_util::future::join_all(closes).await;
            let _ = gone.send(());
        });
        let _ = wait.recv_timeout(grace);
        for connection in &connections {
            connection.kill();
        }
    }
}

fn file_stamp(path: &Path) -> Option<(u64, SystemTime)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.len(), meta.modified().ok()?))
}

impl Server {
    fn set_state(&self, state: State) {
        self.state.send_replace(state);
        self.touch();
    }

    /// Tells watchers something about this server changed.
    fn touch(&self) {
        self.changes.send_modify(|n| *n += 1);
    }

    /// Sets the state of run `id`, if it is still the current run.
    fn set_if_current(&self, id: u64, state: State, connection: Option<Arc<Connection>>) -> bool {
        let mut run = lock(&self.run);
        match run.as_mut() {
            Some(current) if current.id == id => {
                current.connection = connection;
                self.set_state(state);
                true
            }
            Some(_) | None => false,
        }
    }

    /// Starts the server as its entry says: a broken entry fails, a disabled one stays off.
    fn begin(self: &Arc<Self>) {
        let config = lock(&self.spec).config.clone();
        match config {
            Err(reason) => self.set_state(State::Failed {
                reason,
                stderr: Vec::new(),
                restart_at: None,
            }),
            Ok(config) if !config.enabled => self.set_state(State::Disabled),
            Ok(config) => self.start_run(config),
        }
    }

    fn start_run(self: &Arc<Self>, config: ServerConfig) {
        let id = RUN_IDS.fetch_add(1, Ordering::SeqCst);
        let stop = CancellationToken::new();
        *lock(&self.run) = Some(Run {
            id,
            stop: stop.clone(),
            connection: None,
        });
        self.set_state(State::Starting {
            deadline: Instant::now() + config.startup_timeout,
        });
        let server = self.clone();
        self.runtime
            .spawn(async move { supervise(server, id, stop, config).await });
    }

    /// Stops the current run, if any, and sets `then`.
    fn halt(&self, then: State) {
        if let Some(run) = lock(&self.run).take() {
            run.stop.cancel();
            if let Some(connection) = run.connection {
                connection.terminate();
            }
        }
        self.set_state(then);
    }

    /// Stops the current run for exit and hands back its connection for the caller to kill.
    fn halt_for_exit(&self) -> Option<Arc<Connection>> {
        let run = lock(&self.run).take()?;
        run.stop.cancel();
        self.set_state(State::Stopped);
        run.connection
    }

    fn connection(&self) -> Option<Arc<Connection>> {
        lock(&self.run).as_ref()?.connection.clone()
    }

    fn ready_tools(&self) -> Option<tools::ReadyServer> {
        let tools = match &*self.state.borrow() {
            State::Ready { tools } => tools.clone(),
            State::Disabled | State::Starting { .. } | State::Failed { .. } | State::Stopped => {
                return None;
            }
        };
        let config = lock(&self.spec).config.clone().ok()?;
        Some(tools::ReadyServer {
            name: self.name.clone(),
            tools,
            trusted: config.trusted,
            timeout: config.tool_timeout,
        })
    }

    /// Waits while the server is starting, up to its startup deadline.
    async fn settled(&self) {
        let mut state = self.state.subscribe();
        let deadline = match &*state.borrow_and_update() {
            State::Starting { deadline } => *deadline,
            State::Disabled | State::Ready { .. } | State::Failed { .. } | State::Stopped => return,
        };
        // The run fails itself at the deadline; the margin covers its clean-up.
        let margin = Duration::from_millis(500);
        let started = state.wait_for(|s| !matches!(s, State::Starting { .. }));
        let _ = tokio::time::timeout_at(deadline + margin, started).await;
    }

    fn state_text(&self) -> String {
        match &*self.state.borrow() {
            State::Disabled => "it is switched off".to_string(),
            State::Starting { .. } => "it is still starting".to_string(),
            State::Ready { .. } => "it is ready".to_string(),
            State::Failed { reason, .. } => format!("it failed: {reason}"),
            State::Stopped => "Talaria is closing".to_string(),
        }
    }

    fn view(&self, names: &tools::ModelNames) -> ServerView {
        let spec = lock(&self.spec).clone();
        let (transport, summary) = match &spec.config {
            Ok(config) => match &config.transport {
                Transport::Stdio { .. } => ("stdio", String::new()),
                Transport::Http { .. } => ("http", String::new()),
            },
            Err(_) => ("", String::new()),
        };
        let summary = spec
            .entry
            .as_ref()
            .map(ServerEntry::summary)
            .unwrap_or(summary);
        let entry = spec.entry.as_ref().ok();
        let mut view = ServerView {
            name: self.name.clone(),
            entry: entry.cloned(),
            transport,
            summary,
            enabled: entry.is_none_or(ServerEntry::is_enabled),
            trusted: entry.is_some_and(ServerEntry::is_trusted),
            state: "disabled",
            error: None,
            stderr: Vec::new(),
            restart_in_s: None,
            tools: Vec::new(),
        };
        match &*self.state.borrow() {
            State::Disabled => {}
            State::Starting { .. } => view.state = "starting",
            State::Ready { tools } => {
                view.state = "ready";
                view.tools = tools
                    .iter()
                    .map(|tool| ToolView {
                        name: tool.name.to_string(),
                        model_name: names.get(&self.name, &tool.name),
                        description: tool.description.as_deref().unwrap_or_default().to_string(),
                    })
                    .collect();
            }
            State::Failed {
                reason,
                stderr,
                restart_at,
            } => {
                view.state = "failed";
                view.error = Some(reason.clone());
                view.stderr = stderr.clone();
                view.restart_in_s = restart_at.map(|at| {
                    at.saturating_duration_since(Instant::now())
                        .as_secs_f64()
                        .ceil() as u64
                });
            }
            State::Stopped => view.state = "stopped",
        }
        view
    }
}

/// One run of a server, from launch to its end: ready with its tools, or failed with why.
async fn supervise(server: Arc<Server>, id: u64, stop: CancellationToken, config: ServerConfig) {
    let fail = |reason: String, stderr: Vec<String>, restart_at: Option<Instant>| {
        server.set_if_current(
            id,
            State::Failed {
                reason,
                stderr,
                restart_at,
            },
            None,
        )
    };
    let launched = match connect::launch(&server.name, &config) {
        Ok(launched) => launched,
        Err(error) => {
            fail(error.reason, error.stderr, None);
            return;
        }
    };
    let tail = launched.stderr_tail();
    let tools_changed = Arc::new(Notify::new());
    let handshake = connect::handshake(
        launched,
        stop.child_token(),
        tools_changed.clone(),
        &server.name,
    );
    let started = tokio::time::timeout(config.startup_timeout, handshake)
        .or_cancel(&stop)
        .await;
    let (connection, running, tools) = match started {
        // Stopped on purpose: whoever stopped it set the state.
        Err(_) => return,
        Ok(Err(_elapsed)) => {
            let stderr = match tail {
                Some(tail) => tail.settled(Duration::from_millis(200)).await,
                None => Vec::new(),
            };
            fail(
                format!(
                    "it did not start within {} s (its startup_timeout_s); check the command, \
                     or raise the timeout for a server that is slow to start",
                    config.startup_timeout.as_secs()
                ),
                stderr,
                None,
            );
            return;
        }
        Ok(Ok(Err(error))) => {
            fail(error.reason, error.stderr, None);
            return;
        }
        Ok(Ok(Ok(started))) => started,
    };
    let tools = State::Ready {
        tools: Arc::new(tools),
    };
    if !server.set_if_current(id, tools, Some(connection.clone())) {
        connection.kill();
        return;
    }
    tracing::info!(server = %server.name, "MCP server ready");
    let ready_at = Instant::now();
    let ended = watch_session(&server, id, &connection, running, &tools_changed)
        .or_cancel(&stop)
        .await;
    if ended.is_err() {
        return;
    }
    // The session ended on its own: the server exited or the connection closed.
    connection.kill();
    let stderr = connection.stderr().await;
    let what = if connection.is_stdio() {
        "the server exited"
    } else {
        "the connection to the server closed"
    };
    tracing::warn!(server = %server.name, "{what}");
    if ready_at.elapsed() >= HEALTHY_AFTER {
        server.restart_spent.store(false, Ordering::SeqCst);
    }
    if server.restart_spent.swap(true, Ordering::SeqCst) {
        fail(
            format!("{what}; it was restarted once already: press Restart to try again"),
            stderr,
            None,
        );
        return;
    }
    let restart_at = Instant::now() + RESTART_BACKOFF;
    let reason = format!("{what}; restarting it in {} s", RESTART_BACKOFF.as_secs());
    if !fail(reason, stderr, Some(restart_at)) {
        return;
    }
    if tokio::time::sleep_until(restart_at)
        .or_cancel(&stop)
        .await
        .is_err()
    {
        return;
    }
    let current = lock(&server.run).as_ref().is_some_and(|run| run.id == id);
    if current {
        server.begin();
    }
}

/// Follows a live session until it ends, refreshing the tool list when the server says it
/// changed.
async fn watch_session(
    server: &Server,
    id: u64,
    connection: &Arc<Connection>,
    running: Running,
    tools_changed: &Notify,
) {
    let ended = running.waiting();
    tokio::pin!(ended);
    loop {
        tokio::select! {
            _ = &mut ended => return,
            _ = tools_changed.notified() => {
                let listed = tokio::time::timeout(LIST_TIMEOUT, connection.peer.list_all_tools()).await;
                if let Ok(Ok(tools)) = listed {
                    let state = State::Ready { tools: Arc::new(tools) };
                    server.set_if_current(id, state, Some(connection.clone()));
                }
            }
        }
    }
}
