//! Compressing a finished log to `<id>.jsonl.zst` and back. zstd level 3 with long-distance
//! matching, one independent frame per 1 MiB of text and zstd's seek table at the end, so a
//! reader can start anywhere (see `source.rs`).
//!
//! Both switches are atomic; a crash at any point leaves one readable copy:
//! - compress: write and fsync `<id>.jsonl.zst.tmp`, check it reads back equal, rename it to
//!   `<id>.jsonl.zst`, fsync the folder, remove `<id>.jsonl`, fsync the folder. All of it
//!   under the log's writer lock, so no writer appends meanwhile and a running or locked log
//!   is never compressed.
//! - decompress (to resume): write and fsync a temporary plain copy, link it as `<id>.jsonl`
//!   (never over an existing one), then the writer removes `<id>.jsonl.zst` under its lock.
//!
//! While both forms exist the plain one is the truth.

use std::fs::File;
use std::io::{Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use zstd_safe::seekable::FrameLog;
use zstd_safe::{CParameter, OutBuffer};

use crate::history::durable::{sync_parent, temp_path};
use crate::history::error::HistoryError;
use crate::history::layout::{compressed_path, plain_path};
use crate::history::lock::{is_locked, open_locked, still_there};
use crate::history::source::{LogSource, READ_CHUNK};

/// Plain bytes per seekable frame: reading anywhere decompresses at most this much extra.
pub const FRAME_SIZE: usize = 1024 * 1024;
/// zstd level (3 is zstd's default: fast, and most of the gain on JSON text).
pub const LEVEL: i32 = 3;

/// Where a compaction is; a test hook may stop it at any of these, leaving the files as a
/// crash there would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// A frame of the temporary file was written (its index, from 0).
    Frame(usize),
    /// `<id>.jsonl.zst.tmp` is complete, synced and checked.
    TempReady,
    /// It was renamed to `<id>.jsonl.zst`; the plain log still exists.
    Renamed,
    /// The plain log was removed.
    Removed,
}

/// What became of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Compacted {
    /// Compressed: plain and compressed sizes in bytes.
    Done { plain: u64, compressed: u64 },
    /// Left as it is, and why (a writer holds it, it is already compressed, ...).
    Skipped(SkipReason),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SkipReason {
    /// A writer holds the log: its session is running.
    Locked,
    /// Only the compressed form exists.
    AlreadyCompressed,
    /// Stopped by the caller (cancel, or a test's crash point).
    Stopped,
}

