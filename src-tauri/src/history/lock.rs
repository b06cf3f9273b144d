//! The one-writer lock of a session log: an exclusive `flock` held by whoever appends to the
//! plain log (a turn's writer, a compaction, a delete). It dies with its process, which is how
//! a reader tells a session whose writer is gone (`interrupted`) from one still running.

use std::fs::File;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long taking the lock retries while someone else holds it: a reader's probe
/// (`writer_alive`) holds it for microseconds and must not make a writer give up.
const CONTENDED_WAIT: Duration = Duration::from_millis(200);

/// Takes the exclusive lock on an open log, or fails with `WouldBlock` when another writer
/// holds it (after a short retry, see `CONTENDED_WAIT`).
pub fn lock_exclusive(file: &File) -> io::Result<()> {
    let deadline = Instant::now() + CONTENDED_WAIT;
    loop {
        match flock(file, libc::LOCK_EX | libc::LOCK_NB) {
            Err(error) if is_locked(&error) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// True when opening failed because another writer holds the session's lock.
pub fn is_locked(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::WouldBlock
}

/// Whether some process holds the writer's lock on the log at `path` now. A shared lock is
/// taken and dropped at once to find out; a missing file has no writer.
pub fn writer_alive(path: &Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    match flock(&file, libc::LOCK_SH | libc::LOCK_NB) {
        Ok(()) => {
            let _ = flock(&file, libc::LOCK_UN);
            false
        }
        Err(error) => is_locked(&error),
    }
}

fn flock(file: &File, operation: libc::c_int) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), operation) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Opens the plain log at `path` for appending and takes its writer's lock, making sure the
/// lock is on the file that `path` names now: a compaction or a delete may have replaced or
/// removed it between the open and the lock.
pub fn open_locked(path: &Path) -> io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .append(true)
        .open(path)?;
    lock_exclusive(&file)?;
    if !still_there(&file, path)? {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the log was moved or compressed while it was being opened",
        ));
    }
    Ok(file)
}

/// True when `path` still names the open `file`.
pub fn still_there(file: &File, path: &Path) -> io::Result<bool> {
    let on_disk = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(error) => return Err(error),
    };
    same_file(file, &on_disk)
}

#[cfg(unix)]
pub fn same_file(file: &File, on_disk: &std::fs::Metadata) -> io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let open = file.metadata()?;
    Ok(open.dev() == on_disk.dev() && open.ino() == on_disk.ino())
}

#[cfg(not(unix))]
pub fn same_file(_file: &File, _on_disk: &std::fs::Metadata) -> io::Result<bool> {
    Ok(true)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_held_lock_is_seen_and_a_dropped_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.jsonl");
        std::fs::write(&path, "{}\n").unwrap();
        assert!(!writer_alive(&path));
        let held = open_locked(&path).unwrap();
        assert!(writer_alive(&path));
        let second = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        assert!(is_locked(&lock_exclusive(&second).unwrap_err()));
        drop(held);
        assert!(!writer_alive(&path));
        assert!(!writer_alive(&dir.path().join("missing.jsonl")));
    }
}
