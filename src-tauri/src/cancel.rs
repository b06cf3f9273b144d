//! Racing every await against the turn's cancellation token, codex-style.

use std::future::Future;

pub use tokio_util::sync::CancellationToken;

/// The awaited work was abandoned because the token fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cancelled by the user")]
pub struct Cancelled;

/// Extension for futures: `fut.or_cancel(&token).await` yields `Err(Cancelled)` as soon as the
/// token fires, dropping the future (which closes sockets and kills children it owns).
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
                _ = token.cancelled() => Err(Cancelled),
                output = self => Ok(output),
            }
        }
    }
}

impl<F: Future> OrCancel for F {}