/// Compresses the plain log at `path` (either form of its name). `at` sees each step and may
/// stop the work there (cancel; tests stop it to leave what a crash would).
pub fn compress_log(
    path: &Path,
    at: &mut dyn FnMut(Step) -> ControlFlow<()>,
) -> Result<Compacted, HistoryError> {
    let plain = plain_path(path);
    let target = compressed_path(&plain);
    let lock = match open_locked(&plain) {
        Ok(file) => file,
        Err(error) if is_locked(&error) => return Ok(Compacted::Skipped(SkipReason::Locked)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound && target.exists() => {
            return Ok(Compacted::Skipped(SkipReason::AlreadyCompressed));
        }
        Err(error) => return Err(HistoryError::io("open the session log", &plain, error)),
    };
    let temp = temp_path(&target);
    let written = write_compressed(&plain, &temp, at);
    let plain_size = match written {
        Ok(ControlFlow::Continue(size)) => size,
        Ok(ControlFlow::Break(())) => {
            let _ = std::fs::remove_file(&temp);
            return Ok(Compacted::Skipped(SkipReason::Stopped));
        }
        Err(error) => {
            let _ = std::fs::remove_file(&temp);
            return Err(error);
        }
    };
    if at(Step::TempReady).is_break() {
        return Ok(Compacted::Skipped(SkipReason::Stopped));
    }
    // Still ours? (A writer cannot have appended: we hold the lock. The file could only have
    // been replaced by something that ignores it.)
    if !still_there(&lock, &plain).map_err(|e| HistoryError::io("check", &plain, e))? {
        let _ = std::fs::remove_file(&temp);
        return Ok(Compacted::Skipped(SkipReason::Stopped));
    }
    std::fs::rename(&temp, &target)
        .map_err(|e| HistoryError::io("rename the compressed log to", &target, e))?;
    sync_parent(&target).map_err(|e| HistoryError::io("sync the folder of", &target, e))?;
    if at(Step::Renamed).is_break() {
        return Ok(Compacted::Skipped(SkipReason::Stopped));
    }
    std::fs::remove_file(&plain)
        .map_err(|e| HistoryError::io("remove the plain log", &plain, e))?;
    sync_parent(&plain).map_err(|e| HistoryError::io("sync the folder of", &plain, e))?;
    drop(lock);
    let compressed = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    // Reported after the work: stopping here changes nothing on disk.
    let _ = at(Step::Removed);
    Ok(Compacted::Done {
        plain: plain_size,
        compressed,
    })
}

/// Writes `plain` compressed to `temp` and syncs it, then reads it back and compares. Returns
/// the plain size.
fn write_compressed(
    plain: &Path,
    temp: &Path,
    at: &mut dyn FnMut(Step) -> ControlFlow<()>,
) -> Result<ControlFlow<(), u64>, HistoryError> {
    let io = |action: &'static str| move |e: std::io::Error| HistoryError::io(action, temp, e);
    let mut input =
        File::open(plain).map_err(|e| HistoryError::io("open the session log", plain, e))?;
    let mut output = crate::private::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(io("create the compressed log"))?;
    let mut compressor = zstd::bulk::Compressor::new(LEVEL).map_err(io("start zstd for"))?;
    for parameter in [
        CParameter::EnableLongDistanceMatching(true),
        CParameter::ChecksumFlag(true),
    ] {
        compressor
            .set_parameter(parameter)
            .map_err(io("set up zstd for"))?;
    }
    let mut frames = FrameLog::try_create(false).ok_or_else(|| {
        HistoryError::io("start zstd for", temp, std::io::Error::other("no memory"))
    })?;
    let mut chunk = vec![0u8; FRAME_SIZE];
    let mut frame = Vec::with_capacity(zstd_safe::compress_bound(FRAME_SIZE));
    let mut total: u64 = 0;
    let mut index = 0;
    loop {
        let n = read_full(&mut input, &mut chunk)
            .map_err(|e| HistoryError::io("read the session log", plain, e))?;
        if n == 0 {
            break;
        }
        frame.clear();
        compressor
            .compress_to_buffer(&chunk[..n], &mut frame)
            .map_err(io("compress into"))?;
        output.write_all(&frame).map_err(io("write"))?;
        let sizes = (u32::try_from(frame.len()), u32::try_from(n));
        let (Ok(compressed), Ok(plain_len)) = sizes else {
            return Err(HistoryError::io(
                "write",
                temp,
                std::io::Error::other("frame too large"),
            ));
        };
        frames
            .log_frame(compressed, plain_len, None)
            .map_err(|code| zstd_error(temp, code))?;
        total += n as u64;
        if at(Step::Frame(index)).is_break() {
            return Ok(ControlFlow::Break(()));
        }
        index += 1;
    }
    let mut table: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        table.clear();
        let left = {
            let mut out = OutBuffer::around(&mut table);
            frames
                .write_seek_table(&mut out)
                .map_err(|code| zstd_error(temp, code))?
        };
        output.write_all(&table).map_err(io("write"))?;
        if left == 0 {
            break;
        }
    }
    output.sync_all().map_err(io("sync"))?;
    drop(output);
    verify(plain, temp, total)?;
    Ok(ControlFlow::Continue(total))
}

/// Reads until `buf` is full or the file ends.
fn read_full(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(filled)
}

/// The compressed file reads back as exactly the plain one: nothing is removed on the word of
/// a file that was never read.
fn verify(plain: &Path, compressed: &Path, len: u64) -> Result<(), HistoryError> {
    let mut source = LogSource::open_as(compressed, true)?;
    let mismatch = || HistoryError::NotASession {
        path: compressed.to_path_buf(),
        reason: "it does not read back as the log it was made from; the plain log is kept".into(),
    };
    if source.len() != len {
        return Err(mismatch());
    }
    let mut input =
        File::open(plain).map_err(|e| HistoryError::io("open the session log", plain, e))?;
    let mut expected = vec![0u8; READ_CHUNK];
    let mut got = vec![0u8; READ_CHUNK];
    let mut at = 0u64;
    loop {
        let n = read_full(&mut input, &mut expected)
            .map_err(|e| HistoryError::io("read the session log", plain, e))?;
        if n == 0 {
            return Ok(());
        }
        source.read_exact_at(at, &mut got[..n])?;
        if got[..n] != expected[..n] {
            return Err(mismatch());
        }
        at += n as u64;
    }
}

fn zstd_error(path: &Path, code: usize) -> HistoryError {
    HistoryError::io(
        "compress",
        path,
        std::io::Error::other(zstd_safe::get_error_name(code)),
    )
}

