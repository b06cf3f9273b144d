//! Run settings: what provider, which limits, where tools may work.
//! Precedence: command-line flags, then environment variables, then saved settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::safety::{ApprovalLevel, SafetySettings};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    #[default]
    Openai,
    Anthropic,
}

impl ProviderKind {
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "openai" => Some(ProviderKind::Openai),
            "anthropic" => Some(ProviderKind::Anthropic),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::Anthropic => "anthropic",
        }
    }

    pub fn default_base_url(self) -> &'static str {
        match self {
            ProviderKind::Openai => "https://api.openai.com/v1",
            ProviderKind::Anthropic => "https://api.anthropic.com",
        }
    }

    pub fn key_env(self) -> &'static str {
        match self {
            ProviderKind::Openai => "OPENAI_API_KEY",
            ProviderKind::Anthropic => "ANTHROPIC_API_KEY",
        }
    }
}

/// The variables `Settings::apply_env` reads (besides the providers' own key variables).
pub const ENV_VARS: &[&str] = &[
    "TALARIA_PROVIDER",
    "TALARIA_BASE_URL",
    "TALARIA_MODEL",
    "TALARIA_API_KEY",
    "TALARIA_WORKDIR",
    "TALARIA_TIMEOUT_S",
    "TALARIA_STALL_TIMEOUT_S",
    "TALARIA_CONNECT_TIMEOUT_S",
];

/// Settings as saved by the desktop app and as used by a run. Every field has a default,
/// so a settings file from an older or newer build still loads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub provider: ProviderKind,
    pub base_url: String,
    pub model: String,
    /// Never written to session logs, the index, or error text.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub api_key: String,
    pub connect_timeout_s: u64,
    /// Total deadline per API call; 0 means none.
    pub timeout_s: u64,
    /// Longest wait for a data event inside a stream.
    pub stall_timeout_s: u64,
    pub max_iterations: u32,
    pub max_attempts: u32,
    /// Upper bound on one reply's length, sent as `max_tokens` (Anthropic requires one).
    pub max_tokens: u32,
    /// Anthropic extended thinking: the budget in tokens, 0 for off. At least 1024 and below
    /// `max_tokens` when on (the API's own rules). Other providers ignore it.
    pub thinking_budget: u32,
    /// The folder new sessions work in. Empty until the user picks one.
    pub workdir: String,
    /// How much the app asks before a command runs.
    pub approval_level: ApprovalLevel,
    /// Folders outside the working folder that sandboxed commands may write to (`~` allowed),
    /// so that ordinary builds work: package caches and the like.
    pub writable_dirs: Vec<String>,
    /// Variables the terminal gets beyond the built-in allowlist (credential-named ones only
    /// pass when named here).
    pub terminal_env: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            provider: ProviderKind::Openai,
            base_url: String::new(),
            model: String::new(),
            api_key: String::new(),
            connect_timeout_s: 30,
            timeout_s: 300,
            stall_timeout_s: 120,
            max_iterations: 90,
            max_attempts: 3,
            max_tokens: DEFAULT_MAX_TOKENS,
            thinking_budget: 0,
            workdir: String::new(),
            approval_level: ApprovalLevel::default(),
            writable_dirs: default_writable_dirs(),
            terminal_env: Vec::new(),
        }
    }
}

/// `max_tokens` unless the user sets another.
pub const DEFAULT_MAX_TOKENS: u32 = 8192;
/// The smallest thinking budget Anthropic accepts.
pub const MIN_THINKING_BUDGET: u32 = 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown provider {0:?}: use \"openai\" or \"anthropic\"")]
    UnknownProvider(String),
    #[error("{name} must be a whole number, got {value:?}")]
    NotANumber { name: &'static str, value: String },
    #[error("no model is set: pass --model, set TALARIA_MODEL, or choose one in Settings")]
    NoModel,
    #[error("base URL {0:?} is not an http(s) URL: it should look like http://127.0.0.1:11434/v1")]
    BadBaseUrl(String),
    #[error("the working folder {0:?} does not exist or is not a folder")]
    BadWorkdir(String),
    #[error(
        "no working folder is chosen yet: pick the folder Talaria may work in (Settings → Safety)"
    )]
    NoWorkdir,
    #[error("max tokens must be at least 1 (8192 suits most models)")]
    NoMaxTokens,
    #[error(
        "the thinking budget must be 0 (off) or between {MIN_THINKING_BUDGET} and max tokens ({max_tokens}) minus 1; got {budget}"
    )]
    BadThinkingBudget { budget: u32, max_tokens: u32 },
}

