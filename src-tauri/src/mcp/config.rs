//! `mcp.json`: the MCP servers, in the `mcpServers` shape of Claude Desktop and Cursor (so an
//! existing file can be pasted in), plus Talaria's keys `enabled`, `trusted`,
//! `startup_timeout_s` and `tool_timeout_s`. The document is kept as JSON and edited in place,
//! so keys Talaria does not know survive a save.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const FILE_NAME: &str = "mcp.json";
pub const DEFAULT_STARTUP_TIMEOUT_S: u64 = 10;
pub const DEFAULT_TOOL_TIMEOUT_S: u64 = 120;
const SERVERS_KEY: &str = "mcpServers";

/// Where the servers of a data dir are listed.
pub fn default_path(data_dir: &Path) -> PathBuf {
    data_dir.join(FILE_NAME)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("could not {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is not a valid MCP server list ({problem}); it should look like \
         {{\"mcpServers\": {{\"NAME\": {{\"command\": \"…\", \"args\": [\"…\"]}}}}}}"
    )]
    Broken { path: PathBuf, problem: String },
    #[error("{0}")]
    BadServer(String),
    #[error("there is no MCP server named {0:?} in the list")]
    NoSuchServer(String),
}

/// One entry of `mcpServers` as it is written: either `command` (a local server over stdio)
/// or `url` (a remote one over streamable HTTP).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// Cursor's and VS Code's transport hint (`stdio`, `http`, `sse`); optional.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trusted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_timeout_s: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_timeout_s: Option<u64>,
}

/// The keys of `ServerEntry`: a save rewrites these and keeps every other key of the entry.
const ENTRY_KEYS: [&str; 11] = [
    "command",
    "args",
    "env",
    "cwd",
    "url",
    "headers",
    "type",
    "enabled",
    "trusted",
    "startup_timeout_s",
    "tool_timeout_s",
];

/// Headers the streamable HTTP transport sets itself.
const RESERVED_HEADERS: [&str; 3] = ["accept", "mcp-session-id", "last-event-id"];

/// How Talaria reaches a server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transport {
    Stdio {
        command: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// A checked entry, ready to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerConfig {
    pub transport: Transport,
    pub enabled: bool,
    pub trusted: bool,
    pub startup_timeout: Duration,
    pub tool_timeout: Duration,
}

impl ServerEntry {
    /// A stdio server entry (what `talaria mcp add NAME -- CMD ARGS…` writes).
    pub fn stdio(command: impl Into<String>, args: Vec<String>) -> ServerEntry {
        ServerEntry {
            command: Some(command.into()),
            args,
            ..ServerEntry::default()
        }
    }

