//! Property-based tests of the batch core (proptest), for SQS standard, SQS FIFO, Kinesis and
//! DynamoDB Streams batches: arbitrary records (tenants, groups, partition keys, valid and invalid), arbitrary fault
//! schedules from the invoker (success, 429 with and without retry-after, 5xx, timeouts, 413, 400)
//! and arbitrary deadlines, in virtual time (a paused Tokio clock, so timeouts and backoff cost
//! nothing and results do not depend on the machine's load). For every case:
//!
//! - every record ends in exactly one outcome and is logged once with it;
//! - reported identifiers are non-empty, unique and belong to the batch; a stream reports only the
//!   lowest failed sequence number;
//! - FIFO: no record is invoked after an earlier failure of its group; streams: no record of a key
//!   is invoked after a failure of that key, and none at or above the lowest failure is started
//!   once it failed;
//! - invokes in flight never exceed `ROUTER_MAX_IN_FLIGHT`; the handler answers before the deadline;
//! - every invoke carries the tenant proven for its record, and only valid records are invoked;
//! - all of this in both delivery modes: with `tenant-batch`, a record sent in the same envelope
//!   batch as an earlier failed record of its lane failed with it, and no later chunk carries it;
//! - and in both invocation types: with `request-response` the invoker answers as the real tenant
//!   guard does (`shared::function`, one environment per tenant), with handler errors for a whole
//!   Invoke or for its first record, and then, at the backend, a FIFO group's or stream key's
//!   Invokes never overlap in time (a timed-out one counts as never ending), its records are
//!   processed in batch order, and no record is processed twice.
//!
//! `PROPTEST_CASES` sets the number of cases per source (default 64 here; see
//! docs/reliability.md for the long runs). One `#[test]` only: the log-counting subscriber is
//! per thread, and no other test may share the binary's callsites concurrently.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cross_crate_tests::{T0_MS, TestKey, claims, into_fifo, kinesis_record, sign, sqs_record};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use router::InvocationInfo;
use router::{Backend, InvokeFailure, InvokeRequest, Outcome, Router};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;

/// What the invoker answers to one call.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Accept,
    Throttle {
        retry_after_ms: Option<u64>,
    },
    ServerError,
    Hang,
    TooLarge,
    BadRequest,
    /// `request-response` only (`event`: accepted): the function fails (`Handler.Error`).
    FunctionError,
    /// `request-response` only (`event`: accepted): the handler fails the Invoke's first record.
    FirstRecordFails,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        6 => Just(Answer::Accept),
        1 => proptest::option::of(0u64..3000).prop_map(|retry_after_ms| Answer::Throttle { retry_after_ms }),
        1 => Just(Answer::ServerError),
        1 => Just(Answer::Hang),
        1 => Just(Answer::TooLarge),
        1 => Just(Answer::BadRequest),
        1 => Just(Answer::FunctionError),
        2 => Just(Answer::FirstRecordFails),
    ]
}

/// An invoker that answers from a schedule and records every call.
#[derive(Default)]
struct Scripted {
    schedule: Mutex<std::collections::VecDeque<Answer>>,
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    clock: AtomicUsize,
    /// `request-response`: one tenant guard (execution environment) per tenant.
    environments: Mutex<HashMap<String, Arc<shared::function::EnvironmentGuard>>>,
}

#[derive(Debug, Clone)]
struct Call {
    tenant: String,
    envelope_tenant: String,
    record: String,
    /// The Invoke attempt (records carried together share it).
    started: usize,
    /// Position in a tenant batch (0 for a single envelope).
    position: usize,
    /// The lane (FIFO group, stream key) of the record.
    lane: String,
    accepted: bool,
    /// When the Invoke ended with an answer (`None`: it was cut off, and may still be running).
    ended: Option<usize>,
}

