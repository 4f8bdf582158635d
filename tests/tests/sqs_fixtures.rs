//! Every recorded SQS fixture through the real handler and SDK: outcomes, reasons, the batch
//! response, and exactly what reached the Invoke API.

use std::time::Duration;

use router::InvocationInfo;
use router::Outcome;
use serde_json::json;

use crate::util::*;

/// Routes a fixture and returns (ids, outcomes, response, invocations).
async fn run(
    name: &str,
) -> (
    Vec<String>,
    Vec<Outcome>,
    serde_json::Value,
    Vec<Invocation>,
) {
    let server = lambda_server().await;
    let router = router(&server, &[]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router
        .route_event(&fixture(&format!("sqs/{name}.json")), &info)
        .await
        .expect("a batch");
    let invocations = invocations(&server).await;
    (report.ids, report.outcomes, report.response, invocations)
}

#[tokio::test]
async fn mixed_tenants_are_all_invoked_with_their_own_tenant_id() {
    let (ids, outcomes, response, invocations) = run("mixed-tenants").await;
    assert_eq!(ids.len(), 6);
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { attempts: 1 })),
        "{outcomes:?}"
    );
    assert_eq!(response, json!({"batchItemFailures": []}));
    assert_eq!(invocations.len(), 6);
    for invocation in &invocations {
        assert_eq!(invocation.function, "backend");
        assert_eq!(invocation.invocation_type.as_deref(), Some("Event"));
        let envelope = &invocation.envelope;
        // The header tenant is the envelope tenant, which is the proven tenant.
        assert_eq!(invocation.tenant.as_deref(), envelope["tenantId"].as_str());
        assert_eq!(envelope["version"], 1);
        assert_eq!(envelope["source"], "sqs");
        assert_eq!(envelope["eventSourceArn"], cross_crate_tests::QUEUE_ARN);
        assert_eq!(
            envelope["idempotencyKey"],
            format!(
                "{}#{}",
                cross_crate_tests::QUEUE_ARN,
                envelope["id"].as_str().unwrap()
            )
        );
        assert_eq!(envelope["arrivedAt"], "2026-01-01T00:00:00.000Z");
        assert!(
            envelope["correlationId"]
                .as_str()
                .is_some_and(|c| !c.is_empty())
        );
        // The token never leaves the router.
        assert!(
            envelope["payload"].get("tenantToken").is_none(),
            "{envelope}"
        );
        assert!(
            !envelope.to_string().contains("eyJ"),
            "no JWT fragment in {envelope}"
        );
    }
    let counts = per_tenant(&invocations);
    assert_eq!(counts["acme"], 2);
    assert_eq!(counts["globex"], 2);
    assert_eq!(counts["initech"], 2);

    let by_id = |id: &str| {
        invocations
            .iter()
            .find(|i| i.envelope["id"] == id)
            .expect("invoked")
            .envelope
            .clone()
    };
    // SNS: the inner message is the payload.
    let sns = by_id("mixed-5");
    assert_eq!(sns["tenantId"], "globex");
    assert_eq!(sns["attributes"]["carriedBy"], "sns");
    assert_eq!(sns["payload"]["item"]["id"], 5);
    // EventBridge: `detail` is the payload; its correlation id is used.
    let eb = by_id("mixed-6");
    assert_eq!(eb["tenantId"], "initech");
    assert_eq!(eb["attributes"]["carriedBy"], "eventbridge");
    assert_eq!(eb["correlationId"], "corr-eb-6");
    assert_eq!(eb["payload"]["item"]["id"], 6);
}

/// Each single-record rejection fixture: rejected with its reason, reported (no quarantine queue
/// is configured), and never invoked.
#[tokio::test]
async fn each_bad_record_is_rejected_with_its_reason_and_never_invoked() {
    let cases = [
        ("alg-none", "token-algorithm-refused"),
        ("hs256-with-rsa-public-key", "token-algorithm-refused"),
        ("unknown-kid", "token-unknown-key"),
        ("expired-at-arrival", "token-expired"),
        ("nbf-in-future", "token-not-yet-valid"),
        ("string-exp", "token-non-numeric-time"),
        ("wrong-iss", "token-issuer"),
        ("wrong-aud", "token-audience"),
        ("no-tenant-claim", "token-missing-tenant-claim"),
        ("tenant-mismatch-case", "tenant-mismatch"),
        ("tenant-trailing-space", "invalid-tenant-id"),
        ("token-9kib", "token-too-large"),
        ("tenant-257-chars", "invalid-tenant-id"),
        ("tenant-forbidden-char", "invalid-tenant-id"),
        ("malformed-body", "malformed-body"),
        ("oversized-envelope", "envelope-too-large"),
    ];
    for (name, reason) in cases {
        let (ids, outcomes, response, invocations) = run(name).await;
        assert_eq!(outcomes.len(), 1, "{name}");
        match &outcomes[0] {
            Outcome::Rejected {
                reason: got,
                quarantined: false,
                ..
            } => assert_eq!(*got, reason, "{name}"),
            other => panic!("{name}: expected a rejection, got {other:?}"),
        }
        assert_eq!(
            reported(&response),
            ids,
            "{name}: reported without a quarantine queue"
        );
        assert!(invocations.is_empty(), "{name}: nothing may be invoked");
    }
}

