//! Kinesis and DynamoDB Streams through the real handler and SDK: decoding, KPL de-aggregation,
//! exact attribute-value conversion, image rules, per-source tenant settings, and checkpoint
//! semantics (lowest failed sequence number; nothing above a failure started).

use cross_crate_tests::info;
use std::time::Duration;

use cross_crate_tests::token_failure_cases;
use router::Outcome;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::*;

async fn route(
    server: &MockServer,
    overrides: &[(&str, &str)],
    fixture_name: &str,
) -> router::BatchReport {
    let router = router(server, overrides);
    router
        .route_event(&fixture(fixture_name), &info())
        .await
        .expect("a batch")
}

async fn quarantine_server() -> (MockServer, String) {
    let server = lambda_server().await;
    let url = mount_quarantine(&server).await;
    (server, url)
}

fn ids_invoked(invocations: &[Invocation]) -> Vec<String> {
    invocations
        .iter()
        .map(|i| i.envelope["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn kinesis_mixed_tenants_are_invoked_with_their_tenant() {
    let server = lambda_server().await;
    let report = route(&server, &[], "kinesis/mixed-tenants.json").await;
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. })),
        "{:?}",
        report.outcomes
    );
    assert_eq!(report.response, json!({"batchItemFailures": []}));
    let invocations = invocations(&server).await;
    assert_eq!(invocations.len(), 4);
    for i in &invocations {
        assert_eq!(i.tenant.as_deref(), i.envelope["tenantId"].as_str());
        assert_eq!(i.envelope["source"], "kinesis");
        assert_eq!(
            i.envelope["attributes"]["partitionKey"],
            i.envelope["tenantId"]
        );
        assert_eq!(i.envelope["arrivedAt"], "2026-01-01T00:00:00.250Z");
        assert!(i.envelope["payload"].get("tenantToken").is_none());
    }
}

#[tokio::test]
async fn dynamodb_mixed_tenants_are_invoked_with_their_tenant() {
    let server = lambda_server().await;
    let report = route(&server, &[], "dynamodb/mixed-tenants.json").await;
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. })),
        "{:?}",
        report.outcomes
    );
    let invocations = invocations(&server).await;
    assert_eq!(invocations.len(), 4);
    for i in &invocations {
        assert_eq!(i.tenant.as_deref(), i.envelope["tenantId"].as_str());
        assert_eq!(i.envelope["source"], "dynamodb");
        assert_eq!(i.envelope["arrivedAt"], "2026-01-01T00:00:00.000Z");
        assert_eq!(i.envelope["attributes"]["image"], "new");
        assert!(i.envelope["payload"].get("tenantToken").is_none());
        assert!(
            i.envelope["payload"]["pk"]
                .as_str()
                .unwrap()
                .starts_with("TENANT#")
        );
    }
    let modify = invocations
        .iter()
        .find(|i| i.envelope["attributes"]["eventName"] == "MODIFY");
    assert!(modify.is_some());
}

#[tokio::test]
async fn every_token_failure_is_rejected_in_every_stream_source() {
    let (server, url) = quarantine_server().await;
    let cases = token_failure_cases();
    for fixture_name in [
        "kinesis/token-failures.json",
        "dynamodb/token-failures.json",
    ] {
        // Quarantined rejections do not block the shard, so every record gets its own verdict.
        let report = route(
            &server,
            &[("ROUTER_QUARANTINE_QUEUE_URL", url.as_str())],
            fixture_name,
        )
        .await;
        assert_eq!(report.outcomes.len(), cases.len());
        for (outcome, (case, _, _, reason)) in report.outcomes.iter().zip(&cases) {
            assert!(
                matches!(
                    outcome,
                    Outcome::Rejected {
                        quarantined: true,
                        ..
                    }
                ),
                "{fixture_name} {case}: {outcome:?}"
            );
            assert_eq!(outcome.reason(), Some(*reason), "{fixture_name} {case}");
        }
        assert_eq!(
            report.response,
            json!({"batchItemFailures": []}),
            "{fixture_name}"
        );
    }
    assert!(invocations(&server).await.is_empty());
}

#[tokio::test]
async fn invalid_base64_rejects_only_that_record() {
    let server = lambda_server().await;
    let report = route(&server, &[], "kinesis/invalid-base64.json").await;
    assert!(matches!(report.outcomes[0], Outcome::Invoked { .. }));
    assert_eq!(report.outcomes[1].reason(), Some("malformed-record"));
    assert_eq!(reported(&report.response), [report.ids[1].clone()]);
}