impl Backend for Scripted {
    async fn invoke(&self, request: InvokeRequest<'_>) -> Result<router::Answer, InvokeFailure> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        // A timed-out call is dropped by the router (as the SDK's request would be): count it
        // out whichever way it ends.
        struct Leaving<'a>(&'a AtomicUsize);
        impl Drop for Leaving<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let _leaving = Leaving(&self.in_flight);
        let started = self.clock.fetch_add(1, Ordering::SeqCst);
        assert!(request.payload.len() <= shared::ASYNC_PAYLOAD_LIMIT);
        let payload: Value = serde_json::from_slice(request.payload).expect("an envelope");
        // A tenant batch carries several envelopes; every one is recorded as a call.
        let envelopes = match payload.get("records") {
            Some(Value::Array(records)) => {
                assert_eq!(payload["tenantId"], request.tenant.as_str());
                records.clone()
            }
            _ => vec![payload],
        };
        // Recorded before answering: a call that hangs is cut off by the router's timeout.
        let first = {
            let mut calls = self.calls.lock().unwrap();
            let first = calls.len();
            for (position, envelope) in envelopes.iter().enumerate() {
                calls.push(Call {
                    tenant: request.tenant.to_string(),
                    envelope_tenant: envelope["tenantId"].as_str().unwrap_or_default().to_owned(),
                    record: envelope["payload"]["record"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    started,
                    position,
                    lane: envelope["orderingKey"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    accepted: false,
                    ended: None,
                });
            }
            first
        };
        let answer = self
            .schedule
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Accept);
        let sync = request.invocation_type == router::config::InvocationType::RequestResponse;
        let mut processed = vec![true; envelopes.len()];
        let result = match answer {
            Answer::Accept | Answer::FunctionError | Answer::FirstRecordFails if sync => {
                let guard = self
                    .environments
                    .lock()
                    .unwrap()
                    .entry(request.tenant.to_string())
                    .or_default()
                    .clone();
                let first = envelopes[0]["id"].as_str().unwrap().to_owned();
                let text = std::str::from_utf8(request.payload).unwrap();
                let result = guard
                    .invoke(
                        Some(request.tenant.as_str()),
                        "request",
                        text,
                        |_, envelope| {
                            let fail = match answer {
                                Answer::FunctionError => true,
                                Answer::FirstRecordFails => envelope.id == first,
                                _ => false,
                            };
                            async move {
                                if fail {
                                    Err("injected handler error")
                                } else {
                                    Ok(json!({}))
                                }
                            }
                        },
                    )
                    .await;
                match result {
                    Ok(value) => {
                        if let Some(records) = value.get("records").and_then(Value::as_array) {
                            for (done, record) in processed.iter_mut().zip(records) {
                                *done = record["status"] == "processed";
                            }
                        }
                        Ok(router::Answer::Returned {
                            function_error: None,
                            payload: value.to_string().into_bytes(),
                        })
                    }
                    Err(error) => {
                        processed.fill(false);
                        Ok(router::Answer::Returned {
                            function_error: Some("Unhandled".into()),
                            payload: json!({"errorType": error.error_type(),
                                "errorMessage": error.to_string()})
                            .to_string()
                            .into_bytes(),
                        })
                    }
                }
            }
            Answer::Accept | Answer::FunctionError | Answer::FirstRecordFails => {
                Ok(router::Answer::Queued)
            }
            Answer::Throttle { retry_after_ms } => Err(InvokeFailure::from_status(
                429,
                "TooManyRequestsException",
                "Rate exceeded",
                retry_after_ms.map(Duration::from_millis),
            )),
            Answer::ServerError => Err(InvokeFailure::from_status(
                500,
                "ServiceException",
                "",
                None,
            )),
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(router::Answer::Queued)
            }
            Answer::TooLarge => Err(InvokeFailure::from_status(
                413,
                "RequestTooLargeException",
                "",
                None,
            )),
            Answer::BadRequest => Err(InvokeFailure::from_status(
                400,
                "InvalidRequestContentException",
                "",
                None,
            )),
        };
        let ended = self.clock.fetch_add(1, Ordering::SeqCst);
        let mut calls = self.calls.lock().unwrap();
        for (call, done) in calls[first..first + envelopes.len()]
            .iter_mut()
            .zip(processed)
        {
            call.accepted = result.is_ok() && done;
            call.ended = Some(ended);
        }
        result
    }

    fn has_quarantine(&self) -> bool {
        false
    }

    async fn quarantine(
        &self,
        _message: router::QuarantineMessage<'_>,
    ) -> Result<(), router::WriteFailure> {
        Err(router::WriteFailure::permanent("none"))
    }
}

