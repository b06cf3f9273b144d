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

/// The saved settings. A broken settings file must not stop the app from opening, and must
/// not be lost: it is kept beside as `settings.json.broken-<time>`, the defaults are used, and
/// the warning tells the user to check and save them.
pub fn load_saved<R: Runtime>(app: &AppHandle<R>, data_dir: &Path) -> Loaded {
    let path = data_dir.join(STORE_FILE);
    let warn = |problem: String, kept: &Path| Loaded {
        settings: Settings::default(),
        warning: Some(format!(
            "the settings in {} could not be used ({problem}); the file is kept as {}. \
             Defaults are in use: check them in Settings and press Save",
            path.display(),
            kept.display()
        )),
    };
    // The store opens an unreadable file as empty and would overwrite it on the next save,
    // so check the JSON first and move a broken file out of its way.
    if let Ok(bytes) = std::fs::read(&path)
        && let Err(error) = serde_json::from_slice::<serde_json::Value>(&bytes)
    {
        let kept = keep_aside(&path);
        if std::fs::rename(&path, &kept).is_ok() {
            return warn(error.to_string(), &kept);
        }
    }
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
                warn(error.to_string(), &kept)
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
