//! The conformance kit: `local-lambda conformance EXECUTABLE [--env KEY=VALUE]…` runs any
//! Runtime-API bootstrap, in any language, as a tenant-isolated function in the stand-in and
//! checks the tenant guard's contract (README, "Backend contract"; `schemas/v1`), one line per
//! check:
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
//!   first one too from then on (or the process gone).
//!
//! A record the handler must fail is needed for the ordering checks: by default a payload that
//! is a JSON string, which no to-do backend can enrich (`--failing-payload` gives another).
//! Each environment is a real process on its own Runtime API (`environment`); the second
//! tenant is offered through [`Invocation::offered_tenant`], a fault the stand-in injects only
//! here.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use shared::answer;

use crate::environment::{Environment, EnvironmentSpec, Invocation, InvocationResult, OutputSink};

/// What the kit runs and how.
#[derive(Debug, Clone)]
pub struct Options {
    /// The bootstrap under test.
    pub executable: std::path::PathBuf,
    /// Extra environment variables for it.
    pub variables: Vec<(String, String)>,
    /// A payload the handler fails (a function error, or `failed` in a per-record answer).
    pub failing_payload: Value,
    /// Longest one invocation may run.
    pub timeout: Duration,
    /// Where the environments' output goes (`None`: discarded).
    pub environment_output: Option<std::path::PathBuf>,
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

/// Runs every check; the backend conforms when all pass.
pub async fn run(options: &Options) -> anyhow::Result<Vec<Check>> {
    let kit = Kit::new(options)?;
    let mut checks = Vec::new();
    let unpinned = kit.start("conformance-no-tenant", None)?;
    let acme = kit.start("conformance-acme", Some(ACME))?;
    checks.push(kit.no_tenant(&unpinned).await);
    unpinned.stop();
    checks.extend(kit.other_tenant(&acme).await);
    checks.extend(kit.batch_with_other_tenant(&acme).await);
    checks.push(kit.duplicate(&acme).await);
    checks.push(kit.per_record(&acme).await);
    checks.push(kit.lane_stops(&acme).await);
    checks.push(kit.stream_stops(&acme).await);
    acme.stop();
    let pinned = kit.start("conformance-pinned", Some(ACME))?;
    checks.push(kit.fails_closed(&pinned).await);
    pinned.stop();
    Ok(checks)
}

struct Kit<'a> {
    options: &'a Options,
    spec: EnvironmentSpec,
    output: OutputSink,
}

/// What an invocation answered, read.
enum Answer {
    Ok(Value),
    Error(String),
    Gone(String),
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ok(value) => write!(f, "answered {value}"),
            Answer::Error(error_type) => write!(f, "function error {error_type}"),
            Answer::Gone(what) => write!(f, "{what}"),
        }
    }
}

