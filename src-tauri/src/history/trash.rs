//! Deleting a session moves its log to `<data dir>/trash/`, beside a small note of when and
//! from where (`<id>.json`); restoring moves it back. Logs in the trash for more than 30 days
//! are removed for good.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::history::durable::{create_dirs_synced, sync_parent, write_atomic};
use crate::history::error::HistoryError;
use crate::history::layout::{
    compressed_path, current_file, file_id, is_compressed, plain_path, sessions_dir, trash_dir,
};
use crate::history::lock::{is_locked, open_locked};

/// How long a deleted session waits in the trash.
pub const KEEP: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// The note beside a log in the trash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Note {
    pub id: String,
    pub deleted: DateTime<Utc>,
    /// Where the log was, relative to the sessions folder, in plain form (`YYYY/MM/DD/<id>.jsonl`).
    pub original: PathBuf,
}

/// A session in the trash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trashed {
    pub note: Note,
    /// The log in the trash (plain or compressed).
    pub path: PathBuf,
}

fn note_path(data_dir: &Path, id: &str) -> PathBuf {
    trash_dir(data_dir).join(format!("{id}.json"))
}

/// Moves the log at `path` (either form) to the trash. A session whose log a writer holds
/// (running here or in another process) is refused with `InUse`.
pub fn delete(data_dir: &Path, path: &Path) -> Result<Trashed, HistoryError> {
    let plain = plain_path(path);
    let current =
        current_file(path).ok_or_else(|| HistoryError::NotFound(plain.display().to_string()))?;
    let id = file_id(&current).ok_or_else(|| HistoryError::NotASession {
        path: current.clone(),
        reason: "its name is not a session id".into(),
    })?;
    // Hold the writer's lock while the log moves, so no writer appends to it meanwhile.
    let _lock = if current == plain {
        match open_locked(&plain) {
            Ok(file) => Some(file),
            Err(error) if is_locked(&error) => return Err(HistoryError::InUse(plain)),
            Err(error) => return Err(HistoryError::io("open the session log", &plain, error)),
        }
    } else {
        None
    };
    let sessions = sessions_dir(data_dir);
    let original = plain
        .strip_prefix(&sessions)
        .map(Path::to_path_buf)
        .unwrap_or_else(|_| PathBuf::from(plain.file_name().unwrap_or_default()));
    let note = Note {
        id: id.clone(),
        deleted: Utc::now(),
        original,
    };
    let trash = trash_dir(data_dir);
    create_dirs_synced(&trash)
        .map_err(|e| HistoryError::io("create the trash folder", &trash, e))?;
    let text = serde_json::to_vec_pretty(&note).map_err(|e| {
        HistoryError::io("write the trash note in", &trash, std::io::Error::other(e))
    })?;
    let note_file = note_path(data_dir, &id);
    write_atomic(&note_file, &text).map_err(|e| HistoryError::io("write", &note_file, e))?;
    let name = current.file_name().unwrap_or_default();
    let target = trash.join(name);
    std::fs::rename(&current, &target)
        .map_err(|e| HistoryError::io("move the session log to the trash:", &current, e))?;
    if current == plain {
        // A compressed copy beside a plain log is out of date (the plain one is the truth).
        let _ = std::fs::remove_file(compressed_path(&plain));
    }
    sync_parent(&target).map_err(|e| HistoryError::io("sync", &trash, e))?;
    sync_parent(&current).map_err(|e| HistoryError::io("sync the folder of", &current, e))?;
    Ok(Trashed { note, path: target })
}

/// Every session in the trash, newest deletion first. A log found without its note (the
/// deletion was cut short) gets one now, so it expires 30 days from now.
pub fn list(data_dir: &Path) -> Vec<Trashed> {
    let trash = trash_dir(data_dir);
    let Ok(entries) = std::fs::read_dir(&trash) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(id) = file_id(&path) else {
            continue;
        };
        let note = read_note(data_dir, &id).unwrap_or_else(|| {
            let note = Note {
                original: PathBuf::from(format!("{id}.jsonl")),
                id: id.clone(),
                deleted: Utc::now(),
            };
            if let Ok(text) = serde_json::to_vec_pretty(&note) {
                let _ = write_atomic(&note_path(data_dir, &id), &text);
            }
            note
        });
        found.push(Trashed { note, path });
    }
    found.sort_by_key(|t| std::cmp::Reverse(t.note.deleted));
    found
}