/// Makes sure the log named by `path` exists in plain form, decompressing it if only the
/// compressed form exists (to resume it, or append a record). Returns the plain path. The
/// compressed file stays until a writer holding the lock removes it (`drop_compressed`).
pub fn ensure_plain(path: &Path) -> Result<PathBuf, HistoryError> {
    let plain = plain_path(path);
    if plain.exists() {
        return Ok(plain);
    }
    let compressed = compressed_path(&plain);
    let mut source = LogSource::open(&compressed)?;
    let temp = temp_path(&plain);
    let written = copy_out(&mut source, &temp);
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    // A link never replaces: if another process made the plain log meanwhile (and perhaps
    // appended to it already), theirs stays.
    let linked = std::fs::hard_link(&temp, &plain);
    let _ = std::fs::remove_file(&temp);
    match linked {
        Ok(()) => {
            sync_parent(&plain).map_err(|e| HistoryError::io("sync the folder of", &plain, e))?;
            Ok(plain)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(plain),
        Err(error) => Err(HistoryError::io("restore the plain log", &plain, error)),
    }
}

/// Writes all of `source`'s plain text to a new file `temp`, synced.
fn copy_out(source: &mut LogSource, temp: &Path) -> Result<(), HistoryError> {
    let io = |action: &'static str| move |e: std::io::Error| HistoryError::io(action, temp, e);
    let mut output = crate::private::private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .map_err(io("create the plain log"))?;
    let mut chunk = vec![0u8; READ_CHUNK];
    loop {
        let n = source.read_some(&mut chunk)?;
        if n == 0 {
            break;
        }
        output.write_all(&chunk[..n]).map_err(io("write"))?;
    }
    output.sync_all().map_err(io("sync"))
}

/// Removes the compressed copy of a log whose plain form is the truth. Only a holder of the
/// plain log's writer lock may call this (a compaction in progress holds it too, so this never
/// removes the copy a compaction is about to switch to).
pub fn drop_compressed(plain: &Path) -> Result<(), HistoryError> {
    let compressed = compressed_path(plain);
    match std::fs::remove_file(&compressed) {
        Ok(()) => sync_parent(&compressed)
            .map_err(|e| HistoryError::io("sync the folder of", &compressed, e)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(HistoryError::io(
            "remove the old compressed log",
            &compressed,
            error,
        )),
    }
}

/// Removes temporary files that a compaction or a decompression left behind when its process
/// died (`<name>.tmp-<pid>-<random>` whose process is gone), in the folder of `path`.
pub fn sweep_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let Some((_, tail)) = name.rsplit_once(".tmp-") else {
            continue;
        };
        let pid = tail.split('-').next().and_then(|p| p.parse::<i32>().ok());
        if pid.is_some_and(|pid| !process_alive(pid)) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

fn process_alive(pid: i32) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn sample(lines: usize) -> Vec<u8> {
        let mut text = Vec::new();
        for i in 0..lines {
            text.extend_from_slice(
                format!(
                    "{{\"n\":{i},\"text\":\"line {i} of a sample log {}\"}}\n",
                    i * 7919 % 1000
                )
                .as_bytes(),
            );
        }
        text
    }

    #[test]
    fn compresses_reads_anywhere_and_restores() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        let text = sample(60_000); // a few MiB: several frames
        std::fs::write(&plain, &text).unwrap();
        let done = compress_log(&plain, &mut |_| ControlFlow::Continue(())).unwrap();
        let Compacted::Done {
            plain: size,
            compressed,
        } = done
        else {
            panic!("{done:?}")
        };
        assert_eq!(size, text.len() as u64);
        assert!(compressed * 5 < size, "{compressed} of {size}");
        assert!(!plain.exists());
        let zst = compressed_path(&plain);
        let mut source = LogSource::open(&zst).unwrap();
        assert!(source.compressed());
        assert_eq!(source.len(), text.len() as u64);
        // A range across a frame boundary.
        let start = FRAME_SIZE as u64 - 100;
        let mut got = vec![0u8; 300];
        source.read_exact_at(start, &mut got).unwrap();
        assert_eq!(got, text[start as usize..start as usize + 300]);
        // Lines from the middle, to the end.
        let mid = text[..text.len() / 2]
            .iter()
            .rposition(|b| *b == b'\n')
            .unwrap()
            + 1;
        let mut count = 0;
        let end = source
            .lines_from(mid as u64, true, |_, _| {
                count += 1;
                true
            })
            .unwrap();
        assert_eq!(end, text.len() as u64);
        assert_eq!(count, text[mid..].iter().filter(|b| **b == b'\n').count());
        // Back to plain, then the compressed copy goes.
        assert_eq!(ensure_plain(&zst).unwrap(), plain);
        assert_eq!(std::fs::read(&plain).unwrap(), text);
        drop_compressed(&plain).unwrap();
        assert!(!zst.exists());
    }

    #[test]
    fn a_locked_log_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.jsonl");
        std::fs::write(&plain, sample(10)).unwrap();
        let _writer = open_locked(&plain).unwrap();
        let outcome = compress_log(&plain, &mut |_| ControlFlow::Continue(())).unwrap();
        assert_eq!(outcome, Compacted::Skipped(SkipReason::Locked));
        assert!(plain.exists() && !compressed_path(&plain).exists());
    }
}
