//! The router's metrics: one CloudWatch EMF document per batch (never per record), with records by
//! outcome and reason, Invoke attempts, retries and latency, and the batch duration. Every Invoke
//! latency is kept: past 100 (the most one document may carry) further documents carry the rest,
//! so `InvokeLatency`'s SampleCount and Sum are exact. Dimensions are
//! `Service` and `Source` only; tenants go into the `tenants` property (metadata), because every
//! dimension value is a billed metric.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shared::metrics::Document;

use crate::outcome::Outcome;
use crate::report::BatchReport;

/// Most tenants listed in a document's `tenants` property (a log event is at most 256 KB).
pub const MAX_TENANTS_LISTED: usize = 500;

/// The EMF documents describing one batch: one, plus one per further 100 Invoke latencies.
pub fn batch_documents(report: &BatchReport, namespace: &str, timestamp_ms: i64) -> Vec<Value> {
    let service = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "router".into());
    let source = report.source.map(|s| s.as_str()).unwrap_or("none");
    let count =
        |f: &dyn Fn(&Outcome) -> bool| report.outcomes.iter().filter(|o| f(o)).count() as f64;
    let mut document = Document::new(namespace, &[("Service", &service), ("Source", source)])
        .metric("RecordsReceived", "Count", report.outcomes.len() as f64)
        .metric(
            "RecordsInvoked",
            "Count",
            count(&|o| matches!(o, Outcome::Invoked { .. })),
        )
        .metric(
            "RecordsRejected",
            "Count",
            count(&|o| matches!(o, Outcome::Rejected { .. })),
        )
        .metric(
            "RecordsQuarantined",
            "Count",
            count(&|o| {
                matches!(
                    o,
                    Outcome::Rejected {
                        quarantined: true,
                        ..
                    }
                )
            }),
        )
        .metric(
            "RecordsFailed",
            "Count",
            count(&|o| matches!(o, Outcome::Failed { .. })),
        )
        .metric("RecordsReported", "Count", count(&|o| o.is_reported()))
        .metric("InvokeAttempts", "Count", report.attempts as f64)
        .metric("InvokeRetries", "Count", report.retries as f64)
        .metric(
            "BatchDuration",
            "Milliseconds",
            report.duration.as_secs_f64() * 1000.0,
        )
        .values("InvokeLatency", "Milliseconds", &report.latencies_ms);

    // One metric per reason present (a small, fixed set of names).
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for outcome in &report.outcomes {
        if let Some(reason) = outcome.reason() {
            *reasons
                .entry(format!("{}.{reason}", outcome.name()))
                .or_default() += 1;
        }
    }
    for (name, n) in &reasons {
        document = document.metric(name, "Count", *n as f64);
    }

    let mut tenants: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for (tenant, outcome) in report.tenants.iter().zip(&report.outcomes) {
        let Some(tenant) = tenant else { continue };
        let entry = tenants.entry(tenant.as_str()).or_default();
        match outcome {
            Outcome::Invoked { .. } => entry[0] += 1,
            Outcome::Rejected { .. } => entry[1] += 1,
            Outcome::Failed { .. } => entry[2] += 1,
        }
    }
    let truncated = tenants.len() > MAX_TENANTS_LISTED;
    let listed: serde_json::Map<String, Value> = tenants
        .into_iter()
        .take(MAX_TENANTS_LISTED)
        .map(|(tenant, [invoked, rejected, failed])| {
            (
                tenant.to_owned(),
                json!({"invoked": invoked, "rejected": rejected, "failed": failed}),
            )
        })
        .collect();
    document
        .property("tenants", Value::Object(listed))
        .property("tenantsTruncated", Value::Bool(truncated))
        .build_all(timestamp_ms)
}