#[tokio::test]
async fn a_backlog_record_is_judged_at_its_arrival_time() {
    let (_, outcomes, response, invocations) = run("backlog-expired-now").await;
    assert!(
        matches!(outcomes[0], Outcome::Invoked { .. }),
        "{outcomes:?}"
    );
    assert!(reported(&response).is_empty());
    assert_eq!(invocations.len(), 1);
}

#[tokio::test]
async fn a_max_record_age_bounds_replay() {
    let server = lambda_server().await;
    let router = router(&server, &[("ROUTER_MAX_RECORD_AGE_SECONDS", "3600")]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router
        .route_event(&fixture("sqs/backlog-expired-now.json"), &info)
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("record-too-old"));
    assert!(invocations(&server).await.is_empty());
}

#[tokio::test]
async fn fifo_groups_stop_after_a_failure_while_other_groups_go_on() {
    let (ids, outcomes, response, invocations) = run("fifo-groups").await;
    assert_eq!(ids, ["fifo-1", "fifo-2", "fifo-3", "fifo-4", "fifo-5"]);
    assert!(matches!(outcomes[0], Outcome::Invoked { .. }));
    assert!(matches!(outcomes[1], Outcome::Invoked { .. }));
    assert_eq!(outcomes[2].reason(), Some("tenant-mismatch"));
    assert!(matches!(outcomes[3], Outcome::Invoked { .. }));
    assert_eq!(outcomes[4].reason(), Some("earlier-record-failed"));
    assert_eq!(reported(&response), ["fifo-3", "fifo-5"]);
    let invoked: Vec<_> = invocations
        .iter()
        .map(|i| i.envelope["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(invoked.len(), 3);
    assert!(
        !invoked.contains(&"fifo-5".to_owned()),
        "fifo-5 must not be invoked"
    );
    // Within a group, invokes arrive in order.
    let globex: Vec<_> = invoked
        .iter()
        .filter(|id| *id == "fifo-2" || *id == "fifo-4")
        .collect();
    assert_eq!(globex, ["fifo-2", "fifo-4"]);
    let fifo1 = invocations
        .iter()
        .find(|i| i.envelope["id"] == "fifo-1")
        .unwrap();
    assert_eq!(fifo1.envelope["attributes"]["messageGroupId"], "acme");
}

#[tokio::test]
async fn upstream_shapes_are_recognised() {
    // The recorded upstream events parse; their plain-text bodies are rejected, one by one.
    let server = lambda_server().await;
    let router = router(&server, &[]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    for (name, ids) in [
        (
            "aws-lambda-developer-guide--sqs-record.json",
            vec!["19dd0b57-b21e-4ac1-bd88-01bbb068cb78"],
        ),
        (
            "aws-lambda-rust-runtime--example-sqs-event.json",
            vec!["MessageID_1"],
        ),
    ] {
        let event = std::fs::read_to_string(upstream(name)).expect("tests/fixtures/upstream");
        let report = router.route_event(&event, &info).await.unwrap();
        assert_eq!(report.ids, ids, "{name}");
        assert!(
            report
                .outcomes
                .iter()
                .all(|o| o.reason() == Some("malformed-body")),
            "{name}: {:?}",
            report.outcomes
        );
        assert_eq!(reported(&report.response), ids, "{name}");
    }
}

#[tokio::test]
async fn an_empty_batch_succeeds_and_a_foreign_event_is_an_error() {
    let server = lambda_server().await;
    let router = router(&server, &[]);
    let response = handle(&router, r#"{"Records": []}"#).await;
    assert_eq!(response, json!({"batchItemFailures": []}));
    let info = InvocationInfo::with_budget(Duration::from_secs(5), Duration::from_millis(100));
    for event in [
        r#"{"hello": "world"}"#,
        "[1,2]",
        "not json",
        r#"{"Records":[{"eventSource":"aws:s3"}]}"#,
    ] {
        assert!(router.handle(event, &info).await.is_err(), "{event}");
    }
    // A record without messageId cannot be reported: the whole invocation fails, loudly.
    let no_id = r#"{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}"#;
    let error = router.handle(no_id, &info).await.unwrap_err();
    assert!(
        error.to_string().contains("record 0 has no messageId"),
        "{error}"
    );
}

/// A payload that gives the tenant's key, or the token's, twice is refused: JSON parsers
/// disagree on which copy counts, so the router never proves one tenant while the backend's
/// parser reads the other. Nothing is invoked.
#[tokio::test]
async fn a_key_given_twice_on_the_tenant_or_token_path_is_refused() {
    use cross_crate_tests::{T0_MS, TestKey, claims, sign, sqs_event, sqs_record};
    let token = sign(TestKey::Es256, &claims("acme"));
    let bodies = [
        format!(r#"{{"tenantId":"globex","tenantId":"acme","tenantToken":"{token}"}}"#),
        format!(r#"{{"tenantId":"acme","tenantToken":"{token}","tenantToken":"{token}"}}"#),
    ];
    let records = bodies
        .iter()
        .enumerate()
        .map(|(i, b)| sqs_record(&format!("m{i}"), b, T0_MS))
        .collect();
    let server = lambda_server().await;
    let router = router(&server, &[]);
    let report = router
        .route_event(
            &sqs_event(records).to_string(),
            &InvocationInfo::with_budget(
                std::time::Duration::from_secs(10),
                std::time::Duration::from_millis(100),
            ),
        )
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("missing-tenant"));
    assert_eq!(report.outcomes[1].reason(), Some("token-malformed"));
    assert!(invocations(&server).await.is_empty());
}