    /// A streamable HTTP server entry.
    pub fn http(url: impl Into<String>) -> ServerEntry {
        ServerEntry {
            url: Some(url.into()),
            ..ServerEntry::default()
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }

    pub fn is_trusted(&self) -> bool {
        self.trusted.unwrap_or(false)
    }

    /// Checks the entry; the error says what to change (`name` is only used in messages).
    pub fn check(&self, name: &str) -> Result<ServerConfig, ConfigError> {
        let bad = |what: String| ConfigError::BadServer(format!("MCP server {name:?}: {what}"));
        if let Some(kind) = self.transport.as_deref()
            && kind.eq_ignore_ascii_case("sse")
        {
            return Err(bad(
                "the old SSE transport is not supported; give the server's streamable \
                 HTTP address instead (often ending in /mcp) and drop \"type\": \"sse\""
                    .into(),
            ));
        }
        let command = self.command.as_deref().map(str::trim);
        let url = self.url.as_deref().map(str::trim);
        let transport = match (command, url) {
            (Some(_), Some(_)) => {
                return Err(bad(
                    "give either \"command\" (a local server) or \"url\" (a remote \
                     one), not both"
                        .into(),
                ));
            }
            (None, None) => {
                return Err(bad(
                    "needs \"command\" (a program to start, e.g. \"npx\") or \"url\" \
                     (a remote server's streamable HTTP address)"
                        .into(),
                ));
            }
            (Some(""), None) => return Err(bad("\"command\" is empty".into())),
            (Some(command), None) => {
                for name in self.env.keys() {
                    if name.is_empty() || name.contains('=') || name.contains('\0') {
                        return Err(bad(format!(
                            "{name:?} is not a valid environment variable name"
                        )));
                    }
                }
                Transport::Stdio {
                    command: command.to_string(),
                    args: self.args.clone(),
                    env: self.env.clone(),
                    cwd: self
                        .cwd
                        .as_deref()
                        .map(str::trim)
                        .filter(|cwd| !cwd.is_empty())
                        .map(PathBuf::from),
                }
            }
            (None, Some(url)) => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(bad(format!(
                        "\"url\" {url:?} is not an http(s) address; it should look like \
                         https://example.com/mcp"
                    )));
                }
                for (name, value) in &self.headers {
                    let name_ok =
                        !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
                    if !name_ok || value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                        return Err(bad(format!(
                            "the header {name:?} is not a valid HTTP header"
                        )));
                    }
                    if RESERVED_HEADERS
                        .iter()
                        .any(|r| name.eq_ignore_ascii_case(r))
                    {
                        return Err(bad(format!(
                            "the header {name:?} is set by the MCP client itself; leave it out"
                        )));
                    }
                }
                Transport::Http {
                    url: url.to_string(),
                    headers: self.headers.clone(),
                }
            }
        };
        let seconds = |value: Option<u64>, default: u64, key: &str| match value {
            None => Ok(Duration::from_secs(default)),
            Some(0) => Err(bad(format!("\"{key}\" must be at least 1 (seconds)"))),
            Some(n) => Ok(Duration::from_secs(n)),
        };
        Ok(ServerConfig {
            transport,
            enabled: self.is_enabled(),
            trusted: self.is_trusted(),
            startup_timeout: seconds(
                self.startup_timeout_s,
                DEFAULT_STARTUP_TIMEOUT_S,
                "startup_timeout_s",
            )?,
            tool_timeout: seconds(
                self.tool_timeout_s,
                DEFAULT_TOOL_TIMEOUT_S,
                "tool_timeout_s",
            )?,
        })
    }

    /// What the entry runs, in one line: the command line or the URL.
    pub fn summary(&self) -> String {
        match (&self.command, &self.url) {
            (Some(command), _) => std::iter::once(command.as_str())
                .chain(self.args.iter().map(String::as_str))
                .collect::<Vec<_>>()
                .join(" "),
            (None, Some(url)) => url.clone(),
            (None, None) => String::new(),
        }
    }
}

/// One server as listed: its entry, or why the entry cannot be read.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    pub name: String,
    pub entry: Result<ServerEntry, String>,
}

/// The whole `mcp.json` document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct McpFile {
    doc: Map<String, Value>,
}

