//! The environment an MCP server process starts with: a short allowlist taken from Talaria's
//! own environment, plus the server's configured `env` (the codex rule). API keys and other
//! secrets of the parent never reach it unless the user names them in the server's entry.

use std::collections::BTreeMap;

/// Variables passed through from Talaria's environment, when set.
const PASSED: [&str; 9] = [
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "TERM", "TMPDIR", "TZ",
];

/// Name parts that mark a secret; such a variable passes only when configured.
const SECRET_MARKS: [&str; 4] = ["KEY", "TOKEN", "SECRET", "PASSWORD"];

/// True for names such as `OPENAI_API_KEY`, `GITHUB_TOKEN` or `db_password`.
pub fn looks_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_MARKS.iter().any(|mark| upper.contains(mark))
}

fn passed(name: &str) -> bool {
    (PASSED.contains(&name) || name.starts_with("LC_")) && !looks_secret(name)
}

/// The environment for a server: the allowlisted variables of `parent` (Talaria's own
/// environment) and then `configured`, which wins.
pub fn server_env(
    parent: impl IntoIterator<Item = (String, String)>,
    configured: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env: BTreeMap<String, String> = parent
        .into_iter()
        .filter(|(name, _)| passed(name))
        .collect();
    env.extend(configured.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// `server_env` over this process's environment (variables that are not UTF-8 are left out).
pub fn for_server(configured: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    server_env(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        configured,
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn only_the_allowlist_and_the_configured_env() {
        let parent = [
            ("PATH", "/usr/bin"),
            ("HOME", "/home/me"),
            ("LC_ALL", "C.UTF-8"),
            ("OPENAI_API_KEY", "sk-secret"),
            ("TALARIA_API_KEY", "sk-secret"),
            ("GITHUB_TOKEN", "ghp"),
            ("AWS_SECRET_ACCESS_KEY", "x"),
            ("PGPASSWORD", "x"),
            ("EDITOR", "vim"),
            ("LC_API_KEY", "sneaky"),
        ]
        .map(|(k, v)| (k.to_string(), v.to_string()));
        let configured = BTreeMap::from([
            ("GITHUB_TOKEN".to_string(), "mine".to_string()),
            ("PATH".to_string(), "/opt/bin".to_string()),
        ]);
        let env = server_env(parent, &configured);
        let names: Vec<&str> = env.keys().map(String::as_str).collect();
        assert_eq!(names, ["GITHUB_TOKEN", "HOME", "LC_ALL", "PATH"]);
        assert_eq!(env["GITHUB_TOKEN"], "mine");
        assert_eq!(env["PATH"], "/opt/bin");
    }

    #[test]
    fn secret_names() {
        for name in [
            "OPENAI_API_KEY",
            "x_token",
            "Secret",
            "DB_PASSWORD",
            "KEYRING",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in ["PATH", "HOME", "LANG", "TERM"] {
            assert!(!looks_secret(name), "{name}");
        }
    }
}
