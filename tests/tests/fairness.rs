//! Fairness between tenants inside one batch (`engine::fair`), in both delivery modes: a tenant
//! with 90% of the records and a slow backend neither delays the other tenants' records nor ever
//! holds more than its share of the in-flight Invokes.

use std::time::Duration;

use cross_crate_tests::fairness::{BIG, Scenario, run};

fn noisy(delivery: &'static str) -> Scenario {
    Scenario {
        delivery,
        max_in_flight: 8,
        per_tenant: None,
        big_records: 180,
        small_records: 4,
        small_tenants: 5,
        big_latency: Duration::from_millis(50),
        small_latency: Duration::from_millis(2),
        // About ten of these records per envelope batch.
        batch_max_bytes: 2048,
    }
}

#[tokio::test(start_paused = true)]
async fn a_noisy_tenant_delays_no_other_tenant_and_keeps_to_its_share() {
    for delivery in ["record", "tenant-batch"] {
        let timeline = run(&noisy(delivery)).await;
        assert!(
            timeline.outcomes.iter().all(|o| *o == "invoked"),
            "{delivery}: {:?}",
            timeline.outcomes
        );
        let carried: usize = timeline.spans.iter().map(|s| s.records).sum();
        assert_eq!(carried, 200, "{delivery}: every record once");
        assert!(
            timeline.small_done_ms() < timeline.big_last_start_ms(),
            "{delivery}: the other tenants finished at {} ms, the big tenant's last Invoke \
             started at {} ms",
            timeline.small_done_ms(),
            timeline.big_last_start_ms()
        );
        // Not merely squeezed in before the end: done within two of the big tenant's Invokes.
        assert!(
            timeline.small_done_ms() <= 2.0 * 50.0,
            "{delivery}: the other tenants finished only at {} ms",
            timeline.small_done_ms()
        );
        // The default share: a quarter of ROUTER_MAX_IN_FLIGHT.
        let most = timeline.most_in_flight(BIG);
        assert!(
            most <= 2,
            "{delivery}: the big tenant held {most} Invokes at once"
        );
        assert!(most >= 1);
    }
}

#[tokio::test(start_paused = true)]
async fn the_share_is_the_setting_and_others_still_go_first() {
    let scenario = Scenario {
        per_tenant: Some(3),
        ..noisy("record")
    };
    let timeline = run(&scenario).await;
    assert_eq!(timeline.most_in_flight(BIG), 3);
    assert!(timeline.small_done_ms() < timeline.big_last_start_ms());
    // The big tenant runs at exactly its share: 180 Invokes of 50 ms, 3 at a time.
    assert!(
        timeline.total_ms() >= 180.0 / 3.0 * 50.0,
        "{}",
        timeline.total_ms()
    );
}

#[tokio::test(start_paused = true)]
async fn the_share_holds_when_every_record_starts_at_once() {
    // Fewer records than slots: all start together, and the share is kept at the Invoke.
    let scenario = Scenario {
        big_records: 6,
        small_records: 1,
        small_tenants: 2,
        ..noisy("record")
    };
    let timeline = run(&scenario).await;
    assert!(timeline.outcomes.iter().all(|o| *o == "invoked"));
    assert_eq!(timeline.most_in_flight(BIG), 2);
}
