//! The commands behind the Settings page and the Welcome card. Settings, key storage and the
//! working-folder rules live in the engine (`config`, `keystore`, `safety`); this only moves
//! values between them, the store and the UI. Anything that may block (the keyring, the disk)
//! runs on the blocking pool: sync commands would run on the window's main thread.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tauri::{AppHandle, Manager};

use super::error::{CommandError, CommandResult};
use super::settings::{self, KeyChange, KeyView, SandboxView, SettingsView};
use super::state::{AppState, lock};
use crate::cancel::CancellationToken;
use crate::config::Settings;
use crate::event::ErrorKind;
use crate::keystore::{self, KeyStorage};
use crate::local_servers::{self, LocalServer};
use crate::provider::{ModelClient, ModelError, ModelInfo};

#[derive(Serialize)]
pub struct AppStatus {
    configured: bool,
    /// A model is set up (the Welcome card's first step).
    model_ready: bool,
    /// A usable working folder is chosen (its second step).
    workdir_ready: bool,
    workdir: String,
    /// Why the chosen folder cannot be used, when it cannot.
    workdir_problem: Option<String>,
    /// The user's home folder, so paths can be shown as `~/…`.
    home: String,
    data_dir: String,
    provider: String,
    model: String,
    base_url: String,
    env_overrides: Vec<String>,
    approval_level: &'static str,
    sandbox: SandboxView,
    key_storage: KeyStorage,
    /// Set when the saved settings could not be read; says what to do.
    settings_warning: Option<String>,
    /// Set when mcp.json could not be read; says what happened and what to do.
    mcp_warning: Option<String>,
}

/// The key storage in use, probed once (it may take a D-Bus round trip).
pub fn key_storage(state: &AppState) -> KeyStorage {
    *state.key_storage.get_or_init(keystore::probe)
}

/// The API key for `provider`: the keyring's (remembered after the first read), else the
/// settings file's.
fn saved_key(state: &AppState, provider: &str, file_key: &str) -> String {
    if !file_key.is_empty() || key_storage(state) == KeyStorage::File {
        return file_key.to_string();
    }
    if let Some(known) = lock(&state.keys).get(provider) {
        return known.clone().unwrap_or_default();
    }
    match keystore::load(provider) {
        Ok(key) => {
            lock(&state.keys).insert(provider.to_string(), key.clone());
            key.unwrap_or_default()
        }
        Err(error) => {
            tracing::warn!("the API key could not be read from the keyring: {error}");
            String::new()
        }
    }
}

/// Saved settings with the key and the environment laid over them: what a new turn uses.
/// Blocking (the keyring): call it off the async threads.
pub fn effective_settings(app: &AppHandle, state: &AppState) -> CommandResult<Settings> {
    let loaded = settings::load_saved(app, &state.data_dir);
    if let Some(warning) = loaded.warning {
        // Kept for app_status: the first reader moves a broken file aside, later ones see none.
        *lock(&state.settings_warning) = Some(warning);
    }
    let mut settings = loaded.settings;
    settings.api_key = saved_key(state, settings.provider.as_str(), &settings.api_key);
    settings.apply_env()?;
    Ok(settings)
}

/// The working folder of `settings`, checked: never home, `/` or the data folder.
pub fn checked_workdir(settings: &Settings, data_dir: &Path) -> CommandResult<PathBuf> {
    let chosen = settings.workdir.trim();
    if chosen.is_empty() {
        return Err(crate::config::ConfigError::NoWorkdir.into());
    }
    Ok(crate::safety::check_workdir(&expand(chosen), data_dir)?)
}

fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix('~'), dirs::home_dir()) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            home.join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

/// Runs blocking settings work with the app's state.
async fn blocking<T: Send + 'static>(
    app: AppHandle,
    work: impl FnOnce(&AppHandle, &AppState) -> CommandResult<T> + Send + 'static,
) -> CommandResult<T> {
    tokio::task::spawn_blocking(move || work(&app, &app.state::<AppState>())).await?
}

fn status(app: &AppHandle, state: &AppState) -> CommandResult<AppStatus> {
    let settings = effective_settings(app, state)?;
    let settings_warning = lock(&state.settings_warning).clone();
    let model_ready = settings.validate().is_ok();
    let workdir = checked_workdir(&settings, &state.data_dir);
    let sandbox = crate::safety::landlock_abi();
    Ok(AppStatus {
        configured: model_ready && workdir.is_ok(),
        model_ready,
        workdir_ready: workdir.is_ok(),
        workdir: match &workdir {
            Ok(dir) => dir.display().to_string(),
            Err(_) => settings.workdir.clone(),
        },
        workdir_problem: workdir
            .err()
            .filter(|_| !settings.workdir.trim().is_empty())
            .map(|e| e.message),
        home: dirs::home_dir()
            .map(|h| h.display().to_string())
            .unwrap_or_default(),
        data_dir: state.data_dir.display().to_string(),
        provider: settings.provider.as_str().to_string(),
        model: settings.model.clone(),
        base_url: settings.effective_base_url(),
        env_overrides: settings::overrides(settings.provider)
            .into_iter()
            .map(|o| o.var)
            .collect(),
        approval_level: settings.approval_level.as_str(),
        sandbox: SandboxView {
            available: sandbox.is_ok(),
            reason: sandbox.err(),
        },
        key_storage: key_storage(state),
        settings_warning,
        mcp_warning: state.mcp.get().and_then(|mcp| mcp.warning()),
    })
}

#[tauri::command]
pub async fn app_status(app: AppHandle) -> CommandResult<AppStatus> {
    blocking(app, status).await
}

