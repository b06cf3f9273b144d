//! The session log writer. One thread per open session owns the file; `append` is a channel
//! send from the caller's thread (no lock held across I/O, no syscall unless the writer has to
//! be woken from idle). The writer serializes the owned records, batches them (at most one
//! write per 500 ms while records flow), writes at once for the user's message and turn ends,
//! survives write failures without losing or duplicating records, and always writes what is
//! pending when the last handle goes away.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::{Arc, Mutex, Weak};
use std::thread::Thread;
use std::time::{Duration, Instant};

use crate::event::{ErrorKind, Event, EventSink};
use crate::history::error::HistoryError;
use crate::history::record::{Header, Line, Record, parse_line};
use crate::history::session_path;
use crate::history::sink::{FileSink, LogFile, PartialWrite};
use crate::sync::lock;

/// The longest a batched record waits before it is written (the seed's interval).
pub const BATCH_INTERVAL: Duration = Duration::from_millis(500);
/// How soon a failed write is retried when nothing else asks for a write.
const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How long dropping the last handle waits for the final write.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Urgency {
    Batched,
    Now,
    Sync,
}

type FlushResult = Result<(), (std::io::ErrorKind, String)>;

enum Reply {
    Async(tokio::sync::oneshot::Sender<FlushResult>),
    Blocking(Sender<FlushResult>),
}

impl Reply {
    fn send(self, result: FlushResult) {
        // The waiter may have given up (timeout); nothing to do then.
        match self {
            Reply::Async(tx) => {
                let _ = tx.send(result);
            }
            Reply::Blocking(tx) => {
                let _ = tx.send(result);
            }
        }
    }
}

enum Command {
    Append(Box<Record>, Urgency),
    Flush(Reply),
    Close,
}

struct Inner {
    tx: Sender<Command>,
    writer: Thread,
    done: Mutex<Option<Receiver<()>>>,
    path: PathBuf,
    session_id: String,
}

impl Inner {
    fn send(&self, command: Command, wake: bool) {
        // A send error means the writer is gone (it only exits on Close): nothing to write to.
        let _ = self.tx.send(command);
        if wake {
            self.writer.unpark();
        }
    }

    fn flush_reply(&self, reply: Reply) {
        self.send(Command::Flush(reply), true);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.send(Command::Close, true);
        let done = lock(&self.done).take();
        if let Some(done) = done {
            // Bounded: a dead disk must not hang the exit path forever.
            let _ = done.recv_timeout(CLOSE_WAIT);
        }
    }
}

/// Every live recorder, for `flush_all_blocking` (signal handlers, window close, panic hook).
static LIVE: Mutex<Vec<Weak<Inner>>> = Mutex::new(Vec::new());

fn live() -> Vec<Arc<Inner>> {
    lock(&LIVE).iter().filter_map(Weak::upgrade).collect()
}

fn register(inner: &Arc<Inner>) {
    let mut guard = lock(&LIVE);
    guard.retain(|weak| weak.strong_count() > 0);
    guard.push(Arc::downgrade(inner));
}

/// Flushes (write + `sync_data`) every live recorder, waiting at most `timeout` in total.
/// Safe to call from any thread, inside or outside a tokio runtime.
pub fn flush_all_blocking(timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut waits = Vec::new();
    for inner in live() {
        let (tx, rx) = mpsc::channel();
        inner.flush_reply(Reply::Blocking(tx));
        waits.push(rx);
    }
    for rx in waits {
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = rx.recv_timeout(left);
    }
}

/// A handle on one session's log. Clones share the writer; the last one dropped writes
/// everything pending (waiting up to 5 s) and stops the writer.
#[derive(Clone)]
pub struct Recorder {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("path", &self.inner.path)
            .field("session_id", &self.inner.session_id)
            .finish()
    }
}

impl Recorder {
    /// Creates `<sessions dir>/YYYY/MM/DD/<id>.jsonl` with the header as line 1 (written and
    /// synced before this returns, so the session exists on disk).
    pub fn create(
        sessions_dir: &Path,
        header: Header,
        errors: Arc<dyn EventSink>,
    ) -> Result<Recorder, HistoryError> {
        let path = session_path(sessions_dir, header.created, &header.id);
        let line = Record::Session(header.clone()).to_line().map_err(|e| {
            HistoryError::io("encode the header of", &path, std::io::Error::other(e))
        })?;
        let sink = FileSink::create(&path, line.as_bytes())
            .map_err(|e| HistoryError::io("create the session log", &path, e))?;
        Ok(Recorder::with_sink(
            path,
            header.id,
            Box::new(sink),
            false,
            errors,
        ))
    }

