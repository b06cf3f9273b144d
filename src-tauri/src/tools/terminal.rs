//! `terminal`: one shell command in the working folder, in its own process group, so a cancel
//! or a timeout can kill everything it started (no orphans) with one `killpg`.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe::Receiver;

use super::workdir::{PathError, Workdir};
use crate::cancel::{CancellationToken, Cancelled, OrCancel};
use crate::safety::SandboxPolicy;
use crate::safety::sandbox::{Prepared, SandboxError, looks_denied};

pub const DEFAULT_TIMEOUT_S: u64 = 180;
pub const MAX_TIMEOUT_S: u64 = 600;
/// Output kept at most: the head and the tail, half each.
pub const MAX_OUTPUT_CHARS: usize = 100_000;
/// After a timeout's SIGTERM, how long the group gets before SIGKILL.
const TERM_GRACE: Duration = Duration::from_millis(100);
/// After the shell exits, how long background processes may keep the output pipe open.
const DRAIN_GRACE: Duration = Duration::from_millis(100);
/// Bytes buffered for each of head and tail: enough for MAX_OUTPUT_CHARS / 2 chars of any UTF-8.
const HALF_BYTES: usize = MAX_OUTPUT_CHARS * 2;

#[derive(Debug, thiserror::Error)]
pub enum TerminalError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("the command is empty; give a shell command to run")]
    Empty,
    #[error("could not start the shell {shell}: {source}")]
    Spawn {
        shell: String,
        source: std::io::Error,
    },
    #[error("waiting for the command failed: {0}")]
    Wait(std::io::Error),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("cancelled by the user")]
    Cancelled,
}

#[derive(Debug, Deserialize)]
pub struct TerminalArgs {
    pub command: String,
    /// Seconds; fractional values are accepted because models send them.
    #[serde(default, deserialize_with = "super::lenient::opt_f64")]
    pub timeout: Option<f64>,
}

/// What the model reads: output, then a status line.
#[derive(Debug)]
pub struct Finished {
    pub content: String,
    pub is_error: bool,
    /// It ran in the sandbox, failed, and its output reads like the sandbox stopped it.
    pub sandbox_denied: bool,
}

/// How a command is started: in the sandbox or not, and with which environment.
#[derive(Debug, Default)]
pub struct Launch<'a> {
    pub sandbox: Option<&'a SandboxPolicy>,
    /// The whole environment of the command (nothing else is inherited).
    pub env: &'a [(OsString, OsString)],
}

fn shell() -> &'static Path {
    static SHELL: OnceLock<PathBuf> = OnceLock::new();
    SHELL.get_or_init(|| {
        let bash = PathBuf::from("/bin/bash");
        if bash.exists() {
            bash
        } else {
            PathBuf::from("/bin/sh")
        }
    })
}

/// The seconds a call may run: the model's value capped at MAX_TIMEOUT_S, else the default.
pub fn timeout_of(args: &TerminalArgs) -> Duration {
    match args.timeout {
        Some(secs) if secs.is_finite() && secs > 0.0 => {
            Duration::from_secs_f64(secs.min(MAX_TIMEOUT_S as f64))
        }
        _ => Duration::from_secs(DEFAULT_TIMEOUT_S),
    }
}

/// Sends `signal` to the whole process group. ESRCH (group already gone) is fine.
fn kill_group(pgid: libc::pid_t, signal: libc::c_int) {
    if pgid > 1 {
        // SAFETY: killpg only sends a signal; pgid is the group our child leads (never 0/1,
        // which would mean our own group or init's).
        unsafe {
            libc::killpg(pgid, signal);
        }
    }
}

/// Kills the group if the tool's future is dropped mid-run (the caller raced us against
/// something else): kill_on_drop alone would only reach the shell, not its children.
struct GroupGuard {
    pgid: libc::pid_t,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pgid, libc::SIGKILL);
        }
    }
}

enum End {
    Exited(ExitStatus),
    TimedOut,
}

/// What one wait in the read loop saw.
enum Step {
    TimedOut,
    Exited(std::io::Result<ExitStatus>),
    Read(std::io::Result<usize>),
}