fn read_note(data_dir: &Path, id: &str) -> Option<Note> {
    let text = std::fs::read(note_path(data_dir, id)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Moves the session `id` (or the one whose id starts with it) back from the trash to where
/// it was. Returns its log's path.
pub fn restore(data_dir: &Path, id: &str) -> Result<PathBuf, HistoryError> {
    let id = id.trim();
    let mut matches: Vec<Trashed> = list(data_dir)
        .into_iter()
        .filter(|t| !id.is_empty() && t.note.id.starts_with(id))
        .collect();
    if let Some(exact) = matches.iter().position(|t| t.note.id == id) {
        matches = vec![matches.swap_remove(exact)];
    }
    let trashed = match matches.len() {
        0 => return Err(HistoryError::NotFound(id.to_string())),
        1 => matches.remove(0),
        _ => return Err(HistoryError::Ambiguous(id.to_string())),
    };
    let sessions = sessions_dir(data_dir);
    let mut original = trashed.note.original.clone();
    if original.is_absolute() || original.components().count() != 4 {
        // Not a `YYYY/MM/DD/<id>.jsonl` path: date it by its header.
        original = crate::history::reader::scan_log(&trashed.path, |_| {})
            .ok()
            .and_then(|(scan, _)| scan.resolved_header(&trashed.path))
            .and_then(|header| {
                crate::history::layout::session_path(&sessions, header.created, &header.id)
                    .strip_prefix(&sessions)
                    .ok()
                    .map(Path::to_path_buf)
            })
            .unwrap_or(original);
    }
    let plain = sessions.join(&original);
    if current_file(&plain).is_some() {
        return Err(HistoryError::Io {
            action: "restore over",
            path: plain,
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    let target = if is_compressed(&trashed.path) {
        compressed_path(&plain)
    } else {
        plain
    };
    if let Some(parent) = target.parent() {
        create_dirs_synced(parent).map_err(|e| HistoryError::io("create", parent, e))?;
    }
    std::fs::rename(&trashed.path, &target).map_err(|e| {
        HistoryError::io(
            "move the session log back from the trash:",
            &trashed.path,
            e,
        )
    })?;
    sync_parent(&target).map_err(|e| HistoryError::io("sync the folder of", &target, e))?;
    let _ = std::fs::remove_file(note_path(data_dir, &trashed.note.id));
    Ok(target)
}

/// Removes for good what has been in the trash longer than `keep`. Returns how many.
pub fn empty_expired(data_dir: &Path, keep: Duration) -> usize {
    let cutoff = Utc::now() - chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
    let mut removed = 0;
    for trashed in list(data_dir) {
        if trashed.note.deleted < cutoff && std::fs::remove_file(&trashed.path).is_ok() {
            let _ = std::fs::remove_file(note_path(data_dir, &trashed.note.id));
            removed += 1;
        }
    }
    if removed > 0 {
        let _ = sync_parent(&note_path(data_dir, "x"));
    }
    removed
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn expired_notes_are_removed_and_recent_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let trash = trash_dir(dir.path());
        std::fs::create_dir_all(&trash).unwrap();
        for (id, days) in [("old", 31), ("new", 2)] {
            std::fs::write(trash.join(format!("{id}.jsonl")), "{}\n").unwrap();
            let note = Note {
                id: id.into(),
                deleted: Utc::now() - chrono::Duration::days(days),
                original: PathBuf::from(format!("2025/01/01/{id}.jsonl")),
            };
            std::fs::write(
                note_path(dir.path(), id),
                serde_json::to_vec(&note).unwrap(),
            )
            .unwrap();
        }
        assert_eq!(empty_expired(dir.path(), KEEP), 1);
        let left: Vec<String> = list(dir.path()).into_iter().map(|t| t.note.id).collect();
        assert_eq!(left, ["new"]);
        assert!(!note_path(dir.path(), "old").exists());
    }
}
