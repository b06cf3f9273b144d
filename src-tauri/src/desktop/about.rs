//! The About box: which Talaria this is, where it keeps its data, and opening that folder.

use serde::Serialize;
use tauri::{AppHandle, State};
use tauri_plugin_opener::OpenerExt;

use super::error::{CommandError, CommandResult};
use super::state::AppState;

#[derive(Serialize)]
pub struct About {
    version: String,
    data_dir: String,
    /// Set when TALARIA_DATA_DIR chose the data folder.
    data_dir_from_env: bool,
}

#[tauri::command]
pub fn about(app: AppHandle, state: State<'_, AppState>) -> About {
    About {
        version: app.package_info().version.to_string(),
        data_dir: state.data_dir.display().to_string(),
        data_dir_from_env: std::env::var_os("TALARIA_DATA_DIR").is_some_and(|v| !v.is_empty()),
    }
}

/// Opens the data folder in the desktop's file manager (xdg-open on Linux).
#[tauri::command]
pub async fn open_data_folder(app: AppHandle, state: State<'_, AppState>) -> CommandResult<()> {
    let folder = state.data_dir.clone();
    // The opener waits a moment to see whether the launcher failed: not on the UI thread.
    tauri::async_runtime::spawn_blocking(move || {
        std::fs::create_dir_all(&folder).map_err(|error| {
            CommandError::new(
                "io",
                format!(
                    "the data folder {} cannot be created: {error}",
                    folder.display()
                ),
            )
        })?;
        app.opener()
            .open_path(folder.display().to_string(), None::<&str>)
            .map_err(|error| {
                CommandError::new(
                    "io",
                    format!(
                        "no file manager could open {} ({error}); open it by hand, or install \
                         xdg-utils",
                        folder.display()
                    ),
                )
            })
    })
    .await?
}
