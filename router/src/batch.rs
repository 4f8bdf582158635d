//! The batch core: records in, exactly one [`Outcome`] per record out.
//!
//! Ordering lives here and only here. Records are grouped into lanes (a FIFO message group, later a
//! stream partition key; a record without a lane is a lane of its own). Lanes run concurrently,
//! at most `max_in_flight` at a time, so no more Invokes than that are ever in flight; the records
//! of one lane run in order, one at a time, and once a record of a lane is reported as failed the
//! lane's later records are not started and are reported too.
//!
//! With `ROUTER_DELIVERY=tenant-batch`, [`route`] hands the batch to `tenant_batch`, which keeps
//! the same rules while packing each tenant's records into envelope batches.
//!
//! Each record's path is isolated: a panic in it fails that record alone. Nothing is started once
//! the deadline's margin is reached, and no retry waits past it.

use std::collections::HashMap;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;

use futures::{FutureExt, StreamExt};
use serde::Serialize;
use serde_json::value::RawValue;
use shared::token::TokenVerifier;
use shared::{ASYNC_PAYLOAD_LIMIT, Source, TenantId};

use crate::backend::{Backend, FailureClass, InvokeRequest};
use crate::config::{Config, Delivery, Validation};
use crate::handler::InvocationInfo;
use crate::outcome::{Outcome, Rejection};
use crate::record::{Decoded, Pending, Record, RecordMeta};
use crate::retry::Deadline;
use crate::source::compare_sequence_numbers;

/// What proves a record's tenant: the token verifier for `jwt` sources, the allow-list for
/// `trusted` ones. Which applies to a source is `Config::validation`.
pub struct Identity {
    /// Present when some source uses `jwt`.
    pub verifier: Option<TokenVerifier>,
    /// `ROUTER_TRUSTED_TENANTS`.
    pub trusted_tenants: Option<HashSet<TenantId>>,
}

/// The ordering rules of a batch's source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ordering {
    /// SQS standard: no order; every record runs on its own.
    Independent,
    /// SQS FIFO: records of a lane (message group) in order; a failure stops the rest of its lane.
    Lanes,
    /// Kinesis and DynamoDB Streams: as `Lanes` (partition key), and in addition, once a record
    /// has failed, no record with a sequence number at or above it is started, in any lane.
    Stream,
}

/// Counters of one batch's Invoke attempts, for its metrics.
#[derive(Debug, Default)]
pub struct BatchStats {
    attempts: std::sync::atomic::AtomicU64,
    retries: std::sync::atomic::AtomicU64,
    latencies_ms: std::sync::Mutex<Vec<f64>>,
}

impl BatchStats {
    fn attempt(&self, number: u32, took: std::time::Duration) {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if number > 1 {
            self.retries
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.latencies_ms
            .lock()
            .expect("stats lock")
            .push(took.as_secs_f64() * 1000.0);
    }

    /// Invoke attempts made.
    pub fn attempts(&self) -> u64 {
        self.attempts.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Attempts that were retries.
    pub fn retries(&self) -> u64 {
        self.retries.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The duration of every attempt, in milliseconds.
    pub fn latencies_ms(&self) -> Vec<f64> {
        self.latencies_ms.lock().expect("stats lock").clone()
    }
}

/// Everything routing a batch needs besides the records.
pub struct RouteContext<'a, B> {
    /// Where Invokes and quarantined records go.
    pub backend: &'a B,
    /// How tenants are proven.
    pub identity: &'a Identity,
    /// Router settings.
    pub config: &'a Config,
    /// When the invocation must answer.
    pub deadline: Deadline,
    /// The batch's source, for logs and the quarantine queue.
    pub source: Source,
    /// The source's ordering rules.
    pub ordering: Ordering,
    /// Processing time, in milliseconds since the epoch.
    pub now_ms: i64,
    /// The invocation (deferred records are decoded with it).
    pub info: &'a InvocationInfo,
    /// Where attempts are counted.
    pub stats: &'a BatchStats,
}

/// A lane: records that must run in order, with their index in the batch.
pub(crate) type Lane<'a> = Vec<(usize, Pending<'a>)>;

/// Splits records into their metadata (in batch order) and their lanes (in order of first record).
pub(crate) fn split_lanes<'a>(records: Vec<Record<'a>>) -> (Vec<RecordMeta<'a>>, Vec<Lane<'a>>) {
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

/// Routes every record and returns their metadata with one outcome each, in batch order.
pub async fn route<'a, B: Backend>(
    records: Vec<Record<'a>>,
    context: &RouteContext<'_, B>,
) -> (Vec<RecordMeta<'a>>, Vec<Outcome>) {
    if context.config.delivery == Delivery::TenantBatch {
        return crate::tenant_batch::route(records, context).await;
    }
    let (metas, lanes) = split_lanes(records);
    let metas_ref = &metas;
    let gate = StreamGate::default();
    let gate = &gate;
    let mut outcomes: Vec<Option<Outcome>> = vec![None; metas.len()];
    let mut finished = futures::stream::iter(lanes)
        .map(|lane| run_lane(lane, metas_ref, gate, context))
        .buffer_unordered(context.config.max_in_flight);
    while let Some(results) = finished.next().await {
        for (index, outcome) in results {
            outcomes[index] = Some(outcome);
        }
    }
    drop(finished);
    let outcomes = outcomes
        .into_iter()
        .map(|o| o.expect("every lane reports every record it holds"))
        .collect();
    (metas, outcomes)
}

