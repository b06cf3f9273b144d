//! `read_file`, `write_file` and `patch`: file access beneath the working folder. Every path is
//! opened relative to the folder's handle (see `workdir`), secrets are refused unless the user
//! allowed that call, and writes are atomic and stop cleanly on Stop (see `commit`).
//! Blocking calls; the caller runs them on a blocking thread.

use std::fmt::Write as _;
use std::io::{self, Read as _, Write as _};
use std::os::fd::AsFd;
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use serde::Deserialize;

use super::commit::CommitGate;
use super::workdir::{PathError, Workdir, WriteTarget};
use crate::safety::SecretPaths;

/// Files larger than this are refused by read_file and patch (the model would drown in them).
pub const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// Lines returned when the call gives no `limit`.
pub const DEFAULT_LINE_LIMIT: usize = 2000;
/// Characters of numbered output returned at most per call.
pub const MAX_OUTPUT_CHARS: usize = 100_000;
/// A longer line is cut (minified files would otherwise fill the whole budget with one line).
pub const MAX_LINE_CHARS: usize = 2000;
/// How many leading bytes are checked for NUL to spot a binary file.
const BINARY_SNIFF_BYTES: usize = 8192;
/// Writes go out in chunks this big, with a look at the Stop gate between them.
const WRITE_CHUNK: usize = 1024 * 1024;

/// What one call may touch: the folder, which paths are secret, and whether the user allowed
/// this call to touch a secret.
pub struct Scope<'a> {
    pub workdir: &'a Path,
    pub secrets: &'a SecretPaths,
    pub allow_secret: bool,
    pub gate: &'a CommitGate,
}

impl Scope<'_> {
    fn check_secret(&self, wd: &Workdir, real: &Path) -> Result<(), FileError> {
        if self.allow_secret {
            return Ok(());
        }
        match self.secrets.why(real) {
            Some(why) => Err(FileError::Secret {
                path: wd.display(real),
                why,
            }),
            None => Ok(()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error(
        "file not found: {path} (relative to the working folder {workdir}); check the name with search_files or `ls` in the terminal"
    )]
    NotFound { path: String, workdir: String },
    #[error(
        "{path} is a folder, not a file; use search_files or `ls` in the terminal to see what it holds"
    )]
    IsDir { path: String },
    #[error(
        "{path} is {size} bytes, more than read_file and patch accept ({max} bytes); use the terminal (head, tail, sed -n 'A,Bp', grep -n) to look at parts of it"
    )]
    TooLarge { path: String, size: u64, max: u64 },
    #[error(
        "{path} looks like a binary file ({size} bytes, contains NUL bytes); these tools only handle text. Use the terminal (file, xxd | head) to inspect it"
    )]
    Binary { path: String, size: u64 },
    #[error(
        "offset {offset} is past the end of {path}, which has {lines} lines; use an offset between 1 and {lines}"
    )]
    OffsetPastEnd {
        path: String,
        offset: usize,
        lines: usize,
    },
    #[error("{0}")]
    Invalid(String),
    #[error(
        "old_string was not found in {path}. The match is exact, including whitespace, indentation and line breaks; call read_file on {path} to copy the current text exactly"
    )]
    NoMatch { path: String },
    #[error(
        "old_string matches {count} times in {path} (at lines {lines}); include more surrounding lines in old_string so it matches exactly once, or set replace_all: true to replace every occurrence"
    )]
    Ambiguous {
        path: String,
        count: usize,
        lines: String,
    },
    #[error(
        "{path} is not valid UTF-8 text; patch only edits UTF-8 files. Use write_file to replace it whole, or the terminal"
    )]
    NotUtf8 { path: String },
    #[error(
        "refused: {path} is secret ({why}). Tools do not read or write secrets unless the user allows that one call; ask the user instead"
    )]
    Secret { path: String, why: String },
    #[error(
        "{path} is not a regular file (a device, pipe or socket); these tools only handle files"
    )]
    NotRegular { path: String },
    #[error("cancelled by the user before the write began; {path} is unchanged")]
    Cancelled { path: String },
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: String,
        source: io::Error,
    },
}

