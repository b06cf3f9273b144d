//! Live updates: `notify` watches `<data dir>/sessions`; changed files are refreshed in the
//! index (only their appended bytes), debounced and coalesced per path, and the ids of the
//! sessions that changed go to a callback (the desktop tells the UI).
//!
//! The watcher never goes silent: when the folder cannot be watched (no inotify watches left,
//! a file system that sends no events, the folder removed and not watchable again) it says so
//! through `on_health` and falls back to looking at every log's `stat` every few seconds. Even
//! while live it looks at everything once a minute, in case an event was lost.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use serde::Serialize;

use crate::history::error::HistoryError;
use crate::history::index::{Index, Progress};
use crate::history::layout::{is_log, sessions_dir, walk_logs};

/// Quiet time after an event before the batch is processed.
pub const DEBOUNCE: Duration = Duration::from_millis(150);
/// A busy folder is still processed at least this often.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(400);
/// While events flow, everything is still looked at this often (a lost event costs at most this).
const SAFETY_RESCAN: Duration = Duration::from_secs(60);
/// Without events (polling), everything is looked at this often.
pub const POLL_INTERVAL: Duration = Duration::from_secs(3);

/// How the watcher follows the folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum WatchHealth {
    /// File system events arrive as logs change.
    Live,
    /// Events are not available (`reason` says why): every log's `stat` is read every
    /// `every_ms` instead, so changes show up that much later.
    Polling { reason: String, every_ms: u64 },
}

/// How to follow the folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchMode {
    /// File system events, falling back to polling when they fail.
    Events,
    /// Polling only (file systems that send no events, such as network mounts), at this pace.
    Poll(Duration),
}

/// What the watcher reports, each on the watcher's own thread (return quickly).
pub struct Callbacks {
    /// The ids of sessions whose index row changed (or that left the index).
    pub on_change: Box<dyn Fn(Vec<String>) + Send>,
    /// Progress of the first catch-up (a rebuild on a fresh index).
    pub on_progress: Box<dyn Fn(Progress) + Send>,
    /// Whether events work; reported at start and whenever it changes.
    pub on_health: Box<dyn Fn(WatchHealth) + Send>,
}

enum Message {
    Event(notify::Result<notify::Event>),
    Stop,
}

/// Stops watching when dropped.
pub struct Watcher {
    stop: Sender<Message>,
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
    /// `on_change` gets the ids of sessions whose index row changed.
    pub fn start(
        data_dir: &Path,
        on_change: impl Fn(Vec<String>) + Send + 'static,
    ) -> Result<Watcher, HistoryError> {
        Self::start_with(
            data_dir,
            WatchMode::Events,
            Callbacks {
                on_change: Box::new(on_change),
                on_progress: Box::new(|_| {}),
                on_health: Box::new(|_| {}),
            },
        )
    }

