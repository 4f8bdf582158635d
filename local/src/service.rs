//! The stand-in's core: functions, the environment pool, the async invocation queue with Lambda's
//! retry behaviour, fault injection, the invocation log and the results file (async destinations).

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::environment::{EnvironmentSpec, Invocation, InvocationResult, OutputSink};
use crate::pool::{FunctionLimits, Pool, PoolError};

/// A function the stand-in serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpec {
    /// Function name.
    pub name: String,
    /// Its executable.
    pub executable: PathBuf,
    /// Whether it runs in tenant isolation mode (`PER_TENANT`).
    pub per_tenant: bool,
    /// Its memory in MB (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`; the invocation log's `memoryMb`,
    /// which `local-lambda usage` prices).
    pub memory_mb: u32,
    /// How its async invocations are retried (`PutFunctionEventInvokeConfig`).
    pub async_invoke: AsyncInvokeConfig,
    /// Its timeout (else the stand-in's `function_timeout`).
    pub timeout: Option<Duration>,
    /// Its own environment variables (after the stand-in's, so they win).
    pub variables: Vec<(String, String)>,
    /// Its reserved concurrency: most invocations running at once (else only the account's
    /// limit). A tenant-isolated function may also keep at most 2.5 environments per unit of
    /// its concurrency alive, busy or idle.
    pub concurrency: Option<usize>,
}

/// A function's async invocation settings, as `PutFunctionEventInvokeConfig` sets them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncInvokeConfig {
    /// Retries after a failed attempt: 0 to 2 (Lambda's default 2).
    pub max_retry_attempts: u32,
    /// An event older than this is not tried again: its destination record says
    /// `EventAgeExceeded` (Lambda: 60 s to 6 h, default 6 h).
    pub max_event_age: Duration,
}

impl Default for AsyncInvokeConfig {
    fn default() -> Self {
        Self {
            max_retry_attempts: 2,
            max_event_age: Duration::from_secs(6 * 3600),
        }
    }
}

/// Lambda's default function memory, in MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;

impl FunctionSpec {
    /// `name` running `executable`, not tenant-isolated, with Lambda's defaults (128 MB, the
    /// stand-in's timeout, two async retries, no reserved concurrency, no variables of its own).
    pub fn new(name: impl Into<String>, executable: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            executable: executable.into(),
            per_tenant: false,
            memory_mb: DEFAULT_MEMORY_MB,
            async_invoke: AsyncInvokeConfig::default(),
            timeout: None,
            variables: Vec::new(),
            concurrency: None,
        }
    }

    /// Parses `NAME=EXECUTABLE[,per-tenant][,memory=MB][,concurrency=N][,retries=N][,max-event-age=SECONDS]`
    /// (memory 128–10,240 MB, default 128; retries 0–2, default 2; maximum event age 60–21,600 s,
    /// default 21,600: Lambda's ranges).
    pub fn parse(text: &str) -> Result<Self, String> {
        let usage = || {
            format!(
                "expected NAME=EXECUTABLE[,per-tenant][,memory=MB][,concurrency=N][,retries=N]\
                 [,max-event-age=SECONDS], got {text:?}"
            )
        };
        let (name, rest) = text.split_once('=').ok_or_else(usage)?;
        let mut parts = rest.split(',');
        let executable = parts.next().unwrap_or_default();
        let (mut per_tenant, mut memory_mb) = (false, DEFAULT_MEMORY_MB);
        let mut async_invoke = AsyncInvokeConfig::default();
        let mut concurrency = None;
        let within = |what: &str, value: &str, range: std::ops::RangeInclusive<u64>| {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    format!(
                        "{what} {value:?} in {text:?} is not {} to {}",
                        range.start(),
                        range.end()
                    )
                })
        };
        for option in parts {
            match option.split_once('=') {
                None if option == "per-tenant" => per_tenant = true,
                Some(("memory", mb)) => {
                    memory_mb = mb
                        .parse()
                        .ok()
                        .filter(|mb| (128..=10_240).contains(mb))
                        .ok_or_else(|| {
                            format!("memory {mb:?} in {text:?} is not 128 to 10240 MB")
                        })?;
                }
                Some(("concurrency", n)) => {
                    concurrency = Some(within("concurrency", n, 1..=100_000)? as usize);
                }
                Some(("retries", n)) => {
                    async_invoke.max_retry_attempts = within("retries", n, 0..=2)? as u32;
                }
                Some(("max-event-age", seconds)) => {
                    async_invoke.max_event_age =
                        Duration::from_secs(within("max-event-age", seconds, 60..=21_600)?);
                }
                _ => return Err(usage()),
            }
        }
        if name.is_empty() || executable.is_empty() {
            return Err(usage());
        }
        Ok(Self {
            per_tenant,
            memory_mb,
            async_invoke,
            concurrency,
            ..Self::new(name, executable)
        })
    }
}

