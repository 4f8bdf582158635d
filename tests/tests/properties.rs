//! The model-based harness of the router: one oracle judging every combination of source, delivery
//! mode, invocation type, batch and fault, in virtual time (a paused Tokio clock, so timeouts and
//! backoff cost nothing and results do not depend on the machine's load).
//!
//! Drawn per case: the source — SQS standard, SQS FIFO, Kinesis, Kinesis with KPL aggregates,
//! DynamoDB Streams, an EventBridge event delivered directly, EventBridge events inside an SQS
//! queue — the delivery mode (`record`, `tenant-batch`), the invocation type (`event`,
//! `request-response`), the batch (tenants, lanes, bad records), the router's limits and
//! deadline, and what the model backend answers each Invoke: accepted (in `request-response`
//! the real tenant guard, `shared::function`, runs one environment per tenant and answers),
//! throttled, 5xx, hung, refused (413, 400), every record failing, the first or most records
//! failing, a failed-closed environment, a crash part-way, an answer that is not JSON, and
//! answers over Lambda's 6 MB response limit (large handler results, long non-ASCII errors). The
//! quarantine queue is a model too (standard or FIFO with SQS's deduplication, its own
//! `MaximumMessageSize`, a claim-check bucket, transient and permanent write failures), and a
//! case may route its batch a second time from another source whose records share the ids (two
//! streams' sequence numbers). The oracle, for every case:
//!
//! - every record ends in exactly one outcome and is logged once with it; reported identifiers are
//!   non-empty, unique and belong to the batch; SQS reports exactly its failed records, a stream
//!   only the lowest failed sequence number, a direct EventBridge event its one outcome;
//! - safety: every Invoke carries the tenant proven for its record, and only valid records are
//!   invoked; FIFO: no record is invoked after an earlier failure of its group; streams: no record
//!   of a key is invoked after a failure of that key, and none at or above the lowest failure is
//!   started once it failed; invokes in flight never exceed `ROUTER_MAX_IN_FLIGHT`; the handler
//!   answers before the deadline; with `request-response`, a FIFO group's or stream key's Invokes
//!   never overlap at the backend, its records are processed in batch order, none twice;
//! - nothing is quarantined that could pass: a valid record is rejected only when the Lambda
//!   service refused its own Invoke as unusable (413, 400);
//! - progress: a valid record none of whose Invokes met a fault ends invoked (unless the
//!   deadline, or an earlier failure of its lane, stopped it); with a working quarantine queue,
//!   every rejected record ends quarantined (unless the deadline cut the write, or it needs the
//!   bucket and there is none);
//! - the quarantine keeps what it says it keeps: every record reported quarantined is in the
//!   queue (inline, or in the bucket at the key its message names) as its own source sent it —
//!   not deduplicated away, not overwritten by another source's record of the same id.
//!
//! The holes of issue 23 §1 are rules of this oracle failing when their fix is reverted (the KPL
//! answer match: progress; the compact answer: progress with large results; the ARN in the
//! quarantine identities: quarantine fidelity; the queue's own message limit: quarantine
//! progress; a failed-closed environment: nothing quarantined that could pass). Two are pinned by
//! tests of their own: the router's answer budget by
//! `a_sync_tenant_batch_at_the_request_limit_gets_answers_that_fit` below (the drawn chunks are
//! too small for it to bind), `EC2UnexpectedException` by `router::backend::failure`'s unit test.
//!
//! `PROPTEST_CASES` sets the number of cases per source (default 48 here; see
//! docs/reliability.md for the long runs). One `#[test]` for the property run: the
//! log-counting subscriber is per thread, and no other test may share the binary's callsites
//! concurrently.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use cross_crate_tests::{
    QUEUE_ARN, STREAM_ARN, T0_MS, TABLE_STREAM_ARN, TestKey, into_fifo, kinesis_record, sign,
    sqs_record,
};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use router::InvocationInfo;
use router::source::kpl;
use router::{Backend, InvokeFailure, InvokeRequest, Outcome, Router};
use serde_json::{Value, json};
use tracing_subscriber::layer::SubscriberExt;

/// What the model Lambda service (and backend) answers to one Invoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Accept,
    Throttle {
        retry_after_ms: Option<u64>,
    },
    ServerError,
    Hang,
    TooLarge,
    BadRequest,
    /// `request-response` only (`event`: accepted): every record's handler fails.
    FunctionError,
    /// `request-response` only: the handler fails the Invoke's first record.
    FirstRecordFails,
    /// `request-response` only: the handler fails every record but each third (positions 0,
    /// 3, 6, …).
    MostRecordsFail,
    /// `request-response` only: the environment failed closed (it served another tenant): a
    /// fault of that environment, which the platform replaces.
    FailedClosed,
    /// `request-response` only: the first record ran, then the process died
    /// (`Runtime.ExitError`); the environment is replaced.
    Crash,
    /// `request-response` only: the backend ran every record, then answered something that is
    /// not JSON.
    InvalidJson,
}

