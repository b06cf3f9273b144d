//! The commands the UI invokes. Each one translates to engine calls and back; the logic
//! lives in the engine modules.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};

use super::error::{CommandError, CommandResult};
use super::settings;
use super::state::{AppState, ChannelSink, ChannelSlot, OpenedLog, SessionSlot, lock};
use crate::agent::{Agent, ApprovalBroker, ApprovalPolicy};
use crate::cancel::CancellationToken;
use crate::config::Settings;
use crate::event::{Event, EventSink};
use crate::history::{self, Header, Recorder, SearchHit, SessionSummary};
use crate::local_servers::{self, LocalServer};
use crate::message::{Message, page_start};
use crate::todo::TodoItem;

#[derive(Serialize)]
pub struct StartedTurn {
    session_id: String,
    path: String,
}

#[derive(Serialize)]
pub struct AppStatus {
    configured: bool,
    data_dir: String,
    provider: String,
    model: String,
    base_url: String,
    env_overrides: Vec<String>,
    /// Set when the saved settings could not be read; says what to do.
    settings_warning: Option<String>,
    /// Set when mcp.json could not be read; says what happened and what to do.
    mcp_warning: Option<String>,
}

#[derive(Serialize)]
pub struct SessionView {
    id: String,
    title: String,
    created: String,
    status: String,
    path: String,
    /// The newest messages (all of them unless `tail` was given).
    messages: Vec<Message>,
    /// Index of `messages[0]` in the whole conversation; earlier ones come from
    /// `session_messages`.
    first_index: usize,
    total_messages: usize,
    todos: Vec<TodoItem>,
    skipped_lines: usize,
}

#[derive(Serialize)]
pub struct MessagePage {
    messages: Vec<Message>,
    first_index: usize,
    total_messages: usize,
}

/// Saved settings with the environment laid over them: what a new turn uses.
fn effective_settings(app: &AppHandle, state: &AppState) -> CommandResult<Settings> {
    let loaded = settings::load_saved(app, &state.data_dir);
    if let Some(warning) = loaded.warning {
        // Kept for app_status: the first reader moves a broken file aside, later ones see none.
        *lock(&state.settings_warning) = Some(warning);
    }
    let mut settings = loaded.settings;
    settings.apply_env()?;
    Ok(settings)
}

fn default_workdir() -> PathBuf {
    dirs::home_dir().unwrap_or_else(|| PathBuf::from("/"))
}

#[tauri::command]
pub fn app_status(app: AppHandle, state: State<'_, AppState>) -> CommandResult<AppStatus> {
    let settings = effective_settings(&app, &state)?;
    let settings_warning = lock(&state.settings_warning).clone();
    Ok(AppStatus {
        configured: settings.validate().is_ok(),
        data_dir: state.data_dir.display().to_string(),
        provider: settings.provider.as_str().to_string(),
        model: settings.model.clone(),
        base_url: settings.effective_base_url(),
        env_overrides: settings::env_overrides(),
        settings_warning,
        mcp_warning: state.mcp.get().and_then(|mcp| mcp.warning()),
    })
}

#[tauri::command]
pub fn get_settings(app: AppHandle, state: State<'_, AppState>) -> CommandResult<Settings> {
    effective_settings(&app, &state)
}

#[tauri::command]
pub fn save_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    settings: Settings,
) -> CommandResult<Settings> {
    settings.validate()?;
    settings.resolve_workdir(default_workdir())?;
    settings::save(&app, &state.data_dir, &settings)?;
    *lock(&state.settings_warning) = None;
    effective_settings(&app, &state)
}

#[tauri::command]
pub async fn detect_local_servers() -> CommandResult<Vec<LocalServer>> {
    Ok(local_servers::detect(local_servers::CANDIDATES).await)
}

const BUSY: &str = "a reply is still running in this session; stop it or wait for it to finish";