#[derive(Debug, Deserialize)]
pub struct ReadArgs {
    pub path: String,
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    pub offset: Option<u64>,
    #[serde(default, deserialize_with = "super::lenient::opt_u64")]
    pub limit: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct WriteArgs {
    pub path: String,
    pub content: String,
}

#[derive(Debug, Deserialize)]
pub struct PatchArgs {
    pub path: String,
    pub old_string: String,
    pub new_string: String,
    #[serde(default, deserialize_with = "super::lenient::bool")]
    pub replace_all: bool,
}

/// Reads a text file as numbered lines (`cat -n` style: right-aligned number, a tab, the line).
pub fn read_file(scope: &Scope<'_>, args: ReadArgs) -> Result<String, FileError> {
    let wd = Workdir::new(scope.workdir)?;
    let (shown, bytes) = read_text_bytes(scope, &wd, &args.path)?;
    let text = String::from_utf8_lossy(&bytes);

    let lines: Vec<&str> = split_lines(&text);
    let total = lines.len();
    if total == 0 {
        return Ok(format!("({shown} is empty)"));
    }
    let offset = usize::try_from(args.offset.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
    let limit = usize::try_from(args.limit.unwrap_or(DEFAULT_LINE_LIMIT as u64).max(1))
        .unwrap_or(usize::MAX);
    if offset > total {
        return Err(FileError::OffsetPastEnd {
            path: shown,
            offset,
            lines: total,
        });
    }
    let end = offset.saturating_add(limit - 1).min(total);

    let mut out = String::new();
    let mut last = offset - 1;
    let mut capped = false;
    let mut cut_lines = false;
    for (index, line) in lines.iter().enumerate().take(end).skip(offset - 1) {
        let number = index + 1;
        let mut entry = String::new();
        let chars = line.chars().count();
        if chars > MAX_LINE_CHARS {
            let head: String = line.chars().take(MAX_LINE_CHARS).collect();
            let _ = writeln!(
                entry,
                "{number:>6}\t{head}… [line cut: {chars} chars in all]"
            );
            cut_lines = true;
        } else {
            let _ = writeln!(entry, "{number:>6}\t{line}");
        }
        if out.len() + entry.len() > MAX_OUTPUT_CHARS && number > offset {
            capped = true;
            break;
        }
        out.push_str(&entry);
        last = number;
    }

    if capped {
        let _ = write!(
            out,
            "[output capped at {MAX_OUTPUT_CHARS} characters: showed lines {offset}-{last} of {total}; call read_file with offset={} to read on]",
            last + 1
        );
    } else if last < total {
        let _ = write!(
            out,
            "[showed lines {offset}-{last} of {total}; call read_file with offset={} to read on]",
            last + 1
        );
    } else if offset > 1 {
        let _ = write!(
            out,
            "[showed lines {offset}-{last} of {total}; end of file]"
        );
    }
    if cut_lines {
        let _ = write!(
            out,
            "\n[lines longer than {MAX_LINE_CHARS} characters were cut; use the terminal (cut -c, fold) to see them whole]"
        );
    }
    Ok(out.trim_end_matches('\n').to_string())
}

/// Writes a file whole (creating parent folders), atomically: temp file, sync, rename.
pub fn write_file(scope: &Scope<'_>, args: WriteArgs) -> Result<String, FileError> {
    let wd = Workdir::new(scope.workdir)?;
    let target = wd
        .write_target(&args.path, true)
        .map_err(|e| not_found_or(e, &wd, &args.path))?;
    let shown = wd.display(&target.real);
    scope.check_secret(&wd, &target.real)?;
    let existed = target.existing_mode.is_some();
    let lines = args.content.lines().count();
    let result = format!(
        "wrote {} bytes ({lines} lines) to {shown} ({})",
        args.content.len(),
        if existed {
            "replaced the old content"
        } else {
            "new file"
        }
    );
    write_atomic(
        &target,
        args.content.as_bytes(),
        scope.gate,
        &shown,
        &result,
    )?;
    Ok(result)
}

/// Replaces one exact occurrence of `old_string` (or all, with `replace_all`).
pub fn patch(scope: &Scope<'_>, args: PatchArgs) -> Result<String, FileError> {
    if args.old_string.is_empty() {
        return Err(FileError::Invalid(
            "old_string is empty; give the exact text to replace (use write_file to create a file)"
                .to_string(),
        ));
    }
    if args.old_string == args.new_string {
        return Err(FileError::Invalid(
            "old_string and new_string are identical; nothing would change".to_string(),
        ));
    }
    let wd = Workdir::new(scope.workdir)?;
    let (shown, bytes) = read_text_bytes(scope, &wd, &args.path)?;
    let text = String::from_utf8(bytes).map_err(|_| FileError::NotUtf8 {
        path: shown.clone(),
    })?;

    // Models write "\n"; a CRLF file needs "\r\n" to match, so retry in the file's style.
    let (old, new) = if !text.contains(&args.old_string)
        && text.contains("\r\n")
        && args.old_string.contains('\n')
        && !args.old_string.contains("\r\n")
    {
        (
            args.old_string.replace('\n', "\r\n"),
            args.new_string.replace("\r\n", "\n").replace('\n', "\r\n"),
        )
    } else {
        (args.old_string, args.new_string)
    };

    let starts: Vec<usize> = text.match_indices(old.as_str()).map(|(at, _)| at).collect();
    let count = starts.len();
    if count == 0 {
        return Err(FileError::NoMatch { path: shown });
    }
    if count > 1 && !args.replace_all {
        let mut numbers: Vec<String> = starts
            .iter()
            .take(20)
            .map(|&at| line_of(&text, at).to_string())
            .collect();
        if count > 20 {
            numbers.push("…".to_string());
        }
        return Err(FileError::Ambiguous {
            path: shown,
            count,
            lines: numbers.join(", "),
        });
    }
    let first_line = starts.first().map(|&at| line_of(&text, at)).unwrap_or(1);
    let updated = if args.replace_all {
        text.replace(old.as_str(), &new)
    } else {
        text.replacen(old.as_str(), &new, 1)
    };
    // The file is written where it was read: the same path, opened beneath the folder again.
    let target = wd.write_target(&args.path, false)?;
    scope.check_secret(&wd, &target.real)?;
    let result = if count == 1 {
        format!("replaced 1 occurrence in {shown} (at line {first_line})")
    } else {
        format!("replaced {count} occurrences in {shown}")
    };
    write_atomic(&target, updated.as_bytes(), scope.gate, &shown, &result)?;
    Ok(result)
}

/// Reads a file that must exist, be a regular file, fit the size cap and not be binary.
/// Returns how the model sees its path, and its bytes.
fn read_text_bytes(
    scope: &Scope<'_>,
    wd: &Workdir,
    path: &str,
) -> Result<(String, Vec<u8>), FileError> {
    let rel = wd.relative(path)?;
    // O_NONBLOCK: opening a FIFO must not hang the tool; regular files ignore it.
    let opened = wd
        .open(&rel, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY)
        .map_err(|error| not_found_or(error, wd, path))?;
    let shown = wd.display(&opened.real);
    scope.check_secret(wd, &opened.real)?;
    let io_error = |source: io::Error| FileError::Io {
        action: "read",
        path: shown.clone(),
        source,
    };
    let stat = rustix::fs::fstat(&opened.fd).map_err(|e| io_error(e.into()))?;
    match FileType::from_raw_mode(stat.st_mode) {
        FileType::RegularFile => {}
        FileType::Directory => return Err(FileError::IsDir { path: shown }),
        _ => return Err(FileError::NotRegular { path: shown }),
    }
    let size = u64::try_from(stat.st_size).unwrap_or(0);
    if size > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            path: shown,
            size,
            max: MAX_FILE_BYTES,
        });
    }
    let mut file = std::fs::File::from(opened.fd);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    // One byte past the cap tells a file that grew since the stat.
    (&mut file)
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            path: shown,
            size: bytes.len() as u64,
            max: MAX_FILE_BYTES,
        });
    }
    if bytes.iter().take(BINARY_SNIFF_BYTES).any(|&b| b == 0) {
        return Err(FileError::Binary {
            path: shown,
            size: bytes.len() as u64,
        });
    }
    Ok((shown, bytes))
}