impl<'a> Kit<'a> {
    fn new(options: &'a Options) -> anyhow::Result<Self> {
        let sink: Box<dyn std::io::Write + Send> = match &options.environment_output {
            Some(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
            None => Box::new(std::io::sink()),
        };
        Ok(Self {
            options,
            spec: EnvironmentSpec {
                function: FUNCTION.into(),
                executable: options.executable.clone(),
                variables: options.variables.clone(),
                timeout: options.timeout,
                region: "us-east-1".into(),
                memory_mb: crate::service::DEFAULT_MEMORY_MB,
                init_limit: crate::environment::INIT_LIMIT,
            },
            output: Arc::new(Mutex::new(sink)),
        })
    }

    fn start(&self, id: &str, tenant: Option<&str>) -> anyhow::Result<Arc<Environment>> {
        Environment::start(
            &self.spec,
            id.into(),
            tenant.map(str::to_owned),
            self.output.clone(),
        )
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", self.options.executable.display()))
    }

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
        match result {
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
                match document["errorType"].as_str() {
                    Some(error_type) => Answer::Error(error_type.to_owned()),
                    None => Answer::Error(error.error_type().unwrap_or_default()),
                }
            }
            InvocationResult::Crashed(why) => Answer::Gone(format!("crashed: {why}")),
            InvocationResult::TimedOut => Answer::Gone("timed out".into()),
            InvocationResult::InitTimedOut => Answer::Gone("its init phase timed out".into()),
        }
    }

    fn envelope(&self, tenant: &str, id: &str, payload: Value, lane: Option<&str>) -> Value {
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
    fn item(&self, id: &str) -> Value {
        json!({"item": {"id": id, "title": "conformance check"}})
    }

    fn batch(&self, tenant: &str, records: Vec<Value>, ordering: Option<&str>) -> Value {
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
    fn id(&self, name: &str) -> String {
        format!("{name}-{}", uuid::Uuid::new_v4().simple())
    }

    async fn no_tenant(&self, environment: &Environment) -> Check {
        let envelope = self.envelope(ACME, &self.id("no-tenant"), self.item("a"), None);
        let answer = self.invoke(environment, &envelope, None).await;
        let passed = matches!(&answer, Answer::Error(t) if answer::is_guard_refusal(t));
        check("no tenant id is refused", passed, &answer)
    }

    async fn other_tenant(&self, environment: &Environment) -> Vec<Check> {
        let id = self.id("crossing");
        let foreign = self.envelope(GLOBEX, &id, self.item("x"), None);
        let answer = self.invoke(environment, &foreign, None).await;
        let refused = matches!(&answer, Answer::Error(t) if t == answer::TENANT_MISMATCH);
        let first = check(
            "an envelope naming another tenant is refused (Tenant.Mismatch)",
            refused,
            &answer,
        );
        // Had it been processed, the same key sent right would be a duplicate.
        let right = self.envelope(ACME, &id, self.item("x"), None);
        let answer = self.invoke(environment, &right, None).await;
        let fresh = matches!(&answer, Answer::Ok(v) if v.get("duplicate") != Some(&json!(true)));
        vec![
            first,
            check(
                "nothing of a refused envelope was processed",
                fresh,
                &answer,
            ),
        ]
    }

    async fn batch_with_other_tenant(&self, environment: &Environment) -> Vec<Check> {
        let (one, two, three) = (self.id("b1"), self.id("b2"), self.id("b3"));
        let mixed = self.batch(
            ACME,
            vec![
                self.envelope(ACME, &one, self.item("1"), None),
                self.envelope(GLOBEX, &two, self.item("2"), None),
                self.envelope(ACME, &three, self.item("3"), None),
            ],
            None,
        );
        let answer = self.invoke(environment, &mixed, None).await;
        let refused = matches!(&answer, Answer::Error(t) if t == answer::TENANT_MISMATCH);
        let first = check(
            "a batch with a record of another tenant is refused (Tenant.Mismatch)",
            refused,
            &answer,
        );
        let again = self.batch(
            ACME,
            vec![
                self.envelope(ACME, &one, self.item("1"), None),
                self.envelope(ACME, &three, self.item("3"), None),
            ],
            None,
        );
        let answer = self.invoke(environment, &again, None).await;
        let fresh = statuses(&answer, &[&one, &three]).is_some_and(|s| s == ["processed"; 2]);
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
        let envelope = self.envelope(ACME, &self.id("twice"), self.item("t"), None);
        let first = self.invoke(environment, &envelope, None).await;
        let second = self.invoke(environment, &envelope, None).await;
        let passed = matches!(&first, Answer::Ok(v) if v.get("duplicate") != Some(&json!(true)))
            && matches!(&second, Answer::Ok(v) if v.get("duplicate") == Some(&json!(true)));
        check(
            "a duplicate idempotencyKey is recognised (duplicate: true)",
            passed,
            &second,
        )
    }

    async fn per_record(&self, environment: &Environment) -> Check {
        let ids = [self.id("p1"), self.id("p2"), self.id("p3")];
        let batch = self.batch(
            ACME,
            ids.iter()
                .map(|id| self.envelope(ACME, id, self.item(id), None))
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
        let ids = [self.id("l1"), self.id("l2"), self.id("l3"), self.id("l4")];
        let failing = self.options.failing_payload.clone();
        let records = vec![
            self.envelope(ACME, &ids[0], self.item("1"), Some("lane-a")),
            self.envelope(ACME, &ids[1], failing, Some("lane-a")),
            self.envelope(ACME, &ids[2], self.item("3"), Some("lane-a")),
            self.envelope(ACME, &ids[3], self.item("4"), Some("lane-b")),
        ];
        let answer = self
            .invoke(environment, &self.batch(ACME, records, Some("lanes")), None)
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
        let ids = [self.id("s1"), self.id("s2"), self.id("s3")];
        let failing = self.options.failing_payload.clone();
        let records = vec![
            self.envelope(ACME, &ids[0], self.item("1"), Some("key-a")),
            self.envelope(ACME, &ids[1], failing, Some("key-a")),
            self.envelope(ACME, &ids[2], self.item("3"), Some("key-b")),
        ];
        let answer = self
            .invoke(
                environment,
                &self.batch(ACME, records, Some("stream")),
                None,
            )
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
        let pin = self.envelope(ACME, &self.id("pin"), self.item("p"), None);
        let first = self.invoke(environment, &pin, None).await;
        if !matches!(first, Answer::Ok(_)) {
            return check(
                "a second tenant offered to an environment makes it fail closed",
                false,
                &Answer::Gone(format!(
                    "the first tenant's record was not processed: {first}"
                )),
            );
        }
        let foreign = self.envelope(GLOBEX, &self.id("second"), self.item("s"), None);
        let offered = self.invoke(environment, &foreign, Some(GLOBEX)).await;
        let refused = |answer: &Answer| match answer {
            Answer::Error(t) => answer::is_guard_refusal(t),
            Answer::Gone(_) => true,
            Answer::Ok(_) => false,
        };
        // The environment is done for: its own tenant is refused too, or the process is gone.
        let after = if environment.is_alive() {
            let again = self.envelope(ACME, &self.id("after"), self.item("a"), None);
            tokio::time::timeout(self.options.timeout, self.invoke(environment, &again, None))
                .await
                .unwrap_or(Answer::Gone("no answer".into()))
        } else {
            Answer::Gone("the process ended".into())
        };
        let passed = refused(&offered) && refused(&after);
        check(
            "a second tenant offered to an environment makes it fail closed",
            passed,
            &Answer::Gone(format!(
                "the second tenant: {offered}; then its own: {after}"
            )),
        )
    }
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

fn check(name: &'static str, passed: bool, answer: &Answer) -> Check {
    let mut detail = answer.to_string();
    if detail.len() > 300 {
        let mut end = 300;
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