/// One generated record: which tenant, which lane, and whether (and how) it is broken.
#[derive(Debug, Clone)]
struct Spec {
    tenant: usize,
    lane: usize,
    defect: Option<Defect>,
}

#[derive(Debug, Clone, Copy)]
enum Defect {
    NotJson,
    TokenOfAnotherTenant,
    ForbiddenTenant,
}

fn spec(tenants: usize, lanes: usize) -> impl Strategy<Value = Spec> {
    (
        0..tenants,
        0..lanes,
        prop_oneof![
            8 => Just(None),
            1 => Just(Some(Defect::NotJson)),
            1 => Just(Some(Defect::TokenOfAnotherTenant)),
            1 => Just(Some(Defect::ForbiddenTenant)),
        ],
    )
        .prop_map(|(tenant, lane, defect)| Spec {
            tenant,
            lane,
            defect,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standard,
    Fifo,
    Kinesis,
    Dynamodb,
}

#[derive(Debug, Clone)]
struct Case {
    kind: Kind,
    records: Vec<Spec>,
    schedule: Vec<Answer>,
    max_in_flight: usize,
    max_attempts: u32,
    budget_ms: u64,
    /// `ROUTER_DELIVERY=tenant-batch` rather than `record`.
    tenant_batch: bool,
    /// `ROUTER_BATCH_MAX_BYTES`: small, so that chunks split often (a record is ~700 bytes).
    batch_max_bytes: usize,
    /// `ROUTER_INVOCATION_TYPE=request-response` rather than `event`.
    sync: bool,
    /// `ROUTER_BATCH_HOLD_BYTES`: small, so that chunks are sent early to make room often.
    batch_hold_bytes: usize,
}

fn case(kind: Kind) -> impl Strategy<Value = Case> {
    (1usize..8, 1usize..6).prop_flat_map(move |(tenants, lanes)| {
        (
            proptest::collection::vec(spec(tenants, lanes), 0..120),
            proptest::collection::vec(answer(), 0..60),
            1usize..12,
            1u32..5,
            200u64..8000,
            any::<bool>(),
            300usize..5000,
            any::<bool>(),
            500usize..30_000,
        )
            .prop_map(
                move |(
                    records,
                    schedule,
                    max_in_flight,
                    max_attempts,
                    budget_ms,
                    tenant_batch,
                    batch_max_bytes,
                    sync,
                    batch_hold_bytes,
                )| Case {
                    kind,
                    records,
                    schedule,
                    max_in_flight,
                    max_attempts,
                    budget_ms,
                    tenant_batch,
                    batch_max_bytes,
                    sync,
                    batch_hold_bytes,
                },
            )
    })
}

fn tenant_name(i: usize) -> String {
    format!("tenant-{i}")
}

/// One token per tenant, signed once.
fn token(tenant: &str) -> String {
    static TOKENS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    TOKENS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry(tenant.to_owned())
        .or_insert_with(|| sign(TestKey::Es256, &claims(tenant)))
        .clone()
}

/// The record's body (or Kinesis data) and its id.
fn body_of(index: usize, spec: &Spec) -> String {
    let tenant = tenant_name(spec.tenant);
    match spec.defect {
        Some(Defect::NotJson) => "{not json".into(),
        Some(Defect::TokenOfAnotherTenant) => json!({
            "tenantId": tenant, "tenantToken": token(&tenant_name(spec.tenant + 1)), "record": index.to_string()
        })
        .to_string(),
        Some(Defect::ForbiddenTenant) => json!({
            "tenantId": format!("{tenant}#x"), "tenantToken": token(&tenant), "record": index.to_string()
        })
        .to_string(),
        None => json!({"tenantId": tenant, "tenantToken": token(&tenant), "record": index.to_string()})
            .to_string(),
    }
}

fn event(case: &Case) -> (String, Vec<String>) {
    let mut ids = Vec::new();
    let records: Vec<Value> = case
        .records
        .iter()
        .enumerate()
        .map(|(i, spec)| match case.kind {
            Kind::Standard => {
                ids.push(format!("m-{i}"));
                sqs_record(&format!("m-{i}"), &body_of(i, spec), T0_MS)
            }
            Kind::Fifo => {
                ids.push(format!("m-{i}"));
                into_fifo(
                    sqs_record(&format!("m-{i}"), &body_of(i, spec), T0_MS),
                    &format!("group-{}", spec.lane),
                    i as u64,
                )
            }
            Kind::Dynamodb => {
                let seq = format!("{:025}", 1_405_400_000_000_002_063_282_832u128 + i as u128);
                ids.push(seq.clone());
                // The image holds the body's fields as attribute values; a body that is not JSON
                // becomes an image without a tenant.
                let body: Value = serde_json::from_str(&body_of(i, spec))
                    .unwrap_or_else(|_| json!({"record": i.to_string()}));
                let keys =
                    cross_crate_tests::item_values(&json!({"pk": format!("key-{}", spec.lane)}));
                let mut image = cross_crate_tests::item_values(&body);
                image["pk"] = json!({"S": format!("key-{}", spec.lane)});
                cross_crate_tests::dynamodb_record(
                    &seq,
                    "INSERT",
                    keys,
                    Some(image),
                    None,
                    "NEW_AND_OLD_IMAGES",
                )
            }
            Kind::Kinesis => {
                // Increasing numbers that grow a digit every ten records, so that text order
                // and numeric order differ.
                let tail = (i + 1).to_string();
                let digits = 21 + i / 10;
                let seq = format!("1{}{tail}", "0".repeat(digits - 1 - tail.len()));
                ids.push(seq.clone());
                kinesis_record(
                    &seq,
                    &format!("key-{}", spec.lane),
                    body_of(i, spec).as_bytes(),
                )
            }
        })
        .collect();
    (json!({"Records": records}).to_string(), ids)
}

/// Counts the router's "record …" log lines per record id.
#[derive(Clone, Default)]
struct LogCounter(Arc<Mutex<BTreeMap<String, usize>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for LogCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Fields(Option<String>, Option<String>);
        impl tracing::field::Visit for Fields {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "message" => self.0 = Some(value.to_owned()),
                    "record_id" => self.1 = Some(value.to_owned()),
                    _ => {}
                }
            }
            fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
        }
        // The router's lines only, not those of the tenant guard answering in-process.
        if !event.metadata().target().starts_with("router") {
            return;
        }
        let mut fields = Fields(None, None);
        event.record(&mut fields);
        if let Fields(Some(message), Some(id)) = fields
            && message.starts_with("record ")
        {
            *self.0.lock().unwrap().entry(id).or_default() += 1;
        }
    }
}