pub async fn run(
    workdir: &Path,
    args: TerminalArgs,
    launch: Launch<'_>,
    cancel: &CancellationToken,
) -> Result<Finished, TerminalError> {
    if args.command.trim().is_empty() {
        return Err(TerminalError::Empty);
    }
    let wd = Workdir::new(workdir)?;
    let timeout = timeout_of(&args);
    let shell = shell();
    let spawn_error = |source| TerminalError::Spawn {
        shell: shell.display().to_string(),
        source,
    };

    // One pipe for stdout and stderr, so the output keeps the order it was written in.
    let (reader, writer) = std::io::pipe().map_err(spawn_error)?;
    let writer_err = writer.try_clone().map_err(spawn_error)?;
    // Built before the fork (the child only enforces it).
    let sandbox = launch.sandbox.map(Prepared::new).transpose()?;
    let mut command = tokio::process::Command::new(shell);
    command
        .arg("-c")
        .arg(&args.command)
        .current_dir(wd.root())
        .env_clear()
        .envs(launch.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(writer))
        .stderr(Stdio::from(writer_err))
        .env("TERM", "dumb")
        .env("PAGER", "cat")
        .env("GIT_PAGER", "cat")
        .env("GIT_TERMINAL_PROMPT", "0")
        .process_group(0)
        .kill_on_drop(true);
    if let Some(sandbox) = &sandbox {
        sandbox.apply(&mut command);
    }
    let spawned = command.spawn();
    drop(sandbox);
    // Our copies of the write end must close, or the pipe never reaches EOF.
    drop(command);
    let mut child = spawned.map_err(spawn_error)?;
    let pgid = child
        .id()
        .and_then(|id| libc::pid_t::try_from(id).ok())
        .unwrap_or(0);
    let mut guard = GroupGuard { pgid, armed: true };
    let mut rx = Receiver::from_owned_fd(OwnedFd::from(reader)).map_err(spawn_error)?;

    let mut capture = Capture::default();
    let mut buf = vec![0u8; 16 * 1024];
    let mut eof = false;
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);

    let end = loop {
        let step = async {
            tokio::select! {
                biased;
                _ = &mut deadline => Step::TimedOut,
                status = child.wait() => Step::Exited(status),
                read = rx.read(&mut buf), if !eof => Step::Read(read),
            }
        }
        .or_cancel(cancel)
        .await;
        match step {
            Err(Cancelled) => {
                kill_group(pgid, libc::SIGKILL);
                guard.armed = false;
                // Reaping a SIGKILLed child takes microseconds; bounded so cancel stays prompt.
                let _ = tokio::time::timeout(Duration::from_millis(20), child.wait()).await;
                return Err(TerminalError::Cancelled);
            }
            Ok(Step::TimedOut) => break End::TimedOut,
            Ok(Step::Exited(status)) => break End::Exited(status.map_err(TerminalError::Wait)?),
            Ok(Step::Read(Ok(0) | Err(_))) => eof = true,
            Ok(Step::Read(Ok(n))) => capture.push(&buf[..n]),
        }
    };

    let mut notes = Vec::new();
    let status_line = match end {
        End::TimedOut => {
            kill_group(pgid, libc::SIGTERM);
            let _ = tokio::time::sleep(TERM_GRACE).or_cancel(cancel).await;
            kill_group(pgid, libc::SIGKILL);
            guard.armed = false;
            let _ = tokio::time::timeout(Duration::from_secs(1), child.wait()).await;
            if cancel.is_cancelled() {
                return Err(TerminalError::Cancelled);
            }
            drain(&mut rx, &mut buf, &mut capture, &mut eof, cancel).await?;
            format!(
                "[timed out after {} s; the command and everything it started were stopped. Pass a larger timeout (up to {MAX_TIMEOUT_S} s) or run long jobs in the background with output redirected to a file]",
                fmt_secs(timeout)
            )
        }
        End::Exited(status) => {
            drain(&mut rx, &mut buf, &mut capture, &mut eof, cancel).await?;
            if eof {
                // Whatever is left in the group let go of our output (e.g. a server started
                // with `nohup … > log &`): it was started on purpose, leave it running.
                guard.armed = false;
            } else {
                // Background processes still writing to a pipe nobody will read.
                kill_group(pgid, libc::SIGKILL);
                guard.armed = false;
                notes.push(
                    "[background processes that still held the output were stopped; to keep one running, redirect its output: nohup CMD > file.log 2>&1 &]",
                );
            }
            describe_status(status)
        }
    };

    let timed_out = matches!(end, End::TimedOut);
    let success = match end {
        End::Exited(status) => status.success(),
        End::TimedOut => false,
    };
    let mut content = capture.finish();
    if content.trim().is_empty() {
        content = "(no output)".to_string();
    }
    if !content.ends_with('\n') {
        content.push('\n');
    }
    content.push_str(&status_line);
    for note in notes {
        content.push('\n');
        content.push_str(note);
    }
    let sandbox_denied =
        launch.sandbox.is_some() && !success && !timed_out && looks_denied(&content);
    Ok(Finished {
        content,
        is_error: timed_out || !success,
        sandbox_denied,
    })
}

/// Reads what is left in the pipe, for at most DRAIN_GRACE.
async fn drain(
    rx: &mut Receiver,
    buf: &mut [u8],
    capture: &mut Capture,
    eof: &mut bool,
    cancel: &CancellationToken,
) -> Result<(), TerminalError> {
    let until = tokio::time::Instant::now() + DRAIN_GRACE;
    while !*eof {
        let read = async {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => None,
                read = rx.read(buf) => Some(read),
            }
        }
        .or_cancel(cancel)
        .await
        .map_err(|Cancelled| TerminalError::Cancelled)?;
        match read {
            None => break,
            Some(Ok(0) | Err(_)) => *eof = true,
            Some(Ok(n)) => capture.push(&buf[..n]),
        }
    }
    Ok(())
}