#[tokio::test]
async fn kpl_aggregates_are_split_and_report_their_parent() {
    let server = lambda_server().await;
    let report = route(&server, &[], "kinesis/kpl-aggregated.json").await;
    assert_eq!(report.outcomes.len(), 4, "3 user records + 1 plain record");
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. }))
    );
    let parent = report.ids[0].clone();
    assert_eq!(
        &report.ids[..3],
        [parent.clone(), parent.clone(), parent.clone()]
    );
    let invocations = invocations(&server).await;
    let mut ids = ids_invoked(&invocations);
    ids.sort();
    assert_eq!(
        ids[..3],
        [
            format!("{parent}:0"),
            format!("{parent}:1"),
            format!("{parent}:2")
        ]
    );
    let globex = invocations
        .iter()
        .find(|i| i.envelope["id"] == format!("{parent}:1"))
        .unwrap();
    assert_eq!(globex.tenant.as_deref(), Some("globex"));
    assert_eq!(globex.envelope["attributes"]["aggregated"], true);
    assert_eq!(globex.envelope["attributes"]["partitionKey"], "globex");
}

#[tokio::test]
async fn a_failed_user_record_reports_its_parent() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .and(header("x-amz-tenant-id", "globex"))
        .respond_with(lambda_error(413, "RequestTooLargeException"))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(ResponseTemplate::new(202))
        .with_priority(2)
        .mount(&server)
        .await;
    let report = route(&server, &[], "kinesis/kpl-aggregated.json").await;
    assert_eq!(reported(&report.response), [report.ids[0].clone()]);
}

#[tokio::test]
async fn the_lowest_failed_sequence_number_is_compared_as_a_number() {
    let server = lambda_server().await;
    let report = route(&server, &[], "kinesis/long-sequence-numbers.json").await;
    let n128 = "9".repeat(128);
    assert_eq!(report.ids[1], n128);
    assert!(matches!(report.outcomes[0], Outcome::Invoked { .. }));
    assert_eq!(report.outcomes[1].reason(), Some("tenant-mismatch"));
    // "1000…" (129 digits) sorts before "999…" (128 digits) as text; as numbers it is higher.
    assert_eq!(reported(&report.response), [n128]);
}

#[tokio::test]
async fn after_a_failure_no_higher_record_of_the_shard_is_started() {
    for fixture_name in [
        "kinesis/mid-batch-failure.json",
        "dynamodb/mid-batch-failure.json",
    ] {
        let server = lambda_server().await;
        let report = route(&server, &[], fixture_name).await;
        let failed = report.ids[2].clone();
        assert_eq!(
            report.outcomes[2].reason(),
            Some("tenant-mismatch"),
            "{fixture_name}"
        );
        assert_eq!(reported(&report.response), [failed], "{fixture_name}");
        // The failed record's later sibling (same key) is never invoked.
        assert_eq!(
            report.outcomes[4].reason(),
            Some("earlier-record-failed"),
            "{fixture_name}"
        );
        let invoked = ids_invoked(&invocations(&server).await);
        assert!(
            !invoked.contains(&report.ids[4]),
            "{fixture_name}: {invoked:?}"
        );
        // Records before the failure were delivered; anything invoked was not reported.
        assert!(invoked.contains(&report.ids[0]) && invoked.contains(&report.ids[1]));
        for (id, outcome) in report.ids.iter().zip(&report.outcomes) {
            assert_eq!(
                invoked.contains(id),
                matches!(outcome, Outcome::Invoked { .. }),
                "{id}"
            );
        }
    }
}

#[tokio::test]
async fn quarantined_rejections_do_not_block_the_shard() {
    let (server, url) = quarantine_server().await;
    let report = route(
        &server,
        &[("ROUTER_QUARANTINE_QUEUE_URL", url.as_str())],
        "kinesis/mid-batch-failure.json",
    )
    .await;
    assert!(matches!(
        report.outcomes[2],
        Outcome::Rejected {
            quarantined: true,
            ..
        }
    ));
    assert_eq!(report.response, json!({"batchItemFailures": []}));
    assert_eq!(invocations(&server).await.len(), 5);
}

