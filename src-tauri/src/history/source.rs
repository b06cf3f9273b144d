//! Where a log's bytes come from: the plain `<id>.jsonl`, or its compressed form
//! `<id>.jsonl.zst` (zstd's seekable format: independent frames of 1 MiB and a seek table at
//! the end). Both are read the same way, by offsets into the plain text, so an offset kept in
//! the index stays valid when a log is compressed, and reading from the middle of a
//! compressed log decompresses at most a frame more than it returns.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use zstd_safe::seekable::{AdvancedSeekable, Seekable};

use crate::history::error::HistoryError;
use crate::history::layout::is_compressed;

/// Bytes read from a log at a time (a large log is never held whole).
pub const READ_CHUNK: usize = 1024 * 1024;

enum Inner {
    Plain(File),
    Zstd(Box<AdvancedSeekable<'static, File>>),
}

/// A log opened for reading, plain or compressed, positioned by plain-text offsets.
pub struct LogSource {
    inner: Inner,
    path: PathBuf,
    pos: u64,
    /// The plain text's length when opened (a plain log may grow after that).
    len: u64,
}

impl std::fmt::Debug for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSource")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .field("len", &self.len)
            .finish()
    }
}

impl LogSource {
    /// Opens `path`; a name ending in `.zst` is read as a seekable zstd file.
    pub fn open(path: &Path) -> Result<LogSource, HistoryError> {
        Self::open_as(path, is_compressed(path))
    }

    /// Opens `path` as a plain or a compressed log, whatever its name.
    pub fn open_as(path: &Path, compressed: bool) -> Result<LogSource, HistoryError> {
        let file =
            File::open(path).map_err(|e| HistoryError::io("open the session log", path, e))?;
        if !compressed {
            let len = file
                .metadata()
                .map_err(|e| HistoryError::io("read the session log", path, e))?
                .len();
            return Ok(LogSource {
                inner: Inner::Plain(file),
                path: path.to_path_buf(),
                pos: 0,
                len,
            });
        }
        let seekable = Seekable::try_create()
            .ok_or_else(|| damaged(path, "zstd could not allocate a decompressor".into()))?
            .init_advanced(Box::new(file))
            .map_err(|code| damaged(path, zstd_safe::get_error_name(code).to_string()))?;
        let frames = seekable.num_frames();
        let len = match frames.checked_sub(1) {
            None => 0,
            Some(last) => {
                let start = seekable.frame_decompressed_offset(last).unwrap_or(0);
                let size = seekable.frame_decompressed_size(last).unwrap_or(0);
                start.saturating_add(size as u64)
            }
        };
        Ok(LogSource {
            inner: Inner::Zstd(Box::new(seekable)),
            path: path.to_path_buf(),
            pos: 0,
            len,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Length of the plain text (for a plain log: its size when opened).
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn compressed(&self) -> bool {
        matches!(self.inner, Inner::Zstd(_))
    }

    /// Moves to plain-text offset `pos`.
    pub fn seek_to(&mut self, pos: u64) -> Result<(), HistoryError> {
        if let Inner::Plain(file) = &mut self.inner {
            file.seek(SeekFrom::Start(pos))
                .map_err(|e| HistoryError::io("read the session log", &self.path, e))?;
        }
        self.pos = pos;
        Ok(())
    }

    /// Reads into `buf` from the current offset; 0 at the end.
    pub fn read_some(&mut self, buf: &mut [u8]) -> Result<usize, HistoryError> {
        let n = match &mut self.inner {
            Inner::Plain(file) => loop {
                match file.read(buf) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(HistoryError::io("read the session log", &self.path, e)),
                }
            },
            Inner::Zstd(seekable) => seekable
                .decompress(buf, self.pos)
                .map_err(|code| damaged(&self.path, zstd_safe::get_error_name(code).into()))?,
        };
        self.pos += n as u64;
        Ok(n)
    }

    /// Fills `buf` from plain-text offset `pos`, or fails if the log ends first.
    pub fn read_exact_at(&mut self, pos: u64, buf: &mut [u8]) -> Result<(), HistoryError> {
        self.seek_to(pos)?;
        let mut filled = 0;
        while filled < buf.len() {
            let n = self.read_some(&mut buf[filled..])?;
            if n == 0 {
                return Err(HistoryError::io(
                    "read the session log",
                    &self.path,
                    std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                ));
            }
            filled += n;
        }
        Ok(())
    }

    /// Calls `line` with every complete line from plain-text offset `from` on, with the offset
    /// where it starts (lines without their newline). A last line without its newline is
    /// passed too when `to_end`, else left (it may still be being written). `line` returns
    /// false to stop. Returns the offset after the last line taken. Memory: one chunk plus
    /// the longest line.
    pub fn lines_from(
        &mut self,
        from: u64,
        to_end: bool,
        mut line: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<u64, HistoryError> {
        self.seek_to(from)?;
        let mut buf: Vec<u8> = Vec::new();
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut base = from;
        loop {
            let n = self.read_some(&mut chunk)?;
            if n == 0 {
                break;
            }
            let scan_from = buf.len();
            buf.extend_from_slice(&chunk[..n]);
            // Only look for lines once the new bytes complete one.
            if !chunk[..n].contains(&b'\n') {
                continue;
            }
            let mut start = 0usize;
            let mut search = scan_from;
            while let Some(i) = buf[search..].iter().position(|b| *b == b'\n') {
                let end = search + i;
                if !line(base + start as u64, &buf[start..end]) {
                    return Ok(base + end as u64 + 1);
                }
                start = end + 1;
                search = start;
            }
            buf.drain(..start);
            base += start as u64;
        }
        if to_end && !buf.is_empty() {
            line(base, &buf);
            base += buf.len() as u64;
        }
        Ok(base)
    }
}

fn damaged(path: &Path, reason: String) -> HistoryError {
    HistoryError::NotASession {
        path: path.to_path_buf(),
        reason: format!("its compressed form cannot be read ({reason})"),
    }
}