impl Answer {
    /// Whether this answer, to an Invoke carrying a record at `position`, is a fault for that
    /// record (anything but its handler running and succeeding).
    fn faults(self, position: usize) -> bool {
        match self {
            Answer::Accept => false,
            Answer::FirstRecordFails => position == 0,
            Answer::MostRecordsFail => !position.is_multiple_of(3),
            _ => true,
        }
    }

    /// Whether the service refused the Invoke as unusable (the record may be quarantined).
    fn refuses(self) -> bool {
        matches!(self, Answer::TooLarge | Answer::BadRequest)
    }
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        8 => Just(Answer::Accept),
        1 => proptest::option::of(0u64..3000).prop_map(|retry_after_ms| Answer::Throttle { retry_after_ms }),
        1 => Just(Answer::ServerError),
        1 => Just(Answer::Hang),
        1 => Just(Answer::TooLarge),
        1 => Just(Answer::BadRequest),
        1 => Just(Answer::FunctionError),
        2 => Just(Answer::FirstRecordFails),
        1 => Just(Answer::MostRecordsFail),
        1 => Just(Answer::FailedClosed),
        1 => Just(Answer::Crash),
        1 => Just(Answer::InvalidJson),
    ]
}

/// What the model quarantine queue (or bucket) does with one write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Write {
    Ok,
    Transient,
    Permanent,
}

fn write() -> impl Strategy<Value = Write> {
    prop_oneof![6 => Just(Write::Ok), 1 => Just(Write::Transient), 1 => Just(Write::Permanent)]
}

/// The quarantine queue and bucket of a case.
#[derive(Debug, Clone)]
struct QuarantineCase {
    fifo: bool,
    bucket: bool,
    /// The queue's `MaximumMessageSize`, which the router learns through
    /// `Backend::quarantine_message_limit` (as `AwsBackend` answers it from the start-up read).
    max_message_bytes: usize,
    faults: Vec<Write>,
}

/// The model quarantine queue and bucket, shared by the runs of a case.
#[derive(Default)]
struct QuarantineModel {
    fifo: bool,
    bucket: bool,
    max_message_bytes: usize,
    faults: Mutex<std::collections::VecDeque<Write>>,
    /// Whether a fault was injected (the progress rule then does not apply).
    faulted: AtomicBool,
    /// Message bodies kept, by deduplication id (FIFO) or in order.
    messages: Mutex<Vec<Value>>,
    deduplication_ids: Mutex<HashSet<String>>,
    objects: Mutex<HashMap<String, Vec<u8>>>,
}

impl QuarantineModel {
    fn fault(&self) -> Result<(), router::WriteFailure> {
        let fault = self.faults.lock().unwrap().pop_front().unwrap_or(Write::Ok);
        if fault != Write::Ok {
            self.faulted.store(true, Ordering::SeqCst);
        }
        match fault {
            Write::Ok => Ok(()),
            Write::Transient => Err(router::WriteFailure::transient("500 InternalError")),
            Write::Permanent => Err(router::WriteFailure::permanent("403 AccessDenied")),
        }
    }
}

/// A model Lambda service in front of the backend, answering from a schedule and recording every
/// call.
#[derive(Default)]
struct Scripted {
    schedule: Mutex<std::collections::VecDeque<Answer>>,
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    clock: AtomicUsize,
    /// `request-response`: one tenant guard (execution environment) per tenant.
    environments: Mutex<HashMap<String, Arc<shared::function::EnvironmentGuard>>>,
    /// What the handler returns, and how it words a failure.
    handler: HandlerModel,
    quarantine: Option<Arc<QuarantineModel>>,
}

#[derive(Default, Clone, Copy)]
struct HandlerModel {
    /// Each successful record's result is about 1 MB.
    big_results: bool,
    /// Each failure's message is 300 characters outside the ASCII range.
    long_errors: bool,
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
    /// What the model answered the Invoke.
    answer: Answer,
    accepted: bool,
    /// When the Invoke ended with an answer (`None`: it was cut off, and may still be running).
    ended: Option<usize>,
}

impl Scripted {
    /// Runs the tenant guard of `tenant`'s environment over the payload with the handler the
    /// answer calls for.
    async fn run_guard(
        &self,
        tenant: &str,
        payload: &str,
        answer: Answer,
        envelopes: &[Value],
    ) -> Result<Value, shared::function::InvokeError> {
        let guard = self
            .environments
            .lock()
            .unwrap()
            .entry(tenant.to_owned())
            .or_default()
            .clone();
        let positions: HashMap<String, usize> = envelopes
            .iter()
            .enumerate()
            .map(|(i, e)| (e["id"].as_str().unwrap().to_owned(), i))
            .collect();
        let model = self.handler;
        guard
            .invoke(Some(tenant), "request", payload, |_, envelope| {
                let position = positions.get(&envelope.id).copied().unwrap_or(usize::MAX);
                let fail = answer.faults(position);
                async move {
                    if fail {
                        Err(if model.long_errors {
                            "😀".repeat(300)
                        } else {
                            "injected handler error".to_owned()
                        })
                    } else if model.big_results {
                        Ok(json!({ "big": "x".repeat(1_000_000) }))
                    } else {
                        Ok(json!({}))
                    }
                }
            })
            .await
    }

