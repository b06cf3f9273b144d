//! The point of no return of a file write, shared by the blocking thread that writes and the
//! turn that may be stopped. A write that has not reached its commit (the rename over the
//! target) when Stop arrives is abandoned; one that has reached it finishes, and its real
//! result is what the log records. Stop waits for the rename only, not for the folder's sync
//! that follows it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

const OPEN: u8 = 0;
const COMMITTING: u8 = 1;
const CANCELLED: u8 = 2;
const COMMITTED: u8 = 3;

#[derive(Debug, Default)]
struct Shared {
    state: AtomicU8,
    /// What the tool reports once the rename is done.
    result: Mutex<Option<String>>,
    committed: Notify,
}

#[derive(Clone, Debug, Default)]
pub struct CommitGate(Arc<Shared>);

impl CommitGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// The writer is about to commit; `result` is what it will report. False when Stop came
    /// first: the writer must abandon.
    pub fn begin_commit(&self, result: String) -> bool {
        *crate::sync::lock(&self.0.result) = Some(result);
        self.0
            .state
            .compare_exchange(OPEN, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The rename is done: the file is the new one.
    pub fn committed(&self) {
        self.0.state.store(COMMITTED, Ordering::Release);
        self.0.committed.notify_waiters();
    }

    /// The writer checks this between chunks, to abandon early.
    pub fn is_cancelled(&self) -> bool {
        self.0.state.load(Ordering::Acquire) == CANCELLED
    }

    /// Stop: true when the write will not happen; false when it has begun committing (the
    /// caller then waits for `wait_committed`, which takes a rename).
    pub fn cancel(&self) -> bool {
        match self
            .0
            .state
            .compare_exchange(OPEN, CANCELLED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(state) => state == CANCELLED,
        }
    }

    /// Waits until the rename is done; returns what the writer reports.
    pub async fn wait_committed(&self) -> Option<String> {
        loop {
            let notified = self.0.committed.notified();
            tokio::pin!(notified);
            // Registered before the state is read, so a commit in between is not missed.
            notified.as_mut().enable();
            if self.0.state.load(Ordering::Acquire) == COMMITTED {
                return crate::sync::lock(&self.0.result).clone();
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_and_commit_exclude_each_other() {
        let gate = CommitGate::new();
        assert!(gate.cancel());
        assert!(!gate.begin_commit("wrote".into()));
        assert!(gate.is_cancelled());

        let gate = CommitGate::new();
        assert!(gate.begin_commit("wrote".into()));
        assert!(!gate.cancel());
        assert!(!gate.is_cancelled());
    }

    #[tokio::test]
    async fn waiting_sees_a_commit_from_another_thread() {
        let gate = CommitGate::new();
        assert!(gate.begin_commit("wrote 3 bytes".into()));
        let writer = gate.clone();
        std::thread::spawn(move || writer.committed());
        assert_eq!(
            gate.wait_committed().await.as_deref(),
            Some("wrote 3 bytes")
        );
    }
}
