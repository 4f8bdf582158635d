//! The main job (`./scripts/main-job.sh`): the whole system on this machine, no AWS account —
//! moto's AWS-API server, real queues, a stream and a table, `local-lambda` running the router and
//! the tenant-isolated backend behind four event source mappings, a producer writing several
//! tenants' to-do events (bad ones included) — and, once everything has settled, a per-tenant
//! table of what became of each record, then each tenant's usage and estimated cost. Exits 1 if
//! any record was lost.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cross_crate_tests::whole_system::{Options, render, run};

#[tokio::main]
async fn main() -> ExitCode {
    let repository = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let repository = repository.canonicalize().unwrap_or(repository);
    let options = Options {
        repository,
        timeout: Duration::from_secs(180),
        per_tenant: 5,
    };
    let report = match run(&options).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("main-job: {e:#}");
            return ExitCode::from(2);
        }
    };
    println!(
        "Per tenant, what became of every record produced (sources read back after settling):\n"
    );
    print!("{}", render(&report));
    let usage = std::fs::read_to_string(&report.invocation_log)
        .map_err(|e| e.to_string())
        .and_then(|text| local::usage::read_log(&text))
        .and_then(|entries| local::usage::compute(&entries, &shared::pricing::Prices::list()));
    match usage {
        Ok(usage) => {
            println!(
                "\nUsage and estimated cost per tenant ({}; list prices of shared/pricing.json):\n",
                report
                    .invocation_log
                    .strip_prefix(&options.repository)
                    .unwrap_or(&report.invocation_log)
                    .display()
            );
            print!("{}", local::usage::render(&usage));
        }
        Err(e) => eprintln!("main-job: usage: {e}"),
    }
    if report.all_well() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
