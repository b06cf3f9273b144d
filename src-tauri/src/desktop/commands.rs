//! The commands the UI invokes. Each one translates to engine calls and back; the logic
//! lives in the engine modules.

use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tauri::ipc::Channel;
use tauri::{AppHandle, Manager, State};

use super::error::{CommandError, CommandResult};
use super::preferences::{checked_workdir, effective_settings};
use super::sessions::find_session_path;
use super::state::{AppState, ChannelSink, ChannelSlot, SessionSlot, lock};
use crate::agent::{Agent, ApprovalBroker, ApprovalPolicy, Decision, SafetyOptions, SessionGrants};
use crate::cancel::CancellationToken;
use crate::config::Settings;
use crate::event::{Event, EventSink};
use crate::history::{self, Header, Recorder};

#[derive(Serialize)]
pub struct StartedTurn {
    session_id: String,
    path: String,
    /// The folder the session works in.
    workdir: String,
}

const BUSY: &str = "a reply is still running in this session; stop it or wait for it to finish";

/// The slot for a turn, claimed for it (its `running` token set) under the sessions lock, so a
/// slot being released after its last turn can never be claimed and dropped at once. A session
/// not open here is loaded from its log (the truth: another process may have continued it).
fn claim_slot(
    state: &AppState,
    settings: Settings,
    session_id: Option<String>,
    workdir: Option<String>,
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
                    tracing::info!(session = %id, "reading the conversation from its log");
                    let log = history::read_session(&path)?;
                    // A session goes on in the folder it was started in.
                    let workdir = crate::safety::check_workdir(
                        Path::new(&log.header.workdir),
                        &state.data_dir,
                    )
                    .map_err(|error| {
                        CommandError::new(
                            "config",
                            format!(
                                "this session worked in {}, which cannot be used now ({error}); start a new session instead",
                                log.header.workdir
                            ),
                        )
                    })?;
                    let mut agent =
                        Agent::from_history(settings, workdir, log, Some(recorder.clone()))?;
                    agent.set_safety_options(safety_options(state));
                    if let Some(grants) = lock(&state.grants).get(&id) {
                        agent.restore_grants(grants);
                    }
                    agent
                }
            };
            (recorder, agent)
        }
        None => {
            let workdir = match workdir.as_deref().map(str::trim).filter(|w| !w.is_empty()) {
                Some(dir) => crate::safety::check_workdir(Path::new(dir), &state.data_dir)?,
                None => checked_workdir(&settings, &state.data_dir)?,
            };
            let header = Header::new(
                settings.provider.as_str(),
                settings.model.clone(),
                workdir.display().to_string(),
            );
            let recorder =
                Recorder::create(&history::sessions_dir(&state.data_dir), header, errors)?;
            let mut agent = Agent::new(settings, workdir, Some(recorder.clone()))?;
            agent.set_safety_options(safety_options(state));
            (recorder, agent)
        }
    };
    let slot = Arc::new(SessionSlot {
        id: recorder.session_id().to_string(),
        path: recorder.path().to_path_buf(),
        recorder: recorder.clone(),
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

fn safety_options(state: &AppState) -> SafetyOptions {
    SafetyOptions {
        data_dir: state.data_dir.clone(),
        no_sandbox: false,
        allow_secrets: false,
    }
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

#[tauri::command]
pub async fn start_turn(
    app: AppHandle,
    session_id: Option<String>,
    prompt: String,
    on_event: Channel<Event>,
    workdir: Option<String>,
) -> CommandResult<StartedTurn> {
    if prompt.trim().is_empty() {
        return Err(CommandError::new("usage", "type a message first"));
    }
    let token = CancellationToken::new();
    // Settings (the keyring) and a session's log are read off the async threads.
    let (slot, settings) = {
        let (app, token) = (app.clone(), token.clone());
        tokio::task::spawn_blocking(move || {
            let state = app.state::<AppState>();
            let settings = effective_settings(&app, &state)?;
            let slot = claim_slot(&state, settings.clone(), session_id, workdir, &token)?;
            Ok::<_, CommandError>((slot, settings))
        })
        .await??
    };
    slot.channel.set(on_event.clone());
    let started = StartedTurn {
        session_id: slot.id.clone(),
        path: slot.path.display().to_string(),
        workdir: slot.agent.lock().await.workdir().display().to_string(),
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
                let grants = agent.grants();
                if grants != SessionGrants::default() {
                    lock(&app.state::<AppState>().grants).insert(slot.id.clone(), grants);
                }
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
    decision: Option<Decision>,
) -> CommandResult<()> {
    // `approved` alone means once or no; `decision` says more (allow for the session).
    let decision = match decision {
        Some(decision) => decision,
        None if approved => Decision::Once,
        None => Decision::Deny,
    };
    let answered = state
        .session(&session_id)
        .is_some_and(|slot| slot.approvals.respond(&id, decision));
    if answered {
        Ok(())
    } else {
        Err(CommandError::new(
            "not_found",
            "that approval request is no longer waiting (the turn ended or was stopped)",
        ))
    }
}
