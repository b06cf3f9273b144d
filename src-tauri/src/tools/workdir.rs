//! Path confinement: every path a tool touches is opened *beneath* the working folder.
//!
//! The folder is held open as a directory handle and each path is opened relative to it with
//! `openat2(RESOLVE_BENEATH)`: the kernel resolves `..` and symlinks and refuses, atomically,
//! anything that would leave the folder. There is no check-then-open window for a swapped
//! symlink to slip through. Kernels without `openat2` (before 5.6) get a component-by-component
//! walk with `O_NOFOLLOW`, which refuses symlinks altogether.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

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
    #[error(
        "path {path:?} goes through a symlink, which this system cannot follow safely (its kernel has no openat2); use the real path"
    )]
    Symlink { path: String },
    #[error("path {path:?} cannot be opened: {source}")]
    Io { path: String, source: io::Error },
}

impl PathError {
    /// True when the path (or a folder on the way) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, PathError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
    }
}

/// The working folder, opened once per tool call.
#[derive(Debug)]
pub struct Workdir {
    /// Canonical path of the folder.
    root: PathBuf,
    /// The folder as configured (maybe through a symlink): absolute paths may use either.
    given: PathBuf,
    fd: OwnedFd,
}

/// A file or folder opened beneath the working folder, with its real (canonical) path.
#[derive(Debug)]
pub struct Opened {
    pub fd: OwnedFd,
    pub real: PathBuf,
}

/// Where a write goes: the folder it lands in (held open) and the name inside it.
#[derive(Debug)]
pub struct WriteTarget {
    pub dir: OwnedFd,
    pub name: OsString,
    /// The real path the file has (or will have).
    pub real: PathBuf,
    /// The existing file's permission bits, when it exists.
    pub existing_mode: Option<u32>,
}

impl Workdir {
    pub fn new(workdir: &Path) -> Result<Workdir, PathError> {
        let fail = |source| PathError::Workdir {
            workdir: workdir.display().to_string(),
            source,
        };
        let root = std::fs::canonicalize(workdir).map_err(fail)?;
        let fd = rustix::fs::open(
            &root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|errno| fail(errno.into()))?;
        Ok(Workdir {
            root,
            given: workdir.to_path_buf(),
            fd,
        })
    }

    /// The canonical working folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path the model gave, relative to the folder: `~` means the home folder, absolute
    /// paths must be inside the folder, and relative paths stay as written (the kernel resolves
    /// their `..` beneath the folder).
    pub fn relative(&self, path: &str) -> Result<PathBuf, PathError> {
        if path.trim().is_empty() {
            return Err(PathError::Empty);
        }
        if path.contains('\0') {
            return Err(PathError::Nul {
                path: path.to_string(),
            });
        }
        let expanded = match (path.strip_prefix('~'), dirs::home_dir()) {
            (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
                home.join(rest.trim_start_matches('/'))
            }
            _ => PathBuf::from(path),
        };
        if !expanded.is_absolute() {
            // `..` that climbs above the folder on paper is refused before the kernel sees it
            // (a missing folder on the way would otherwise read as "not found").
            if climbs_above(&expanded) {
                return Err(self.outside(path));
            }
            return Ok(expanded);
        }
        let folded = fold(&expanded);
        for base in [&self.root, &fold(&self.given)] {
            if let Ok(rest) = folded.strip_prefix(base) {
                return Ok(rest.to_path_buf());
            }
        }
        Err(self.outside(path))
    }

    /// Opens `rel` beneath the folder with `flags` (O_CLOEXEC is added).
    pub fn open(&self, rel: &Path, flags: OFlags) -> Result<Opened, PathError> {
        let fd = match open_beneath(self.fd.as_fd(), rel, flags, Mode::empty()) {
            Err(Errno::XDEV) => self.open_through_absolute_link(rel, flags),
            other => other,
        }
        .map_err(|errno| self.map_errno(errno, rel))?;
        let real = self.real_path(&fd, rel)?;
        Ok(Opened { fd, real })
    }

    /// The kernel refuses every absolute symlink beneath the folder, even one that points back
    /// inside it (tools and editors make those). Such a path is followed by name once and, when
    /// it lands inside, opened again beneath the folder: that second open is confined too, so a
    /// link swapped in between still cannot lead outside.
    fn open_through_absolute_link(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        let inside = std::fs::canonicalize(self.root.join(rel))
            .ok()
            .and_then(|real| real.strip_prefix(&self.root).ok().map(Path::to_path_buf))
            .ok_or(Errno::XDEV)?;
        open_beneath(self.fd.as_fd(), &inside, flags, Mode::empty())
    }