    /// Opens an existing log to append to it (resume). A torn last line left by a crash stays
    /// alone on its line: the next write starts with a newline. A compressed log is made plain
    /// again first (atomically; see `compress`), and its compressed copy removed once this
    /// writer holds the log.
    pub fn reopen(path: &Path, errors: Arc<dyn EventSink>) -> Result<Recorder, HistoryError> {
        let (plain, header, sink, torn) = open_for_append(path)?;
        Ok(Recorder::with_sink(
            plain,
            header.id,
            Box::new(sink),
            torn,
            errors,
        ))
    }

    /// A recorder writing through any `LogFile` (tests inject slow or failing files here).
    /// `torn`: the log currently ends in the middle of a line.
    pub fn with_sink(
        path: PathBuf,
        session_id: String,
        sink: Box<dyn LogFile>,
        torn: bool,
        errors: Arc<dyn EventSink>,
    ) -> Recorder {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let writer = Writer {
            sink,
            path: path.clone(),
            errors,
            pending: Vec::new(),
            torn,
            failing: false,
            last_write: None,
            deadline: None,
            write_now: false,
            sync: false,
            unsynced: false,
            replies: Vec::new(),
            in_turn: false,
        };
        let handle = std::thread::Builder::new()
            .name("talaria-history".into())
            .spawn(move || {
                writer.run(rx);
                let _ = done_tx.send(());
            });
        let writer_thread = match handle {
            Ok(handle) => handle.thread().clone(),
            // No thread: records go nowhere, but the session still runs; flush reports it.
            Err(_) => std::thread::current(),
        };
        let inner = Arc::new(Inner {
            tx,
            writer: writer_thread,
            done: Mutex::new(Some(done_rx)),
            path,
            session_id,
        });
        register(&inner);
        Recorder { inner }
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    pub fn session_id(&self) -> &str {
        &self.inner.session_id
    }

    /// Batched: written within 500 ms. Never blocks, never touches the disk.
    pub fn append(&self, record: Record) {
        self.inner
            .send(Command::Append(Box::new(record), Urgency::Batched), false);
    }

    /// Written at once (the user's message: a sent message is never lost).
    pub fn append_now(&self, record: Record) {
        self.inner
            .send(Command::Append(Box::new(record), Urgency::Now), true);
    }

    /// Written at once and made durable with `sync_data` (turn end).
    pub fn append_sync(&self, record: Record) {
        self.inner
            .send(Command::Append(Box::new(record), Urgency::Sync), true);
    }

    /// Writes everything pending and syncs it; returns once it is on disk (or failed).
    pub async fn flush(&self) -> Result<(), HistoryError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.inner.flush_reply(Reply::Async(tx));
        match rx.await {
            Ok(result) => self.flush_result(result),
            Err(_) => Err(HistoryError::WriterGone(self.inner.path.clone())),
        }
    }

    /// `flush` for threads outside an async context (exit paths).
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), HistoryError> {
        let (tx, rx) = mpsc::channel();
        self.inner.flush_reply(Reply::Blocking(tx));
        match rx.recv_timeout(timeout) {
            Ok(result) => self.flush_result(result),
            Err(RecvTimeoutError::Timeout) => Err(HistoryError::FlushTimeout {
                path: self.inner.path.clone(),
                ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
            }),
            Err(RecvTimeoutError::Disconnected) => {
                Err(HistoryError::WriterGone(self.inner.path.clone()))
            }
        }
    }

    fn flush_result(&self, result: FlushResult) -> Result<(), HistoryError> {
        result.map_err(|(kind, message)| {
            HistoryError::io(
                "write the session log",
                &self.inner.path,
                std::io::Error::new(kind, message),
            )
        })
    }
}

