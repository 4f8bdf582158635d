//! Panic isolation, the one rule: a panic on one record's path (decoding, proving, sending,
//! quarantining) ends that record, or the records of the Invoke that panicked, with
//! `internal-error`, and nothing else.

use std::future::Future;
use std::panic::AssertUnwindSafe;

use futures::FutureExt;

use crate::outcome::Outcome;

/// Runs `work`; a panic in it becomes the `internal-error` outcome naming `what` was under way.
pub async fn isolated<T>(work: impl Future<Output = T>, what: &str) -> Result<T, Outcome> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|_| Outcome::internal_error(what))
}
