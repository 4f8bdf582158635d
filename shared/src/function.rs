//! The tenant-isolated function wrapper: turns a plain
//! `async fn(&TenantContext, Envelope) -> Result<Value, E>` into a Lambda handler that enforces
//! PRODUCT.md §6.
//!
//! - The tenant comes from the invocation context (`Lambda-Runtime-Aws-Tenant-Id`), never from the
//!   payload; an invocation without one is refused.
//! - The first tenant pins the execution environment for life ([`EnvironmentGuard`]). Any other
//!   tenant makes the environment fail closed: that invocation and every later one are refused,
//!   whatever their tenant, so a routing mistake can never reach state cached for another tenant.
//! - An envelope whose `tenantId` differs from the context's tenant is refused, logged as a
//!   security event, and nothing of it is processed.
//! - A repeated `idempotencyKey` is recognised through the idempotency store
//!   ([`crate::idempotency`]): the handler does not run again and the stored result is returned,
//!   marked `duplicate`; a record another environment is processing fails as in progress. With
//!   `BACKEND_IDEMPOTENCY_TABLE` the store is a DynamoDB table every environment of the tenant
//!   shares; without it, the environment's memory (a duplicate reaching another environment runs
//!   again).
//! - The payload is one envelope (`ROUTER_DELIVERY=record`) or an envelope batch of one tenant
//!   (`tenant-batch`): the handler runs once per record, in order, one at a time, with
//!   per-record results; a batch holding any record of another tenant is refused whole before
//!   anything runs. After a record fails, the batch's `ordering` decides which later records are
//!   not run (`skipped`): those with the same `orderingKey` (`lanes`), or all (`stream`). With
//!   `"answer": "per-record"` (a `request-response` router) the invocation succeeds and the
//!   answer says what became of each record ([`crate::answer`]); without it a failed record is a
//!   function error, so Lambda's async retries run the batch again.
//!
//! Tenant-scoped state (configuration, secrets, clients) can live in the environment, behind a
//! `OnceLock` or similar: the environment serves one tenant only.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::answer::{self, RecordStatus};
use crate::idempotency::{self, Claim, IdempotencyStore, MemoryStore};
use crate::{BatchAnswer, BatchOrdering, Delivery, Envelope, TenantId};

/// What a tenant handler learns about its invocation.
#[derive(Debug, Clone)]
pub struct TenantContext {
    /// The tenant this environment serves (from the invocation context).
    pub tenant_id: TenantId,
    /// The Lambda request id.
    pub request_id: String,
}

/// Why an invocation was refused before (or instead of) running the tenant handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The invocation carried no tenant id.
    #[error("the invocation has no tenant id: the function must run in tenant isolation mode")]
    NoTenant,
    /// The context's tenant id is not a valid tenant id.
    #[error("the invocation's tenant id is invalid: {0}")]
    InvalidTenant(String),
    /// This environment served another tenant: it refuses everything from now on.
    #[error("this execution environment was offered a second tenant and fails closed")]
    FailedClosed,
    /// The envelope names another tenant than the invocation.
    #[error("the envelope's tenant does not match the invocation's tenant")]
    TenantMismatch,
    /// The payload is not an envelope.
    #[error("the payload is not a valid envelope: {0}")]
    BadEnvelope(String),
}

/// Per-environment state of the guard: the pinned tenant, the fail-closed flag, and the
/// idempotency store with the function's name (part of every record's store id).
pub struct EnvironmentGuard {
    pinned: std::sync::OnceLock<TenantId>,
    failed_closed: AtomicBool,
    function: String,
    store: Box<dyn IdempotencyStore>,
}

impl Default for EnvironmentGuard {
    /// A guard of function `function` remembering records in the environment's memory.
    fn default() -> Self {
        Self::with_store("function", Box::new(MemoryStore::default()))
    }
}

impl std::fmt::Debug for EnvironmentGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentGuard")
            .field("pinned", &self.pinned.get())
            .field("function", &self.function)
            .field("shared_store", &self.store.is_shared())
            .finish()
    }
}

/// Why one record of an admitted invocation was not processed.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RecordError {
    /// The handler failed.
    Handler(String),
    /// Another environment is processing it.
    InProgress,
    /// The idempotency store could not answer.
    Store(String),
}

impl Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Handler(e) => f.write_str(e),
            RecordError::InProgress => f.write_str(
                "the record is being processed by another execution environment; retry later",
            ),
            RecordError::Store(e) => write!(f, "{e}; not processed, retry later"),
        }
    }
}

impl From<RecordError> for InvokeError {
    fn from(error: RecordError) -> Self {
        match error {
            RecordError::Handler(e) => InvokeError::Handler(e),
            RecordError::InProgress => InvokeError::InProgress,
            RecordError::Store(e) => InvokeError::StoreUnavailable(e),
        }
    }
}

/// How long an invocation may run when its caller gives no deadline (Lambda's maximum).
const LONGEST_INVOCATION_MS: i64 = 900_000;

