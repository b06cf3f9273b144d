//! The agent: one conversation (messages, todo list, model client, recorder) and the loop that
//! runs a turn: user message -> model -> tools -> ... -> final answer, max iterations, error or
//! cancel. Front ends (desktop, `exec`) drive it with an `EventSink` and a `CancellationToken`.

pub mod approval;
pub mod batcher;
pub mod prompt;
mod turn;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use chrono::Utc;

pub use crate::repair::{CANCELLED_RESULT, repair_history};
pub use approval::{ApprovalBroker, ApprovalPolicy, Decision};

use crate::config::{ConfigError, Settings};
use crate::event::ErrorKind;
use crate::history::{Record, Recorder, SessionLog, TurnStatus};
use crate::mcp::{McpManager, Route};
use crate::message::Message;
use crate::provider::{ModelClient, ModelError, ToolSpec};
use crate::safety::Safety;
use crate::todo::TodoStore;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{message}")]
    Model { kind: ErrorKind, message: String },
}

impl AgentError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            AgentError::Config(_) => ErrorKind::Config,
            AgentError::Model { kind, .. } => *kind,
        }
    }
}

impl From<ModelError> for AgentError {
    fn from(error: ModelError) -> Self {
        let message = error.to_string();
        let kind = match error {
            ModelError::Cancelled { .. } => ErrorKind::Config,
            ModelError::Failed { kind, .. } => kind,
        };
        AgentError::Model { kind, message }
    }
}

/// How a turn ended. Exactly one of `Done` / `Error` / `Cancelled` events was emitted to match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TurnOutcome {
    Done,
    Cancelled,
    Failed { kind: ErrorKind, message: String },
}

/// Where a conversation's safety rules come from besides its settings: the data folder (a
/// secret) and the `exec` flags.
#[derive(Clone, Debug)]
pub struct SafetyOptions {
    pub data_dir: PathBuf,
    pub no_sandbox: bool,
    pub allow_secrets: bool,
}

impl Default for SafetyOptions {
    fn default() -> Self {
        SafetyOptions {
            data_dir: crate::config::data_dir(),
            no_sandbox: false,
            allow_secrets: false,
        }
    }
}

/// One conversation.
pub struct Agent {
    settings: Settings,
    workdir: PathBuf,
    system: String,
    tools: Vec<ToolSpec>,
    messages: Vec<Message>,
    todos: TodoStore,
    client: ModelClient,
    recorder: Option<Recorder>,
    turns: u64,
    options: SafetyOptions,
    safety: Safety,
    /// Commands the user allowed "for this session".
    grants: HashSet<String>,
    /// The user was told there is no sandbox.
    sandbox_noticed: bool,
    /// Where MCP tools come from; None runs the built-in tools only.
    mcp: Option<McpManager>,
    /// This turn's MCP tools, by the name the model sees.
    mcp_routes: HashMap<String, Route>,
    /// MCP servers whose tools the user allowed in this session.
    mcp_approved: HashSet<String>,
}

/// What the user allowed "for this session": commands (by their grant key) and MCP servers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionGrants {
    pub commands: HashSet<String>,
    pub mcp_servers: HashSet<String>,
}

impl Agent {
    /// A new conversation. `recorder` is None when history is unavailable (kept in memory only).
    pub fn new(
        settings: Settings,
        workdir: PathBuf,
        recorder: Option<Recorder>,
    ) -> Result<Agent, AgentError> {
        settings.validate()?;
        let client = ModelClient::new(&settings)?;
        let options = SafetyOptions::default();
        let safety = Safety::new(&settings.safety(), &options.data_dir, &workdir);
        Ok(Agent {
            system: prompt::system_prompt(&workdir),
            tools: crate::tools::specs(),
            settings,
            workdir,
            messages: Vec::new(),
            todos: TodoStore::default(),
            client,
            recorder,
            turns: 0,
            options,
            safety,
            grants: HashSet::new(),
            sandbox_noticed: false,
            mcp: None,
            mcp_routes: HashMap::new(),
            mcp_approved: HashSet::new(),
        })
    }

