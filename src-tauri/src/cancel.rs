//! Racing awaits against the turn's cancellation token, codex-style. This is the one way the
//! code races work against a token: `work.or_cancel(&token).await`.

use std::future::Future;

pub use tokio_util::sync::CancellationToken;

/// The awaited work was abandoned because the token fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled by the user")]
pub struct Cancelled;

/// Extension for futures: `fut.or_cancel(&token).await` yields `Err(Cancelled)` as soon as the
/// token fires, dropping the future (which closes sockets and kills children it owns).
///
/// The work is polled first: work that watches the token itself (the model layer, the tools)
/// and is ready returns its own result, with whatever it kept (a partial reply, a write that
/// had already committed).
pub trait OrCancel: Future + Sized {
    fn or_cancel(
        self,
        token: &CancellationToken,
    ) -> impl Future<Output = Result<Self::Output, Cancelled>> + Send
    where
        Self: Send,
        Self::Output: Send,
    {
        let token = token.clone();
        async move {
            tokio::select! {
                biased;
                output = self => Ok(output),
                _ = token.cancelled() => Err(Cancelled),
            }
        }
    }
}

impl<F: Future> OrCancel for F {}
