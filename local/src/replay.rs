//! `local-lambda replay`: recorded events straight through the router. Starts the stand-in with
//! the workspace's `backend` as a tenant-isolated function, points the router's real handler (with
//! the real aws-sdk-lambda client) at it, replays recorded events, waits until the async queue has
//! drained, and reports the batch responses and, per tenant, what was routed, rejected and
//! failed, the execution environments used and the backend's results.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use router::InvocationInfo;
use router::config::InvocationType;
use router::engine::BACKEND_ERROR;
use router::{AwsBackend, Config, Outcome, Router};

use crate::service::{FunctionSpec, Service, Settings};

/// The repository root (this crate's parent directory), for default paths.
pub fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the crate sits in the workspace")
        .to_path_buf()
}

/// Router settings used when the environment does not give them: the fixtures' TEST-ONLY JWKS,
/// issuer and audience, and the `backend` function.
pub fn fixture_defaults() -> Vec<(&'static str, String)> {
    vec![
        ("ROUTER_BACKEND_FUNCTION", "backend".into()),
        (
            "ROUTER_JWKS",
            format!(
                "file://{}",
                repository().join("tests/fixtures/jwks.json").display()
            ),
        ),
        (
            "ROUTER_JWT_ISSUER",
            "https://issuer.tenant-router.test".into(),
        ),
        ("ROUTER_JWT_AUDIENCE", "tenant-router".into()),
    ]
}

/// Per-tenant counts of a replay.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TenantSummary {
    /// Records invoked.
    pub routed: usize,
    /// Records rejected.
    pub rejected: usize,
    /// Records failed (reported for redelivery).
    pub failed: usize,
    /// Environments that served the tenant.
    pub environments: BTreeSet<String>,
    /// Records the backend processed: async invocations that succeeded (a tenant batch counts
    /// its records), or `request-response` records it answered as processed.
    pub backend_ok: usize,
    /// Records the backend failed: async invocations that failed after their retries, or
    /// `request-response` records it answered as failed.
    pub backend_failed: usize,
}

/// What a replay did.
#[derive(Debug, Default)]
pub struct Summary {
    /// One response per file (or the error), in order.
    pub responses: Vec<(PathBuf, Result<serde_json::Value, String>)>,
    /// Per tenant (`(none)` for records without one).
    pub tenants: BTreeMap<String, TenantSummary>,
}

/// Processing time of a replay of this repository's recorded fixtures: a second after they were
/// recorded (2026-01-01T00:00:00Z). Tokens of direct EventBridge events are judged at processing
/// time, so a replay of recorded events at a later date needs this to keep their meaning.
pub const FIXTURES_RECORDED_AT_MS: i64 = 1_767_225_601_000;