/// Injected faults: each Invoke is answered with a status at the given rate.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Faults {
    /// `(status, rate)` pairs, rates in 0..=1.
    pub rates: Vec<(u16, f64)>,
}

impl Faults {
    /// Parses `429:0.1,500:0.05`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rates = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (status, rate) = part
                .split_once(':')
                .ok_or_else(|| format!("expected STATUS:RATE, got {part:?}"))?;
            let status: u16 = status
                .parse()
                .map_err(|_| format!("bad status in {part:?}"))?;
            if !matches!(status, 429 | 500 | 502 | 503) {
                return Err(format!(
                    "status {status} cannot be injected (429, 500, 502, 503)"
                ));
            }
            let rate: f64 = rate.parse().map_err(|_| format!("bad rate in {part:?}"))?;
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("rate {rate} is not between 0 and 1"));
            }
            rates.push((status, rate));
        }
        if rates.iter().map(|(_, r)| r).sum::<f64>() > 1.0 {
            return Err("fault rates add up to more than 1".into());
        }
        Ok(Self { rates })
    }
}

/// Settings of the stand-in.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Functions served.
    pub functions: Vec<FunctionSpec>,
    /// The account's concurrency: most execution environments busy at once, all functions
    /// together. A tenant-isolated function may keep 2.5 environments per unit of its
    /// concurrency alive (busy or idle).
    pub concurrency: usize,
    /// Idle environments are stopped after this long.
    pub idle_timeout: Duration,
    /// Function timeout.
    pub function_timeout: Duration,
    /// Longest an environment's init phase may take (Lambda: 10 s).
    pub init_limit: Duration,
    /// Delays before the two retries of a failed async invocation (Lambda: about 1 and 2 min).
    pub async_retry_delays: [Duration; 2],
    /// Injected faults.
    pub faults: Faults,
    /// Seed of the fault draw.
    pub seed: u64,
    /// Extra environment variables for every function process.
    pub variables: Vec<(String, String)>,
    /// Invocation log (JSON lines), if any.
    pub log: Option<PathBuf>,
    /// Results file (JSON lines, one per finished async invocation), if any.
    pub results: Option<PathBuf>,
    /// Where environment output goes (stderr when `None`).
    pub environment_output: Option<PathBuf>,
    /// Region reported to functions.
    pub region: String,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            functions: Vec::new(),
            concurrency: 64,
            idle_timeout: Duration::from_secs(300),
            function_timeout: Duration::from_secs(30),
            init_limit: crate::environment::INIT_LIMIT,
            async_retry_delays: [Duration::from_secs(60), Duration::from_secs(120)],
            faults: Faults::default(),
            seed: 0,
            variables: Vec::new(),
            log: None,
            results: None,
            environment_output: None,
            region: "us-east-1".into(),
        }
    }
}

/// One line of the invocation log.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// When the attempt ended (RFC 3339).
    pub timestamp: String,
    /// Request id (the same for every attempt of one async invocation).
    pub request_id: String,
    /// Function.
    pub function: String,
    /// Tenant id of the invocation.
    pub tenant_id: Option<String>,
    /// Environment that ran it.
    pub environment_id: Option<String>,
    /// Its process id.
    pub pid: Option<u32>,
    /// `Event`, `RequestResponse` or `DryRun`.
    pub invocation_type: String,
    /// Attempt number (1-based).
    pub attempt: u32,
    /// `success`, `error`, `crashed`, `timeout`, `throttled`, `injected-429`, `injected-500`, ….
    pub status: String,
    /// Error type, for failures.
    pub error_type: Option<String>,
    /// Whether a new environment was started for it.
    pub cold_start: bool,
    /// Time spent, in milliseconds.
    pub duration_ms: u64,
    /// The function's memory, in MB.
    pub memory_mb: u32,
    /// The function's architecture (`x86_64` or `arm64`: the machine's).
    pub architecture: String,
    /// Bytes of the payload.
    pub payload_bytes: usize,
    /// Records the payload carries: the length of its `records` (an envelope batch) or
    /// `Records` (an event source batch) array, else 1.
    pub records: usize,
}