/// A path that does not exist becomes the error that says so; others stay as they are.
fn not_found_or(error: PathError, wd: &Workdir, path: &str) -> FileError {
    if error.is_not_found() {
        FileError::NotFound {
            path: path.to_string(),
            workdir: wd.root().display().to_string(),
        }
    } else {
        match error {
            PathError::Io { path, source } if source.kind() == io::ErrorKind::IsADirectory => {
                FileError::IsDir { path }
            }
            other => FileError::Path(other),
        }
    }
}

/// Lines without their terminators ("\n" or "\r\n"); a final terminator adds no empty line.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines: Vec<&str> = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line))
        .collect();
    if text.ends_with('\n') || text.is_empty() {
        lines.pop();
    }
    lines
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(at)
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// Temp file in the same folder, fsync, rename over the target: readers (and a crash) see the
/// old file or the new one, never half of one. Keeps the old file's permissions. Stop before
/// the rename abandons the write (the temp file is removed); `gate` decides that race.
fn write_atomic(
    target: &WriteTarget,
    data: &[u8],
    gate: &CommitGate,
    shown: &str,
    result: &str,
) -> Result<(), FileError> {
    let mut temp = std::ffi::OsString::from(".");
    temp.push(&target.name);
    temp.push(format!(".talaria-{:016x}.tmp", fastrand::u64(..)));
    let io_error = |source: io::Error| FileError::Io {
        action: "write",
        path: shown.to_string(),
        source,
    };
    let cancelled = || FileError::Cancelled {
        path: shown.to_string(),
    };
    if gate.is_cancelled() {
        return Err(cancelled());
    }
    let mode = Mode::from_raw_mode(target.existing_mode.unwrap_or(0o666));
    let fd = rustix::fs::openat(
        &target.dir,
        &temp,
        OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        mode,
    )
    .map_err(|e| io_error(e.into()))?;
    let remove_temp = || {
        let _ = rustix::fs::unlinkat(&target.dir, &temp, AtFlags::empty());
    };
    let outcome = (|| {
        if let Some(existing) = target.existing_mode {
            // Creation applied the umask; the replaced file's exact mode is kept.
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(existing))
                .map_err(|e| io_error(e.into()))?;
        }
        let mut file = std::fs::File::from(fd);
        for chunk in data.chunks(WRITE_CHUNK) {
            if gate.is_cancelled() {
                return Err(cancelled());
            }
            file.write_all(chunk).map_err(io_error)?;
        }
        file.sync_all().map_err(io_error)?;
        drop(file);
        if !gate.begin_commit(result.to_string()) {
            return Err(cancelled());
        }
        rustix::fs::renameat(&target.dir, &temp, &target.dir, &target.name)
            .map_err(|e| io_error(e.into()))
    })();
    if outcome.is_err() {
        remove_temp();
        return outcome;
    }
    gate.committed();
    // The rename is durable once the folder is synced; a failure here loses nothing written.
    if let Ok(dir) = rustix::fs::openat(
        &target.dir,
        ".",
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        let _ = rustix::fs::fsync(dir.as_fd());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines_handles_endings() {
        assert_eq!(split_lines(""), Vec::<&str>::new());
        assert_eq!(split_lines("a"), vec!["a"]);
        assert_eq!(split_lines("a\n"), vec!["a"]);
        assert_eq!(split_lines("a\r\nb\n\nc"), vec!["a", "b", "", "c"]);
    }

    #[test]
    fn line_of_counts_newlines() {
        let text = "one\ntwo\nthree";
        assert_eq!(line_of(text, 0), 1);
        assert_eq!(line_of(text, 4), 2);
        assert_eq!(line_of(text, 8), 3);
    }
}
