//! Where session logs live: `<data dir>/sessions/YYYY/MM/DD/<id>.jsonl`, or compressed as
//! `<id>.jsonl.zst` beside it; deleted ones wait in `<data dir>/trash/`. While both forms of a
//! log exist (a switch between them was cut short), the plain one is the truth.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{DateTime, Datelike, Utc};

use crate::history::error::HistoryError;

const PLAIN: &str = ".jsonl";
const COMPRESSED: &str = ".jsonl.zst";

/// `<data dir>/sessions`: where every session log lives, in `YYYY/MM/DD/` folders.
pub fn sessions_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sessions")
}

/// `<data dir>/trash`: deleted session logs, kept for 30 days.
pub fn trash_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("trash")
}

/// `<sessions dir>/YYYY/MM/DD/<id>.jsonl`, dated by the session's creation (UTC).
pub fn session_path(sessions_dir: &Path, created: DateTime<Utc>, id: &str) -> PathBuf {
    sessions_dir
        .join(format!("{:04}", created.year()))
        .join(format!("{:02}", created.month()))
        .join(format!("{:02}", created.day()))
        .join(format!("{id}{PLAIN}"))
}

/// True for a compressed log (`*.jsonl.zst`).
pub fn is_compressed(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.ends_with(COMPRESSED))
}

/// True for a file name that is a log, plain or compressed (not a temporary file).
pub fn is_log(path: &Path) -> bool {
    path.to_str()
        .is_some_and(|p| p.ends_with(PLAIN) || p.ends_with(COMPRESSED))
}

/// The plain form of a log's path (`<id>.jsonl`), whichever form `path` names.
pub fn plain_path(path: &Path) -> PathBuf {
    match path.to_str().and_then(|p| p.strip_suffix(".zst")) {
        Some(plain) if plain.ends_with(PLAIN) => PathBuf::from(plain),
        Some(_) | None => path.to_path_buf(),
    }
}

/// The compressed form of a log's path (`<id>.jsonl.zst`).
pub fn compressed_path(path: &Path) -> PathBuf {
    let plain = plain_path(path);
    let mut name = plain.into_os_string();
    name.push(".zst");
    PathBuf::from(name)
}

/// The file that holds the log named by `path` (either form) now: the plain one while it
/// exists, else the compressed one. None when neither exists.
pub fn current_file(path: &Path) -> Option<PathBuf> {
    let plain = plain_path(path);
    if plain.exists() {
        return Some(plain);
    }
    let compressed = compressed_path(path);
    compressed.exists().then_some(compressed)
}

/// The session id a log's file name carries (`<id>.jsonl` or `<id>.jsonl.zst`).
pub fn file_id(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let id = name
        .strip_suffix(COMPRESSED)
        .or_else(|| name.strip_suffix(PLAIN))?;
    (!id.is_empty()).then(|| id.to_string())
}

/// What `stat` says about a file: enough to see that it changed without opening it. A log
/// rewritten in place changes its ctime even when size and mtime are kept; one replaced by
/// a rename changes its inode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileStamp {
    pub size: u64,
    /// Nanoseconds since the epoch.
    pub mtime: i64,
    pub ctime: i64,
    pub inode: u64,
}

impl FileStamp {
    pub fn of(path: &Path) -> std::io::Result<FileStamp> {
        Ok(FileStamp::from_meta(&std::fs::metadata(path)?))
    }

    pub fn from_meta(meta: &std::fs::Metadata) -> FileStamp {
        let mtime = meta
            .modified()
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let (ctime, inode) = unix_identity(meta);
        FileStamp {
            size: meta.len(),
            mtime,
            ctime,
            inode,
        }
    }
}

#[cfg(unix)]
fn unix_identity(meta: &std::fs::Metadata) -> (i64, u64) {
    use std::os::unix::fs::MetadataExt;
    let ctime = meta
        .ctime()
        .saturating_mul(1_000_000_000)
        .saturating_add(meta.ctime_nsec());
    (ctime, meta.ino())
}

#[cfg(not(unix))]
fn unix_identity(_meta: &std::fs::Metadata) -> (i64, u64) {
    (0, 0)
}