    /// The service's answer to a sync Invoke whose function returned `result`: the payload, or
    /// a function error, the way Lambda writes them (and `Function.ResponseSizeTooLarge` for an
    /// answer over 6 MB).
    fn sync_answer(result: Result<Value, (String, String)>) -> router::Answer {
        let error = |error_type: &str, message: &str| router::Answer::Returned {
            function_error: Some("Unhandled".into()),
            payload: json!({"errorType": error_type, "errorMessage": message})
                .to_string()
                .into_bytes(),
        };
        match result {
            Ok(value) => {
                let payload = value.to_string().into_bytes();
                if payload.len() > shared::SYNC_PAYLOAD_LIMIT {
                    error(
                        "Function.ResponseSizeTooLarge",
                        "Response payload size exceeded maximum allowed payload size",
                    )
                } else {
                    router::Answer::Returned {
                        function_error: None,
                        payload,
                    }
                }
            }
            Err((error_type, message)) => error(&error_type, &message),
        }
    }
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
        let sync = request.invocation_type == router::config::InvocationType::RequestResponse;
        let limit = if sync {
            shared::SYNC_PAYLOAD_LIMIT
        } else {
            shared::ASYNC_PAYLOAD_LIMIT
        };
        assert!(request.payload.len() <= limit);
        let payload: Value = serde_json::from_slice(request.payload).expect("an envelope");
        // A tenant batch carries several envelopes; every one is recorded as a call.
        let is_batch = payload.get("records").is_some();
        let envelopes = match payload.get("records") {
            Some(Value::Array(records)) => {
                assert_eq!(payload["tenantId"], request.tenant.as_str());
                records.clone()
            }
            _ => vec![payload],
        };
        let answer = self
            .schedule
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Accept);
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
                    answer,
                    accepted: false,
                    ended: None,
                });
            }
            first
        };
        let mut processed = vec![true; envelopes.len()];
        let text = std::str::from_utf8(request.payload).unwrap();
        let tenant = request.tenant.as_str();
        let result = match answer {
            _ if !sync
                && !matches!(
                    answer,
                    Answer::Throttle { .. }
                        | Answer::ServerError
                        | Answer::Hang
                        | Answer::TooLarge
                        | Answer::BadRequest
                ) =>
            {
                Ok(router::Answer::Queued)
            }
            Answer::Accept
            | Answer::FunctionError
            | Answer::FirstRecordFails
            | Answer::MostRecordsFail => {
                let result = self.run_guard(tenant, text, answer, &envelopes).await;
                let result = result
                    .inspect(|value| {
                        if let Some(records) = value.get("records").and_then(Value::as_array) {
                            for (done, record) in processed.iter_mut().zip(records) {
                                *done = record["status"] == "processed";
                            }
                        }
                    })
                    .map_err(|error| (error.error_type().to_owned(), error.to_string()));
                let answer = Self::sync_answer(result);
                if matches!(
                    &answer,
                    router::Answer::Returned {
                        function_error: Some(_),
                        ..
                    }
                ) {
                    processed.fill(false);
                }
                Ok(answer)
            }
            Answer::FailedClosed => {
                self.environments.lock().unwrap().remove(tenant);
                processed.fill(false);
                Ok(Self::sync_answer(Err((
                    shared::answer::TENANT_ENVIRONMENT_FAILED_CLOSED.into(),
                    "this execution environment was offered a second tenant".into(),
                ))))
            }
            Answer::Crash => {
                // The first record runs (its effect happens), then the process dies: its claim
                // dies with the environment's memory.
                let first = if is_batch {
                    json!({"version": 1, "tenantId": tenant, "records": [envelopes[0]]})
                } else {
                    envelopes[0].clone()
                };
                let _ = self
                    .run_guard(tenant, &first.to_string(), Answer::Accept, &envelopes[..1])
                    .await;
                self.environments.lock().unwrap().remove(tenant);
                processed.fill(false);
                Ok(Self::sync_answer(Err((
                    "Runtime.ExitError".into(),
                    "RequestId: r Error: Runtime exited with error: signal: killed".into(),
                ))))
            }
            Answer::InvalidJson => {
                let _ = self
                    .run_guard(tenant, text, Answer::Accept, &envelopes)
                    .await;
                // A success for one envelope says nothing more than that it was processed; a
                // batch's answer must say what became of each record.
                if is_batch {
                    processed.fill(false);
                }
                Ok(router::Answer::Returned {
                    function_error: None,
                    payload: b"{\"records\": [".to_vec(),
                })
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
        self.quarantine.is_some()
    }

    fn quarantine_bucket(&self) -> Option<&str> {
        self.quarantine
            .as_ref()
            .filter(|q| q.bucket)
            .map(|_| "quarantine-bucket")
    }

    fn quarantine_message_limit(&self) -> usize {
        self.quarantine
            .as_ref()
            .map_or(router::backend::SQS_MESSAGE_LIMIT, |q| q.max_message_bytes)
    }

    async fn quarantine(
        &self,
        message: router::QuarantineMessage<'_>,
    ) -> Result<(), router::WriteFailure> {
        let Some(model) = &self.quarantine else {
            return Err(router::WriteFailure::permanent("none"));
        };
        model.fault()?;
        // SQS counts the body and the attributes (name, type and value).
        let size = message.body.len() + "reason".len() + "String".len() + message.reason.len();
        if size > model.max_message_bytes {
            return Err(router::WriteFailure::permanent(format!(
                "400 InvalidParameterValue: the message is {size} bytes, over the queue's \
                 MaximumMessageSize of {}",
                model.max_message_bytes
            )));
        }
        match (model.fifo, message.fifo) {
            (true, Some((_, deduplication))) => {
                // SQS FIFO: a message with a deduplication id seen within five minutes is
                // accepted and dropped.
                if !model
                    .deduplication_ids
                    .lock()
                    .unwrap()
                    .insert(deduplication.to_owned())
                {
                    return Ok(());
                }
            }
            (true, None) => {
                return Err(router::WriteFailure::permanent(
                    "400 MissingParameter: MessageGroupId",
                ));
            }
            (false, _) => {}
        }
        model
            .messages
            .lock()
            .unwrap()
            .push(serde_json::from_str(message.body).expect("a JSON message"));
        Ok(())
    }

    async fn keep_record(&self, key: &str, record: &[u8]) -> Result<(), router::WriteFailure> {
        let Some(model) = self.quarantine.as_ref().filter(|q| q.bucket) else {
            return Err(router::WriteFailure::permanent("no bucket"));
        };
        model.fault()?;
        model
            .objects
            .lock()
            .unwrap()
            .insert(key.to_owned(), record.to_vec());
        Ok(())
    }
}

