//! The noisy-neighbour scenario behind the fairness test and its benchmark
//! (`bench-fairness`): one batch in which a big tenant has most of the records and a slow
//! backend, the others fast ones, routed in virtual time (tokio's paused clock, so every figure is
//! exact and the same on every machine) through the router's engine with a backend that keeps a
//! timeline of its Invokes.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::time::Instant;

/// The batch and the backend's speed.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// `record` or `tenant-batch`.
    pub delivery: &'static str,
    /// `ROUTER_MAX_IN_FLIGHT`.
    pub max_in_flight: usize,
    /// `ROUTER_MAX_IN_FLIGHT_PER_TENANT` (`None`: the router's default).
    pub per_tenant: Option<usize>,
    /// Records of the big tenant, first in the batch.
    pub big_records: usize,
    /// Records of each other tenant, after them.
    pub small_records: usize,
    /// How many other tenants.
    pub small_tenants: usize,
    /// The big tenant's Invoke latency.
    pub big_latency: Duration,
    /// The others' Invoke latency.
    pub small_latency: Duration,
    /// `ROUTER_BATCH_MAX_BYTES` (`tenant-batch`), so the big tenant needs several Invokes.
    pub batch_max_bytes: usize,
}

/// One Invoke as the backend saw it, in virtual milliseconds since the batch started.
#[derive(Clone, Debug)]
pub struct Span {
    /// Its tenant.
    pub tenant: String,
    /// When it started and ended.
    pub start_ms: f64,
    /// When it ended.
    pub end_ms: f64,
    /// Records it carried.
    pub records: usize,
}

/// What the scenario measured.
#[derive(Clone, Debug)]
pub struct Timeline {
    /// Every Invoke.
    pub spans: Vec<Span>,
    /// The outcome names, in batch order.
    pub outcomes: Vec<&'static str>,
}

impl Timeline {
    /// When the last Invoke of any other tenant ended.
    pub fn small_done_ms(&self) -> f64 {
        self.spans
            .iter()
            .filter(|s| s.tenant != BIG)
            .map(|s| s.end_ms)
            .fold(0.0, f64::max)
    }

    /// When the big tenant's last Invoke started.
    pub fn big_last_start_ms(&self) -> f64 {
        self.spans
            .iter()
            .filter(|s| s.tenant == BIG)
            .map(|s| s.start_ms)
            .fold(0.0, f64::max)
    }

    /// When everything ended.
    pub fn total_ms(&self) -> f64 {
        self.spans.iter().map(|s| s.end_ms).fold(0.0, f64::max)
    }

    /// The most Invokes `tenant` had in flight at once.
    pub fn most_in_flight(&self, tenant: &str) -> usize {
        let mut events: Vec<(f64, i32)> = self
            .spans
            .iter()
            .filter(|s| s.tenant == tenant)
            .flat_map(|s| [(s.start_ms, 1), (s.end_ms, -1)])
            .collect();
        // Ends before starts at the same instant: a slot given back and taken again.
        events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        let (mut now, mut most) = (0i32, 0i32);
        for (_, step) in events {
            now += step;
            most = most.max(now);
        }
        most as usize
    }
}

/// The big tenant's id.
pub const BIG: &str = "big";

/// A backend that sleeps its tenant's latency and writes down each Invoke.
struct TimedBackend {
    started: Instant,
    big_latency: Duration,
    small_latency: Duration,
    spans: Mutex<Vec<Span>>,
}

impl router::Backend for TimedBackend {
    async fn invoke(
        &self,
        request: router::InvokeRequest<'_>,
    ) -> Result<router::Answer, router::InvokeFailure> {
        let start = self.started.elapsed();
        let tenant = request.tenant.to_string();
        let latency = if tenant == BIG {
            self.big_latency
        } else {
            self.small_latency
        };
        tokio::time::sleep(latency).await;
        let end = self.started.elapsed();
        let payload: Value = serde_json::from_slice(request.payload).unwrap_or(Value::Null);
        let records = payload["records"].as_array().map_or(1, Vec::len);
        self.spans.lock().expect("spans lock").push(Span {
            tenant,
            start_ms: start.as_secs_f64() * 1000.0,
            end_ms: end.as_secs_f64() * 1000.0,
            records,
        });
        Ok(router::Answer::Queued)
    }

    fn has_quarantine(&self) -> bool {
        false
    }

    async fn quarantine(
        &self,
        _: router::QuarantineMessage<'_>,
    ) -> Result<(), router::WriteFailure> {
        Err(router::WriteFailure::permanent("no quarantine queue"))
    }
}

/// Routes the scenario's batch; call it inside a runtime whose clock is paused.
pub async fn run(scenario: &Scenario) -> Timeline {
    let mut records = Vec::new();
    let mut push = |tenant: &str, n: usize| {
        let id = format!("{tenant}-{n}");
        let body = json!({"tenantId": tenant, "item": {"n": n}}).to_string();
        records.push(crate::sqs_record(&id, &body, crate::T0_MS));
    };
    for n in 0..scenario.big_records {
        push(BIG, n);
    }
    for t in 0..scenario.small_tenants {
        for n in 0..scenario.small_records {
            push(&format!("small-{t}"), n);
        }
    }
    let event = crate::sqs_event(records).to_string();
    let max_in_flight = scenario.max_in_flight.to_string();
    let per_tenant = scenario.per_tenant.map(|n| n.to_string());
    let batch_max_bytes = scenario.batch_max_bytes.to_string();
    let mut env = vec![
        ("ROUTER_BACKEND_FUNCTION", "backend"),
        ("ROUTER_VALIDATION", "trusted"),
        ("ROUTER_DELIVERY", scenario.delivery),
        ("ROUTER_MAX_IN_FLIGHT", max_in_flight.as_str()),
        ("ROUTER_BATCH_MAX_BYTES", batch_max_bytes.as_str()),
    ];
    if let Some(per_tenant) = &per_tenant {
        env.push(("ROUTER_MAX_IN_FLIGHT_PER_TENANT", per_tenant.as_str()));
    }
    let config = router::Config::from_lookup(|name| {
        env.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    })
    .expect("valid scenario settings");
    let backend = TimedBackend {
        started: Instant::now(),
        big_latency: scenario.big_latency,
        small_latency: scenario.small_latency,
        spans: Mutex::default(),
    };
    let router = router::Router::new(config, backend).expect("the router starts");
    let info = router::InvocationInfo {
        now_ms: crate::T0_MS,
        ..router::InvocationInfo::with_budget(Duration::from_secs(900), Duration::ZERO)
    };
    let report = router
        .route_event(&event, &info)
        .await
        .expect("an SQS batch");
    let mut spans = router.backend().spans.lock().expect("spans lock").clone();
    spans.sort_by(|a, b| a.start_ms.total_cmp(&b.start_ms));
    Timeline {
        spans,
        outcomes: report.outcomes.iter().map(router::Outcome::name).collect(),
    }
}

/// Runs `scenario` on a fresh current-thread runtime with a paused clock.
pub fn run_paused(scenario: &Scenario) -> Timeline {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime")
        .block_on(run(scenario))
}
