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
    crate::config::ENV_VARS
        .iter()
        .copied()
        .filter(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
        .map(str::to_string)
        .collect()
}

/// Saved settings, and what went wrong reading them, if anything.
pub struct Loaded {
    pub settings: Settings,
    pub warning: Option<String>,
}

fn unusable(path: &Path, problem: &str, kept: &Path) -> String {
    format!(
        "the settings in {} could not be used ({problem}); the file is kept as {}. \
         Defaults are in use: check them in Settings and press Save",
        path.display(),
        kept.display()
    )
}

/// Run once at start-up, before the store opens the file: the store would open unreadable
/// JSON as empty and overwrite it on the next save, so a broken file is moved aside (kept as
/// `settings.json.broken-<time>`) and the returned warning says what to do.
pub fn rescue_unreadable(data_dir: &Path) -> Option<String> {
    let path = data_dir.join(STORE_FILE);
    let bytes = std::fs::read(&path).ok()?;
    let error = serde_json::from_slice::<serde_json::Value>(&bytes).err()?;
    let kept = keep_aside(&path);
    match std::fs::rename(&path, &kept) {
        Ok(()) => Some(unusable(&path, &error.to_string(), &kept)),
        Err(rename) => Some(format!(
            "the settings file {} is not valid JSON ({error}) and could not be moved aside \
             ({rename}); fix or delete it, then restart Talaria",
            path.display()
        )),
    }
}

/// The saved settings, from the store (in memory after its first load). A saved entry that
/// does not fit the settings shape is copied aside and reported, and the defaults are used.
pub fn load_saved<R: Runtime>(app: &AppHandle<R>, data_dir: &Path) -> Loaded {
    let path = data_dir.join(STORE_FILE);
    let Ok(store) = app.store(&path) else {
        return Loaded {
            settings: Settings::default(),
            warning: Some(format!(
                "the settings file {} could not be opened; check the permissions of {}",
                path.display(),
                data_dir.display()
            )),
        };
    };
    match store.get(KEY) {
        None => Loaded {
            settings: Settings::default(),
            warning: None,
        },
        Some(value) => match serde_json::from_value(value) {
            Ok(settings) => Loaded {
                settings,
                warning: None,
            },
            Err(error) => {
                let kept = keep_aside(&path);
                let _ = std::fs::copy(&path, &kept);
                // Drop the bad entry so this is reported once, not on every read.
                store.delete(KEY);
                Loaded {
                    settings: Settings::default(),
                    warning: Some(unusable(&path, &error.to_string(), &kept)),
                }
            }
        },
    }
}

fn keep_aside(path: &Path) -> std::path::PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    path.with_file_name(format!("{STORE_FILE}.broken-{stamp}"))
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

/// Saves history's own settings under their own key (`history`), beside the provider settings.
pub fn save_history<R: Runtime>(
    app: &AppHandle<R>,
    data_dir: &Path,
    settings: &crate::history::storage::HistorySettings,
) -> Result<(), tauri_plugin_store::Error> {
    let store = app.store(data_dir.join(STORE_FILE))?;
    store.set(
        crate::history::storage::HistorySettings::KEY,
        serde_json::to_value(settings)?,
    );
    store.save()
}