    /// The data folder and `exec` flags the safety rules use (the default reads
    /// `TALARIA_DATA_DIR`).
    pub fn set_safety_options(&mut self, options: SafetyOptions) {
        self.options = options;
        self.rebuild_safety();
    }

    pub fn safety(&self) -> &Safety {
        &self.safety
    }

    fn rebuild_safety(&mut self) {
        let mut inputs = self.settings.safety();
        inputs.no_sandbox = self.options.no_sandbox;
        inputs.allow_secrets = self.options.allow_secrets;
        self.safety = Safety::new(&inputs, &self.options.data_dir, &self.workdir);
    }

    /// Resumes a recorded session. A last turn that never ended (a crash) is marked
    /// `interrupted` in the log, and tool calls left without a result get a synthetic one, so
    /// the next request is valid for both providers. `recorder` should append to `log.path`
    /// (`Recorder::reopen`).
    pub fn from_history(
        settings: Settings,
        workdir: PathBuf,
        log: SessionLog,
        recorder: Option<Recorder>,
    ) -> Result<Agent, AgentError> {
        let mut agent = Agent::new(settings, workdir, recorder)?;
        agent.messages = log.messages;
        agent.todos = TodoStore::new(log.todos);
        agent.turns = log.turns;
        let appended = repair_history(&mut agent.messages);
        for message in appended {
            agent.record(Record::Message {
                ts: Utc::now(),
                message,
            });
        }
        if log.interrupted
            && let Some(recorder) = &agent.recorder
        {
            recorder.append_sync(Record::TurnEnd {
                ts: Utc::now(),
                turn: agent.turns,
                status: TurnStatus::Interrupted,
                error: None,
            });
        }
        Ok(agent)
    }

    /// Lets go of the session log (the caller drops it to close the file), keeping the
    /// conversation in memory; `attach_recorder` picks it up again.
    pub fn detach_recorder(&mut self) -> Option<Recorder> {
        self.recorder.take()
    }

    /// Records to `recorder` from now on (a reopened log of this same conversation).
    pub fn attach_recorder(&mut self, recorder: Recorder) {
        self.recorder = Some(recorder);
    }

    pub fn session_id(&self) -> Option<&str> {
        self.recorder.as_ref().map(|r| r.session_id())
    }

    /// The log file, when the session is recorded.
    pub fn session_path(&self) -> Option<&Path> {
        self.recorder.as_ref().map(|r| r.path())
    }

    pub fn recorder(&self) -> Option<&Recorder> {
        self.recorder.as_ref()
    }

    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    pub fn todos(&self) -> &TodoStore {
        &self.todos
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn workdir(&self) -> &Path {
        &self.workdir
    }

    /// Turns started so far in this session (including resumed ones).
    pub fn turns(&self) -> u64 {
        self.turns
    }

    /// New settings for the next turn (the desktop's Settings dialog). The conversation stays.
    pub fn set_settings(&mut self, settings: Settings) -> Result<(), AgentError> {
        settings.validate()?;
        self.client = ModelClient::new(&settings)?;
        self.settings = settings;
        self.rebuild_safety();
        Ok(())
    }

    /// What the user allowed "for this session" so far.
    pub fn grants(&self) -> SessionGrants {
        SessionGrants {
            commands: self.grants.clone(),
            mcp_servers: self.mcp_approved.clone(),
        }
    }

    /// Adds grants given earlier in this session: a conversation read back from its log (another
    /// process continued it meanwhile) keeps what the user allowed for the session.
    pub fn restore_grants(&mut self, grants: &SessionGrants) {
        self.grants.extend(grants.commands.iter().cloned());
        self.mcp_approved.extend(grants.mcp_servers.iter().cloned());
    }

    /// Uses the tools of these MCP servers from the next turn on (None: built-in tools only).
    pub fn set_mcp(&mut self, mcp: Option<McpManager>) {
        self.mcp = mcp;
    }

    fn record(&self, record: Record) {
        if let Some(recorder) = &self.recorder {
            recorder.append(record);
        }
    }
}
