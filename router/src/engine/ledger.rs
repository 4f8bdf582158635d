//! The outcome of every record, written exactly once: [`Ledger::finish`] logs the record's one
//! outcome line, tells the [`Gate`] (so the ordering rules see every failure) and stores the
//! outcome; at the end [`Ledger::into_outcomes`] hands back one outcome per record, in batch order.

use std::sync::Mutex;

use shared::{Source, TenantId};

use super::gate::Gate;
use crate::outcome::Outcome;
use crate::record::{Ordering, RecordMeta};

/// Every record's outcome, and the ordering gate they feed.
pub struct Ledger<'r, 'a> {
    metas: &'r [RecordMeta<'a>],
    gate: Gate,
    source: Source,
    outcomes: Mutex<Vec<Option<Outcome>>>,
}

impl<'r, 'a> Ledger<'r, 'a> {
    /// A ledger for `metas` (in batch order) spread over `lanes` lanes.
    pub fn new(
        metas: &'r [RecordMeta<'a>],
        ordering: Ordering,
        lanes: usize,
        source: Source,
    ) -> Self {
        Self {
            metas,
            gate: Gate::new(ordering, lanes),
            source,
            outcomes: Mutex::new(vec![None; metas.len()]),
        }
    }

    /// Record `index`'s identity.
    pub fn meta(&self, index: usize) -> &'r RecordMeta<'a> {
        &self.metas[index]
    }

    /// Why record `index` of `lane` may not be sent now (the ordering rules), as its outcome.
    pub fn blocked(&self, lane: usize, index: usize) -> Option<Outcome> {
        self.gate.check(lane, &self.metas[index].id)
    }

    /// Ends record `index` of `lane` with `outcome`. `tenant` is the proven or claimed tenant,
    /// when known.
    pub fn finish(
        &self,
        index: usize,
        lane: usize,
        tenant: Option<&TenantId>,
        correlation_id: Option<&str>,
        outcome: Outcome,
    ) {
        let meta = &self.metas[index];
        log_outcome(meta, tenant, &outcome, self.source, correlation_id);
        self.gate.record(lane, &meta.id, &outcome);
        let mut outcomes = self.outcomes.lock().expect("ledger lock");
        debug_assert!(outcomes[index].is_none(), "record {index} finished twice");
        outcomes[index] = Some(outcome);
    }

    /// One outcome per record, in batch order.
    pub fn into_outcomes(self) -> Vec<Outcome> {
        self.outcomes
            .into_inner()
            .expect("ledger lock")
            .into_iter()
            .enumerate()
            .map(|(index, o)| o.unwrap_or_else(|| panic!("record {index} has no outcome")))
            .collect()
    }
}

/// Logs a record's one outcome line, with its correlation id when the record could be decoded.
/// A field of the line rather than a span per record: a span costs more than the line itself.
fn log_outcome(
    meta: &RecordMeta<'_>,
    tenant: Option<&TenantId>,
    outcome: &Outcome,
    source: Source,
    correlation_id: Option<&str>,
) {
    // A tenant id that failed validation may hold anything: log it escaped.
    let tenant_id = match (tenant, meta.claimed_tenant.get()) {
        (Some(t), _) => t.as_str().to_owned(),
        (None, Some(claimed)) => claimed.escape_debug().to_string(),
        (None, None) => String::new(),
    };
    match outcome {
        Outcome::Invoked { attempts } => tracing::info!(
            message = "record routed",
            record_id = meta.id.as_str(),
            correlation_id = correlation_id,
            tenant_id = tenant_id.as_str(),
            source = source.as_str(),
            outcome = "invoked",
            attempts = attempts,
        ),
        Outcome::Rejected {
            reason,
            detail,
            quarantined,
        } => tracing::warn!(
            message = "record rejected",
            record_id = meta.id.as_str(),
            correlation_id = correlation_id,
            tenant_id = tenant_id.as_str(),
            source = source.as_str(),
            outcome = "rejected",
            reason = reason,
            detail = detail.as_str(),
            quarantined = quarantined,
        ),
        Outcome::Failed { reason, detail } => tracing::warn!(
            message = "record failed",
            record_id = meta.id.as_str(),
            correlation_id = correlation_id,
            tenant_id = tenant_id.as_str(),
            source = source.as_str(),
            outcome = "failed",
            reason = reason,
            detail = detail.as_str(),
        ),
    }
}
