//! `ROUTER_INVOCATION_TYPE=request-response` against a Lambda endpoint whose answers come from the
//! real tenant guard (`shared::function`), one environment per tenant: each record's outcome
//! follows the backend's answer — processed, failed (reported, never retried by the router), or
//! refused by the guard (rejected and quarantined) — a timed-out Invoke is failed and not
//! retried, and a tenant batch's per-record answer becomes the batch item failures.

use cross_crate_tests::info;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cross_crate_tests::{
    T0_MS, TestKey, body, claims, kinesis_record, sign, sqs_event, sqs_record,
};
use router::Outcome;
use serde_json::{Value, json};
use shared::function::EnvironmentGuard;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::util::*;

/// A sync Invoke endpoint: one [`EnvironmentGuard`] per tenant (from `X-Amz-Tenant-Id`), whose
/// handler fails a record whose item is `"fail"`.
#[derive(Clone, Default)]
struct Guarded {
    environments: Arc<Mutex<HashMap<String, Arc<EnvironmentGuard>>>>,
    delay: Duration,
}

impl Respond for Guarded {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let tenant = request
            .headers
            .get("x-amz-tenant-id")
            .map(|t| t.to_str().unwrap().to_owned());
        let guard = self
            .environments
            .lock()
            .unwrap()
            .entry(tenant.clone().unwrap_or_default())
            .or_default()
            .clone();
        let payload = String::from_utf8(request.body.clone()).unwrap();
        let result = futures::executor::block_on(guard.invoke(
            tenant.as_deref(),
            "request",
            &payload,
            |_, envelope| async move {
                let payload: Value = serde_json::from_str(envelope.payload.get()).unwrap();
                if payload["item"] == "fail" {
                    Err(format!("record {} cannot be processed", envelope.id))
                } else {
                    Ok(json!({"ok": true}))
                }
            },
        ));
        let answer = match result {
            Ok(value) => ResponseTemplate::new(200).set_body_json(value),
            Err(error) => ResponseTemplate::new(200)
                .insert_header("X-Amz-Function-Error", "Unhandled")
                .set_body_json(json!({
                    "errorType": error.error_type(),
                    "errorMessage": error.to_string(),
                })),
        };
        answer.set_delay(self.delay)
    }
}

async fn guarded_server(guarded: Guarded) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(guarded)
        .mount(&server)
        .await;
    server
}

fn record(id: &str, tenant: &str, item: Value) -> Value {
    let token = sign(TestKey::Es256, &claims(tenant));
    sqs_record(id, &body(tenant, &token, item), T0_MS)
}