fn view(app: &AppHandle, state: &AppState) -> CommandResult<SettingsView> {
    let saved = settings::load_saved(app, &state.data_dir).settings;
    let storage = key_storage(state);
    let key = saved_key(state, saved.provider.as_str(), &saved.api_key);
    let sandbox = crate::safety::landlock_abi();
    Ok(SettingsView {
        env: settings::overrides(saved.provider),
        key: KeyView {
            storage,
            saved: (!key.is_empty()).then(|| crate::config::mask(&key)),
        },
        saved: Settings {
            api_key: String::new(),
            ..saved
        },
        sandbox: SandboxView {
            available: sandbox.is_ok(),
            reason: sandbox.err(),
        },
        data_dir: state.data_dir.display().to_string(),
        suggested_workdir: suggested_workdir().display().to_string(),
    })
}

#[tauri::command]
pub async fn get_settings(app: AppHandle) -> CommandResult<SettingsView> {
    blocking(app, view).await
}

/// Saves what the user typed. Fields the environment overrides keep their saved value; the
/// key goes to the keyring (or the file when there is none): `api_key` None keeps it, "" removes
/// it.
#[tauri::command]
pub async fn save_settings(
    app: AppHandle,
    settings: Settings,
    api_key: Option<String>,
) -> CommandResult<SettingsView> {
    blocking(app, move |app, state| {
        let previous = settings::load_saved(app, &state.data_dir).settings;
        let overrides = settings::overrides(settings.provider);
        let mut to_save = settings.for_saving(&previous, &overrides);

        // Check what the next turn would use: the saved values with the environment on top.
        let mut effective = to_save.clone();
        effective.api_key = "unchecked".to_string();
        effective.apply_env()?;
        effective.validate()?;
        if !to_save.workdir.trim().is_empty() {
            let dir = checked_workdir(&effective, &state.data_dir)?;
            if overrides.iter().all(|o| o.field != "workdir") {
                to_save.workdir = dir.display().to_string();
            }
        }

        let provider = to_save.provider.as_str().to_string();
        let previous_file_key = if previous.provider == to_save.provider {
            previous.api_key.clone()
        } else {
            String::new()
        };
        settings::apply_key(
            key_storage(state),
            &provider,
            KeyChange::from_form(api_key),
            &previous_file_key,
            &mut to_save,
        )?;
        lock(&state.keys).remove(&provider);
        settings::write(app, &state.data_dir, &to_save)?;
        *lock(&state.settings_warning) = None;
        view(app, state)
    })
    .await
}

/// `~/Talaria`: the folder the Welcome card offers to create.
fn suggested_workdir() -> PathBuf {
    dirs::home_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("Talaria")
}

/// Sets the working folder for new sessions: `path`, or with `create` a fresh `~/Talaria`
/// (made if missing). Refuses the home folder, `/` and the data folder. Returns the folder.
#[tauri::command]
pub async fn choose_workdir(
    app: AppHandle,
    path: Option<String>,
    create: bool,
) -> CommandResult<String> {
    blocking(app, move |app, state| {
        let dir = match path.as_deref().map(str::trim).filter(|p| !p.is_empty()) {
            Some(path) => expand(path),
            None => suggested_workdir(),
        };
        if create && !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|error| {
                CommandError::new(
                    "io",
                    format!("the folder {} could not be created: {error}", dir.display()),
                )
                .for_field("workdir")
            })?;
        }
        let real = crate::safety::check_workdir(&dir, &state.data_dir)?;
        let mut saved = settings::load_saved(app, &state.data_dir).settings;
        saved.workdir = real.display().to_string();
        settings::write(app, &state.data_dir, &saved)?;
        Ok(saved.workdir)
    })
    .await
}

/// Checks a folder for a new session without saving it. Returns the canonical folder.
#[tauri::command]
pub async fn check_workdir(app: AppHandle, path: String) -> CommandResult<String> {
    blocking(app, move |_, state| {
        Ok(
            crate::safety::check_workdir(&expand(path.trim()), &state.data_dir)?
                .display()
                .to_string(),
        )
    })
    .await
}

#[tauri::command]
pub async fn detect_local_servers() -> CommandResult<Vec<LocalServer>> {
    Ok(local_servers::detect(local_servers::CANDIDATES).await)
}

/// Test connection: the provider's models (`/v1/models`), asked with what the form holds (the
/// typed key, else the saved one; the environment still wins where it is set), so the user can
/// pick a model before saving.
#[tauri::command]
pub async fn list_models(
    app: AppHandle,
    settings: Settings,
    api_key: Option<String>,
) -> CommandResult<Vec<ModelInfo>> {
    let trial = blocking(app, move |app, state| {
        let mut trial = settings;
        let typed = api_key.map(|key| key.trim().to_string());
        trial.api_key = match typed.filter(|key| !key.is_empty()) {
            Some(key) => key,
            None => {
                let file_key = settings::load_saved(app, &state.data_dir).settings.api_key;
                saved_key(state, trial.provider.as_str(), &file_key)
            }
        };
        trial.apply_env()?;
        Ok(trial)
    })
    .await?;
    let model_error = |error: ModelError| {
        let kind = error.kind().map_or("internal", |kind| kind.as_str());
        let field = match error.kind() {
            Some(ErrorKind::Auth) => Some("api_key"),
            Some(ErrorKind::Config | ErrorKind::Network | ErrorKind::Http) => Some("base_url"),
            _ => None,
        };
        let out = CommandError::new(kind, error.to_string());
        match field {
            Some(field) => out.for_field(field),
            None => out,
        }
    };
    let client = ModelClient::new(&trial).map_err(model_error)?;
    client
        .list_models(&CancellationToken::new())
        .await
        .map_err(model_error)
}
