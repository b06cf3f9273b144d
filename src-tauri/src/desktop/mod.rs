//! The Tauri adapter: commands, state, settings and the window's desktop manners (one
//! instance, remembered place, clean quitting). No engine logic of its own.

mod about;
mod commands;
mod error;
mod mcp;
mod navigation;
mod preferences;
mod quit;
mod sessions;
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
    if let Err(error) = crate::private::private_dir(&data_dir) {
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
        .plugin(tauri_plugin_dialog::init())
        // Links in replies open in the system browser (the UI asks; the capability scopes it).
        .plugin(
            tauri_plugin_opener::Builder::new()
                .open_js_links_on_click(false)
                .build(),
        )
        .plugin(navigation::guard())
        .manage(AppState::new(data_dir))
        .setup(|app| {
            let handle = app.handle().clone();
            let state = handle.state::<AppState>();
            if let Some(warning) = settings::prepare(&state.data_dir) {
                *lock(&state.settings_warning) = Some(warning);
            }
            window::open_main(&handle, &state.data_dir)?;
            quit::on_display_loss(&handle);
            // The keyring may take a D-Bus round trip (or time out): find out in the background.
            let probing = handle.clone();
            std::thread::spawn(move || {
                preferences::key_storage(&probing.state::<AppState>());
            });
            open_index_in_background(handle.clone());
            mcp::start(&handle);
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
            preferences::app_status,
            preferences::get_settings,
            preferences::save_settings,
            preferences::choose_workdir,
            preferences::check_workdir,
            preferences::detect_local_servers,
            preferences::list_models,
            commands::start_turn,
            commands::cancel_turn,
            commands::respond_approval,
            sessions::list_sessions,
            sessions::search_sessions,
            sessions::open_session,
            sessions::session_messages,
            sessions::later_messages,
            sessions::rename_session,
            sessions::pin_session,
            sessions::archive_session,
            sessions::delete_session,
            sessions::restore_session,
            sessions::export_session,
            sessions::fork_session,
            sessions::storage_stats,
            sessions::compact_sessions,
            sessions::cancel_compaction,
            sessions::save_history_settings,
            sessions::index_health,
            mcp::mcp_servers,
            mcp::mcp_set_enabled,
            mcp::mcp_set_trusted,
            mcp::mcp_restart,
            mcp::mcp_save_server,
            mcp::mcp_remove_server,
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
/// sessions folder so sessions written by other processes show up; says so when it can only
/// poll. Then keeps the history tidy: the trash emptied of what is older than 30 days, and
/// finished sessions idle for longer than the setting compressed.
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
        sessions::announce(&app, Vec::new());
        let notify_app = app.clone();
        let progress_app = app.clone();
        let health_app = app.clone();
        let mode = match std::env::var("TALARIA_WATCH").as_deref() {
            Ok("poll") => history::WatchMode::Poll(history::watcher::POLL_INTERVAL),
            _ => history::WatchMode::Events,
        };
        let watch = history::Watcher::start_with(
            &data_dir,
            mode,
            history::Callbacks {
                on_change: Box::new(move |ids| sessions::announce(&notify_app, ids)),
                on_progress: Box::new(move |progress| {
                    let payload =
                        serde_json::json!({ "done": progress.done, "total": progress.total });
                    let _ = progress_app.emit("index-progress", payload);
                }),
                on_health: Box::new(move |health| {
                    *lock(&health_app.state::<AppState>().index_health) = Some(health.clone());
                    let _ = health_app.emit("index-health", health);
                }),
            },
        );
        match watch {
            // The watcher lives as long as the app.
            Ok(watcher) => std::mem::forget(watcher),
            Err(error) => {
                tracing::warn!("the session list will not follow the folder: {error}");
                let health = history::WatchHealth::Polling {
                    reason: error.to_string(),
                    every_ms: 0,
                };
                *lock(&state.index_health) = Some(health.clone());
                let _ = app.emit("index-health", health);
            }
        }
        sessions::keep_tidy(&app);
    });
}
