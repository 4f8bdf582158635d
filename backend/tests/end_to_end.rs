//! End to end, on one machine: recorded and generated events through the router's real handler and
//! the real aws-sdk-lambda client into the Lambda stand-in (`local`), whose tenant-isolated
//! execution environments are real `backend` processes. The invocation log and the results file
//! (async destination records) are the evidence.
//!
//! These tests live in the backend crate because they need its binary (`CARGO_BIN_EXE_backend`).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use cross_crate_tests::{TestKey, fixtures_dir, workload_files};
use local::replay::{FIXTURES_RECORDED_AT_MS, replay, settings_for};
use local::service::{Faults, Service, Settings};
use serde_json::{Value, json};
use testkit::{lambda_client, scratch};

/// The recorded fixtures are replayed at the time they were recorded.
const AT: Option<i64> = Some(FIXTURES_RECORDED_AT_MS);

fn backend() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_backend"))
}

fn settings() -> Settings {
    let mut settings = settings_for(backend());
    settings.async_retry_delays = [Duration::from_millis(20), Duration::from_millis(40)];
    settings.environment_output = Some(scratch("environments.log"));
    settings.log = Some(scratch("invocations.jsonl"));
    settings.results = Some(scratch("results.jsonl"));
    settings
}

fn lookup(overrides: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |name| map.get(name).cloned()
}

/// Every record id the backend processed successfully, with the tenant of its environment. An
/// async result carries one envelope or, with `ROUTER_DELIVERY=tenant-batch`, an envelope batch.
fn delivered(service: &Service) -> BTreeMap<String, String> {
    let mut delivered = BTreeMap::new();
    for r in service
        .results()
        .into_iter()
        .filter(|r| r["requestContext"]["condition"] == "Success")
    {
        // Lambda's success record has no `functionError` key at all.
        assert!(r["responseContext"].get("functionError").is_none(), "{r}");
        let invoked_tenant = r["tenantId"].as_str().unwrap().to_owned();
        let (requests, responses) = match r["requestPayload"].get("records") {
            Some(records) => {
                assert_eq!(
                    r["requestPayload"]["tenantId"],
                    invoked_tenant.as_str(),
                    "{r}"
                );
                assert_eq!(
                    r["responsePayload"]["tenantId"],
                    invoked_tenant.as_str(),
                    "{r}"
                );
                let responses = r["responsePayload"]["records"].as_array().unwrap().clone();
                (records.as_array().unwrap().clone(), responses)
            }
            None => (
                vec![r["requestPayload"].clone()],
                vec![r["responsePayload"].clone()],
            ),
        };
        assert_eq!(
            requests.len(),
            responses.len(),
            "one result per record: {r}"
        );
        let batch = r["requestPayload"].get("records").is_some();
        for (request, response) in requests.iter().zip(&responses) {
            assert_eq!(request["tenantId"], invoked_tenant.as_str(), "{r}");
            // One id finds the record end to end: the backend returns the envelope's.
            assert_eq!(response["id"], request["id"], "{r}");
            if batch {
                // A batch's results are compact: id, status, error, duplicate.
                assert!(response.get("result").is_none(), "{r}");
            } else {
                assert_eq!(response["tenantId"], invoked_tenant.as_str(), "{r}");
                assert_eq!(response["correlationId"], request["correlationId"], "{r}");
            }
            delivered.insert(
                request["id"].as_str().unwrap().to_owned(),
                invoked_tenant.clone(),
            );
        }
    }
    delivered
}

