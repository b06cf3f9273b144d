//! What the desktop keeps between commands: open sessions, each with its own per-run cancel
//! token and approval broker, and the history index.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tauri::ipc::Channel;

use crate::agent::{Agent, ApprovalBroker, SessionGrants};
use crate::cancel::CancellationToken;
use crate::event::{Event, EventSink};
use crate::history::{Index, Recorder, WatchHealth};
use crate::keystore::KeyStorage;
use crate::mcp::McpManager;

pub use crate::sync::lock;

/// The Channel of the turn in progress, shared with the session's recorder so storage errors
/// reach the window that is looking at the session.
#[derive(Clone, Default)]
pub struct ChannelSlot(Arc<Mutex<Option<Channel<Event>>>>);

impl ChannelSlot {
    pub fn set(&self, channel: Channel<Event>) {
        *lock(&self.0) = Some(channel);
    }
}

impl EventSink for ChannelSlot {
    fn emit(&self, event: Event) {
        if let Some(channel) = lock(&self.0).as_ref() {
            // The window may be gone; the turn still finishes and is recorded.
            let _ = channel.send(event);
        }
    }
}

/// Forwards a turn's events to its Channel.
pub struct ChannelSink(pub Channel<Event>);

/// Every Channel message is a script the webview evaluates, and WebKitGTK keeps memory for each
/// one it ran (about 9 KB, measured over 2 500 messages; it adds up over a long reply): tokens
/// go to the window about 13 times a second, in larger pieces.
const WINDOW_TOKEN_INTERVAL: std::time::Duration = std::time::Duration::from_millis(75);

impl EventSink for ChannelSink {
    fn emit(&self, event: Event) {
        let _ = self.0.send(event);
    }

    fn token_interval(&self) -> std::time::Duration {
        WINDOW_TOKEN_INTERVAL
    }
}

/// A conversation between turns, and the size of its log when it was closed.
pub struct Parked {
    pub agent: Agent,
    pub size: u64,
}

pub struct SessionSlot {
    pub id: String,
    pub path: PathBuf,
    /// The session's log writer (the agent holds it too): records about the session (a
    /// rename) go through it while a turn runs, as the log has one writer.
    pub recorder: Recorder,
    pub agent: tokio::sync::Mutex<Agent>,
    pub running: Mutex<Option<CancellationToken>>,
    pub approvals: Arc<ApprovalBroker>,
    pub channel: ChannelSlot,
}

pub struct AppState {
    pub data_dir: PathBuf,
    pub sessions: Mutex<HashMap<String, Arc<SessionSlot>>>,
    /// Opened in the background at start-up; None until then (or if it failed to open).
    pub index: Arc<Mutex<Option<Index>>>,
    /// Why the saved settings could not be used, once that was found out; cleared on save.
    pub settings_warning: Mutex<Option<String>>,
    /// Conversations between turns, their logs closed (see `release`).
    pub parked: Mutex<HashMap<String, Parked>>,
    /// Log paths of the sessions started or continued in this run.
    pub paths: Mutex<HashMap<String, PathBuf>>,
    /// Where API keys are kept, probed once (in the background at start-up).
    pub key_storage: OnceLock<KeyStorage>,
    /// Keys read from the keyring, by provider (None: none saved).
    pub keys: Mutex<HashMap<String, Option<String>>>,
    /// How the session list follows the folder, as the watcher last reported it.
    pub index_health: Mutex<Option<WatchHealth>>,
    /// The compression of finished sessions running now, to cancel it.
    pub compaction: Mutex<Option<CancellationToken>>,
    /// The MCP servers, started in the background at start-up.
    pub mcp: OnceLock<McpManager>,
    /// What the user allowed "for this session", by session, kept for this run of the app: a
    /// conversation reloaded from its log gets them back.
    pub grants: Mutex<HashMap<String, SessionGrants>>,
}

impl AppState {
    pub fn new(data_dir: PathBuf) -> Self {
        Self {
            data_dir,
            sessions: Mutex::new(HashMap::new()),
            index: Arc::new(Mutex::new(None)),
            settings_warning: Mutex::new(None),
            index_health: Mutex::new(None),
            compaction: Mutex::new(None),
            paths: Mutex::new(HashMap::new()),
            parked: Mutex::new(HashMap::new()),
            key_storage: OnceLock::new(),
            keys: Mutex::new(HashMap::new()),
            mcp: OnceLock::new(),
            grants: Mutex::new(HashMap::new()),
        }
    }

    pub fn session(&self, id: &str) -> Option<Arc<SessionSlot>> {
        lock(&self.sessions).get(id).cloned()
    }

    /// Closes the log of a slot whose turn has ended (unless a new turn claimed it meanwhile),
    /// which releases the log's write lock, and parks its conversation with the log's size: if
    /// nobody else writes to the log meanwhile, the next turn goes on from memory.
    pub fn release(&self, slot: Arc<SessionSlot>) {
        {
            let mut sessions = lock(&self.sessions);
            let idle = lock(&slot.running).is_none();
            let same = sessions
                .get(&slot.id)
                .is_some_and(|open| Arc::ptr_eq(open, &slot));
            if !(idle && same) {
                return;
            }
            sessions.remove(&slot.id);
        }
        // Someone still holds the slot (a Stop racing the end): drop it, the log is the truth.
        let Ok(slot) = Arc::try_unwrap(slot) else {
            return;
        };
        let SessionSlot {
            id,
            path,
            recorder,
            agent,
            ..
        } = slot;
        let mut agent = agent.into_inner();
        // Dropping the last handle (the agent's, then the slot's own) writes what is pending and
        // closes the file, so the size parked with the conversation is the log's final one. The
        // slot's handle used to outlive the size, the turn's last records landed after it, and
        // the next turn found the size changed and reloaded the whole log.
        drop(agent.detach_recorder());
        drop(recorder);
        if let Ok(meta) = std::fs::metadata(&path) {
            lock(&self.parked).insert(
                id,
                Parked {
                    agent,
                    size: meta.len(),
                },
            );
        }
    }

    /// The parked conversation of `id`, if its log is still the size it had when parked.
    pub fn unpark(&self, id: &str, size: u64) -> Option<Agent> {
        let parked = lock(&self.parked).remove(id)?;
        (parked.size == size).then_some(parked.agent)
    }

    /// Stops the MCP servers and their process groups (exit paths).
    pub fn stop_mcp(&self) {
        if let Some(mcp) = self.mcp.get() {
            mcp.shutdown(crate::mcp::EXIT_GRACE);
        }
    }

    /// Cancels every running turn and waits (up to `timeout`) for them to wind down, so their
    /// last records (partial reply, synthetic tool results, turn end) are queued before the
    /// logs are flushed on the way out.
    pub fn stop_all(&self, timeout: Duration) {
        let slots: Vec<Arc<SessionSlot>> = lock(&self.sessions).values().cloned().collect();
        for slot in &slots {
            if let Some(token) = lock(&slot.running).as_ref() {
                token.cancel();
            }
        }
        let deadline = Instant::now() + timeout;
        while slots.iter().any(|slot| lock(&slot.running).is_some()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
