//! MCP servers in the window: the Settings → Tools commands, and an `mcp-changed` event
//! whenever a server changes state. Everything else is in `crate::mcp`.

use tauri::{AppHandle, Emitter, Manager, State};

use super::error::{CommandError, CommandResult};
use super::state::AppState;
use crate::mcp::{McpError, McpManager, OnBroken, Overview, ServerEntry};

impl From<McpError> for CommandError {
    fn from(error: McpError) -> Self {
        Self::new("config", error.to_string())
    }
}

/// Starts the servers of `<data dir>/mcp.json` in the background (the window does not wait)
/// and forwards their state changes to the UI.
pub fn start(app: &AppHandle) {
    let state = app.state::<AppState>();
    let runtime = tauri::async_runtime::handle().inner().clone();
    let path = crate::mcp::config::default_path(&state.data_dir);
    let manager = match McpManager::start(path, true, OnBroken::KeepAside, runtime) {
        Ok(manager) => manager,
        Err(error) => {
            tracing::error!("MCP servers are off: {error}");
            return;
        }
    };
    let mut changes = manager.subscribe();
    let _ = state.mcp.set(manager);
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        while changes.changed().await.is_ok() {
            let _ = app.emit("mcp-changed", ());
        }
    });
}

fn manager(state: &AppState) -> CommandResult<McpManager> {
    state.mcp.get().cloned().ok_or_else(|| {
        CommandError::new(
            "config",
            "MCP servers are unavailable in this run; see the log for why",
        )
    })
}

/// Runs a change off the async threads (it reads and writes mcp.json and stops processes),
/// then returns the new overview.
async fn change(
    state: &AppState,
    apply: impl FnOnce(&McpManager) -> Result<(), McpError> + Send + 'static,
) -> CommandResult<Overview> {
    let mcp = manager(state)?;
    let overview = tokio::task::spawn_blocking(move || {
        apply(&mcp)?;
        Ok::<_, McpError>(mcp.overview())
    })
    .await??;
    Ok(overview)
}

#[tauri::command]
pub async fn mcp_servers(state: State<'_, AppState>) -> CommandResult<Overview> {
    change(&state, |_| Ok(())).await
}

#[tauri::command]
pub async fn mcp_set_enabled(
    state: State<'_, AppState>,
    name: String,
    enabled: bool,
) -> CommandResult<Overview> {
    change(&state, move |mcp| mcp.set_enabled(&name, enabled)).await
}

#[tauri::command]
pub async fn mcp_set_trusted(
    state: State<'_, AppState>,
    name: String,
    trusted: bool,
) -> CommandResult<Overview> {
    change(&state, move |mcp| mcp.set_trusted(&name, trusted)).await
}

#[tauri::command]
pub async fn mcp_restart(state: State<'_, AppState>, name: String) -> CommandResult<Overview> {
    change(&state, move |mcp| mcp.restart(&name)).await
}

#[tauri::command]
pub async fn mcp_save_server(
    state: State<'_, AppState>,
    original: Option<String>,
    name: String,
    entry: ServerEntry,
) -> CommandResult<Overview> {
    change(&state, move |mcp| {
        mcp.save_server(original.as_deref(), &name, &entry)
    })
    .await
}

#[tauri::command]
pub async fn mcp_remove_server(
    state: State<'_, AppState>,
    name: String,
) -> CommandResult<Overview> {
    change(&state, move |mcp| mcp.remove_server(&name)).await
}
