//! The execution environments of every function, and the rules that place an invocation in one.
//!
//! - An environment belongs to one tenant for life; an idle one is reused for that tenant only.
//! - Concurrency: at most the account's concurrency of environments are busy at once, and at
//!   most a function's reserved concurrency of its own; past that an invocation is throttled
//!   (`TooManyRequestsException`, "Rate exceeded").
//! - When all of a tenant's environments are busy, a new one starts, up to the function's
//!   environment cap: its concurrency, and for a tenant-isolated function 2,500 environments
//!   (busy or idle) per 1,000 concurrency, Lambda's quota. At the cap, the function's
//!   longest-idle environment (another tenant's) is stopped to make room; when none is idle the
//!   invocation is throttled.
//! - Idle environments are stopped after the idle timeout; a crashed one is dropped and replaced
//!   by the next invocation that needs one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::environment::{Environment, EnvironmentSpec, OutputSink};

/// Why no environment could be had.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every environment is busy and no new one may start.
    #[error("Rate exceeded")]
    Throttled,
    /// The function's process could not be started.
    #[error("cannot start the function: {0}")]
    StartFailed(String),
}

struct Slot {
    environment: Arc<Environment>,
    busy: bool,
    last_used: Instant,
}

/// A lease on a busy environment; dropping it makes the environment idle again.
pub struct Lease<'a> {
    /// The environment.
    pub environment: Arc<Environment>,
    /// Whether it was started for this invocation (a cold start).
    pub cold: bool,
    pool: &'a Pool,
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        self.pool.release(&self.environment);
    }
}

/// A record of an environment ever started, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// Environment id.
    pub id: String,
    /// Function.
    pub function: String,
    /// Tenant.
    pub tenant: Option<String>,
    /// Process id.
    pub pid: u32,
}

/// Lambda's tenant environment quota: 2,500 environments, busy or idle, per 1,000 concurrency
/// (<https://docs.aws.amazon.com/lambda/latest/dg/tenant-isolation.html>).
pub const TENANT_ENVIRONMENTS_PER_1000_CONCURRENCY: usize = 2_500;

/// How many environments a function may use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FunctionLimits {
    /// Whether it is tenant-isolated (its environments count against the tenant quota).
    pub per_tenant: bool,
    /// Its reserved concurrency (else the account's).
    pub concurrency: Option<usize>,
}

/// All environments.
pub struct Pool {
    specs: HashMap<String, EnvironmentSpec>,
    limits: HashMap<String, FunctionLimits>,
    concurrency: usize,
    idle_timeout: Duration,
    output: OutputSink,
    slots: Mutex<Vec<Slot>>,
    started: Mutex<Vec<Started>>,
    next_id: AtomicU64,
}