#[tokio::test]
async fn dynamodb_numbers_and_every_type_arrive_exactly() {
    let server = lambda_server().await;
    let report = route(&server, &[], "dynamodb/all-types.json").await;
    assert!(
        matches!(report.outcomes[0], Outcome::Invoked { .. }),
        "{:?}",
        report.outcomes
    );
    let request = server
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/invocations"))
        .unwrap();
    let text = String::from_utf8(request.body).unwrap();
    for exact in [
        r#""n":12345678901234567890.123"#,
        r#""ns":[1,-2.5,99999999999999999999999999999999999999]"#,
        r#""deep":0.000000000000000000000000000000000001"#,
        r#""b":"AAEqQQ==""#,
        r#""bs":["AAEqQQ==","QSoBAA=="]"#,
        r#""ss":["red","green"]"#,
        r#""l":["x",1,true,null]"#,
        r#""bool":true"#,
        r#""null":null"#,
    ] {
        assert!(text.contains(exact), "{exact} missing from {text}");
    }
}

#[tokio::test]
async fn remove_uses_the_old_image_and_ttl_deletions_are_marked() {
    let server = lambda_server().await;
    let report = route(&server, &[], "dynamodb/remove-with-old-image.json").await;
    assert!(
        matches!(report.outcomes[0], Outcome::Invoked { .. }),
        "{:?}",
        report.outcomes
    );
    let invoked = invocations(&server).await;
    assert_eq!(invoked[0].envelope["attributes"]["image"], "old");
    assert_eq!(invoked[0].envelope["attributes"]["eventName"], "REMOVE");
    assert!(
        invoked[0].envelope["attributes"]
            .get("ttlDeletion")
            .is_none()
    );

    let server = lambda_server().await;
    let report = route(&server, &[], "dynamodb/ttl-delete.json").await;
    assert!(matches!(report.outcomes[0], Outcome::Invoked { .. }));
    assert_eq!(
        invocations(&server).await[0].envelope["attributes"]["ttlDeletion"],
        true
    );
}

#[tokio::test]
async fn without_an_image_the_keys_are_the_payload() {
    // JWT validation: the keys carry no token, so the record is rejected, with its reason.
    let server = lambda_server().await;
    let report = route(&server, &[], "dynamodb/remove-without-old-image.json").await;
    assert_eq!(report.outcomes[0].reason(), Some("missing-tenant"));

    // A platform-owned table: trusted, tenant from the key prefix.
    let trusted = [
        ("ROUTER_VALIDATION", "jwt;dynamodb=trusted"),
        (
            "ROUTER_TENANT_FROM",
            "payload:/tenantId;dynamodb=key:pk:TENANT#",
        ),
    ];
    for (fixture_name, tenant) in [
        ("dynamodb/remove-without-old-image.json", "globex"),
        ("dynamodb/keys-only.json", "initech"),
    ] {
        let server = lambda_server().await;
        let report = route(&server, &trusted, fixture_name).await;
        assert!(
            matches!(report.outcomes[0], Outcome::Invoked { .. }),
            "{fixture_name}: {:?}",
            report.outcomes
        );
        let invoked = invocations(&server).await;
        assert_eq!(invoked[0].tenant.as_deref(), Some(tenant));
        assert_eq!(invoked[0].envelope["attributes"]["image"], "keys");
        assert_eq!(
            invoked[0].envelope["payload"],
            json!({"pk": format!("TENANT#{tenant}#order#{}", if tenant == "globex" { 7 } else { 8 }),
                   "sk": format!("item#{}", if tenant == "globex" { 7 } else { 8 })})
        );
    }
}

#[tokio::test]
async fn a_key_prefix_names_the_tenant_and_the_token_must_match_it() {
    let server = lambda_server().await;
    let report = route(
        &server,
        &[("ROUTER_TENANT_FROM", "dynamodb=key:pk:TENANT#")],
        "dynamodb/key-prefix-tenant.json",
    )
    .await;
    assert!(
        matches!(report.outcomes[0], Outcome::Invoked { .. }),
        "{:?}",
        report.outcomes
    );
    assert_eq!(
        invocations(&server).await[0].tenant.as_deref(),
        Some("globex")
    );
}

