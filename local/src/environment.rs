//! One execution environment: a real OS process running the function's executable against a Lambda
//! Runtime API (`/2018-06-01/runtime/...`) served by the stand-in for that environment alone.
//!
//! The environment hands out one invocation at a time through `GET .../invocation/next` with the
//! standard headers (`Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`,
//! `-Trace-Id`, and `Lambda-Runtime-Aws-Tenant-Id` when it serves a tenant), and takes the answer
//! from `.../response` or `.../error`. If the process exits while an invocation is in flight, the
//! invocation ends as `Runtime.ExitError`; if the function runs past its timeout, the process is
//! killed and the invocation ends as timed out; the timeout counts from when the runtime takes the
//! invocation, and the init phase (start to first `next`) has its own limit of 10 s. A response over 6 MB is answered
//! `Function.ResponseSizeTooLarge`, as Lambda does. Each environment has its own scratch
//! directory (`TMPDIR`), removed when it ends. Every line the process prints is kept, prefixed
//! with the environment id and tenant.

use std::collections::HashMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{mpsc, oneshot, watch};

/// Where environment output lines go.
pub type OutputSink = Arc<Mutex<Box<dyn Write + Send>>>;

/// What an environment is started with.
#[derive(Debug, Clone)]
pub struct EnvironmentSpec {
    /// Function name.
    pub function: String,
    /// Executable (the function's `bootstrap`).
    pub executable: PathBuf,
    /// Extra environment variables for the process.
    pub variables: Vec<(String, String)>,
    /// Longest an invocation may run.
    pub timeout: Duration,
    /// Region reported to the function.
    pub region: String,
    /// Memory in MB, reported to the function (`AWS_LAMBDA_FUNCTION_MEMORY_SIZE`).
    pub memory_mb: u32,
    /// Longest the init phase may take ([`INIT_LIMIT`]).
    pub init_limit: Duration,
}

/// One invocation handed to an environment.
#[derive(Debug)]
pub struct Invocation {
    /// Request id.
    pub request_id: String,
    /// Payload.
    pub payload: Bytes,
    /// X-Ray trace header value passed on.
    pub trace_id: String,
    /// A tenant to offer instead of the environment's own: a fault only the conformance kit
    /// injects (the platform breaking its promise), to see the guard fail closed.
    pub offered_tenant: Option<String>,
}

/// How an invocation ended inside an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvocationResult {
    /// The function answered.
    Success(Bytes),
    /// The function reported an error.
    FunctionError {
        /// `errorType` (or the `Lambda-Runtime-Function-Error-Type` header).
        error_type: String,
        /// The error document.
        body: Bytes,
    },
    /// The process exited during the invocation (or before taking it).
    Crashed(String),
    /// The invocation ran past the function timeout; the process was killed.
    TimedOut,
    /// The runtime did not finish its init phase within [`INIT_LIMIT`]; the process was killed.
    InitTimedOut,
}

impl InvocationResult {
    /// `success`, `error`, `crashed` or `timeout`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Success(_) => "success",
            Self::FunctionError { .. } => "error",
            Self::Crashed(_) => "crashed",
            Self::TimedOut => "timeout",
            Self::InitTimedOut => "init-timeout",
        }
    }

    /// The error type, for failures.
    pub fn error_type(&self) -> Option<String> {
        match self {
            Self::Success(_) => None,
            Self::FunctionError { error_type, .. } => Some(error_type.clone()),
            Self::Crashed(_) => Some("Runtime.ExitError".into()),
            Self::TimedOut | Self::InitTimedOut => Some("Sandbox.Timedout".into()),
        }
    }

    /// The error document Lambda would return for a failure.
    pub fn error_document(&self) -> Option<serde_json::Value> {
        match self {
            Self::Success(_) => None,
            Self::FunctionError { error_type, body } => Some(
                serde_json::from_slice(body).unwrap_or_else(|_| {
                    serde_json::json!({"errorType": error_type, "errorMessage": String::from_utf8_lossy(body)})
                }),
            ),
            Self::Crashed(message) => Some(serde_json::json!({
                "errorType": "Runtime.ExitError",
                "errorMessage": message,
            })),
            Self::TimedOut => Some(serde_json::json!({
                "errorType": "Sandbox.Timedout",
                "errorMessage": "Task timed out",
            })),
            Self::InitTimedOut => Some(serde_json::json!({
                "errorType": "Sandbox.Timedout",
                "errorMessage": "the INIT phase did not finish within its limit",
            })),
        }
    }
}