impl ConfigError {
    /// The setting this error is about, when it is about one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            ConfigError::UnknownProvider(_) => Some("provider"),
            ConfigError::NotANumber { name, .. } => match *name {
                "TALARIA_TIMEOUT_S" => Some("timeout_s"),
                "TALARIA_STALL_TIMEOUT_S" => Some("stall_timeout_s"),
                "TALARIA_CONNECT_TIMEOUT_S" => Some("connect_timeout_s"),
                _ => None,
            },
            ConfigError::NoModel => Some("model"),
            ConfigError::BadBaseUrl(_) => Some("base_url"),
            ConfigError::BadWorkdir(_) | ConfigError::NoWorkdir => Some("workdir"),
            ConfigError::NoMaxTokens => Some("max_tokens"),
            ConfigError::BadThinkingBudget { .. } => Some("thinking_budget"),
        }
    }
}

impl Settings {
    /// Lays the TALARIA_* environment (and the provider's key variable) over these settings.
    pub fn apply_env(&mut self) -> Result<(), ConfigError> {
        self.apply_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Same as `apply_env`, with the variables looked up through `var` (testable).
    pub fn apply_vars(&mut self, var: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        if let Some(provider) = var("TALARIA_PROVIDER") {
            self.provider =
                ProviderKind::parse(&provider).ok_or(ConfigError::UnknownProvider(provider))?;
        }
        if let Some(base) = var("TALARIA_BASE_URL") {
            self.base_url = base;
        }
        if let Some(model) = var("TALARIA_MODEL") {
            self.model = model;
        }
        if let Some(workdir) = var("TALARIA_WORKDIR") {
            self.workdir = workdir;
        }
        if let Some(key) = var("TALARIA_API_KEY").or_else(|| var(self.provider.key_env())) {
            self.api_key = key;
        }
        for (name, slot) in [
            ("TALARIA_TIMEOUT_S", &mut self.timeout_s),
            ("TALARIA_STALL_TIMEOUT_S", &mut self.stall_timeout_s),
            ("TALARIA_CONNECT_TIMEOUT_S", &mut self.connect_timeout_s),
        ] {
            if let Some(value) = var(name) {
                *slot = value
                    .trim()
                    .parse()
                    .map_err(|_| ConfigError::NotANumber { name, value })?;
            }
        }
        Ok(())
    }

    /// The base URL to use: the saved one, or the provider's public endpoint.
    pub fn effective_base_url(&self) -> String {
        let base = self.base_url.trim().trim_end_matches('/');
        if base.is_empty() {
            self.provider.default_base_url().to_string()
        } else {
            base.to_string()
        }
    }

    /// Checks what a run needs before it starts, with messages that say what to fix.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.model.trim().is_empty() {
            return Err(ConfigError::NoModel);
        }
        let base = self.effective_base_url();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ConfigError::BadBaseUrl(base));
        }
        if self.max_tokens == 0 {
            return Err(ConfigError::NoMaxTokens);
        }
        if self.thinking_budget != 0
            && (self.thinking_budget < MIN_THINKING_BUDGET
                || self.thinking_budget >= self.max_tokens)
        {
            return Err(ConfigError::BadThinkingBudget {
                budget: self.thinking_budget,
                max_tokens: self.max_tokens,
            });
        }
        Ok(())
    }

    /// The safety inputs of these settings.
    pub fn safety(&self) -> SafetySettings {
        SafetySettings {
            level: self.approval_level,
            writable_dirs: self.writable_dirs.clone(),
            terminal_env: self.terminal_env.clone(),
            api_key: self.api_key.clone(),
            no_sandbox: false,
            allow_secrets: false,
        }
    }

    /// The folder tools run in, given the default for this front end.
    pub fn resolve_workdir(&self, default: PathBuf) -> Result<PathBuf, ConfigError> {
        let dir = if self.workdir.trim().is_empty() {
            default
        } else {
            PathBuf::from(self.workdir.trim())
        };
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(ConfigError::BadWorkdir(dir.display().to_string()))
        }
    }
}

/// A setting the environment decides for this run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EnvOverride {
    /// The setting's name (`model`, `api_key`, …).
    pub field: &'static str,
    /// The variable that sets it.
    pub var: String,
    /// Its value; for the API key only a masked form.
    pub value: String,
}

