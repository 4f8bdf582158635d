//! Rejected records go to the quarantine queue (SQS SendMessage) with their reason and the original
//! record, and count as handled; if the write fails they are reported instead.

use std::time::Duration;

use router::InvocationInfo;
use router::Outcome;
use serde_json::Value;
use wiremock::matchers::{header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::*;

/// SQS's answer to a `SendMessage` that fails on its side (500 `InternalError`).
fn sqs_internal_error() -> ResponseTemplate {
    ResponseTemplate::new(500)
        .insert_header("content-type", "application/x-amz-json-1.0")
        .set_body_string(r#"{"__type":"com.amazonaws.sqs#InternalError","message":"boom"}"#)
}

/// Answers `SendMessage` with `answer` (at most `times` times when given), before any other mock.
async fn send_message_answers(server: &MockServer, answer: ResponseTemplate, times: Option<u64>) {
    let mock = Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSQS.SendMessage"))
        .respond_with(answer)
        .with_priority(1);
    match times {
        Some(n) => mock.up_to_n_times(n).mount(server).await,
        None => mock.mount(server).await,
    }
}

/// Routes the `wrong-aud` fixture (one record, rejected) with the quarantine queue `url`.
async fn route_wrong_aud(server: &MockServer, url: &str) -> router::BatchReport {
    let router = router(server, &[("ROUTER_QUARANTINE_QUEUE_URL", url)]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    router
        .route_event(&fixture("sqs/wrong-aud.json"), &info)
        .await
        .unwrap()
}

fn queue_url(server: &MockServer) -> String {
    format!("{}/123456789012/tenant-router-quarantine", server.uri())
}

#[tokio::test]
async fn rejected_records_are_quarantined_with_reason_and_original_record() {
    let server = lambda_server().await;
    let url = mount_quarantine(&server).await;
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

    let sent = quarantined(&server).await;
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
    send_message_answers(&server, sqs_internal_error(), None).await;
    let url = queue_url(&server);
    let report = route_wrong_aud(&server, &url).await;
    assert!(matches!(
        &report.outcomes[0],
        Outcome::Rejected { reason: "token-audience", quarantined: false, detail }
            if detail.contains("quarantine failed")
    ));
    assert_eq!(reported(&report.response), ["aud-1"]);
}

/// A quarantine write that fails transiently is retried within the deadline, like an Invoke.
#[tokio::test]
async fn a_transient_quarantine_failure_is_retried() {
    let server = lambda_server().await;
    send_message_answers(&server, sqs_internal_error(), Some(2)).await;
    let url = mount_quarantine(&server).await;
    let report = route_wrong_aud(&server, &url).await;
    assert!(
        matches!(
            report.outcomes[0],
            Outcome::Rejected {
                quarantined: true,
                ..
            }
        ),
        "{:?}",
        report.outcomes[0]
    );
    assert_eq!(
        quarantined(&server).await.len(),
        3,
        "two failures, then success"
    );
}

/// A rejected user record of a KPL aggregate is quarantined as that user record alone: a Kinesis
/// record whose data and partition key are the user record's, with its index.
#[tokio::test]
async fn a_rejected_kpl_user_record_is_quarantined_alone() {
    use cross_crate_tests::{TestKey, claims, kinesis_record, sign};
    use router::source::kpl;
    let server = lambda_server().await;
    let url = mount_quarantine(&server).await;
    let router = router(&server, &[("ROUTER_QUARANTINE_QUEUE_URL", url.as_str())]);
    let user = |key: &str, tenant: &str, token_tenant: &str| kpl::UserRecord {
        partition_key: key.into(),
        data: serde_json::json!({
            "tenantId": tenant,
            "tenantToken": sign(TestKey::Es256, &claims(token_tenant)),
            "n": key,
        })
        .to_string()
        .into_bytes(),
    };
    let users = [
        user("k0", "acme", "acme"),
        user("k1", "acme", "globex"),
        user("k2", "globex", "globex"),
    ];
    let aggregate = kpl::aggregate(&users);
    let record = kinesis_record(
        "49590338271490256608559692538361571095921575989136588898",
        "agg",
        &aggregate,
    );
    let event = serde_json::json!({"Records": [record]}).to_string();
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router.route_event(&event, &info).await.unwrap();
    assert_eq!(report.outcomes[1].reason(), Some("tenant-mismatch"));
    let sent = quarantined(&server).await;
    assert_eq!(sent.len(), 1);
    let message: Value = serde_json::from_str(sent[0]["MessageBody"].as_str().unwrap()).unwrap();
    assert_eq!(message["userRecord"], 1);
    let kinesis = &message["record"]["kinesis"];
    assert_eq!(kinesis["partitionKey"], "k1");
    assert_eq!(kinesis["subSequenceNumber"], 1);
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD
        .decode(kinesis["data"].as_str().unwrap())
        .unwrap();
    assert_eq!(
        data, users[1].data,
        "the user record's data, not the aggregate"
    );
    assert_eq!(
        kinesis["sequenceNumber"],
        "49590338271490256608559692538361571095921575989136588898"
    );
}

/// Against a real SQS and S3 API (moto's server): a rejected record whose quarantine message
/// would exceed SQS's 1 MiB limit is kept in the quarantine bucket and the message carries its
/// location (the claim-check pattern); without a bucket it is reported, never sent oversized.
/// A small one still travels inside its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_too_large_for_a_message_is_kept_in_the_bucket() {
    use cross_crate_tests::{T0_MS, TestKey, sign, sqs_event, sqs_record};
    let moto = testkit::Moto::start();
    let sqs = testkit::sqs_client(moto.endpoint());
    let s3 = testkit::s3_client(moto.endpoint());
    let queue = sqs
        .create_queue()
        .queue_name("quarantine")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
            "1048576",
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    s3.create_bucket()
        .bucket("tenant-router-quarantine")
        .send()
        .await
        .unwrap();
    let lambda = lambda_server().await;
    // Signed for another audience: rejected (token-audience).
    let mut claims = cross_crate_tests::claims("acme");
    claims["aud"] = serde_json::json!("someone-else");
    let token = sign(TestKey::Es256, &claims);
    let body = |notes: usize| {
        serde_json::json!({"tenantId": "acme", "tenantToken": token, "notes": "x".repeat(notes)})
            .to_string()
    };
    // A body just under SQS's own limit: the record around it and the message around that do not
    // fit in one message.
    let big_body = body(1_048_000);
    assert!(big_body.len() < 1_048_576);
    let event = sqs_event(vec![
        sqs_record("big", &big_body, T0_MS),
        sqs_record("small", &body(10), T0_MS),
    ]);
    let info = || InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));

    let router = router_at(
        &lambda.uri(),
        moto.endpoint(),
        &[
            ("ROUTER_QUARANTINE_QUEUE_URL", queue.as_str()),
            ("ROUTER_QUARANTINE_BUCKET", "tenant-router-quarantine"),
        ],
    );
    let report = router
        .route_event(&event.to_string(), &info())
        .await
        .unwrap();
    for outcome in &report.outcomes {
        assert!(
            matches!(
                outcome,
                Outcome::Rejected {
                    reason: "token-audience",
                    quarantined: true,
                    ..
                }
            ),
            "{outcome:?}"
        );
    }
    assert_eq!(reported(&report.response), Vec::<String>::new());
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 2);
    let messages: Vec<Value> = received
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap()).unwrap())
        .collect();
    let big = messages.iter().find(|m| m["recordId"] == "big").unwrap();
    let small = messages.iter().find(|m| m["recordId"] == "small").unwrap();
    assert_eq!(
        small["record"], event["Records"][1],
        "a small record travels inline"
    );
    assert!(big.get("record").is_none());
    let location = &big["recordLocation"];
    assert_eq!(location["bucket"], "tenant-router-quarantine");
    // The key holds the queue's ARN: two sources may share record ids.
    let key = "sqs/arn%3Aaws%3Asqs%3Aus-east-1%3A123456789012%3Atenant-events/big.json";
    assert_eq!(location["key"], key);
    let object = s3
        .get_object()
        .bucket("tenant-router-quarantine")
        .key(key)
        .send()
        .await
        .unwrap()
        .body
        .collect()
        .await
        .unwrap()
        .into_bytes();
    assert_eq!(location["bytes"], object.len());
    let kept: Value = serde_json::from_slice(&object).unwrap();
    assert_eq!(kept, event["Records"][0], "the original record, whole");

    // Without a bucket: reported, and nothing oversized is sent.
    let router = router_at(
        &lambda.uri(),
        moto.endpoint(),
        &[("ROUTER_QUARANTINE_QUEUE_URL", queue.as_str())],
    );
    let report = router
        .route_event(&event.to_string(), &info())
        .await
        .unwrap();
    assert!(
        matches!(&report.outcomes[0], Outcome::Rejected { quarantined: false, detail, .. }
            if detail.contains("ROUTER_QUARANTINE_BUCKET")),
        "{:?}",
        report.outcomes[0]
    );
    assert_eq!(reported(&report.response), ["big"]);
}

