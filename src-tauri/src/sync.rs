//! Locking that survives a panic elsewhere.

use std::sync::{Mutex, MutexGuard, PoisonError};

/// Locks `mutex`, taking the data even if a panicking thread poisoned it. Every mutex in
/// Talaria guards plain values changed by whole assignments or single inserts and removes, so
/// a panic cannot leave them half-updated, and a stopped turn or exit path must still go on.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
