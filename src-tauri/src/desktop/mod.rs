//! The Tauri adapter: commands, state, settings and the window's desktop manners (one
//! instance, remembered place, clean quitting). No engine logic of its own.

mod about;
mod commands;
mod error;
mod quit;
mod settings;
mod state;
mod window;

use tauri::{Emitter, Manager, RunEvent, WindowEvent};

use crate::history;
use state::{AppState, lock};

pub fn run() {
    crate::logging::init("info");
    history::install_panic_flush();
    let data_dir = crate::config::data_dir();
    // The folder must exist for the single-instance name to be the same however it is spelled.
    if let Err(error) = std::fs::create_dir_all(&data_dir) {
        tracing::warn!(
            "the data folder {} cannot be created: {error}",
            data_dir.display()
        );
    }
    let context = tauri::generate_context!();
    let bus_id = crate::instance::bus_id(&context.config().identifier, &data_dir);
    let builder = tauri::Builder::default()
        // First: a second launch must hand over before anything else starts.
        .plugin(
            tauri_plugin_single_instance::Builder::new()
                .dbus_id(bus_id)
                .callback(|app, _args, _cwd| window::bring_to_front(app))
                .build(),
        )
        .plugin(tauri_plugin_store::Builder::new().build())
        .plugin(tauri_plugin_opener::init())
        .manage(AppState::new(data_dir))
        .setup(|app| {
            let handle = app.handle().clone();
            let state = handle.state::<AppState>();
            if let Some(warning) = settings::rescue_unreadable(&state.data_dir) {
                *lock(&state.settings_warning) = Some(warning);
            }
            window::open_main(&handle, &state.data_dir)?;
            quit::on_display_loss(&handle);
            open_index_in_background(handle.clone());
            tauri::async_runtime::spawn(quit::on_signals(handle));
            Ok(())
        })
        .on_window_event(|window, event| match event {
            WindowEvent::CloseRequested { .. } => quit::wind_down(window.app_handle(), true),
            WindowEvent::Destroyed => quit::wind_down(window.app_handle(), false),
            WindowEvent::Moved(_) | WindowEvent::Resized(_) => window::track(window, event),
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
            about::about,
            about::open_data_folder,
            quit::quit_app,
        ]);
    let app = match builder.build(context) {
        Ok(app) => app,
        Err(error) => {
            tracing::error!("the window could not start: {error}");
            std::process::exit(1);
        }
    };
    app.run(|handle, event| {
        if let RunEvent::Exit = event {
            quit::wind_down(handle, false);
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