    /// The real path `path` has or would have: the longest existing part resolved beneath the
    /// folder, the rest appended. For checks before a tool runs; the tool itself opens the path
    /// again, beneath the folder, so a swap in between cannot lead outside.
    pub fn resolve(&self, path: &str) -> Result<PathBuf, PathError> {
        let rel = self.relative(path)?;
        let mut existing = rel.clone();
        let mut rest: Vec<OsString> = Vec::new();
        loop {
            match self.open(&existing, OFlags::PATH) {
                Ok(opened) => {
                    let mut real = opened.real;
                    for name in rest.iter().rev() {
                        real.push(name);
                    }
                    return Ok(fold(&real));
                }
                Err(error) if error.is_not_found() => {}
                Err(error) => return Err(error),
            }
            match (existing.parent(), existing.file_name()) {
                (Some(parent), Some(name)) => {
                    rest.push(name.to_os_string());
                    existing = parent.to_path_buf();
                }
                // `existing` is now "" or ".": the folder itself always opens.
                _ => return Ok(self.root.clone()),
            }
        }
    }

    /// Where a write to `path` goes. With `create_dirs`, missing parent folders are made (each
    /// one beneath the folder). A symlink at the end is followed to its target inside the
    /// folder, so writing through it updates the target rather than replacing the link.
    pub fn write_target(&self, path: &str, create_dirs: bool) -> Result<WriteTarget, PathError> {
        let rel = self.relative(path)?;
        if is_the_folder(&rel) {
            return Err(PathError::Io {
                path: path.to_string(),
                source: io::Error::new(io::ErrorKind::IsADirectory, "it is the working folder"),
            });
        }
        match self.open(&rel, OFlags::PATH) {
            Ok(opened) => {
                let stat = rustix::fs::fstat(&opened.fd).map_err(|e| self.io(path, e))?;
                if FileType::from_raw_mode(stat.st_mode) == FileType::Directory {
                    return Err(PathError::Io {
                        path: path.to_string(),
                        source: io::Error::new(io::ErrorKind::IsADirectory, "it is a folder"),
                    });
                }
                let (parent, name) = split(&opened.real).ok_or_else(|| self.outside(path))?;
                let parent_rel = parent
                    .strip_prefix(&self.root)
                    .map_err(|_| self.outside(path))?;
                let dir = self.open(parent_rel, OFlags::PATH | OFlags::DIRECTORY)?;
                Ok(WriteTarget {
                    dir: dir.fd,
                    name: name.to_os_string(),
                    real: opened.real,
                    existing_mode: Some(stat.st_mode & 0o7777),
                })
            }
            Err(error) if error.is_not_found() => {
                let (parent_rel, name) = match (rel.parent(), rel.file_name()) {
                    (Some(parent), Some(name)) => (parent.to_path_buf(), name.to_os_string()),
                    _ => return Err(self.outside(path)),
                };
                let dir = match self.open(&parent_rel, OFlags::PATH | OFlags::DIRECTORY) {
                    Ok(dir) => dir,
                    Err(error) if error.is_not_found() && create_dirs => {
                        self.create_dirs(&parent_rel)?
                    }
                    Err(error) => return Err(error),
                };
                if let Ok(stat) = rustix::fs::statat(&dir.fd, &name, AtFlags::SYMLINK_NOFOLLOW)
                    && FileType::from_raw_mode(stat.st_mode) == FileType::Symlink
                {
                    return Err(PathError::Dangling {
                        path: path.to_string(),
                    });
                }
                let real = dir.real.join(&name);
                Ok(WriteTarget {
                    dir: dir.fd,
                    name,
                    real,
                    existing_mode: None,
                })
            }
            Err(error) => Err(error),
        }
    }

    /// Makes the folders of `rel` that are missing, each one beneath the working folder.
    fn create_dirs(&self, rel: &Path) -> Result<Opened, PathError> {
        let mut prefix = PathBuf::new();
        let mut opened = self.open(Path::new("."), OFlags::PATH | OFlags::DIRECTORY)?;
        for component in rel.components() {
            prefix.push(component);
            match self.open(&prefix, OFlags::PATH | OFlags::DIRECTORY) {
                Ok(next) => opened = next,
                Err(error) if error.is_not_found() => {
                    let Component::Normal(name) = component else {
                        return Err(error);
                    };
                    match rustix::fs::mkdirat(&opened.fd, name, Mode::from_raw_mode(0o777)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(errno) => return Err(self.map_errno(errno, &prefix)),
                    }
                    opened = self.open(&prefix, OFlags::PATH | OFlags::DIRECTORY)?;
                }
                Err(error) => return Err(error),
            }
        }
        Ok(opened)
    }

    /// How a resolved path is shown to the model: relative to the working folder.
    pub fn display(&self, path: &Path) -> String {
        match path.strip_prefix(&self.root) {
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }

    fn real_path(&self, fd: &OwnedFd, rel: &Path) -> Result<PathBuf, PathError> {
        let real = match std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())) {
            Ok(real) => real,
            // No /proc: the kernel kept the open beneath the folder, so the joined path is
            // inside it (maybe not canonical).
            Err(_) => fold(&self.root.join(rel)),
        };
        if real.starts_with(&self.root) {
            Ok(real)
        } else {
            Err(self.outside(&rel.display().to_string()))
        }
    }

    fn map_errno(&self, errno: Errno, rel: &Path) -> PathError {
        let path = rel.display().to_string();
        match errno {
            // RESOLVE_BENEATH refuses an escape (by `..`, an absolute link, a mount) with EXDEV.
            Errno::XDEV => self.outside(&path),
            Errno::LOOP if !has_openat2() => PathError::Symlink { path },
            other => PathError::Io {
                path,
                source: other.into(),
            },
        }
    }

    fn io(&self, path: &str, errno: Errno) -> PathError {
        PathError::Io {
            path: path.to_string(),
            source: errno.into(),
        }
    }

    fn outside(&self, path: &str) -> PathError {
        PathError::Outside {
            path: path.to_string(),
            workdir: self.root.display().to_string(),
        }
    }
}

