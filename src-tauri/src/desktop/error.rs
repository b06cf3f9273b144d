//! Command errors as the UI sees them: `{kind, message}`.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct CommandError {
    pub kind: &'static str,
    pub message: String,
}

impl CommandError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl From<crate::config::ConfigError> for CommandError {
    fn from(error: crate::config::ConfigError) -> Self {
        Self::new("config", error.to_string())
    }
}

impl From<crate::history::HistoryError> for CommandError {
    fn from(error: crate::history::HistoryError) -> Self {
        Self::new(error.kind(), error.to_string())
    }
}

impl From<crate::agent::AgentError> for CommandError {
    fn from(error: crate::agent::AgentError) -> Self {
        Self::new(error.kind().as_str(), error.to_string())
    }
}

impl From<tauri::Error> for CommandError {
    fn from(error: tauri::Error) -> Self {
        Self::new("internal", error.to_string())
    }
}

impl From<tauri_plugin_store::Error> for CommandError {
    fn from(error: tauri_plugin_store::Error) -> Self {
        Self::new(
            "io",
            format!("the settings file could not be read or written: {error}"),
        )
    }
}

impl From<tokio::task::JoinError> for CommandError {
    fn from(error: tokio::task::JoinError) -> Self {
        Self::new("internal", error.to_string())
    }
}

pub type CommandResult<T> = Result<T, CommandError>;
