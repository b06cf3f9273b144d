//! Where the writer thread puts bytes: the log file, or (in tests) anything that behaves like
//! one, so disk-full, slow disks and write counts can be exercised without a real fault.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::history::durable::{create_dirs_synced, sync_parent};
use crate::history::lock::{lock_exclusive, open_locked, same_file};

/// A write that failed after `written` bytes of the buffer had reached the file.
#[derive(Debug)]
pub struct PartialWrite {
    pub written: usize,
    pub error: io::Error,
}

/// The end of a session log. Only the writer thread calls these.
pub trait LogFile: Send {
    /// Appends all of `buf` (whole lines) at the end of the log, in one call from the
    /// writer's point of view. On failure, says how many bytes of `buf` did reach the file.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), PartialWrite>;
    /// Makes what was written durable (`fdatasync`).
    fn sync_data(&mut self) -> io::Result<()>;
}

/// The real log file, opened with O_APPEND.
pub struct FileSink {
    path: PathBuf,
    file: Option<File>,
    /// Line 1 to write again if the file (or its folder) was removed under us.
    header_line: Option<Vec<u8>>,
}

impl FileSink {
    /// Creates a new log (and its folders) and writes `header_line` as line 1.
    /// The header is synced, and so is every folder entry that leads to the file (the new
    /// file's name in its folder, and any date folder made for it), so a power cut right after
    /// this returns cannot lose the file itself.
    pub fn create(path: &Path, header_line: &[u8]) -> io::Result<FileSink> {
        if let Some(parent) = path.parent() {
            create_dirs_synced(parent)?;
        }
        let mut file = crate::private::private_options()
            .append(true)
            .create_new(true)
            .open(path)?;
        lock_exclusive(&file)?;
        file.write_all(header_line)?;
        file.sync_data()?;
        sync_parent(path)?;
        Ok(FileSink {
            path: path.to_path_buf(),
            file: Some(file),
            header_line: Some(header_line.to_vec()),
        })
    }

    /// Opens an existing log for appending. Returns whether the file ends in the middle of a
    /// line (a torn write from a crash), so the next write starts on a fresh line.
    pub fn open_append(path: &Path, header_line: Option<Vec<u8>>) -> io::Result<(FileSink, bool)> {
        let mut file = open_locked(path)?;
        let len = file.seek(SeekFrom::End(0))?;
        let mut torn = false;
        if len > 0 {
            file.seek(SeekFrom::Start(len - 1))?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last)?;
            torn = last[0] != b'\n';
        }
        Ok((
            FileSink {
                path: path.to_path_buf(),
                file: Some(file),
                header_line,
            },
            torn,
        ))
    }

    /// The file we hold, reopened (with its header) when the path no longer points at it:
    /// writing into an unlinked inode would lose records silently.
    fn file(&mut self) -> io::Result<&mut File> {
        let stale = match (&self.file, std::fs::metadata(&self.path)) {
            (Some(file), Ok(on_disk)) => !same_file(file, &on_disk)?,
            (Some(_), Err(_)) | (None, _) => true,
        };
        if stale {
            self.file = None;
            let header = self.header_line.clone().unwrap_or_default();
            let recreated = FileSink::create(&self.path, &header).or_else(|error| {
                // Someone recreated the file: append to it as it is.
                if error.kind() == io::ErrorKind::AlreadyExists {
                    FileSink::open_append(&self.path, None).map(|(sink, _)| sink)
                } else {
                    Err(error)
                }
            })?;
            self.file = recreated.file;
        }
        self.file
            .as_mut()
            .ok_or_else(|| io::Error::other("log file is not open"))
    }
}

impl LogFile for FileSink {
    fn write_all(&mut self, buf: &[u8]) -> Result<(), PartialWrite> {
        let file = self
            .file()
            .map_err(|error| PartialWrite { written: 0, error })?;
        // Our own loop instead of `Write::write_all`, to know how far a failed write got.
        let mut written = 0;
        while written < buf.len() {
            match file.write(&buf[written..]) {
                Ok(0) => {
                    return Err(PartialWrite {
                        written,
                        error: io::Error::from(io::ErrorKind::WriteZero),
                    });
                }
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(PartialWrite { written, error }),
            }
        }
        Ok(())
    }

    fn sync_data(&mut self) -> io::Result<()> {
        match self.file.as_mut() {
            Some(file) => file.sync_data(),
            None => Ok(()),
        }
    }
}
