//! Who decides on tool calls that need a decision: everyone (`ApproveAll`, `exec
//! --approve-all`), no one (`DenyAll`, what `exec` does by default), or the user through a
//! broker the front end answers (`Ask`). `verdict` applies the approval level and the sandbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::safety::{ApprovalLevel, AskKind, Concern, Safety};

/// What the agent does with a tool call that needs a decision.
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

/// The user's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Allow this call.
    Once,
    /// Allow this exact command for the rest of the session.
    Session,
    Deny,
}

impl Decision {
    pub fn allows(self) -> bool {
        match self {
            Decision::Once | Decision::Session => true,
            Decision::Deny => false,
        }
    }

    /// The answers the dialog offers for this kind of question.
    pub fn choices(kind: AskKind, can_remember: bool) -> Vec<Decision> {
        match kind {
            AskKind::Command | AskKind::Mcp if can_remember => {
                vec![Decision::Once, Decision::Session, Decision::Deny]
            }
            AskKind::Command | AskKind::Mcp | AskKind::Secret | AskKind::Escalate => {
                vec![Decision::Once, Decision::Deny]
            }
        }
    }
}

/// What happens to a call with a concern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Run,
    Ask,
    Refuse(String),
}

/// Applies the policy, the approval level and the sandbox to a concern. `granted`: the user
/// already allowed this exact command for the session.
pub fn verdict(
    concern: &Concern,
    policy: &ApprovalPolicy,
    safety: &Safety,
    granted: bool,
) -> Verdict {
    if granted && !concern.secret {
        return Verdict::Run;
    }
    match policy {
        ApprovalPolicy::ApproveAll => {
            if concern.secret && !safety.allow_secrets {
                Verdict::Refuse(format!(
                    "refused: {}. Secrets stay out of reach even with --approve-all; the user can allow them with --allow-secrets, or ask in the app",
                    concern.reason
                ))
            } else {
                Verdict::Run
            }
        }
        ApprovalPolicy::DenyAll => {
            if concern.secret {
                Verdict::Refuse(format!(
                    "refused: needs approval ({}); secrets are only read when the user allows it (run talaria exec with --approve-all --allow-secrets, or use the app)",
                    concern.reason
                ))
            } else if !safety.sandboxed() && concern.kind == AskKind::Command {
                Verdict::Refuse(format!(
                    "refused: needs approval (run with --approve-all to allow): {}; this system has no sandbox for commands, so only read-only commands run unasked",
                    concern.reason
                ))
            } else if concern.risky {
                Verdict::Refuse(format!(
                    "refused: needs approval (run with --approve-all to allow): {}",
                    concern.reason
                ))
            } else {
                Verdict::Run
            }
        }
        ApprovalPolicy::Ask(_) => {
            // Without a sandbox every level asks: nothing else would hold the command back.
            let level = if safety.sandboxed() {
                safety.level
            } else {
                ApprovalLevel::Ask
            };
            if concern.secret {
                return match level {
                    ApprovalLevel::Never => Verdict::Refuse(format!(
                        "refused: {}; with \"never ask\" on, secrets are refused (the user can switch to asking in Settings)",
                        concern.reason
                    )),
                    ApprovalLevel::Ask | ApprovalLevel::Risky => Verdict::Ask,
                };
            }
            match level {
                ApprovalLevel::Ask => Verdict::Ask,
                ApprovalLevel::Risky if concern.risky => Verdict::Ask,
                ApprovalLevel::Risky | ApprovalLevel::Never => Verdict::Run,
            }
        }
    }
}

/// Pending approval requests, keyed by the `id` of their `ApprovalRequest` event.
#[derive(Debug, Default)]
pub struct ApprovalBroker {
    pending: Mutex<HashMap<String, oneshot::Sender<Decision>>>,
}

impl ApprovalBroker {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a request; the receiver yields the user's answer (or an error if the request
    /// was withdrawn).
    pub fn register(&self, id: &str) -> oneshot::Receiver<Decision> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(id.to_string(), tx);
        rx
    }

    /// Withdraws a request nobody answered (the turn was cancelled).
    pub fn withdraw(&self, id: &str) {
        self.lock().remove(id);
    }

    /// Answers a pending request. False when no request with that id is waiting.
    pub fn respond(&self, id: &str, decision: Decision) -> bool {
        match self.lock().remove(id) {
            Some(tx) => tx.send(decision).is_ok(),
            None => false,
        }
    }

    /// Ids of the requests still waiting for an answer.
    pub fn pending_ids(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, oneshot::Sender<Decision>>> {
        crate::sync::lock(&self.pending)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::safety::{SafetySettings, SandboxPolicy};

    #[tokio::test]
    async fn respond_delivers_once() {
        let broker = ApprovalBroker::new();
        let rx = broker.register("a");
        assert!(broker.respond("a", Decision::Session));
        assert!(!broker.respond("a", Decision::Deny));
        assert_eq!(rx.await, Ok(Decision::Session));
    }

    #[test]
    fn withdraw_forgets() {
        let broker = ApprovalBroker::new();
        let _rx = broker.register("a");
        broker.withdraw("a");
        assert!(!broker.respond("a", Decision::Once));
        assert!(broker.pending_ids().is_empty());
    }

    fn safety(level: ApprovalLevel, sandboxed: bool) -> Safety {
        let dir = std::env::temp_dir();
        let mut safety = Safety::new(
            &SafetySettings {
                level,
                ..SafetySettings::default()
            },
            &dir.join("talaria-test-data"),
            &dir,
        );
        safety.sandbox = if sandboxed {
            Ok(SandboxPolicy::default())
        } else {
            Err("test".into())
        };
        safety
    }

    fn concern(risky: bool, secret: bool) -> Concern {
        Concern {
            kind: if secret {
                AskKind::Secret
            } else {
                AskKind::Command
            },
            reason: "r".into(),
            risky,
            secret,
            grant_key: None,
        }
    }

    #[test]
    fn levels_and_policies() {
        let ask = ApprovalPolicy::Ask(Arc::new(ApprovalBroker::new()));
        use ApprovalLevel::*;
        let v = |level, sandboxed, risky, secret, policy: &ApprovalPolicy| {
            verdict(
                &concern(risky, secret),
                policy,
                &safety(level, sandboxed),
                false,
            )
        };
        assert_eq!(v(Ask, true, false, false, &ask), Verdict::Ask);
        assert_eq!(v(Risky, true, false, false, &ask), Verdict::Run);
        assert_eq!(v(Risky, true, true, false, &ask), Verdict::Ask);
        assert_eq!(v(Never, true, true, false, &ask), Verdict::Run);
        assert_eq!(
            v(Never, false, false, false, &ask),
            Verdict::Ask,
            "no sandbox: ask"
        );
        assert_eq!(v(Risky, true, true, true, &ask), Verdict::Ask);
        assert!(matches!(
            v(Never, true, true, true, &ask),
            Verdict::Refuse(_)
        ));
        let deny = ApprovalPolicy::DenyAll;
        assert_eq!(v(Ask, true, false, false, &deny), Verdict::Run);
        assert!(matches!(
            v(Ask, true, true, false, &deny),
            Verdict::Refuse(_)
        ));
        assert!(matches!(
            v(Ask, false, false, false, &deny),
            Verdict::Refuse(_)
        ));
        let all = ApprovalPolicy::ApproveAll;
        assert_eq!(v(Ask, true, true, false, &all), Verdict::Run);
        assert!(matches!(v(Ask, true, true, true, &all), Verdict::Refuse(_)));
    }
}
