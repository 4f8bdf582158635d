//! The whole system end to end, as the main job runs it: moto's queues, stream and table feed the
//! router through `local-lambda`'s event source mappings, the router feeds the tenant-isolated
//! backend, and every produced record is found again at exactly one end. Needs the `router` and
//! `backend` binaries of this build (`cargo test --workspace` builds them).

use std::path::PathBuf;
use std::time::Duration;

use cross_crate_tests::whole_system::{NO_TENANT, Options, TENANTS, render, run};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_from_every_source_ends_processed_quarantined_or_dead_lettered() {
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .unwrap();
    for binary in ["router", "backend"] {
        assert!(
            repository.join("target/debug").join(binary).is_file(),
            "target/debug/{binary} is missing: run `cargo build -p router -p backend` (cargo test --workspace builds it)"
        );
    }
    let per_tenant = 3;
    let options = Options {
        repository,
        timeout: Duration::from_secs(240),
        per_tenant,
    };
    let report = run(&options).await.unwrap();
    let table = render(&report);
    assert!(report.all_well(), "{table}");
    for tenant in TENANTS {
        let row = &report.tenants[tenant];
        // Every good to-do of each of the four sources, exactly once (the idempotency table).
        assert_eq!(row.processed, 4 * per_tenant, "{tenant}\n{table}");
        assert!(!row.environments.is_empty(), "{table}");
    }
    // The poison message of the standard queue went to its DLQ after maxReceiveCount receives;
    // the poison Kinesis record to the on-failure destination after its retries.
    assert_eq!(report.tenants["acme"].dead_lettered, 1, "{table}");
    assert!(report.tenants["acme"].redelivered >= 1, "{table}");
    assert_eq!(report.tenants["globex"].dead_lettered, 1, "{table}");
    assert!(report.tenants["globex"].redelivered >= 1, "{table}");
    assert_eq!(
        report.tenants[NO_TENANT].quarantined, 1,
        "the malformed body\n{table}"
    );
    for reason in [
        "malformed-body",
        "tenant-mismatch",
        "token-algorithm-refused",
        "token-expired",
        "missing-token",
    ] {
        assert_eq!(report.reasons.get(reason), Some(&1), "{reason}\n{table}");
    }
    let produced: usize = report.tenants.values().map(|r| r.produced).sum();
    let ended: usize = report
        .tenants
        .values()
        .map(|r| r.processed + r.quarantined + r.dead_lettered)
        .sum();
    assert_eq!(produced, ended, "nothing lost\n{table}");
}
