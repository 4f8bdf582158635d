//! The conformance kit: `local-lambda conformance EXECUTABLE [--env KEY=VALUE]…` runs any
//! Runtime-API bootstrap, in any language, as a tenant-isolated function in the stand-in and
//! checks the tenant guard's contract (README, "Backend contract"; `schemas/v1`), one line per
//! check. It owns the whole run: the durable idempotency store every environment shares
//! ([`store`]: a table on the caller's DynamoDB API server or on moto's server started for the
//! run), the environments, the checks, and the judgement of every answer it received against the
//! schemas ([`schema`]). The checks:
//!
//! - no tenant id → refused;
//! - an envelope naming another tenant → refused (`Tenant.Mismatch`), and nothing of it
//!   processed (the same `idempotencyKey`, sent right, is new to the store);
//! - a batch with one record of another tenant → refused, and none of its records processed;
//! - a duplicate `idempotencyKey` → recognised (`duplicate: true`);
//! - a batch asking `answer: per-record` → one result per record, in order, each `processed`;
//! - an ordered batch stops a lane at its first failure (`lanes`: the same `orderingKey`;
//!   `stream`: everything after), the rest `skipped`;
//! - a second tenant offered to an environment → it fails closed: that tenant refused, and the
//!   first one too from then on (or the process gone);
//! - the same `idempotencyKey` under two tenants (two environments) → processed for both (a store
//!   keyed without the tenant answers the second a duplicate);
//! - a duplicate delivered to a second environment of the tenant → recognised (a store in the
//!   environment's memory runs it again);
//! - a duplicate's answer carries the first run's result (sent with the same key and another
//!   payload: a backend that runs the handler again and only labels it answers another result);
//! - a record that failed, sent again → it runs again, not a duplicate (a backend that remembers
//!   failures answers the old failure);
//! - an envelope or batch whose `version` is not 1, an envelope with an empty `id`, one with an
//!   empty `idempotencyKey`, alone or inside a batch → `Envelope.Invalid`, and nothing of the
//!   batch processed;
//! - the same key sent to two environments at once → processed by one, held off by the other
//!   (`duplicate`, or `Idempotency.InProgress`), never processed by both;
//! - a duplicate whose stored result cannot be read back (the kit writes the item itself, under
//!   the contract's record id `<function>#<tenant>#<idempotencyKey>`) → still `status: processed`;
//! - every batch answer is compact: per record only `id`, `status`, `error` (for `failed` and
//!   `skipped`, at most 256 characters) and `duplicate`, and its counts match its records;
//! - every answer received fits its schema in `schemas/v1`.
//!
//! A record the handler must fail is needed for the ordering checks and the failed-record check:
//! by default a payload that is a JSON string, which no to-do backend can enrich
//! (`--failing-payload` gives another). Each environment is a real process on its own Runtime API
//! (`environment`); the second tenant is offered through [`Invocation::offered_tenant`], a fault
//! the stand-in injects only here.

mod schema;
mod store;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use shared::answer;

use crate::environment::{Environment, EnvironmentSpec, Invocation, InvocationResult, OutputSink};
use schema::{Schemas, Shape};
use store::Store;

/// What the kit runs and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bootstrap under test.
    pub executable: std::path::PathBuf,
    /// Extra environment variables for it (after the kit's own, so they win).
    pub variables: Vec<(String, String)>,
    /// A payload the handler fails (a function error, or `failed` in a per-record answer).
    pub failing_payload: Value,
    /// Longest one invocation may run.
    pub timeout: Duration,
    /// Where the environments' output goes (`None`: discarded).
    pub environment_output: Option<std::path::PathBuf>,
    /// The DynamoDB API server that holds the kit's idempotency table (`http://host:port`);
    /// `None`: moto's server, started for the run and stopped after it.
    pub dynamodb_endpoint: Option<String>,
}

impl Options {
    /// The kit's defaults for `executable`.
    pub fn new(executable: impl Into<std::path::PathBuf>) -> Self {
        Self {
            executable: executable.into(),
            variables: Vec::new(),
            failing_payload: json!("conformance: a payload the handler must fail"),
            timeout: Duration::from_secs(30),
            environment_output: None,
            dynamodb_endpoint: None,
        }
    }
}

/// One check's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: &'static str,
    /// Whether the backend kept the contract.
    pub passed: bool,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let verdict = if self.passed { "ok  " } else { "FAIL" };
        write!(f, "{verdict} {}: {}", self.name, self.detail)
    }
}

const FUNCTION: &str = "conformance";
const ARN: &str = "arn:aws:sqs:us-east-1:000000000000:conformance";
const ACME: &str = "acme";
const GLOBEX: &str = "globex";