/// The slot for a turn, claimed for it (its `running` token set) under the sessions lock, so a
/// slot being released after its last turn can never be claimed and dropped at once. A session
/// not open here is loaded from its log (the truth: another process may have continued it).
fn claim_slot(
    state: &AppState,
    settings: Settings,
    session_id: Option<String>,
    token: &CancellationToken,
) -> CommandResult<Arc<SessionSlot>> {
    if let Some(id) = &session_id {
        let sessions = lock(&state.sessions);
        if let Some(slot) = sessions.get(id) {
            let mut running = lock(&slot.running);
            if running.is_some() {
                return Err(CommandError::new("busy", BUSY));
            }
            *running = Some(token.clone());
            return Ok(slot.clone());
        }
    }
    settings.validate()?;
    let workdir = settings.resolve_workdir(default_workdir())?;
    let channel = ChannelSlot::default();
    let errors: Arc<dyn EventSink> = Arc::new(channel.clone());
    let (recorder, agent) = match session_id {
        Some(id) => {
            let path = find_session_path(state, &id)?;
            // Lock first: the log read next is then the whole conversation.
            let ours = lock(&state.paths).contains_key(&id);
            let recorder = reopen_log(&path, errors, ours)?;
            let size = std::fs::metadata(&path).map(|m| m.len()).ok();
            let agent = match size.and_then(|size| state.unpark(&id, size)) {
                // Nobody wrote to the log since our last turn: go on from memory.
                Some(mut agent) => {
                    agent.attach_recorder(recorder.clone());
                    agent
                }
                None => {
                    let log = history::read_session(&path)?;
                    Agent::from_history(settings, workdir, log, Some(recorder.clone()))?
                }
            };
            (recorder, agent)
        }
        None => {
            let header = Header::new(
                settings.provider.as_str(),
                settings.model.clone(),
                workdir.display().to_string(),
            );
            let recorder =
                Recorder::create(&history::sessions_dir(&state.data_dir), header, errors)?;
            let agent = Agent::new(settings, workdir, Some(recorder.clone()))?;
            (recorder, agent)
        }
    };
    let slot = Arc::new(SessionSlot {
        id: recorder.session_id().to_string(),
        path: recorder.path().to_path_buf(),
        agent: tokio::sync::Mutex::new(agent),
        running: Mutex::new(Some(token.clone())),
        approvals: Arc::new(ApprovalBroker::new()),
        channel,
    });
    let mut sessions = lock(&state.sessions);
    if sessions.contains_key(&slot.id) {
        // Another start for the same session won the race (its recorder holds the log).
        return Err(CommandError::new("busy", BUSY));
    }
    sessions.insert(slot.id.clone(), slot.clone());
    lock(&state.paths).insert(slot.id.clone(), slot.path.clone());
    Ok(slot)
}

/// Takes a session log for writing. A log this app released a moment ago may still be closing
/// (its writer finishing the last turn): wait briefly for it rather than report it busy.
fn reopen_log(
    path: &std::path::Path,
    errors: Arc<dyn EventSink>,
    ours: bool,
) -> Result<Recorder, history::HistoryError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        match Recorder::reopen(path, errors.clone()) {
            Err(history::HistoryError::InUse(_))
                if ours && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

fn find_session_path(state: &AppState, id: &str) -> CommandResult<PathBuf> {
    // Sessions of this run are known before the watcher has indexed them.
    if let Some(path) = lock(&state.paths).get(id) {
        return Ok(path.clone());
    }
    let indexed = match lock(&state.index).as_ref() {
        Some(index) => index.find(id)?.map(|summary| PathBuf::from(summary.path)),
        None => None,
    };
    match indexed {
        Some(path) => Ok(path),
        // The index may still be opening, or not have seen a log another process just wrote.
        None => history::find_log(&history::sessions_dir(&state.data_dir), id).map_err(|_| {
            CommandError::new(
                "not_found",
                format!("no session {id}: it may have been deleted from the sessions folder"),
            )
        }),
    }
}

#[tauri::command]
pub async fn start_turn(
    app: AppHandle,
    state: State<'_, AppState>,
    session_id: Option<String>,
    prompt: String,
    on_event: Channel<Event>,
) -> CommandResult<StartedTurn> {
    if prompt.trim().is_empty() {
        return Err(CommandError::new("usage", "type a message first"));
    }
    let settings = effective_settings(&app, &state)?;
    let token = CancellationToken::new();
    // Loading a session from its log reads the disk: off the async threads.
    let slot = {
        let (app, settings, token) = (app.clone(), settings.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            claim_slot(&app.state::<AppState>(), settings, session_id, &token)
        })
        .await??
    };
    slot.channel.set(on_event.clone());
    let started = StartedTurn {
        session_id: slot.id.clone(),
        path: slot.path.display().to_string(),
    };
    let sink = ChannelSink(on_event);
    sink.emit(Event::Session {
        id: started.session_id.clone(),
        path: started.path.clone(),
    });
    tauri::async_runtime::spawn(async move {
        let policy = ApprovalPolicy::Ask(slot.approvals.clone());
        let mut agent = slot.agent.lock().await;
        agent.set_mcp(app.state::<AppState>().mcp.get().cloned());
        match agent.set_settings(settings) {
            Ok(()) => {
                agent.run_turn(prompt, &sink, &policy, token).await;
            }
            Err(error) => sink.emit(Event::Error {
                kind: error.kind(),
                message: error.to_string(),
            }),
        }
        drop(agent);
        *lock(&slot.running) = None;
        // Let go of the log between turns, so `talaria exec --resume` may continue the session
        // elsewhere; the next turn here reloads it from the log. Closing the log waits for its
        // writer: off the async threads.
        let _ = tokio::task::spawn_blocking(move || {
            app.state::<AppState>().release(slot);
        })
        .await;
    });
    Ok(started)
}

