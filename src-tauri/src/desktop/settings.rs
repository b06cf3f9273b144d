//! Settings live in tauri-plugin-store (one JSON file in the data dir); the environment
//! overrides them for this run without being saved.

use std::path::Path;

use tauri::{AppHandle, Runtime};
use tauri_plugin_store::StoreExt;

use crate::config::Settings;

const STORE_FILE: &str = "settings.json";
const KEY: &str = "settings";

/// The TALARIA_* variables that are set, so the settings screen can say what overrides it.
pub fn env_overrides() -> Vec<String> {
    [
        "TALARIA_PROVIDER",
        "TALARIA_BASE_URL",
        "TALARIA_MODEL",
        "TALARIA_API_KEY",
        "TALARIA_WORKDIR",
        "TALARIA_TIMEOUT_S",
        "TALARIA_STALL_TIMEOUT_S",
    ]
    .into_iter()
    .filter(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
    .map(str::to_string)
    .collect()
}

/// The saved settings; a missing or unreadable entry gives the defaults (a broken settings
/// file must not stop the app from opening — the screen shows the defaults to fix).
pub fn load_saved<R: Runtime>(app: &AppHandle<R>, data_dir: &Path) -> Settings {
    let Ok(store) = app.store(data_dir.join(STORE_FILE)) else {
        return Settings::default();
    };
    store
        .get(KEY)
        .and_then(|value| serde_json::from_value(value).ok())
        .unwrap_or_default()
}

pub fn save<R: Runtime>(
    app: &AppHandle<R>,
    data_dir: &Path,
    settings: &Settings,
) -> Result<(), tauri_plugin_store::Error> {
    let store = app.store(data_dir.join(STORE_FILE))?;
    store.set(KEY, serde_json::to_value(settings)?);
    store.save()
}
