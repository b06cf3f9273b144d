//! The space history takes (logs plain and compressed, the index, the trash), and compressing
//! finished logs: those idle for some days, or all, or the ones named.

use std::ops::ControlFlow;
use std::path::Path;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::history::compress::{Compacted, SkipReason, compress_log, sweep_temps};
use crate::history::error::HistoryError;
use crate::history::index::{Archived, Index, ListQuery, SessionSummary};
use crate::history::layout::{FileStamp, sessions_dir, walk_logs};
use crate::history::reader::SessionStatus;
use crate::history::trash;

/// Compress logs idle for longer than this, unless the settings say otherwise.
pub const DEFAULT_IDLE_DAYS: u32 = 7;

/// History's own settings, saved by the app under the key `history` of
/// `<data dir>/settings.json` (beside the provider settings, which it does not touch).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct HistorySettings {
    /// Finished logs idle for more than this many days are compressed; 0: never on their own.
    pub compress_after_days: u32,
}

impl Default for HistorySettings {
    fn default() -> Self {
        Self {
            compress_after_days: DEFAULT_IDLE_DAYS,
        }
    }
}

impl HistorySettings {
    /// The key in the settings file.
    pub const KEY: &'static str = "history";
    /// Longest accepted idle time (about 10 years).
    pub const MAX_DAYS: u32 = 3650;