fn describe_status(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("[exit code {code}]"),
        (None, Some(signal)) => format!("[killed by signal {signal}]"),
        (None, None) => "[exit status unknown]".to_string(),
    }
}

fn fmt_secs(duration: Duration) -> String {
    let secs = duration.as_secs_f64();
    if secs.fract() == 0.0 {
        format!("{}", duration.as_secs())
    } else {
        format!("{secs:.1}")
    }
}

/// Keeps the first and the last HALF_BYTES of a stream and counts the characters in between,
/// so memory stays bounded whatever the command prints.
#[derive(Default)]
struct Capture {
    head: Vec<u8>,
    tail: VecDeque<u8>,
    /// Characters (UTF-8 lead bytes) dropped from between head and tail.
    dropped_chars: usize,
}

impl Capture {
    fn push(&mut self, mut bytes: &[u8]) {
        if self.head.len() < HALF_BYTES {
            let take = bytes.len().min(HALF_BYTES - self.head.len());
            self.head.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
        }
        self.tail.extend(bytes);
        let excess = self.tail.len().saturating_sub(HALF_BYTES);
        if excess > 0 {
            self.dropped_chars += self
                .tail
                .range(..excess)
                .filter(|&&byte| !is_continuation(byte))
                .count();
            self.tail.drain(..excess);
        }
        // Continuation bytes left at the front belong to a character already counted as dropped.
        if self.dropped_chars > 0 {
            while self.tail.front().is_some_and(|&byte| is_continuation(byte)) {
                self.tail.pop_front();
            }
        }
    }

    /// The text, at most MAX_OUTPUT_CHARS plus a marker: head and tail with
    /// "[… N chars omitted …]" between them.
    fn finish(self) -> String {
        let half = MAX_OUTPUT_CHARS / 2;
        if self.dropped_chars == 0 {
            let mut bytes = self.head;
            bytes.extend(self.tail);
            let whole = String::from_utf8_lossy(&bytes).into_owned();
            let count = whole.chars().count();
            if count <= MAX_OUTPUT_CHARS {
                return whole;
            }
            return join_cut(&whole, half, count - half, count - 2 * half);
        }
        let head = String::from_utf8_lossy(&self.head).into_owned();
        let tail_bytes: Vec<u8> = self.tail.into_iter().collect();
        let tail = String::from_utf8_lossy(&tail_bytes).into_owned();
        let head_count = head.chars().count();
        let tail_count = tail.chars().count();
        let keep_head = head_count.min(half);
        let skip_tail = tail_count.saturating_sub(half);
        let omitted = (head_count - keep_head) + self.dropped_chars + skip_tail;
        let mut out: String = head.chars().take(keep_head).collect();
        let _ = write!(out, "\n[… {omitted} chars omitted …]\n");
        out.extend(tail.chars().skip(skip_tail));
        out
    }
}

fn join_cut(text: &str, head_chars: usize, tail_from: usize, omitted: usize) -> String {
    let mut out: String = text.chars().take(head_chars).collect();
    let _ = write!(out, "\n[… {omitted} chars omitted …]\n");
    out.extend(text.chars().skip(tail_from));
    out
}

fn is_continuation(byte: u8) -> bool {
    byte & 0xC0 == 0x80
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_small_output_whole() {
        let mut capture = Capture::default();
        capture.push(b"hello ");
        capture.push("wörld".as_bytes());
        assert_eq!(capture.finish(), "hello wörld");
    }

    #[test]
    fn capture_keeps_head_and_tail_of_large_output() {
        let mut capture = Capture::default();
        let total = 1_000_000usize;
        let mut written = 0;
        while written < total {
            let chunk: String = (0..1000)
                .map(|i| if i % 100 == 99 { '\n' } else { 'é' })
                .collect();
            capture.push(chunk.as_bytes());
            written += 1000;
        }
        capture.push(b"THE END");
        let text = capture.finish();
        let count = text.chars().count();
        assert!(count <= MAX_OUTPUT_CHARS + 60, "{count}");
        assert!(text.ends_with("THE END"));
        assert!(text.starts_with("éé"));
        let omitted = total + 7 - MAX_OUTPUT_CHARS;
        assert!(
            text.contains(&format!("[… {omitted} chars omitted …]")),
            "marker missing"
        );
    }

    #[test]
    fn capture_cuts_middle_without_dropping() {
        let mut capture = Capture::default();
        let text = "a".repeat(MAX_OUTPUT_CHARS + 10);
        capture.push(text.as_bytes());
        let out = capture.finish();
        assert!(out.contains("[… 10 chars omitted …]"));
    }

    #[test]
    fn timeout_is_capped_and_defaulted() {
        let args = |timeout| TerminalArgs {
            command: "true".into(),
            timeout,
        };
        assert_eq!(timeout_of(&args(None)), Duration::from_secs(180));
        assert_eq!(timeout_of(&args(Some(-1.0))), Duration::from_secs(180));
        assert_eq!(timeout_of(&args(Some(5.0))), Duration::from_secs(5));
        assert_eq!(timeout_of(&args(Some(1e9))), Duration::from_secs(600));
    }
}
