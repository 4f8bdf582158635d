//! The routing engine: records in, exactly one [`Outcome`] per record out, for both delivery
//! modes.
//!
//! Records are grouped into lanes (a FIFO message group, a stream partition key; a record
//! without a lane is a lane of its own). Lanes run concurrently, at most `max_in_flight` at a
//! time; the records of one lane are taken in order. For each record: the ordering gate
//! (`gate`), then — isolated, so a panic fails this record alone (`isolation`) — decoding (when
//! it was deferred), the deadline, the identity proof, the tenant registry and the envelope
//! (`identity`); a record that
//! cannot go is quarantined or reported (`quarantine`) once the lane's earlier records are
//! delivered; a proven one is handed to the delivery mode (`packing`), which sends it on its own
//! or in its tenant's envelope batch with retries (`send`). Every outcome is written once to the
//! `ledger`, which feeds the gate.
//!
//! Records start round-robin across tenants and no tenant holds more than its share of the
//! in-flight Invokes (`fair`).
//!
//! Layers inside: `context`, `isolation`, `fair`, `gate` → `ledger`, `identity`, `send`,
//! `quarantine`, `reply` → `packing` → this module.

mod context;
mod fair;
mod gate;
mod identity;
mod isolation;
mod ledger;
mod packing;
mod quarantine;
mod reply;
mod send;

use std::collections::HashMap;

use futures::StreamExt;
use shared::TenantId;