/// The lowest sequence number that failed so far in a stream batch.
#[derive(Default)]
pub(crate) struct StreamGate {
    lowest_failed: std::sync::Mutex<Option<String>>,
}

impl StreamGate {
    /// The failed sequence number that forbids starting `id`, if any.
    pub(crate) fn blocker(&self, id: &str) -> Option<String> {
        let lowest = self.lowest_failed.lock().expect("gate lock");
        lowest
            .as_deref()
            .filter(|lowest| compare_sequence_numbers(id, lowest) != std::cmp::Ordering::Less)
            .map(str::to_owned)
    }

    pub(crate) fn failed(&self, id: &str) {
        let mut lowest = self.lowest_failed.lock().expect("gate lock");
        let lower = lowest
            .as_deref()
            .is_none_or(|current| compare_sequence_numbers(id, current).is_lt());
        if lower {
            *lowest = Some(id.to_owned());
        }
    }
}

async fn run_lane<B: Backend>(
    lane: Lane<'_>,
    metas: &[RecordMeta<'_>],
    gate: &StreamGate,
    context: &RouteContext<'_, B>,
) -> Vec<(usize, Outcome)> {
    let stream = context.ordering == Ordering::Stream;
    let mut results = Vec::with_capacity(lane.len());
    let mut blocked_by: Option<String> = None;
    for (index, pending) in lane {
        let meta = &metas[index];
        // Decoded now, not when the batch was read: only the records being routed are held.
        let decoded = pending.resolve(meta, context.config, context.info);
        let tenant = decoded.as_ref().ok().map(|d| d.tenant.clone());
        // A field of the outcome line rather than a span per record: a span costs more than
        // the line itself.
        let correlation_id = decoded
            .as_ref()
            .ok()
            .map(|d| d.envelope.correlation_id.clone());
        let stream_blocker = if stream { gate.blocker(&meta.id) } else { None };
        let outcome = match (&blocked_by, stream_blocker) {
            (Some(earlier), _) => Outcome::failed(
                "earlier-record-failed",
                format!("record {earlier} of the same ordered lane was not delivered"),
            ),
            (None, Some(lowest)) => Outcome::failed(
                "earlier-record-failed",
                format!("sequence number {lowest} failed earlier in this shard"),
            ),
            (None, None) => AssertUnwindSafe(route_record(meta, decoded, context))
                .catch_unwind()
                .await
                .unwrap_or_else(|_| {
                    Outcome::failed("internal-error", "routing the record panicked")
                }),
        };
        log_outcome(
            meta,
            tenant.as_ref(),
            &outcome,
            context.source,
            correlation_id.as_deref(),
        );
        if outcome.is_reported() {
            if stream {
                gate.failed(&meta.id);
            }
            if context.ordering != Ordering::Independent && blocked_by.is_none() {
                blocked_by = Some(meta.id.clone());
            }
        }
        results.push((index, outcome));
    }
    results
}

/// Logs a record's one outcome line, with its correlation id when the record could be decoded.
pub(crate) fn log_outcome(
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

async fn route_record<B: Backend>(
    meta: &RecordMeta<'_>,
    decoded: Result<Decoded, Rejection>,
    context: &RouteContext<'_, B>,
) -> Outcome {
    if !context.deadline.can_start() {
        return Outcome::failed(
            "deadline",
            "not started: the invocation deadline is too close",
        );
    }
    let decoded = match decoded {
        Ok(decoded) => decoded,
        Err(rejection) => return reject(meta, rejection, context).await,
    };
    match prove_and_wrap(&decoded, context).await {
        Ok(payload) => {
            deliver(
                meta,
                &decoded.tenant,
                &payload,
                decoded.trace_header.as_deref(),
                context,
            )
            .await
        }
        Err(Verdict::Reject(rejection)) => reject(meta, rejection, context).await,
        Err(Verdict::Fail(outcome)) => outcome,
    }
}

pub(crate) enum Verdict {
    Reject(Rejection),
    Fail(Outcome),
}

/// Proves the record's tenant and builds the Invoke payload.
pub(crate) async fn prove_and_wrap<B>(
    decoded: &Decoded,
    context: &RouteContext<'_, B>,
) -> Result<Vec<u8>, Verdict> {
    if let Some(max_age) = context.config.max_record_age {
        let age_ms = context.now_ms.saturating_sub(decoded.arrived_at_ms);
        if age_ms > max_age.as_millis() as i64 {
            return Err(Verdict::Reject(Rejection::new(
                "record-too-old",
                format!(
                    "the record is {age_ms} ms old, the limit is {} s",
                    max_age.as_secs()
                ),
            )));
        }
    }
    match context.config.validation.get(context.source) {
        Validation::Jwt => {
            let Some(verifier) = &context.identity.verifier else {
                unreachable!("the configuration requires JWT settings when a source uses jwt")
            };
            let Some(token) = decoded.token.as_deref() else {
                return Err(Verdict::Reject(Rejection::new(
                    "missing-token",
                    "the record carries no identity token",
                )));
            };
            // A JWKS refresh may be needed: it must not outlive the deadline either.
            let verdict = tokio::time::timeout(
                context.deadline.remaining(),
                verifier.verify(token, &decoded.tenant, decoded.arrived_at_ms),
            )
            .await;
            match verdict {
                Ok(Ok(())) => {}
                Ok(Err(error)) if error.is_transient() => {
                    return Err(Verdict::Fail(Outcome::failed(
                        error.reason(),
                        error.to_string(),
                    )));
                }
                Ok(Err(error)) => {
                    return Err(Verdict::Reject(Rejection::new(
                        error.reason(),
                        error.to_string(),
                    )));
                }
                Err(_) => {
                    return Err(Verdict::Fail(Outcome::failed(
                        "deadline",
                        "verifying the token (fetching the JWKS) outlived the deadline",
                    )));
                }
            }
        }
        Validation::Trusted => {
            if let Some(allowed) = &context.identity.trusted_tenants
                && !allowed.contains(&decoded.tenant)
            {
                return Err(Verdict::Reject(Rejection::new(
                    "tenant-not-allowed",
                    "the tenant is not in ROUTER_TRUSTED_TENANTS",
                )));
            }
        }
    }
    let payload = decoded.envelope.to_payload();
    if payload.len() > ASYNC_PAYLOAD_LIMIT {
        return Err(Verdict::Reject(Rejection::new(
            "envelope-too-large",
            format!(
                "the envelope is {} bytes, the async Invoke limit is {ASYNC_PAYLOAD_LIMIT}",
                payload.len()
            ),
        )));
    }
    Ok(payload)
}

/// Invokes for one record and turns the answer into its outcome (a refused Invoke rejects it).
async fn deliver<B: Backend>(
    meta: &RecordMeta<'_>,
    tenant: &TenantId,
    payload: &[u8],
    trace_header: Option<&str>,
    context: &RouteContext<'_, B>,
) -> Outcome {
    match send(&meta.id, tenant, payload, trace_header, context).await {
        Sent::Invoked { attempts } => Outcome::Invoked { attempts },
        Sent::Refused(rejection) => reject(meta, rejection, context).await,
        Sent::Failed(outcome) => outcome,
    }
}

/// How an Invoke ended, after its retries.
pub(crate) enum Sent {
    /// Accepted (202) after this many attempts.
    Invoked {
        /// Attempts it took.
        attempts: u32,
    },
    /// The service refused the request itself (400, 413, 415): retrying cannot help.
    Refused(Rejection),
    /// A transient or deployment failure outlived the retries or the deadline.
    Failed(Outcome),
}

/// Invokes with retries that honour the retry policy and never outlive the deadline. `label`
/// names what is sent (a record id, or the first record of a tenant batch) in debug logs.
pub(crate) async fn send<B: Backend>(
    label: &str,
    tenant: &TenantId,
    payload: &[u8],
    trace_header: Option<&str>,
    context: &RouteContext<'_, B>,
) -> Sent {
    let policy = context.config.retry;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let remaining = context.deadline.remaining();
        if remaining.is_zero() {
            return Sent::Failed(Outcome::failed(
                "deadline",
                "the deadline came before the Invoke succeeded",
            ));
        }
        let request = InvokeRequest {
            tenant,
            payload,
            trace_header,
        };
        let timeout = remaining.min(context.config.invoke_timeout);
        let started = std::time::Instant::now();
        let answer = tokio::time::timeout(timeout, context.backend.invoke(request)).await;
        context.stats.attempt(attempt, started.elapsed());
        let failure = match answer {
            Ok(Ok(())) => return Sent::Invoked { attempts: attempt },
            Ok(Err(failure)) => failure,
            Err(_) => crate::backend::InvokeFailure::transient(
                "timeout",
                format!("no answer within {} ms", timeout.as_millis()),
            ),
        };
        let detail = format!(
            "attempt {attempt}: {} {} {}",
            failure
                .status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            failure.code,
            failure.message
        );
        match failure.class {
            FailureClass::Rejected => {
                return Sent::Refused(Rejection::new(failure.reason(), detail));
            }
            FailureClass::NotRetried => {
                return Sent::Failed(Outcome::failed(failure.reason(), detail));
            }
            FailureClass::Retryable => {}
        }
        if attempt >= policy.max_attempts {
            return Sent::Failed(Outcome::failed(failure.reason(), detail));
        }
        let delay = policy.delay(attempt, failure.retry_after);
        if delay >= context.deadline.remaining() {
            return Sent::Failed(Outcome::failed(
                failure.reason(),
                format!("{detail}; no time left to retry before the deadline"),
            ));
        }
        tracing::debug!(
            message = "retrying Invoke",
            record_id = label,
            attempt = attempt,
            delay_ms = delay.as_millis() as u64,
            code = failure.code.as_str(),
        );
        tokio::time::sleep(delay).await;
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuarantineMessage<'a> {
    reason: &'a str,
    detail: &'a str,
    source: Source,
    record_id: &'a str,
    tenant_id: Option<&'a str>,
    record: &'a RawValue,
}

/// Quarantines a rejected record; without a queue, or if writing fails, it is reported instead.
pub(crate) async fn reject<B: Backend>(
    meta: &RecordMeta<'_>,
    rejection: Rejection,
    context: &RouteContext<'_, B>,
) -> Outcome {
    let Rejection { reason, detail } = rejection;
    if !context.backend.has_quarantine() {
        return Outcome::Rejected {
            reason,
            detail,
            quarantined: false,
        };
    }
    let body = serde_json::to_string(&QuarantineMessage {
        reason,
        detail: &detail,
        source: context.source,
        record_id: &meta.id,
        tenant_id: meta.claimed_tenant.get().map(String::as_str),
        record: meta.raw,
    })
    .expect("the quarantine message always serialises");
    let sent = tokio::time::timeout(
        context.deadline.remaining(),
        context.backend.quarantine(body, reason),
    )
    .await
    .unwrap_or_else(|_| Err("no answer before the invocation deadline".into()));
    match sent {
        Ok(()) => Outcome::Rejected {
            reason,
            detail,
            quarantined: true,
        },
        Err(error) => Outcome::Rejected {
            reason,
            detail: format!("{detail}; quarantine failed: {error}"),
            quarantined: false,
        },
    }
}
