//! `ROUTER_DELIVERY=tenant-batch`: the records of one tenant within one event source batch go to
//! the backend in as few Invokes as the async payload limit (or `ROUTER_BATCH_MAX_BYTES`) allows, each an envelope batch
//! ([`shared::EnvelopeBatch`]) carrying the same per-record envelopes as record mode.
//!
//! The batch is routed in rounds. In each round every lane that is not blocked offers its leading
//! run of records of one tenant (a whole lane when, as usual, a FIFO group or a partition key
//! belongs to one tenant; every SQS standard record is a lane of its own, so one round covers a
//! standard batch). The runs are grouped by tenant, and each tenant's records are packed, in
//! batch order, into chunks no larger than the limit; one tenant's chunks are sent one after the
//! other, so a lane split across two chunks keeps its order, and tenants run concurrently, at
//! most `max_in_flight` at a time (so at most that many Invokes are in flight).
//!
//! An Invoke that fails fails exactly the records it carried, and the ordering rules of record
//! mode hold for chunks: a failed record blocks the rest of its lane (FIFO, streams), and in a
//! stream batch no record at or above the lowest failed sequence number is sent, checked again
//! just before each chunk goes out. A chunk the service refuses as unusable (400, 413, 415) is
//! split and its records are sent one by one, so one bad record cannot fail its neighbours.
//! Records rejected before delivery (bad token, …) are quarantined or reported alone, as in record
//! mode.

use std::collections::{HashMap, VecDeque};
use std::panic::AssertUnwindSafe;

use futures::{FutureExt, StreamExt};
use shared::{ASYNC_PAYLOAD_LIMIT, BatchPayload, TenantId};

use crate::backend::Backend;
use crate::batch::{
    Ordering, RouteContext, Sent, StreamGate, Verdict, log_outcome, prove_and_wrap, reject, send,
    split_lanes,
};
use crate::outcome::{Outcome, Rejection};
use crate::record::{Decoded, Record, RecordMeta};

/// Routes every record, batching per tenant, and returns one outcome per record in batch order.
pub(crate) async fn route<'a, B: Backend>(
    records: Vec<Record<'a>>,
    context: &RouteContext<'_, B>,
) -> (Vec<RecordMeta<'a>>, Vec<Outcome>) {
    let (metas, lanes) = split_lanes(records);
    // Grouping needs every record's tenant, so deferred records are decoded now.
    let mut lanes: Vec<VecDeque<_>> = lanes
        .into_iter()
        .map(|lane| {
            lane.into_iter()
                .map(|(index, pending)| {
                    let decoded = pending.resolve(&metas[index], context.config, context.info);
                    (index, decoded)
                })
                .collect()
        })
        .collect();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; metas.len()];
    let gate = StreamGate::default();
    let metas_ref = &metas;
    let gate_ref = &gate;
    loop {
        let groups = next_round(&mut lanes);
        if groups.is_empty() {
            break;
        }
        let mut finished = futures::stream::iter(groups)
            .map(|(tenant, runs)| {
                let worker = Worker {
                    metas: metas_ref,
                    gate: gate_ref,
                    context,
                    blocked: HashMap::new(),
                    outcomes: Vec::new(),
                };
                worker.run(tenant, runs)
            })
            .buffer_unordered(context.config.max_in_flight);
        let mut newly_blocked = Vec::new();
        while let Some((results, blocked)) = finished.next().await {
            for (index, outcome) in results {
                outcomes[index] = Some(outcome);
            }
            newly_blocked.extend(blocked);
        }
        drop(finished);
        // The rest of a blocked lane is never started.
        for (lane, earlier) in newly_blocked {
            for (index, decoded) in lanes[lane].drain(..) {
                let outcome = Outcome::failed(
                    "earlier-record-failed",
                    format!("record {earlier} of the same ordered lane was not delivered"),
                );
                let tenant = decoded.as_ref().ok().map(|d| &d.tenant);
                let correlation_id = decoded
                    .as_ref()
                    .ok()
                    .map(|d| d.envelope.correlation_id.as_str());
                log_outcome(
                    &metas[index],
                    tenant,
                    &outcome,
                    context.source,
                    correlation_id,
                );
                outcomes[index] = Some(outcome);
            }
        }
    }
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.expect("every round reports every record it takes"))
        .collect();
    (metas, outcomes)
}

