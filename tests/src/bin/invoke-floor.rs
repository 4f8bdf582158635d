//! `invoke-floor FILE...`: the floor the router is measured against. For every SQS record of the
//! files it sends one async Invoke, with the record's tenant id and its body as the payload,
//! through the router's own client ([`router::replay::aws_backend`], configured from the same
//! `ROUTER_*` and `AWS_*` variables) and with the same concurrency (`ROUTER_MAX_IN_FLIGHT` per
//! batch) — but with no decoding, verification or envelope on the measured path: the payloads
//! are extracted before it starts.
//!
//! With `--stock` first, the client is the SDK's stock one instead (`aws_config::load_defaults`:
//! SDK retries, stalled-stream protection and default timeouts on), to show what the router's
//! client settings save.
//!
//! Prints the records sent and the CPU time (user + system, from `getrusage`) and wall time of
//! the sending alone. Run it under `/usr/bin/time -v` for the whole process. Benchmark tooling
//! only; `scripts/bench-compare.sh` runs it.

use std::time::Instant;

use futures::StreamExt;
use nix::sys::resource::{UsageWho, getrusage};
use router::backend::{Backend, InvokeRequest};
use router::replay::{aws_backend, sdk_config};
use serde_json::Value;
use shared::TenantId;

fn cpu_seconds() -> f64 {
    let usage = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage works");
    let seconds = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    seconds(usage.user_time()) + seconds(usage.system_time())
}

/// The router's allocator, so that the floor differs from it only by what the router does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut files: Vec<String> = std::env::args().skip(1).collect();
    let stock = files.first().is_some_and(|a| a == "--stock");
    if stock {
        files.remove(0);
    }
    anyhow::ensure!(!files.is_empty(), "usage: invoke-floor [--stock] FILE...");
    let config = router::Config::from_env()?;
    let backend = if stock {
        let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        router::AwsBackend::new(
            aws_sdk_lambda::Client::new(&sdk),
            config.backend_function.clone(),
            None,
        )
    } else {
        aws_backend(&config, &sdk_config().await)
            .await
            .map_err(anyhow::Error::msg)?
    };
    // Everything the router would decode is extracted here, before measuring.
    let mut batches: Vec<Vec<(TenantId, Vec<u8>)>> = Vec::new();
    for file in &files {
        let event: Value = serde_json::from_str(&std::fs::read_to_string(file)?)?;
        let mut batch = Vec::new();
        for record in event["Records"].as_array().into_iter().flatten() {
            let body = record["body"].as_str().unwrap_or_default();
            let tenant = serde_json::from_str::<Value>(body)?["tenantId"]
                .as_str()
                .map(TenantId::parse)
                .transpose()?;
            if let Some(tenant) = tenant {
                batch.push((tenant, body.as_bytes().to_vec()));
            }
        }
        batches.push(batch);
    }
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    let (mut sent, mut failed) = (0usize, 0usize);
    for batch in &batches {
        let mut answers = futures::stream::iter(batch)
            .map(|(tenant, payload)| {
                backend.invoke(InvokeRequest {
                    invocation_type: router::config::InvocationType::Event,
                    tenant,
                    payload,
                    trace_header: None,
                })
            })
            .buffer_unordered(config.max_in_flight);
        while let Some(answer) = answers.next().await {
            sent += 1;
            failed += usize::from(answer.is_err());
        }
    }
    let (cpu, wall) = (cpu_seconds() - cpu, wall.elapsed().as_secs_f64());
    println!(
        "{{\"invokes\":{sent},\"failed\":{failed},\"cpu_s\":{cpu:.4},\"wall_s\":{wall:.4},\
         \"cpu_us_per_invoke\":{:.2},\"wall_us_per_invoke\":{:.2}}}",
        cpu * 1e6 / sent.max(1) as f64,
        wall * 1e6 / sent.max(1) as f64
    );
    Ok(())
}
