//! Reaching one server: a child process over stdio (its own process group, a minimal
//! environment, stderr kept) or a remote server over streamable HTTP; then the MCP handshake
//! and the first tool list.

use std::collections::HashMap;
use std::future::Future;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::TokioChildProcess;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, Peer, RoleClient, ServiceExt as _};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::{ServerConfig, Transport};
use super::error_text::root_cause;
use super::process::{ProcessGroup, StderrTail, TERM_GRACE};
use crate::sync::lock;

/// How long a failure waits for the last stderr lines of a server that exited.
const STDERR_SETTLE: Duration = Duration::from_millis(300);

/// Talaria's side of the session: who we are, and a nudge when the server's tools change.
#[derive(Clone)]
pub struct Handler {
    info: ClientConfig,
    tools_changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    fn get_info(&self) -> ClientConfig {
        self.info.clone()
    }

    fn on_tool_list_changed(
        &self,
        _context: NotificationContext<RoleClient>,
    ) -> impl Future<Output = ()> + Send + '_ {
        self.tools_changed.notify_one();
        std::future::ready(())
    }
}

pub type Running = RunningService<RoleClient, Handler>;

/// A live session with a server, shared by the calls in flight.
#[derive(Debug)]
pub struct Connection {
    pub server: String,
    pub peer: Peer<RoleClient>,
    /// Ends the MCP session (the supervisor then sees it end and reports the server failed).
    session: CancellationToken,
    group: Mutex<Option<ProcessGroup>>,
    stderr: Option<StderrTail>,
}

impl Connection {
    /// The server's last stderr lines (stdio only), once it has closed them or briefly after.
    pub async fn stderr(&self) -> Vec<String> {
        match &self.stderr {
            Some(tail) => tail.settled(STDERR_SETTLE).await,
            None => Vec::new(),
        }
    }

    /// Resolves when the server's stderr closes: it and every process that shared the pipe
    /// have exited (never, for a remote server).
    pub async fn stderr_closed(&self) {
        match &self.stderr {
            Some(tail) => tail.closed().await,
            None => std::future::pending().await,
        }
    }

    pub fn is_stdio(&self) -> bool {
        self.stderr.is_some()
    }

    /// Stops the server's process group: SIGTERM now, SIGKILL after a grace period.
    pub fn terminate(&self) {
        let Some(group) = lock(&self.group).take() else {
            return;
        };
        group.signal(libc::SIGTERM);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    tokio::time::sleep(TERM_GRACE).await;
                    drop(group);
                });
            }
            Err(_) => drop(group),
        }
    }

    /// SIGTERM now; `kill` (after the caller's grace period) finishes the job.
    pub fn signal_term(&self) {
        if let Some(group) = lock(&self.group).as_ref() {
            group.signal(libc::SIGTERM);
        }
    }

    /// Ends the session after its transport failed (a remote server went away): the server
    /// then shows as failed, and is restarted once on its own.
    pub fn end_session(&self) {
        self.session.cancel();
    }

    /// SIGKILL to the whole group, at once.
    pub fn kill(&self) {
        drop(lock(&self.group).take());
    }
}

/// A server process that was spawned but has not finished the handshake yet: dropping it
/// kills the process group.
pub struct Launched {
    transport: LaunchedTransport,
    group: Option<ProcessGroup>,
    stderr: Option<StderrTail>,
}

enum LaunchedTransport {
    Stdio(TokioChildProcess),
    /// The transport and its URL (for messages).
    Http(StreamableHttpClientTransport<reqwest_mcp::Client>, String),
}

/// Why a server did not start: a sentence, and its stderr.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StartError {
    pub reason: String,
    pub stderr: Vec<String>,
}

impl Launched {
    /// The stderr reader (stdio only), to read from after the launch is dropped.
    pub fn stderr_tail(&self) -> Option<StderrTail> {
        self.stderr.clone()
    }
}