/// One generated record: which tenant, which lane, whether (and how) it is broken, and (KPL)
/// whether it joins the previous record's aggregate.
#[derive(Debug, Clone)]
struct Spec {
    tenant: usize,
    lane: usize,
    defect: Option<Defect>,
    joins_previous: bool,
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
        any::<bool>(),
    )
        .prop_map(|(tenant, lane, defect, joins_previous)| Spec {
            tenant,
            lane,
            defect,
            joins_previous,
        })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Standard,
    Fifo,
    Kinesis,
    /// Kinesis records, some of them KPL aggregates of several user records.
    KinesisKpl,
    Dynamodb,
    /// One EventBridge event, delivered to the router directly.
    EventBridge,
    /// EventBridge events delivered through an SQS standard queue (the body is the event).
    EventBridgeInSqs,
}

impl Kind {
    const ALL: [Kind; 7] = [
        Kind::Standard,
        Kind::Fifo,
        Kind::Kinesis,
        Kind::KinesisKpl,
        Kind::Dynamodb,
        Kind::EventBridge,
        Kind::EventBridgeInSqs,
    ];

    fn is_stream(self) -> bool {
        matches!(self, Kind::Kinesis | Kind::KinesisKpl | Kind::Dynamodb)
    }

    fn is_sqs(self) -> bool {
        matches!(self, Kind::Standard | Kind::Fifo | Kind::EventBridgeInSqs)
    }

    /// The source of the case's first run, and of its second (another queue, stream or table
    /// whose records share the ids).
    fn arns(self) -> [String; 2] {
        let base = match self {
            Kind::Standard | Kind::EventBridgeInSqs => QUEUE_ARN,
            Kind::Fifo => cross_crate_tests::FIFO_QUEUE_ARN,
            Kind::Kinesis | Kind::KinesisKpl => STREAM_ARN,
            Kind::Dynamodb => TABLE_STREAM_ARN,
            Kind::EventBridge => "saas.todo",
        };
        let other = match self {
            Kind::Fifo => base.replace("tenant-events.fifo", "other-events.fifo"),
            Kind::EventBridge => "saas.billing".to_owned(),
            _ => base.replace("tenant-events", "other-events"),
        };
        [base.to_owned(), other]
    }
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
    quarantine: Option<QuarantineCase>,
    /// Route the batch a second time, from the second source of [`Kind::arns`].
    two_sources: bool,
    handler: HandlerModelCase,
}

