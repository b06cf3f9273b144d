//! Live updates: `notify` watches `<data dir>/sessions`; changed files are refreshed in the
//! index (only their appended bytes), debounced and coalesced per path, and the ids of the
//! sessions that changed go to a callback (the desktop tells the UI).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};

use crate::history::error::HistoryError;
use crate::history::index::{Index, Progress};
use crate::history::layout::{is_log, walk_logs};
use crate::history::sessions_dir;

/// Quiet time after an event before the batch is processed.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// A busy folder is still processed at least this often.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(400);

/// Stops watching when dropped.
pub struct Watcher {
    watcher: Option<RecommendedWatcher>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher").finish_non_exhaustive()
    }
}

impl Watcher {
    /// Watches the sessions folder of `data_dir` (created if missing). First brings the index
    /// up to date in the background (a rebuild if it was empty), then follows changes.
    /// `on_change` gets the ids of sessions whose index row changed; it runs on the watcher's
    /// thread and should return quickly.
    pub fn start(
        data_dir: &Path,
        on_change: impl Fn(Vec<String>) + Send + 'static,
    ) -> Result<Watcher, HistoryError> {
        Self::start_with_progress(data_dir, on_change, |_| {})
    }

    /// Like `start`, and reports the catch-up's progress, so a front end can show how far a
    /// rebuild has come while it lists what is indexed so far.
    pub fn start_with_progress(
        data_dir: &Path,
        on_change: impl Fn(Vec<String>) + Send + 'static,
        on_progress: impl Fn(Progress) + Send + 'static,
    ) -> Result<Watcher, HistoryError> {
        let dir = sessions_dir(data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| HistoryError::io("create the sessions folder", &dir, e))?;
        let index = Index::open(data_dir)?;
        let (tx, rx) = mpsc::channel::<notify::Result<notify::Event>>();
        let mut watcher = notify::recommended_watcher(move |event| {
            // The receiver is gone only when the watcher thread ended.
            let _ = tx.send(event);
        })
        .map_err(|source| HistoryError::Watch {
            path: dir.clone(),
            source,
        })?;
        watcher
            .watch(&dir, RecursiveMode::Recursive)
            .map_err(|source| HistoryError::Watch {
                path: dir.clone(),
                source,
            })?;
        let thread = std::thread::Builder::new()
            .name("talaria-watch".into())
            .spawn(move || follow(index, rx, on_change, on_progress))
            .map_err(|e| HistoryError::io("start the watcher for", &dir, e))?;
        Ok(Watcher {
            watcher: Some(watcher),
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        // Dropping the notify watcher closes the channel, which ends the thread.
        self.watcher.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn follow(
    index: Index,
    rx: Receiver<notify::Result<notify::Event>>,
    on_change: impl Fn(Vec<String>),
    on_progress: impl Fn(Progress),
) {
    catch_up(&index, &on_change, &on_progress);
    loop {
        let first = match rx.recv() {
            Ok(event) => event,
            Err(_) => return,
        };
        let mut paths: HashSet<PathBuf> = HashSet::new();
        let mut rescan = false;
        let mut closed = false;
        take(first, &mut paths, &mut rescan);
        let started = Instant::now();
        loop {
            let left = MAX_BATCH_WAIT.saturating_sub(started.elapsed());
            if left.is_zero() {
                break;
            }
            match rx.recv_timeout(DEBOUNCE.min(left)) {
                Ok(event) => take(event, &mut paths, &mut rescan),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if rescan {
            catch_up(&index, &on_change, &|_| {});
        } else {
            let mut changed = Vec::new();
            for path in paths {
                refresh_path(&index, &path, &mut changed);
            }
            if !changed.is_empty() {
                on_change(changed);
            }
        }
        if closed {
            return;
        }
    }
}

fn take(event: notify::Result<notify::Event>, paths: &mut HashSet<PathBuf>, rescan: &mut bool) {
    match event {
        Ok(event) => {
            if event.need_rescan() {
                *rescan = true;
            }
            paths.extend(event.paths);
        }
        // Lost events (queue overflow and the like): look at everything again.
        Err(_) => *rescan = true,
    }
}

/// One changed path: a log file, or a new folder whose files may predate its watch, or a
/// folder that went away. The ids of removed sessions are reported as changed too.
fn refresh_path(index: &Index, path: &Path, changed: &mut Vec<String>) {
    if path.is_dir() {
        for log in walk_logs(path) {
            refresh_path(index, &log.path, changed);
        }
        return;
    }
    if !is_log(path) {
        // A folder removed or renamed away takes its sessions out of the list.
        if !path.exists()
            && let Ok(ids) = index.forget_missing_under(path)
        {
            for id in ids {
                if !changed.contains(&id) {
                    changed.push(id);
                }
            }
        }
        return;
    }
    if let Ok(Some(id)) = index.refresh_file(path)
        && !changed.contains(&id)
    {
        changed.push(id);
    }
}

fn catch_up(index: &Index, on_change: &impl Fn(Vec<String>), on_progress: &dyn Fn(Progress)) {
    if let Ok(stats) = index.refresh_all(on_progress)
        && (!stats.changed.is_empty() || stats.removed > 0)
    {
        on_change(stats.changed);
    }
}