/// Against a real SQS API (moto's server): a FIFO quarantine queue gets a message group id (the
/// record's lane) and a deduplication id that is the same on redelivery, so a record rejected
/// twice is kept once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_quarantine_queue_gets_group_and_deduplication_ids() {
    let moto = testkit::Moto::start();
    let sqs = testkit::sqs_client(moto.endpoint());
    let queue = sqs
        .create_queue()
        .queue_name("quarantine.fifo")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let lambda = lambda_server().await;
    let router = router_at(
        &lambda.uri(),
        moto.endpoint(),
        &[("ROUTER_QUARANTINE_QUEUE_URL", queue.as_str())],
    );
    let event = fixture("sqs/fifo-groups.json");
    for _ in 0..2 {
        let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
        let report = router.route_event(&event, &info).await.unwrap();
        assert!(
            matches!(
                report.outcomes[2],
                Outcome::Rejected {
                    quarantined: true,
                    ..
                }
            ),
            "{:?}",
            report.outcomes[2]
        );
    }
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 1, "the second copy is deduplicated");
    let attributes = received[0].attributes().unwrap();
    let original: Value = serde_json::from_str(&event).unwrap();
    assert_eq!(
        attributes
            .get(&aws_sdk_sqs::types::MessageSystemAttributeName::MessageGroupId)
            .map(String::as_str),
        original["Records"][2]["attributes"]["MessageGroupId"].as_str()
    );
}