/// Replays `files` through the router into the stand-in described by `settings`. `at_ms` is the
/// processing time the router sees (milliseconds since the epoch; `None`: the clock).
pub async fn replay(
    settings: Settings,
    files: &[PathBuf],
    budget: Duration,
    at_ms: Option<i64>,
    router_lookup: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<(Summary, Arc<Service>)> {
    let service = Service::new(settings)?;
    let (address, server) =
        crate::api::serve(service.clone(), "127.0.0.1:0".parse().expect("an address")).await?;
    let defaults = fixture_defaults();
    let config = Config::from_lookup(|name| {
        router_lookup(name).or_else(|| {
            defaults
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
    })?;
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "local-lambda",
            ))
            .endpoint_url(format!("http://{address}"))
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let backend = AwsBackend::new(lambda, config.backend_function.clone(), None);
    let router = Router::new(config, backend)?;

    let mut summary = Summary::default();
    for file in files {
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                summary.responses.push((file.clone(), Err(e.to_string())));
                continue;
            }
        };
        let mut info = InvocationInfo::with_budget(budget, router.config().deadline_margin);
        if let Some(at_ms) = at_ms {
            info.now_ms = at_ms;
        }
        match router.route_event(&text, &info).await {
            Ok(report) => {
                // A sync Invoke's outcome is the backend's result; async ones are counted from
                // the async destination records below.
                let sync = report.invocation == Some(InvocationType::RequestResponse);
                for (tenant, outcome) in report.tenants.iter().zip(&report.outcomes) {
                    let entry = summary
                        .tenants
                        .entry(tenant.clone().unwrap_or_else(|| "(none)".into()))
                        .or_default();
                    match outcome {
                        Outcome::Invoked { .. } => {
                            entry.routed += 1;
                            entry.backend_ok += usize::from(sync);
                        }
                        Outcome::Rejected { .. } => entry.rejected += 1,
                        Outcome::Failed { reason, .. } => {
                            entry.failed += 1;
                            entry.backend_failed += usize::from(sync && *reason == BACKEND_ERROR);
                        }
                    }
                }
                summary.responses.push((file.clone(), Ok(report.response)));
            }
            Err(e) => summary.responses.push((file.clone(), Err(e.to_string()))),
        }
    }

    service.drain().await;
    for started in service.pool().started() {
        if let Some(tenant) = started.tenant {
            summary
                .tenants
                .entry(tenant)
                .or_default()
                .environments
                .insert(started.id);
        }
    }
    for record in service.results() {
        let tenant = record["tenantId"].as_str().unwrap_or("(none)").to_owned();
        let entry = summary.tenants.entry(tenant).or_default();
        let records = record["requestPayload"]["records"]
            .as_array()
            .map_or(1, Vec::len);
        if record["requestContext"]["condition"] == "Success" {
            entry.backend_ok += records;
        } else {
            entry.backend_failed += records;
        }
    }
    server.abort();
    service.pool().stop_all();
    Ok((summary, service))
}

/// Prints the responses (one line per file) and the per-tenant table.
pub fn print(summary: &Summary, out: &mut impl Write) -> std::io::Result<()> {
    for (file, response) in &summary.responses {
        match response {
            Ok(response) => writeln!(out, "{}  {response}", file.display())?,
            Err(error) => writeln!(out, "{}  error: {error}", file.display())?,
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "{:<16} {:>7} {:>9} {:>7} {:>13} {:>11} {:>15}",
        "tenant", "routed", "rejected", "failed", "environments", "backend ok", "backend failed"
    )?;
    for (tenant, t) in &summary.tenants {
        // Tenant ids with spaces are quoted (`"acme "` is not `acme`); long ones are shortened.
        let mut name = if tenant.contains(' ') {
            format!("{tenant:?}")
        } else {
            tenant.escape_debug().to_string()
        };
        if name.chars().count() > 16 {
            name = name.chars().take(15).chain(std::iter::once('…')).collect();
        }
        writeln!(
            out,
            "{:<16} {:>7} {:>9} {:>7} {:>13} {:>11} {:>15}",
            name,
            t.routed,
            t.rejected,
            t.failed,
            t.environments.len(),
            t.backend_ok,
            t.backend_failed
        )?;
    }
    Ok(())
}

/// The backend binary built beside this one (`target/<profile>/backend`).
pub fn sibling_backend() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("backend")))
        .unwrap_or_else(|| PathBuf::from("backend"))
}

/// The stand-in settings for a replay: `backend` as a per-tenant function with the repository's
/// tenant configurations.
pub fn settings_for(backend: PathBuf) -> Settings {
    Settings {
        functions: vec![FunctionSpec {
            per_tenant: true,
            ..FunctionSpec::new("backend", backend)
        }],
        variables: vec![
            (
                "BACKEND_TENANT_CONFIG_DIR".into(),
                repository().join("backend/tenants").display().to_string(),
            ),
            ("AWS_LAMBDA_LOG_FORMAT".into(), "JSON".into()),
        ],
        async_retry_delays: [Duration::from_millis(200), Duration::from_millis(400)],
        ..Settings::default()
    }
}
