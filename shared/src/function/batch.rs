//! An admitted envelope batch: its records run one at a time, in order, each once
//! ([`super::once`]); after a failure the batch's `ordering` decides which later records are
//! not run (`skipped`): those with the same `orderingKey` (`lanes`), or all (`stream`). The answer
//! is compact ([`crate::answer::RecordResult`] per record: `id`, `status`, `error`, `duplicate`,
//! never the handler's result), so its size is bounded by the ids it carries. With
//! `"answer": "per-record"` the invocation succeeds whatever the records' results; without it a
//! failed record makes it a function error, so Lambda's async retries run the batch again (and
//! only the failed and skipped records run then: the others are duplicates).

use std::collections::HashMap;
use std::fmt::Display;
use std::future::Future;

use serde_json::{Value, json};

use super::context::TenantContext;
use super::error::InvokeError;
use super::once::{self, Store};
use crate::answer::{self, RecordResult, RecordStatus};
use crate::{BatchAnswer, BatchOrdering, Envelope, EnvelopeBatch, TenantId};

/// Runs the records of `batch`, already admitted for `tenant`.
pub(super) async fn run<F, Fut, E>(
    store: &Store,
    tenant: &TenantId,
    request_id: &str,
    deadline_ms: i64,
    batch: EnvelopeBatch,
    handler: &F,
) -> Result<Value, InvokeError>
where
    F: Fn(TenantContext, Envelope) -> Fut,
    Fut: Future<Output = Result<Value, E>>,
    E: Display,
{
    let total = batch.records.len();
    let (mut processed, mut duplicates, mut skipped) = (0, 0, 0);
    let mut failures = Vec::new();
    let mut results = Vec::with_capacity(total);
    let mut stops = Stops::new(batch.ordering);
    for envelope in batch.records {
        let id = envelope.id.clone();
        if let Some(earlier) = stops.stopped_by(&envelope) {
            let why = format!("not run: record {earlier} it is ordered after failed");
            results.push(result(id, RecordStatus::Skipped, Some(&why), false));
            skipped += 1;
            continue;
        }
        let key = envelope.ordering_key.clone();
        match once::process(store, tenant, request_id, deadline_ms, envelope, handler).await {
            Ok(done) => {
                if done.duplicate {
                    duplicates += 1;
                } else {
                    processed += 1;
                }
                results.push(result(id, RecordStatus::Processed, None, done.duplicate));
            }
            Err(error) => {
                let error = error.to_string();
                results.push(result(
                    id.clone(),
                    RecordStatus::Failed,
                    Some(&error),
                    false,
                ));
                failures.push(format!("{id}: {error}"));
                stops.failed(&id, key);
            }
        }
    }
    if failures.is_empty() || batch.answer == Some(BatchAnswer::PerRecord) {
        Ok(json!({
            "tenantId": tenant,
            "records": results,
            "processed": processed,
            "duplicates": duplicates,
            "failed": failures.len(),
            "skipped": skipped,
        }))
    } else {
        Err(InvokeError::PartialFailure {
            processed,
            duplicates,
            failed: failures.len(),
            skipped,
            detail: failures.join("; "),
        })
    }
}

/// One record's compact result.
fn result(id: String, status: RecordStatus, error: Option<&str>, duplicate: bool) -> RecordResult {
    RecordResult {
        id,
        status,
        error: error.map(answer::cut_error),
        duplicate,
    }
}

/// Which records of an envelope batch may no longer run after failures (its `ordering`).
struct Stops {
    ordering: Option<BatchOrdering>,
    /// Per ordering key, the record that failed first (`lanes`).
    lanes: HashMap<String, String>,
    /// The first record that failed (`stream`).
    first: Option<String>,
}

impl Stops {
    fn new(ordering: Option<BatchOrdering>) -> Self {
        Self {
            ordering,
            lanes: HashMap::new(),
            first: None,
        }
    }

    /// The id of the failed record `envelope` is ordered after, if any.
    fn stopped_by(&self, envelope: &Envelope) -> Option<&str> {
        match self.ordering? {
            BatchOrdering::Stream => self.first.as_deref(),
            BatchOrdering::Lanes => self
                .lanes
                .get(envelope.ordering_key.as_deref()?)
                .map(String::as_str),
        }
    }

    /// Record `id` (ordering key `key`) failed.
    fn failed(&mut self, id: &str, key: Option<String>) {
        self.first.get_or_insert_with(|| id.to_owned());
        if let Some(key) = key {
            self.lanes.entry(key).or_insert_with(|| id.to_owned());
        }
    }
}
