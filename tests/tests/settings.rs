//! The configurable parts of decoding and identity: where the tenant and token come from, `typ`,
//! trusted mode with its allow-list, and the in-flight bound.

use cross_crate_tests::info;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cross_crate_tests::{
    FakeBackend, T0_MS, TestKey, claims, fake_router, into_fifo, sign, sqs_event, sqs_record,
    workload,
};
use router::Outcome;
use serde_json::{Value, json};

fn with_attributes(mut record: Value, attributes: &[(&str, &str)]) -> Value {
    for (name, value) in attributes {
        record["messageAttributes"][*name] = json!({"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"});
    }
    record
}

fn tenants_invoked(router: &router::Router<FakeBackend>) -> Vec<String> {
    let invoked = router.backend().invoked.lock().unwrap();
    invoked.iter().map(|(tenant, _)| tenant.clone()).collect()
}

#[tokio::test]
async fn tenant_and_token_from_message_attributes() {
    let token = sign(TestKey::Es256, &claims("acme"));
    let record = with_attributes(
        sqs_record("attr-1", r#"{"item": 1}"#, T0_MS),
        &[("tenant", "acme"), ("token", &token)],
    );
    let router = fake_router(
        FakeBackend::recording(),
        &[
            ("ROUTER_TENANT_FROM", "attribute:tenant"),
            ("ROUTER_TOKEN_FROM", "attribute:token"),
        ],
    );
    let report = router
        .route_event(&sqs_event(vec![record]).to_string(), &info())
        .await
        .unwrap();
    assert!(
        matches!(report.outcomes[0], Outcome::Invoked { .. }),
        "{:?}",
        report.outcomes
    );
    assert_eq!(tenants_invoked(&router), ["acme"]);

    // Without the attribute: a clear rejection.
    let bare = sqs_record("attr-2", r#"{"item": 1}"#, T0_MS);
    let report = router
        .route_event(&sqs_event(vec![bare]).to_string(), &info())
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("missing-tenant"));
}

#[tokio::test]
async fn tenant_from_the_fifo_message_group_id() {
    let token = sign(TestKey::EdDsa, &claims("globex"));
    let body = json!({"tenantToken": token, "item": 1}).to_string();
    let record = into_fifo(sqs_record("group-1", &body, T0_MS), "globex", 1);
    let router = fake_router(
        FakeBackend::recording(),
        &[("ROUTER_TENANT_FROM", "message-group-id")],
    );
    let report = router
        .route_event(&sqs_event(vec![record]).to_string(), &info())
        .await
        .unwrap();
    assert!(
        matches!(report.outcomes[0], Outcome::Invoked { .. }),
        "{:?}",
        report.outcomes
    );
    assert_eq!(tenants_invoked(&router), ["globex"]);
}

#[tokio::test]
async fn a_missing_or_non_string_token_is_rejected() {
    let router = fake_router(FakeBackend::recording(), &[]);
    for (body, reason) in [
        (json!({"tenantId": "acme"}), "missing-token"),
        (
            json!({"tenantId": "acme", "tenantToken": 42}),
            "token-malformed",
        ),
        (json!({"tenantId": 7, "tenantToken": "x"}), "missing-tenant"),
    ] {
        let record = sqs_record("t-1", &body.to_string(), T0_MS);
        let report = router
            .route_event(&sqs_event(vec![record]).to_string(), &info())
            .await
            .unwrap();
        assert_eq!(report.outcomes[0].reason(), Some(reason), "{body}");
    }
}

#[tokio::test]
async fn a_configured_typ_is_required() {
    let event = workload(1, 1, TestKey::Es256, 10); // tokens carry typ "JWT"
    let strict = fake_router(
        FakeBackend::recording(),
        &[("ROUTER_JWT_TYP", "tenant+jwt")],
    );
    let report = strict.route_event(&event, &info()).await.unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("token-type-mismatch"));
    let matching = fake_router(FakeBackend::recording(), &[("ROUTER_JWT_TYP", "jwt")]);
    let report = matching.route_event(&event, &info()).await.unwrap();
    assert!(matches!(report.outcomes[0], Outcome::Invoked { .. }));
}

