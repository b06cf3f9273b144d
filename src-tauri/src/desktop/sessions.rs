//! The commands of the session browser: list, search, open (only the messages shown), page,
//! rename / pin / archive, delete and restore, export, fork, and the storage view
//! (figures, compressing finished sessions with progress and cancel, its setting). Each one
//! translates to engine calls (`crate::history`) and back.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tauri::ipc::Channel;
use tauri::{AppHandle, Emitter, Manager, State};

use super::error::{CommandError, CommandResult};
use super::state::{AppState, lock};
use crate::cancel::CancellationToken;
use crate::history::export::{self, ExportError, Format};
use crate::history::index::{Archived, ListQuery};
use crate::history::storage::{self, CompactProgress, CompactReport, HistorySettings, Selection};
use crate::history::{self, HistoryError, Index, Record, SearchHit, SessionSummary, trash, view};
use crate::message::Message;
use crate::todo::TodoItem;

/// The event the UI listens to for list changes.
pub const SESSIONS_CHANGED: &str = "sessions-changed";

/// Tells the UI that these sessions changed (it reloads the list).
pub fn announce(app: &AppHandle, ids: Vec<String>) {
    let _ = app.emit(SESSIONS_CHANGED, serde_json::json!({ "ids": ids }));
}

/// The session's log file: known to this run (started or continued here), else from the index,
/// else found by name (the index may still be opening, or not have seen a new log).
pub fn find_session_path(state: &AppState, id: &str) -> CommandResult<PathBuf> {
    if let Some(path) = lock(&state.paths).get(id) {
        return Ok(path.clone());
    }
    let guard = lock(&state.index);
    find_session_path_in(state, guard.as_ref(), id)
}

/// `find_session_path` with the index in hand (the caller holds the index's lock).
fn find_session_path_in(
    state: &AppState,
    index: Option<&Index>,
    id: &str,
) -> CommandResult<PathBuf> {
    if let Some(path) = lock(&state.paths).get(id) {
        return Ok(path.clone());
    }
    let indexed = match index {
        Some(index) => index.find(id)?.map(|summary| PathBuf::from(summary.path)),
        None => None,
    };
    match indexed {
        Some(path) => Ok(path),
        None => history::find_log(&history::sessions_dir(&state.data_dir), id).map_err(|_| {
            CommandError::new(
                "not_found",
                format!("no session {id}: it may have been deleted from the sessions folder"),
            )
        }),
    }
}

/// Runs `query` on the index off the async threads. Before the app's index is open (at start
/// it opens in the background), a connection of its own is used.
async fn with_index<T: Send + 'static>(
    state: &AppState,
    query: impl FnOnce(&Index) -> Result<T, CommandError> + Send + 'static,
) -> CommandResult<T> {
    let shared = state.index.clone();
    let data_dir = state.data_dir.clone();
    tokio::task::spawn_blocking(move || {
        let guard = lock(&shared);
        match guard.as_ref() {
            Some(index) => query(index),
            None => {
                drop(guard);
                query(&Index::open(&data_dir)?)
            }
        }
    })
    .await?
}

/// Which sessions the list shows.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ListFilter {
    /// Not archived; pinned first.
    #[default]
    Active,
    /// Archived only.
    Archived,
}

#[tauri::command]
pub async fn list_sessions(
    state: State<'_, AppState>,
    limit: usize,
    offset: usize,
    filter: Option<ListFilter>,
) -> CommandResult<Vec<SessionSummary>> {
    let archived = match filter.unwrap_or_default() {
        ListFilter::Active => Archived::Hide,
        ListFilter::Archived => Archived::Only,
    };
    with_index(&state, move |index| {
        Ok(index.list_with(ListQuery {
            limit,
            offset,
            archived,
            pinned_first: true,
        })?)
    })
    .await
}

#[tauri::command]
pub async fn search_sessions(
    state: State<'_, AppState>,
    query: String,
    limit: usize,
) -> CommandResult<Vec<SearchHit>> {
    with_index(&state, move |index| Ok(index.search(&query, limit)?)).await
}

/// The session a fork came from, as the chat header links to it.
#[derive(Clone, Debug, Serialize)]
pub struct ForkParent {
    id: String,
    title: String,
    message_index: u64,
    /// False when the original is gone (deleted).
    exists: bool,
}

