//! The tenant registry against a real DynamoDB API server (moto's, started by the test): who may
//! send, suspension taking effect within the TTL, `hold` keeping the records at their source, and
//! an unreadable registry never admitting a record.

use std::time::Duration;

use cross_crate_tests::{FakeBackend, T0_MS, sqs_event, sqs_record};
use router::registry::DynamoDbDirectory;
use router::{InvocationInfo, Outcome, Router};
use serde_json::json;

const TABLE: &str = "tenants";

async fn registry_table(client: &aws_sdk_dynamodb::Client, tenants: &[(&str, &str)]) {
    testkit::create_registry_table(client, TABLE, tenants).await;
}

async fn set_status(client: &aws_sdk_dynamodb::Client, tenant: &str, status: &str) {
    testkit::set_tenant_status(client, TABLE, tenant, status).await;
}

fn router(client: &aws_sdk_dynamodb::Client, extra: &[(&str, &str)]) -> Router<FakeBackend> {
    let mut settings = vec![
        ("ROUTER_BACKEND_FUNCTION", "backend"),
        ("ROUTER_VALIDATION", "trusted"),
        ("ROUTER_TENANT_REGISTRY_TABLE", TABLE),
        ("ROUTER_RETRY_MAX_ATTEMPTS", "2"),
    ];
    settings.extend_from_slice(extra);
    let config = router::Config::from_lookup(|name| {
        settings
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .unwrap();
    Router::new(config, FakeBackend::recording())
        .unwrap()
        .with_registry(Box::new(DynamoDbDirectory(client.clone())))
}

/// One SQS record per tenant, ids `m-<tenant>`.
fn event(tenants: &[&str]) -> String {
    let records = tenants
        .iter()
        .map(|t| {
            let body = json!({"tenantId": t, "item": {"n": 1}}).to_string();
            sqs_record(&format!("m-{t}"), &body, T0_MS)
        })
        .collect();
    sqs_event(records).to_string()
}

fn info() -> InvocationInfo {
    InvocationInfo {
        now_ms: T0_MS,
        ..cross_crate_tests::info_for(Duration::from_secs(20))
    }
}

fn invoked_tenants(router: &Router<FakeBackend>) -> Vec<String> {
    let mut tenants: Vec<String> = router
        .backend()
        .invoked
        .lock()
        .unwrap()
        .iter()
        .map(|(t, _)| t.clone())
        .collect();
    tenants.sort();
    tenants
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_active_tenants_reach_the_backend() {
    let moto = testkit::Moto::start();
    let client = testkit::dynamodb_client(moto.endpoint());
    registry_table(
        &client,
        &[
            ("acme", "active"),
            ("globex", "suspended"),
            ("odd", "paused"),
        ],
    )
    .await;
    // No quarantine queue here, so a rejected record is reported too; the outcome tells the two
    // modes apart.
    for (mode, held) in [("reject", false), ("hold", true)] {
        let router = router(&client, &[("ROUTER_SUSPENDED_TENANTS", mode)]);
        let report = router
            .route_event(&event(&["acme", "globex", "initech", "odd"]), &info())
            .await
            .unwrap();
        assert_eq!(
            report.outcomes[0],
            Outcome::Invoked { attempts: 1 },
            "{mode}"
        );
        assert_eq!(
            report.outcomes[1].reason(),
            Some("tenant-suspended"),
            "{mode}"
        );
        assert_eq!(
            report.outcomes[1].name(),
            if held { "failed" } else { "rejected" },
            "{mode}"
        );
        assert_eq!(
            report.outcomes[2].reason(),
            Some("tenant-unknown"),
            "{mode}"
        );
        assert_eq!(report.outcomes[2].name(), "rejected");
        assert_eq!(
            report.outcomes[3].reason(),
            Some("tenant-unknown"),
            "{mode}"
        );
        assert!(
            report.outcomes[3].detail().unwrap().contains("\"paused\""),
            "{:?}",
            report.outcomes[3]
        );
        assert_eq!(invoked_tenants(&router), ["acme"], "{mode}");
        let failures = report.response["batchItemFailures"].as_array().unwrap();
        assert!(failures.iter().any(|f| f["itemIdentifier"] == "m-globex"));
        assert!(!failures.iter().any(|f| f["itemIdentifier"] == "m-acme"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspension_takes_effect_within_the_ttl() {
    let moto = testkit::Moto::start();
    let client = testkit::dynamodb_client(moto.endpoint());
    registry_table(&client, &[("acme", "active")]).await;
    let router = router(&client, &[("ROUTER_TENANT_REGISTRY_TTL_SECONDS", "1")]);
    let route = || async {
        router
            .route_event(&event(&["acme"]), &info())
            .await
            .unwrap()
    };
    assert_eq!(route().await.outcomes[0], Outcome::Invoked { attempts: 1 });
    set_status(&client, "acme", "suspended").await;
    // Still believed active from the cache: the registry was not read again.
    assert_eq!(route().await.outcomes[0], Outcome::Invoked { attempts: 1 });
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(route().await.outcomes[0].reason(), Some("tenant-suspended"));
    // Reinstated: back within the TTL as well.
    set_status(&client, "acme", "active").await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(route().await.outcomes[0], Outcome::Invoked { attempts: 1 });
    assert_eq!(invoked_tenants(&router), ["acme", "acme", "acme"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_registry_admits_nobody() {
    let moto = testkit::Moto::start();
    let client = testkit::dynamodb_client(moto.endpoint());
    // No table: DynamoDB answers ResourceNotFoundException.
    let router = router(&client, &[]);
    let report = router
        .route_event(&event(&["acme", "globex"]), &info())
        .await
        .unwrap();
    for outcome in &report.outcomes {
        assert_eq!(
            outcome.reason(),
            Some("registry-unavailable"),
            "{outcome:?}"
        );
        assert!(outcome.is_reported());
        assert!(
            outcome
                .detail()
                .unwrap()
                .contains("ResourceNotFoundException"),
            "{outcome:?}"
        );
    }
    assert!(invoked_tenants(&router).is_empty());
    // The server gone: a network failure, retried, then unavailable as well.
    drop(moto);
    let report = router
        .route_event(&event(&["acme"]), &info())
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("registry-unavailable"));
    assert!(invoked_tenants(&router).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_configured_without_a_client_admits_nobody() {
    let config = router::Config::from_lookup(|name| {
        [
            ("ROUTER_BACKEND_FUNCTION", "backend"),
            ("ROUTER_VALIDATION", "trusted"),
            ("ROUTER_TENANT_REGISTRY_TABLE", TABLE),
        ]
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
    })
    .unwrap();
    let router = Router::new(config, FakeBackend::recording()).unwrap();
    let report = router
        .route_event(&event(&["acme"]), &info())
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("registry-unavailable"));
    assert!(invoked_tenants(&router).is_empty());
}