/// A log found on disk.
#[derive(Clone, Debug)]
pub struct FoundLog {
    pub path: PathBuf,
    pub stamp: FileStamp,
}

/// Every log under `dir`, one file per session: where both forms of a log exist, the plain
/// one. Temporary files of a compression or a fork (`*.tmp`) are not logs.
pub fn walk_logs(dir: &Path) -> Vec<FoundLog> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut here: Vec<FoundLog> = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if is_log(&path)
                && let Ok(meta) = entry.metadata()
            {
                here.push(FoundLog {
                    stamp: FileStamp::from_meta(&meta),
                    path,
                });
            }
        }
        let plain: HashSet<PathBuf> = here
            .iter()
            .filter(|log| !is_compressed(&log.path))
            .map(|log| log.path.clone())
            .collect();
        found
            .extend(here.into_iter().filter(|log| {
                !is_compressed(&log.path) || !plain.contains(&plain_path(&log.path))
            }));
    }
    found
}

/// The log of session `id`, or of the one session whose id starts with `id`, found by file
/// name: works when the index is missing or stale.
pub fn find_log(sessions_dir: &Path, id: &str) -> Result<PathBuf, HistoryError> {
    let id = id.trim();
    if id.is_empty() {
        return Err(HistoryError::NotFound(id.to_string()));
    }
    let mut matches: Vec<PathBuf> = Vec::new();
    for log in walk_logs(sessions_dir) {
        match file_id(&log.path) {
            Some(name) if name == id => return Ok(log.path),
            Some(name) if name.starts_with(id) => matches.push(log.path),
            Some(_) | None => {}
        }
    }
    match matches.len() {
        0 => Err(HistoryError::NotFound(id.to_string())),
        1 => Ok(matches.remove(0)),
        _ => Err(HistoryError::Ambiguous(id.to_string())),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_of_a_path() {
        let plain = Path::new("/d/2025/01/02/abc.jsonl");
        let zst = Path::new("/d/2025/01/02/abc.jsonl.zst");
        assert_eq!(plain_path(zst), plain);
        assert_eq!(plain_path(plain), plain);
        assert_eq!(compressed_path(plain), zst);
        assert_eq!(compressed_path(zst), zst);
        assert!(is_compressed(zst) && !is_compressed(plain));
        assert!(!is_log(Path::new("/d/abc.jsonl.zst.tmp")));
        assert_eq!(file_id(zst).as_deref(), Some("abc"));
        assert_eq!(file_id(plain).as_deref(), Some("abc"));
    }

    #[test]
    fn the_plain_form_wins_while_both_exist() {
        let dir = tempfile::tempdir().unwrap();
        let day = dir.path().join("2025/01/02");
        std::fs::create_dir_all(&day).unwrap();
        std::fs::write(day.join("a.jsonl"), "x\n").unwrap();
        std::fs::write(day.join("a.jsonl.zst"), "y").unwrap();
        std::fs::write(day.join("b.jsonl.zst"), "y").unwrap();
        std::fs::write(day.join("c.jsonl.zst.tmp"), "y").unwrap();
        let mut found: Vec<String> = walk_logs(dir.path())
            .into_iter()
            .map(|l| l.path.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        found.sort();
        assert_eq!(found, ["a.jsonl", "b.jsonl.zst"]);
        assert_eq!(
            current_file(&day.join("a.jsonl.zst")),
            Some(day.join("a.jsonl"))
        );
        assert_eq!(
            current_file(&day.join("b.jsonl")),
            Some(day.join("b.jsonl.zst"))
        );
        assert_eq!(find_log(dir.path(), "b").unwrap(), day.join("b.jsonl.zst"));
        std::fs::write(day.join("abc123.jsonl"), "").unwrap();
        std::fs::write(day.join("abd999.jsonl"), "").unwrap();
        assert_eq!(
            find_log(dir.path(), "abc").unwrap(),
            day.join("abc123.jsonl")
        );
        assert!(matches!(
            find_log(dir.path(), "ab"),
            Err(HistoryError::Ambiguous(_))
        ));
        assert!(matches!(
            find_log(dir.path(), "zz"),
            Err(HistoryError::NotFound(_))
        ));
    }
}