#[derive(Serialize)]
pub struct SessionView {
    id: String,
    title: String,
    created: String,
    status: String,
    path: String,
    /// The folder the session works in.
    workdir: String,
    /// The messages shown: the newest `tail`, or those around `around`.
    messages: Vec<Message>,
    /// Index of `messages[0]` in the whole conversation; earlier ones come from
    /// `session_messages`, later ones (when opened `around` a message) from `later_messages`.
    first_index: u64,
    total_messages: u64,
    todos: Vec<TodoItem>,
    skipped_lines: u64,
    pinned: bool,
    archived: bool,
    forked_from: Option<ForkParent>,
    /// Tokens of the whole session, as the provider reported them. The last turn's own figure
    /// (`last_turn_usage`) comes with the next turn; the index keeps session totals only.
    usage: Option<crate::event::Usage>,
    last_turn_usage: Option<crate::event::Usage>,
}

#[derive(Serialize)]
pub struct MessagePage {
    messages: Vec<Message>,
    first_index: u64,
    total_messages: u64,
}

impl From<view::Page> for MessagePage {
    fn from(page: view::Page) -> Self {
        Self {
            messages: page.messages,
            first_index: page.first_index,
            total_messages: page.total,
        }
    }
}

/// Messages shown around a search hit: this many before it...
const AROUND_BEFORE: u64 = 40;
/// ...and this many from it on.
const AROUND_AFTER: u64 = 160;

/// The index row of session `id`, brought up to date with its log (only appended bytes are
/// read).
fn fresh(state: &AppState, index: &Index, id: &str) -> Result<SessionSummary, CommandError> {
    // The caller holds the index: look the path up through it, not through the shared one.
    let path = find_session_path_in(state, Some(index), id)?;
    index.refresh_file(&path)?;
    Ok(index
        .get(id)?
        .ok_or_else(|| HistoryError::NotFound(id.to_string()))?)
}

/// Opens a past session reading only what it shows: with `tail`, the newest `tail` messages
/// (a few more so a page never starts with tool results); with `around`, the messages around
/// that one (a search hit); with neither, all of it.
#[tauri::command]
pub async fn open_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    tail: Option<u64>,
    around: Option<u64>,
) -> CommandResult<SessionView> {
    let handle = app.clone();
    with_index(&state, move |index| {
        let session = fresh(&handle.state::<AppState>(), index, &id)?;
        let page = match (around, tail) {
            (Some(at), _) => {
                let end = at.saturating_add(AROUND_AFTER).min(session.message_count);
                view::before(index, &session, end, end - at.min(end) + AROUND_BEFORE)?
            }
            (None, Some(count)) => view::tail(index, &session, count)?,
            (None, None) => view::tail(index, &session, session.message_count)?,
        };
        let forked_from = match &session.forked_from {
            Some(origin) => {
                let parent = index.get(&origin.id)?;
                Some(ForkParent {
                    id: origin.id.clone(),
                    exists: parent.is_some(),
                    title: parent.map(|p| p.title).unwrap_or_default(),
                    message_index: origin.message_index,
                })
            }
            None => None,
        };
        Ok(SessionView {
            todos: view::todos(index, &session)?,
            id: session.id,
            title: session.title,
            created: session.created.to_rfc3339(),
            status: session.status.as_str().to_string(),
            path: session.path,
            workdir: session.workdir,
            messages: page.messages,
            first_index: page.first_index,
            total_messages: page.total,
            skipped_lines: session.skipped_lines,
            pinned: session.pinned,
            archived: session.archived,
            forked_from,
            usage: session.usage,
            last_turn_usage: None,
        })
    })
    .await
}

/// Up to `limit` messages before `before` (an index from `open_session` or an earlier page).
#[tauri::command]
pub async fn session_messages(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    before: u64,
    limit: u64,
) -> CommandResult<MessagePage> {
    let handle = app.clone();
    with_index(&state, move |index| {
        let session = fresh(&handle.state::<AppState>(), index, &id)?;
        Ok(view::before(index, &session, before, limit)?.into())
    })
    .await
}

/// Up to `limit` messages from `from` on (a session opened at a search hit, read forward).
#[tauri::command]
pub async fn later_messages(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    from: u64,
    limit: u64,
) -> CommandResult<MessagePage> {
    let handle = app.clone();
    with_index(&state, move |index| {
        let session = fresh(&handle.state::<AppState>(), index, &id)?;
        let end = from.saturating_add(limit).min(session.message_count);
        Ok(view::before(index, &session, end, end.saturating_sub(from))?.into())
    })
    .await
}

/// Appends a title, pin or archive record to a session's log: through the session's own
/// writer while a turn runs here, else as its writer for a moment (refused, as `busy`, while
/// another process writes it).
async fn annotate(
    app: AppHandle,
    state: &AppState,
    id: String,
    record: Record,
) -> CommandResult<()> {
    if let Some(slot) = state.session(&id) {
        slot.recorder.append_sync(record);
        slot.recorder.flush().await?;
    } else {
        let path = find_session_path(state, &id)?;
        let written =
            tokio::task::spawn_blocking(move || history::metadata::append_record(&path, &record))
                .await??;
        lock(&state.paths)
            .entry(id.clone())
            .and_modify(|known| *known = written.clone());
    }
    refresh_and_announce(app, state, id).await
}

