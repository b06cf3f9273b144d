//! `search_files`: a regex over the working folder, ripgrep's crates in-process (no shell-out).
//! Honours .gitignore/.ignore (even outside a git repository) and skips hidden files.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use grep_regex::RegexMatcherBuilder;
use grep_searcher::sinks::Lossy;
use grep_searcher::{BinaryDetection, SearcherBuilder};
use ignore::WalkBuilder;
use ignore::overrides::OverrideBuilder;
use serde::Deserialize;

use rustix::fs::OFlags;

use super::workdir::{PathError, Workdir};
use crate::safety::SecretPaths;

/// Matches returned at most; the walk stops there.
pub const MAX_MATCHES: usize = 200;
/// A matching line longer than this is cut.
pub const MAX_LINE_CHARS: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("the pattern is not a valid regular expression (Rust regex syntax): {0}")]
    Pattern(String),
    #[error("file_glob {glob:?} is not a valid glob: {message}")]
    Glob { glob: String, message: String },
    #[error(
        "{path} does not exist; give a folder inside the working folder, or leave path out to search all of it"
    )]
    NotFound { path: String },
    #[error(
        "refused: {path} is secret ({why}). Tools do not read secrets unless the user allows that one call; ask the user instead"
    )]
    Secret { path: String, why: String },
    #[error("cancelled by the user")]
    Cancelled,
}

#[derive(Debug, Deserialize)]
pub struct SearchArgs {
    pub pattern: String,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub file_glob: Option<String>,
}