/// A run: consecutive records of one lane with one tenant, with the lane's number.
type Run = (usize, Vec<(usize, Result<Decoded, Rejection>)>);

/// Takes the leading single-tenant run of every lane and groups the runs by tenant (records that
/// could not be decoded have no tenant and are grouped together; they are rejected one by one).
fn next_round(
    lanes: &mut [VecDeque<(usize, Result<Decoded, Rejection>)>],
) -> Vec<(Option<TenantId>, Vec<Run>)> {
    let mut groups: Vec<(Option<TenantId>, Vec<Run>)> = Vec::new();
    let mut group_of: HashMap<Option<TenantId>, usize> = HashMap::new();
    for (number, lane) in lanes.iter_mut().enumerate() {
        let Some((_, first)) = lane.front() else {
            continue;
        };
        let tenant = tenant_of(first).cloned();
        let mut run = Vec::new();
        while lane
            .front()
            .is_some_and(|(_, decoded)| tenant_of(decoded) == tenant.as_ref())
        {
            run.extend(lane.pop_front());
        }
        let group = *group_of.entry(tenant.clone()).or_insert_with(|| {
            groups.push((tenant, Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push((number, run));
    }
    groups
}

fn deadline_outcome() -> Outcome {
    Outcome::failed(
        "deadline",
        "not started: the invocation deadline is too close",
    )
}

fn tenant_of(decoded: &Result<Decoded, Rejection>) -> Option<&TenantId> {
    decoded.as_ref().ok().map(|d| &d.tenant)
}

/// A record packed into the chunk being built.
struct Member {
    index: usize,
    lane: usize,
    correlation_id: String,
    trace_header: Option<String>,
}

/// Routes the runs of one tenant in one round: packs them into chunks and sends each in turn.
struct Worker<'r, 'm, 'c, B> {
    metas: &'r [RecordMeta<'m>],
    gate: &'r StreamGate,
    context: &'r RouteContext<'c, B>,
    /// Lanes blocked in this round, with the id of the record that blocked them.
    blocked: HashMap<usize, String>,
    outcomes: Vec<(usize, Outcome)>,
}

impl<B: Backend> Worker<'_, '_, '_, B> {
    async fn run(
        mut self,
        tenant: Option<TenantId>,
        runs: Vec<Run>,
    ) -> (Vec<(usize, Outcome)>, Vec<(usize, String)>) {
        let ordered = self.context.ordering != Ordering::Independent;
        let stream = self.context.ordering == Ordering::Stream;
        let metas = self.metas;
        let mut chunk = tenant.as_ref().map(BatchPayload::new);
        let mut members: Vec<Member> = Vec::new();
        // Batch order across the tenant's lanes: each lane's own order is kept, and chunks read
        // like the batch.
        let mut records: Vec<_> = runs
            .into_iter()
            .flat_map(|(lane, run)| run.into_iter().map(move |(index, d)| (index, lane, d)))
            .collect();
        records.sort_by_key(|(index, _, _)| *index);
        for (index, lane, decoded) in records {
            {
                let meta = &metas[index];
                if ordered && let Some(earlier) = self.blocked.get(&lane) {
                    let outcome = Outcome::failed(
                        "earlier-record-failed",
                        format!("record {earlier} of the same ordered lane was not delivered"),
                    );
                    self.finish(index, lane, tenant.as_ref(), None, outcome);
                    continue;
                }
                if stream && let Some(lowest) = self.gate.blocker(&meta.id) {
                    let outcome = Outcome::failed(
                        "earlier-record-failed",
                        format!("sequence number {lowest} failed earlier in this shard"),
                    );
                    self.finish(index, lane, tenant.as_ref(), None, outcome);
                    continue;
                }
                let decoded = match decoded {
                    Ok(decoded) => decoded,
                    Err(rejection) => {
                        // Undecodable records have no tenant: their group holds nothing else.
                        let outcome = if self.context.deadline.can_start() {
                            reject(meta, rejection, self.context).await
                        } else {
                            deadline_outcome()
                        };
                        self.finish(index, lane, None, None, outcome);
                        continue;
                    }
                };
                let early = if self.context.deadline.can_start() {
                    match AssertUnwindSafe(prove_and_wrap(&decoded, self.context))
                        .catch_unwind()
                        .await
                    {
                        Ok(Ok(payload)) => Ok(payload),
                        Ok(Err(verdict)) => Err(verdict),
                        Err(_) => Err(Verdict::Fail(Outcome::failed(
                            "internal-error",
                            "routing the record panicked",
                        ))),
                    }
                } else {
                    Err(Verdict::Fail(deadline_outcome()))
                };
                let correlation_id = decoded.envelope.correlation_id.as_str();
                let payload = match early {
                    Ok(payload) => payload,
                    Err(verdict) => {
                        // An earlier record of the lane may still wait in the chunk: it goes
                        // first, so that this record is not handled (quarantined, say) if the
                        // earlier one then fails.
                        if ordered && members.iter().any(|m| m.lane == lane) {
                            let batch = chunk.as_mut().expect("a chunk has a tenant");
                            self.flush(&decoded.tenant, batch, &mut members).await;
                        }
                        let outcome = match (self.blocked.get(&lane), verdict) {
                            (Some(earlier), _) if ordered => Outcome::failed(
                                "earlier-record-failed",
                                format!(
                                    "record {earlier} of the same ordered lane was not delivered"
                                ),
                            ),
                            (_, Verdict::Reject(rejection)) => {
                                reject(meta, rejection, self.context).await
                            }
                            (_, Verdict::Fail(outcome)) => outcome,
                        };
                        self.finish(index, lane, tenant.as_ref(), Some(correlation_id), outcome);
                        continue;
                    }
                };
                let batch = chunk
                    .as_mut()
                    .expect("a decoded record always has a tenant");
                if !batch.is_empty()
                    && batch.len_with(payload.len()) > self.context.config.batch_max_bytes
                {
                    self.flush(&decoded.tenant, batch, &mut members).await;
                    // The chunk just sent may have failed an earlier record of this lane.
                    if ordered && let Some(earlier) = self.blocked.get(&lane) {
                        let outcome = Outcome::failed(
                            "earlier-record-failed",
                            format!("record {earlier} of the same ordered lane was not delivered"),
                        );
                        self.finish(index, lane, tenant.as_ref(), Some(correlation_id), outcome);
                        continue;
                    }
                }
                batch.push(&payload);
                members.push(Member {
                    index,
                    lane,
                    correlation_id: decoded.envelope.correlation_id,
                    trace_header: decoded.trace_header,
                });
            }
        }
        if let (Some(tenant), Some(batch)) = (&tenant, chunk.as_mut()) {
            self.flush(tenant, batch, &mut members).await;
        }
        (self.outcomes, self.blocked.into_iter().collect())
    }

    /// Sends the chunk built so far and records the outcome of every record it carried.
    async fn flush(
        &mut self,
        tenant: &TenantId,
        batch: &mut BatchPayload,
        members: &mut Vec<Member>,
    ) {
        let mut carried = std::mem::take(members);
        if self.context.ordering != Ordering::Independent {
            // Since these records were packed, an earlier record of their lane may have failed,
            // or (streams) a lower sequence number in another tenant's chunk: they must not be
            // sent now.
            let mut keep = Vec::with_capacity(carried.len());
            let mut kept = Vec::with_capacity(carried.len());
            for member in carried {
                match self.blocked_reason(&member) {
                    Some(outcome) => {
                        self.finish_member(tenant, &member, outcome);
                        keep.push(false);
                    }
                    None => {
                        kept.push(member);
                        keep.push(true);
                    }
                }
            }
            if keep.contains(&false) {
                batch.retain(|index| keep[index]);
            }
            carried = kept;
        }
        if carried.is_empty() {
            batch.clear();
            return;
        }
        if !self.context.deadline.can_start() {
            for member in &carried {
                self.finish_member(tenant, member, deadline_outcome());
            }
            batch.clear();
            return;
        }
        // A record that fits the limit alone but not inside a batch goes as a plain envelope;
        // the backend accepts both shapes.
        let payload = if carried.len() == 1 && batch.len() > ASYNC_PAYLOAD_LIMIT {
            batch.record(0)
        } else {
            batch.payload()
        };
        let label = self.metas[carried[0].index].id.clone();
        let trace = carried[0].trace_header.clone();
        let sent = AssertUnwindSafe(send(
            &label,
            tenant,
            payload,
            trace.as_deref(),
            self.context,
        ))
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Sent::Failed(Outcome::failed(
                "internal-error",
                "sending the chunk panicked",
            ))
        });
        let records: Vec<Vec<u8>> = match &sent {
            Sent::Refused(_) if carried.len() > 1 => (0..batch.count())
                .map(|i| batch.record(i).to_vec())
                .collect(),
            _ => Vec::new(),
        };
        batch.clear();
        match sent {
            Sent::Invoked { attempts } => {
                for member in &carried {
                    self.finish_member(tenant, member, Outcome::Invoked { attempts });
                }
            }
            Sent::Failed(outcome) => {
                for member in &carried {
                    self.finish_member(tenant, member, outcome.clone());
                }
            }
            Sent::Refused(rejection) if carried.len() == 1 => {
                let meta = &self.metas[carried[0].index];
                let outcome = reject(meta, rejection, self.context).await;
                self.finish_member(tenant, &carried[0], outcome);
            }
            Sent::Refused(rejection) => {
                tracing::warn!(
                    message = "tenant batch refused; sending its records one by one",
                    tenant_id = tenant.as_str(),
                    records = carried.len(),
                    reason = rejection.reason,
                    detail = rejection.detail.as_str(),
                );
                self.send_one_by_one(tenant, carried, records).await;
            }
        }
    }

    /// Sends each record of a refused chunk as a batch of its own, keeping lane order.
    async fn send_one_by_one(
        &mut self,
        tenant: &TenantId,
        carried: Vec<Member>,
        records: Vec<Vec<u8>>,
    ) {
        for (member, record) in carried.into_iter().zip(records) {
            if let Some(outcome) = self.blocked_reason(&member) {
                self.finish_member(tenant, &member, outcome);
                continue;
            }
            let mut single = BatchPayload::new(tenant);
            single.push(&record);
            Box::pin(self.flush(tenant, &mut single, &mut vec![member])).await;
        }
    }

    /// Why a packed record may no longer be sent, in an ordered batch.
    fn blocked_reason(&self, member: &Member) -> Option<Outcome> {
        if self.context.ordering == Ordering::Independent {
            return None;
        }
        if let Some(earlier) = self.blocked.get(&member.lane) {
            return Some(Outcome::failed(
                "earlier-record-failed",
                format!("record {earlier} of the same ordered lane was not delivered"),
            ));
        }
        if self.context.ordering == Ordering::Stream {
            let lowest = self.gate.blocker(&self.metas[member.index].id)?;
            return Some(Outcome::failed(
                "earlier-record-failed",
                format!("sequence number {lowest} failed earlier in this shard"),
            ));
        }
        None
    }

    fn finish_member(&mut self, tenant: &TenantId, member: &Member, outcome: Outcome) {
        self.finish(
            member.index,
            member.lane,
            Some(tenant),
            Some(member.correlation_id.as_str()),
            outcome,
        );
    }

    /// Logs a record's outcome, and blocks its lane (and the stream) if it must be redelivered.
    fn finish(
        &mut self,
        index: usize,
        lane: usize,
        tenant: Option<&TenantId>,
        correlation_id: Option<&str>,
        outcome: Outcome,
    ) {
        let meta = &self.metas[index];
        log_outcome(meta, tenant, &outcome, self.context.source, correlation_id);
        if outcome.is_reported() {
            if self.context.ordering == Ordering::Stream {
                self.gate.failed(&meta.id);
            }
            if self.context.ordering != Ordering::Independent {
                self.blocked.entry(lane).or_insert_with(|| meta.id.clone());
            }
        }
        self.outcomes.push((index, outcome));
    }
}
