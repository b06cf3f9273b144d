//! Path confinement: every path a tool touches must resolve inside the working folder.
//!
//! The resolved path is what the tool then uses, so a check and the later open cannot disagree
//! about `..` or symlinks: `..` is folded lexically, the longest existing ancestor is
//! canonicalized (following every symlink), and the rest is appended verbatim (it does not
//! exist yet, so it holds no symlinks).

use std::io;
use std::path::{Component, Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error(
        "path {path:?} is outside the working folder {workdir}; tools may only touch files inside it"
    )]
    Outside { path: String, workdir: String },
    #[error(
        "the working folder {workdir} cannot be used ({source}); choose an existing folder in the settings"
    )]
    Workdir { workdir: String, source: io::Error },
    #[error("the path is empty; give a file path relative to the working folder")]
    Empty,
    #[error("path {path:?} contains a NUL byte; give a plain file path")]
    Nul { path: String },
    #[error(
        "path {path:?} is a symlink whose target does not exist; tools do not follow dangling links"
    )]
    Dangling { path: String },
    #[error("path {path:?} cannot be resolved: {source}")]
    Io { path: String, source: io::Error },
}

/// The working folder, canonicalized once per tool call.
#[derive(Debug, Clone)]
pub struct Workdir {
    root: PathBuf,
}

impl Workdir {
    pub fn new(workdir: &Path) -> Result<Workdir, PathError> {
        let root = std::fs::canonicalize(workdir).map_err(|source| PathError::Workdir {
            workdir: workdir.display().to_string(),
            source,
        })?;
        if !root.is_dir() {
            return Err(PathError::Workdir {
                workdir: workdir.display().to_string(),
                source: io::Error::other("not a folder"),
            });
        }
        Ok(Workdir { root })
    }

    /// The canonical working folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Resolves `path` (relative to the working folder, or absolute inside it) to a canonical
    /// path inside the working folder, or refuses it.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, PathError> {
        if path.trim().is_empty() {
            return Err(PathError::Empty);
        }
        if path.contains('\0') {
            return Err(PathError::Nul {
                path: path.to_string(),
            });
        }
        let outside = || PathError::Outside {
            path: path.to_string(),
            workdir: self.root.display().to_string(),
        };
        let joined = self.root.join(path);
        let lexical = normalize(&joined).ok_or_else(outside)?;

        // Walk up to the longest ancestor that exists (as an entry, symlinks included).
        let mut existing = lexical.as_path();
        let mut rest: Vec<&std::ffi::OsStr> = Vec::new();
        loop {
            match std::fs::symlink_metadata(existing) {
                Ok(_) => break,
                Err(err) if err.kind() == io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(PathError::Io {
                        path: path.to_string(),
                        source,
                    });
                }
            }
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name);
                    existing = parent;
                }
                // Only the filesystem root has no parent, and it always exists.
                _ => return Err(outside()),
            }
        }
        let canonical = match std::fs::canonicalize(existing) {
            Ok(canonical) => canonical,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(PathError::Dangling {
                    path: path.to_string(),
                });
            }
            Err(source) => {
                return Err(PathError::Io {
                    path: path.to_string(),
                    source,
                });
            }
        };
        let mut resolved = canonical;
        for name in rest.iter().rev() {
            resolved.push(name);
        }
        if resolved.starts_with(&self.root) {
            Ok(resolved)
        } else {
            Err(outside())
        }
    }

    /// How a resolved path is shown to the model: relative to the working folder.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

/// Folds `.` and `..` without touching the filesystem; `None` when `..` climbs above the root.
fn normalize(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(prefix) => out.push(prefix.as_os_str()),
            Component::RootDir => out.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::Normal(name) => out.push(name),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_dots() {
        assert_eq!(
            normalize(Path::new("/a/./b/../c")),
            Some(PathBuf::from("/a/c"))
        );
        assert_eq!(normalize(Path::new("/a/../..")), None);
    }
}