/// The settings the environment overrides, looked up through `var`. `provider` picks which
/// `*_API_KEY` variable applies when TALARIA_API_KEY is not set.
pub fn env_overrides(
    var: impl Fn(&str) -> Option<String>,
    provider: ProviderKind,
) -> Vec<EnvOverride> {
    let mut out = Vec::new();
    let fields: [(&'static str, &str); 7] = [
        ("provider", "TALARIA_PROVIDER"),
        ("base_url", "TALARIA_BASE_URL"),
        ("model", "TALARIA_MODEL"),
        ("workdir", "TALARIA_WORKDIR"),
        ("timeout_s", "TALARIA_TIMEOUT_S"),
        ("stall_timeout_s", "TALARIA_STALL_TIMEOUT_S"),
        ("connect_timeout_s", "TALARIA_CONNECT_TIMEOUT_S"),
    ];
    let provider = var("TALARIA_PROVIDER")
        .and_then(|p| ProviderKind::parse(&p))
        .unwrap_or(provider);
    for (field, name) in fields {
        if let Some(value) = var(name) {
            out.push(EnvOverride {
                field,
                var: name.to_string(),
                value,
            });
        }
    }
    for name in ["TALARIA_API_KEY", provider.key_env()] {
        if let Some(value) = var(name) {
            out.push(EnvOverride {
                field: "api_key",
                var: name.to_string(),
                value: mask(&value),
            });
            break;
        }
    }
    out
}

/// `sk-…1234`: enough to recognise a key, not to use it.
pub fn mask(key: &str) -> String {
    let chars: Vec<char> = key.trim().chars().collect();
    if chars.len() <= 8 {
        return "•".repeat(chars.len().max(4));
    }
    let head: String = chars.iter().take(3).collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}…{tail}")
}

impl Settings {
    /// What Save writes: the user's values, except that a field the environment overrides
    /// keeps its previously saved value (the form shows the environment's value read-only, and
    /// it must never end up in the file). The API key is stored apart and is left empty here.
    pub fn for_saving(&self, saved: &Settings, overrides: &[EnvOverride]) -> Settings {
        let mut out = self.clone();
        let overridden = |field: &str| overrides.iter().any(|o| o.field == field);
        if overridden("provider") {
            out.provider = saved.provider;
        }
        if overridden("base_url") {
            out.base_url = saved.base_url.clone();
        }
        if overridden("model") {
            out.model = saved.model.clone();
        }
        if overridden("workdir") {
            out.workdir = saved.workdir.clone();
        }
        if overridden("timeout_s") {
            out.timeout_s = saved.timeout_s;
        }
        if overridden("stall_timeout_s") {
            out.stall_timeout_s = saved.stall_timeout_s;
        }
        if overridden("connect_timeout_s") {
            out.connect_timeout_s = saved.connect_timeout_s;
        }
        out.api_key = String::new();
        out
    }
}

/// Package caches that builds write to: writable inside the sandbox unless settings say
/// otherwise (crates.io and npm credentials in them stay unreadable).
pub fn default_writable_dirs() -> Vec<String> {
    ["~/.cargo", "~/.rustup", "~/.npm", "~/.cache"]
        .into_iter()
        .map(str::to_string)
        .collect()
}

/// Where the app keeps everything: `TALARIA_DATA_DIR`, else the platform data dir.
pub fn data_dir() -> PathBuf {
    match std::env::var_os("TALARIA_DATA_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("app.talaria.desktop"),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_and_name_their_field() {
        let ok = Settings {
            model: "m".into(),
            ..Settings::default()
        };
        assert!(ok.validate().is_ok());
        let no_tokens = Settings {
            max_tokens: 0,
            ..ok.clone()
        };
        assert_eq!(
            no_tokens.validate().unwrap_err().field(),
            Some("max_tokens")
        );
        for budget in [1, 1023, 8192, 9000] {
            let bad = Settings {
                thinking_budget: budget,
                ..ok.clone()
            };
            let error = bad.validate().unwrap_err();
            assert_eq!(error.field(), Some("thinking_budget"), "{budget}");
            assert!(error.to_string().contains("1024"), "{error}");
        }
        for budget in [0, 1024, 8191] {
            let fine = Settings {
                thinking_budget: budget,
                ..ok.clone()
            };
            assert!(fine.validate().is_ok(), "{budget}");
        }
        // A settings file from before these fields loads with the defaults.
        let old: Settings = serde_json::from_str(r#"{"model":"m"}"#).unwrap();
        assert_eq!((old.max_tokens, old.thinking_budget), (8192, 0));
    }
}
