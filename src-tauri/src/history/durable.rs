//! Making file changes durable: a new file's folder entry, a rename, a removal survive a power
//! cut only once their folder is synced.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Makes a folder's entries durable (`fsync` on the folder). Where folders cannot be opened
/// for that (not Unix), the file system's own ordering has to do.
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// `sync_dir` of the folder that holds `path`.
pub fn sync_parent(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => sync_dir(parent),
        Some(_) | None => Ok(()),
    }
}

/// `create_dir_all`, and every folder it had to make synced into its parent, so a file made
/// in it next cannot be lost with its folder.
pub fn create_dirs_synced(dir: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = Some(dir);
    while let Some(d) = at {
        if d.as_os_str().is_empty() || d.is_dir() {
            break;
        }
        missing.push(d.to_path_buf());
        at = d.parent();
    }
    std::os::unix::fs::DirBuilderExt::mode(std::fs::DirBuilder::new().recursive(true), 0o700)
        .create(dir)?;
    // Innermost first: each new folder's entry lives in its parent.
    for made in &missing {
        sync_parent(made)?;
    }
    Ok(())
}

/// `<path>.tmp-<pid>-<random>`: a temporary file of its own beside `path`, so two processes
/// never write the same one (and `compress::sweep_temps` can tell a dead process's leftovers).
pub fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(
        ".tmp-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    PathBuf::from(name)
}

/// Writes `bytes` to `path` as a whole or not at all: a temporary file beside it, synced, then
/// renamed over it, and the folder synced.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut name = path.as_os_str().to_os_string();
    name.push(format!(
        ".tmp-{}-{:08x}",
        std::process::id(),
        fastrand::u32(..)
    ));
    let temp = PathBuf::from(name);
    let written = (|| {
        let mut file = File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    std::fs::rename(&temp, path)?;
    sync_parent(path)
}
