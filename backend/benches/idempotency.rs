//! What the durable idempotency store costs per record: the tenant guard with the DynamoDB store
//! on moto's server (started here, on 127.0.0.1) against the same guard with the environment's
//! memory. `first sight` is a new record (a conditional `PutItem`, the handler, an `UpdateItem`);
//! `duplicate` a record already completed (one conditional `PutItem` that fails and returns the
//! stored item). The local server is Python; DynamoDB itself answers in single-digit
//! milliseconds in region, so read these as the guard's overhead plus a round trip.
//!
//! `cargo bench -p backend --bench idempotency`

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Value, json};
use shared::function::EnvironmentGuard;
use shared::idempotency::{DynamoDbStore, MemoryStore};

fn envelope(id: &str) -> String {
    testkit::envelope("acme", id, json!({"item": {"title": "t"}})).to_string()
}

async fn handler(_: shared::function::TenantContext, _: shared::Envelope) -> Result<Value, String> {
    Ok(json!({"ok": true}))
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let moto = testkit::Moto::start();
    let client = testkit::dynamodb_client(moto.endpoint());
    runtime.block_on(testkit::create_idempotency_table(&client, "idempotency"));
    let dynamodb = EnvironmentGuard::with_store(
        "backend",
        Box::new(DynamoDbStore::new(
            client,
            "idempotency".into(),
            Duration::from_secs(3600),
        )),
    );
    let memory = EnvironmentGuard::with_store("backend", Box::new(MemoryStore::default()));
    let next = AtomicU64::new(0);
    let mut group = c.benchmark_group("idempotency");
    for (name, guard) in [("dynamodb", &dynamodb), ("memory", &memory)] {
        group.bench_function(format!("{name}/first sight"), |b| {
            b.iter(|| {
                let id = format!("r{}", next.fetch_add(1, Ordering::Relaxed));
                runtime
                    .block_on(guard.invoke(Some("acme"), "r", &envelope(&id), handler))
                    .unwrap()
            })
        });
        runtime
            .block_on(guard.invoke(Some("acme"), "r", &envelope("done"), handler))
            .unwrap();
        group.bench_function(format!("{name}/duplicate"), |b| {
            b.iter(|| {
                runtime
                    .block_on(guard.invoke(Some("acme"), "r", &envelope("done"), handler))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