#[tauri::command]
pub fn cancel_turn(state: State<'_, AppState>, session_id: String) -> CommandResult<()> {
    if let Some(slot) = state.session(&session_id)
        && let Some(token) = lock(&slot.running).as_ref()
    {
        token.cancel();
    }
    Ok(())
}

#[tauri::command]
pub fn respond_approval(
    state: State<'_, AppState>,
    session_id: String,
    id: String,
    approved: bool,
) -> CommandResult<()> {
    let answered = state
        .session(&session_id)
        .is_some_and(|slot| slot.approvals.respond(&id, approved));
    if answered {
        Ok(())
    } else {
        Err(CommandError::new(
            "not_found",
            "that approval request is no longer waiting (the turn ended or was stopped)",
        ))
    }
}

/// Runs a query on the index off the async runtime's threads.
async fn with_index<T: Send + 'static>(
    state: &AppState,
    query: impl FnOnce(&history::Index) -> Result<T, history::HistoryError> + Send + 'static,
) -> CommandResult<Option<T>> {
    let index = state.index.clone();
    let result = tokio::task::spawn_blocking(move || {
        let guard = lock(&index);
        guard.as_ref().map(query).transpose()
    })
    .await??;
    Ok(result)
}

#[tauri::command]
pub async fn list_sessions(
    state: State<'_, AppState>,
    limit: usize,
    offset: usize,
) -> CommandResult<Vec<SessionSummary>> {
    Ok(with_index(&state, move |index| index.list(limit, offset))
        .await?
        .unwrap_or_default())
}

#[tauri::command]
pub async fn search_sessions(
    state: State<'_, AppState>,
    query: String,
    limit: usize,
) -> CommandResult<Vec<SearchHit>> {
    Ok(with_index(&state, move |index| index.search(&query, limit))
        .await?
        .unwrap_or_default())
}

/// The parsed log of a session, from the one-entry cache when the file has not grown.
async fn opened_log(state: &AppState, id: &str) -> CommandResult<Arc<history::SessionLog>> {
    let path = find_session_path(state, id)?;
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    if let Some(opened) = lock(&state.opened).as_ref()
        && opened.id == id
        && opened.size == size
    {
        return Ok(opened.log.clone());
    }
    let log = Arc::new(tokio::task::spawn_blocking(move || history::read_session(&path)).await??);
    *lock(&state.opened) = Some(OpenedLog {
        id: id.to_string(),
        size,
        log: log.clone(),
    });
    Ok(log)
}

/// Opens a past session. With `tail`, only the newest `tail` messages come back (more if a
/// page would otherwise start between a tool call and its results), so a long history costs
/// the window only what it shows.
#[tauri::command]
pub async fn open_session(
    state: State<'_, AppState>,
    id: String,
    tail: Option<usize>,
) -> CommandResult<SessionView> {
    let log = opened_log(&state, &id).await?;
    let total = log.messages.len();
    let first = tail.map_or(0, |tail| {
        page_start(&log.messages, total.saturating_sub(tail))
    });
    Ok(SessionView {
        id: log.header.id.clone(),
        title: log.title.clone(),
        created: log.header.created.to_rfc3339(),
        status: log.status.as_str().to_string(),
        path: log.path.display().to_string(),
        messages: log.messages[first..].to_vec(),
        first_index: first,
        total_messages: total,
        todos: log.todos.clone(),
        skipped_lines: log.skipped_lines,
    })
}

/// Up to `limit` messages before `before` (an index from `open_session` or an earlier page).
#[tauri::command]
pub async fn session_messages(
    state: State<'_, AppState>,
    id: String,
    before: usize,
    limit: usize,
) -> CommandResult<MessagePage> {
    let log = opened_log(&state, &id).await?;
    let total = log.messages.len();
    let end = before.min(total);
    let first = page_start(&log.messages, end.saturating_sub(limit));
    Ok(MessagePage {
        messages: log.messages[first..end].to_vec(),
        first_index: first,
        total_messages: total,
    })
}