/// Brings the session's row up to date now (the watcher would, a moment later) and tells the UI.
async fn refresh_and_announce(app: AppHandle, state: &AppState, id: String) -> CommandResult<()> {
    let path = find_session_path(state, &id).ok();
    with_index(state, move |index| {
        if let Some(path) = path {
            index.refresh_file(&path)?;
        }
        Ok(())
    })
    .await?;
    announce(&app, vec![id]);
    Ok(())
}

#[tauri::command]
pub async fn rename_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    title: String,
) -> CommandResult<()> {
    let title = title.trim().to_string();
    if title.chars().count() > 200 {
        return Err(CommandError::new(
            "usage",
            "a title has at most 200 characters",
        ));
    }
    annotate(app, &state, id, Record::title(title)).await
}

#[tauri::command]
pub async fn pin_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    pinned: bool,
) -> CommandResult<()> {
    annotate(app, &state, id, Record::pin(pinned)).await
}

#[tauri::command]
pub async fn archive_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    archived: bool,
) -> CommandResult<()> {
    annotate(app, &state, id, Record::archive(archived)).await
}

#[derive(Serialize)]
pub struct Deleted {
    id: String,
    /// How long Undo is offered.
    undo_ms: u64,
}

/// How long the UI offers Undo after a delete.
const UNDO_MS: u64 = 10_000;

/// Moves a session's log to the trash (refused, as `busy`, while a turn of it runs).
#[tauri::command]
pub async fn delete_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<Deleted> {
    if state.session(&id).is_some() {
        return Err(CommandError::new(
            "busy",
            "a reply is still running in this session; stop it before deleting the session",
        ));
    }
    let path = find_session_path(&state, &id)?;
    let data_dir = state.data_dir.clone();
    let moved = path.clone();
    tokio::task::spawn_blocking(move || trash::delete(&data_dir, &moved)).await??;
    lock(&state.paths).remove(&id);
    lock(&state.parked).remove(&id);
    with_index(&state, move |index| {
        // Gone from the sessions folder: the index lets it go.
        index.refresh_file(&path)?;
        Ok(())
    })
    .await?;
    announce(&app, vec![id.clone()]);
    Ok(Deleted {
        id,
        undo_ms: UNDO_MS,
    })
}

/// Brings a deleted session back from the trash.
#[tauri::command]
pub async fn restore_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
) -> CommandResult<()> {
    let data_dir = state.data_dir.clone();
    let lookup = id.clone();
    let path = tokio::task::spawn_blocking(move || trash::restore(&data_dir, &lookup)).await??;
    with_index(&state, move |index| {
        index.refresh_file(&path)?;
        Ok(())
    })
    .await?;
    announce(&app, vec![id]);
    Ok(())
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ExportFormat {
    Markdown,
    Json,
}

/// Writes a session to `path` (chosen in the save dialog) as Markdown or JSON, streamed from
/// its log.
#[tauri::command]
pub async fn export_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    format: ExportFormat,
    path: PathBuf,
) -> CommandResult<()> {
    let handle = app.clone();
    with_index(&state, move |index| {
        let session = fresh(&handle.state::<AppState>(), index, &id)?;
        let format = match format {
            ExportFormat::Markdown => Format::Markdown,
            ExportFormat::Json => Format::Json,
        };
        write_export(index, &session, format, &path)
    })
    .await
}