pub use context::{BatchStats, RouteContext};
pub use identity::{Identity, REGISTRY_UNAVAILABLE, TENANT_SUSPENDED, TENANT_UNKNOWN};
pub use reply::{BACKEND_ANSWER_INVALID, BACKEND_ERROR, BACKEND_REFUSED};

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
    // `Packer::lane_concurrency` bounds an unordered batch's lanes, which is safe only because
    // each of its records is a lane of its own.
    debug_assert!(
        context.ordering != crate::record::Ordering::Independent
            || lanes.iter().all(|lane| lane.len() == 1)
    );
    let outcomes = {
        let ledger = Ledger::new(&metas, context.ordering, lanes.len(), context.source);
        let packer = Packer::new(&ledger, context);
        let lanes = async {
            let lanes = lanes.into_iter().enumerate();
            match packer.lane_concurrency() {
                // More lanes than slots (`record` mode): round-robin across tenants.
                Some(limit) if packer.starts_fairly(lanes.len()) => {
                    let keyed = lanes
                        .map(|(number, lane)| {
                            let tenant = lane.first().and_then(|(index, pending)| {
                                pending.peek_tenant(&metas[*index], context.config, context.info)
                            });
                            (tenant, (number, lane))
                        })
                        .collect();
                    fair::run_round_robin(
                        keyed,
                        limit,
                        context.config.max_in_flight_per_tenant,
                        |(number, lane)| run_lane(number, lane, &ledger, &packer, context),
                    )
                    .await;
                }
                limit => {
                    futures::stream::iter(lanes)
                        .for_each_concurrent(limit, |(number, lane)| {
                            run_lane(number, lane, &ledger, &packer, context)
                        })
                        .await;
                }
            }
        };
        // Chunks go out beside the lanes: full ones, those sealed to keep within the hold
        // budget, and at the end the rest.
        futures::join!(
            async {
                lanes.await;
                packer.finish();
            },
            packer.send_early()
        );
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
        if ledger.blocked(number, index).is_some() {
            // The lane's earlier record may still wait in a chunk: it is delivered first (it
            // may be below the failure that stops this one), then the gate is asked again.
            packer.pass(index);
            Box::pin(packer.settle(&mut hold)).await;
            let outcome = ledger
                .blocked(number, index)
                .expect("a lane or stream, once stopped, stays stopped");
            ledger.finish(index, number, None, None, outcome);
            continue;
        }
        let meta = ledger.meta(index);
        // The work of a record is boxed: a lane waiting for its turn (every lane of a large
        // `tenant-batch` batch waits at once) then holds a few words, not the largest state of
        // proving and sending.
        let prepared = Box::pin(isolated(
            prepare(meta, pending, context),
            "routing the record",
        ))
        .await
        .unwrap_or_else(|outcome| Err(Verdict::Fail(outcome).into()));
        let unsent = match prepared {
            Ok(ready) => {
                Box::pin(packer.deliver(number, index, ready, &mut hold)).await;
                continue;
            }
            Err(unsent) => unsent,
        };
        packer.pass(index);
        // Ending a record that was not sent has effects (the quarantine queue): the lane's
        // earlier records are delivered first, and a failure among them stops this one.
        Box::pin(packer.settle(&mut hold)).await;
        let outcome = match ledger.blocked(number, index) {
            Some(outcome) => outcome,
            None => match unsent.verdict {
                // Past the margin nothing new starts, a quarantine write neither.
                Verdict::Reject(rejection) if !context.info.deadline.can_start() => {
                    Outcome::Rejected {
                        reason: rejection.reason,
                        detail: format!(
                            "{}; not quarantined: the invocation deadline is too close",
                            rejection.detail
                        ),
                        quarantined: false,
                    }
                }
                Verdict::Reject(rejection) => Box::pin(isolated(
                    quarantine::reject(meta, rejection, context),
                    "quarantining the record",
                ))
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
    context
        .identity
        .admit(&decoded.tenant, context.config.retry, context.info)
        .await
        .map_err(unsent)?;
    let payload = identity::wrap(&decoded, meta.lane.as_deref(), context.invocation)
        .map_err(|r| unsent(Verdict::Reject(r)))?;
    Ok(Ready {
        tenant: decoded.tenant,
        payload,
        correlation_id: decoded.envelope.correlation_id,
        trace_header: decoded.trace_header,
        envelope_id: decoded.envelope.id,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use serde_json::value::RawValue;

    use super::*;
    use crate::backend::{Answer, InvokeFailure, InvokeRequest};
    use crate::config::Config;
    use crate::invocation::InvocationInfo;
    use crate::record::DecodeResult;

    /// Accepts every Invoke and remembers the tenants.
    #[derive(Default)]
    struct Accepting(Mutex<Vec<String>>);

    impl Backend for Accepting {
        async fn invoke(&self, request: InvokeRequest<'_>) -> Result<Answer, InvokeFailure> {
            self.0.lock().unwrap().push(request.tenant.to_string());
            Ok(Answer::Queued)
        }
        fn has_quarantine(&self) -> bool {
            false
        }
        async fn quarantine(
            &self,
            _: crate::backend::QuarantineMessage<'_>,
        ) -> Result<(), crate::backend::WriteFailure> {
            Err(crate::backend::WriteFailure::permanent("none"))
        }
    }

    fn panicking(_: &RawValue, id: &str, _: &Config, _: &InvocationInfo) -> DecodeResult {
        panic!("decoding {id} panicked on purpose")
    }

    /// A panic while one deferred record is decoded fails that record alone, in both modes.
    #[tokio::test]
    async fn a_panic_while_decoding_fails_that_record_only() {
        for delivery in ["record", "tenant-batch"] {
            let env = HashMap::from([
                ("ROUTER_BACKEND_FUNCTION", "backend"),
                ("ROUTER_VALIDATION", "trusted"),
                ("ROUTER_DELIVERY", delivery),
            ]);
            let config = Config::from_lookup(|name| env.get(name).map(|v| v.to_string())).unwrap();
            let record = |id: &str, tenant: &str| {
                serde_json::json!({"messageId": id, "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
                    "body": serde_json::json!({"tenantId": tenant}).to_string()})
            };
            let event = serde_json::json!({"Records": [
                record("m1", "acme"), record("m2", "acme"), record("m3", "globex"),
            ]})
            .to_string();
            let info = InvocationInfo::with_budget(Duration::from_secs(5), Duration::ZERO);
            let mut batch = crate::source::read(&event, &config, &info)
                .unwrap()
                .unwrap();
            let Pending::Deferred { raw, .. } = batch.records[1].decoded else {
                panic!("SQS records are decoded when routed")
            };
            batch.records[1].decoded = Pending::Deferred {
                raw,
                decode: panicking,
            };
            let backend = Accepting::default();
            let identity = Identity {
                verifier: None,
                trusted_tenants: None,
                registry: None,
            };
            let stats = BatchStats::default();
            let context = RouteContext {
                backend: &backend,
                identity: &identity,
                config: &config,
                info: &info,
                source: batch.source,
                ordering: batch.ordering,
                invocation: crate::config::InvocationType::Event,
                stats: &stats,
            };
            let (_, outcomes) = route(batch.records, &context).await;
            assert_eq!(outcomes[0], Outcome::Invoked { attempts: 1 }, "{delivery}");
            assert_eq!(outcomes[1].reason(), Some("internal-error"), "{delivery}");
            assert!(outcomes[1].is_reported(), "{delivery}");
            assert_eq!(outcomes[2], Outcome::Invoked { attempts: 1 }, "{delivery}");
            let mut tenants = backend.0.into_inner().unwrap();
            tenants.sort();
            assert_eq!(tenants, ["acme", "globex"], "{delivery}");
        }
    }
}
