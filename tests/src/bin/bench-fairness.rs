//! The fairness benchmark (BENCHMARKS.md, "Fairness between tenants"): one 10,000-record SQS
//! batch in which one tenant has 9,000 records and a 50 ms backend and nine others have 111 each
//! (the last 112) and a 2 ms one, routed in virtual time (tokio's paused clock: the figures are
//! exact and the same on every machine) with and without a per-tenant share, in both delivery
//! modes. Prints one Markdown table row per run.
//!
//! `cargo run --release -p cross-crate-tests --bin bench-fairness`

use std::time::Duration;

use cross_crate_tests::fairness::{BIG, Scenario, run_paused};

fn main() {
    println!(
        "| delivery | per-tenant share | other tenants done (ms) | big tenant's last Invoke starts (ms) | batch done (ms) | big tenant's most Invokes at once |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for delivery in ["record", "tenant-batch"] {
        for (label, share) in [("16 (default: 64 / 4)", None), ("64 (no share)", Some(64))] {
            let scenario = Scenario {
                delivery,
                max_in_flight: 64,
                per_tenant: share,
                big_records: 9_000,
                small_records: 111,
                small_tenants: 9,
                big_latency: Duration::from_millis(50),
                small_latency: Duration::from_millis(2),
                batch_max_bytes: 64 * 1024,
            };
            let timeline = run_paused(&scenario);
            assert!(timeline.outcomes.iter().all(|o| *o == "invoked"));
            println!(
                "| {delivery} | {label} | {:.0} | {:.0} | {:.0} | {} |",
                timeline.small_done_ms(),
                timeline.big_last_start_ms(),
                timeline.total_ms(),
                timeline.most_in_flight(BIG)
            );
        }
    }
}
