//! What the agent may do without asking. Tools act only inside the working folder; secrets
//! (Talaria's data, SSH and cloud credentials, `.env` files) are refused unless the user allows
//! the one call; terminal commands run in a Landlock sandbox with a scrubbed environment, and
//! the ones that are not known to be read-only ask first (by default). Keys that still reach
//! tool output are redacted. Nothing here imports Tauri.

pub mod commands;
pub mod env;
pub mod redact;
pub mod sandbox;
pub mod secrets;
pub mod shell;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

pub use commands::{Assessment, CommandContext, assess};
pub use redact::Redactor;
pub use sandbox::{SandboxPolicy, landlock_abi};
pub use secrets::SecretPaths;

use crate::message::ToolCall;

/// How much the desktop asks before a command runs. The sandbox stays on at every level.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalLevel {
    /// Ask for every command that is not known to be read-only (the default).
    #[default]
    Ask,
    /// Ask only for risky commands: deleting broadly, uploading, writing outside the folder…
    Risky,
    /// Never ask: everything runs in the sandbox. (Secrets are still refused.)
    Never,
}

impl ApprovalLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalLevel::Ask => "ask",
            ApprovalLevel::Risky => "risky",
            ApprovalLevel::Never => "never",
        }
    }
}

/// What the approval dialog is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AskKind {
    /// A terminal command.
    Command,
    /// A tool call that touches a secret.
    Secret,
    /// Running a command again outside the sandbox, which stopped it.
    Escalate,
    /// The first use of an MCP server's tools in a session.
    Mcp,
}

/// Why a call needs a decision before it runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Concern {
    pub kind: AskKind,
    pub reason: String,
    /// Carries a risk beyond "not known read-only".
    pub risky: bool,
    /// It touches a secret: never allowed unasked.
    pub secret: bool,
    /// What "allow for this session" remembers (the exact command line), when it applies.
    pub grant_key: Option<String>,
}

/// Everything the safety rules need for one conversation.
#[derive(Clone, Debug)]
pub struct Safety {
    pub secrets: SecretPaths,
    pub level: ApprovalLevel,
    /// The sandbox for terminal commands, or why there is none.
    pub sandbox: Result<SandboxPolicy, String>,
    /// Variables the terminal gets beyond the allowlist (named in settings).
    pub terminal_env: Vec<String>,
    /// Outside the folder, where sandboxed commands may write.
    pub writable: Vec<PathBuf>,
    pub redactor: Redactor,
    /// `exec --allow-secrets`: with `--approve-all`, secrets too.
    pub allow_secrets: bool,
}

/// The inputs `Safety::new` takes from settings.
#[derive(Clone, Debug, Default)]
pub struct SafetySettings {
    pub level: ApprovalLevel,
    /// Extra writable folders (`~` allowed).
    pub writable_dirs: Vec<String>,
    pub terminal_env: Vec<String>,
    pub api_key: String,
    /// `exec --no-sandbox`.
    pub no_sandbox: bool,
    pub allow_secrets: bool,
}

impl Safety {
    pub fn new(settings: &SafetySettings, data_dir: &Path, workdir: &Path) -> Safety {
        let home = dirs::home_dir();
        let secrets = SecretPaths::new(home.as_deref(), data_dir);
        let temp = temp_dirs();
        let mut extra: Vec<PathBuf> = Vec::new();
        for dir in &settings.writable_dirs {
            if let Some(path) = expand_home(dir, home.as_deref())
                && path.is_dir()
            {
                extra.push(std::fs::canonicalize(&path).unwrap_or(path));
            }
        }
        let sandbox = if settings.no_sandbox {
            Err("it was turned off (--no-sandbox)".to_string())
        } else {
            landlock_abi().map(|_| SandboxPolicy {
                workdir: workdir.to_path_buf(),
                writable: extra.clone(),
                temp: temp.clone(),
                hidden: secrets.existing(),
            })
        };
        let writable = temp.into_iter().chain(extra).collect();
        Safety {
            redactor: Redactor::for_process(&settings.api_key),
            secrets,
            level: settings.level,
            sandbox,
            terminal_env: settings.terminal_env.clone(),
            writable,
            allow_secrets: settings.allow_secrets,
        }
    }

    pub fn sandboxed(&self) -> bool {
        self.sandbox.is_ok()
    }

