//! The Tauri adapter: commands, state and settings. No engine logic of its own.

mod commands;
mod error;
mod mcp;
mod settings;
mod state;

use std::time::Duration;

use tauri::{Emitter, Manager, RunEvent, WindowEvent};

use crate::history;
use state::{AppState, lock};

/// How long exit paths wait for the session logs to reach the disk.
const EXIT_FLUSH: Duration = Duration::from_secs(3);
/// How long exit paths wait for cancelled turns to record how they ended.
const EXIT_STOP: Duration = Duration::from_secs(1);

pub fn run() {
    crate::logging::init("info");
    history::install_panic_flush();
    let data_dir = crate::config::data_dir();
    let builder = tauri::Builder::default()
        .plugin(tauri_plugin_store::Builder::new().build())
        .manage(AppState::new(data_dir))
        .setup(|app| {
            let handle = app.handle().clone();
            let state = handle.state::<AppState>();
            if let Some(warning) = settings::rescue_unreadable(&state.data_dir) {
                *lock(&state.settings_warning) = Some(warning);
            }
            open_index_in_background(handle.clone());
            mcp::start(&handle);
            tauri::async_runtime::spawn(flush_on_signals(handle));
            Ok(())
        })
        .on_window_event(|window, event| match event {
            WindowEvent::CloseRequested { .. } | WindowEvent::Destroyed => {
                let state = window.app_handle().state::<AppState>();
                state.stop_all(EXIT_STOP);
                state.stop_mcp();
                history::flush_all_blocking(EXIT_FLUSH);
            }
            _ => {}
        })
        .invoke_handler(tauri::generate_handler![
            commands::app_status,
            commands::get_settings,
            commands::save_settings,
            commands::detect_local_servers,
            commands::start_turn,
            commands::cancel_turn,
            commands::respond_approval,
            commands::list_sessions,
            commands::search_sessions,
            commands::open_session,
            commands::session_messages,
            mcp::mcp_servers,
            mcp::mcp_set_enabled,
            mcp::mcp_set_trusted,
            mcp::mcp_restart,
            mcp::mcp_save_server,
            mcp::mcp_remove_server,
        ]);
    let app = match builder.build(tauri::generate_context!()) {
        Ok(app) => app,
        Err(error) => {
            tracing::error!("the window could not start: {error}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            let state = handle.state::<AppState>();
            state.stop_all(EXIT_STOP);
            state.stop_mcp();
            history::flush_all_blocking(EXIT_FLUSH);
        }
    });
}

/// Opens (and if needed rebuilds, in the background) the history index, then watches the
/// sessions folder so sessions written by other processes show up.
fn open_index_in_background(app: tauri::AppHandle) {
    std::thread::spawn(move || {
        let state = app.state::<AppState>();
        let data_dir = state.data_dir.clone();
        match history::Index::open(&data_dir) {
            Ok(index) => *lock(&state.index) = Some(index),
            Err(error) => {
                tracing::error!("the session index could not open: {error}");
                return;
            }
        }
        let _ = app.emit("sessions-changed", serde_json::json!({ "ids": [] }));
        let notify_app = app.clone();
        let progress_app = app.clone();
        let watch = history::Watcher::start_with_progress(
            &data_dir,
            move |ids| {
                let _ = notify_app.emit("sessions-changed", serde_json::json!({ "ids": ids }));
            },
            move |progress| {
                let payload = serde_json::json!({ "done": progress.done, "total": progress.total });
                let _ = progress_app.emit("index-progress", payload);
            },
        );
        match watch {
            // The watcher lives as long as the app.
            Ok(watcher) => std::mem::forget(watcher),
            Err(error) => tracing::warn!("live session updates are off: {error}"),
        }
    });
}

/// SIGINT / SIGTERM: stop running turns, write the logs, then quit.
async fn flush_on_signals(app: tauri::AppHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    let stopping = app.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let state = stopping.state::<AppState>();
        state.stop_all(EXIT_STOP);
        state.stop_mcp();
        history::flush_all_blocking(EXIT_FLUSH);
    })
    .await;
    app.exit(130);
}
