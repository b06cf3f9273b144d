//! The environment a tool process gets: an allowlist of ordinary variables plus those the user
//! names in settings. A variable whose name says it holds a credential never passes unless the
//! user named it, and neither do the D-Bus and agent sockets that would reach the keyring or
//! SSH keys.

use std::ffi::OsString;

/// Variables every command gets when they are set.
const PASSED: &[&str] = &[
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TMPDIR",
    "TZ",
    "CARGO_HOME",
    "RUSTUP_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOCACHE",
    "GOMODCACHE",
    "JAVA_HOME",
    "NVM_DIR",
    "NVM_BIN",
    "PYENV_ROOT",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PNPM_HOME",
    "VOLTA_HOME",
    "BUN_INSTALL",
    "DENO_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "XDG_CACHE_HOME",
    "XDG_STATE_HOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

/// Name parts that mark a credential.
const SECRET_PARTS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];

/// True when a variable's name says it holds a credential.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_PARTS.iter().any(|part| upper.contains(part))
}

/// The variables to give a tool process, from `vars` (the app's environment), keeping the
/// allowlist, `LC_*`, and the `extra` names the user chose.
pub fn scrubbed(
    vars: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[String],
) -> Vec<(OsString, OsString)> {
    vars.into_iter()
        .filter(|(name, _)| {
            let Some(name) = name.to_str() else {
                return false;
            };
            if extra.iter().any(|e| e == name) {
                return true;
            }
            if is_secret_name(name) {
                return false;
            }
            PASSED.contains(&name) || name.starts_with("LC_")
        })
        .collect()
}

/// The current process's environment, scrubbed.
pub fn scrubbed_env(extra: &[String]) -> Vec<(OsString, OsString)> {
    scrubbed(std::env::vars_os(), extra)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        list.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn keys_and_sockets_stay_out() {
        let env = vars(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/u"),
            ("LC_ALL", "C"),
            ("OPENAI_API_KEY", "sk-1"),
            ("TALARIA_API_KEY", "sk-2"),
            ("GITHUB_TOKEN", "ghp"),
            ("DBUS_SESSION_BUS_ADDRESS", "unix:path=/run/user/1/bus"),
            ("SSH_AUTH_SOCK", "/run/user/1/ssh"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("RANDOM_THING", "x"),
            ("MY_TOOL_HOME", "/opt"),
        ]);
        let kept: Vec<String> = scrubbed(env.clone(), &[])
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(kept, ["PATH", "HOME", "LC_ALL"]);
        let kept: Vec<String> = scrubbed(env, &["GITHUB_TOKEN".into(), "MY_TOOL_HOME".into()])
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            kept,
            ["PATH", "HOME", "LC_ALL", "GITHUB_TOKEN", "MY_TOOL_HOME"]
        );
    }
}
