//! Observability: every EMF document the router emits over the recorded fixtures is valid and keeps
//! tenants out of dimensions; traces and correlation ids follow each record into its Invoke. (The
//! log scan for tokens is its own test binary, `log_scan.rs`, so no other test's threads share its
//! log subscriber.)

use cross_crate_tests::info;
use std::sync::{Arc, Mutex};

use cross_crate_tests::{T0_MS, TestKey, body, claims, sign, sqs_event, sqs_record};
use serde_json::{Value, json};
use shared::metrics::validate;

use crate::util::*;

#[tokio::test]
async fn every_emitted_emf_document_is_valid() {
    let server = lambda_server().await;
    let documents: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = documents.clone();
    let router = router(&server, &[]).with_metrics(Box::new(move |d| {
        sink.lock().unwrap().push(d.to_owned());
    }));
    let files = all_fixtures();
    let mut batches = 0;
    for file in &files {
        let routed = router
            .route_event(&std::fs::read_to_string(file).unwrap(), &info())
            .await;
        // A batch with records has its document; an empty batch or an unreadable event none.
        if routed.is_ok_and(|report| !report.ids.is_empty()) {
            batches += 1;
        }
    }
    let documents = documents.lock().unwrap();
    assert!(batches > 0);
    assert_eq!(documents.len(), batches, "one document per batch");
    for document in documents.iter() {
        let document: Value = serde_json::from_str(document).unwrap();
        validate(&document).unwrap_or_else(|e| panic!("{e}: {document}"));
        let directive = &document["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "TenantRouter");
        assert_eq!(directive["Dimensions"], json!([["Service", "Source"]]));
        // Tenants are metadata.
        assert!(document["tenants"].is_object());
        let received = document["RecordsReceived"].as_f64().unwrap();
        let sum = ["RecordsInvoked", "RecordsRejected", "RecordsFailed"]
            .iter()
            .map(|m| document[m].as_f64().unwrap())
            .sum::<f64>();
        assert_eq!(received, sum, "{document}");
    }
    // The SQS mixed-tenants batch, in detail.
    let mixed: Value = documents
        .iter()
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|d| d["Source"] == "sqs" && d["RecordsInvoked"] == 6.0)
        .expect("the mixed-tenants document");
    assert_eq!(mixed["InvokeAttempts"], 6.0);
    assert_eq!(mixed["InvokeRetries"], 0.0);
    assert_eq!(mixed["InvokeLatency"].as_array().unwrap().len(), 6);
    assert_eq!(
        mixed["tenants"]["acme"],
        json!({"invoked": 2, "rejected": 0, "failed": 0})
    );
}

#[tokio::test]
async fn rejection_reasons_are_counted_per_reason() {
    let server = lambda_server().await;
    let documents: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = documents.clone();
    let router = router(&server, &[]).with_metrics(Box::new(move |d| {
        sink.lock().unwrap().push(serde_json::from_str(d).unwrap());
    }));
    router
        .route_event(&fixture("sqs/fifo-groups.json"), &info())
        .await
        .unwrap();
    let document = documents.lock().unwrap()[0].clone();
    assert_eq!(document["rejected.tenant-mismatch"], 1.0);
    assert_eq!(document["failed.earlier-record-failed"], 1.0);
    assert_eq!(document["RecordsReported"], 2.0);
}

/// 250 Invokes: three documents whose `InvokeLatency` values add up to 250 samples, so
/// CloudWatch's SampleCount and Sum for the batch are exact; the counters appear once.
#[tokio::test]
async fn every_invoke_latency_is_counted_exactly_once() {
    let server = lambda_server().await;
    let documents: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = documents.clone();
    let router = router(&server, &[]).with_metrics(Box::new(move |d| {
        sink.lock().unwrap().push(serde_json::from_str(d).unwrap());
    }));
    let token = sign(TestKey::Es256, &claims("acme"));
    let records = (0..250)
        .map(|i| sqs_record(&format!("m-{i}"), &body("acme", &token, json!({})), T0_MS))
        .collect();
    router
        .route_event(&sqs_event(records).to_string(), &info())
        .await
        .unwrap();
    let documents = documents.lock().unwrap().clone();
    assert_eq!(documents.len(), 3);
    let samples: usize = documents
        .iter()
        .map(|d| {
            shared::metrics::validate(d).unwrap();
            d["InvokeLatency"].as_array().unwrap().len()
        })
        .sum();
    assert_eq!(samples, 250);
    let invoked: Vec<_> = documents
        .iter()
        .filter_map(|d| d.get("RecordsInvoked"))
        .collect();
    assert_eq!(invoked, [&json!(250.0)]);
}

#[tokio::test]
async fn the_trace_and_the_correlation_id_follow_each_record() {
    let server = lambda_server().await;
    let router = router(&server, &[]);
    let token = sign(TestKey::Es256, &claims("acme"));
    let mut traced = sqs_record("traced", &body("acme", &token, json!({})), T0_MS);
    traced["attributes"]["AWSTraceHeader"] =
        json!("Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1");
    let with_id = sqs_record(
        "with-id",
        &json!({"tenantId": "acme", "tenantToken": token, "correlationId": "order-42"}).to_string(),
        T0_MS,
    );
    let plain = sqs_record("plain", &body("acme", &token, json!({})), T0_MS);
    let event = sqs_event(vec![traced, with_id, plain]).to_string();
    let mut info = info();
    info.trace_id = Some("Root=1-aaaaaaaa-bbbbbbbbbbbbbbbbbbbbbbbb;Sampled=1".into());
    router.route_event(&event, &info).await.unwrap();

    let requests = server.received_requests().await.unwrap();
    let by_id = |id: &str| {
        let request = requests
            .iter()
            .find(|r| serde_json::from_slice::<Value>(&r.body).unwrap()["id"] == id)
            .unwrap();
        let envelope: Value = serde_json::from_slice(&request.body).unwrap();
        let trace = request.headers["x-amzn-trace-id"]
            .to_str()
            .unwrap()
            .to_owned();
        (
            trace,
            envelope["correlationId"].as_str().unwrap().to_owned(),
        )
    };
    let (trace, correlation) = by_id("traced");
    assert!(trace.starts_with("Root=1-5759e988"), "{trace}");
    assert_eq!(correlation, trace, "no payload id: the record's trace");
    let (trace, correlation) = by_id("with-id");
    assert!(
        trace.starts_with("Root=1-aaaaaaaa"),
        "the invocation's trace: {trace}"
    );
    assert_eq!(correlation, "order-42", "the payload's own id wins");
    let (trace, _) = by_id("plain");
    assert!(trace.starts_with("Root=1-aaaaaaaa"));
}