#[tokio::test]
async fn each_records_outcome_follows_the_backends_answer() {
    let server = guarded_server(Guarded::default()).await;
    // initech's environment refuses as the guard does for an envelope of another tenant.
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .and(wiremock::matchers::header("x-amz-tenant-id", "initech"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("X-Amz-Function-Error", "Unhandled")
                .set_body_json(json!({"errorType": "Tenant.Mismatch", "errorMessage": "no"})),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let url = mount_quarantine(&server).await;
    let router = router(
        &server,
        &[
            ("ROUTER_INVOCATION_TYPE", "request-response"),
            ("ROUTER_QUARANTINE_QUEUE_URL", url.as_str()),
        ],
    );
    let event = sqs_event(vec![
        record("ok-1", "acme", json!({"title": "a"})),
        record("fails", "acme", json!("fail")),
        record("ok-2", "globex", json!({"title": "b"})),
        record("refused", "initech", json!({"title": "c"})),
    ]);
    let report = router
        .route_event(&event.to_string(), &info())
        .await
        .unwrap();
    assert_eq!(report.outcomes[0], Outcome::Invoked { attempts: 1 });
    assert_eq!(report.outcomes[1].reason(), Some("backend-error"));
    assert!(report.outcomes[1].is_reported());
    assert_eq!(report.outcomes[2], Outcome::Invoked { attempts: 1 });
    assert!(
        matches!(
            &report.outcomes[3],
            Outcome::Rejected { reason: "backend-refused", quarantined: true, detail }
                if detail.starts_with("Tenant.Mismatch")
        ),
        "{:?}",
        report.outcomes[3]
    );
    assert_eq!(reported(&report.response), ["fails"]);
    let invocations = invocations(&server).await;
    // A function error is not retried by the router: the event source redelivers the record.
    assert_eq!(invocations.len(), 4);
    assert!(
        invocations
            .iter()
            .all(|i| i.invocation_type.as_deref() == Some("RequestResponse"))
    );
    let quarantined = quarantined(&server).await;
    assert_eq!(quarantined.len(), 1);
    let message: Value =
        serde_json::from_str(quarantined[0]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(message["reason"], "backend-refused");
    assert_eq!(message["recordId"], "refused");
}

/// The backend may still be running a timed-out sync Invoke: a second attempt could run the
/// record twice at once and out of order, so it is failed (the source redelivers) instead.
#[tokio::test]
async fn a_timed_out_sync_invoke_fails_the_record_and_is_not_retried() {
    let server = guarded_server(Guarded {
        delay: Duration::from_secs(2),
        ..Guarded::default()
    })
    .await;
    let router = router(
        &server,
        &[
            ("ROUTER_INVOCATION_TYPE", "request-response"),
            ("ROUTER_INVOKE_TIMEOUT_MS", "200"),
            ("ROUTER_RETRY_MAX_ATTEMPTS", "5"),
        ],
    );
    let event = sqs_event(vec![record("slow", "acme", json!({"title": "a"}))]);
    let report = router
        .route_event(&event.to_string(), &info())
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("invoke-timeout"));
    assert_eq!(reported(&report.response), ["slow"]);
    assert_eq!(invocations(&server).await.len(), 1, "never retried");
}

/// A Kinesis tenant batch in `request-response`: the backend fails sequence number 3 and does
/// not run the rest of that batch; the response names the lowest failed sequence number, so the
/// event source mapping retries from there.
#[tokio::test]
async fn a_stream_tenant_batch_reports_the_lowest_failed_sequence_number() {
    let server = guarded_server(Guarded::default()).await;
    let router = router(
        &server,
        &[
            ("ROUTER_INVOCATION_TYPE", "kinesis=request-response"),
            ("ROUTER_DELIVERY", "tenant-batch"),
        ],
    );
    let data = |tenant: &str, item: Value| {
        let token = sign(TestKey::Es256, &claims(tenant));
        body(tenant, &token, item).into_bytes()
    };
    let records = vec![
        kinesis_record("1", "k1", &data("acme", json!({"n": 1}))),
        kinesis_record("2", "k2", &data("acme", json!({"n": 2}))),
        kinesis_record("3", "k1", &data("acme", json!("fail"))),
        kinesis_record("4", "k2", &data("acme", json!({"n": 4}))),
        kinesis_record("5", "k1", &data("acme", json!({"n": 5}))),
    ];
    let event = json!({ "Records": records }).to_string();
    let report = router.route_event(&event, &info()).await.unwrap();
    assert_eq!(
        report.response,
        json!({"batchItemFailures": [{"itemIdentifier": "3"}]})
    );
    let reasons: Vec<_> = report.outcomes.iter().map(Outcome::reason).collect();
    assert_eq!(
        reasons,
        [
            None,
            None,
            Some("backend-error"),
            Some("earlier-record-failed"),
            Some("earlier-record-failed")
        ]
    );
    let invocations = invocations(&server).await;
    assert_eq!(invocations.len(), 1, "one batch for the one tenant");
    let batch = &invocations[0].envelope;
    assert_eq!(batch["ordering"], "stream");
    assert_eq!(batch["answer"], "per-record");
    let keys: Vec<_> = batch["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["orderingKey"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["k1", "k2", "k1", "k2", "k1"]);
}
