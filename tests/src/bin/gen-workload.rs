//! `gen-workload OUT_DIR [--source sqs|kinesis|dynamodb] [--records N] [--batch N] [--tenants N]
//! [--payload BYTES] [--keys N]`: writes a signed multi-tenant benchmark workload, the Rust
//! counterpart of the Python benchmark workload generator (`make_workload.py`) that also covers
//! Kinesis and DynamoDB Streams.
//!
//! Writes `OUT_DIR/batch-NNNN.json` (ESM events of `--batch` records; 10,000 records of 100
//! tenants in files of 1,000 by default), `OUT_DIR/jwks.json` and `OUT_DIR/env` (the `ROUTER_*`
//! settings the router needs for them). Tokens are ES256 from the TEST-ONLY key, one per tenant;
//! records arrive at `T0_MS` and tokens are valid then. Stream records of one tenant share a
//! partition key (`--keys` per tenant, default 1), as a tenant-keyed stream would. Benchmark
//! tooling; `scripts/bench-compare.sh` runs it.

use std::fs;
use std::path::PathBuf;

use cross_crate_tests::*;
use serde_json::{Value, json};

struct Args {
    out: PathBuf,
    source: String,
    records: usize,
    batch: usize,
    tenants: usize,
    payload: usize,
    keys: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut args = Args {
        out: PathBuf::new(),
        source: "sqs".into(),
        records: 10_000,
        batch: 1_000,
        tenants: 100,
        payload: 1_000,
        keys: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| anyhow::anyhow!("{arg} needs a value"))
        };
        match arg.as_str() {
            "--source" => args.source = value()?,
            "--records" => args.records = value()?.parse()?,
            "--batch" => args.batch = value()?.parse()?,
            "--tenants" => args.tenants = value()?.parse()?,
            "--payload" => args.payload = value()?.parse()?,
            "--keys" => args.keys = value()?.parse()?,
            other if !other.starts_with("--") && args.out.as_os_str().is_empty() => {
                args.out = other.into()
            }
            other => anyhow::bail!("unknown argument {other:?}"),
        }
    }
    anyhow::ensure!(
        !args.out.as_os_str().is_empty(),
        "usage: gen-workload OUT_DIR [options]"
    );
    anyhow::ensure!(
        args.batch > 0 && args.tenants > 0 && args.keys > 0,
        "counts must be positive"
    );
    Ok(args)
}

fn main() -> anyhow::Result<()> {
    let a = args()?;
    fs::create_dir_all(&a.out)?;
    fs::write(a.out.join("jwks.json"), serde_json::to_string(&jwks())?)?;
    let env = format!(
        "ROUTER_BACKEND_FUNCTION=backend\nROUTER_JWKS=file://{}\nROUTER_JWT_ISSUER={ISSUER}\n\
         ROUTER_JWT_AUDIENCE={AUDIENCE}\n",
        fs::canonicalize(a.out.join("jwks.json"))?.display()
    );
    fs::write(a.out.join("env"), env)?;

    let tokens: Vec<(String, String)> = (0..a.tenants)
        .map(|t| {
            let tenant = format!("tenant-{t:04}");
            let token = sign(TestKey::Es256, &claims(&tenant));
            (tenant, token)
        })
        .collect();
    let filler = "x".repeat(a.payload);
    let mut files = 0;
    for (n, start) in (0..a.records).step_by(a.batch).enumerate() {
        let records: Vec<Value> = (start..(start + a.batch).min(a.records))
            .map(|i| {
                let (tenant, token) = &tokens[i % a.tenants];
                let item = json!({"id": i, "title": format!("item {i}"), "notes": filler});
                let key = format!("{tenant}#{}", (i / a.tenants) % a.keys);
                // Increasing, same-length sequence numbers across the whole workload.
                let sequence = format!("4959{i:052}");
                match a.source.as_str() {
                    "sqs" => sqs_record(
                        &format!("00000000-0000-0000-0000-{i:012}"),
                        &body(tenant, token, item),
                        T0_MS,
                    ),
                    "kinesis" => {
                        kinesis_record(&sequence, &key, body(tenant, token, item).as_bytes())
                    }
                    "dynamodb" => {
                        let image = json!({
                            "pk": key, "sk": format!("item#{i}"), "tenantId": tenant,
                            "tenantToken": token, "type": "todo.created", "item": item,
                        });
                        let keys = json!({"pk": {"S": key}, "sk": {"S": format!("item#{i}")}});
                        dynamodb_record(
                            &format!("4959{i:036}"),
                            "INSERT",
                            keys,
                            Some(item_values(&image)),
                            None,
                            "NEW_IMAGE",
                        )
                    }
                    other => panic!("unknown source {other:?}: sqs, kinesis or dynamodb"),
                }
            })
            .collect();
        fs::write(
            a.out.join(format!("batch-{n:04}.json")),
            json!({"Records": records}).to_string(),
        )?;
        files += 1;
    }
    eprintln!(
        "gen-workload: {} {} records of {} tenants in {files} files in {}",
        a.records,
        a.source,
        a.tenants,
        a.out.display()
    );
    Ok(())
}