    /// The saved history settings; the defaults when there are none or they cannot be read
    /// (the app reports an unreadable settings file on its own).
    pub fn load(data_dir: &Path) -> HistorySettings {
        std::fs::read(data_dir.join("settings.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .and_then(|value| value.get(Self::KEY).cloned())
            .and_then(|value| serde_json::from_value(value).ok())
            .unwrap_or_default()
    }

    /// The idle time after which a finished log is compressed, if ever.
    pub fn idle_limit(&self) -> Option<Duration> {
        (self.compress_after_days > 0)
            .then(|| Duration::from_secs(u64::from(self.compress_after_days) * 86_400))
    }
}

/// What `sessions stats` prints and the Storage settings show.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StorageStats {
    pub sessions: u64,
    pub plain_logs: u64,
    pub plain_bytes: u64,
    pub compressed_logs: u64,
    /// Bytes on disk of the compressed logs...
    pub compressed_bytes: u64,
    /// ...and of their text once decompressed.
    pub compressed_text_bytes: u64,
    /// `index.sqlite` with its WAL and shared-memory files.
    pub index_bytes: u64,
    pub trash_logs: u64,
    pub trash_bytes: u64,
}

/// Counts logs on disk (the index gives the decompressed size of compressed ones; refresh it
/// first for exact figures).
pub fn stats(data_dir: &Path, index: &Index) -> Result<StorageStats, HistoryError> {
    let mut stats = StorageStats::default();
    for log in walk_logs(&sessions_dir(data_dir)) {
        stats.sessions += 1;
        if crate::history::layout::is_compressed(&log.path) {
            stats.compressed_logs += 1;
            stats.compressed_bytes += log.stamp.size;
        } else {
            stats.plain_logs += 1;
            stats.plain_bytes += log.stamp.size;
        }
    }
    stats.compressed_text_bytes = index.compressed_text_bytes()?;
    for suffix in ["", "-wal", "-shm"] {
        let path = data_dir.join(format!("index.sqlite{suffix}"));
        stats.index_bytes += std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    }
    for trashed in trash::list(data_dir) {
        stats.trash_logs += 1;
        stats.trash_bytes += std::fs::metadata(&trashed.path)
            .map(|m| m.len())
            .unwrap_or(0);
    }
    Ok(stats)
}

/// Which logs to compress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Finished logs not written to for longer than this.
    IdleFor(Duration),
    /// Every finished log.
    All,
    /// These sessions (ids or unique prefixes).
    Ids(Vec<String>),
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactProgress {
    /// Logs looked at, of `total`.
    pub done: usize,
    pub total: usize,
    /// Plain bytes of the logs compressed so far, and what they take now.
    pub bytes_before: u64,
    pub bytes_after: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CompactReport {
    /// Sessions compressed.
    pub compressed: Vec<String>,
    /// Sessions left as they are, and why (running, already compressed).
    pub skipped: Vec<(String, String)>,
    /// Sessions that failed, and why (their plain logs are kept).
    pub failed: Vec<(String, String)>,
    pub cancelled: bool,
    pub progress: CompactProgress,
}

/// Compresses the selected finished logs, one at a time, reporting progress after each.
/// `stop` is asked between frames: when it says so, the log being compressed is left plain
/// and nothing more is done.
pub fn compact(
    index: &Index,
    selection: &Selection,
    on_progress: &dyn Fn(&CompactProgress),
    stop: &dyn Fn() -> bool,
) -> Result<CompactReport, HistoryError> {
    index.refresh_all(&|_| {})?;
    let mut report = CompactReport::default();
    let candidates = candidates(index, selection, &mut report)?;
    report.progress.total = candidates.len();
    on_progress(&report.progress);
    for session in candidates {
        if stop() {
            report.cancelled = true;
            break;
        }
        let path = Path::new(&session.path);
        if let Some(dir) = path.parent() {
            sweep_temps(dir);
        }
        let mut at = |_| {
            if stop() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        };
        match compress_log(path, &mut at) {
            Ok(Compacted::Done { plain, compressed }) => {
                report.progress.bytes_before += plain;
                report.progress.bytes_after += compressed;
                report.compressed.push(session.id.clone());
                // Same text: the index only notes the new file.
                index.refresh_file(path)?;
            }
            Ok(Compacted::Skipped(SkipReason::Stopped)) => {
                report.cancelled = true;
                break;
            }
            Ok(Compacted::Skipped(reason)) => {
                let why = match reason {
                    SkipReason::Locked => "it is running (a writer holds its log)",
                    SkipReason::AlreadyCompressed | SkipReason::Stopped => {
                        "it is already compressed"
                    }
                };
                report.skipped.push((session.id.clone(), why.into()));
            }
            Err(error) => report.failed.push((session.id.clone(), error.to_string())),
        }
        report.progress.done += 1;
        on_progress(&report.progress);
    }
    Ok(report)
}

/// The plain, finished logs the selection names.
fn candidates(
    index: &Index,
    selection: &Selection,
    report: &mut CompactReport,
) -> Result<Vec<SessionSummary>, HistoryError> {
    let named: Vec<SessionSummary> = match selection {
        Selection::Ids(ids) => {
            let mut found = Vec::new();
            for id in ids {
                found.push(
                    index
                        .find(id)?
                        .ok_or_else(|| HistoryError::NotFound(id.clone()))?,
                );
            }
            found
        }
        Selection::All | Selection::IdleFor(_) => index.list_with(ListQuery {
            limit: usize::MAX >> 1,
            offset: 0,
            archived: Archived::Include,
            pinned_first: false,
        })?,
    };
    let now = SystemTime::now();
    let mut chosen = Vec::new();
    for session in named {
        if session.compressed {
            if matches!(selection, Selection::Ids(_)) {
                report
                    .skipped
                    .push((session.id, "it is already compressed".into()));
            }
            continue;
        }
        if session.status == SessionStatus::Running {
            report
                .skipped
                .push((session.id, "it is running (a writer holds its log)".into()));
            continue;
        }
        if let Selection::IdleFor(idle) = selection {
            let written = FileStamp::of(Path::new(&session.path))
                .ok()
                .and_then(|stamp| u64::try_from(stamp.mtime).ok())
                .map(|ns| SystemTime::UNIX_EPOCH + Duration::from_nanos(ns));
            let idle_enough = written
                .and_then(|at| now.duration_since(at).ok())
                .is_some_and(|age| age > *idle);
            if !idle_enough {
                continue;
            }
        }
        chosen.push(session);
    }
    Ok(chosen)
}
