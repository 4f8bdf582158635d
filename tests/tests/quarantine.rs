//! Rejected records go to the quarantine queue (SQS SendMessage) with their reason and the original
//! record, and count as handled; if the write fails they are reported instead.

use std::time::Duration;

use router::InvocationInfo;
use router::Outcome;
use serde_json::Value;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::*;

async fn send_message_bodies(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|t| t == "AmazonSQS.SendMessage")
        })
        .map(|r| serde_json::from_slice(&r.body).expect("JSON request"))
        .collect()
}

fn queue_url(server: &MockServer) -> String {
    format!("{}/123456789012/tenant-router-quarantine", server.uri())
}

#[tokio::test]
async fn rejected_records_are_quarantined_with_reason_and_original_record() {
    let server = lambda_server().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSQS.SendMessage"))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.0")
                .set_body_string(r#"{"MessageId":"q-1"}"#),
        )
        .mount(&server)
        .await;
    let url = queue_url(&server);
    let router = router(&server, &[("ROUTER_QUARANTINE_QUEUE_URL", url.as_str())]);
    let event = fixture("sqs/fifo-groups.json");
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router.route_event(&event, &info).await.unwrap();

    // fifo-3 is rejected and quarantined: handled, so its group goes on.
    assert!(matches!(
        report.outcomes[2],
        Outcome::Rejected {
            reason: "tenant-mismatch",
            quarantined: true,
            ..
        }
    ));
    assert!(matches!(report.outcomes[4], Outcome::Invoked { .. }));
    assert_eq!(reported(&report.response), Vec::<String>::new());

    let sent = send_message_bodies(&server).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["QueueUrl"], url);
    assert_eq!(
        sent[0]["MessageAttributes"]["reason"]["StringValue"],
        "tenant-mismatch"
    );
    let message: Value = serde_json::from_str(sent[0]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(message["reason"], "tenant-mismatch");
    assert_eq!(message["recordId"], "fifo-3");
    assert_eq!(message["tenantId"], "acme");
    assert_eq!(message["source"], "sqs");
    let original: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(
        message["record"], original["Records"][2],
        "the original record, unchanged"
    );
}

#[tokio::test]
async fn a_failed_quarantine_write_reports_the_record() {
    let server = lambda_server().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSQS.SendMessage"))
        .respond_with(
            ResponseTemplate::new(500)
                .insert_header("content-type", "application/x-amz-json-1.0")
                .set_body_string(
                    r#"{"__type":"com.amazonaws.sqs#InternalError","message":"boom"}"#,
                ),
        )
        .mount(&server)
        .await;
    let url = queue_url(&server);
    let router = router(&server, &[("ROUTER_QUARANTINE_QUEUE_URL", url.as_str())]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router
        .route_event(&fixture("sqs/wrong-aud.json"), &info)
        .await
        .unwrap();
    assert!(matches!(
        &report.outcomes[0],
        Outcome::Rejected { reason: "token-audience", quarantined: false, detail }
            if detail.contains("quarantine failed")
    ));
    assert_eq!(reported(&report.response), ["aud-1"]);
}
