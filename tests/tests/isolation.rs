//! One record's bug never fails the batch: a panic on one record's path fails that record alone.

use std::time::Duration;

use cross_crate_tests::{FakeBackend, TestKey, fake_router, workload};
use router::InvocationInfo;
use router::Outcome;

#[tokio::test]
async fn a_panic_in_one_record_fails_only_that_record() {
    let backend = FakeBackend {
        record: true,
        panic_for: Some("tenant-0001".into()),
        ..FakeBackend::default()
    };
    let router = fake_router(backend, &[]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router
        .route_event(&workload(6, 3, TestKey::Es256, 10), &info)
        .await
        .expect("the batch is answered");
    for (i, outcome) in report.outcomes.iter().enumerate() {
        if i % 3 == 1 {
            assert_eq!(outcome.reason(), Some("internal-error"), "record {i}");
            assert!(outcome.is_reported());
        } else {
            assert!(
                matches!(outcome, Outcome::Invoked { .. }),
                "record {i}: {outcome:?}"
            );
        }
    }
    let failures = report.response["batchItemFailures"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(failures, 2);
}

#[tokio::test]
async fn the_verified_token_cache_gives_the_same_verdicts() {
    // With and without the cache, a batch whose tokens repeat routes identically.
    let event = workload(50, 5, TestKey::EdDsa, 10);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let cached = fake_router(FakeBackend::recording(), &[]);
    let uncached = fake_router(FakeBackend::recording(), &[("ROUTER_JWT_CACHE_SIZE", "0")]);
    let a = cached.route_event(&event, &info).await.unwrap();
    let b = uncached.route_event(&event, &info).await.unwrap();
    assert_eq!(a.outcomes, b.outcomes);
    assert!(
        a.outcomes
            .iter()
            .all(|o| matches!(o, Outcome::Invoked { .. }))
    );
    // A cached token is still judged per record: a record for another tenant is refused.
    let mismatch = workload(1, 1, TestKey::EdDsa, 10).replace(
        "\\\"tenantId\\\":\\\"tenant-0000\\\"",
        "\\\"tenantId\\\":\\\"tenant-0001\\\"",
    );
    assert_ne!(mismatch, workload(1, 1, TestKey::EdDsa, 10));
    let c = cached.route_event(&mismatch, &info).await.unwrap();
    assert_eq!(c.outcomes[0].reason(), Some("tenant-mismatch"));
}
