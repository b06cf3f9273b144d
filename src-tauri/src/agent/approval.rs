//! Who decides on dangerous tool calls: everyone (`ApproveAll`), no one (`DenyAll`, what `exec`
//! does without `--approve-all`), or the user through a broker the front end answers (`Ask`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// What the agent does with a tool call that `tools::approval_reason` flags.
#[derive(Clone)]
pub enum ApprovalPolicy {
    ApproveAll,
    DenyAll,
    Ask(Arc<ApprovalBroker>),
}

impl std::fmt::Debug for ApprovalPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApprovalPolicy::ApproveAll => f.write_str("ApproveAll"),
            ApprovalPolicy::DenyAll => f.write_str("DenyAll"),
            ApprovalPolicy::Ask(_) => f.write_str("Ask"),
        }
    }
}

/// Pending approval requests, keyed by the `id` of their `ApprovalRequest` event.
#[derive(Debug, Default)]
pub struct ApprovalBroker {
    pending: Mutex<HashMap<String, oneshot::Sender<bool>>>,
}

impl ApprovalBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a request; the receiver yields the user's answer (or an error if the request
    /// was withdrawn).
    pub fn register(&self, id: &str) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.to_string(), tx);
        rx
    }

    /// Withdraws a request nobody answered (the turn was cancelled).
    pub fn withdraw(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Answers a pending request. False when no request with that id is waiting.
    pub fn respond(&self, id: &str, approved: bool) -> bool {
        match self.lock().remove(id) {
            Some(tx) => tx.send(approved).is_ok(),
            None => false,
        }
    }

    /// Ids of the requests still waiting for an answer.
    pub fn pending_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<bool>>> {
        crate::sync::lock(&self.pending)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn respond_delivers_once() {
        let broker = ApprovalBroker::new();
        let rx = broker.register("a");
        assert!(broker.respond("a", true));
        assert!(!broker.respond("a", false));
        assert_eq!(rx.await, Ok(true));
    }

    #[test]
    fn withdraw_forgets() {
        let broker = ApprovalBroker::new();
        let _rx = broker.register("a");
        broker.withdraw("a");
        assert!(!broker.respond("a", true));
        assert!(broker.pending_ids().is_empty());
    }
}
