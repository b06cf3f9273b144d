//! A stdio server's process: its own process group (so stopping it also stops whatever it
//! started, such as `npx` → `node`), and the last lines it wrote to stderr, which say why it
//! failed.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncRead, BufReader};
use tokio::sync::watch;

use crate::sync::lock;

/// Lines of stderr kept per server.
pub const STDERR_LINES: usize = 20;
/// Characters kept of one stderr line.
const LINE_CHARS: usize = 400;
/// Between SIGTERM and SIGKILL when a server is stopped.
pub const TERM_GRACE: Duration = Duration::from_millis(300);

/// Every server process group alive in this process, for exit paths that cannot reach the
/// managers (a second Ctrl-C, a panic).
static LIVE: Mutex<BTreeSet<libc::pid_t>> = Mutex::new(BTreeSet::new());

/// SIGKILLs every server process group still alive. For last-resort exit paths.
pub fn kill_all() {
    for pgid in lock(&LIVE).iter() {
        // SAFETY: as in `ProcessGroup::signal`: groups our children lead, never 0 or 1.
        unsafe {
            libc::killpg(*pgid, libc::SIGKILL);
        }
    }
}

/// The process group a server leads. Dropping it kills the group.
#[derive(Debug)]
pub struct ProcessGroup {
    pgid: libc::pid_t,
}

impl ProcessGroup {
    /// The group led by the child with this pid (spawned with `process_group(0)`).
    pub fn led_by(pid: u32) -> Option<ProcessGroup> {
        let pgid = libc::pid_t::try_from(pid).ok().filter(|pgid| *pgid > 1)?;
        lock(&LIVE).insert(pgid);
        Some(ProcessGroup { pgid })
    }

    /// Sends `signal` to every process of the group; a group already gone is fine.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: killpg only sends a signal. pgid is a group our own child leads and is never
        // 0 or 1 (which would mean our own group or init's).
        unsafe {
            libc::killpg(self.pgid, signal);
        }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.signal(libc::SIGKILL);
        lock(&LIVE).remove(&self.pgid);
    }
}

/// The last lines a server wrote to stderr, filled by a reader task until the pipe closes.
#[derive(Clone, Debug)]
pub struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    closed: watch::Receiver<bool>,
}

impl StderrTail {
    /// Starts reading `stderr` on the current runtime. `server` names the lines in the
    /// diagnostics log.
    pub fn start(server: String, stderr: impl AsyncRead + Unpin + Send + 'static) -> StderrTail {
        let lines = Arc::new(Mutex::new(VecDeque::with_capacity(STDERR_LINES)));
        let (done, closed) = watch::channel(false);
        let kept = lines.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&buf);
                        let line: String = text.trim_end().chars().take(LINE_CHARS).collect();
                        if line.is_empty() {
                            continue;
                        }
                        tracing::debug!(server = %server, "stderr: {line}");
                        let mut kept = lock(&kept);
                        if kept.len() == STDERR_LINES {
                            kept.pop_front();
                        }
                        kept.push_back(line);
                    }
                }
            }
            let _ = done.send(true);
        });
        StderrTail { lines, closed }
    }

    /// The lines so far, oldest first.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).iter().cloned().collect()
    }

    /// Resolves when the pipe has closed: every process that held it has exited.
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        let _ = closed.wait_for(|done| *done).await;
    }

    /// The lines once the pipe has closed (the server and its children are gone), or after
    /// `wait` at most: a grandchild may hold the pipe open.
    pub async fn settled(&self, wait: Duration) -> Vec<String> {
        let _ = tokio::time::timeout(wait, self.closed()).await;
        self.lines()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_lines() {
        let text: String = (0..30).map(|i| format!("line {i}\n")).collect();
        let tail = StderrTail::start("t".into(), std::io::Cursor::new(text.into_bytes()));
        let lines = tail.settled(Duration::from_secs(5)).await;
        assert_eq!(lines.len(), STDERR_LINES);
        assert_eq!(lines.first().unwrap(), "line 10");
        assert_eq!(lines.last().unwrap(), "line 29");
    }
}