    /// `start`, choosing how to follow the folder and with every report.
    pub fn start_with(
        data_dir: &Path,
        mode: WatchMode,
        callbacks: Callbacks,
    ) -> Result<Watcher, HistoryError> {
        let dir = sessions_dir(data_dir);
        std::fs::create_dir_all(&dir)
            .map_err(|e| HistoryError::io("create the sessions folder", &dir, e))?;
        let index = Index::open(data_dir)?;
        let (tx, rx) = mpsc::channel::<Message>();
        let follower = Follower {
            index,
            dir: dir.clone(),
            tx: tx.clone(),
            callbacks,
            events: None,
            watched: None,
            health: None,
            mode,
        };
        let thread = std::thread::Builder::new()
            .name("talaria-watch".into())
            .spawn(move || follower.run(rx))
            .map_err(|e| HistoryError::io("start the watcher for", &dir, e))?;
        Ok(Watcher {
            stop: tx,
            thread: Some(thread),
        })
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        let _ = self.stop.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The watcher's thread: its index, its notify watcher while events work, and what it told.
struct Follower {
    index: Index,
    dir: PathBuf,
    tx: Sender<Message>,
    callbacks: Callbacks,
    events: Option<RecommendedWatcher>,
    /// The folder the events come from (its inode): one removed and made again is another
    /// folder, whose changes the old watch never sees.
    watched: Option<u64>,
    health: Option<WatchHealth>,
    mode: WatchMode,
}

impl Follower {
    fn run(mut self, rx: Receiver<Message>) {
        self.connect();
        self.catch_up(true);
        let mut last_look = Instant::now();
        loop {
            let every = match (&self.events, self.mode) {
                (Some(_), _) => SAFETY_RESCAN,
                (None, WatchMode::Poll(every)) => every,
                (None, WatchMode::Events) => POLL_INTERVAL,
            };
            let wait = every.saturating_sub(last_look.elapsed());
            let first = match rx.recv_timeout(wait) {
                Ok(Message::Event(event)) => event,
                Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {
                    self.look_again();
                    last_look = Instant::now();
                    continue;
                }
            };
            let mut paths: HashSet<PathBuf> = HashSet::new();
            let mut rescan = false;
            take(first, &mut paths, &mut rescan);
            let started = Instant::now();
            loop {
                let left = MAX_BATCH_WAIT.saturating_sub(started.elapsed());
                if left.is_zero() {
                    break;
                }
                match rx.recv_timeout(DEBOUNCE.min(left)) {
                    Ok(Message::Event(event)) => take(event, &mut paths, &mut rescan),
                    Err(RecvTimeoutError::Timeout) => break,
                    Ok(Message::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                }
            }
            if rescan || self.folder_replaced() {
                self.look_again();
                last_look = Instant::now();
            } else {
                let mut changed = Vec::new();
                for path in paths {
                    refresh_path(&self.index, &path, &mut changed);
                }
                if !changed.is_empty() {
                    (self.callbacks.on_change)(changed);
                }
            }
        }
    }

    /// Starts following events (unless polling was asked for), and reports how it goes.
    fn connect(&mut self) {
        let health = match self.mode {
            WatchMode::Poll(every) => WatchHealth::Polling {
                reason: "polling was asked for".into(),
                every_ms: millis(every),
            },
            WatchMode::Events => match self.watch() {
                Ok(watcher) => {
                    self.events = Some(watcher);
                    self.watched = folder_inode(&self.dir);
                    WatchHealth::Live
                }
                Err(error) => {
                    tracing::warn!("live session updates are off, polling instead: {error}");
                    WatchHealth::Polling {
                        reason: error.to_string(),
                        every_ms: millis(POLL_INTERVAL),
                    }
                }
            },
        };
        self.report(health);
    }

    fn watch(&self) -> Result<RecommendedWatcher, HistoryError> {
        let tx = self.tx.clone();
        let mut watcher = notify::recommended_watcher(move |event| {
            // The receiver is gone only when the watcher thread ended.
            let _ = tx.send(Message::Event(event));
        })
        .map_err(|source| HistoryError::Watch {
            path: self.dir.clone(),
            source,
        })?;
        watcher
            .watch(&self.dir, RecursiveMode::Recursive)
            .map_err(|source| HistoryError::Watch {
                path: self.dir.clone(),
                source,
            })?;
        Ok(watcher)
    }

    fn report(&mut self, health: WatchHealth) {
        if self.health.as_ref() != Some(&health) {
            self.health = Some(health.clone());
            (self.callbacks.on_health)(health);
        }
    }

    /// Looks at every log. A sessions folder that was removed (its watch died with it) is
    /// made again and watched again; while events do not work, they are tried again here.
    fn look_again(&mut self) {
        if self.folder_replaced() {
            self.events = None;
            let _ = std::fs::create_dir_all(&self.dir);
        }
        if self.events.is_none() && self.mode == WatchMode::Events {
            self.connect();
        }
        self.catch_up(false);
    }

    /// True when the folder being watched is gone (removed, or removed and made again).
    fn folder_replaced(&self) -> bool {
        self.events.is_some() && folder_inode(&self.dir) != self.watched
    }

    fn catch_up(&self, with_progress: bool) {
        let progress: &dyn Fn(Progress) = if with_progress {
            &self.callbacks.on_progress
        } else {
            &|_| {}
        };
        match self.index.refresh_all(progress) {
            Ok(stats) if !stats.changed.is_empty() || stats.removed > 0 => {
                (self.callbacks.on_change)(stats.changed);
            }
            Ok(_) => {}
            Err(error) => tracing::warn!("the session index could not be refreshed: {error}"),
        }
    }
}

#[cfg(unix)]
fn folder_inode(dir: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(dir).ok().map(|m| m.ino())
}

#[cfg(not(unix))]
fn folder_inode(dir: &Path) -> Option<u64> {
    dir.is_dir().then_some(0)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
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
