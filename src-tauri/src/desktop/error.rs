//! Command errors as the UI sees them: `{kind, message}`.

use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct CommandError {
    pub kind: &'static str,
    pub message: String,
    /// The setting the error is about, so the form can show it under that field.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'static str>,
}

impl CommandError {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            field: None,
        }
    }

    pub fn for_field(mut self, field: &'static str) -> Self {
        self.field = Some(field);
        self
    }
}

impl From<crate::config::ConfigError> for CommandError {
    fn from(error: crate::config::ConfigError) -> Self {
        let field = error.field();
        let mut out = Self::new("config", error.to_string());
        out.field = field;
        out
    }
}

impl From<crate::safety::WorkdirError> for CommandError {
    fn from(error: crate::safety::WorkdirError) -> Self {
        Self::new("config", error.to_string()).for_field("workdir")
    }
}

impl From<crate::keystore::KeyError> for CommandError {
    fn from(error: crate::keystore::KeyError) -> Self {
        Self::new("io", format!("the API key could not be stored: {error}")).for_field("api_key")
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