struct Pending {
    invocation: Invocation,
    timeout: Duration,
    /// Told when the runtime takes the invocation (its timeout counts from then).
    taken: oneshot::Sender<()>,
    respond: oneshot::Sender<InvocationResult>,
}

/// Longest the init phase may take, from the process's start to its first `next`: Lambda's 10 s
/// (<https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html>).
pub const INIT_LIMIT: Duration = Duration::from_secs(10);

struct RuntimeState {
    function_arn: String,
    tenant: Option<String>,
    next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    in_flight: Mutex<HashMap<String, oneshot::Sender<InvocationResult>>>,
    init_error: Mutex<Option<String>>,
    initialised: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes the watcher to stop the process (after `/init/error`, as Lambda does).
    stop_requested: tokio::sync::Notify,
}

/// A running execution environment.
pub struct Environment {
    /// Environment id (also its log stream name).
    pub id: String,
    /// Function it runs.
    pub function: String,
    /// Tenant it belongs to, for life (`None` for a function that is not tenant-isolated).
    pub tenant: Option<String>,
    /// Process id.
    pub pid: u32,
    timeout: Duration,
    init_limit: Duration,
    started: std::time::Instant,
    /// Set when the runtime first asks for an invocation: its init phase is over.
    initialised: Arc<std::sync::atomic::AtomicBool>,
    sender: mpsc::Sender<Pending>,
    exited: watch::Receiver<Option<InvocationResult>>,
    stopping: std::sync::atomic::AtomicBool,
    kill: Mutex<Option<oneshot::Sender<()>>>,
}

impl Environment {
    /// Starts the process and its Runtime API. Must be called within a Tokio runtime.
    pub fn start(
        spec: &EnvironmentSpec,
        id: String,
        tenant: Option<String>,
        output: OutputSink,
    ) -> std::io::Result<Arc<Environment>> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let (sender, receiver) = mpsc::channel(1);
        let initialised = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let function_arn = format!(
            "arn:aws:lambda:{}:000000000000:function:{}",
            spec.region, spec.function
        );
        let state = Arc::new(RuntimeState {
            function_arn,
            tenant: tenant.clone(),
            next: tokio::sync::Mutex::new(receiver),
            in_flight: Mutex::new(HashMap::new()),
            init_error: Mutex::new(None),
            initialised: initialised.clone(),
            stop_requested: tokio::sync::Notify::new(),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            // Larger answers than Lambda allows are read, so the invoker gets Lambda's error
            // rather than a connection the runtime saw refused (axum's own limit is 2 MiB).
            .layer(axum::extract::DefaultBodyLimit::max(RUNTIME_BODY_LIMIT))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });

