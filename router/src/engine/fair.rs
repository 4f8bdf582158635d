//! Fairness between tenants inside one batch: no tenant holds more than
//! `ROUTER_MAX_IN_FLIGHT_PER_TENANT` of the Invokes in flight ([`TenantSlots`], asked by every
//! Invoke in both delivery modes), and in `record` mode lanes are started round-robin across
//! the tenants of their first records, a tenant at its share waiting while others start
//! ([`run_round_robin`]), so one tenant's many slow records cannot fill every slot.
//!
//! In `tenant-batch` mode the envelope batches are sent beside the lanes (`packing`), so a slow
//! tenant's batches hold no lane; in an ordered batch one tenant's batches go one after the other,
//! in an unordered one up to the tenant's share at once.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use shared::TenantId;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Each tenant's share of the in-flight Invokes.
pub struct TenantSlots {
    cap: usize,
    slots: Mutex<HashMap<TenantId, Arc<Semaphore>>>,
}

impl TenantSlots {
    /// At most `cap` Invokes in flight per tenant.
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            slots: Mutex::default(),
        }
    }

    /// Waits for one of `tenant`'s slots; it is given back when the permit is dropped.
    pub async fn acquire(&self, tenant: &TenantId) -> OwnedSemaphorePermit {
        let semaphore = self
            .slots
            .lock()
            .expect("tenant slots lock")
            .entry(tenant.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.cap)))
            .clone();
        semaphore.acquire_owned().await.expect("never closed")
    }
}

/// Runs every lane with `run`, at most `limit` at once and at most `cap` of one key's lanes
/// at once (a key is the tenant of the lane's first record; `None`, a record whose tenant is not
/// known, has no share to keep). Lanes start round-robin across keys, each key's lanes in batch
/// order; a key at its share waits while the other keys' lanes start.
pub async fn run_round_robin<L, F, Fut>(
    lanes: Vec<(Option<TenantId>, L)>,
    limit: usize,
    cap: usize,
    run: F,
) where
    F: Fn(L) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut queues: HashMap<Option<TenantId>, VecDeque<L>> = HashMap::new();
    // Keys whose next lane may start now, in round-robin order: each key is in it at most once,
    // exactly when it has a lane waiting and is below its share.
    let mut ready: VecDeque<Option<TenantId>> = VecDeque::new();
    for (key, lane) in lanes {
        let queue = queues.entry(key.clone()).or_default();
        if queue.is_empty() {
            ready.push_back(key);
        }
        queue.push_back(lane);
    }
    let share = |key: &Option<TenantId>| if key.is_some() { cap } else { usize::MAX };
    let mut running: HashMap<Option<TenantId>, usize> = HashMap::new();
    let mut tasks = FuturesUnordered::new();
    loop {
        while tasks.len() < limit
            && let Some(key) = ready.pop_front()
        {
            let queue = queues.get_mut(&key).expect("a ready key has a queue");
            let lane = queue.pop_front().expect("a ready key has a lane waiting");
            let count = running.entry(key.clone()).or_default();
            *count += 1;
            if !queue.is_empty() && *count < share(&key) {
                ready.push_back(key.clone());
            }
            let started = run(lane);
            tasks.push(async move {
                started.await;
                key
            });
        }
        let Some(key) = tasks.next().await else {
            break;
        };
        let count = running.get_mut(&key).expect("counted when started");
        *count -= 1;
        let waiting = queues.get(&key).is_some_and(|queue| !queue.is_empty());
        // Back in the ring when it had been left out for being at its share.
        if waiting && *count + 1 == share(&key) {
            ready.push_back(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::time::Duration;

    use super::*;

    fn tenant(name: &str) -> Option<TenantId> {
        Some(TenantId::parse(name).unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn lanes_start_round_robin_and_a_tenant_never_exceeds_its_share() {
        // 12 lanes of "big" first in the batch, then 2 each of "a" and "b".
        let mut lanes = Vec::new();
        for n in 0..12 {
            lanes.push((tenant("big"), ("big", n)));
        }
        for n in 0..2 {
            lanes.push((tenant("a"), ("a", n)));
            lanes.push((tenant("b"), ("b", n)));
        }
        let started = RefCell::new(Vec::new());
        let running = RefCell::new(HashMap::<&str, usize>::new());
        let most = RefCell::new(0);
        run_round_robin(lanes, 4, 2, |(name, n)| {
            let (started, running, most) = (&started, &running, &most);
            async move {
                started.borrow_mut().push(format!("{name}{n}"));
                let now = {
                    let mut running = running.borrow_mut();
                    let count = running.entry(name).or_default();
                    *count += 1;
                    *count
                };
                if name == "big" {
                    let mut most = most.borrow_mut();
                    *most = (*most).max(now);
                }
                let slow = if name == "big" { 100 } else { 1 };
                tokio::time::sleep(Duration::from_millis(slow)).await;
                *running.borrow_mut().get_mut(name).unwrap() -= 1;
            }
        })
        .await;
        let started = started.into_inner();
        assert_eq!(started.len(), 16);
        assert_eq!(*most.borrow(), 2, "big held at most its share");
        assert_eq!(&started[..4], ["big0", "a0", "b0", "big1"]);
        let last_small = started.iter().rposition(|s| !s.starts_with("big")).unwrap();
        assert!(
            last_small < 6,
            "every small lane starts before the big tenant's third: {started:?}"
        );
        let bigs: Vec<_> = started.iter().filter(|s| s.starts_with("big")).collect();
        let in_order: Vec<String> = (0..12).map(|n| format!("big{n}")).collect();
        assert_eq!(
            bigs,
            in_order.iter().collect::<Vec<_>>(),
            "batch order per tenant"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn records_of_no_known_tenant_are_not_held_to_a_share() {
        let lanes = (0..6).map(|n| (None, n)).collect();
        let running = RefCell::new(0usize);
        let most = RefCell::new(0usize);
        run_round_robin(lanes, 4, 1, |_| {
            let (running, most) = (&running, &most);
            async move {
                *running.borrow_mut() += 1;
                let now = *running.borrow();
                let highest = (*most.borrow()).max(now);
                *most.borrow_mut() = highest;
                tokio::time::sleep(Duration::from_millis(5)).await;
                *running.borrow_mut() -= 1;
            }
        })
        .await;
        assert_eq!(*most.borrow(), 4);
    }

    #[tokio::test]
    async fn a_tenant_slot_is_given_back_when_dropped() {
        let slots = TenantSlots::new(1);
        let acme = TenantId::parse("acme").unwrap();
        let first = slots.acquire(&acme).await;
        let second = tokio::time::timeout(Duration::from_millis(20), slots.acquire(&acme)).await;
        assert!(second.is_err(), "the share is one");
        let other = TenantId::parse("globex").unwrap();
        let _globex = slots.acquire(&other).await;
        drop(first);
        let _again = slots.acquire(&acme).await;
    }
}
