/// The app's own commands. Each one gets an `allow-<name>` permission, and the window may call
/// only those its capability (src-tauri/capabilities/default.json) lists; a test checks that
/// this list, the capability and the registered handlers agree.
const COMMANDS: &[&str] = &[
    "app_status",
    "get_settings",
    "save_settings",
    "choose_workdir",
    "check_workdir",
    "detect_local_servers",
    "list_models",
    "start_turn",
    "cancel_turn",
    "respond_approval",
    "list_sessions",
    "search_sessions",
    "open_session",
    "session_messages",
    "later_messages",
    "rename_session",
    "pin_session",
    "archive_session",
    "delete_session",
    "restore_session",
    "export_session",
    "fork_session",
    "storage_stats",
    "compact_sessions",
    "cancel_compaction",
    "save_history_settings",
    "index_health",
    "mcp_servers",
    "mcp_set_enabled",
    "mcp_set_trusted",
    "mcp_restart",
    "mcp_save_server",
    "mcp_remove_server",
    "about",
    "open_data_folder",
    "quit_app",
];

fn main() {
    let attributes = tauri_build::Attributes::new()
        .capabilities_path_pattern("./src-tauri/capabilities/**/*")
        .app_manifest(tauri_build::AppManifest::new().commands(COMMANDS));
    if let Err(error) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri build step failed: {error:#}");
        std::process::exit(1);
    }
}
