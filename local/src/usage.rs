//! Usage and cost per tenant from the stand-in's invocation log (`local-lambda usage --log FILE`):
//! the same computation as the dashboard's Logs Insights query, at the list prices of
//! `shared/pricing.json` ([`shared::pricing`]).
//!
//! Every attempt that ran in an environment is a billed request. Its duration is billed in whole
//! milliseconds, at least 1, at the function's memory (`memoryMb`) and architecture. An attempt
//! that started an environment of a tenant-isolated function is a tenant environment created.
//! Invocations without a tenant (the router) are shared out among the tenants by the records
//! each tenant's invocations carried.

use std::collections::BTreeMap;

use shared::pricing::{Prices, gb_seconds};

use crate::service::LogEntry;

/// One tenant's usage and cost.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TenantUsage {
    /// The tenant.
    pub tenant_id: String,
    /// Billed requests (attempts that ran).
    pub invocations: u64,
    /// Records those requests carried.
    pub records: u64,
    /// Bytes of their payloads.
    pub payload_bytes: u64,
    /// Billed duration, in milliseconds.
    pub billed_ms: u64,
    /// GB-seconds.
    pub gb_seconds: f64,
    /// Tenant environments created.
    pub environments: u64,
    /// Requests, duration and environments at list prices.
    pub cost: f64,
    /// Its share of the functions without a tenant (the router), by records.
    pub shared_cost: f64,
    /// `cost` + `shared_cost`.
    pub total: f64,
}

/// What the functions without a tenant (the router) used.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedUsage {
    /// Billed requests.
    pub invocations: u64,
    /// GB-seconds.
    pub gb_seconds: f64,
    /// Their cost.
    pub cost: f64,
    /// That cost per record delivered to a tenant.
    pub cost_per_record: f64,
}

/// Usage and cost per tenant, and the shared part.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    /// Per tenant, by tenant id.
    pub tenants: Vec<TenantUsage>,
    /// The invocations without a tenant.
    pub shared: SharedUsage,
    /// The prices' date, region and currency.
    pub prices: String,
}

/// Computes the report from invocation log entries.
pub fn compute(entries: &[LogEntry], prices: &Prices) -> Result<UsageReport, String> {
    let mut tenants: BTreeMap<String, TenantUsage> = BTreeMap::new();
    let mut shared = SharedUsage::default();
    for entry in entries.iter().filter(|e| e.environment_id.is_some()) {
        let billed_ms = entry.duration_ms.max(1);
        let gb_s = gb_seconds(billed_ms as f64, entry.memory_mb);
        let environments = u64::from(entry.cold_start && entry.tenant_id.is_some());
        let cost = prices
            .cost(1, gb_s, environments, entry.memory_mb, &entry.architecture)
            .ok_or_else(|| {
                format!(
                    "request {}: no price for architecture {:?}",
                    entry.request_id, entry.architecture
                )
            })?;
        match &entry.tenant_id {
            Some(tenant) => {
                let usage = tenants
                    .entry(tenant.clone())
                    .or_insert_with(|| TenantUsage {
                        tenant_id: tenant.clone(),
                        ..TenantUsage::default()
                    });
                usage.invocations += 1;
                usage.records += entry.records as u64;
                usage.payload_bytes += entry.payload_bytes as u64;
                usage.billed_ms += billed_ms;
                usage.gb_seconds += gb_s;
                usage.environments += environments;
                usage.cost += cost.total();
            }
            None => {
                shared.invocations += 1;
                shared.gb_seconds += gb_s;
                shared.cost += cost.total();
            }
        }
    }
    let records: u64 = tenants.values().map(|t| t.records).sum();
    if records > 0 {
        shared.cost_per_record = shared.cost / records as f64;
    }
    for usage in tenants.values_mut() {
        usage.shared_cost = shared.cost_per_record * usage.records as f64;
        usage.total = usage.cost + usage.shared_cost;
    }
    Ok(UsageReport {
        tenants: tenants.into_values().collect(),
        shared,
        prices: format!(
            "{} list prices of {} ({})",
            prices.region, prices.as_of, prices.currency
        ),
    })
}

/// Reads an invocation log (JSON lines); a line that is not an entry is an error naming it.
pub fn read_log(text: &str) -> Result<Vec<LogEntry>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| serde_json::from_str(line).map_err(|e| format!("line {}: {e}", n + 1)))
        .collect()
}