impl McpFile {
    /// Parses a document. Only a file that is not a JSON object, or whose `mcpServers` is not
    /// an object, is broken; a bad entry is reported on its own server.
    pub fn parse(text: &str, path: &Path) -> Result<McpFile, ConfigError> {
        let broken = |problem: String| ConfigError::Broken {
            path: path.to_path_buf(),
            problem,
        };
        if text.trim().is_empty() {
            return Ok(McpFile::default());
        }
        let doc = match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(doc)) => doc,
            Ok(_) => return Err(broken("the top level is not a JSON object".into())),
            Err(error) => return Err(broken(error.to_string())),
        };
        match doc.get(SERVERS_KEY) {
            None | Some(Value::Object(_)) => Ok(McpFile { doc }),
            Some(_) => Err(broken(format!("\"{SERVERS_KEY}\" is not an object"))),
        }
    }

    /// The file at `path`; a missing file (or a data dir that is not a folder, where none can
    /// be) is an empty list.
    pub fn load(path: &Path) -> Result<McpFile, ConfigError> {
        match std::fs::read(path) {
            Ok(bytes) => McpFile::parse(&String::from_utf8_lossy(&bytes), path),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(McpFile::default())
            }
            Err(source) => Err(ConfigError::Io {
                action: "read",
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    fn servers_map(&self) -> Option<&Map<String, Value>> {
        self.doc.get(SERVERS_KEY).and_then(Value::as_object)
    }

    /// Every server, sorted by name.
    pub fn servers(&self) -> Vec<Listed> {
        self.servers_map()
            .into_iter()
            .flatten()
            .map(|(name, value)| Listed {
                name: name.clone(),
                entry: serde_json::from_value::<ServerEntry>(value.clone())
                    .map_err(|error| format!("MCP server {name:?}: {error}")),
            })
            .collect()
    }

    pub fn get(&self, name: &str) -> Option<Result<ServerEntry, String>> {
        self.servers()
            .into_iter()
            .find(|s| s.name == name)
            .map(|s| s.entry)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.servers_map().is_some_and(|map| map.contains_key(name))
    }

    /// Adds or replaces a server. The keys of `ServerEntry` are rewritten; other keys that the
    /// entry had are kept.
    pub fn set(&mut self, name: &str, entry: &ServerEntry) -> Result<(), ConfigError> {
        check_name(name)?;
        let Value::Object(fresh) = serde_json::to_value(entry)
            .map_err(|error| ConfigError::BadServer(error.to_string()))?
        else {
            return Err(ConfigError::BadServer(
                "a server entry must be an object".into(),
            ));
        };
        let servers = self
            .doc
            .entry(SERVERS_KEY)
            .or_insert_with(|| Value::Object(Map::new()));
        if !servers.is_object() {
            *servers = Value::Object(Map::new());
        }
        let Value::Object(servers) = servers else {
            return Ok(());
        };
        let slot = servers
            .entry(name.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        if let Value::Object(kept) = slot {
            kept.retain(|key, _| !ENTRY_KEYS.contains(&key.as_str()));
            kept.extend(fresh);
        }
        Ok(())
    }

    /// Adds a new server after checking its entry; an existing name is refused.
    pub fn add(&mut self, name: &str, entry: &ServerEntry) -> Result<(), ConfigError> {
        entry.check(name)?;
        if self.contains(name) {
            return Err(ConfigError::BadServer(format!(
                "there is already an MCP server named {name:?}; pick another name, or remove \
                 that one first"
            )));
        }
        self.set(name, entry)
    }

    /// Removes a server that must exist.
    pub fn remove_existing(&mut self, name: &str) -> Result<(), ConfigError> {
        if self.remove(name) {
            Ok(())
        } else {
            Err(ConfigError::NoSuchServer(name.to_string()))
        }
    }

    /// Removes a server; false when there was none by that name.
    pub fn remove(&mut self, name: &str) -> bool {
        match self.doc.get_mut(SERVERS_KEY) {
            Some(Value::Object(servers)) => servers.remove(name).is_some(),
            _ => false,
        }
    }

    /// Renames a server, keeping its entry.
    pub fn rename(&mut self, from: &str, to: &str) -> Result<(), ConfigError> {
        if from == to {
            return Ok(());
        }
        check_name(to)?;
        if self.contains(to) {
            return Err(ConfigError::BadServer(format!(
                "there is already an MCP server named {to:?}"
            )));
        }
        let Some(Value::Object(servers)) = self.doc.get_mut(SERVERS_KEY) else {
            return Err(ConfigError::NoSuchServer(from.to_string()));
        };
        let value = servers
            .remove(from)
            .ok_or_else(|| ConfigError::NoSuchServer(from.to_string()))?;
        servers.insert(to.to_string(), value);
        Ok(())
    }

    pub fn to_json(&self) -> String {
        let mut doc = self.doc.clone();
        doc.entry(SERVERS_KEY)
            .or_insert_with(|| Value::Object(Map::new()));
        let mut text = serde_json::to_string_pretty(&Value::Object(doc)).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Writes the file atomically (a temp file renamed over it), readable by its owner only:
    /// entries may hold tokens in `env` or `headers`.
    pub fn save(&self, path: &Path) -> Result<(), ConfigError> {
        let io = |action, source| ConfigError::Io {
            action,
            path: path.to_path_buf(),
            source,
        };
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| io("create the folder of", e))?;
        let tmp = path.with_file_name(format!(
            ".{FILE_NAME}.{}.tmp",
            uuid::Uuid::now_v7().simple()
        ));
        let written = (|| {
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(self.to_json().as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(error) = written {
            let _ = std::fs::remove_file(&tmp);
            return Err(io("write", error));
        }
        Ok(())
    }
}

/// A server name must be usable as a JSON key and show in a tool name: not empty, no control
/// characters.
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    if name.trim().is_empty() || name.chars().any(char::is_control) || name.len() > 200 {
        return Err(ConfigError::BadServer(format!(
            "{name:?} is not a usable server name: use a short name such as \"github\" or \"files\""
        )));
    }
    Ok(())
}

/// Moves a broken file aside as `<name>.broken-<time>` so nothing overwrites it, and says so.
/// None when the file is missing or readable.
pub fn keep_broken_aside(path: &Path) -> Option<String> {
    let error = match McpFile::load(path) {
        Ok(_) | Err(ConfigError::Io { .. }) => return None,
        Err(error) => error,
    };
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S");
    let kept = path.with_file_name(format!("{FILE_NAME}.broken-{stamp}"));
    Some(match std::fs::rename(path, &kept) {
        Ok(()) => format!(
            "{error}. The file is kept as {}; no MCP server from it is running. Fix it and put \
             it back, or add the servers again in Settings → Tools",
            kept.display()
        ),
        Err(rename) => format!(
            "{error}. It could not be moved aside ({rename}); fix or delete it, then restart Talaria"
        ),
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const CLAUDE_DESKTOP: &str = r#"{
      "mcpServers": {
        "filesystem": {
          "command": "npx",
          "args": ["-y", "@modelcontextprotocol/server-filesystem", "/Users/me/Desktop"],
          "env": {"DEBUG": "1"}
        },
        "remote": {"url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}, "type": "http"}
      },
      "globalShortcut": "Ctrl+Space"
    }"#;

    #[test]
    fn reads_claude_desktop_config() {
        let file = McpFile::parse(CLAUDE_DESKTOP, Path::new("mcp.json")).unwrap();
        let servers = file.servers();
        assert_eq!(servers.len(), 2);
        let fs = servers[0].entry.clone().unwrap();
        assert_eq!(servers[0].name, "filesystem");
        let config = fs.check("filesystem").unwrap();
        assert!(config.enabled && !config.trusted);
        assert_eq!(config.startup_timeout, Duration::from_secs(10));
        assert_eq!(config.tool_timeout, Duration::from_secs(120));
        assert!(
            matches!(config.transport, Transport::Stdio { ref command, .. } if command == "npx")
        );
        let remote = servers[1].entry.clone().unwrap().check("remote").unwrap();
        assert!(
            matches!(remote.transport, Transport::Http { ref url, .. } if url == "https://example.com/mcp")
        );
    }

    #[test]
    fn a_save_keeps_unknown_keys() {
        let mut file = McpFile::parse(CLAUDE_DESKTOP, Path::new("mcp.json")).unwrap();
        let mut entry = file.get("remote").unwrap().unwrap();
        entry.trusted = Some(true);
        file.set("remote", &entry).unwrap();
        let again = McpFile::parse(&file.to_json(), Path::new("mcp.json")).unwrap();
        let text = again.to_json();
        assert!(text.contains("globalShortcut"));
        assert!(text.contains("\"type\": \"http\""));
        assert_eq!(again.get("remote").unwrap().unwrap().trusted, Some(true));
    }

    #[test]
    fn broken_documents_and_bad_entries() {
        let path = Path::new("/x/mcp.json");
        for text in ["{", "[1]", r#"{"mcpServers": []}"#] {
            let error = McpFile::parse(text, path).unwrap_err();
            assert!(matches!(error, ConfigError::Broken { .. }), "{text}");
            assert!(error.to_string().contains("/x/mcp.json"));
        }
        assert!(McpFile::parse("", path).unwrap().servers().is_empty());
        let file = McpFile::parse(
            r#"{"mcpServers": {"a": {"command": 5}, "b": {}, "c": {"command": "x", "url": "http://y"},
                "d": {"url": "ftp://z"}, "e": {"command": "x", "tool_timeout_s": 0},
                "f": {"url": "http://y", "headers": {"Mcp-Session-Id": "x"}},
                "g": {"url": "http://y", "type": "sse"}}}"#,
            path,
        )
        .unwrap();
        let servers = file.servers();
        assert!(servers[0].entry.as_ref().unwrap_err().contains("\"a\""));
        for listed in &servers[1..] {
            let error = listed
                .entry
                .clone()
                .unwrap()
                .check(&listed.name)
                .unwrap_err();
            assert!(error.to_string().contains(&format!("{:?}", listed.name)));
        }
    }

    #[test]
    fn rename_and_remove() {
        let mut file = McpFile::default();
        file.set("a", &ServerEntry::stdio("echo", vec![])).unwrap();
        file.rename("a", "b").unwrap();
        assert!(!file.contains("a") && file.contains("b"));
        assert!(file.remove("b"));
        assert!(!file.remove("b"));
        assert!(file.set("", &ServerEntry::stdio("echo", vec![])).is_err());
    }

    #[test]
    fn saves_private_and_moves_a_broken_file_aside() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut file = McpFile::default();
        file.set("a", &ServerEntry::stdio("echo", vec!["hi".into()]))
            .unwrap();
        file.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(
            McpFile::load(&path).unwrap(),
            McpFile::parse(&file.to_json(), &path).unwrap()
        );
        assert_eq!(keep_broken_aside(&path), None);

        std::fs::write(&path, "{\"mcpServers\": {").unwrap();
        let warning = keep_broken_aside(&path).unwrap();
        assert!(warning.contains("kept as"), "{warning}");
        assert!(!path.exists());
        let kept: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("mcp.json.broken-"))
            .collect();
        assert_eq!(kept.len(), 1);
    }
}
