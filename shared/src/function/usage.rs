//! What one invocation of a tenant-isolated function used and what became of it, as one EMF
//! document per invocation (`Invocations`, `Records`, `PayloadBytes`, `EnvironmentsCreated`, with
//! `memory_mb` and `architecture`), so each tenant's usage and cost can be summed from the log;
//! the tenant is a property, never a dimension.

use serde_json::{Value, json};

use super::error::InvokeError;

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
            InvokeError::Handler(_)
            | InvokeError::InProgress
            | InvokeError::StoreUnavailable(_)
            | InvokeError::CredentialsUnavailable(_),
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