/// How many keys the kit sends to two environments at once (more than one: a store that checks
/// and then writes may win a race by luck).
const AT_ONCE_KEYS: usize = 3;

/// Runs every check; the backend conforms when all pass. An error (nothing judged) when the
/// store cannot be had or the executable cannot be started.
pub async fn run(options: &Options) -> anyhow::Result<Vec<Check>> {
    let store = Store::open(options.dynamodb_endpoint.as_deref()).await?;
    let checks = async { Kit::new(options, &store)?.run().await }.await;
    store.close().await;
    checks
}

struct Kit<'a> {
    options: &'a Options,
    store: &'a Store,
    spec: EnvironmentSpec,
    output: OutputSink,
    schemas: Schemas,
    /// Every answer (success or function error) received, with the shape it must fit.
    received: Mutex<Vec<(Shape, Value)>>,
}

/// What an invocation answered, read.
enum Answer {
    Ok(Value),
    /// A function error: its `errorType` and the whole error document.
    Error(String, Value),
    Gone(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // What the checks judge, not the whole answer: a line stays readable.
            Answer::Ok(value) => match (value.get("records"), value.get("status")) {
                (Some(Value::Array(records)), _) => {
                    let statuses: Vec<String> = records
                        .iter()
                        .map(|r| match (&r["status"], &r["duplicate"]) {
                            (Value::String(s), Value::Bool(true)) => format!("{s} (duplicate)"),
                            (Value::String(s), _) => s.clone(),
                            (other, _) => format!("status {other}"),
                        })
                        .collect();
                    write!(f, "answered per record: {}", statuses.join(", "))
                }
                (_, Some(status)) => {
                    write!(f, "answered status {status}")?;
                    if let Some(duplicate) = value.get("duplicate") {
                        write!(f, ", duplicate {duplicate}")?;
                    }
                    match value.get("result") {
                        Some(result) => write!(f, ", result {result}"),
                        None => write!(f, ", no result"),
                    }
                }
                _ => write!(f, "answered {value}"),
            },
            Answer::Error(error_type, _) => write!(f, "function error {error_type}"),
            Answer::Gone(what) => write!(f, "{what}"),
        }
    }
}

impl Answer {
    /// A record processed now: `status: processed`, not a duplicate.
    fn is_fresh(&self) -> bool {
        matches!(self, Answer::Ok(v) if v["status"] == "processed" && v.get("duplicate") != Some(&json!(true)))
    }

    /// A record recognised as processed before: `status: processed`, `duplicate: true`.
    fn is_duplicate(&self) -> bool {
        matches!(self, Answer::Ok(v) if v["status"] == "processed" && v.get("duplicate") == Some(&json!(true)))
    }

    /// A function error of type `error_type`.
    fn is_error(&self, error_type: &str) -> bool {
        matches!(self, Answer::Error(t, _) if t == error_type)
    }

    /// The handler's `result` in a success.
    fn result(&self) -> Option<&Value> {
        match self {
            Answer::Ok(value) => value.get("result"),
            _ => None,
        }
    }
}

impl<'a> Kit<'a> {
    fn new(options: &'a Options, store: &'a Store) -> anyhow::Result<Self> {
        let sink: Box<dyn std::io::Write + Send> = match &options.environment_output {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Box::new(std::io::sink()),
        };
        let mut variables = store.variables();
        variables.extend(options.variables.iter().cloned());
        Ok(Self {
            options,
            store,
            spec: EnvironmentSpec {
                function: FUNCTION.into(),
                executable: options.executable.clone(),
                variables,
                timeout: options.timeout,
                region: store::REGION.into(),
                memory_mb: crate::service::DEFAULT_MEMORY_MB,
                init_limit: crate::environment::INIT_LIMIT,
            },
            output: Arc::new(Mutex::new(sink)),
            schemas: Schemas::new()?,
            received: Mutex::new(Vec::new()),
        })
    }