/// Starts the process (stdio) or prepares the HTTP client. Must run inside the runtime.
pub fn launch(name: &str, config: &ServerConfig) -> Result<Launched, StartError> {
    let fail = |reason: String| StartError {
        reason,
        stderr: Vec::new(),
    };
    match &config.transport {
        Transport::Stdio {
            command,
            args,
            env,
            cwd,
        } => {
            let mut cmd = tokio::process::Command::new(command);
            cmd.args(args)
                .env_clear()
                .envs(super::env::for_server(env))
                .process_group(0)
                .kill_on_drop(true);
            if let Some(cwd) = cwd {
                cmd.current_dir(cwd);
            }
            let (child, stderr) = TokioChildProcess::builder(cmd)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|error| {
                    let place = match cwd {
                        Some(cwd) => format!(" in {}", cwd.display()),
                        None => String::new(),
                    };
                    fail(format!(
                        "could not start {command:?}{place}: {error}; check that it is installed \
                         and on PATH (or give its full path), and that the folder exists"
                    ))
                })?;
            let group = child.id().and_then(ProcessGroup::led_by);
            let stderr = stderr.map(|pipe| StderrTail::start(name.to_string(), pipe));
            Ok(Launched {
                transport: LaunchedTransport::Stdio(child),
                group,
                stderr,
            })
        }
        Transport::Http { url, headers } => {
            let client = http_client(config.startup_timeout).map_err(fail)?;
            let mut custom = HashMap::new();
            for (key, value) in headers {
                let parsed = (
                    reqwest_mcp::header::HeaderName::from_bytes(key.as_bytes()),
                    reqwest_mcp::header::HeaderValue::from_str(value),
                );
                let (Ok(key), Ok(value)) = parsed else {
                    return Err(fail(format!(
                        "the header {key:?} is not a valid HTTP header"
                    )));
                };
                custom.insert(key, value);
            }
            let transport = StreamableHttpClientTransport::with_client(
                client,
                StreamableHttpClientTransportConfig::with_uri(url.as_str()).custom_headers(custom),
            );
            Ok(Launched {
                transport: LaunchedTransport::Http(transport, url.clone()),
                group: None,
                stderr: None,
            })
        }
    }
}

/// The client for remote servers. The crypto provider is ring, as for the model layer; it is
/// installed once for the process (an error only means one is installed already).
fn http_client(connect_timeout: Duration) -> Result<reqwest_mcp::Client, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest_mcp::Client::builder()
        .connect_timeout(connect_timeout)
        // Idle pooled connections stall on delayed ACKs (rmcp's own client does the same).
        .pool_max_idle_per_host(0)
        // A redirect would replay the session and custom headers elsewhere.
        .redirect(reqwest_mcp::redirect::Policy::none())
        .build()
        .map_err(|error| format!("could not set up the HTTP client: {error}"))
}

/// The handshake and the first `tools/list`. `stop` ends the session later.
pub async fn handshake(
    launched: Launched,
    stop: CancellationToken,
    tools_changed: Arc<Notify>,
    name: &str,
) -> Result<(Arc<Connection>, Running, Vec<Tool>), StartError> {
    let handler = Handler {
        info: ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("talaria", env!("CARGO_PKG_VERSION")),
        ),
        tools_changed,
    };
    let Launched {
        transport,
        group,
        stderr,
    } = launched;
    let session = stop.clone();
    let (served, url) = match transport {
        LaunchedTransport::Stdio(child) => (handler.serve_with_ct(child, stop).await, None),
        LaunchedTransport::Http(http, url) => (handler.serve_with_ct(http, stop).await, Some(url)),
    };
    let running = match served {
        Ok(running) => running,
        Err(error) => {
            drop(group);
            let stderr = match stderr {
                Some(tail) => tail.settled(STDERR_SETTLE).await,
                None => Vec::new(),
            };
            let cause = root_cause(&error);
            let reason = match url {
                Some(url) => format!(
                    "could not reach {url}: {cause}; check the address, the headers and that \
                     the server is running"
                ),
                None if !stderr.is_empty() => format!(
                    "it stopped before the MCP handshake finished ({cause}); its last output \
                     says why"
                ),
                None => format!("the MCP handshake failed: {cause}"),
            };
            return Err(StartError { reason, stderr });
        }
    };
    let connection = Arc::new(Connection {
        server: name.to_string(),
        peer: running.peer().clone(),
        session,
        group: Mutex::new(group),
        stderr,
    });
    match running.peer().list_all_tools().await {
        Ok(tools) => Ok((connection, running, tools)),
        Err(error) => {
            connection.kill();
            Err(StartError {
                reason: format!("listing its tools failed: {}", root_cause(&error)),
                stderr: connection.stderr().await,
            })
        }
    }
}