const OPENAT2_UNKNOWN: u8 = 0;
const OPENAT2_YES: u8 = 1;
const OPENAT2_NO: u8 = 2;
static OPENAT2: AtomicU8 = AtomicU8::new(OPENAT2_UNKNOWN);

fn has_openat2() -> bool {
    OPENAT2.load(Ordering::Relaxed) != OPENAT2_NO
}

/// `openat2(dir, rel, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`, or the `O_NOFOLLOW` walk on
/// kernels without it.
fn open_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let rel = if rel.as_os_str().is_empty() {
        Path::new(".")
    } else {
        rel
    };
    let flags = flags | OFlags::CLOEXEC;
    if has_openat2() {
        match rustix::fs::openat2(
            dir,
            rel,
            flags,
            mode,
            ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
        ) {
            Err(Errno::NOSYS) => OPENAT2.store(OPENAT2_NO, Ordering::Relaxed),
            other => {
                OPENAT2.store(OPENAT2_YES, Ordering::Relaxed);
                return other;
            }
        }
    }
    walk_beneath(dir, rel, flags, mode)
}

/// Opens `rel` one component at a time without following any symlink; `..` may not climb above
/// `dir`.
fn walk_beneath(
    dir: BorrowedFd<'_>,
    rel: &Path,
    flags: OFlags,
    mode: Mode,
) -> Result<OwnedFd, Errno> {
    let parts: Vec<Component<'_>> = rel
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    let walk = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut stack: Vec<OwnedFd> = vec![rustix::fs::openat(dir, ".", walk, Mode::empty())?];
    let Some((last, folders)) = parts.split_last() else {
        return rustix::fs::openat(dir, ".", flags, mode);
    };
    for part in folders {
        match part {
            Component::Normal(name) => {
                let top = stack.last().ok_or(Errno::XDEV)?;
                let next = rustix::fs::openat(top, *name, walk, Mode::empty())?;
                stack.push(next);
            }
            Component::ParentDir => {
                if stack.len() <= 1 {
                    return Err(Errno::XDEV);
                }
                stack.pop();
            }
            Component::RootDir | Component::Prefix(_) | Component::CurDir => {
                return Err(Errno::XDEV);
            }
        }
    }
    let top = stack.last().ok_or(Errno::XDEV)?;
    match last {
        Component::Normal(name) => rustix::fs::openat(top, *name, flags | OFlags::NOFOLLOW, mode),
        Component::ParentDir if stack.len() > 1 => {
            stack.pop();
            let top = stack.last().ok_or(Errno::XDEV)?;
            rustix::fs::openat(top, ".", flags, mode)
        }
        Component::CurDir => rustix::fs::openat(top, ".", flags, mode),
        Component::ParentDir | Component::RootDir | Component::Prefix(_) => Err(Errno::XDEV),
    }
}

/// True when `..` in a relative path goes above where it starts, counted on paper.
fn climbs_above(rel: &Path) -> bool {
    let mut depth: usize = 0;
    for component in rel.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::ParentDir => match depth.checked_sub(1) {
                Some(up) => depth = up,
                None => return true,
            },
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    false
}

fn is_the_folder(rel: &Path) -> bool {
    rel.components().all(|c| matches!(c, Component::CurDir))
}

fn split(path: &Path) -> Option<(&Path, &OsStr)> {
    Some((path.parent()?, path.file_name()?))
}

/// Folds `.` and `..` without touching the filesystem (`..` at `/` stays at `/`).
pub fn fold(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Prefix(_) | Component::RootDir => out.push(component.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(name) => out.push(name),
        }
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn fold_dots() {
        assert_eq!(fold(Path::new("/a/./b/../c")), PathBuf::from("/a/c"));
        assert_eq!(fold(Path::new("/a/../..")), PathBuf::from("/"));
    }

    #[test]
    fn the_walk_refuses_symlinks_and_escapes() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "a").unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let root =
            rustix::fs::open(dir.path(), OFlags::PATH | OFlags::DIRECTORY, Mode::empty()).unwrap();
        let open =
            |rel: &str| walk_beneath(root.as_fd(), Path::new(rel), OFlags::RDONLY, Mode::empty());
        assert!(open("sub/a.txt").is_ok());
        assert!(open("sub/../sub/a.txt").is_ok());
        assert_eq!(open("../x").err(), Some(Errno::XDEV));
        assert_eq!(open("sub/../../x").err(), Some(Errno::XDEV));
        assert!(open("link/passwd").is_err());
        assert!(open("link").is_err());
    }
}
