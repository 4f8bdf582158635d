//! The routing engine: records in, exactly one [`Outcome`] per record out, for both delivery
//! modes.
//!
//! Records are grouped into lanes (a FIFO message group, a stream partition key; a record
//! without a lane is a lane of its own). Lanes run concurrently, at most `max_in_flight` at a
//! time; the records of one lane are taken in order. For each record: the ordering gate
//! (`gate`), then — isolated, so a panic fails this record alone (`isolation`) — decoding (when
//! it was deferred), the deadline, the identity proof and the envelope (`identity`); a record that
//! cannot go is quarantined or reported (`quarantine`) once the lane's earlier records are
//! delivered; a proven one is handed to the delivery mode (`packing`), which sends it on its own
//! or in its tenant's envelope batch with retries (`send`). Every outcome is written once to the
//! `ledger`, which feeds the gate.
//!
//! Layers inside: `context`, `isolation`, `gate` → `ledger`, `identity`, `send`, `quarantine` →
//! `packing` → this module.

mod context;
mod gate;
mod identity;
mod isolation;
mod ledger;
mod packing;
mod quarantine;
mod send;

use std::collections::HashMap;

use futures::StreamExt;
use shared::TenantId;

pub use context::{BatchStats, RouteContext};
pub use identity::Identity;
pub use packing::HOLD_BUDGET;

use crate::backend::Backend;
use crate::outcome::{Outcome, Verdict};
use crate::record::{Pending, Record, RecordMeta};
use isolation::isolated;
use ledger::Ledger;
use packing::{Hold, Packer, Ready};

/// A lane: records that must run in order, with their index in the batch.
type Lane<'a> = Vec<(usize, Pending<'a>)>;

/// Routes every record and returns their metadata with one outcome each, in batch order.
pub async fn route<'a, B: Backend>(
    records: Vec<Record<'a>>,
    context: &RouteContext<'_, B>,
) -> (Vec<RecordMeta<'a>>, Vec<Outcome>) {
    let (metas, lanes) = split_lanes(records);
    let outcomes = {
        let ledger = Ledger::new(&metas, context.ordering, lanes.len(), context.source);
        let packer = Packer::new(&ledger, context);
        futures::stream::iter(lanes.into_iter().enumerate())
            .for_each_concurrent(packer.lane_concurrency(), |(number, lane)| {
                run_lane(number, lane, &ledger, &packer, context)
            })
            .await;
        packer.finish().await;
        drop(packer);
        ledger.into_outcomes()
    };
    (metas, outcomes)
}

/// Splits records into their metadata (in batch order) and their lanes (in order of first record).
fn split_lanes<'a>(records: Vec<Record<'a>>) -> (Vec<RecordMeta<'a>>, Vec<Lane<'a>>) {
    let mut metas = Vec::with_capacity(records.len());
    let mut lanes: Vec<Lane<'a>> = Vec::new();
    let mut lane_of: HashMap<String, usize> = HashMap::new();
    for (index, record) in records.into_iter().enumerate() {
        let lane = match &record.meta.lane {
            Some(key) => *lane_of.entry(key.clone()).or_insert_with(|| {
                lanes.push(Vec::new());
                lanes.len() - 1
            }),
            None => {
                lanes.push(Vec::new());
                lanes.len() - 1
            }
        };
        lanes[lane].push((index, record.decoded));
        metas.push(record.meta);
    }
    (metas, lanes)
}

/// A record that stops before it is sent, with what is known of it for its outcome line.
struct Unsent {
    verdict: Verdict,
    tenant: Option<TenantId>,
    correlation_id: Option<String>,
}

impl From<Verdict> for Unsent {
    fn from(verdict: Verdict) -> Self {
        Self {
            verdict,
            tenant: None,
            correlation_id: None,
        }
    }
}

async fn run_lane<B: Backend>(
    number: usize,
    lane: Lane<'_>,
    ledger: &Ledger<'_, '_>,
    packer: &Packer<'_, B>,
    context: &RouteContext<'_, B>,
) {
    let mut hold = Hold::default();
    for (index, pending) in lane {
        packer.turn(index).await;
        if let Some(outcome) = ledger.blocked(number, index) {
            packer.pass(index);
            ledger.finish(index, number, None, None, outcome);
            continue;
        }
        let meta = ledger.meta(index);
        let prepared = isolated(prepare(meta, pending, context), "routing the record")
            .await
            .unwrap_or_else(|outcome| Err(Verdict::Fail(outcome).into()));
        let unsent = match prepared {
            Ok(ready) => {
                packer.deliver(number, index, ready, &mut hold).await;
                continue;
            }
            Err(unsent) => unsent,
        };
        packer.pass(index);
        // Ending a record that was not sent has effects (the quarantine queue): the lane's
        // earlier records are delivered first, and a failure among them stops this one.
        packer.settle(&mut hold).await;
        let outcome = match ledger.blocked(number, index) {
            Some(outcome) => outcome,
            None => match unsent.verdict {
                Verdict::Reject(rejection) => isolated(
                    quarantine::reject(meta, rejection, context),
                    "quarantining the record",
                )
                .await
                .unwrap_or_else(|outcome| outcome),
                Verdict::Fail(outcome) => outcome,
            },
        };
        ledger.finish(
            index,
            number,
            unsent.tenant.as_ref(),
            unsent.correlation_id.as_deref(),
            outcome,
        );
    }
}

/// Decodes (when deferred), checks the deadline, proves the tenant and wraps the envelope.
async fn prepare<B: Backend>(
    meta: &RecordMeta<'_>,
    pending: Pending<'_>,
    context: &RouteContext<'_, B>,
) -> Result<Ready, Unsent> {
    // Decoded now, not when the batch was read: only the records being routed are held.
    let decoded = pending.resolve(meta, context.config, context.info)?;
    let unsent = |verdict: Verdict| Unsent {
        verdict,
        tenant: Some(decoded.tenant.clone()),
        correlation_id: Some(decoded.envelope.correlation_id.clone()),
    };
    if !context.info.deadline.can_start() {
        return Err(unsent(Verdict::Fail(Outcome::not_started())));
    }
    context
        .identity
        .prove(
            &decoded,
            *context.config.validation.get(context.source),
            context.config.max_record_age,
            context.info,
        )
        .await
        .map_err(unsent)?;
    let payload = identity::wrap(&decoded).map_err(|r| unsent(Verdict::Reject(r)))?;
    Ok(Ready {
        tenant: decoded.tenant,
        payload,
        correlation_id: decoded.envelope.correlation_id,
        trace_header: decoded.trace_header,
    })
}