#[derive(Debug, Clone, Copy)]
struct HandlerModelCase {
    big_results: bool,
    long_errors: bool,
}

fn quarantine_case() -> impl Strategy<Value = Option<QuarantineCase>> {
    proptest::option::weighted(
        0.8,
        (
            any::<bool>(),
            any::<bool>(),
            prop_oneof![
                Just(1024usize),
                Just(2048),
                Just(router::backend::SQS_MESSAGE_LIMIT)
            ],
            prop_oneof![
                2 => Just(Vec::new()),
                1 => proptest::collection::vec(write(), 0..8),
            ],
        )
            .prop_map(|(fifo, bucket, max_message_bytes, faults)| QuarantineCase {
                fifo,
                bucket,
                max_message_bytes,
                faults,
            }),
    )
}

fn case(kind: Kind) -> impl Strategy<Value = Case> {
    (
        1usize..8,
        1usize..6,
        prop_oneof![9 => Just(false), 1 => Just(true)],
    )
        .prop_flat_map(move |(tenants, lanes, big_results)| {
            // Large results make a case heavy: seven records of one tenant in one chunk are
            // enough to pass 6 MB.
            let (tenants, records) = match (kind, big_results) {
                (Kind::EventBridge, _) => (tenants, 0..2),
                (_, true) => (1, 6..12),
                (_, false) => (tenants, 0..120),
            };
            (
                proptest::collection::vec(spec(tenants, lanes), records),
                proptest::collection::vec(answer(), 0..60),
                1usize..12,
                1u32..5,
                200u64..8000,
                any::<bool>(),
                300usize..5000,
                any::<bool>(),
                500usize..30_000,
                quarantine_case(),
                any::<bool>(),
                prop_oneof![4 => Just(false), 1 => Just(true)],
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
                        quarantine,
                        two_sources,
                        long_errors,
                    )| {
                        let mut records = records;
                        if kind == Kind::EventBridge {
                            // A direct EventBridge invocation carries one event.
                            records.truncate(1);
                        }
                        Case {
                            kind,
                            records,
                            schedule,
                            max_in_flight,
                            max_attempts,
                            budget_ms,
                            tenant_batch,
                            // Large results need chunks that hold several of them.
                            batch_max_bytes: if big_results {
                                batch_max_bytes * 20
                            } else {
                                batch_max_bytes
                            },
                            sync,
                            batch_hold_bytes,
                            quarantine,
                            two_sources,
                            handler: HandlerModelCase {
                                big_results,
                                long_errors,
                            },
                        }
                    },
                )
        })
}

fn tenant_name(i: usize) -> String {
    format!("tenant-{i}")
}

/// One token per tenant, signed once: valid at [`T0_MS`], when the sources' records arrived, or
/// (`now`) at the time of the run, for a direct EventBridge event, which is judged when it is
/// processed.
fn token(tenant: &str, now: bool) -> String {
    static TOKENS: OnceLock<Mutex<HashMap<(String, bool), String>>> = OnceLock::new();
    TOKENS
        .get_or_init(Default::default)
        .lock()
        .unwrap()
        .entry((tenant.to_owned(), now))
        .or_insert_with(|| {
            let at = if now {
                chrono::Utc::now().timestamp()
            } else {
                T0_MS / 1000
            };
            sign(TestKey::Es256, &cross_crate_tests::claims_at(tenant, at))
        })
        .clone()
}

/// The record's body (or Kinesis data, or EventBridge detail), its tokens valid at `now` or
/// at [`T0_MS`] ([`token`]).
fn body_at(index: usize, spec: &Spec, now: bool) -> String {
    let tenant = tenant_name(spec.tenant);
    match spec.defect {
        Some(Defect::NotJson) => "{not json".into(),
        Some(Defect::TokenOfAnotherTenant) => json!({
            "tenantId": tenant, "tenantToken": token(&tenant_name(spec.tenant + 1), now), "record": index.to_string()
        })
        .to_string(),
        Some(Defect::ForbiddenTenant) => json!({
            "tenantId": format!("{tenant}#x"), "tenantToken": token(&tenant, now), "record": index.to_string()
        })
        .to_string(),
        None => json!({"tenantId": tenant, "tenantToken": token(&tenant, now), "record": index.to_string()})
            .to_string(),
    }
}

/// The body of a record that arrived at [`T0_MS`].
fn body_of(index: usize, spec: &Spec) -> String {
    body_at(index, spec, false)
}

/// An EventBridge event of source `source` whose detail is the record's body (a body that is
/// not JSON becomes a detail that is not an object).
fn eventbridge_of(index: usize, spec: &Spec, source: &str, direct: bool) -> Value {
    let detail: Value = serde_json::from_str(&body_at(index, spec, direct))
        .unwrap_or_else(|_| json!("not an object"));
    let mut event = cross_crate_tests::eventbridge_event(&format!("evt-{index}"), detail);
    event["source"] = json!(source);
    event
}

