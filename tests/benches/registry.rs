//! What the tenant registry costs per batch: the router's registry (`router::registry`) looking
//! up the tenants of one batch in a DynamoDB table on moto's server (started here, on
//! 127.0.0.1) — cold, one `BatchGetItem` round for every tenant, and warm, every tenant in the
//! cache. The local server is Python; DynamoDB in region answers a `BatchGetItem` in single-digit
//! milliseconds, so read the cold figures as the router's overhead plus a round trip.
//!
//! `cargo bench -p cross-crate-tests --bench registry`

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use router::config::{RegistrySettings, Suspended};
use router::registry::{DynamoDbDirectory, Lookup, Registry, Standing};
use router::retry::{Deadline, RetryPolicy};
use shared::TenantId;

const RETRY: RetryPolicy = RetryPolicy {
    max_attempts: 3,
    base_delay: Duration::from_millis(10),
    max_delay: Duration::from_millis(100),
};

fn registry(client: &aws_sdk_dynamodb::Client) -> Registry {
    Registry::new(
        RegistrySettings {
            table: "tenants".into(),
            ttl: Duration::from_secs(60),
            cache_size: 10_000,
            suspended: Suspended::Reject,
        },
        Box::new(DynamoDbDirectory(client.clone())),
    )
}

async fn look_up_all(registry: &Registry, tenants: &[TenantId]) {
    let deadline = Deadline::after(Duration::from_secs(30), Duration::ZERO);
    let answers =
        futures::future::join_all(tenants.iter().map(|t| registry.lookup(t, RETRY, deadline)))
            .await;
    assert!(
        answers
            .iter()
            .all(|a| *a == Lookup::Known(Standing::Active))
    );
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = testkit::Moto::start();
    let client = testkit::dynamodb_client(moto.endpoint());
    let names: Vec<String> = (0..100).map(|n| format!("tenant-{n:03}")).collect();
    let rows: Vec<(&str, &str)> = names.iter().map(|n| (n.as_str(), "active")).collect();
    runtime.block_on(testkit::create_registry_table(&client, "tenants", &rows));
    let mut group = c.benchmark_group("registry");
    for count in [1usize, 10, 100] {
        let tenants: Vec<TenantId> = names[..count]
            .iter()
            .map(|n| TenantId::parse(n).unwrap())
            .collect();
        group.bench_with_input(BenchmarkId::new("cold", count), &tenants, |b, tenants| {
            b.iter(|| runtime.block_on(look_up_all(&registry(&client), tenants)));
        });
        let warm = registry(&client);
        runtime.block_on(look_up_all(&warm, &tenants));
        group.bench_with_input(BenchmarkId::new("cached", count), &tenants, |b, tenants| {
            b.iter(|| runtime.block_on(look_up_all(&warm, tenants)));
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
