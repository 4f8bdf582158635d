//! The JSON Schemas of the backend contract (`schemas/v1`) against what the Rust side really
//! produces: every envelope and envelope batch the router sends for the recorded fixtures, in
//! both delivery modes and both invocation types, and every answer of the Rust guard (a record's
//! result, a duplicate, a batch's per-record results, an ordered batch's skips, each refusal and
//! failure as a function error).

use std::path::PathBuf;
use std::time::Duration;

use cross_crate_tests::{FakeBackend, T0_MS, fake_router, fixtures_dir};
use jsonschema::{Registry, Validator};
use router::InvocationInfo;
use serde_json::{Value, json};
use shared::function::{EnvironmentGuard, TenantContext};

const BASE: &str = "https://schemas.tenant-router.example/v1/";

fn schemas() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../schemas/v1");
    ["envelope", "envelope-batch", "delivery", "answer"]
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(format!("{name}.schema.json"))).unwrap();
            let schema: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(schema["$id"], format!("{BASE}{name}.schema.json"));
            (format!("{BASE}{name}.schema.json"), schema)
        })
        .collect()
}

/// A validator for `reference` (`delivery.schema.json`, `answer.schema.json#/$defs/…`).
fn validator(registry: &Registry<'_>, reference: &str) -> Validator {
    jsonschema::options()
        .with_registry(registry)
        .should_validate_formats(true)
        .build(&json!({"$ref": format!("{BASE}{reference}")}))
        .unwrap_or_else(|e| panic!("{reference}: {e}"))
}

fn assert_valid(validator: &Validator, instance: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {errors:?}\n{instance}");
}