fn write_export(
    index: &Index,
    session: &SessionSummary,
    format: Format,
    path: &Path,
) -> Result<(), CommandError> {
    let io =
        |e: std::io::Error| CommandError::from(HistoryError::io("write the export to", path, e));
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    match export::write_session(index, session, format, None, &mut out) {
        Ok(()) => {}
        Err(ExportError::History(error)) => return Err(error.into()),
        Err(ExportError::Write(error)) => return Err(io(error)),
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}

#[derive(Serialize)]
pub struct Forked {
    session_id: String,
    path: String,
}

/// Starts a fork of session `id` at user message `message_index`: a new session holding the
/// history before it (the UI then sends the edited message, or the same one to regenerate).
#[tauri::command]
pub async fn fork_session(
    app: AppHandle,
    state: State<'_, AppState>,
    id: String,
    message_index: u64,
) -> CommandResult<Forked> {
    let source = find_session_path(&state, &id)?;
    let sessions = history::sessions_dir(&state.data_dir);
    let (header, path) =
        tokio::task::spawn_blocking(move || history::fork::fork(&sessions, &source, message_index))
            .await??;
    lock(&state.paths).insert(header.id.clone(), path.clone());
    let indexed = path.clone();
    with_index(&state, move |index| {
        index.refresh_file(&indexed)?;
        Ok(())
    })
    .await?;
    announce(&app, vec![header.id.clone()]);
    Ok(Forked {
        session_id: header.id,
        path: path.display().to_string(),
    })
}

#[derive(Serialize)]
pub struct Storage {
    stats: storage::StorageStats,
    settings: HistorySettings,
    /// A compression is running.
    compacting: bool,
}

#[tauri::command]
pub async fn storage_stats(state: State<'_, AppState>) -> CommandResult<Storage> {
    let data_dir = state.data_dir.clone();
    let stats = with_index(&state, move |index| {
        index.refresh_all(&|_| {})?;
        Ok(storage::stats(&data_dir, index)?)
    })
    .await?;
    Ok(Storage {
        stats,
        settings: HistorySettings::load(&state.data_dir),
        compacting: lock(&state.compaction).is_some(),
    })
}

/// Compresses every finished session now, reporting progress on `on_progress`; stopped by
/// `cancel_compaction`. One compression at a time.
#[tauri::command]
pub async fn compact_sessions(
    app: AppHandle,
    state: State<'_, AppState>,
    on_progress: Channel<CompactProgress>,
) -> CommandResult<CompactReport> {
    let token = CancellationToken::new();
    {
        let mut running = lock(&state.compaction);
        if running.is_some() {
            return Err(CommandError::new(
                "busy",
                "sessions are being compressed already",
            ));
        }
        *running = Some(token.clone());
    }
    let data_dir = state.data_dir.clone();
    let stop = token.clone();
    let report = tokio::task::spawn_blocking(move || {
        // A connection of its own: the list and search stay responsive meanwhile.
        let index = Index::open(&data_dir)?;
        storage::compact(
            &index,
            &Selection::All,
            &|progress| {
                let _ = on_progress.send(progress.clone());
            },
            &|| stop.is_cancelled(),
        )
    })
    .await;
    *lock(&state.compaction) = None;
    let report = report??;
    announce(&app, report.compressed.clone());
    Ok(report)
}

#[tauri::command]
pub fn cancel_compaction(state: State<'_, AppState>) -> CommandResult<()> {
    if let Some(token) = lock(&state.compaction).as_ref() {
        token.cancel();
    }
    Ok(())
}

/// Saves history's own settings (under their own key of the settings file).
#[tauri::command]
pub fn save_history_settings(
    app: AppHandle,
    state: State<'_, AppState>,
    settings: HistorySettings,
) -> CommandResult<HistorySettings> {
    if settings.compress_after_days > HistorySettings::MAX_DAYS {
        return Err(CommandError::new(
            "config",
            format!(
                "compress_after_days: at most {} days (0 turns compression of idle sessions off)",
                HistorySettings::MAX_DAYS
            ),
        ));
    }
    super::settings::save_history(&app, &state.data_dir, &settings)?;
    Ok(HistorySettings::load(&state.data_dir))
}

/// How the session list follows the folder (live events, or polling and why).
#[tauri::command]
pub fn index_health(state: State<'_, AppState>) -> Option<history::WatchHealth> {
    lock(&state.index_health).clone()
}

/// Before the first tidy-up: start-up has other work to do first.
const TIDY_DELAY: std::time::Duration = std::time::Duration::from_secs(30);
/// Between tidy-ups.
const TIDY_EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 60 * 60);

/// Runs on the index thread for the life of the app: empties the trash of sessions deleted
/// more than 30 days ago, and compresses finished sessions idle for longer than the setting
/// (unless a compression the user started is running).
pub fn keep_tidy(app: &AppHandle) {
    std::thread::sleep(TIDY_DELAY);
    loop {
        let state = app.state::<AppState>();
        trash::empty_expired(&state.data_dir, trash::KEEP);
        let idle = HistorySettings::load(&state.data_dir).idle_limit();
        let token = CancellationToken::new();
        let claimed = {
            let mut running = lock(&state.compaction);
            let free = running.is_none();
            if free {
                *running = Some(token.clone());
            }
            free
        };
        if let (Some(idle), true) = (idle, claimed) {
            let done = Index::open(&state.data_dir).and_then(|index| {
                storage::compact(&index, &Selection::IdleFor(idle), &|_| {}, &|| {
                    token.is_cancelled()
                })
            });
            match done {
                Ok(report) if !report.compressed.is_empty() => announce(app, report.compressed),
                Ok(_) => {}
                Err(error) => tracing::warn!("compressing idle sessions failed: {error}"),
            }
        }
        if claimed {
            *lock(&state.compaction) = None;
        }
        std::thread::sleep(TIDY_EVERY);
    }
}
