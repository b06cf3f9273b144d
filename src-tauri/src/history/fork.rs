//! Forking a session: editing an earlier message, or regenerating the last reply, starts a new
//! session whose header records `forked_from` (the session and the message number) and which
//! holds a copy of the history before that message. The original log is only read.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::history::durable::{create_dirs_synced, sync_parent, temp_path};
use crate::history::error::HistoryError;
use crate::history::layout::session_path;
use crate::history::reader::{open_log, recovered_header};
use crate::history::record::{ForkOrigin, Header, Line, Record, parse_line};
use crate::message::Message;

/// Creates, in `sessions_dir`, a fork of the session whose log is at `source`: a new session
/// holding the messages (and the todo snapshots and usage) before message number `at`, which
/// must be a user message (the one edited, or the one whose reply is regenerated). Turn
/// records and the original's title, pin and archive records are not copied. Returns the
/// fork's header and log path. The fork's log appears complete or not at all.
pub fn fork(
    sessions_dir: &Path,
    source: &Path,
    at: u64,
) -> Result<(Header, PathBuf), HistoryError> {
    let original = first_header(source)?;
    let mut header = Header::new(original.provider, original.model, original.workdir);
    header.forked_from = Some(ForkOrigin {
        id: original.id,
        message_index: at,
    });
    let path = session_path(sessions_dir, header.created, &header.id);
    if let Some(parent) = path.parent() {
        create_dirs_synced(parent).map_err(|e| HistoryError::io("create", parent, e))?;
    }
    let temp = temp_path(&path);
    let made = copy_into(&temp, &header, source, at).and_then(|()| {
        std::fs::rename(&temp, &path).map_err(|e| HistoryError::io("name the fork", &path, e))?;
        sync_parent(&path).map_err(|e| HistoryError::io("sync the folder of", &path, e))
    });
    if let Err(error) = made {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    Ok((header, path))
}

/// The header on line 1 of `source`, or the one made from its file name when line 1 is damaged.
fn first_header(source: &Path) -> Result<Header, HistoryError> {
    let mut found = None;
    open_log(source)?.lines_from(0, true, |_, line| {
        if let Line::Record(record) = parse_line(line)
            && let Record::Session(header) = *record
        {
            found = Some(header);
        }
        false
    })?;
    found
        .or_else(|| recovered_header(source, None))
        .ok_or_else(|| HistoryError::NotASession {
            path: source.to_path_buf(),
            reason: "it has no session header on its first line".into(),
        })
}

/// Writes the fork's header and then the lines of `source` before message `at`, one at a
/// time, to `temp`, synced.
fn copy_into(temp: &Path, header: &Header, source: &Path, at: u64) -> Result<(), HistoryError> {
    let io = |e: std::io::Error| HistoryError::io("write the fork's log", temp, e);
    let line = Record::Session(header.clone())
        .to_line()
        .map_err(|e| io(std::io::Error::other(e)))?;
    let file = crate::private::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(io)?;
    let mut out = std::io::BufWriter::new(file);
    out.write_all(line.as_bytes()).map_err(io)?;
    let mut index = 0u64;
    let mut starts_at_user = false;
    let mut failed: Option<std::io::Error> = None;
    open_log(source)?.lines_from(0, true, |_, line| {
        let Line::Record(record) = parse_line(line) else {
            return true;
        };
        let keep = match &*record {
            Record::Message { message, .. } => {
                if index == at {
                    starts_at_user = matches!(message, Message::User { .. });
                    return false;
                }
                index += 1;
                true
            }
            Record::Todo { .. } | Record::Usage { .. } => true,
            Record::Session(_)
            | Record::TurnStart { .. }
            | Record::TurnEnd { .. }
            | Record::Title { .. }
            | Record::Pin { .. }
            | Record::Archive { .. } => false,
        };
        if keep && let Err(error) = out.write_all(line).and_then(|()| out.write_all(b"\n")) {
            failed = Some(error);
            return false;
        }
        true
    })?;
    if let Some(error) = failed {
        return Err(io(error));
    }
    if !starts_at_user {
        return Err(HistoryError::NotFound(format!(
            "user message {at} in {} (a fork starts at a user message)",
            source.display()
        )));
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)
}