/// A Kinesis sequence number for record `i`: increasing numbers that grow a digit every ten
/// records, so that text order and numeric order differ.
fn kinesis_sequence(i: usize) -> String {
    let tail = (i + 1).to_string();
    let digits = 21 + i / 10;
    format!("1{}{tail}", "0".repeat(digits - 1 - tail.len()))
}

/// The event of the case as source `arn` delivers it, and the reported id of each record (a
/// KPL user record reports its aggregate's sequence number).
fn event(case: &Case, arn: &str) -> (String, Vec<String>) {
    let mut ids = Vec::new();
    let with_arn = |mut record: Value| {
        record["eventSourceARN"] = json!(arn);
        record
    };
    if case.kind == Kind::EventBridge {
        let Some(spec) = case.records.first() else {
            // An empty "batch" of EventBridge is no event: send an empty SQS batch instead.
            return (json!({"Records": []}).to_string(), ids);
        };
        ids.push("evt-0".to_owned());
        return (eventbridge_of(0, spec, arn, true).to_string(), ids);
    }
    let mut records: Vec<Value> = Vec::new();
    // KPL: the aggregate being filled (its first record's index, its user records).
    let mut aggregate: Option<(usize, Vec<kpl::UserRecord>)> = None;
    let flush = |aggregate: &mut Option<(usize, Vec<kpl::UserRecord>)>,
                 records: &mut Vec<Value>| {
        if let Some((first, users)) = aggregate.take() {
            let data = kpl::aggregate(&users);
            let key = users[0].partition_key.clone();
            records.push(with_arn(kinesis_record(
                &kinesis_sequence(first),
                &key,
                &data,
            )));
        }
    };
    for (i, spec) in case.records.iter().enumerate() {
        match case.kind {
            Kind::Standard => {
                ids.push(format!("m-{i}"));
                records.push(with_arn(sqs_record(
                    &format!("m-{i}"),
                    &body_of(i, spec),
                    T0_MS,
                )));
            }
            Kind::EventBridgeInSqs => {
                ids.push(format!("m-{i}"));
                let body = eventbridge_of(i, spec, "saas.todo", false).to_string();
                records.push(with_arn(sqs_record(&format!("m-{i}"), &body, T0_MS)));
            }
            Kind::Fifo => {
                ids.push(format!("m-{i}"));
                records.push(with_arn(into_fifo(
                    sqs_record(&format!("m-{i}"), &body_of(i, spec), T0_MS),
                    &format!("group-{}", spec.lane),
                    i as u64,
                )));
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
                records.push(with_arn(cross_crate_tests::dynamodb_record(
                    &seq,
                    "INSERT",
                    keys,
                    Some(image),
                    None,
                    "NEW_AND_OLD_IMAGES",
                )));
            }
            Kind::Kinesis => {
                let seq = kinesis_sequence(i);
                ids.push(seq.clone());
                records.push(with_arn(kinesis_record(
                    &seq,
                    &format!("key-{}", spec.lane),
                    body_of(i, spec).as_bytes(),
                )));
            }
            Kind::KinesisKpl => {
                let user = kpl::UserRecord {
                    partition_key: format!("key-{}", spec.lane),
                    data: body_of(i, spec).into_bytes(),
                };
                match &mut aggregate {
                    Some((_, users)) if spec.joins_previous => users.push(user),
                    _ => {
                        flush(&mut aggregate, &mut records);
                        aggregate = Some((i, vec![user]));
                    }
                }
                let first = aggregate.as_ref().unwrap().0;
                ids.push(kinesis_sequence(first));
            }
            Kind::EventBridge => unreachable!("a direct event is built above"),
        }
    }
    flush(&mut aggregate, &mut records);
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

/// The router's settings for a case.
fn settings(case: &Case) -> HashMap<String, String> {
    let mut env: HashMap<String, String> = cross_crate_tests::router_env()
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
    if let Some(quarantine) = &case.quarantine {
        let queue = if quarantine.fifo {
            "http://127.0.0.1:1/000000000000/quarantine.fifo"
        } else {
            "http://127.0.0.1:1/000000000000/quarantine"
        };
        env.insert("ROUTER_QUARANTINE_QUEUE_URL".into(), queue.into());
        if quarantine.bucket {
            env.insert(
                "ROUTER_QUARANTINE_BUCKET".into(),
                "quarantine-bucket".into(),
            );
        }
    }
    env
}

/// What one run of a case saw.
struct Run {
    report: router::BatchReport,
    ids: Vec<String>,
    calls: Vec<Call>,
    arn: String,
}

/// Routes the case's batch as source `arn` delivers it, through a fresh model Lambda service
/// sharing `quarantine`.
fn route(
    case: &Case,
    arn: &str,
    quarantine: &Option<Arc<QuarantineModel>>,
) -> Result<Run, TestCaseError> {
    let backend = Scripted {
        handler: HandlerModel {
            big_results: case.handler.big_results,
            long_errors: case.handler.long_errors,
        },
        quarantine: quarantine.clone(),
        ..Scripted::default()
    };
    backend
        .schedule
        .lock()
        .unwrap()
        .extend(case.schedule.iter().copied());
    let env = settings(case);
    let config = router::Config::from_lookup(|n| env.get(n).cloned()).unwrap();
    let router = Router::new(config, backend).unwrap();
    let (event, ids) = event(case, arn);

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
    // Answered before the deadline.
    prop_assert!(
        elapsed <= Duration::from_millis(case.budget_ms),
        "took {elapsed:?}"
    );
    // The in-flight bound.
    prop_assert!(backend.max_in_flight.load(Ordering::SeqCst) <= case.max_in_flight);
    let calls = backend.calls.lock().unwrap().clone();
    Ok(Run {
        report,
        ids,
        calls,
        arn: arn.to_owned(),
    })
}

fn check(case: Case) -> Result<(), TestCaseError> {
    let quarantine = case.quarantine.as_ref().map(|q| {
        Arc::new(QuarantineModel {
            fifo: q.fifo,
            bucket: q.bucket,
            max_message_bytes: q.max_message_bytes,
            faults: Mutex::new(q.faults.iter().copied().collect()),
            ..QuarantineModel::default()
        })
    });
    let arns = case.kind.arns();
    let runs = if case.two_sources { 2 } else { 1 };
    let mut done = Vec::new();
    for arn in &arns[..runs] {
        let run = route(&case, arn, &quarantine)?;
        check_run(&case, &run)?;
        done.push(run);
    }
    if let Some(model) = &quarantine {
        check_quarantine(&case, model, &done)?;
    }
    Ok(())
}

/// The oracle over one run.
fn check_run(case: &Case, run: &Run) -> Result<(), TestCaseError> {
    let Run {
        report, ids, calls, ..
    } = run;
    // One outcome per record, in order.
    prop_assert_eq!(report.outcomes.len(), case.records.len());
    prop_assert_eq!(&report.ids, ids);

    // Invokes carry the proven tenant, and only valid records are invoked.
    for call in calls {
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
    for call in calls {
        calls_of
            .entry(call.record.parse().unwrap())
            .or_default()
            .push(call);
    }
    for (index, outcome) in report.outcomes.iter().enumerate() {
        let mine = calls_of.get(&index).cloned().unwrap_or_default();
        let accepted = mine.iter().any(|c| c.accepted);
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
            continue;
        }
        // Nothing is quarantined that could pass: a valid record is rejected only when the
        // service refused one of its Invokes as unusable.
        if matches!(outcome, Outcome::Rejected { .. }) {
            prop_assert!(
                mine.iter().any(|c| c.answer.refuses()),
                "valid record {index} rejected without a refused Invoke: {outcome:?}"
            );
        }
        // Progress: a valid record none of whose Invokes met a fault is invoked, unless the
        // deadline or an earlier failure of its lane stopped it.
        let faulted = mine.iter().any(|c| c.answer.faults(c.position));
        if !faulted && outcome.is_reported() {
            prop_assert!(
                matches!(outcome.reason(), Some("deadline" | "earlier-record-failed")),
                "valid record {index} met no fault, yet: {outcome:?} (calls {:?})",
                mine
            );
        }
    }

    // Reported identifiers.
    if case.kind == Kind::EventBridge {
        if let Some(outcome) = report.outcomes.first() {
            prop_assert_eq!(&report.response["outcome"], outcome.name());
        }
    } else {
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
        if case.kind.is_sqs() {
            prop_assert_eq!(reported.iter().collect::<Vec<_>>(), failed.clone());
        } else {
            let lowest = failed
                .iter()
                .min_by(|a, b| compare(a, b))
                .map(|s| (*s).clone());
            prop_assert_eq!(reported.first().cloned(), lowest.clone());
            prop_assert!(reported.len() <= 1);
            if let Some(lowest) = lowest {
                // Nothing at or above the lowest failure was started after the failure: as a
                // checkable consequence, a later record of the failed record's key was only
                // ever sent in the same Invoke as the failed record (a tenant batch), never on
                // its own.
                let failed_index = ids
                    .iter()
                    .zip(&report.outcomes)
                    .position(|(id, o)| *id == lowest && o.is_reported())
                    .unwrap();
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
        check_order_at_the_backend(case, calls)?;
    }
    Ok(())
}

/// The quarantine kept what the router says it kept, and, when nothing failed it, everything
/// rejected.
fn check_quarantine(
    case: &Case,
    model: &QuarantineModel,
    runs: &[Run],
) -> Result<(), TestCaseError> {
    let messages = model.messages.lock().unwrap().clone();
    let objects = model.objects.lock().unwrap().clone();
    // What a quarantined record was, as the queue or the bucket holds it.
    let kept: Vec<(String, Option<u64>, Value)> = messages
        .iter()
        .map(|message| {
            let record = match message.get("record") {
                Some(record) => record.clone(),
                None => {
                    let key = message["recordLocation"]["key"].as_str().unwrap();
                    let bytes = objects.get(key).expect("the bucket holds the object");
                    serde_json::from_slice(bytes).unwrap()
                }
            };
            (
                message["recordId"].as_str().unwrap().to_owned(),
                message["userRecord"].as_u64(),
                record,
            )
        })
        .collect();
    let source_of = |record: &Value| {
        record
            .get("eventSourceARN")
            .or_else(|| record.get("source"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    for run in runs {
        for (index, outcome) in run.report.outcomes.iter().enumerate() {
            let Outcome::Rejected {
                quarantined,
                detail,
                ..
            } = outcome
            else {
                continue;
            };
            if !quarantined {
                // Progress: with nothing failing the queue or the bucket, a rejected record
                // is quarantined unless the deadline cut the write.
                let no_bucket =
                    !model.bucket && detail.contains("ROUTER_QUARANTINE_BUCKET is not set");
                prop_assert!(
                    model.faulted.load(Ordering::SeqCst)
                        || detail.contains("deadline")
                        || no_bucket,
                    "record {index} of {} was rejected, not quarantined, with no fault: {detail}",
                    run.arn
                );
                continue;
            }
            let id = &run.ids[index];
            let user = (case.kind == Kind::KinesisKpl).then(|| {
                // Its index within its aggregate.
                run.ids[..index].iter().filter(|other| *other == id).count() as u64
            });
            let found = kept.iter().any(|(kept_id, kept_user, record)| {
                kept_id == id
                    && (user.is_none() || *kept_user == user)
                    && source_of(record) == run.arn
            });
            prop_assert!(
                found,
                "record {index} ({id}) of {} is reported quarantined but the quarantine does \
                 not hold it",
                run.arn
            );
        }
    }
    Ok(())
}

/// `request-response`: what the backend saw keeps each lane's order. Within one lane (FIFO group,
/// stream key): Invokes never overlap in time — each ended, with an answer, before the next one
/// carrying the lane started (one cut off by its timeout may still run, so nothing of its lane may
/// follow it) — its records were processed in batch order, and none twice.
fn check_order_at_the_backend(case: &Case, calls: &[Call]) -> Result<(), TestCaseError> {
    if !matches!(case.kind, Kind::Fifo) && !case.kind.is_stream() {
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
fn every_source_mode_type_and_fault_keeps_the_guarantees() {
    let counter = LogCounter::default();
    let subscriber = tracing_subscriber::registry().with(counter.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(48);
    for kind in Kind::ALL {
        let mut runner = TestRunner::new(ProptestConfig {
            cases,
            failure_persistence: None,
            ..ProptestConfig::default()
        });
        runner
            .run(&case(kind), |case| {
                counter.0.lock().unwrap().clear();
                let runs = if case.two_sources { 2 } else { 1 };
                let ids = event(&case, &case.kind.arns()[0]).1;
                check(case)?;
                // Logged once each (per run), with its outcome.
                let logged = counter.0.lock().unwrap().clone();
                let mut expected: BTreeMap<String, usize> = BTreeMap::new();
                for id in &ids {
                    *expected.entry(id.clone()).or_default() += runs;
                }
                prop_assert_eq!(logged, expected);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
    }
    eprintln!("property cases run: {cases} per source");
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
                joins_previous: false,
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
            quarantine: None,
            two_sources: false,
            handler: HandlerModelCase {
                big_results: false,
                long_errors: false,
            },
        })
        .unwrap();
    }
}

/// A sync tenant batch at the request limit: 10,000 records of one tenant in chunks of up to
/// 6 MB, two thirds of them failing with the longest non-ASCII error. The answers the guard
/// writes would pass Lambda's 6 MB response limit for a chunk that size, so the router must
/// size its chunks by the answer's bound: the records that succeed end invoked.
#[test]
fn a_sync_tenant_batch_at_the_request_limit_gets_answers_that_fit() {
    let records = (0..10_000)
        .map(|_| Spec {
            tenant: 0,
            lane: 0,
            defect: None,
            joins_previous: false,
        })
        .collect();
    check(Case {
        kind: Kind::Standard,
        records,
        schedule: vec![Answer::MostRecordsFail; 100],
        max_in_flight: 8,
        max_attempts: 1,
        budget_ms: 600_000,
        tenant_batch: true,
        batch_max_bytes: shared::SYNC_PAYLOAD_LIMIT,
        sync: true,
        batch_hold_bytes: 64 * 1024 * 1024,
        quarantine: None,
        two_sources: false,
        handler: HandlerModelCase {
            big_results: false,
            long_errors: true,
        },
    })
    .unwrap();
}