    /// Things about this setup the user should hear once.
    pub fn notices(&self, workdir: &Path, data_dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
        if let Some(temp) = temp_dirs().into_iter().find(|t| data.starts_with(t)) {
            out.push(format!(
                "Talaria's data folder {} is in the temp folder {}, which the sandbox lets commands read and write; keep it elsewhere (TALARIA_DATA_DIR).",
                data.display(),
                temp.display()
            ));
        }
        if data.starts_with(workdir) {
            out.push(format!(
                "Talaria's data folder {} is inside the working folder. File tools refuse it, but terminal commands can read it; keep the data folder elsewhere (TALARIA_DATA_DIR) or pick another working folder.",
                data.display()
            ));
        }
        out
    }

    /// Why `call` needs a decision, or None when it may simply run.
    pub fn concern(&self, call: &ToolCall, workdir: &Path) -> Option<Concern> {
        let args: serde_json::Value = serde_json::from_str(&call.arguments).ok()?;
        let text = |key: &str| args.get(key).and_then(|v| v.as_str());
        match call.name.as_str() {
            "read_file" | "write_file" | "patch" | "search_files" => {
                let path = text("path").unwrap_or(".");
                self.secret_concern(workdir, path)
            }
            "terminal" => {
                let command = text("command")?;
                let home = dirs::home_dir();
                let ctx = CommandContext {
                    workdir,
                    home: home.as_deref(),
                    secrets: &self.secrets,
                    writable: &self.writable,
                    folder_has_secrets,
                };
                let assessment = assess(command, &ctx);
                if assessment.known_safe {
                    return None;
                }
                Some(Concern {
                    kind: AskKind::Command,
                    reason: assessment.reason(),
                    risky: !assessment.risks.is_empty(),
                    secret: assessment.secret.is_some(),
                    grant_key: Some(command.to_string()),
                })
            }
            _ => None,
        }
    }

    fn secret_concern(&self, workdir: &Path, path: &str) -> Option<Concern> {
        let wd = crate::tools::workdir::Workdir::new(workdir).ok()?;
        let real = wd.resolve(path).ok()?;
        let why = self.secrets.why(&real)?;
        Some(Concern {
            kind: AskKind::Secret,
            reason: format!("it reads or writes a secret: {why}"),
            risky: true,
            secret: true,
            grant_key: None,
        })
    }
}

/// The temp folders commands may write to.
fn temp_dirs() -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from("/tmp"), PathBuf::from("/var/tmp")];
    if let Some(tmp) = std::env::var_os("TMPDIR").filter(|v| !v.is_empty()) {
        dirs.push(PathBuf::from(tmp));
    }
    let mut out: Vec<PathBuf> = dirs
        .into_iter()
        .filter(|d| d.is_dir())
        .map(|d| std::fs::canonicalize(&d).unwrap_or(d))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn expand_home(path: &str, home: Option<&Path>) -> Option<PathBuf> {
    let path = path.trim();
    if path.is_empty() {
        return None;
    }
    match path.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => {
            Some(home?.join(rest.trim_start_matches('/')))
        }
        Some(_) => None,
        None => Some(PathBuf::from(path)),
    }
}

/// Folders that are too big or too generated to hold a project's own `.env`.
const SKIPPED_DIRS: &[&str] = &[
    ".git",
    "node_modules",
    "target",
    "vendor",
    "dist",
    "build",
    ".venv",
    "venv",
    "__pycache__",
    ".cache",
    ".next",
];