/// Who an invocation is for and how it was asked.
#[derive(Debug, Clone)]
pub struct Request {
    /// Function name.
    pub function: String,
    /// Tenant id (`X-Amz-Tenant-Id`).
    pub tenant: Option<String>,
    /// Request id.
    pub request_id: String,
    /// `Event` or `RequestResponse`.
    pub invocation_type: &'static str,
    /// Trace header passed to the function.
    pub trace_id: String,
}

/// A finished async invocation, in the shape of a Lambda async destination record.
pub type DestinationRecord = Value;

/// The stand-in.
pub struct Service {
    functions: HashMap<String, FunctionSpec>,
    settings: Settings,
    pool: Pool,
    rng: Mutex<fastrand::Rng>,
    log: Option<Mutex<std::fs::File>>,
    results_file: Option<Mutex<std::fs::File>>,
    entries: Mutex<Vec<LogEntry>>,
    results: Mutex<Vec<DestinationRecord>>,
    pending_async: AtomicUsize,
    drained: Notify,
}

/// Counts an async invocation down when dropped.
struct Pending<'a>(&'a Service);

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if self.0.pending_async.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.drained.notify_waiters();
        }
    }
}

/// Opens a file for appending, creating it.
fn append(path: &PathBuf) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
}

impl Service {
    /// Builds the stand-in; fails if a log file cannot be opened or an executable is missing.
    pub fn new(settings: Settings) -> anyhow::Result<Arc<Self>> {
        let output: OutputSink = match &settings.environment_output {
            Some(path) => Arc::new(Mutex::new(Box::new(append(path)?))),
            None => Arc::new(Mutex::new(Box::new(std::io::stderr()))),
        };
        let mut specs = HashMap::new();
        let mut functions = HashMap::new();
        for function in &settings.functions {
            if !function.executable.is_file() {
                anyhow::bail!(
                    "function {}: executable {} not found",
                    function.name,
                    function.executable.display()
                );
            }
            specs.insert(
                function.name.clone(),
                EnvironmentSpec {
                    function: function.name.clone(),
                    executable: function.executable.clone(),
                    variables: settings
                        .variables
                        .iter()
                        .chain(&function.variables)
                        .cloned()
                        .collect(),
                    timeout: function.timeout.unwrap_or(settings.function_timeout),
                    region: settings.region.clone(),
                    memory_mb: function.memory_mb,
                    init_limit: settings.init_limit,
                },
            );
            functions.insert(function.name.clone(), function.clone());
        }
        let limits = settings
            .functions
            .iter()
            .map(|f| {
                let limits = FunctionLimits {
                    per_tenant: f.per_tenant,
                    concurrency: f.concurrency,
                };
                (f.name.clone(), limits)
            })
            .collect();
        let pool = Pool::new(
            specs,
            limits,
            settings.concurrency,
            settings.idle_timeout,
            output,
        );
        let service = Arc::new(Self {
            functions,
            rng: Mutex::new(fastrand::Rng::with_seed(settings.seed)),
            log: settings
                .log
                .as_ref()
                .map(append)
                .transpose()?
                .map(Mutex::new),
            results_file: settings
                .results
                .as_ref()
                .map(append)
                .transpose()?
                .map(Mutex::new),
            settings,
            pool,
            entries: Mutex::new(Vec::new()),
            results: Mutex::new(Vec::new()),
            pending_async: AtomicUsize::new(0),
            drained: Notify::new(),
        });
        let reaper = Arc::downgrade(&service);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match reaper.upgrade() {
                    Some(service) => service.pool.reap_idle(),
                    None => break,
                }
            }
        });
        Ok(service)
    }

    /// The function called `name`.
    pub fn function(&self, name: &str) -> Option<&FunctionSpec> {
        self.functions.get(name)
    }

    /// The environment pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Draws an injected fault for one Invoke, if any.
    pub fn draw_fault(&self) -> Option<u16> {
        if self.settings.faults.rates.is_empty() {
            return None;
        }
        let draw = self.rng.lock().expect("rng lock").f64();
        let mut cumulative = 0.0;
        for (status, rate) in &self.settings.faults.rates {
            cumulative += rate;
            if draw < cumulative {
                return Some(*status);
            }
        }
        None
    }

    /// Appends a line to the invocation log.
    pub fn record(&self, entry: LogEntry) {
        if let Some(log) = &self.log {
            let mut file = log.lock().expect("log lock");
            let _ = serde_json::to_writer(&mut *file, &entry);
            let _ = file.write_all(b"\n");
        }
        self.entries.lock().expect("lock").push(entry);
    }

    /// Every invocation log entry so far.
    pub fn entries(&self) -> Vec<LogEntry> {
        self.entries.lock().expect("lock").clone()
    }

    /// Every async destination record so far.
    pub fn results(&self) -> Vec<DestinationRecord> {
        self.results.lock().expect("lock").clone()
    }

    /// Runs one attempt of an invocation in an environment, and logs it.
    pub async fn attempt(
        &self,
        request: &Request,
        attempt: u32,
        payload: Bytes,
    ) -> Result<InvocationResult, PoolError> {
        self.attempt_logged(request, attempt, payload, true).await
    }

    /// [`Service::attempt`], writing a throttle to the invocation log only if `log_throttle`
    /// (a caller that retries a throttle logs the first one only).
    pub async fn attempt_logged(
        &self,
        request: &Request,
        attempt: u32,
        payload: Bytes,
        log_throttle: bool,
    ) -> Result<InvocationResult, PoolError> {
        let started = Instant::now();
        let memory_mb = self
            .function(&request.function)
            .map_or(DEFAULT_MEMORY_MB, |f| f.memory_mb);
        let (payload_bytes, records) = (payload.len(), shared::envelope::records_carried(&payload));
        let entry =
            |environment: Option<(&str, u32)>, status: &str, error_type, cold_start| LogEntry {
                timestamp: now(),
                request_id: request.request_id.clone(),
                function: request.function.clone(),
                tenant_id: request.tenant.clone(),
                environment_id: environment.map(|(id, _)| id.to_owned()),
                pid: environment.map(|(_, pid)| pid),
                invocation_type: request.invocation_type.to_owned(),
                attempt,
                status: status.to_owned(),
                error_type,
                cold_start,
                duration_ms: started.elapsed().as_millis() as u64,
                memory_mb,
                architecture: shared::pricing::this_architecture().to_owned(),
                payload_bytes,
                records,
            };
        let lease = match self
            .pool
            .acquire(&request.function, request.tenant.as_deref())
        {
            Ok(lease) => lease,
            Err(error) => {
                let status = match (&error, request.invocation_type) {
                    (PoolError::Throttled, "Event") => "waiting-for-capacity",
                    (PoolError::Throttled, _) => "throttled",
                    (PoolError::StartFailed(_), _) => "start-failed",
                };
                if log_throttle || !matches!(error, PoolError::Throttled) {
                    self.record(entry(None, status, Some(error.to_string()), false));
                }
                return Err(error);
            }
        };
        let result = lease
            .environment
            .invoke(Invocation {
                request_id: request.request_id.clone(),
                payload,
                trace_id: request.trace_id.clone(),
                offered_tenant: None,
            })
            .await;
        let environment = Some((lease.environment.id.as_str(), lease.environment.pid));
        self.record(entry(
            environment,
            result.status(),
            result.error_type(),
            lease.cold,
        ));
        Ok(result)
    }

    /// Queues an async invocation: up to 1 + `max_retry_attempts` attempts on function errors,
    /// crashes and timeouts, waiting for capacity when throttled, none once the event is older
    /// than `max_event_age` (`EventAgeExceeded`); the outcome goes to the results file.
    pub fn enqueue(self: &Arc<Self>, request: Request, payload: Bytes) {
        self.pending_async.fetch_add(1, Ordering::SeqCst);
        let service = self.clone();
        tokio::spawn(async move {
            // Counted down however the task ends, so `drain` never waits forever.
            let _pending = Pending(&service);
            let config = service
                .function(&request.function)
                .map(|f| f.async_invoke)
                .unwrap_or_default();
            let queued = Instant::now();
            let too_old = || queued.elapsed() > config.max_event_age;
            let mut attempt = 0;
            let mut expired = false;
            let outcome = loop {
                attempt += 1;
                let mut first_try = true;
                let result = loop {
                    if too_old() {
                        expired = true;
                        break InvocationResult::Crashed(
                            "the event was older than its maximum event age".into(),
                        );
                    }
                    let logged = std::mem::replace(&mut first_try, false);
                    match service
                        .attempt_logged(&request, attempt, payload.clone(), logged)
                        .await
                    {
                        Ok(result) => break result,
                        // Lambda keeps throttled async events in its queue and tries again.
                        Err(PoolError::Throttled) => {
                            tokio::time::sleep(Duration::from_millis(50)).await
                        }
                        Err(PoolError::StartFailed(e)) => {
                            break InvocationResult::Crashed(format!("Runtime.StartError: {e}"));
                        }
                    }
                };
                if expired {
                    // No attempt was made this time.
                    attempt -= 1;
                    break result;
                }
                let retry = !matches!(result, InvocationResult::Success(_));
                if !retry || attempt > config.max_retry_attempts {
                    break result;
                }
                let delay = service.settings.async_retry_delays[(attempt as usize - 1).min(1)];
                tokio::time::sleep(delay).await;
                if too_old() {
                    expired = true;
                    break result;
                }
            };
            let condition = if expired {
                "EventAgeExceeded"
            } else if matches!(outcome, InvocationResult::Success(_)) {
                "Success"
            } else {
                "RetriesExhausted"
            };
            service.finish_async(&request, attempt, &payload, condition, outcome);
        });
    }

    fn finish_async(
        &self,
        request: &Request,
        attempts: u32,
        payload: &Bytes,
        condition: &str,
        outcome: InvocationResult,
    ) {
        let (function, tenant, request_id) = (
            request.function.as_str(),
            request.tenant.as_deref(),
            request.request_id.as_str(),
        );
        let request_payload: Value = serde_json::from_slice(payload).unwrap_or(Value::Null);
        let (function_error, response) = match &outcome {
            InvocationResult::Success(body) => (
                None,
                serde_json::from_slice(body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into())),
            ),
            failure => (
                Some("Unhandled"),
                failure.error_document().unwrap_or(Value::Null),
            ),
        };
        // A success record has no `functionError` key at all, as Lambda writes it.
        let mut response_context = json!({"statusCode": 200, "executedVersion": "$LATEST"});
        if let Some(error) = function_error {
            response_context["functionError"] = json!(error);
        }
        let record = json!({
            "version": "1.0",
            "timestamp": now(),
            "requestContext": {
                "requestId": request_id,
                "functionArn": format!("arn:aws:lambda:{}:000000000000:function:{function}:$LATEST", self.settings.region),
                "condition": condition,
                "approximateInvokeCount": attempts,
            },
            "tenantId": tenant,
            "requestPayload": request_payload,
            "responseContext": response_context,
            "responsePayload": response,
        });
        if let Some(file) = &self.results_file {
            let mut file = file.lock().expect("results lock");
            let _ = serde_json::to_writer(&mut *file, &record);
            let _ = file.write_all(b"\n");
        }
        self.results.lock().expect("lock").push(record);
    }

    /// Waits until every queued async invocation has finished.
    pub async fn drain(&self) {
        loop {
            let notified = self.drained.notified();
            if self.pending_async.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Async invocations not finished yet.
    pub fn pending(&self) -> usize {
        self.pending_async.load(Ordering::SeqCst)
    }
}

/// The current time, RFC 3339.
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_specs() {
        assert_eq!(
            FunctionSpec::parse("backend=/bin/backend,per-tenant").unwrap(),
            FunctionSpec {
                per_tenant: true,
                ..FunctionSpec::new("backend", "/bin/backend")
            }
        );
        assert!(!FunctionSpec::parse("plain=/bin/x").unwrap().per_tenant);
        let sized = FunctionSpec::parse("backend=/bin/backend,memory=1024,per-tenant").unwrap();
        assert_eq!((sized.memory_mb, sized.per_tenant), (1024, true));
        for bad in [
            "backend",
            "=x",
            "name=",
            "b=/x,memory=64",
            "b=/x,memory=lots",
            "b=/x,fast",
        ] {
            assert!(FunctionSpec::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fault_specs() {
        assert_eq!(
            Faults::parse("429:0.1,500:0.05").unwrap().rates,
            vec![(429, 0.1), (500, 0.05)]
        );
        for bad in ["429", "404:0.1", "429:2", "429:0.6,500:0.6", "x:0.1"] {
            assert!(Faults::parse(bad).is_err(), "{bad}");
        }
    }
}