fn compare(a: &str, b: &str) -> std::cmp::Ordering {
    router::record::compare_sequence_numbers(a, b)
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let backend = Scripted::default();
    backend
        .schedule
        .lock()
        .unwrap()
        .extend(case.schedule.iter().copied());
    let env: HashMap<String, String> = cross_crate_tests::router_env()
        .into_iter()
        .chain([
            (
                "ROUTER_MAX_IN_FLIGHT".into(),
                case.max_in_flight.to_string(),
            ),
            (
                "ROUTER_RETRY_MAX_ATTEMPTS".into(),
                case.max_attempts.to_string(),
            ),
            ("ROUTER_RETRY_BASE_DELAY_MS".into(), "20".into()),
            ("ROUTER_RETRY_MAX_DELAY_MS".into(), "400".into()),
            ("ROUTER_INVOKE_TIMEOUT_MS".into(), "1000".into()),
            ("ROUTER_DEADLINE_MARGIN_MS".into(), "100".into()),
            (
                "ROUTER_DELIVERY".into(),
                if case.tenant_batch {
                    "tenant-batch"
                } else {
                    "record"
                }
                .into(),
            ),
            (
                "ROUTER_BATCH_MAX_BYTES".into(),
                case.batch_max_bytes.to_string(),
            ),
            (
                "ROUTER_INVOCATION_TYPE".into(),
                if case.sync {
                    "request-response"
                } else {
                    "event"
                }
                .into(),
            ),
            (
                "ROUTER_BATCH_HOLD_BYTES".into(),
                case.batch_hold_bytes.to_string(),
            ),
        ])
        .collect();
    let config = router::Config::from_lookup(|n| env.get(n).cloned()).unwrap();
    let router = Router::new(config, backend).unwrap();
    let (event, ids) = event(&case);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (report, elapsed) = runtime.block_on(async {
        let info = InvocationInfo::with_budget(
            Duration::from_millis(case.budget_ms),
            Duration::from_millis(100),
        );
        let started = tokio::time::Instant::now();
        let report = router.route_event(&event, &info).await.expect("a batch");
        (report, started.elapsed())
    });
    let backend = router.backend();
    let calls = backend.calls.lock().unwrap().clone();

    // One outcome per record, in order.
    prop_assert_eq!(report.outcomes.len(), case.records.len());
    prop_assert_eq!(&report.ids, &ids);
    // Answered before the deadline.
    prop_assert!(
        elapsed <= Duration::from_millis(case.budget_ms),
        "took {elapsed:?}"
    );
    // The in-flight bound.
    prop_assert!(backend.max_in_flight.load(Ordering::SeqCst) <= case.max_in_flight);

    // Invokes carry the proven tenant, and only valid records are invoked.
    for call in &calls {
        prop_assert_eq!(&call.tenant, &call.envelope_tenant);
        let index: usize = call.record.parse().unwrap();
        let spec = &case.records[index];
        prop_assert!(
            spec.defect.is_none(),
            "record {index} was invalid but invoked"
        );
        prop_assert_eq!(&call.tenant, &tenant_name(spec.tenant));
    }
    // Outcome consistent with the calls.
    let mut calls_of: HashMap<usize, Vec<&Call>> = HashMap::new();
    for call in &calls {
        calls_of
            .entry(call.record.parse().unwrap())
            .or_default()
            .push(call);
    }
    for (index, outcome) in report.outcomes.iter().enumerate() {
        let accepted = calls_of
            .get(&index)
            .is_some_and(|c| c.iter().any(|c| c.accepted));
        prop_assert_eq!(
            matches!(outcome, Outcome::Invoked { .. }),
            accepted,
            "record {}: {:?}",
            index,
            outcome
        );
        if case.records[index].defect.is_some() {
            // Rejected, unless it was never started (deadline, or an earlier failure of its lane).
            prop_assert!(
                matches!(outcome, Outcome::Rejected { .. })
                    || matches!(outcome.reason(), Some("deadline" | "earlier-record-failed")),
                "record {}: {:?}",
                index,
                outcome
            );
        }
    }

    // Reported identifiers.
    let reported: Vec<String> = report.response["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_owned())
        .collect();
    let mut unique = HashSet::new();
    for id in &reported {
        prop_assert!(!id.is_empty());
        prop_assert!(unique.insert(id.clone()), "{id} reported twice");
        prop_assert!(ids.contains(id), "{id} is not in the batch");
    }
    let failed: Vec<&String> = ids
        .iter()
        .zip(&report.outcomes)
        .filter(|(_, o)| o.is_reported())
        .map(|(id, _)| id)
        .collect();
    match case.kind {
        Kind::Standard | Kind::Fifo => {
            let expected: Vec<&String> = failed.clone();
            prop_assert_eq!(reported.iter().collect::<Vec<_>>(), expected);
        }
        Kind::Kinesis | Kind::Dynamodb => {
            let lowest = failed
                .iter()
                .min_by(|a, b| compare(a, b))
                .map(|s| (*s).clone());
            prop_assert_eq!(reported.first().cloned(), lowest.clone());
            prop_assert!(reported.len() <= 1);
            if let Some(lowest) = lowest {
                // Nothing at or above the lowest failure was started after the failure: every
                // invoked record above it must have started before the lowest failed record
                // finished; as a checkable consequence, a later record of the failed record's
                // key was only ever sent in the same Invoke as the failed record (a tenant
                // batch), never on its own.
                let failed_index = ids.iter().position(|id| *id == lowest).unwrap();
                let key = case.records[failed_index].lane;
                for (index, spec) in case.records.iter().enumerate().skip(failed_index + 1) {
                    if spec.lane == key {
                        prop_assert!(
                            carried_with(&calls_of, index, failed_index),
                            "record {index} of the failed key was invoked after the failure"
                        );
                    }
                }
            }
        }
    }
    if case.kind == Kind::Fifo {
        // No record is invoked after an earlier failure of its group: it is either never sent
        // (and reported as such) or was only sent in the same Invoke as the failed record, and
        // failed with it.
        let mut failed_groups: HashMap<usize, usize> = HashMap::new();
        for (index, (spec, outcome)) in case.records.iter().zip(&report.outcomes).enumerate() {
            if let Some(&failed) = failed_groups.get(&spec.lane) {
                prop_assert!(
                    carried_with(&calls_of, index, failed),
                    "record {index} invoked after its group failed"
                );
                prop_assert!(outcome.is_reported(), "record {index}: {outcome:?}");
                if !calls_of.contains_key(&index) {
                    prop_assert_eq!(outcome.reason(), Some("earlier-record-failed"));
                }
            }
            if outcome.is_reported() {
                failed_groups.entry(spec.lane).or_insert(index);
            }
        }
        // One at a time within a group, in order: each call of a record is either carried in
        // the same Invoke as the group's previous record, after it, or starts after every call
        // of that record.
        let mut previous_of: HashMap<usize, usize> = HashMap::new();
        for (index, spec) in case.records.iter().enumerate() {
            let Some(calls) = calls_of.get(&index) else {
                continue;
            };
            if let Some(&previous) = previous_of.get(&spec.lane) {
                let earlier = calls_of.get(&previous).cloned().unwrap_or_default();
                let last = earlier.iter().map(|c| c.started).max();
                for call in calls {
                    let together = earlier
                        .iter()
                        .find(|c| c.started == call.started)
                        .map(|c| c.position < call.position);
                    prop_assert!(
                        together.unwrap_or_else(|| last.is_none_or(|last| call.started > last)),
                        "group order broken at record {index}"
                    );
                }
            }
            previous_of.insert(spec.lane, index);
        }
    }
    if case.sync {
        check_order_at_the_backend(&case, &calls)?;
    }
    Ok(())
}

/// `request-response`: what the backend saw keeps each lane's order. Within one lane (FIFO group,
/// stream key): Invokes never overlap in time — each ended, with an answer, before the next one
/// carrying the lane started (one cut off by its timeout may still run, so nothing of its lane may
/// follow it) — its records were processed in batch order, and none twice.
fn check_order_at_the_backend(case: &Case, calls: &[Call]) -> Result<(), TestCaseError> {
    if case.kind == Kind::Standard {
        return Ok(());
    }
    let mut by_lane: BTreeMap<&str, Vec<&Call>> = BTreeMap::new();
    for call in calls {
        by_lane.entry(call.lane.as_str()).or_default().push(call);
    }
    for (lane, calls) in by_lane {
        let mut invokes: Vec<(usize, Option<usize>)> =
            calls.iter().map(|c| (c.started, c.ended)).collect();
        invokes.sort();
        invokes.dedup();
        for pair in invokes.windows(2) {
            let ((_, ended), (next, _)) = (pair[0], pair[1]);
            prop_assert!(
                ended.is_some_and(|ended| ended < next),
                "lane {lane}: an Invoke started at {next} while an earlier one ran ({:?})",
                pair[0]
            );
        }
        let mut processed: Vec<(usize, usize, usize)> = calls
            .iter()
            .filter(|c| c.accepted)
            .map(|c| (c.started, c.position, c.record.parse().unwrap()))
            .collect();
        processed.sort();
        let order: Vec<usize> = processed.iter().map(|(_, _, record)| *record).collect();
        prop_assert!(
            order.windows(2).all(|w| w[0] < w[1]),
            "lane {lane}: processed out of order or twice: {order:?}"
        );
    }
    Ok(())
}

/// Whether every call of record `later` was an Invoke that also carried record `failed`.
fn carried_with(calls_of: &HashMap<usize, Vec<&Call>>, later: usize, failed: usize) -> bool {
    let Some(calls) = calls_of.get(&later) else {
        return true;
    };
    let with = calls_of.get(&failed).cloned().unwrap_or_default();
    calls
        .iter()
        .all(|call| with.iter().any(|c| c.started == call.started))
}

#[test]
fn the_batch_core_keeps_its_promises_for_arbitrary_batches_faults_and_deadlines() {
    let counter = LogCounter::default();
    let subscriber = tracing_subscriber::registry().with(counter.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(64);
    let mut total_records = 0usize;
    for kind in [Kind::Standard, Kind::Fifo, Kind::Kinesis, Kind::Dynamodb] {
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&case(kind), |case| {
                counter.0.lock().unwrap().clear();
                let records = case.records.len();
                let ids = event(&case).1;
                check(case)?;
                // Logged once each, with its outcome.
                let logged = counter.0.lock().unwrap().clone();
                for id in &ids {
                    prop_assert_eq!(logged.get(id).copied(), Some(1), "record {} logged", id);
                }
                prop_assert_eq!(logged.values().sum::<usize>(), records);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        total_records += cases as usize;
    }
    eprintln!("property cases run: {} per source", cases);
    let _ = total_records;
}

#[test]
fn ten_thousand_records_in_one_batch() {
    // The largest batch an ESM delivers (SQS standard: 10,000), one case per delivery mode,
    // fully checked.
    for tenant_batch in [false, true] {
        let records = (0..10_000)
            .map(|i| Spec {
                tenant: i % 50,
                lane: 0,
                defect: if i % 97 == 0 {
                    Some(Defect::TokenOfAnotherTenant)
                } else {
                    None
                },
            })
            .collect();
        check(Case {
            kind: Kind::Standard,
            records,
            schedule: (0..300)
                .map(|i| match i % 3 {
                    0 => Answer::Throttle {
                        retry_after_ms: None,
                    },
                    1 => Answer::ServerError,
                    _ => Answer::Accept,
                })
                .collect(),
            max_in_flight: 64,
            max_attempts: 5,
            budget_ms: 60_000,
            tenant_batch,
            batch_max_bytes: 64 * 1024,
            sync: tenant_batch,
            batch_hold_bytes: 256 * 1024,
        })
        .unwrap();
    }
}