    async fn run(&self) -> anyhow::Result<Vec<Check>> {
        let mut checks = Vec::new();
        let unpinned = self.start("conformance-no-tenant", None)?;
        checks.push(self.no_tenant(&unpinned).await);
        unpinned.stop();
        let acme = self.start("conformance-acme", Some(ACME))?;
        checks.extend(self.other_tenant(&acme).await);
        checks.extend(self.batch_with_other_tenant(&acme).await);
        checks.push(self.duplicate(&acme).await);
        checks.push(self.per_record(&acme).await);
        checks.push(self.lane_stops(&acme).await);
        checks.push(self.stream_stops(&acme).await);
        let pinned = self.start("conformance-pinned", Some(ACME))?;
        checks.push(self.fails_closed(&pinned).await);
        pinned.stop();
        let globex = self.start("conformance-globex", Some(GLOBEX))?;
        checks.push(self.two_tenants(&acme, &globex).await);
        globex.stop();
        let second = self.start("conformance-acme-2", Some(ACME))?;
        checks.push(self.second_environment(&acme, &second).await);
        checks.push(self.duplicate_result(&acme).await);
        checks.push(self.failure_runs_again(&acme).await);
        checks.push(
            self.invalid(
                &acme,
                "an envelope or batch of an unknown version is refused (Envelope.Invalid)",
                |e| e["version"] = json!(2),
                true,
            )
            .await,
        );
        checks.push(
            self.invalid(
                &acme,
                "an envelope with an empty id is refused (Envelope.Invalid)",
                |e| e["id"] = json!(""),
                false,
            )
            .await,
        );
        checks.push(
            self.invalid(
                &acme,
                "an envelope with an empty idempotencyKey is refused (Envelope.Invalid)",
                |e| e["idempotencyKey"] = json!(""),
                false,
            )
            .await,
        );
        checks.push(self.unreadable_result(&acme).await);
        checks.push(self.no_session(&acme).await?);
        acme.stop();
        second.stop();
        // Two environments of their own: a backend that breaks under concurrent claims (even by
        // crashing) fails this check alone.
        let (one, two) = (
            self.start("conformance-at-once-1", Some(ACME))?,
            self.start("conformance-at-once-2", Some(ACME))?,
        );
        checks.push(self.at_once(&one, &two).await);
        one.stop();
        two.stop();
        checks.push(self.compact());
        checks.push(self.fits_schemas());
        Ok(checks)
    }

    fn start(&self, id: &str, tenant: Option<&str>) -> anyhow::Result<Arc<Environment>> {
        self.start_with(id, tenant, &[])
    }