/// Against a real SQS and S3 API (moto's server): the quarantine queue's `MaximumMessageSize`
/// (2 KiB) is read at start by the backend the binary builds; then two streams whose records
/// share a sequence number, both rejected within SQS's five-minute deduplication window and
/// both too large for a 2 KiB message, go into one FIFO quarantine queue and its bucket: two
/// messages, two objects, each its own stream's record. (Keyed by source and id alone, the second message was deduplicated away — SQS
/// answers success — and the second object overwrote the first.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_streams_sharing_a_sequence_number_are_quarantined_apart() {
    let moto = testkit::Moto::start();
    let sqs = testkit::sqs_client(moto.endpoint());
    let s3 = testkit::s3_client(moto.endpoint());
    let queue = sqs
        .create_queue()
        .queue_name("quarantine.fifo")
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::MaximumMessageSize,
            "2048",
        )
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    s3.create_bucket()
        .bucket("tenant-router-quarantine")
        .send()
        .await
        .unwrap();
    let lambda = lambda_server().await;
    // Built as the binary builds it (`replay::aws_backend`), without
    // ROUTER_QUARANTINE_MAX_MESSAGE_BYTES: the limit is read from the queue at start, so a
    // message over 2 KiB is never sent (here, without a bucket, the record is reported).
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new("test", "test", None, None, "tests"),
            ),
        )
        .endpoint_url(moto.endpoint())
        .build();
    let config = config(&[("ROUTER_QUARANTINE_QUEUE_URL", queue.as_str())]);
    let backend = router::replay::aws_backend(&config, &sdk).await.unwrap();
    let read_at_start = router::Router::new(config, backend).unwrap();
    let sequence = "49590338271490256608559692538361571095921575989136588898";
    let stream = |name: &str, notes: usize| {
        let data = serde_json::json!({"tenantId": "acme", "notes": "n".repeat(notes)}).to_string();
        let mut record = cross_crate_tests::kinesis_record(sequence, "k", data.as_bytes());
        record["eventSourceARN"] = serde_json::json!(format!(
            "arn:aws:kinesis:us-east-1:123456789012:stream/{name}"
        ));
        serde_json::json!({ "Records": [record] })
    };
    let info = || InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = read_at_start
        .route_event(&stream("orders", 3000).to_string(), &info())
        .await
        .unwrap();
    assert!(
        matches!(&report.outcomes[0], Outcome::Rejected { quarantined: false, detail, .. }
            if detail.contains("over the quarantine queue's limit of 2048")),
        "{:?}",
        report.outcomes[0]
    );
    let router = router_at(
        &lambda.uri(),
        moto.endpoint(),
        &[
            ("ROUTER_QUARANTINE_QUEUE_URL", queue.as_str()),
            ("ROUTER_QUARANTINE_BUCKET", "tenant-router-quarantine"),
            ("ROUTER_QUARANTINE_MAX_MESSAGE_BYTES", "2048"),
        ],
    );
    // No token: rejected (missing-token). Neither fits a 2 KiB message: both go to the bucket.
    for event in [stream("orders", 3000), stream("billing", 3000)] {
        let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
        let report = router.route_event(&event.to_string(), &info).await.unwrap();
        assert!(
            matches!(
                report.outcomes[0],
                Outcome::Rejected {
                    quarantined: true,
                    ..
                }
            ),
            "{:?}",
            report.outcomes[0]
        );
    }
    let received = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(received.len(), 2, "both kept, neither deduplicated away");
    let mut streams = Vec::new();
    for message in &received {
        let body: Value = serde_json::from_str(message.body().unwrap()).unwrap();
        assert!(message.body().unwrap().len() <= 2048);
        assert!(body.get("record").is_none(), "kept in the bucket: {body}");
        let record = match body.get("record") {
            Some(record) => record.clone(),
            None => {
                let key = body["recordLocation"]["key"].as_str().unwrap();
                let object = s3
                    .get_object()
                    .bucket("tenant-router-quarantine")
                    .key(key)
                    .send()
                    .await
                    .unwrap()
                    .body
                    .collect()
                    .await
                    .unwrap()
                    .into_bytes();
                serde_json::from_slice(&object).unwrap()
            }
        };
        streams.push(record["eventSourceARN"].as_str().unwrap().to_owned());
    }
    streams.sort();
    assert_eq!(
        streams,
        [
            "arn:aws:kinesis:us-east-1:123456789012:stream/billing",
            "arn:aws:kinesis:us-east-1:123456789012:stream/orders"
        ]
    );
}
