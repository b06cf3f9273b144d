//! Which paths hold secrets: the app's own data folder (settings, other sessions), the usual
//! credential folders in the home folder, `.env` files and private keys anywhere. Tools refuse
//! them unless the user approves that one call; the terminal's sandbox cannot read the folders.

use std::path::{Path, PathBuf};

use crate::tools::workdir::fold;

/// Folders (relative to the home folder) that hold credentials.
const HOME_SECRET_DIRS: &[(&str, &str)] = &[
    (".ssh", "SSH keys"),
    (".gnupg", "GnuPG keys"),
    (".aws", "AWS credentials"),
    (".config/gcloud", "Google Cloud credentials"),
    (".azure", "Azure credentials"),
    (".kube", "Kubernetes credentials"),
    (".docker", "Docker registry credentials"),
    (".password-store", "the pass password store"),
    (".local/share/keyrings", "the desktop keyring"),
    (".config/gh", "GitHub CLI tokens"),
    (".config/hub", "GitHub tokens"),
    (".terraform.d", "Terraform credentials"),
    (".mozilla", "Firefox profiles (passwords, cookies)"),
    (
        ".config/google-chrome",
        "Chrome profiles (passwords, cookies)",
    ),
    (".config/chromium", "Chromium profiles (passwords, cookies)"),
];

/// Files (relative to the home folder) that hold credentials.
const HOME_SECRET_FILES: &[(&str, &str)] = &[
    (".netrc", "login credentials"),
    (".git-credentials", "git credentials"),
    (".pgpass", "PostgreSQL passwords"),
    (".npmrc", "npm tokens"),
    (".pypirc", "PyPI tokens"),
    (".cargo/credentials", "crates.io tokens"),
    (".cargo/credentials.toml", "crates.io tokens"),
];

/// `.env` variants that are templates, not secrets.
const ENV_TEMPLATES: &[&str] = &["example", "sample", "template", "dist", "defaults"];

/// Parts of a file name that mark an SSH private (or public) key.
const KEY_NAMES: &[&str] = &["id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"];

/// The secret locations for one user and one data folder.
#[derive(Clone, Debug)]
pub struct SecretPaths {
    /// (absolute folder, what it holds): everything under it is secret.
    dirs: Vec<(PathBuf, String)>,
    /// (absolute file, what it holds).
    files: Vec<(PathBuf, String)>,
}

impl SecretPaths {
    /// The secrets of `home` plus the app's `data_dir`. Paths are kept both as given and
    /// canonicalized (when they exist), so a symlinked home is covered either way.
    pub fn new(home: Option<&Path>, data_dir: &Path) -> SecretPaths {
        let mut secrets = SecretPaths::credentials(home);
        push_both(
            &mut secrets.dirs,
            data_dir,
            "Talaria's own data (settings, keys, other sessions)",
        );
        secrets
    }

    /// The user's credential folders and files only.
    pub fn credentials(home: Option<&Path>) -> SecretPaths {
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        if let Some(home) = home {
            for (rel, what) in HOME_SECRET_DIRS {
                push_both(&mut dirs, &home.join(rel), what);
            }
            for (rel, what) in HOME_SECRET_FILES {
                push_both(&mut files, &home.join(rel), what);
            }
        }
        SecretPaths { dirs, files }
    }

    /// The secrets of the current user (`$HOME`) and `data_dir`.
    pub fn for_user(data_dir: &Path) -> SecretPaths {
        SecretPaths::new(dirs::home_dir().as_deref(), data_dir)
    }

    /// Why `path` (absolute, ideally canonical) is secret, or None. A name rule (`.env`, SSH
    /// keys) applies anywhere; folder rules to everything under the folder.
    pub fn why(&self, path: &Path) -> Option<String> {
        let path = fold(path);
        for (dir, what) in &self.dirs {
            if path.starts_with(dir) {
                return Some(format!("{} holds {what}", dir.display()));
            }
        }
        for (file, what) in &self.files {
            if &path == file {
                return Some(format!("{} holds {what}", file.display()));
            }
        }
        path.file_name()
            .and_then(|name| name.to_str())
            .and_then(secret_name)
            .map(|what| format!("{} is {what}", path.display()))
    }

    /// The secret folders and files that exist, for the sandbox to leave out.
    pub fn existing(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = self
            .dirs
            .iter()
            .chain(self.files.iter())
            .map(|(path, _)| path.clone())
            .filter(|path| std::fs::symlink_metadata(path).is_ok())
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// True when `dir` is one of the secret folders, inside one, or holds one.
    pub fn overlaps(&self, dir: &Path) -> Option<String> {
        let dir = fold(dir);
        self.dirs
            .iter()
            .find(|(secret, _)| dir.starts_with(secret) || secret.starts_with(&dir))
            .map(|(secret, what)| format!("{} holds {what}", secret.display()))
    }
}

/// What a file name says about its content, when it marks a secret.
pub fn secret_name(name: &str) -> Option<&'static str> {
    if name == ".env" {
        return Some("an environment file (.env), which usually holds keys and passwords");
    }
    if let Some(rest) = name.strip_prefix(".env.")
        && !ENV_TEMPLATES.contains(&rest.to_ascii_lowercase().as_str())
    {
        return Some("an environment file (.env.*), which usually holds keys and passwords");
    }
    if KEY_NAMES.iter().any(|key| name.contains(key)) {
        return Some("an SSH key");
    }
    None
}

fn push_both(list: &mut Vec<(PathBuf, String)>, path: &Path, what: &str) {
    let given = fold(path);
    list.push((given.clone(), what.to_string()));
    if let Ok(real) = std::fs::canonicalize(&given)
        && real != given
    {
        list.push((real, what.to_string()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_folders() {
        let secrets = SecretPaths::new(
            Some(Path::new("/home/u")),
            Path::new("/home/u/.local/share/app"),
        );
        assert!(secrets.why(Path::new("/home/u/.ssh/id_rsa")).is_some());
        assert!(secrets.why(Path::new("/home/u/.ssh")).is_some());
        assert!(
            secrets
                .why(Path::new("/home/u/.local/share/app/settings.json"))
                .is_some()
        );
        assert!(secrets.why(Path::new("/home/u/proj/.env")).is_some());
        assert!(secrets.why(Path::new("/home/u/proj/.env.local")).is_some());
        assert!(
            secrets
                .why(Path::new("/home/u/proj/.env.example"))
                .is_none()
        );
        assert!(
            secrets
                .why(Path::new("/home/u/proj/keys/id_ed25519"))
                .is_some()
        );
        assert!(secrets.why(Path::new("/home/u/.netrc")).is_some());
        assert!(secrets.why(Path::new("/home/u/.sshx/a")).is_none());
        assert!(secrets.why(Path::new("/home/u/proj/src/env.rs")).is_none());
        assert!(
            secrets
                .why(Path::new("/home/u/proj/../.aws/config"))
                .is_some()
        );
    }

    #[test]
    fn overlap_covers_parents_and_children() {
        let secrets = SecretPaths::new(Some(Path::new("/home/u")), Path::new("/data/t"));
        assert!(secrets.overlaps(Path::new("/home/u/.ssh/sub")).is_some());
        assert!(secrets.overlaps(Path::new("/home")).is_some());
        assert!(secrets.overlaps(Path::new("/data")).is_some());
        assert!(secrets.overlaps(Path::new("/home/u/proj")).is_none());
    }
}
