//! `read_file`, `write_file` and `patch`: plain file access inside the working folder.
//! Blocking std::fs calls; the caller runs them on a blocking thread.

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::path::Path;

use serde::Deserialize;

use super::workdir::{PathError, Workdir};

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
pub fn read_file(workdir: &Path, args: ReadArgs) -> Result<String, FileError> {
    let wd = Workdir::new(workdir)?;
    let path = wd.resolve(&args.path)?;
    let shown = wd.display(&path);
    let bytes = read_text_bytes(&wd, &path, &shown)?;
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
pub fn write_file(workdir: &Path, args: WriteArgs) -> Result<String, FileError> {
    let wd = Workdir::new(workdir)?;
    let path = wd.resolve(&args.path)?;
    let shown = wd.display(&path);
    let existed = match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => return Err(FileError::IsDir { path: shown }),
        Ok(_) => true,
        Err(_) => false,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| FileError::Io {
            action: "create the folders for",
            path: shown.clone(),
            source,
        })?;
    }
    write_atomic(&path, args.content.as_bytes()).map_err(|source| FileError::Io {
        action: "write",
        path: shown.clone(),
        source,
    })?;
    let lines = args.content.lines().count();
    Ok(format!(
        "wrote {} bytes ({lines} lines) to {shown} ({})",
        args.content.len(),
        if existed {
            "replaced the old content"
        } else {
            "new file"
        }
    ))
}

/// Replaces one exact occurrence of `old_string` (or all, with `replace_all`).
pub fn patch(workdir: &Path, args: PatchArgs) -> Result<String, FileError> {
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
    let wd = Workdir::new(workdir)?;
    let path = wd.resolve(&args.path)?;
    let shown = wd.display(&path);
    let bytes = read_text_bytes(&wd, &path, &shown)?;
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
    write_atomic(&path, updated.as_bytes()).map_err(|source| FileError::Io {
        action: "write",
        path: shown.clone(),
        source,
    })?;
    Ok(if count == 1 {
        format!("replaced 1 occurrence in {shown} (at line {first_line})")
    } else {
        format!("replaced {count} occurrences in {shown}")
    })
}

/// Reads a file that must exist, be a regular file, fit the size cap and not be binary.
fn read_text_bytes(wd: &Workdir, path: &Path, shown: &str) -> Result<Vec<u8>, FileError> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            return Err(FileError::NotFound {
                path: shown.to_string(),
                workdir: wd.root().display().to_string(),
            });
        }
        Err(source) => {
            return Err(FileError::Io {
                action: "read",
                path: shown.to_string(),
                source,
            });
        }
    };
    if meta.is_dir() {
        return Err(FileError::IsDir {
            path: shown.to_string(),
        });
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(FileError::TooLarge {
            path: shown.to_string(),
            size: meta.len(),
            max: MAX_FILE_BYTES,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| FileError::Io {
        action: "read",
        path: shown.to_string(),
        source,
    })?;
    if bytes.iter().take(BINARY_SNIFF_BYTES).any(|&b| b == 0) {
        return Err(FileError::Binary {
            path: shown.to_string(),
            size: bytes.len() as u64,
        });
    }
    Ok(bytes)
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
/// old file or the new one, never half of one. Keeps the old file's permissions.
fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    let parent = path
        .parent()
        .ok_or_else(|| io::Error::other("the path has no parent folder"))?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path has no file name"))?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".talaria-{:016x}.tmp", fastrand::u64(..)));
    let temp = parent.join(temp_name);

    let result = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.write_all(data)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
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