fn assert_one_tenant_per_environment(service: &Service) {
    let mut tenants_of: HashMap<String, BTreeSet<Option<String>>> = HashMap::new();
    for entry in service.entries() {
        if let Some(environment) = entry.environment_id {
            tenants_of
                .entry(environment)
                .or_default()
                .insert(entry.tenant_id);
        }
    }
    assert!(!tenants_of.is_empty());
    for (environment, tenants) in &tenants_of {
        assert_eq!(tenants.len(), 1, "{environment} served {tenants:?}");
    }
    for started in service.pool().started() {
        assert!(started.tenant.is_some(), "{started:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_records_of_five_tenants_reach_only_their_own_environments() {
    let files = workload_files(2, 100, 5, 200);
    let settings = settings();
    let (log, results) = (
        settings.log.clone().unwrap(),
        settings.results.clone().unwrap(),
    );
    let (summary, service) = replay(settings, &files, Duration::from_secs(60), AT, lookup(&[]))
        .await
        .unwrap();
    for (file, response) in &summary.responses {
        assert_eq!(
            response.as_ref().unwrap(),
            &json!({"batchItemFailures": []}),
            "{file:?}"
        );
    }
    let delivered = delivered(&service);
    assert_eq!(
        delivered.len(),
        200,
        "every valid record reached the backend"
    );
    assert_one_tenant_per_environment(&service);
    assert_eq!(summary.tenants.len(), 5);
    for (tenant, t) in &summary.tenants {
        assert_eq!(
            (t.routed, t.backend_ok, t.backend_failed),
            (40, 40, 0),
            "{tenant}"
        );
        assert!(!t.environments.is_empty());
    }
    // The invocation log and the results are on disk too, one JSON line each.
    let lines = std::fs::read_to_string(log).unwrap();
    assert_eq!(lines.lines().count(), service.entries().len());
    for line in lines.lines() {
        let entry: Value = serde_json::from_str(line).unwrap();
        for field in [
            "requestId",
            "function",
            "tenantId",
            "environmentId",
            "pid",
            "invocationType",
            "attempt",
            "status",
            "durationMs",
        ] {
            assert!(entry.get(field).is_some(), "{field} missing in {line}");
        }
        assert_eq!(entry["invocationType"], "Event");
    }
    assert_eq!(
        std::fs::read_to_string(results).unwrap().lines().count(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_fixtures_replay_as_the_main_job_does() {
    let mut files = Vec::new();
    for source in ["sqs", "kinesis", "dynamodb", "eventbridge"] {
        let mut found: Vec<_> = std::fs::read_dir(fixtures_dir().join(source))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        found.sort();
        files.extend(found);
    }
    let (summary, service) = replay(settings(), &files, Duration::from_secs(60), AT, lookup(&[]))
        .await
        .unwrap();
    assert!(summary.responses.iter().all(|(_, r)| r.is_ok()));
    assert_one_tenant_per_environment(&service);
    let routed: usize = summary.tenants.values().map(|t| t.routed).sum();
    let ok: usize = summary.tenants.values().map(|t| t.backend_ok).sum();
    assert_eq!(
        routed, ok,
        "every routed record was processed by its tenant's backend"
    );
    assert!(routed >= 30);
    let mut out = Vec::new();
    local::replay::print(&summary, &mut out).unwrap();
    let table = String::from_utf8(out).unwrap();
    assert!(table.contains("tenant") && table.contains("environments") && table.contains("acme"));
}

async fn stand_in(settings: Settings) -> (Arc<Service>, aws_sdk_lambda::Client) {
    let service = Service::new(settings).unwrap();
    let (address, _) = local::api::serve(service.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (service, lambda_client(&format!("http://{address}")))
}

fn envelope(tenant: &str, id: &str, item: Value) -> String {
    testkit::envelope(tenant, id, json!({ "item": item })).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_direct_invoke_is_refused_by_the_backend() {
    let (service, client) = stand_in(settings()).await;
    // Header says acme, envelope says globex: the backend refuses and processes nothing.
    let output = client
        .invoke()
        .function_name("backend")
        .tenant_id("acme")
        .payload(Blob::new(envelope(
            "globex",
            "forged-1",
            json!({"title": "x"}),
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(output.function_error(), Some("Unhandled"));
    let body = String::from_utf8(output.payload().unwrap().as_ref().to_vec()).unwrap();
    assert!(body.contains("does not match"), "{body}");
    assert!(body.contains("Tenant.Mismatch"), "{body}");
    // The same environment still serves acme's own records.
    let output = client
        .invoke()
        .function_name("backend")
        .tenant_id("acme")
        .payload(Blob::new(envelope("acme", "own-1", json!({"title": "x"}))))
        .send()
        .await
        .unwrap();
    assert_eq!(output.function_error(), None);
    let result: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    assert_eq!(result["result"]["item"]["title"], "[ACME] x");
    assert_eq!(result["correlationId"], "corr-own-1");
    assert_eq!(service.pool().started().len(), 1);
    service.pool().stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_concurrency_limit_async_invokes_wait_in_the_queue_and_everything_is_delivered() {
    // Concurrency 2: at most two environments busy, and (tenant isolation's quota, 2,500 per
    // 1,000 concurrency) at most five alive for the tenant-isolated backend.
    let mut settings = settings();
    settings.concurrency = 2;
    let files = workload_files(1, 60, 8, 200);
    let (summary, service) = replay(settings, &files, Duration::from_secs(120), AT, lookup(&[]))
        .await
        .unwrap();
    assert_eq!(
        summary.responses[0].1.as_ref().unwrap(),
        &json!({"batchItemFailures": []})
    );
    let entries = service.entries();
    let count = |status: &str| entries.iter().filter(|e| e.status == status).count();
    assert!(
        count("waiting-for-capacity") > 0,
        "the limit was reached and async events waited in the queue"
    );
    assert_eq!(
        count("throttled"),
        0,
        "an async Invoke is never refused for capacity"
    );
    assert_eq!(delivered(&service).len(), 60);
    assert_one_tenant_per_environment(&service);
    let started = service.pool().started().len();
    assert!(
        started > 5,
        "eight tenants on a cap of five environments: environments were recycled ({started})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_injected_faults_nothing_is_lost() {
    fault_run(2, 100, 8, 64, "record").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenant_batches_reach_only_their_own_environments_and_nothing_is_lost_under_faults() {
    let (records, results, attempts) = fault_run(4, 100, 8, 64, "tenant-batch").await;
    assert_eq!(records, 400);
    // One envelope batch per tenant per file, plus the retries of injected faults: far fewer
    // Invokes than records.
    assert!(results <= 4 * 8, "{results} async results");
    assert!(attempts < 100, "{attempts} attempts for {records} records");
}

/// The full-size fault and load run of docs/reliability.md: `LOAD_BATCHES` files of `LOAD_BATCH`
/// records over `LOAD_TENANTS` tenants (default 10 × 1,000 over 1,000), at most
/// `LOAD_ENVIRONMENTS` environments (default 64), 10% of Invokes answered 429 and 5% 500.
/// `cargo test --release -p backend --test end_to_end -- --ignored --nocapture full_size`
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long; run by hand, see docs/reliability.md"]
async fn full_size_fault_and_load_run() {
    let get = |name: &str, default: usize| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let started = std::time::Instant::now();
    let (records, results, attempts) = fault_run(
        get("LOAD_BATCHES", 10),
        get("LOAD_BATCH", 1000),
        get("LOAD_TENANTS", 1000),
        get("LOAD_ENVIRONMENTS", 64),
        &std::env::var("LOAD_DELIVERY").unwrap_or_else(|_| "record".into()),
    )
    .await;
    eprintln!(
        "full-size run: {records} records reconciled, {results} async results, {attempts} \
         logged attempts, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Runs a fault-injected replay and reconciles it; returns (records, results, log entries).
async fn fault_run(
    batches: usize,
    per_batch: usize,
    tenants: usize,
    environments: usize,
    delivery: &str,
) -> (usize, usize, usize) {
    let mut settings = settings();
    settings.faults = Faults::parse("429:0.1,500:0.05").unwrap();
    settings.seed = 7;
    settings.concurrency = environments;
    let files = workload_files(batches, per_batch, tenants, 200);
    let total = batches * per_batch;
    let (summary, service) = replay(
        settings,
        &files,
        Duration::from_secs(600),
        AT,
        lookup(&[
            ("ROUTER_RETRY_MAX_ATTEMPTS", "8"),
            ("ROUTER_RETRY_BASE_DELAY_MS", "2"),
            ("ROUTER_RETRY_MAX_DELAY_MS", "10"),
            ("ROUTER_DELIVERY", delivery),
        ]),
    )
    .await
    .unwrap();
    let mut reported = BTreeSet::new();
    for (_, response) in &summary.responses {
        for failure in response.as_ref().unwrap()["batchItemFailures"]
            .as_array()
            .unwrap()
        {
            reported.insert(failure["itemIdentifier"].as_str().unwrap().to_owned());
        }
    }
    let delivered = delivered(&service);
    let injected = service
        .entries()
        .iter()
        .filter(|e| e.status.starts_with("injected-"))
        .count();
    assert!(
        injected > 0 && injected * 20 >= service.entries().len(),
        "faults were injected ({injected} of {} attempts)",
        service.entries().len()
    );
    // Reconcile: every record was delivered or reported, never both lost.
    let all: BTreeSet<String> = files
        .iter()
        .flat_map(|f| {
            let event: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            event["Records"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["messageId"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(all.len(), total);
    for id in &all {
        assert!(
            delivered.contains_key(id) || reported.contains(id),
            "{id} was lost"
        );
    }
    // Each accepted Invoke (202) produced exactly one async result, and no record was carried
    // by two of them.
    let carried: usize = service
        .results()
        .iter()
        .map(|r| {
            r["requestPayload"]["records"]
                .as_array()
                .map_or(1, Vec::len)
        })
        .sum();
    assert_eq!(carried, delivered.len());
    assert_one_tenant_per_environment(&service);
    (total, service.results().len(), service.entries().len())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_function_errors_are_retried_twice_then_reach_the_failure_destination() {
    let (service, client) = stand_in(settings()).await;
    // No to-do item: the backend's handler fails.
    let payload = testkit::envelope("acme", "bad-1", json!([1, 2])).to_string();
    let output = client
        .invoke()
        .function_name("backend")
        .invocation_type(InvocationType::Event)
        .tenant_id("acme")
        .payload(Blob::new(payload))
        .send()
        .await
        .unwrap();
    assert_eq!(output.status_code(), 202);
    service.drain().await;
    let results = service.results();
    assert_eq!(results.len(), 1);
    assert_eq!(
        results[0]["requestContext"]["condition"],
        "RetriesExhausted"
    );
    assert_eq!(results[0]["requestContext"]["approximateInvokeCount"], 3);
    assert_eq!(results[0]["responseContext"]["functionError"], "Unhandled");
    let attempts: Vec<u32> = service.entries().iter().map(|e| e.attempt).collect();
    assert_eq!(attempts, [1, 2, 3]);
    service.pool().stop_all();
}

/// A FIFO SQS event: `records` as `(message id, group, tenant, item)`, in batch order.
fn fifo_event(records: &[(String, String, String, Value)]) -> Value {
    use cross_crate_tests::{T0_MS, body, claims, into_fifo, sign, sqs_event, sqs_record};
    let batch = records
        .iter()
        .enumerate()
        .map(|(sequence, (id, group, tenant, item))| {
            let token = sign(TestKey::Es256, &claims(tenant));
            let record = sqs_record(id, &body(tenant, &token, item.clone()), T0_MS);
            into_fifo(record, group, sequence as u64 + 1)
        })
        .collect();
    sqs_event(batch)
}

/// The record ids each tenant's environments processed, in the order their output reached the
/// environments log. A record's line is written before its Invoke is answered, and with
/// `request-response` the next record of its group is sent only after that answer, so the log's
/// order is the order of processing.
fn processed_in_order(log: &std::path::Path) -> BTreeMap<String, Vec<String>> {
    let mut processed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let Some((_, json)) = line.split_once("] ") else {
            continue;
        };
        let Ok(entry) = serde_json::from_str::<Value>(json) else {
            continue;
        };
        if entry["message"] == "record processed" {
            processed
                .entry(entry["tenant_id"].as_str().unwrap().to_owned())
                .or_default()
                .push(entry["record_id"].as_str().unwrap().to_owned());
        }
    }
    processed
}

/// Replays `event` (written to a scratch file `name`) with the router settings `overrides`, and
/// returns the summary, the stand-in and its environments' log.
async fn replay_event(
    name: &str,
    event: &Value,
    overrides: &[(&str, &str)],
) -> (local::replay::Summary, Arc<Service>, PathBuf) {
    let file = scratch(name);
    std::fs::write(&file, event.to_string()).unwrap();
    let settings = settings();
    let output = settings.environment_output.clone().unwrap();
    let (summary, service) = replay(
        settings,
        &[file],
        Duration::from_secs(60),
        AT,
        lookup(overrides),
    )
    .await
    .unwrap();
    (summary, service, output)
}

/// `request-response`: a FIFO group's records run at the backend one after another, in order:
/// each tenant (one group each) is served by a single environment — a second Invoke of the group
/// while one ran would have started another — and its environment processed the group in batch
/// order. (Broken variant tried: the same batch with `ROUTER_INVOCATION_TYPE=event` runs each
/// group in two or more environments at once, and the test fails.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_response_keeps_fifo_order_and_one_at_a_time_at_the_backend() {
    let tenants = ["acme", "globex", "initech", "umbrella"];
    let records: Vec<_> = (0..48)
        .map(|i| {
            let tenant = tenants[i % tenants.len()];
            (
                format!("{tenant}-{i:02}"),
                format!("group-{tenant}"),
                tenant.to_owned(),
                json!({"title": format!("item {i}")}),
            )
        })
        .collect();
    let (summary, service, output) = replay_event(
        "fifo-request-response.json",
        &fifo_event(&records),
        &[("ROUTER_INVOCATION_TYPE", "sqs-fifo=request-response")],
    )
    .await;
    assert_eq!(
        summary.responses[0].1.as_ref().unwrap(),
        &json!({"batchItemFailures": []})
    );
    let entries = service.entries();
    assert_eq!(entries.len(), 48);
    assert!(
        entries
            .iter()
            .all(|e| e.invocation_type == "RequestResponse")
    );
    assert_one_tenant_per_environment(&service);
    let processed = processed_in_order(&output);
    for tenant in tenants {
        let t = &summary.tenants[tenant];
        assert_eq!((t.routed, t.backend_ok), (12, 12), "{tenant}");
        assert_eq!(t.environments.len(), 1, "{tenant}: {:?}", t.environments);
        let expected: Vec<String> = records
            .iter()
            .filter(|(_, _, owner, _)| owner == tenant)
            .map(|(id, ..)| id.clone())
            .collect();
        assert_eq!(processed[tenant], expected, "{tenant}");
    }
}

/// `tenant-batch` + `request-response`: the backend answers per record; a record it fails and
/// the later records of its FIFO group (which it does not run) are exactly the batch item
/// failures, and the other group goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_record_results_of_a_tenant_batch_become_the_batch_item_failures() {
    let ok = |i: u32| json!({"title": format!("item {i}")});
    // The backend refuses an item that is not an object (EnrichError::NoItem).
    let failing = json!("not an item");
    let spec = [
        ("a1", "g-a", "acme", ok(1)),
        ("b1", "g-b", "acme", ok(2)),
        ("a2", "g-a", "acme", failing),
        ("b2", "g-b", "acme", ok(3)),
        ("a3", "g-a", "acme", ok(4)),
        ("c1", "g-c", "globex", ok(5)),
    ];
    let records: Vec<_> = spec
        .iter()
        .map(|(id, group, tenant, item)| {
            (
                id.to_string(),
                group.to_string(),
                tenant.to_string(),
                item.clone(),
            )
        })
        .collect();
    let (summary, service, output) = replay_event(
        "fifo-tenant-batch-request-response.json",
        &fifo_event(&records),
        &[
            ("ROUTER_INVOCATION_TYPE", "request-response"),
            ("ROUTER_DELIVERY", "tenant-batch"),
        ],
    )
    .await;
    assert_eq!(
        summary.responses[0].1.as_ref().unwrap(),
        &json!({"batchItemFailures": [{"itemIdentifier": "a2"}, {"itemIdentifier": "a3"}]})
    );
    // Two Invokes: one batch per tenant.
    assert_eq!(service.entries().len(), 2);
    let processed = processed_in_order(&output);
    assert_eq!(processed["acme"], ["a1", "b1", "b2"]);
    assert_eq!(processed["globex"], ["c1"]);
    let acme = &summary.tenants["acme"];
    assert_eq!(
        (
            acme.routed,
            acme.failed,
            acme.backend_ok,
            acme.backend_failed
        ),
        (3, 2, 3, 1)
    );
}