impl Pool {
    /// A pool for `specs` (by function name).
    pub fn new(
        specs: HashMap<String, EnvironmentSpec>,
        limits: HashMap<String, FunctionLimits>,
        concurrency: usize,
        idle_timeout: Duration,
        output: OutputSink,
    ) -> Self {
        Self {
            specs,
            limits,
            concurrency,
            idle_timeout,
            output,
            slots: Mutex::new(Vec::new()),
            started: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    fn concurrency_left(&self, slots: &[Slot], function: &str) -> bool {
        let busy = slots.iter().filter(|s| s.busy).count();
        let busy_here = slots
            .iter()
            .filter(|s| s.busy && s.environment.function == function)
            .count();
        let reserved = self.limits.get(function).and_then(|l| l.concurrency);
        busy < self.concurrency && reserved.is_none_or(|r| busy_here < r)
    }

    /// Most environments `function` may keep alive, busy or idle: its concurrency, and for a
    /// tenant-isolated function 2,500 per 1,000 of it (Lambda's tenant environment quota).
    pub fn environment_cap(&self, function: &str) -> usize {
        let limits = self.limits.get(function).copied().unwrap_or_default();
        let concurrency = limits.concurrency.unwrap_or(self.concurrency);
        if limits.per_tenant {
            (concurrency * TENANT_ENVIRONMENTS_PER_1000_CONCURRENCY).div_ceil(1000)
        } else {
            concurrency
        }
    }

    /// Places an invocation: an idle environment of the same function and tenant, else a new one.
    pub fn acquire(&self, function: &str, tenant: Option<&str>) -> Result<Lease<'_>, PoolError> {
        let mut slots = self.slots.lock().expect("pool lock");
        slots.retain(|s| s.environment.is_alive());
        if !self.concurrency_left(&slots, function) {
            return Err(PoolError::Throttled);
        }
        if let Some(slot) = slots.iter_mut().find(|s| {
            !s.busy
                && s.environment.function == function
                && s.environment.tenant.as_deref() == tenant
        }) {
            slot.busy = true;
            slot.last_used = Instant::now();
            return Ok(Lease {
                environment: slot.environment.clone(),
                cold: false,
                pool: self,
            });
        }
        let alive_here = slots
            .iter()
            .filter(|s| s.environment.function == function)
            .count();
        if alive_here >= self.environment_cap(function) {
            // Make room by stopping this function's longest-idle environment (another
            // tenant's), if any is idle.
            let oldest_idle = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.busy && s.environment.function == function)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(i, _)| i);
            match oldest_idle {
                Some(index) => {
                    let slot = slots.remove(index);
                    tracing::info!(
                        message = "environment stopped to make room",
                        environment_id = slot.environment.id.as_str()
                    );
                    slot.environment.stop();
                }
                None => return Err(PoolError::Throttled),
            }
        }
        let spec = self
            .specs
            .get(function)
            .ok_or_else(|| PoolError::StartFailed(format!("unknown function {function}")))?;
        let id = format!(
            "env-{:04}-{}",
            self.next_id.fetch_add(1, Ordering::Relaxed),
            function
        );
        let environment =
            Environment::start(spec, id, tenant.map(str::to_owned), self.output.clone()).map_err(
                |e| PoolError::StartFailed(format!("{}: {e}", spec.executable.display())),
            )?;
        tracing::info!(
            message = "environment started",
            environment_id = environment.id.as_str(),
            function = function,
            tenant_id = tenant.unwrap_or(""),
            pid = environment.pid,
        );
        self.started.lock().expect("lock").push(Started {
            id: environment.id.clone(),
            function: function.to_owned(),
            tenant: tenant.map(str::to_owned),
            pid: environment.pid,
        });
        slots.push(Slot {
            environment: environment.clone(),
            busy: true,
            last_used: Instant::now(),
        });
        Ok(Lease {
            environment,
            cold: true,
            pool: self,
        })
    }

    fn release(&self, environment: &Arc<Environment>) {
        let mut slots = self.slots.lock().expect("pool lock");
        if let Some(slot) = slots
            .iter_mut()
            .find(|s| Arc::ptr_eq(&s.environment, environment))
        {
            slot.busy = false;
            slot.last_used = Instant::now();
        }
        slots.retain(|s| s.environment.is_alive());
    }

    /// Stops environments idle for longer than the idle timeout.
    pub fn reap_idle(&self) {
        let mut slots = self.slots.lock().expect("pool lock");
        slots.retain(|s| {
            let expired = !s.busy && s.last_used.elapsed() >= self.idle_timeout;
            if expired {
                tracing::info!(
                    message = "idle environment stopped",
                    environment_id = s.environment.id.as_str()
                );
                s.environment.stop();
            }
            !expired && s.environment.is_alive()
        });
    }

    /// Stops every environment.
    pub fn stop_all(&self) {
        for slot in self.slots.lock().expect("pool lock").drain(..) {
            slot.environment.stop();
        }
    }

    /// Environments alive now.
    pub fn alive(&self) -> usize {
        let slots = self.slots.lock().expect("pool lock");
        slots.iter().filter(|s| s.environment.is_alive()).count()
    }

    /// Every environment ever started, in order.
    pub fn started(&self) -> Vec<Started> {
        self.started.lock().expect("lock").clone()
    }
}