#[tokio::test]
async fn kinesis_tenant_from_the_partition_key() {
    let server = lambda_server().await;
    let report = route(
        &server,
        &[("ROUTER_TENANT_FROM", "kinesis=partition-key")],
        "kinesis/mixed-tenants.json",
    )
    .await;
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. }))
    );
    // A source-specific setting does not leak to another source: SQS keeps the payload pointer.
    let server = lambda_server().await;
    let report = route(
        &server,
        &[("ROUTER_TENANT_FROM", "kinesis=partition-key")],
        "sqs/mixed-tenants.json",
    )
    .await;
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. }))
    );
    // And a source-specific default does not apply elsewhere.
    let server = lambda_server().await;
    let report = route(
        &server,
        &[("ROUTER_TENANT_FROM", "partition-key")],
        "sqs/mixed-tenants.json",
    )
    .await;
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| o.reason() == Some("missing-tenant"))
    );
}

#[tokio::test]
async fn stream_faults_429_then_202_persistent_500_and_413() {
    for fixture_name in ["kinesis/mixed-tenants.json", "dynamodb/mixed-tenants.json"] {
        // 429 once, then accepted: retried, nothing reported.
        let server = bare_server().await;
        Mock::given(method("POST"))
            .and(path_regex(INVOKE_PATH))
            .respond_with(lambda_error(429, "TooManyRequestsException"))
            .up_to_n_times(1)
            .with_priority(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path_regex(INVOKE_PATH))
            .respond_with(ResponseTemplate::new(202))
            .with_priority(2)
            .mount(&server)
            .await;
        let report = route(&server, &[], fixture_name).await;
        assert_eq!(
            report.response,
            json!({"batchItemFailures": []}),
            "{fixture_name}"
        );
        assert_eq!(
            invocations(&server).await.len(),
            5,
            "{fixture_name}: 4 records, 1 retry"
        );

        // Persistent 500 for globex, 413 for initech: the lowest of those records is reported.
        let server = bare_server().await;
        for (tenant, status, error) in [
            ("globex", 500, "ServiceException"),
            ("initech", 413, "RequestTooLargeException"),
        ] {
            Mock::given(method("POST"))
                .and(path_regex(INVOKE_PATH))
                .and(header("x-amz-tenant-id", tenant))
                .respond_with(lambda_error(status, error))
                .with_priority(1)
                .mount(&server)
                .await;
        }
        Mock::given(method("POST"))
            .and(path_regex(INVOKE_PATH))
            .respond_with(ResponseTemplate::new(202))
            .with_priority(2)
            .mount(&server)
            .await;
        let report = route(&server, &[("ROUTER_RETRY_MAX_ATTEMPTS", "3")], fixture_name).await;
        assert_eq!(
            report.outcomes[1].reason(),
            Some("backend-unavailable"),
            "{fixture_name}"
        );
        assert_eq!(
            reported(&report.response),
            [report.ids[1].clone()],
            "{fixture_name}"
        );
        let to_initech = invocations(&server)
            .await
            .iter()
            .filter(|i| i.tenant.as_deref() == Some("initech"))
            .count();
        assert!(to_initech <= 1, "{fixture_name}: a 413 is never retried");
    }
}

#[tokio::test]
async fn upstream_stream_shapes_parse() {
    let server = lambda_server().await;
    let router = router(&server, &[]);
    // The encrypted Kinesis record: "Hello World" is not JSON: rejected, lowest reported.
    let event = std::fs::read_to_string(upstream(
        "aws-lambda-rust-runtime--example-kinesis-event-encrypted.json",
    ))
    .unwrap();
    let report = router.route_event(&event, &info()).await.unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("malformed-data"));
    assert_eq!(
        reported(&report.response),
        ["49568167373333333333333333333333333333333333333333333333"]
    );
    // The DynamoDB record with optional fields (no SequenceNumber, no timestamps) parses; as it
    // has no sequence number, a failure fails the invocation, and success is possible.
    let record: Value = serde_json::from_str(
        &std::fs::read_to_string(upstream(
            "aws-lambda-rust-runtime--example-dynamodb-event-record-with-optional-fields.json",
        ))
        .unwrap(),
    )
    .unwrap();
    let event = json!({"Records": [record]}).to_string();
    let error = router.route_event(&event, &info()).await.unwrap_err();
    assert!(error.to_string().contains("no sequence number"), "{error}");
    let trusted = crate::util::router(
        &server,
        &[
            ("ROUTER_VALIDATION", "trusted"),
            ("ROUTER_TENANT_FROM", "dynamodb=key:id"),
        ],
    );
    let report = trusted.route_event(&event, &info()).await.unwrap();
    assert!(
        matches!(report.outcomes[0], Outcome::Invoked { .. }),
        "{:?}",
        report.outcomes
    );
    // And the full upstream DynamoDB event parses, record by record.
    let event = std::fs::read_to_string(upstream(
        "aws-lambda-rust-runtime--example-dynamodb-event.json",
    ))
    .unwrap();
    let report = router.route_event(&event, &info()).await.unwrap();
    assert!(!report.outcomes.is_empty());
}

