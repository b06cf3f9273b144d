//! Settings live in tauri-plugin-store (one JSON file in the data dir, mode 0600); the API key
//! lives in the system keyring when there is one. The environment overrides settings for this
//! run without ever being saved: the form gets saved values and environment values apart.

use std::path::Path;

use serde::Serialize;
use tauri::{AppHandle, Runtime};
use tauri_plugin_store::StoreExt;

use super::error::{CommandError, CommandResult};
use crate::config::{EnvOverride, Settings, env_overrides};
use crate::keystore::{self, KeyStorage};

const STORE_FILE: &str = "settings.json";
const KEY: &str = "settings";

/// Saved settings, and what went wrong reading them, if anything.
pub struct Loaded {
    pub settings: Settings,
    pub warning: Option<String>,
}

/// What the Settings form shows.
#[derive(Serialize)]
pub struct SettingsView {
    /// What is saved (the API key left out: see `key`).
    pub saved: Settings,
    /// Settings the environment decides for this run, shown read-only.
    pub env: Vec<EnvOverride>,
    pub key: KeyView,
    pub sandbox: SandboxView,
    pub data_dir: String,
    /// Where "Create a Talaria folder" would make one.
    pub suggested_workdir: String,
}

#[derive(Serialize)]
pub struct KeyView {
    /// Where a key is (or would be) stored.
    pub storage: KeyStorage,
    /// A key is saved for the saved provider: its masked form.
    pub saved: Option<String>,
}

#[derive(Serialize)]
pub struct SandboxView {
    pub available: bool,
    /// Why there is none.
    pub reason: Option<String>,
}

/// The environment's overrides for this run.
pub fn overrides(provider: crate::config::ProviderKind) -> Vec<EnvOverride> {
    env_overrides(
        |name| std::env::var(name).ok().filter(|v| !v.is_empty()),
        provider,
    )
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
/// `settings.json.broken-<time>`) and the returned warning says what to do. Also makes the
/// data folder and the file private.
pub fn prepare(data_dir: &Path) -> Option<String> {
    if let Err(error) = crate::private::private_dir(data_dir) {
        return Some(format!(
            "the data folder {} could not be made private ({error}); check its permissions",
            data_dir.display()
        ));
    }
    let path = data_dir.join(STORE_FILE);
    let _ = crate::private::private_file(&path);
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

/// Writes `settings` as they are (the caller has taken the environment out).
pub fn write<R: Runtime>(
    app: &AppHandle<R>,
    data_dir: &Path,
    settings: &Settings,
) -> CommandResult<()> {
    let path = data_dir.join(STORE_FILE);
    // Created 0600 before the store writes it (the store keeps an existing file's mode).
    crate::private::create_private_file(&path, b"{}").map_err(|error| {
        CommandError::new(
            "io",
            format!(
                "the settings file {} could not be created: {error}",
                path.display()
            ),
        )
    })?;
    let store = app.store(&path)?;
    store.set(
        KEY,
        serde_json::to_value(settings).map_err(tauri_plugin_store::Error::from)?,
    );
    store.save()?;
    let _ = crate::private::private_file(&path);
    Ok(())
}

/// The key to store: where it goes, and what the settings file keeps.
pub enum KeyChange {
    Keep,
    Set(String),
    Remove,
}

impl KeyChange {
    pub fn from_form(api_key: Option<String>) -> KeyChange {
        match api_key.map(|k| k.trim().to_string()) {
            None => KeyChange::Keep,
            Some(key) if key.is_empty() => KeyChange::Remove,
            Some(key) => KeyChange::Set(key),
        }
    }
}

/// Applies a key change for `provider`: to the keyring when `storage` is the keyring, else
/// into `settings.api_key` (the file). `previous_file_key` is what the file held before.
pub fn apply_key(
    storage: KeyStorage,
    provider: &str,
    change: KeyChange,
    previous_file_key: &str,
    settings: &mut Settings,
) -> CommandResult<()> {
    match (storage, change) {
        (KeyStorage::Keyring, KeyChange::Set(key)) => {
            keystore::save(provider, &key)?;
            settings.api_key.clear();
        }
        (KeyStorage::Keyring, KeyChange::Remove) => {
            keystore::delete(provider)?;
            settings.api_key.clear();
        }
        // A key still in the file from before the keyring was found moves there.
        (KeyStorage::Keyring, KeyChange::Keep) => {
            if !previous_file_key.is_empty() {
                keystore::save(provider, previous_file_key)?;
            }
            settings.api_key.clear();
        }
        (KeyStorage::File, KeyChange::Set(key)) => settings.api_key = key,
        (KeyStorage::File, KeyChange::Remove) => settings.api_key.clear(),
        (KeyStorage::File, KeyChange::Keep) => settings.api_key = previous_file_key.to_string(),
    }
    Ok(())
}

/// Saves history's own settings under their own key (`history`), beside the provider settings.
pub fn save_history<R: Runtime>(
    app: &AppHandle<R>,
    data_dir: &Path,
    settings: &crate::history::storage::HistorySettings,
) -> Result<(), tauri_plugin_store::Error> {
    let path = data_dir.join(STORE_FILE);
    // Created 0600 before the store writes it (the store keeps an existing file's mode).
    crate::private::create_private_file(&path, b"{}")?;
    let store = app.store(&path)?;
    store.set(
        crate::history::storage::HistorySettings::KEY,
        serde_json::to_value(settings)?,
    );
    store.save()?;
    let _ = crate::private::private_file(&path);
    Ok(())
}