        // Each environment has a scratch directory of its own, as each Lambda environment has its
        // own /tmp: TMPDIR, which tempfile libraries follow (a literal "/tmp" is the host's).
        let tmp = std::env::temp_dir()
            .join("local-lambda")
            .join(format!("{id}-{}", uuid::Uuid::new_v4().simple()));
        if let Err(e) = std::fs::create_dir_all(&tmp) {
            server.abort();
            return Err(e);
        }
        let mut command = tokio::process::Command::new(&spec.executable);
        command
            .env_clear()
            .env("TMPDIR", &tmp)
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.function)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env(
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
                spec.memory_mb.to_string(),
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.function),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", &id)
            .env("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand")
            .env("AWS_REGION", &spec.region)
            .env("AWS_DEFAULT_REGION", &spec.region)
            .env("_HANDLER", "bootstrap")
            .env(
                "LAMBDA_TASK_ROOT",
                spec.executable
                    .parent()
                    .unwrap_or(std::path::Path::new(".")),
            )
            .env("TZ", ":UTC")
            .envs(spec.variables.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            // Its own process group, so that stopping it also stops what it started.
            .process_group(0);
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => {
                server.abort();
                let _ = std::fs::remove_dir_all(&tmp);
                return Err(e);
            }
        };
        let pid = child.id().unwrap_or_default();
        let prefix = format!("[{id} {}]", tenant.as_deref().unwrap_or("-"));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let output = output.clone();
            let prefix = prefix.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let mut sink = output.lock().expect("output lock");
                    let _ = writeln!(sink, "{prefix} {line}");
                }
            });
        }

        let (exited_tx, exited) = watch::channel(None);
        let (kill_tx, kill_rx) = oneshot::channel::<()>();
        let watched = state.clone();
        tokio::spawn(async move {
            let stop = async {
                tokio::select! {
                    _ = kill_rx => {}
                    _ = watched.stop_requested.notified() => {}
                }
            };
            let status = tokio::select! {
                status = child.wait() => status.map(|s| s.to_string()).unwrap_or_else(|e| e.to_string()),
                _ = stop => {
                    kill_group(pid);
                    let _ = child.kill().await;
                    "killed by the stand-in".to_owned()
                }
            };
            server.abort();
            let _ = std::fs::remove_dir_all(&tmp);
            let init = watched.init_error.lock().expect("lock").clone();
            let message = format!("the runtime exited: {status}");
            let result = match init {
                Some(document) => InvocationResult::FunctionError {
                    error_type: serde_json::from_str::<serde_json::Value>(&document)
                        .ok()
                        .and_then(|d| d["errorType"].as_str().map(str::to_owned))
                        .unwrap_or_else(|| "Runtime.InitError".into()),
                    body: Bytes::from(document),
                },
                None => InvocationResult::Crashed(message),
            };
            // Publish the exit first, so that nobody hands this environment out again; whatever
            // is queued for it ends with the same result.
            let _ = exited_tx.send(Some(result.clone()));
            // Everything in flight ends now.
            let in_flight: Vec<_> = watched
                .in_flight
                .lock()
                .expect("lock")
                .drain()
                .map(|(_, tx)| tx)
                .collect();
            for tx in in_flight {
                let _ = tx.send(result.clone());
            }
        });

        Ok(Arc::new(Environment {
            id,
            function: spec.function.clone(),
            tenant,
            pid,
            timeout: spec.timeout,
            init_limit: spec.init_limit,
            started: std::time::Instant::now(),
            initialised,
            sender,
            exited,
            kill: Mutex::new(Some(kill_tx)),
            stopping: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    /// Whether the process is running and not being stopped.
    pub fn is_alive(&self) -> bool {
        !self.stopping.load(std::sync::atomic::Ordering::Acquire) && self.exited.borrow().is_none()
    }

    /// Stops the process (and its process group).
    pub fn stop(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(kill) = self.kill.lock().expect("lock").take() {
            let _ = kill.send(());
        }
    }

    /// Runs one invocation and waits for its end (answer, error, crash or timeout). The function
    /// timeout counts from when the runtime takes the invocation; before that, a runtime still in
    /// its init phase has until [`INIT_LIMIT`] after its start, else it is stopped and the
    /// invocation ends as `Sandbox.Timedout`. (Lambda would instead run the init phase again
    /// within the first invocation, under the function timeout: a deviation, kept simple.)
    pub async fn invoke(&self, invocation: Invocation) -> InvocationResult {
        let (respond, answer) = oneshot::channel();
        let (taken, was_taken) = oneshot::channel();
        let pending = Pending {
            invocation,
            timeout: self.timeout,
            taken,
            respond,
        };
        let mut exited = self.exited.clone();
        if let Some(result) = exited.borrow().clone() {
            return result;
        }
        if !self.is_alive() {
            return InvocationResult::Crashed("the environment is being stopped".into());
        }
        if self.sender.send(pending).await.is_err() {
            return InvocationResult::Crashed("the environment is gone".into());
        }
        let gone = || InvocationResult::Crashed("the environment is gone".into());
        let exit = |result: Result<watch::Ref<'_, Option<InvocationResult>>, _>| {
            result.ok().and_then(|r| r.clone()).unwrap_or_else(gone)
        };
        // Until the runtime takes it: what is left of the init limit, for a runtime still
        // initialising; else the function timeout (a runtime that answered but never asks for
        // the next invocation does not hold it forever).
        let initialising = !self.initialised.load(std::sync::atomic::Ordering::Acquire);
        let pickup = if initialising {
            self.init_limit.saturating_sub(self.started.elapsed())
        } else {
            self.timeout
        };
        tokio::select! {
            biased;
            taken = was_taken => {
                if taken.is_err() {
                    // Dropped untaken: the environment ended.
                    return self.exited.borrow().clone().unwrap_or_else(gone);
                }
            }
            result = exited.wait_for(Option::is_some) => return exit(result),
            _ = tokio::time::sleep(pickup) => {
                self.stop();
                return if initialising {
                    InvocationResult::InitTimedOut
                } else {
                    InvocationResult::TimedOut
                };
            }
        }
        tokio::select! {
            // An answer that is already there wins over a simultaneous exit or deadline.
            biased;
            answer = answer => match answer {
                Ok(result) => result,
                // The invocation was dropped unanswered: the environment ended, and its exit
                // (published before anything queued is dropped) says how.
                Err(_) => self.exited.borrow().clone().unwrap_or_else(gone),
            },
            result = exited.wait_for(Option::is_some) => exit(result),
            _ = tokio::time::sleep(self.timeout) => {
                self.stop();
                InvocationResult::TimedOut
            }
        }
    }
}

/// Kills the process group that `pid` leads (the function and anything it started), but only if
/// `pid` really leads its own group: the environment was started with `process_group(0)`, and the
/// process has not been reaped yet when this is called.
fn kill_group(pid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::{Pid, getpgid};
    let Ok(raw) = i32::try_from(pid) else { return };
    if raw <= 1 {
        return;
    }
    let pid = Pid::from_raw(raw);
    if getpgid(Some(pid)) == Ok(pid) {
        let _ = killpg(pid, Signal::SIGKILL);
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn next(State(state): State<Arc<RuntimeState>>) -> Response {
    let pending = {
        let mut receiver = state.next.lock().await;
        receiver.recv().await
    };
    let Some(Pending {
        invocation,
        timeout,
        taken,
        respond,
    }) = pending
    else {
        return StatusCode::GONE.into_response();
    };
    state
        .initialised
        .store(true, std::sync::atomic::Ordering::Release);
    let _ = taken.send(());
    let deadline_ms = chrono::Utc::now().timestamp_millis() + timeout.as_millis() as i64;
    state
        .in_flight
        .lock()
        .expect("lock")
        .insert(invocation.request_id.clone(), respond);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("lambda-runtime-aws-request-id", &invocation.request_id);
    set("lambda-runtime-deadline-ms", &deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", &state.function_arn);
    set("lambda-runtime-trace-id", &invocation.trace_id);
    if let Some(tenant) = invocation.offered_tenant.as_ref().or(state.tenant.as_ref()) {
        set("lambda-runtime-aws-tenant-id", tenant);
    }
    set("content-type", "application/json");
    (StatusCode::OK, headers, invocation.payload).into_response()
}

fn accepted() -> Response {
    (
        StatusCode::ACCEPTED,
        axum::Json(serde_json::json!({"status": "OK"})),
    )
        .into_response()
}

fn unknown_request(id: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        axum::Json(serde_json::json!({
            "errorMessage": format!("invalid request id {id}"),
            "errorType": "InvalidRequestID"
        })),
    )
        .into_response()
}

/// Largest function response Lambda returns: 6 MB (6,291,456 bytes).
pub const RESPONSE_LIMIT: usize = 6 * 1024 * 1024;

/// Largest body the Runtime API reads: past it the connection is refused.
const RUNTIME_BODY_LIMIT: usize = 4 * RESPONSE_LIMIT;

async fn response(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let Some(tx) = state.in_flight.lock().expect("lock").remove(&id) else {
        return unknown_request(&id);
    };
    if body.len() > RESPONSE_LIMIT {
        // Lambda's answer to an oversized response: the invoker gets a function error, the
        // runtime a 413.
        let message = format!(
            "Response payload size ({} bytes) exceeded maximum allowed payload size \
             ({RESPONSE_LIMIT} bytes).",
            body.len()
        );
        let document = serde_json::json!({
            "errorType": "Function.ResponseSizeTooLarge",
            "errorMessage": message,
        });
        let _ = tx.send(InvocationResult::FunctionError {
            error_type: "Function.ResponseSizeTooLarge".into(),
            body: Bytes::from(document.to_string()),
        });
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            serde_json::json!({"errorType": "RequestEntityTooLarge", "errorMessage": message})
                .to_string(),
        )
            .into_response();
    }
    let _ = tx.send(InvocationResult::Success(body));
    accepted()
}

async fn error(
    State(state): State<Arc<RuntimeState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let error_type = headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| {
            serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["errorType"].as_str().map(str::to_owned))
        })
        .unwrap_or_else(|| "Unhandled".into());
    match state.in_flight.lock().expect("lock").remove(&id) {
        Some(tx) => {
            let _ = tx.send(InvocationResult::FunctionError { error_type, body });
            accepted()
        }
        None => unknown_request(&id),
    }
}

async fn init_error(State(state): State<Arc<RuntimeState>>, body: Bytes) -> Response {
    *state.init_error.lock().expect("lock") = Some(String::from_utf8_lossy(&body).into_owned());
    // Lambda stops an environment whose initialisation failed.
    state.stop_requested.notify_one();
    accepted()
}