/// The report as a table.
pub fn render(report: &UsageReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:>8} {:>8} {:>12} {:>10} {:>5} {:>12} {:>12} {:>12}",
        "tenant", "invokes", "records", "bytes", "GB-s", "envs", "backend $", "router $", "total $"
    );
    for t in &report.tenants {
        let _ = writeln!(
            out,
            "{:<20} {:>8} {:>8} {:>12} {:>10.3} {:>5} {:>12.9} {:>12.9} {:>12.9}",
            t.tenant_id,
            t.invocations,
            t.records,
            t.payload_bytes,
            t.gb_seconds,
            t.environments,
            t.cost,
            t.shared_cost,
            t.total
        );
    }
    let _ = writeln!(
        out,
        "shared (no tenant): {} invokes, {:.3} GB-s, ${:.9} = ${:.12} per record; {}",
        report.shared.invocations,
        report.shared.gb_seconds,
        report.shared.cost,
        report.shared.cost_per_record,
        report.prices
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: &str, tenant: Option<&str>, ms: u64, memory: u32, cold: bool) -> String {
        serde_json::json!({
            "timestamp": "2026-12-01T00:00:00Z", "requestId": "r", "function": function,
            "tenantId": tenant, "environmentId": "e1", "pid": 1, "invocationType": "Event",
            "attempt": 1, "status": "success", "errorType": null, "coldStart": cold,
            "durationMs": ms, "memoryMb": memory, "architecture": "x86_64",
            "payloadBytes": 100, "records": if function == "router" { 3 } else { 1 },
        })
        .to_string()
    }

    #[test]
    fn usage_and_cost_equal_a_hand_computation() {
        let log = [
            // acme: two invocations at 1,024 MB, 200 ms (new environment) and 0 ms (billed 1).
            entry("backend", Some("acme"), 200, 1024, true),
            entry("backend", Some("acme"), 0, 1024, false),
            // globex: one at 1,024 MB, 1,000 ms, new environment.
            entry("backend", Some("globex"), 1000, 1024, true),
            // The router: one invocation, 512 MB, 100 ms (a cold start, but no tenant).
            entry("router", None, 100, 512, true),
            // Throttled: never ran, not billed.
            serde_json::json!({
                "timestamp": "t", "requestId": "x", "function": "backend", "tenantId": "acme",
                "environmentId": null, "pid": null, "invocationType": "Event", "attempt": 1,
                "status": "throttled", "errorType": "x", "coldStart": false, "durationMs": 0,
                "memoryMb": 1024, "architecture": "x86_64", "payloadBytes": 100, "records": 1,
            })
            .to_string(),
        ]
        .join("\n");
        let report = compute(&read_log(&log).unwrap(), &Prices::list()).unwrap();
        let (acme, globex) = (&report.tenants[0], &report.tenants[1]);
        assert_eq!(
            (acme.invocations, acme.records, acme.environments),
            (2, 2, 1)
        );
        assert_eq!((acme.billed_ms, acme.payload_bytes), (201, 200));
        // By hand, at $0.20 per million requests, $0.0000166667 per GB-s, $0.000167 per GB per
        // environment: acme 2 requests = $0.0000004; 0.201 GB-s = $0.00000335000670;
        // 1 environment at 1 GB = $0.000167.
        let acme_cost = 0.000_000_4 + 0.201 * 0.000_016_666_7 + 0.000_167;
        assert!((acme.cost - acme_cost).abs() < 1e-15, "{acme:?}");
        // globex: 1 request + 1 GB-s + 1 environment.
        let globex_cost = 0.000_000_2 + 0.000_016_666_7 + 0.000_167;
        assert!((globex.cost - globex_cost).abs() < 1e-15, "{globex:?}");
        // The router: 1 request + 0.1 s × 0.5 GB = 0.05 GB-s, no environment charge; 3 records
        // delivered (acme 2, globex 1), so $ per record = cost / 3.
        let router_cost = 0.000_000_2 + 0.05 * 0.000_016_666_7;
        assert_eq!(report.shared.invocations, 1);
        assert!((report.shared.cost - router_cost).abs() < 1e-15);
        assert!((acme.shared_cost - router_cost * 2.0 / 3.0).abs() < 1e-15);
        assert!((globex.shared_cost - router_cost / 3.0).abs() < 1e-15);
        assert!((acme.total - (acme_cost + router_cost * 2.0 / 3.0)).abs() < 1e-15);
        let table = render(&report);
        assert!(
            table.contains("acme") && table.contains("globex"),
            "{table}"
        );
    }

    #[test]
    fn a_bad_line_is_named() {
        let err = read_log("{}\n").unwrap_err();
        assert!(err.starts_with("line 1:"), "{err}");
    }
}