/// Whether the working folder holds secret files (`.env`, keys). Looked for in a bounded walk
/// (generated folders skipped) and remembered for a few seconds.
pub fn folder_has_secrets(workdir: &Path) -> bool {
    static SEEN: Mutex<Option<HashMap<PathBuf, (Instant, bool)>>> = Mutex::new(None);
    const FRESH: Duration = Duration::from_secs(5);
    const MAX_ENTRIES: usize = 50_000;
    if let Some((at, found)) = crate::sync::lock(&SEEN)
        .as_ref()
        .and_then(|seen| seen.get(workdir).copied())
        && at.elapsed() < FRESH
    {
        return found;
    }
    let walker = ignore::WalkBuilder::new(workdir)
        .standard_filters(false)
        .follow_links(false)
        .max_depth(Some(8))
        .filter_entry(|entry| {
            !entry.file_type().is_some_and(|t| t.is_dir())
                || !entry
                    .file_name()
                    .to_str()
                    .is_some_and(|name| SKIPPED_DIRS.contains(&name))
        })
        .build();
    // A folder too big to look through counts as holding secrets: recursive reads then ask.
    let mut found = false;
    for (seen, entry) in walker.enumerate() {
        if seen >= MAX_ENTRIES {
            found = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        if entry
            .file_name()
            .to_str()
            .and_then(secrets::secret_name)
            .is_some()
        {
            found = true;
            break;
        }
    }
    crate::sync::lock(&SEEN)
        .get_or_insert_with(HashMap::new)
        .insert(workdir.to_path_buf(), (Instant::now(), found));
    found
}

#[derive(Debug, thiserror::Error)]
pub enum WorkdirError {
    #[error("the working folder {0} does not exist or is not a folder; choose an existing folder")]
    Missing(String),
    #[error(
        "{0} cannot be the working folder: it is {1}. Tools could then read and change everything in it. Choose or create a project folder instead, such as ~/Talaria"
    )]
    TooBroad(String, &'static str),
    #[error("{0} cannot be the working folder: {1}. Choose a project folder that holds no secrets")]
    Secret(String, String),
}

/// Checks a folder the agent would work in: it must exist, and be neither `/`, the home folder
/// (or a folder above it), nor a folder holding Talaria's data or the user's credentials.
/// Returns its canonical path.
pub fn check_workdir(path: &Path, data_dir: &Path) -> Result<PathBuf, WorkdirError> {
    let shown = path.display().to_string();
    let real = std::fs::canonicalize(path)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| WorkdirError::Missing(shown.clone()))?;
    if real == Path::new("/") {
        return Err(WorkdirError::TooBroad(shown, "the root of the filesystem"));
    }
    let home = dirs::home_dir().map(|h| std::fs::canonicalize(&h).unwrap_or(h));
    if let Some(home) = &home {
        if &real == home {
            return Err(WorkdirError::TooBroad(shown, "your home folder"));
        }
        if home.starts_with(&real) {
            return Err(WorkdirError::TooBroad(
                shown,
                "a folder that holds your home folder",
            ));
        }
    }
    let data = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    if real.starts_with(&data) {
        return Err(WorkdirError::Secret(
            shown,
            format!(
                "it is Talaria's data folder {}, or inside it",
                data.display()
            ),
        ));
    }
    // A folder that holds the data folder is allowed (tools refuse the data folder itself, and
    // `Safety::notices` says that commands can read it); one that holds credentials is not.
    if let Some(why) = SecretPaths::credentials(home.as_deref()).overlaps(&real) {
        return Err(WorkdirError::Secret(shown, why));
    }
    Ok(real)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn broad_and_secret_folders_are_refused() {
        let data = tempfile::tempdir().unwrap();
        assert!(matches!(
            check_workdir(Path::new("/"), data.path()),
            Err(WorkdirError::TooBroad(..))
        ));
        if let Some(home) = dirs::home_dir() {
            assert!(matches!(
                check_workdir(&home, data.path()),
                Err(WorkdirError::TooBroad(..))
            ));
        }
        assert!(matches!(
            check_workdir(data.path(), data.path()),
            Err(WorkdirError::Secret(..))
        ));
        let inside = data.path().join("sessions");
        std::fs::create_dir(&inside).unwrap();
        assert!(check_workdir(&inside, data.path()).is_err());
        // A project folder that holds the data folder is allowed (with a notice).
        let holder = tempfile::tempdir().unwrap();
        std::fs::create_dir(holder.path().join("data")).unwrap();
        assert!(check_workdir(holder.path(), &holder.path().join("data")).is_ok());
        let project = tempfile::tempdir().unwrap();
        assert!(check_workdir(project.path(), data.path()).is_ok());
        assert!(matches!(
            check_workdir(Path::new("/nonexistent/folder"), data.path()),
            Err(WorkdirError::Missing(_))
        ));
    }

    #[test]
    fn secret_files_in_the_folder_are_noticed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        std::fs::write(dir.path().join("src/main.rs"), "").unwrap();
        assert!(!folder_has_secrets(dir.path()));
        let other = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(other.path().join("config")).unwrap();
        std::fs::write(other.path().join("config/.env"), "KEY=1").unwrap();
        assert!(folder_has_secrets(other.path()));
    }
}
