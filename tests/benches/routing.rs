//! Criterion benchmarks of the router's CPU cost with an in-process invoker (no network):
//! - `record/<alg>/{cached,uncached}`: one record through decode + verify + envelope + the batch
//!   core, with the verified-token cache hit, and with the cache off (a full signature check);
//! - `batch-1000/{cached,uncached}`: a 1,000-record batch of 100 tenants (ES256, one token per
//!   tenant, ~1 KB payloads).
//!
//! Run: `cargo bench -p cross-crate-tests --bench routing`. Results go in BENCHMARKS.md.

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cross_crate_tests::{FakeBackend, TestKey, fake_router, workload};
use router::InvocationInfo;

/// The router binary's allocator, so that these figures are the deployed code's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn info() -> InvocationInfo {
    cross_crate_tests::info_for(Duration::from_secs(600))
}

fn per_record(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    for key in [
        TestKey::Rs256,
        TestKey::Es256,
        TestKey::Es384,
        TestKey::EdDsa,
    ] {
        let event = workload(1, 1, key, 1000);
        for (label, cache) in [("cached", "10000"), ("uncached", "0")] {
            let router = fake_router(FakeBackend::default(), &[("ROUTER_JWT_CACHE_SIZE", cache)]);
            let id = BenchmarkId::new(format!("{:?}", key.algorithm()), label);
            group.bench_with_input(id, &event, |b, event| {
                b.iter(|| {
                    let report = runtime
                        .block_on(router.route_event(event, &info()))
                        .unwrap();
                    assert!(!report.outcomes[0].is_reported());
                })
            });
        }
    }
    group.finish();
}

fn batch(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = workload(1000, 100, TestKey::Es256, 1000);
    let mut group = c.benchmark_group("batch-1000");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    for (label, cache) in [("cached", "10000"), ("uncached", "0")] {
        let router = fake_router(FakeBackend::default(), &[("ROUTER_JWT_CACHE_SIZE", cache)]);
        group.bench_function(label, |b| {
            b.iter(|| {
                let report = runtime
                    .block_on(router.route_event(&event, &info()))
                    .unwrap();
                assert_eq!(report.outcomes.len(), 1000);
            })
        });
    }
    group.finish();
}

criterion_group!(benches, per_record, batch);
criterion_main!(benches);