#[tokio::test]
async fn trusted_mode_needs_no_token_but_keeps_the_pattern_and_allow_list() {
    let router = fake_router(
        FakeBackend::recording(),
        &[
            ("ROUTER_VALIDATION", "trusted"),
            ("ROUTER_TRUSTED_TENANTS", "acme,globex"),
        ],
    );
    let records = vec![
        sqs_record("tr-1", &json!({"tenantId": "acme"}).to_string(), T0_MS),
        sqs_record("tr-2", &json!({"tenantId": "initech"}).to_string(), T0_MS),
        sqs_record("tr-3", &json!({"tenantId": "acme#1"}).to_string(), T0_MS),
        sqs_record(
            "tr-4",
            &json!({"tenantId": "globex", "tenantToken": "ignored"}).to_string(),
            T0_MS,
        ),
    ];
    let report = router
        .route_event(&sqs_event(records).to_string(), &info())
        .await
        .unwrap();
    assert!(matches!(report.outcomes[0], Outcome::Invoked { .. }));
    assert_eq!(report.outcomes[1].reason(), Some("tenant-not-allowed"));
    assert_eq!(report.outcomes[2].reason(), Some("invalid-tenant-id"));
    assert!(matches!(report.outcomes[3], Outcome::Invoked { .. }));
    assert_eq!(tenants_invoked(&router), ["acme", "globex"]);
    // The token field is removed even in trusted mode.
    let invoked = router.backend().invoked.lock().unwrap();
    let envelope: Value = serde_json::from_slice(&invoked[1].1).unwrap();
    assert!(envelope["payload"].get("tenantToken").is_none());
}

#[tokio::test]
async fn invokes_in_flight_never_exceed_the_limit() {
    let backend = FakeBackend {
        latency: Duration::from_millis(5),
        ..FakeBackend::default()
    };
    let router = fake_router(backend, &[("ROUTER_MAX_IN_FLIGHT", "4")]);
    let report = router
        .route_event(&workload(64, 8, TestKey::Es256, 10), &info())
        .await
        .unwrap();
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. }))
    );
    let peak = router.backend().max_in_flight.load(Ordering::SeqCst);
    assert!(peak <= 4, "{peak} Invokes were in flight at once");
    assert!(peak > 1, "records of a standard queue run concurrently");
}

#[tokio::test]
async fn records_of_one_fifo_group_run_one_at_a_time() {
    let backend = FakeBackend {
        latency: Duration::from_millis(2),
        record: true,
        ..FakeBackend::default()
    };
    let router = fake_router(backend, &[("ROUTER_MAX_IN_FLIGHT", "8")]);
    let token = sign(TestKey::Es256, &claims("acme"));
    let records = (0..10)
        .map(|i| {
            let body = json!({"tenantId": "acme", "tenantToken": token, "n": i}).to_string();
            into_fifo(sqs_record(&format!("g-{i}"), &body, T0_MS), "only-group", i)
        })
        .collect();
    let report = router
        .route_event(&sqs_event(records).to_string(), &info())
        .await
        .unwrap();
    assert!(
        report
            .outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. }))
    );
    assert_eq!(router.backend().max_in_flight.load(Ordering::SeqCst), 1);
    // And in order.
    let invoked = router.backend().invoked.lock().unwrap();
    let order: Vec<u64> = invoked
        .iter()
        .map(|(_, payload)| {
            let envelope: Value = serde_json::from_slice(payload).unwrap();
            envelope["payload"]["n"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(order, (0..10).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_unreadable_record_is_rejected_alone() {
    // A numeric attribute value cannot be read as an SQS message, but its messageId can.
    let mut bad = sqs_record("odd-1", "{}", T0_MS);
    bad["attributes"]["ApproximateReceiveCount"] = json!(1);
    let token = sign(TestKey::Es256, &claims("acme"));
    let good = sqs_record(
        "good-1",
        &json!({"tenantId": "acme", "tenantToken": token}).to_string(),
        T0_MS,
    );
    let router = fake_router(FakeBackend::recording(), &[]);
    let report = router
        .route_event(&sqs_event(vec![bad, good]).to_string(), &info())
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("malformed-record"));
    assert!(matches!(report.outcomes[1], Outcome::Invoked { .. }));
    assert_eq!(
        report.response["batchItemFailures"][0]["itemIdentifier"],
        "odd-1"
    );
}