    /// [`Kit::start`] with `extra` variables on top of the kit's.
    fn start_with(
        &self,
        id: &str,
        tenant: Option<&str>,
        extra: &[(&str, &str)],
    ) -> anyhow::Result<Arc<Environment>> {
        let mut spec = self.spec.clone();
        spec.variables.extend(
            extra
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Environment::start(
            &spec,
            id.into(),
            tenant.map(str::to_owned),
            self.output.clone(),
        )
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", self.options.executable.display()))
    }

    /// Invokes `environment` with `payload` (offering `offer` as the tenant instead of its own),
    /// and keeps the answer for the schema and compactness checks.
    async fn invoke(
        &self,
        environment: &Environment,
        payload: &Value,
        offer: Option<&str>,
    ) -> Answer {
        let result = environment
            .invoke(Invocation {
                request_id: uuid::Uuid::new_v4().to_string(),
                payload: Bytes::from(payload.to_string()),
                trace_id: "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
                offered_tenant: offer.map(str::to_owned),
            })
            .await;
        let answer = match result {
            InvocationResult::Success(body) => match serde_json::from_slice(&body) {
                Ok(value) => Answer::Ok(value),
                Err(_) => Answer::Gone(format!(
                    "answered something that is not JSON: {:?}",
                    String::from_utf8_lossy(&body)
                )),
            },
            // The error document's `errorType` is what Lambda returns and the router reads; the
            // runtime's error-type header is often just `Unhandled`.
            error @ InvocationResult::FunctionError { .. } => {
                let document = error.error_document().unwrap_or_default();
                let error_type = match document["errorType"].as_str() {
                    Some(error_type) => error_type.to_owned(),
                    None => error.error_type().unwrap_or_default(),
                };
                Answer::Error(error_type, document)
            }
            InvocationResult::Crashed(why) => Answer::Gone(format!("crashed: {why}")),
            InvocationResult::TimedOut => Answer::Gone("timed out".into()),
            InvocationResult::InitTimedOut => Answer::Gone("its init phase timed out".into()),
        };
        let shape = match (&answer, payload.get("records")) {
            (Answer::Error(..), _) => Some(Shape::Error),
            (Answer::Ok(_), Some(_)) => Some(Shape::Batch),
            (Answer::Ok(_), None) => Some(Shape::Record),
            // Not the backend's answer: the platform's (a crash, a timeout).
            (Answer::Gone(_), _) => None,
        };
        if let (Some(shape), Answer::Ok(value) | Answer::Error(_, value)) = (shape, &answer) {
            self.received
                .lock()
                .expect("lock")
                .push((shape, value.clone()));
        }
        answer
    }

    async fn no_tenant(&self, environment: &Environment) -> Check {
        let envelope = envelope(ACME, &record_id("no-tenant"), item("a"), None);
        let answer = self.invoke(environment, &envelope, None).await;
        let passed = matches!(&answer, Answer::Error(t, _) if answer::is_guard_refusal(t));
        check("no tenant id is refused", passed, &answer)
    }

    async fn other_tenant(&self, environment: &Environment) -> Vec<Check> {
        let id = record_id("crossing");
        let foreign = envelope(GLOBEX, &id, item("x"), None);
        let answer = self.invoke(environment, &foreign, None).await;
        let first = check(
            "an envelope naming another tenant is refused (Tenant.Mismatch)",
            answer.is_error(answer::TENANT_MISMATCH),
            &answer,
        );
        // Had it been processed, the same key sent right would be a duplicate.
        let right = envelope(ACME, &id, item("x"), None);
        let answer = self.invoke(environment, &right, None).await;
        vec![
            first,
            check(
                "nothing of a refused envelope was processed",
                answer.is_fresh(),
                &answer,
            ),
        ]
    }

    async fn batch_with_other_tenant(&self, environment: &Environment) -> Vec<Check> {
        let (one, two, three) = (record_id("b1"), record_id("b2"), record_id("b3"));
        let mixed = batch(
            ACME,
            vec![
                envelope(ACME, &one, item("1"), None),
                envelope(GLOBEX, &two, item("2"), None),
                envelope(ACME, &three, item("3"), None),
            ],
            None,
        );
        let answer = self.invoke(environment, &mixed, None).await;
        let first = check(
            "a batch with a record of another tenant is refused (Tenant.Mismatch)",
            answer.is_error(answer::TENANT_MISMATCH),
            &answer,
        );
        let again = batch(
            ACME,
            vec![
                envelope(ACME, &one, item("1"), None),
                envelope(ACME, &three, item("3"), None),
            ],
            None,
        );
        let answer = self.invoke(environment, &again, None).await;
        let fresh = statuses(&answer, &[&one, &three]).is_some_and(|s| s == ["processed"; 2])
            && !any_duplicate(&answer);
        vec![
            first,
            check(
                "none of a refused batch's records was processed",
                fresh,
                &answer,
            ),
        ]
    }

    async fn duplicate(&self, environment: &Environment) -> Check {
        let envelope = envelope(ACME, &record_id("twice"), item("t"), None);
        let first = self.invoke(environment, &envelope, None).await;
        let second = self.invoke(environment, &envelope, None).await;
        check(
            "a duplicate idempotencyKey is recognised (duplicate: true)",
            first.is_fresh() && second.is_duplicate(),
            &second,
        )
    }

    async fn per_record(&self, environment: &Environment) -> Check {
        let ids = [record_id("p1"), record_id("p2"), record_id("p3")];
        let batch = batch(
            ACME,
            ids.iter()
                .map(|id| envelope(ACME, id, item(id), None))
                .collect(),
            None,
        );
        let answer = self.invoke(environment, &batch, None).await;
        let expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        let passed = statuses(&answer, &expected).is_some_and(|s| s == ["processed"; 3]);
        check(
            "a batch gets one result per record, in order",
            passed,
            &answer,
        )
    }

    async fn lane_stops(&self, environment: &Environment) -> Check {
        let ids = [
            record_id("l1"),
            record_id("l2"),
            record_id("l3"),
            record_id("l4"),
        ];
        let failing = self.options.failing_payload.clone();
        let records = vec![
            envelope(ACME, &ids[0], item("1"), Some("lane-a")),
            envelope(ACME, &ids[1], failing, Some("lane-a")),
            envelope(ACME, &ids[2], item("3"), Some("lane-a")),
            envelope(ACME, &ids[3], item("4"), Some("lane-b")),
        ];
        let answer = self
            .invoke(environment, &batch(ACME, records, Some("lanes")), None)
            .await;
        let expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        let passed = statuses(&answer, &expected)
            .is_some_and(|s| s == ["processed", "failed", "skipped", "processed"]);
        check(
            "an ordered batch stops a lane at its first failure (lanes)",
            passed,
            &answer,
        )
    }

    async fn stream_stops(&self, environment: &Environment) -> Check {
        let ids = [record_id("s1"), record_id("s2"), record_id("s3")];
        let failing = self.options.failing_payload.clone();
        let records = vec![
            envelope(ACME, &ids[0], item("1"), Some("key-a")),
            envelope(ACME, &ids[1], failing, Some("key-a")),
            envelope(ACME, &ids[2], item("3"), Some("key-b")),
        ];
        let answer = self
            .invoke(environment, &batch(ACME, records, Some("stream")), None)
            .await;
        let expected: Vec<&str> = ids.iter().map(String::as_str).collect();
        let passed =
            statuses(&answer, &expected).is_some_and(|s| s == ["processed", "failed", "skipped"]);
        check(
            "a stream batch stops everything after its first failure",
            passed,
            &answer,
        )
    }

    async fn fails_closed(&self, environment: &Environment) -> Check {
        const NAME: &str = "a second tenant offered to an environment makes it fail closed";
        let pin = envelope(ACME, &record_id("pin"), item("p"), None);
        let first = self.invoke(environment, &pin, None).await;
        if !matches!(first, Answer::Ok(_)) {
            return check(
                NAME,
                false,
                format!("the first tenant's record was not processed: {first}"),
            );
        }
        let foreign = envelope(GLOBEX, &record_id("second"), item("s"), None);
        let offered = self.invoke(environment, &foreign, Some(GLOBEX)).await;
        // A failed-closed environment is the environment's fault, not a refusal of the record
        // (the same record passes in a healthy one), but it refuses all the same.
        let refused = |answer: &Answer| match answer {
            Answer::Error(t, _) => {
                answer::is_guard_refusal(t) || t == answer::TENANT_ENVIRONMENT_FAILED_CLOSED
            }
            Answer::Gone(_) => true,
            Answer::Ok(_) => false,
        };
        // The environment is done for: its own tenant is refused too, or the process is gone.
        let after = if environment.is_alive() {
            let again = envelope(ACME, &record_id("after"), item("a"), None);
            tokio::time::timeout(self.options.timeout, self.invoke(environment, &again, None))
                .await
                .unwrap_or(Answer::Gone("no answer".into()))
        } else {
            Answer::Gone("the process ended".into())
        };
        check(
            NAME,
            refused(&offered) && refused(&after),
            format!("the second tenant: {offered}; then its own: {after}"),
        )
    }

    /// With tenant-scoped access on (`BACKEND_TENANT_ROLE_ARN`) and no STS to be had, the record
    /// fails transiently (`Tenant.CredentialsUnavailable`) and nothing of it runs — never "runs
    /// with the execution role": the same key sent afterwards to an environment without tenant
    /// access is new to the store.
    async fn no_session(&self, acme: &Environment) -> anyhow::Result<Check> {
        const NAME: &str = "with BACKEND_TENANT_ROLE_ARN and no STS, nothing runs \
                            (Tenant.CredentialsUnavailable, transient)";
        let scoped = self.start_with(
            "conformance-no-session",
            Some(ACME),
            &[
                (
                    "BACKEND_TENANT_ROLE_ARN",
                    "arn:aws:iam::000000000000:role/conformance-tenant-access",
                ),
                // Nothing listens there (the discard port).
                ("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9"),
            ],
        )?;
        let envelope = envelope(ACME, &record_id("no-session"), item("s"), None);
        let refused = self.invoke(&scoped, &envelope, None).await;
        scoped.stop();
        let after = self.invoke(acme, &envelope, None).await;
        let passed = refused.is_error(answer::TENANT_CREDENTIALS_UNAVAILABLE) && after.is_fresh();
        Ok(check(
            NAME,
            passed,
            format!("without a session: {refused}; then without tenant access: {after}"),
        ))
    }

    async fn two_tenants(&self, acme: &Environment, globex: &Environment) -> Check {
        let id = record_id("both");
        let first = self
            .invoke(acme, &envelope(ACME, &id, item("a"), None), None)
            .await;
        let second = self
            .invoke(globex, &envelope(GLOBEX, &id, item("g"), None), None)
            .await;
        check(
            "the same idempotencyKey under two tenants is processed for both",
            first.is_fresh() && second.is_fresh(),
            format!("{ACME}: {first}; {GLOBEX}: {second}"),
        )
    }

    async fn second_environment(&self, one: &Environment, two: &Environment) -> Check {
        let envelope = envelope(ACME, &record_id("elsewhere"), item("e"), None);
        let first = self.invoke(one, &envelope, None).await;
        let second = self.invoke(two, &envelope, None).await;
        check(
            "a duplicate delivered to a second environment of the tenant is recognised",
            first.is_fresh() && second.is_duplicate(),
            format!("the first environment: {first}; the second: {second}"),
        )
    }

    async fn duplicate_result(&self, environment: &Environment) -> Check {
        // The same key with another payload: a handler run again computes another result.
        let id = record_id("result");
        let first = envelope(ACME, &id, item("the first run"), None);
        let again = envelope(ACME, &id, item("a payload never run"), None);
        let first = self.invoke(environment, &first, None).await;
        let again = self.invoke(environment, &again, None).await;
        let passed = first.is_fresh()
            && again.is_duplicate()
            && first.result().is_some()
            && first.result() == again.result();
        check(
            "a duplicate's answer carries the first run's result",
            passed,
            format!("first {first}; then {again}"),
        )
    }

    async fn failure_runs_again(&self, environment: &Environment) -> Check {
        // Sent again with a payload the handler takes: a remembered failure answers the old one.
        let id = record_id("failed");
        let failing = envelope(ACME, &id, self.options.failing_payload.clone(), None);
        let fixed = envelope(ACME, &id, item("fixed"), None);
        let first = self.invoke(environment, &failing, None).await;
        let again = self.invoke(environment, &fixed, None).await;
        check(
            "a record that failed runs again when sent again (not a duplicate)",
            first.is_error(answer::HANDLER_ERROR) && again.is_fresh(),
            format!("first {first}; then {again}"),
        )
    }

    /// `spoil` makes an envelope invalid; it is refused alone and inside a batch (and, when
    /// `batch_too`, a batch it spoils is refused), and the valid records of the refused batches
    /// are new to the store afterwards.
    async fn invalid(
        &self,
        environment: &Environment,
        name: &'static str,
        spoil: fn(&mut Value),
        batch_too: bool,
    ) -> Check {
        let mut spoiled = envelope(ACME, &record_id("spoiled"), item("s"), None);
        spoil(&mut spoiled);
        let kept = envelope(ACME, &record_id("kept"), item("k"), None);
        let mut cases = vec![
            ("alone", spoiled.clone()),
            ("in a batch", batch(ACME, vec![kept.clone(), spoiled], None)),
        ];
        let mut probes = vec![kept];
        if batch_too {
            let inside = envelope(ACME, &record_id("inside"), item("i"), None);
            let mut batch = batch(ACME, vec![inside.clone()], None);
            spoil(&mut batch);
            cases.push(("a batch", batch));
            probes.push(inside);
        }
        let mut passed = true;
        let mut seen = Vec::new();
        for (what, payload) in cases {
            let answer = self.invoke(environment, &payload, None).await;
            passed &= answer.is_error(answer::ENVELOPE_INVALID);
            seen.push(format!("{what}: {answer}"));
        }
        for probe in probes {
            let answer = self.invoke(environment, &probe, None).await;
            if !answer.is_fresh() {
                passed = false;
                seen.push(format!(
                    "a valid record of a refused batch, sent alone: {answer}"
                ));
            }
        }
        check(name, passed, seen.join("; "))
    }

    async fn at_once(&self, one: &Environment, two: &Environment) -> Check {
        const NAME: &str = "the same key sent to two environments at once is never processed twice";
        let held_off = |answer: &Answer| {
            answer.is_duplicate() || answer.is_error(answer::IDEMPOTENCY_IN_PROGRESS)
        };
        for _ in 0..AT_ONCE_KEYS {
            let envelope = envelope(ACME, &record_id("at-once"), item("o"), None);
            let (first, second) = tokio::join!(
                self.invoke(one, &envelope, None),
                self.invoke(two, &envelope, None)
            );
            let once =
                (first.is_fresh() && held_off(&second)) || (second.is_fresh() && held_off(&first));
            if !once {
                return check(
                    NAME,
                    false,
                    format!("one environment: {first}; the other: {second}"),
                );
            }
        }
        check(
            NAME,
            true,
            format!(
                "{AT_ONCE_KEYS} keys, each processed by one environment and held off by the other"
            ),
        )
    }

    async fn unreadable_result(&self, environment: &Environment) -> Check {
        const NAME: &str =
            "a duplicate whose stored result cannot be read still answers status: processed";
        let envelope = envelope(ACME, &record_id("unreadable"), item("u"), None);
        let key = envelope["idempotencyKey"].as_str().unwrap_or_default();
        // The contract's record id (README, "Backend contract"): a backend with a store of
        // another layout never sees the item and processes the record, which passes too.
        let record = format!("{FUNCTION}#{ACME}#{key}");
        if let Err(e) = self.store.plant_unreadable(&record).await {
            return check(NAME, false, format!("{e:#}"));
        }
        let answer = self.invoke(environment, &envelope, None).await;
        let passed = matches!(&answer, Answer::Ok(v) if v["status"] == "processed");
        check(NAME, passed, &answer)
    }

    /// Every batch answer received, judged by the compact rules (`shared::answer`).
    fn compact(&self) -> Check {
        const NAME: &str = "every batch answer is compact (per record: id, status, error?, duplicate?) and its counts match";
        let received = self.received.lock().expect("lock");
        let batches: Vec<&Value> = received
            .iter()
            .filter(|(shape, _)| *shape == Shape::Batch)
            .map(|(_, answer)| answer)
            .collect();
        let problem = if batches.is_empty() {
            Some("no batch was answered".to_owned())
        } else {
            batches
                .iter()
                .find_map(|answer| not_compact(answer).map(|p| format!("{p}, in {answer}")))
        };
        let passed = problem.is_none();
        let detail = problem.unwrap_or_else(|| format!("{} batch answers", batches.len()));
        check(NAME, passed, detail)
    }

    /// Every answer received, judged by its schema.
    fn fits_schemas(&self) -> Check {
        const NAME: &str = "every answer fits schemas/v1";
        let received = self.received.lock().expect("lock");
        let misfits: Vec<String> = received
            .iter()
            .filter_map(|(shape, answer)| {
                let problems = self.schemas.problems(*shape, answer);
                (!problems.is_empty()).then(|| {
                    format!(
                        "$defs/{}: {} in {answer}",
                        shape.definition(),
                        problems.join("; ")
                    )
                })
            })
            .collect();
        let passed = misfits.is_empty() && !received.is_empty();
        let detail = match misfits.first() {
            Some(first) => format!(
                "{} of {} answers do not fit; {first}",
                misfits.len(),
                received.len()
            ),
            None => format!("{} answers", received.len()),
        };
        check(NAME, passed, detail)
    }
}

/// An envelope of `tenant` from the kit's queue: record `id`, key `<arn>#<id>`, in `lane` when
/// given.
fn envelope(tenant: &str, id: &str, payload: Value, lane: Option<&str>) -> Value {
    let mut envelope = json!({
        "version": shared::ENVELOPE_VERSION, "tenantId": tenant, "source": "sqs",
        "eventSourceArn": ARN, "id": id, "idempotencyKey": format!("{ARN}#{id}"),
        "arrivedAt": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "correlationId": format!("conformance-{id}"), "attributes": {}, "payload": payload,
    });
    if let Some(lane) = lane {
        envelope["orderingKey"] = json!(lane);
    }
    envelope
}

/// A to-do item: what the example backends process.
fn item(title: &str) -> Value {
    json!({"item": {"id": title, "title": format!("conformance check {title}")}})
}

/// An envelope batch of `tenant` asking `answer: per-record`, with `ordering` when given.
fn batch(tenant: &str, records: Vec<Value>, ordering: Option<&str>) -> Value {
    let mut batch = json!({
        "version": shared::ENVELOPE_VERSION, "tenantId": tenant, "records": records,
        "answer": "per-record",
    });
    if let Some(ordering) = ordering {
        batch["ordering"] = json!(ordering);
    }
    batch
}

/// A unique record id for this run (the store may be a shared table that outlives it).
fn record_id(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

/// The statuses of a per-record answer whose ids are `ids`, in order; `None` for any other
/// answer.
fn statuses(answer: &Answer, ids: &[&str]) -> Option<Vec<String>> {
    let Answer::Ok(value) = answer else {
        return None;
    };
    let records = value.get("records")?.as_array()?;
    if records.len() != ids.len() {
        return None;
    }
    records
        .iter()
        .zip(ids)
        .map(|(record, id)| {
            (record.get("id")?.as_str()? == *id)
                .then(|| record.get("status")?.as_str().map(str::to_owned))?
        })
        .collect()
}

/// Whether a batch answer marks any record a duplicate.
fn any_duplicate(answer: &Answer) -> bool {
    let Answer::Ok(value) = answer else {
        return false;
    };
    value["records"]
        .as_array()
        .is_some_and(|records| records.iter().any(|r| r["duplicate"] == json!(true)))
}

/// What in a batch answer breaks the compact form: members per record beyond `id`, `status`,
/// `error`, `duplicate`; a `failed` or `skipped` record without an `error` (or one over
/// [`answer::MAX_ERROR_CHARS`] characters); `duplicate` other than `true` on a processed record;
/// a batch member missing, or a count that does not match the records.
fn not_compact(answer: &Value) -> Option<String> {
    const MEMBERS: [&str; 4] = ["id", "status", "error", "duplicate"];
    const COUNTS: [&str; 4] = ["processed", "duplicates", "failed", "skipped"];
    let Some(batch) = answer.as_object() else {
        return Some("not an object".into());
    };
    if let Some(missing) = ["tenantId", "records"]
        .iter()
        .chain(&COUNTS)
        .find(|m| !batch.contains_key(**m))
    {
        return Some(format!("no `{missing}`"));
    }
    let Some(records) = batch["records"].as_array() else {
        return Some("`records` is not an array".into());
    };
    let mut counts = [0u64; 4];
    for record in records {
        let Some(record) = record.as_object() else {
            return Some(format!("a record's result is not an object: {record}"));
        };
        if let Some(extra) = record.keys().find(|k| !MEMBERS.contains(&k.as_str())) {
            return Some(format!("a record's result carries `{extra}`"));
        }
        let duplicate = match record.get("duplicate") {
            None => false,
            Some(Value::Bool(true)) => true,
            Some(other) => return Some(format!("`duplicate` is {other}, not true")),
        };
        let status = record.get("status").and_then(Value::as_str);
        match status {
            Some("processed") => counts[usize::from(duplicate)] += 1,
            Some(status @ ("failed" | "skipped")) => {
                if duplicate {
                    return Some(format!("a {status} record is marked a duplicate"));
                }
                match record.get("error").and_then(Value::as_str) {
                    None => return Some(format!("a {status} record has no `error`")),
                    Some(error) if error.chars().count() > answer::MAX_ERROR_CHARS => {
                        return Some(format!(
                            "an `error` of {} characters (at most {})",
                            error.chars().count(),
                            answer::MAX_ERROR_CHARS
                        ));
                    }
                    Some(_) => {}
                }
                counts[if status == "failed" { 2 } else { 3 }] += 1;
            }
            other => return Some(format!("a record's status is {other:?}")),
        }
    }
    COUNTS
        .iter()
        .zip(counts)
        .find(|(member, count)| batch[**member].as_u64() != Some(*count))
        .map(|(member, count)| format!("`{member}` is {}, but {count} records are", batch[*member]))
}

fn check(name: &'static str, passed: bool, detail: impl std::fmt::Display) -> Check {
    let mut detail = detail.to_string();
    if detail.len() > 600 {
        let mut end = 600;
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail.truncate(end);
        detail.push('…');
    }
    Check {
        name,
        passed,
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kits_envelopes_fit_the_schemas_and_the_spoiled_ones_do_not() {
        // The kit's refusal checks judge a backend only if what it sends right is right and
        // what it spoils is wrong for one reason.
        let one = schema::validator("envelope.schema.json").unwrap();
        let many = schema::validator("envelope-batch.schema.json").unwrap();
        let right = envelope(ACME, &record_id("r"), item("r"), Some("lane-a"));
        assert!(one.is_valid(&right), "{right}");
        let records = vec![
            right.clone(),
            envelope(ACME, &record_id("s"), item("s"), None),
        ];
        for ordering in [None, Some("lanes"), Some("stream")] {
            let batch = batch(ACME, records.clone(), ordering);
            assert!(many.is_valid(&batch), "{batch}");
        }
        let spoils: [(&str, Value); 3] = [
            ("version", json!(2)),
            ("id", json!("")),
            ("idempotencyKey", json!("")),
        ];
        for (member, value) in spoils {
            let mut spoiled = right.clone();
            spoiled[member] = value;
            assert!(!one.is_valid(&spoiled), "{spoiled}");
        }
    }

    #[test]
    fn a_batch_answer_is_compact_only_with_its_four_members_and_its_counts() {
        let good = json!({
            "tenantId": ACME, "processed": 1, "duplicates": 1, "failed": 1, "skipped": 1,
            "records": [
                {"id": "a", "status": "processed"},
                {"id": "b", "status": "processed", "duplicate": true},
                {"id": "c", "status": "failed", "error": "no item"},
                {"id": "d", "status": "skipped", "error": "c failed"},
            ],
        });
        assert_eq!(not_compact(&good), None);
        let spoil = |path: &str, value: Value| {
            let mut answer = good.clone();
            *answer.pointer_mut(path).unwrap() = value;
            not_compact(&answer)
        };
        assert!(
            spoil(
                "/records/0",
                json!({"id": "a", "status": "processed", "result": {}})
            )
            .is_some()
        );
        assert!(spoil("/records/2", json!({"id": "c", "status": "failed"})).is_some());
        assert!(
            spoil(
                "/records/2/error",
                json!("x".repeat(answer::MAX_ERROR_CHARS + 1))
            )
            .is_some()
        );
        assert!(spoil("/records/1/duplicate", json!(false)).is_some());
        assert!(spoil("/records/3/status", json!("done")).is_some());
        assert!(spoil("/duplicates", json!(0)).is_some());
        assert!(not_compact(&json!({"ok": true})).is_some());
    }
}