/// Runs the search. `stop` is checked between files and between matches so a cancel ends the
/// walk promptly even though it runs on a blocking thread.
/// Secret files under the search root are skipped (and counted) unless `allow_secret`.
pub fn search_files(
    workdir: &Path,
    secrets: &SecretPaths,
    allow_secret: bool,
    args: SearchArgs,
    stop: Arc<AtomicBool>,
) -> Result<String, SearchError> {
    let wd = Workdir::new(workdir)?;
    let rel = match args.path.as_deref().map(str::trim) {
        None | Some("") | Some(".") => std::path::PathBuf::from("."),
        Some(path) => wd.relative(path)?,
    };
    let root = match wd.open(&rel, OFlags::PATH) {
        Ok(opened) => opened.real,
        Err(error) if error.is_not_found() => {
            return Err(SearchError::NotFound {
                path: args.path.unwrap_or_default(),
            });
        }
        Err(error) => return Err(error.into()),
    };
    if !allow_secret && let Some(why) = secrets.why(&root) {
        return Err(SearchError::Secret {
            path: wd.display(&root),
            why,
        });
    }
    let matcher = RegexMatcherBuilder::new()
        .line_terminator(Some(b'\n'))
        .build(&args.pattern)
        .map_err(|err| SearchError::Pattern(err.to_string()))?;

    // The glob filters files after the walk's own ignore rules (an override on the walker
    // would re-include gitignored files).
    let glob = match args.file_glob.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(glob) => {
            let mut builder = OverrideBuilder::new(&root);
            builder.add(glob).map_err(|err| SearchError::Glob {
                glob: glob.to_string(),
                message: err.to_string(),
            })?;
            Some(builder.build().map_err(|err| SearchError::Glob {
                glob: glob.to_string(),
                message: err.to_string(),
            })?)
        }
    };

    let mut searcher = SearcherBuilder::new()
        .line_number(true)
        .binary_detection(BinaryDetection::quit(0))
        .build();
    let walker = WalkBuilder::new(&root)
        .require_git(false)
        .follow_links(false)
        .sort_by_file_name(|a, b| a.cmp(b))
        .build();

    let mut out = String::new();
    let mut matches = 0usize;
    let mut files = 0usize;
    let mut truncated = false;
    let mut unreadable = 0usize;
    let mut secret = 0usize;
    for entry in walker {
        if stop.load(Ordering::Relaxed) {
            return Err(SearchError::Cancelled);
        }
        let Ok(entry) = entry else {
            unreadable += 1;
            continue;
        };
        // Links are not followed (they may point outside the working folder): with
        // follow_links(false) a symlink's type is "symlink", never "file".
        if !entry.file_type().is_some_and(|kind| kind.is_file()) {
            continue;
        }
        let path = entry.path();
        if let Some(glob) = &glob
            && !glob.matched(path, false).is_whitelist()
        {
            continue;
        }
        if !allow_secret && secrets.why(path).is_some() {
            secret += 1;
            continue;
        }
        // Opened beneath the folder: a folder swapped for a symlink during the walk cannot lead
        // the search outside.
        let Some(file) = path
            .strip_prefix(wd.root())
            .ok()
            .and_then(|rel| {
                wd.open(rel, OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY)
                    .ok()
            })
            .filter(|opened| allow_secret || secrets.why(&opened.real).is_none())
            .map(|opened| std::fs::File::from(opened.fd))
        else {
            unreadable += 1;
            continue;
        };
        let shown = wd.display(path);
        let mut file_matches = 0usize;
        let result = searcher.search_file(
            &matcher,
            &file,
            Lossy(|line_number, line| {
                if stop.load(Ordering::Relaxed) {
                    return Ok(false);
                }
                if matches >= MAX_MATCHES {
                    truncated = true;
                    return Ok(false);
                }
                let line = line.trim_end_matches(['\n', '\r']);
                let _ = writeln!(out, "{shown}:{line_number}: {}", cut(line));
                matches += 1;
                file_matches += 1;
                Ok(true)
            }),
        );
        if result.is_err() {
            unreadable += 1;
        }
        if file_matches > 0 {
            files += 1;
        }
        if truncated {
            break;
        }
    }
    if stop.load(Ordering::Relaxed) {
        return Err(SearchError::Cancelled);
    }

    let where_ = wd.display(&root);
    if matches == 0 {
        let mut text = format!("no matches for /{}/ in {where_}", args.pattern);
        if let Some(glob) = &args.file_glob {
            let _ = write!(text, " (files matching {glob:?})");
        }
        text.push_str(" (.gitignored and hidden files are skipped)");
        if secret > 0 {
            let _ = write!(text, "; {secret} secret files were skipped");
        }
        return Ok(text);
    }
    if truncated {
        let _ = write!(
            out,
            "[stopped after {MAX_MATCHES} matches; narrow the pattern, path or file_glob to see the rest]"
        );
    } else {
        let _ = write!(out, "[{matches} matches in {files} files]");
    }
    if unreadable > 0 {
        let _ = write!(out, "\n[{unreadable} files or folders could not be read]");
    }
    if secret > 0 {
        let _ = write!(
            out,
            "\n[{secret} secret files (.env files, keys) were skipped; the user can allow reading one]"
        );
    }
    Ok(out)
}

fn cut(line: &str) -> String {
    let count = line.chars().count();
    if count <= MAX_LINE_CHARS {
        line.to_string()
    } else {
        let head: String = line.chars().take(MAX_LINE_CHARS).collect();
        format!("{head}… [{count} chars]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_set_stop_flag_ends_the_walk() {
        let dir = std::env::temp_dir();
        let args = SearchArgs {
            pattern: "x".into(),
            path: None,
            file_glob: None,
        };
        let stop = Arc::new(AtomicBool::new(true));
        let secrets = SecretPaths::new(None, Path::new("/nonexistent-data"));
        assert!(matches!(
            search_files(&dir, &secrets, false, args, stop),
            Err(SearchError::Cancelled)
        ));
    }

    #[test]
    fn long_lines_are_cut() {
        let line = "é".repeat(MAX_LINE_CHARS + 5);
        let cut_line = cut(&line);
        assert!(cut_line.ends_with(&format!("… [{} chars]", MAX_LINE_CHARS + 5)));
        assert_eq!(cut("short"), "short");
    }
}
