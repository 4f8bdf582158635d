//! The execution environments of every function, and the rules that place an invocation in one.
//!
//! - An environment belongs to one tenant for life; an idle one is reused for that tenant only.
//! - When all of a tenant's environments are busy, a new one starts, up to `max_environments`
//!   in all; past that, an idle environment of another tenant is stopped to make room, and when
//!   none is idle the invocation is throttled (`TooManyRequestsException`, "Rate exceeded"), as
//!   Lambda does past its tenant-isolated environment quota.
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

/// All environments.
pub struct Pool {
    specs: HashMap<String, EnvironmentSpec>,
    max_environments: usize,
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
        max_environments: usize,
        idle_timeout: Duration,
        output: OutputSink,
    ) -> Self {
        Self {
            specs,
            max_environments,
            idle_timeout,
            output,
            slots: Mutex::new(Vec::new()),
            started: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(1),
        }
    }

    /// Whether an invocation for (`function`, `tenant`) could be placed now or soon: the tenant has
    /// an environment, or one may be started (possibly by stopping an idle one of another tenant).
    pub fn can_admit(&self, function: &str, tenant: Option<&str>) -> bool {
        let mut slots = self.slots.lock().expect("pool lock");
        slots.retain(|s| s.environment.is_alive());
        slots.iter().any(|s| {
            s.environment.function == function && s.environment.tenant.as_deref() == tenant
        }) || slots.len() < self.max_environments
            || slots.iter().any(|s| !s.busy)
    }

    /// Places an invocation: an idle environment of the same function and tenant, else a new one.
    pub fn acquire(&self, function: &str, tenant: Option<&str>) -> Result<Lease<'_>, PoolError> {
        let mut slots = self.slots.lock().expect("pool lock");
        slots.retain(|s| s.environment.is_alive());
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
        if slots.len() >= self.max_environments {
            // Make room by stopping the longest-idle environment, if any is idle.
            let oldest_idle = slots
                .iter()
                .enumerate()
                .filter(|(_, s)| !s.busy)
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