/// The plain log of `path` (either form), opened for appending under its writer's lock:
/// its path, header, sink, and whether it ends in a torn line. A compaction that switches the
/// log between finding and locking it is waited out (the plain form is made again).
pub fn open_for_append(path: &Path) -> Result<(PathBuf, Header, FileSink, bool), HistoryError> {
    let mut tries = 0;
    loop {
        let plain = crate::history::compress::ensure_plain(path)?;
        let (header, header_line) = read_header(&plain)?;
        match FileSink::open_append(&plain, Some(header_line)) {
            Ok((sink, torn)) => {
                // This writer holds the log now: a compressed copy is out of date.
                crate::history::compress::drop_compressed(&plain)?;
                return Ok((plain, header, sink, torn));
            }
            Err(e) if crate::history::lock::is_locked(&e) => {
                return Err(HistoryError::InUse(plain));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && tries < 3 => tries += 1,
            Err(e) => return Err(HistoryError::io("open the session log", &plain, e)),
        }
    }
}

/// Line 1 of a log: its header, parsed, and its bytes (to recreate a removed file).
fn read_header(path: &Path) -> Result<(Header, Vec<u8>), HistoryError> {
    let file =
        std::fs::File::open(path).map_err(|e| HistoryError::io("open the session log", path, e))?;
    let mut reader = BufReader::new(file);
    let mut line = Vec::new();
    reader
        .read_until(b'\n', &mut line)
        .map_err(|e| HistoryError::io("read the session log", path, e))?;
    let body = line.strip_suffix(b"\n").unwrap_or(&line);
    match parse_line(body) {
        Line::Record(record) => match *record {
            Record::Session(header) => {
                if !line.ends_with(b"\n") {
                    line.push(b'\n');
                }
                Ok((header, line))
            }
            Record::Message { .. }
            | Record::Todo { .. }
            | Record::TurnStart { .. }
            | Record::TurnEnd { .. }
            | Record::Usage { .. }
            | Record::Title { .. }
            | Record::Pin { .. }
            | Record::Archive { .. } => recovered(path),
        },
        Line::Unknown | Line::Blank | Line::Unreadable => recovered(path),
    }
}

/// Line 1 is damaged: resume under the header the reader makes up from the file name (the
/// caller has read the session, so there are records worth keeping). The damaged line stays.
fn recovered(path: &Path) -> Result<(Header, Vec<u8>), HistoryError> {
    let header =
        crate::history::reader::recovered_header(path, None).ok_or_else(|| not_a_session(path))?;
    let line = Record::Session(header.clone())
        .to_line()
        .map_err(|e| HistoryError::io("encode the header of", path, std::io::Error::other(e)))?;
    Ok((header, line.into_bytes()))
}

fn not_a_session(path: &Path) -> HistoryError {
    HistoryError::NotASession {
        path: path.to_path_buf(),
        reason: "line 1 is not a session header".into(),
    }
}

struct Writer {
    sink: Box<dyn LogFile>,
    path: PathBuf,
    errors: Arc<dyn EventSink>,
    /// Serialized records not yet on disk, whole lines only.
    pending: Vec<u8>,
    /// The file ends in the middle of a line: the next write starts with "\n".
    torn: bool,
    /// In a failure streak (reported once, at its start).
    failing: bool,
    last_write: Option<Instant>,
    /// When the batched records must be written.
    deadline: Option<Instant>,
    write_now: bool,
    sync: bool,
    /// Bytes written since the last sync_data.
    unsynced: bool,
    replies: Vec<Reply>,
    /// Between a turn's start and end records: the writer polls the channel every batch
    /// interval instead of blocking on it, so batched appends during a turn never have to wake
    /// it (a channel send that wakes a blocked thread costs the caller a futex syscall).
    in_turn: bool,
}

impl Writer {
    fn run(mut self, rx: Receiver<Command>) {
        let mut closing = false;
        while !closing {
            // Idle between turns: block on the channel (the first record wakes us). In a turn,
            // or with a batch due: park with a timeout, so batched appends never wake us.
            let first = match self.deadline {
                None if !self.write_now && !self.in_turn => match rx.recv() {
                    Ok(command) => Some(command),
                    Err(_) => {
                        closing = true;
                        None
                    }
                },
                None if !self.write_now => {
                    std::thread::park_timeout(BATCH_INTERVAL);
                    None
                }
                None => None,
                Some(deadline) => {
                    if !self.write_now {
                        std::thread::park_timeout(
                            deadline.saturating_duration_since(Instant::now()),
                        );
                    }
                    None
                }
            };
            if let Some(command) = first {
                closing |= self.handle(command);
            }
            loop {
                match rx.try_recv() {
                    Ok(command) => closing |= self.handle(command),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closing = true;
                        break;
                    }
                }
            }
            let due = self.deadline.is_some_and(|d| Instant::now() >= d);
            if self.write_now || due || closing {
                let sync = self.sync || closing;
                self.write(sync);
            }
        }
    }

    /// Takes one command; true when it asks the writer to stop.
    fn handle(&mut self, command: Command) -> bool {
        match command {
            Command::Append(record, urgency) => {
                match *record {
                    Record::TurnStart { .. } => self.in_turn = true,
                    Record::TurnEnd { .. } => self.in_turn = false,
                    Record::Session(_)
                    | Record::Message { .. }
                    | Record::Todo { .. }
                    | Record::Usage { .. }
                    | Record::Title { .. }
                    | Record::Pin { .. }
                    | Record::Archive { .. } => {}
                }
                match record.to_line() {
                    Ok(line) => self.pending.extend_from_slice(line.as_bytes()),
                    Err(error) => self.report(&format!(
                        "a record could not be encoded and was left out of {}: {error}",
                        self.path.display()
                    )),
                }
                match urgency {
                    Urgency::Batched => {
                        if self.deadline.is_none() {
                            let earliest = self
                                .last_write
                                .map_or_else(Instant::now, |t| t + BATCH_INTERVAL);
                            self.deadline = Some(earliest.max(Instant::now()));
                        }
                    }
                    Urgency::Now => self.write_now = true,
                    Urgency::Sync => {
                        self.write_now = true;
                        self.sync = true;
                    }
                }
                false
            }
            Command::Flush(reply) => {
                self.replies.push(reply);
                self.write_now = true;
                self.sync = true;
                false
            }
            Command::Close => true,
        }
    }

    fn write(&mut self, sync: bool) {
        self.write_now = false;
        self.sync = false;
        let mut result: FlushResult = Ok(());
        if !self.pending.is_empty() {
            result = self.write_pending();
        }
        if result.is_ok() && sync && self.unsynced {
            match self.sink.sync_data() {
                Ok(()) => self.unsynced = false,
                Err(error) => {
                    self.fail(&error);
                    result = Err((error.kind(), error.to_string()));
                }
            }
        }
        if result.is_ok() && self.failing {
            self.failing = false;
        }
        for reply in self.replies.drain(..) {
            reply.send(result.clone());
        }
    }

    fn write_pending(&mut self) -> FlushResult {
        let prefix = usize::from(self.torn);
        let outcome = if self.torn {
            let mut buf = Vec::with_capacity(self.pending.len() + 1);
            buf.push(b'\n');
            buf.extend_from_slice(&self.pending);
            self.sink.write_all(&buf)
        } else {
            self.sink.write_all(&self.pending)
        };
        self.last_write = Some(Instant::now());
        match outcome {
            Ok(()) => {
                self.pending.clear();
                self.torn = false;
                self.unsynced = true;
                self.deadline = None;
                Ok(())
            }
            Err(PartialWrite { written, error }) => {
                if written > 0 {
                    self.unsynced = true;
                }
                if written >= prefix {
                    // The torn fragment (if any) is now closed by its newline.
                    self.torn = false;
                    let consumed = (written - prefix).min(self.pending.len());
                    // Whole lines that reached the file are done: never write them twice.
                    let whole = self.pending[..consumed]
                        .iter()
                        .rposition(|b| *b == b'\n')
                        .map_or(0, |i| i + 1);
                    self.pending.drain(..whole);
                    if consumed > whole {
                        // Part of a line is on disk; it must stay alone on its line.
                        self.torn = true;
                    }
                }
                self.fail(&error);
                self.deadline = Some(Instant::now() + RETRY_INTERVAL);
                Err((error.kind(), error.to_string()))
            }
        }
    }

    fn fail(&mut self, error: &std::io::Error) {
        if self.failing {
            return;
        }
        self.failing = true;
        self.report(&format!(
            "could not write the session log {}: {error}. The session goes on in memory and \
             Talaria keeps retrying; free some disk space or fix the folder's permissions.",
            self.path.display()
        ));
    }

    fn report(&self, message: &str) {
        self.errors.emit(Event::StorageError {
            kind: ErrorKind::Io,
            message: message.to_string(),
            path: self.path.display().to_string(),
        });
    }
}