fn fixture_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for source in ["sqs", "kinesis", "dynamodb", "eventbridge"] {
        for entry in std::fs::read_dir(fixtures_dir().join(source)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

#[tokio::test]
async fn every_envelope_and_batch_the_router_sends_fits_the_schemas() {
    let schemas = schemas();
    let registry = Registry::new().extend(schemas).unwrap().prepare().unwrap();
    let delivery = validator(&registry, "delivery.schema.json");
    let batch = validator(&registry, "envelope-batch.schema.json");
    let envelope = validator(&registry, "envelope.schema.json");
    let mut seen = [0usize; 2];
    for mode in ["record", "tenant-batch"] {
        for invocation in ["event", "request-response"] {
            for file in fixture_files() {
                let router = fake_router(
                    FakeBackend::recording(),
                    &[
                        ("ROUTER_DELIVERY", mode),
                        ("ROUTER_INVOCATION_TYPE", invocation),
                    ],
                );
                let info = InvocationInfo {
                    now_ms: T0_MS + 1_000,
                    ..InvocationInfo::with_budget(Duration::from_secs(30), Duration::ZERO)
                };
                let event = std::fs::read_to_string(&file).unwrap();
                // Some fixtures are not batches at all: nothing is sent for them.
                let _ = router.route_event(&event, &info).await;
                for (_, payload) in router.backend().invoked.lock().unwrap().iter() {
                    let payload: Value = serde_json::from_slice(payload).unwrap();
                    let what = format!("{} ({mode}, {invocation})", file.display());
                    assert_valid(&delivery, &payload, &what);
                    if payload.get("records").is_some() {
                        assert_valid(&batch, &payload, &what);
                        seen[1] += 1;
                    } else {
                        assert_valid(&envelope, &payload, &what);
                        seen[0] += 1;
                    }
                }
            }
        }
    }
    assert!(
        seen[0] > 50 && seen[1] > 10,
        "envelopes and batches checked: {seen:?}"
    );
    // And they are not empty promises: a batch naming no tenant, an envelope with a tenant id
    // Lambda would refuse, or one without its idempotency key, do not fit.
    assert!(!delivery.is_valid(&json!({"version": 1, "records": []})));
    let mut bad = testkit::envelope("acme", "m", json!({}));
    bad["tenantId"] = json!(" acme");
    assert!(!envelope.is_valid(&bad));
    let mut bad = testkit::envelope("acme", "m", json!({}));
    bad.as_object_mut().unwrap().remove("idempotencyKey");
    assert!(!envelope.is_valid(&bad));
}

fn envelope(tenant: &str, id: &str, payload: Value, lane: Option<&str>) -> Value {
    let mut envelope = testkit::envelope(tenant, id, payload);
    if let Some(lane) = lane {
        envelope["orderingKey"] = json!(lane);
    }
    envelope
}

#[tokio::test]
async fn every_answer_of_the_rust_guard_fits_the_schemas() {
    let registry = Registry::new()
        .extend(schemas())
        .unwrap()
        .prepare()
        .unwrap();
    let result = validator(&registry, "answer.schema.json#/$defs/recordResult");
    let batch_result = validator(&registry, "answer.schema.json#/$defs/guardBatchResult");
    let error = validator(&registry, "answer.schema.json#/$defs/guardError");
    let handler = |_: TenantContext, envelope: shared::Envelope| async move {
        if envelope.payload.get().contains("fail") {
            Err("the handler failed this record".to_owned())
        } else {
            Ok(json!({"enriched": envelope.id}))
        }
    };
    let guard = EnvironmentGuard::default();
    let ok = envelope("acme", "m1", json!({"item": {}}), None);
    let batch = |ordering: Option<&str>, answer: Option<&str>| {
        let mut batch = json!({"version": 1, "tenantId": "acme", "records": [
            envelope("acme", &format!("b1{ordering:?}{answer:?}"), json!({"item": {}}), Some("a")),
            envelope("acme", &format!("b2{ordering:?}{answer:?}"), json!("fail"), Some("a")),
            envelope("acme", &format!("b3{ordering:?}{answer:?}"), json!({"item": {}}), Some("a")),
        ]});
        if let Some(ordering) = ordering {
            batch["ordering"] = json!(ordering);
        }
        if let Some(answer) = answer {
            batch["answer"] = json!(answer);
        }
        batch.to_string()
    };
    let cases: Vec<(&str, Option<&str>, String)> = vec![
        ("a record", Some("acme"), ok.to_string()),
        ("a duplicate", Some("acme"), ok.to_string()),
        (
            "a failed record",
            Some("acme"),
            envelope("acme", "f", json!("fail"), None).to_string(),
        ),
        (
            "per-record, lanes",
            Some("acme"),
            batch(Some("lanes"), Some("per-record")),
        ),
        (
            "per-record, stream",
            Some("acme"),
            batch(Some("stream"), Some("per-record")),
        ),
        (
            "per-record, unordered",
            Some("acme"),
            batch(None, Some("per-record")),
        ),
        (
            "a partial failure",
            Some("acme"),
            batch(Some("lanes"), None),
        ),
        ("no tenant", None, ok.to_string()),
        (
            "another tenant",
            Some("acme"),
            envelope("globex", "x", json!({}), None).to_string(),
        ),
        ("not an envelope", Some("acme"), "{\"hello\": 1}".to_owned()),
    ];
    let mut kinds = std::collections::BTreeSet::new();
    for (what, tenant, payload) in cases {
        match guard.invoke(tenant, "r", &payload, handler).await {
            Ok(answer) if answer.get("records").is_some() => {
                assert_valid(&batch_result, &answer, what);
                kinds.insert("batch");
            }
            Ok(answer) => {
                assert_valid(&result, &answer, what);
                kinds.insert("record");
            }
            Err(e) => {
                let diagnostic = lambda_runtime::Diagnostic::from(e);
                let document = json!({
                    "errorType": diagnostic.error_type,
                    "errorMessage": diagnostic.error_message,
                });
                assert_valid(&error, &document, what);
                kinds.insert("error");
            }
        }
    }
    assert_eq!(kinds.len(), 3, "{kinds:?}");
}