impl EnvironmentGuard {
    /// A guard of function `function` keeping its idempotency items in `store`.
    pub fn with_store(function: impl Into<String>, store: Box<dyn IdempotencyStore>) -> Self {
        Self {
            pinned: std::sync::OnceLock::new(),
            failed_closed: AtomicBool::new(false),
            function: function.into(),
            store,
        }
    }

    /// The tenant this environment is pinned to, if any.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.pinned.get()
    }

    /// Admits an invocation for `context_tenant`, pinning the environment on first use.
    pub fn admit(&self, context_tenant: Option<&str>) -> Result<TenantId, GuardError> {
        if self.failed_closed.load(Ordering::Acquire) {
            return Err(GuardError::FailedClosed);
        }
        let tenant = context_tenant.ok_or(GuardError::NoTenant)?;
        let tenant =
            TenantId::parse(tenant).map_err(|e| GuardError::InvalidTenant(e.to_string()))?;
        let pinned = self.pinned.get_or_init(|| tenant.clone());
        if *pinned != tenant {
            self.failed_closed.store(true, Ordering::Release);
            tracing::error!(
                message = "security: execution environment offered a second tenant; failing closed",
                security_event = "environment-tenant-mismatch",
                tenant_id = pinned.as_str(),
                offered_tenant_id = tenant.as_str(),
            );
            return Err(GuardError::FailedClosed);
        }
        Ok(tenant)
    }

    /// Runs one invocation through the guard and `handler`. The payload is one envelope or an
    /// envelope batch ([`Delivery`]); `handler` runs once per record, in order, and a batch is
    /// refused whole, before anything runs, if any of its records names another tenant.
    ///
    /// `Ok` carries the result for the async destination (or the `request-response` caller):
    /// the record's result, or for a batch `{tenantId, records: [result…], processed,
    /// duplicates, failed, skipped}`, each result with its `id` and `status`. A handler error is
    /// returned as `Err` (a function error, so Lambda retries the async invocation). In a batch,
    /// a failed record stops only the records its `ordering` puts after it (none for an
    /// unordered batch, as in record mode where each record is its own Invoke); without
    /// `"answer": "per-record"` the error names the failed records, and a retry processes only
    /// those and the skipped ones, since the others are recognised as duplicates.
    pub async fn invoke<F, Fut, E>(
        &self,
        context_tenant: Option<&str>,
        request_id: &str,
        payload: &str,
        handler: F,
    ) -> Result<Value, InvokeError>
    where
        F: Fn(TenantContext, Envelope) -> Fut,
        Fut: Future<Output = Result<Value, E>>,
        E: Display,
    {
        let deadline_ms = chrono::Utc::now().timestamp_millis() + LONGEST_INVOCATION_MS;
        self.invoke_until(context_tenant, request_id, deadline_ms, payload, handler)
            .await
    }

    /// [`EnvironmentGuard::invoke`] for an invocation due at `deadline_ms` (epoch milliseconds):
    /// a record claimed in the idempotency store is held for another environment until then.
    pub async fn invoke_until<F, Fut, E>(
        &self,
        context_tenant: Option<&str>,
        request_id: &str,
        deadline_ms: i64,
        payload: &str,
        handler: F,
    ) -> Result<Value, InvokeError>
    where
        F: Fn(TenantContext, Envelope) -> Fut,
        Fut: Future<Output = Result<Value, E>>,
        E: Display,
    {
        let tenant = self.admit(context_tenant)?;
        let delivery = Delivery::from_payload(payload.as_bytes())
            .map_err(|e| GuardError::BadEnvelope(e.to_string()))?;
        match delivery {
            Delivery::One(envelope) => {
                check_tenant(
                    &tenant,
                    &envelope.tenant_id,
                    &envelope.id,
                    &envelope.correlation_id,
                )?;
                self.process(&tenant, request_id, deadline_ms, envelope, &handler)
                    .await
                    .map_err(InvokeError::from)
            }
            Delivery::Batch(batch) => {
                check_tenant(&tenant, &batch.tenant_id, "-", "-")?;
                for envelope in &batch.records {
                    check_tenant(
                        &tenant,
                        &envelope.tenant_id,
                        &envelope.id,
                        &envelope.correlation_id,
                    )?;
                }
                let total = batch.records.len();
                let (mut processed, mut duplicates, mut skipped) = (0, 0, 0);
                let mut failures = Vec::new();
                let mut results = Vec::with_capacity(total);
                let mut stops = Stops::new(batch.ordering);
                for envelope in batch.records {
                    let id = envelope.id.clone();
                    if let Some(earlier) = stops.stopped_by(&envelope) {
                        let why = format!("not run: record {earlier} it is ordered after failed");
                        results
                            .push(json!({"id": id, "status": RecordStatus::Skipped, "error": why}));
                        skipped += 1;
                        continue;
                    }
                    let key = envelope.ordering_key.clone();
                    let outcome = self
                        .process(&tenant, request_id, deadline_ms, envelope, &handler)
                        .await;
                    match outcome {
                        Ok(result) => {
                            if result.get("duplicate").is_some() {
                                duplicates += 1;
                            } else {
                                processed += 1;
                            }
                            results.push(result);
                        }
                        Err(error) => {
                            results.push(
                                json!({"id": id, "status": RecordStatus::Failed, "error": error.to_string()}),
                            );
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
        }
    }

    /// Runs `handler` for one admitted envelope once: claimed in the idempotency store first
    /// (a completed record returns its stored result, one in progress elsewhere fails), its
    /// result stored after, its claim released when the handler fails.
    async fn process<F, Fut, E>(
        &self,
        tenant: &TenantId,
        request_id: &str,
        deadline_ms: i64,
        envelope: Envelope,
        handler: &F,
    ) -> Result<Value, RecordError>
    where
        F: Fn(TenantContext, Envelope) -> Fut,
        Fut: Future<Output = Result<Value, E>>,
        E: Display,
    {
        let id = idempotency::record_id(&self.function, tenant, &envelope.idempotency_key);
        let now_ms = chrono::Utc::now().timestamp_millis();
        match self.store.claim(&id, now_ms, deadline_ms).await {
            Err(error) => {
                tracing::warn!(
                    message = "idempotency store unavailable; record not processed",
                    tenant_id = tenant.as_str(),
                    record_id = envelope.id.as_str(),
                    correlation_id = envelope.correlation_id.as_str(),
                    error = %error,
                );
                return Err(RecordError::Store(error.to_string()));
            }
            Ok(Claim::InProgress) => {
                tracing::warn!(
                    message = "record in progress in another environment; not processed",
                    tenant_id = tenant.as_str(),
                    record_id = envelope.id.as_str(),
                    correlation_id = envelope.correlation_id.as_str(),
                );
                return Err(RecordError::InProgress);
            }
            Ok(Claim::Completed(mut earlier)) => {
                tracing::info!(
                    message = "duplicate record recognised; not processed again",
                    tenant_id = tenant.as_str(),
                    record_id = envelope.id.as_str(),
                    correlation_id = envelope.correlation_id.as_str(),
                );
                // A stored result that could not be read back (another writer's item, a
                // truncated `data`) still answers as this record's duplicate, in the shape of a
                // result, so a batch's per-record answer stays one result per record.
                if !earlier.is_object() {
                    earlier = json!({
                        "tenantId": tenant,
                        "id": envelope.id,
                        "idempotencyKey": envelope.idempotency_key,
                        "correlationId": envelope.correlation_id,
                        "source": envelope.source,
                        "result": earlier,
                    });
                }
                if let Value::Object(map) = &mut earlier {
                    map.insert("duplicate".into(), Value::Bool(true));
                }
                return Ok(earlier);
            }
            Ok(Claim::Acquired) => {}
        }
        let summary = json!({
            "tenantId": tenant,
            "id": envelope.id,
            "idempotencyKey": envelope.idempotency_key,
            "correlationId": envelope.correlation_id,
            "source": envelope.source,
        });
        let (record_id, correlation_id) = (envelope.id.clone(), envelope.correlation_id.clone());
        let context = TenantContext {
            tenant_id: tenant.clone(),
            request_id: request_id.to_owned(),
        };
        match handler(context, envelope).await {
            Ok(result) => {
                let mut output = summary;
                output["status"] = json!(RecordStatus::Processed);
                output["result"] = result;
                tracing::info!(
                    message = "record processed",
                    tenant_id = tenant.as_str(),
                    record_id = record_id.as_str(),
                    correlation_id = correlation_id.as_str(),
                );
                let now_ms = chrono::Utc::now().timestamp_millis();
                if let Err(error) = self.store.complete(&id, &output, now_ms).await {
                    // The effect happened: answering with an error would have it redelivered
                    // and, once the claim expires, run again. The claim stays until then.
                    tracing::error!(
                        message = "idempotency store: result not stored; a redelivery after \
                                   the claim expires would run the record again",
                        tenant_id = tenant.as_str(),
                        record_id = record_id.as_str(),
                        correlation_id = correlation_id.as_str(),
                        error = %error,
                    );
                }
                Ok(output)
            }
            Err(error) => {
                tracing::warn!(
                    message = "tenant handler failed",
                    tenant_id = tenant.as_str(),
                    record_id = record_id.as_str(),
                    correlation_id = correlation_id.as_str(),
                    error = %error,
                );
                if let Err(release) = self.store.release(&id).await {
                    tracing::warn!(
                        message = "idempotency store: claim not released; a retry waits for it \
                                   to expire",
                        tenant_id = tenant.as_str(),
                        record_id = record_id.as_str(),
                        error = %release,
                    );
                }
                Err(RecordError::Handler(error.to_string()))
            }
        }
    }
}

/// Which records of an envelope batch may no longer run after failures (its `ordering`).
struct Stops {
    ordering: Option<BatchOrdering>,
    /// Per ordering key, the record that failed first (`lanes`).
    lanes: std::collections::HashMap<String, String>,
    /// The first record that failed (`stream`).
    first: Option<String>,
}

impl Stops {
    fn new(ordering: Option<BatchOrdering>) -> Self {
        Self {
            ordering,
            lanes: std::collections::HashMap::new(),
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

/// Refuses, as a security event, an envelope (or batch) naming another tenant than the context.
fn check_tenant(
    tenant: &TenantId,
    named: &TenantId,
    record_id: &str,
    correlation_id: &str,
) -> Result<(), GuardError> {
    if named == tenant {
        return Ok(());
    }
    tracing::error!(
        message = "security: envelope for another tenant refused",
        security_event = "envelope-tenant-mismatch",
        tenant_id = tenant.as_str(),
        envelope_tenant_id = %named.as_str().escape_debug(),
        record_id = record_id,
        correlation_id = correlation_id,
    );
    Err(GuardError::TenantMismatch)
}

/// Why an invocation produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvokeError {
    /// The guard refused it.
    #[error(transparent)]
    Refused(#[from] GuardError),
    /// The tenant handler failed.
    #[error("tenant handler failed: {0}")]
    Handler(String),
    /// Another execution environment is processing the record (retry later).
    #[error("the record is being processed by another execution environment; retry later")]
    InProgress,
    /// The idempotency store could not answer; nothing was processed (retry later).
    #[error("{0}; not processed, retry later")]
    StoreUnavailable(String),
    /// The tenant handler failed for some records of an envelope batch sent without
    /// `"answer": "per-record"` (the others were processed and are remembered, so a retry runs
    /// only the failed and skipped ones).
    #[error(
        "tenant handler failed for {failed} records of the batch ({skipped} not run after them): {detail}"
    )]
    PartialFailure {
        /// Records processed now.
        processed: usize,
        /// Records recognised as duplicates.
        duplicates: usize,
        /// Records whose handler failed.
        failed: usize,
        /// Records not run because a record they are ordered after failed.
        skipped: usize,
        /// `id: error` for each failed record.
        detail: String,
    },
}

impl InvokeError {
    /// The `errorType` reported to Lambda (and so to async destinations and callers).
    pub fn error_type(&self) -> &'static str {
        match self {
            InvokeError::Refused(GuardError::NoTenant) => answer::TENANT_MISSING,
            InvokeError::Refused(GuardError::InvalidTenant(_)) => answer::TENANT_INVALID,
            InvokeError::Refused(GuardError::FailedClosed) => {
                answer::TENANT_ENVIRONMENT_FAILED_CLOSED
            }
            InvokeError::Refused(GuardError::TenantMismatch) => answer::TENANT_MISMATCH,
            InvokeError::Refused(GuardError::BadEnvelope(_)) => answer::ENVELOPE_INVALID,
            InvokeError::Handler(_) => answer::HANDLER_ERROR,
            InvokeError::InProgress => answer::IDEMPOTENCY_IN_PROGRESS,
            InvokeError::StoreUnavailable(_) => answer::IDEMPOTENCY_STORE_UNAVAILABLE,
            InvokeError::PartialFailure { .. } => answer::HANDLER_PARTIAL_FAILURE,
        }
    }
}

impl From<InvokeError> for lambda_runtime::Diagnostic {
    fn from(error: InvokeError) -> Self {
        lambda_runtime::Diagnostic {
            error_type: error.error_type().to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What one invocation used, for its tenant's usage and cost.
#[derive(Clone, Copy, Debug)]
pub struct Usage<'a> {
    /// The payload as received.
    pub payload: &'a str,
    /// Whether this was the environment's first invocation (a tenant environment created).
    pub new_environment: bool,
    /// The function's memory (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: Option<u32>,
    /// `x86_64` or `arm64`.
    pub architecture: &'a str,
    /// How long the guard and the handler took.
    pub duration: std::time::Duration,
}

/// Records an invocation carried: from its answer, or (refused, failed) from its payload.
fn records_carried(result: &Result<Value, InvokeError>, payload: &str) -> usize {
    match result {
        Ok(v) => v["records"].as_array().map_or(1, Vec::len),
        Err(InvokeError::PartialFailure {
            processed,
            duplicates,
            failed,
            skipped,
            ..
        }) => processed + duplicates + failed + skipped,
        Err(_) => crate::envelope::records_carried(payload.as_bytes()),
    }
}

/// The EMF document for one backend invocation: what happened (processed, duplicate, refused,
/// handler error), how long it took, and what it used — `Invocations`, `Records`,
/// `PayloadBytes`, `EnvironmentsCreated`, with `memory_mb` and `architecture` — so each tenant's
/// usage and cost can be summed from the log (the dashboard's Logs Insights query); the tenant
/// is a property, never a dimension.
pub fn invocation_metrics(
    namespace: &str,
    service: &str,
    tenant: Option<&str>,
    request_id: &str,
    result: &Result<Value, InvokeError>,
    usage: &Usage<'_>,
    timestamp_ms: i64,
) -> Value {
    // (processed, duplicates, refused, handler errors, skipped), counted in records.
    let count = |v: &Value, name: &str| v[name].as_u64().unwrap_or(0) as usize;
    let (processed, duplicates, refused, failed, skipped) = match result {
        Ok(v) if v.get("records").is_some() => (
            count(v, "processed"),
            count(v, "duplicates"),
            0,
            count(v, "failed"),
            count(v, "skipped"),
        ),
        Ok(v) if v.get("duplicate").is_some() => (0, 1, 0, 0, 0),
        Ok(_) => (1, 0, 0, 0, 0),
        Err(InvokeError::Refused(_)) => (0, 0, 1, 0, 0),
        Err(
            InvokeError::Handler(_) | InvokeError::InProgress | InvokeError::StoreUnavailable(_),
        ) => (0, 0, 0, 1, 0),
        Err(InvokeError::PartialFailure {
            processed,
            duplicates,
            failed,
            skipped,
            ..
        }) => (*processed, *duplicates, 0, *failed, *skipped),
    };
    crate::metrics::Document::new(namespace, &[("Service", service)])
        .metric("RecordsProcessed", "Count", processed as f64)
        .metric("RecordsDuplicate", "Count", duplicates as f64)
        .metric("InvocationsRefused", "Count", refused as f64)
        .metric("HandlerErrors", "Count", failed as f64)
        .metric("RecordsSkipped", "Count", skipped as f64)
        .metric(
            "ProcessingTime",
            "Milliseconds",
            usage.duration.as_secs_f64() * 1000.0,
        )
        .metric("Invocations", "Count", 1.0)
        .metric(
            "Records",
            "Count",
            records_carried(result, usage.payload) as f64,
        )
        .metric("PayloadBytes", "Bytes", usage.payload.len() as f64)
        .metric(
            "EnvironmentsCreated",
            "Count",
            f64::from(u8::from(usage.new_environment)),
        )
        .property("memory_mb", json!(usage.memory_mb))
        .property("architecture", json!(usage.architecture))
        .property("tenant_id", json!(tenant))
        .property("function_request_id", json!(request_id))
        .property(
            "correlation_id",
            json!(result.as_ref().ok().and_then(|v| v.get("correlationId"))),
        )
        .build(chrono::Utc::now().timestamp_millis().max(timestamp_ms))
}

/// The idempotency store the environment's variables ask for: `BACKEND_IDEMPOTENCY_TABLE` (a
/// DynamoDB table shared by every environment, reached through the SDK's own configuration,
/// `AWS_ENDPOINT_URL_DYNAMODB` included; completed records kept `BACKEND_IDEMPOTENCY_TTL_SECONDS`,
/// default 3,600), else the environment's memory, with a warning: a duplicate that reaches
/// another environment runs again.
pub async fn idempotency_store_from_env() -> Result<Box<dyn IdempotencyStore>, lambda_runtime::Error>
{
    let table = std::env::var("BACKEND_IDEMPOTENCY_TABLE")
        .ok()
        .filter(|t| !t.trim().is_empty());
    let ttl = match std::env::var("BACKEND_IDEMPOTENCY_TTL_SECONDS") {
        Err(_) => idempotency::DEFAULT_TTL_SECONDS,
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                return Err(format!(
                    "BACKEND_IDEMPOTENCY_TTL_SECONDS: expected a positive whole number, got {text:?}"
                )
                .into());
            }
        },
    };
    let Some(table) = table else {
        tracing::warn!(
            message = "BACKEND_IDEMPOTENCY_TABLE is not set: duplicates are recognised within one \
                       execution environment only, and a redelivery that reaches another \
                       environment of the tenant runs again",
        );
        return Ok(Box::new(MemoryStore::default()));
    };
    dynamodb_store(table, ttl).await
}

#[cfg(feature = "dynamodb")]
async fn dynamodb_store(
    table: String,
    ttl: u64,
) -> Result<Box<dyn IdempotencyStore>, lambda_runtime::Error> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    Ok(Box::new(idempotency::DynamoDbStore::new(
        client,
        table,
        std::time::Duration::from_secs(ttl),
    )))
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb_store(
    table: String,
    _ttl: u64,
) -> Result<Box<dyn IdempotencyStore>, lambda_runtime::Error> {
    Err(format!(
        "BACKEND_IDEMPOTENCY_TABLE={table:?}, but this function was built without the \
         DynamoDB store (the `dynamodb` feature of `shared`)"
    )
    .into())
}

/// Runs the Lambda runtime loop with `handler` behind an [`EnvironmentGuard`], logging inside an
/// `invocation` span (`function_request_id`, `xray_trace_id`, `cold_start`, `tenant_id`) and
/// writing one EMF document per invocation to stdout (namespace `BACKEND_METRICS_NAMESPACE`,
/// default `TenantBackend`).
pub async fn run<F, Fut, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(TenantContext, Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, E>> + Send,
    E: Display + Send,
{
    use tracing::Instrument;

    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "backend".into());
    let store = idempotency_store_from_env().await?;
    let guard: &'static EnvironmentGuard =
        Box::leak(Box::new(EnvironmentGuard::with_store(function, store)));
    let handler = &*Box::leak(Box::new(handler));
    let cold: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(true)));
    let namespace: &'static str = Box::leak(
        std::env::var("BACKEND_METRICS_NAMESPACE")
            .unwrap_or_else(|_| "TenantBackend".into())
            .into_boxed_str(),
    );
    let memory_mb: Option<u32> = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|mb| mb.parse().ok());
    let service: &'static str = Box::leak(
        std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|_| "backend".into())
            .into_boxed_str(),
    );
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            let context = &event.context;
            let cold_start = cold.swap(false, Ordering::Relaxed);
            let span = tracing::info_span!(
                "invocation",
                function_request_id = context.request_id.as_str(),
                xray_trace_id = context.xray_trace_id.as_deref(),
                cold_start,
                tenant_id = context.tenant_id.as_deref(),
            );
            let started = std::time::Instant::now();
            let result = guard
                .invoke_until(
                    context.tenant_id.as_deref(),
                    &context.request_id,
                    context.deadline as i64,
                    event.payload.get(),
                    handler,
                )
                .instrument(span.clone())
                .await;
            let took = started.elapsed();
            let usage = Usage {
                payload: event.payload.get(),
                new_environment: cold_start,
                memory_mb,
                architecture: crate::pricing::this_architecture(),
                duration: took,
            };
            let document = invocation_metrics(
                namespace,
                service,
                context.tenant_id.as_deref(),
                &context.request_id,
                &result,
                &usage,
                0,
            );
            span.in_scope(|| {
                tracing::info!(
                    message = "tenant usage",
                    records = document["Records"].as_f64(),
                    payload_bytes = usage.payload.len(),
                    duration_ms = took.as_secs_f64() * 1000.0,
                    new_environment = cold_start,
                    memory_mb,
                );
            });
            println!("{document}");
            crate::telemetry::flush();
            if matches!(result, Err(InvokeError::Refused(GuardError::FailedClosed))) {
                // This environment will serve nobody again: end it shortly after the error is
                // reported, so the platform replaces it instead of failing every later event.
                std::thread::spawn(|| {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    std::process::exit(70);
                });
            }
            result
        },
    ))
    .await
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn envelope(tenant: &str, id: &str) -> String {
        json!({
            "version": 1, "tenantId": tenant, "source": "sqs", "eventSourceArn": "arn:q",
            "id": id, "idempotencyKey": format!("arn:q#{id}"), "arrivedAt": "2026-01-01T00:00:00Z",
            "correlationId": "c1", "payload": {"x": 1}
        })
        .to_string()
    }

    async fn echo(context: TenantContext, envelope: Envelope) -> Result<Value, String> {
        Ok(json!({"seenTenant": context.tenant_id, "payload": envelope.payload.get()}))
    }

    #[tokio::test]
    async fn processes_its_own_tenant() {
        let guard = EnvironmentGuard::default();
        let out = guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), echo)
            .await
            .unwrap();
        assert_eq!(out["status"], "processed");
        assert_eq!(out["tenantId"], "acme");
        assert_eq!(out["result"]["seenTenant"], "acme");
        assert_eq!(guard.tenant().unwrap().as_str(), "acme");
    }

    #[tokio::test]
    async fn refuses_without_a_tenant_and_with_an_invalid_one() {
        let guard = EnvironmentGuard::default();
        let err = guard.invoke(None, "r", &envelope("acme", "m"), echo).await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::NoTenant)));
        let err = guard
            .invoke(Some("a#b"), "r", &envelope("acme", "m"), echo)
            .await;
        assert!(matches!(
            err,
            Err(InvokeError::Refused(GuardError::InvalidTenant(_)))
        ));
    }

    #[tokio::test]
    async fn refuses_an_envelope_for_another_tenant_without_running_the_handler() {
        let guard = EnvironmentGuard::default();
        let ran = AtomicBool::new(false);
        let err = guard
            .invoke(Some("acme"), "r", &envelope("Acme", "m"), |_, _| async {
                ran.store(true, Ordering::SeqCst);
                Ok::<_, String>(Value::Null)
            })
            .await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::TenantMismatch)));
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_second_tenant_makes_the_environment_fail_closed() {
        let guard = EnvironmentGuard::default();
        guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), echo)
            .await
            .unwrap();
        let err = guard
            .invoke(Some("globex"), "r2", &envelope("globex", "m2"), echo)
            .await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::FailedClosed)));
        // From now on it serves nobody, not even its first tenant.
        let err = guard
            .invoke(Some("acme"), "r3", &envelope("acme", "m3"), echo)
            .await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::FailedClosed)));
    }

    #[tokio::test]
    async fn duplicates_are_recognised_and_not_processed_again() {
        let guard = EnvironmentGuard::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let handler = |_: TenantContext, _: Envelope| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(json!({"n": 1}))
        };
        let first = guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), handler)
            .await
            .unwrap();
        let second = guard
            .invoke(Some("acme"), "r2", &envelope("acme", "m1"), handler)
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(first.get("duplicate").is_none());
        assert_eq!(second["duplicate"], true);
        assert_eq!(second["result"], first["result"]);
    }

    #[tokio::test]
    async fn a_duplicate_whose_stored_result_is_unreadable_still_answers_as_one() {
        // The store holds the record completed, but its result could not be read back.
        let store = MemoryStore::default();
        let id = crate::idempotency::record_id(
            "function",
            &TenantId::parse("acme").unwrap(),
            "arn:q#m1",
        );
        assert!(matches!(
            store.claim(&id, 0, 0).await,
            Ok(crate::idempotency::Claim::Acquired)
        ));
        store.complete(&id, &Value::Null, 0).await.unwrap();
        let guard = EnvironmentGuard::with_store("function", Box::new(store));
        let answer = guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), |_, _| async {
                Err::<Value, _>("never runs")
            })
            .await
            .unwrap();
        assert_eq!(answer["duplicate"], true);
        assert_eq!(answer["id"], "m1");
        assert_eq!(answer["result"], Value::Null);
    }

    #[test]
    fn invocation_metrics_are_valid_emf_and_keep_tenants_out_of_dimensions() {
        let ok: Result<Value, InvokeError> = Ok(json!({"correlationId": "c1"}));
        let refused: Result<Value, InvokeError> = Err(GuardError::TenantMismatch.into());
        for result in [ok, refused] {
            let document = invocation_metrics(
                "TenantBackend",
                "backend",
                Some("acme"),
                "r1",
                &result,
                &Usage {
                    payload: r#"{"tenantId":"acme"}"#,
                    new_environment: true,
                    memory_mb: Some(256),
                    architecture: "x86_64",
                    duration: std::time::Duration::from_millis(3),
                },
                0,
            );
            crate::metrics::validate(&document).unwrap();
            assert_eq!(document["tenant_id"], "acme");
            // Usage: one invocation of one record, 19 bytes, in a new environment of 256 MB.
            assert_eq!(document["Invocations"], 1.0);
            assert_eq!(document["Records"], 1.0);
            assert_eq!(document["PayloadBytes"], 19.0);
            assert_eq!(document["EnvironmentsCreated"], 1.0);
            assert_eq!(document["memory_mb"], 256);
            assert_eq!(document["architecture"], "x86_64");
            assert_eq!(
                document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Service"]])
            );
        }
    }

    #[tokio::test]
    async fn a_handler_error_is_a_function_error() {
        let guard = EnvironmentGuard::default();
        let err = guard
            .invoke(Some("acme"), "r", &envelope("acme", "m"), |_, _| async {
                Err::<Value, _>("boom")
            })
            .await;
        assert_eq!(err, Err(InvokeError::Handler("boom".into())));
    }

    fn batch(tenant: &str, records: &[String]) -> String {
        let records: Vec<Value> = records
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect();
        json!({"version": 1, "tenantId": tenant, "records": records}).to_string()
    }

    /// An envelope batch of acme's records with these ids.
    fn acme_batch(ids: &[&str]) -> String {
        let records: Vec<String> = ids.iter().map(|id| envelope("acme", id)).collect();
        batch("acme", &records)
    }

    #[tokio::test]
    async fn a_batch_runs_the_handler_once_per_record_in_order() {
        let guard = EnvironmentGuard::default();
        let seen = Mutex::new(Vec::new());
        let handler = |_: TenantContext, envelope: Envelope| {
            seen.lock().unwrap().push(envelope.id.clone());
            async { Ok::<_, String>(json!({"ok": true})) }
        };
        let payload = acme_batch(&["m3", "m1", "m2"]);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["m3", "m1", "m2"]);
        assert_eq!(out["tenantId"], "acme");
        assert_eq!(out["processed"], 3);
        assert_eq!(out["duplicates"], 0);
        let ids: Vec<_> = out["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            ids,
            [
                ("m3", "processed"),
                ("m1", "processed"),
                ("m2", "processed")
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_with_one_record_of_another_tenant_is_refused_whole() {
        let guard = EnvironmentGuard::default();
        let ran = AtomicBool::new(false);
        let handler = |_: TenantContext, _: Envelope| {
            ran.store(true, Ordering::SeqCst);
            async { Ok::<_, String>(Value::Null) }
        };
        let mixed = batch("acme", &[envelope("acme", "m1"), envelope("globex", "m2")]);
        let err = guard.invoke(Some("acme"), "r", &mixed, handler).await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::TenantMismatch)));
        let other = batch("globex", &[envelope("acme", "m1")]);
        let err = guard.invoke(Some("acme"), "r", &other, handler).await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::TenantMismatch)));
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn duplicates_are_recognised_within_and_across_batches() {
        let guard = EnvironmentGuard::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let handler = |_: TenantContext, _: Envelope| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>(json!({"n": 1})) }
        };
        let first = acme_batch(&["m1", "m1"]);
        let out = guard
            .invoke(Some("acme"), "r1", &first, handler)
            .await
            .unwrap();
        assert_eq!(
            (out["processed"].clone(), out["duplicates"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(out["records"][1]["duplicate"], true);
        // A record once delivered alone is a duplicate in a later batch, and the other way round.
        guard
            .invoke(Some("acme"), "r2", &envelope("acme", "m2"), handler)
            .await
            .unwrap();
        let second = acme_batch(&["m2", "m3"]);
        let out = guard
            .invoke(Some("acme"), "r3", &second, handler)
            .await
            .unwrap();
        assert_eq!(
            (out["processed"].clone(), out["duplicates"].clone()),
            (json!(1), json!(1))
        );
        let again = guard
            .invoke(Some("acme"), "r4", &envelope("acme", "m3"), handler)
            .await
            .unwrap();
        assert_eq!(again["duplicate"], true);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    /// An envelope of acme with `id` and ordering key `key`.
    fn keyed(id: &str, key: &str) -> String {
        let mut envelope: Value = serde_json::from_str(&envelope("acme", id)).unwrap();
        envelope["orderingKey"] = json!(key);
        envelope.to_string()
    }

    fn ordered_batch(ordering: &str, answer: Option<&str>, records: &[String]) -> String {
        let mut batch: Value = serde_json::from_str(&batch("acme", records)).unwrap();
        batch["ordering"] = json!(ordering);
        if let Some(answer) = answer {
            batch["answer"] = json!(answer);
        }
        batch.to_string()
    }

    fn statuses(out: &Value) -> Vec<(String, String)> {
        out["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// `ordering: lanes`: after a record fails, the later records with its ordering key are not
    /// run; the other keys go on. With `answer: per-record` the invocation succeeds and says so.
    #[tokio::test]
    async fn a_failed_record_stops_its_lane_in_the_batch() {
        let guard = EnvironmentGuard::default();
        let ran = Mutex::new(Vec::new());
        let handler = |_: TenantContext, envelope: Envelope| {
            ran.lock().unwrap().push(envelope.id.clone());
            let fail = envelope.id == "a2";
            async move {
                if fail {
                    Err("boom".to_owned())
                } else {
                    Ok(json!({}))
                }
            }
        };
        let records = [
            keyed("a1", "g-a"),
            keyed("a2", "g-a"),
            keyed("b1", "g-b"),
            keyed("a3", "g-a"),
            keyed("b2", "g-b"),
        ];
        let payload = ordered_batch("lanes", Some("per-record"), &records);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        assert_eq!(*ran.lock().unwrap(), ["a1", "a2", "b1", "b2"]);
        let expected = [
            ("a1", "processed"),
            ("a2", "failed"),
            ("b1", "processed"),
            ("a3", "skipped"),
            ("b2", "processed"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(i, s)| (i.to_string(), s.to_string()))
            .collect();
        assert_eq!(statuses(&out), expected);
        assert_eq!(
            (out["failed"].clone(), out["skipped"].clone()),
            (json!(1), json!(1))
        );
        let result: crate::answer::BatchResult = serde_json::from_value(out).unwrap();
        assert!(result.records[3].error.as_deref().unwrap().contains("a2"));
        // Without `answer`, the same batch is a function error naming the failure.
        let guard = EnvironmentGuard::default();
        let payload = ordered_batch("lanes", None, &records);
        let err = guard
            .invoke(Some("acme"), "r2", &payload, handler)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                InvokeError::PartialFailure {
                    failed: 1,
                    skipped: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// `ordering: stream`: after a record fails, no later record of the batch runs.
    #[tokio::test]
    async fn a_failed_record_stops_a_stream_batch() {
        let guard = EnvironmentGuard::default();
        let handler = |_: TenantContext, envelope: Envelope| {
            let fail = envelope.id == "2";
            async move {
                if fail {
                    Err("boom".to_owned())
                } else {
                    Ok(json!({}))
                }
            }
        };
        let records = [keyed("1", "k1"), keyed("2", "k1"), keyed("3", "k2")];
        let payload = ordered_batch("stream", Some("per-record"), &records);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        let got: Vec<_> = statuses(&out).into_iter().map(|(_, s)| s).collect();
        assert_eq!(got, ["processed", "failed", "skipped"]);
    }

    #[tokio::test]
    async fn a_failed_record_fails_the_batch_and_its_retry_runs_only_that_record() {
        let guard = EnvironmentGuard::default();
        let fail_m2 = AtomicBool::new(true);
        let runs = Mutex::new(Vec::new());
        let handler = |_: TenantContext, envelope: Envelope| {
            runs.lock().unwrap().push(envelope.id.clone());
            let fail = envelope.id == "m2" && fail_m2.load(Ordering::SeqCst);
            async move {
                if fail {
                    Err("downstream unavailable".to_owned())
                } else {
                    Ok(json!({}))
                }
            }
        };
        let payload = acme_batch(&["m1", "m2", "m3"]);
        let err = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            InvokeError::PartialFailure {
                processed: 2,
                duplicates: 0,
                failed: 1,
                skipped: 0,
                detail: "m2: downstream unavailable".into(),
            }
        );
        assert_eq!(err.error_type(), "Handler.PartialFailure");
        let document = invocation_metrics(
            "N",
            "backend",
            Some("acme"),
            "r1",
            &Err(err),
            &Usage {
                payload: &payload,
                new_environment: false,
                memory_mb: None,
                architecture: "arm64",
                duration: std::time::Duration::ZERO,
            },
            0,
        );
        assert_eq!(document["RecordsProcessed"], 2.0);
        assert_eq!(document["HandlerErrors"], 1.0);
        assert_eq!(document["Records"], 3.0);
        assert_eq!(document["EnvironmentsCreated"], 0.0);
        assert_eq!(document["PayloadBytes"], payload.len() as f64);
        // Lambda retries the invocation: only m2 runs again.
        fail_m2.store(false, Ordering::SeqCst);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        assert_eq!(
            (out["processed"].clone(), out["duplicates"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(*runs.lock().unwrap(), ["m1", "m2", "m3", "m2"]);
    }
}