/// The stream gate spans keys: once key A's record has failed, key B's later record with a
/// higher sequence number is not started, although key B itself never failed. The order is made
/// deterministic by a slow first record of key B: key A's failure is known before B's second
/// record is taken.
#[tokio::test]
async fn a_failure_in_one_key_stops_higher_records_of_every_other_key() {
    use cross_crate_tests::kinesis_record;
    let data = |tenant: &str| data(tenant, tenant);
    let event = json!({"Records": [
        kinesis_record("100", "key-b", &data("acme")),
        kinesis_record("200", "key-a", &data("globex")),
        kinesis_record("300", "key-b", &data("acme")),
    ]})
    .to_string();
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .and(wiremock::matchers::body_string_contains("\"id\":\"100\""))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_millis(400)))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .and(wiremock::matchers::body_string_contains("\"id\":\"200\""))
        .respond_with(lambda_error(500, "ServiceException"))
        .with_priority(1)
        .mount(&server)
        .await;
    accept_the_rest(&server).await;
    let router = router(&server, &[("ROUTER_RETRY_MAX_ATTEMPTS", "1")]);
    let report = router.route_event(&event, &info()).await.expect("a batch");

    assert_eq!(report.outcomes[0], Outcome::Invoked { attempts: 1 });
    assert_eq!(report.outcomes[1].reason(), Some("backend-unavailable"));
    assert_eq!(
        report.outcomes[2].reason(),
        Some("earlier-record-failed"),
        "{:?}",
        report.outcomes[2]
    );
    let invoked = ids_invoked(&invocations(&server).await);
    assert!(!invoked.contains(&"300".to_owned()), "{invoked:?}");
    assert_eq!(reported(&report.response), ["200"]);
}

/// In `tenant-batch` mode a stream record stopped by the gate at its turn does not stop its
/// lane's earlier record still waiting in a chunk: that record, below the lowest failure, is
/// delivered, and only the failure and what is above it are reported.
#[tokio::test]
async fn a_record_stopped_at_its_turn_leaves_its_lanes_earlier_record_to_be_delivered() {
    use cross_crate_tests::kinesis_record;
    let event = json!({"Records": [
        kinesis_record("3", "key-l", &data("acme", "acme")),
        // Rejected (the token is another tenant's) and, with no quarantine queue, reported.
        kinesis_record("5", "key-m", &data("globex", "initech")),
        kinesis_record("20", "key-l", &data("acme", "acme")),
    ]})
    .to_string();
    let server = lambda_server().await;
    let router = router(&server, &[("ROUTER_DELIVERY", "tenant-batch")]);
    let report = router.route_event(&event, &info()).await.expect("a batch");
    assert_eq!(
        report.outcomes[0],
        Outcome::Invoked { attempts: 1 },
        "{:?}",
        report.outcomes
    );
    assert_eq!(report.outcomes[1].reason(), Some("tenant-mismatch"));
    assert_eq!(report.outcomes[2].reason(), Some("earlier-record-failed"));
    assert_eq!(reported(&report.response), ["5"]);
    let invoked = ids_invoked(&chunk_records(&server).await);
    assert_eq!(invoked, ["3"]);
}

/// The envelopes every Invoke carried (a tenant batch's records, or a plain envelope).
async fn chunk_records(server: &MockServer) -> Vec<Invocation> {
    invocations(server)
        .await
        .into_iter()
        .flat_map(
            |i| match i.envelope.get("records").and_then(Value::as_array) {
                Some(records) => records
                    .iter()
                    .map(|e| Invocation {
                        envelope: e.clone(),
                        ..i.clone()
                    })
                    .collect(),
                None => vec![i],
            },
        )
        .collect()
}

/// Kinesis data of `tenant` whose token is signed for `token_for`.
fn data(tenant: &str, token_for: &str) -> Vec<u8> {
    use cross_crate_tests::{TestKey, body, claims, sign};
    body(
        tenant,
        &sign(TestKey::Es256, &claims(token_for)),
        json!({"n": 1}),
    )
    .into_bytes()
}
