//! The `local-lambda` binary: `run` serves a configuration file's functions and mappings; `serve`
//! runs the stand-in for functions given on the command line; `replay` replays recorded events
//! through the router on it; `conformance` checks a backend's guard; `usage` prices a log.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use local::replay::{print, replay, settings_for, sibling_backend};
use local::service::{Faults, FunctionSpec, Settings};

#[derive(Debug, Parser)]
#[command(
    name = "local-lambda",
    version,
    about = "A local stand-in for AWS Lambda with tenant-isolated execution environments as real processes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the functions and event source mappings of a configuration file (TOML; see
    /// the README's "Event source mappings and the configuration file") until interrupted (Ctrl-C or
    /// SIGTERM).
    Run {
        /// The configuration file.
        config: PathBuf,
    },
    /// Serves the Invoke API for the given functions until interrupted.
    Serve {
        /// Address to listen on (loopback).
        #[arg(long, default_value = "127.0.0.1:9001")]
        listen: std::net::SocketAddr,
        /// A function: NAME=EXECUTABLE[,per-tenant][,memory=MB][,concurrency=N][,retries=N][,max-event-age=SECONDS].
        /// Repeatable.
        #[arg(long = "function", required = true, value_parser = FunctionSpec::parse)]
        functions: Vec<FunctionSpec>,
        #[command(flatten)]
        common: Common,
    },
    /// Replays recorded events through the router into the `backend` function, tenant-isolated.
    Replay {
        /// The backend executable (default: `backend` beside this binary).
        #[arg(long)]
        backend: Option<PathBuf>,
        /// Time budget of each replayed router invocation, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        deadline_ms: u64,
        /// Processing time the router sees (RFC 3339), e.g. when the events were recorded;
        /// default: now.
        #[arg(long, value_parser = router::replay::parse_time)]
        at: Option<i64>,
        #[command(flatten)]
        common: Common,
        /// Event files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Checks a backend's tenant guard against the contract: runs EXECUTABLE (any Runtime-API
    /// bootstrap) as a tenant-isolated function, prints one line per check, exits 1 if any fails.
    /// Its environments share an idempotency table the kit creates (BACKEND_IDEMPOTENCY_TABLE):
    /// on the DynamoDB API server AWS_ENDPOINT_URL_DYNAMODB or AWS_ENDPOINT_URL names, else on
    /// moto's server (moto_server, from target/moto/ or PATH) started for the run.
    Conformance {
        /// The bootstrap under test.
        executable: PathBuf,
        /// Extra environment variable for it, KEY=VALUE. Repeatable.
        #[arg(long = "env", value_parser = parse_variable)]
        variables: Vec<(String, String)>,
        /// A JSON payload the handler fails (for the ordering checks); default: a JSON string,
        /// which no to-do backend can enrich.
        #[arg(long, value_parser = parse_json)]
        failing_payload: Option<serde_json::Value>,
        /// Longest one invocation may run, in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
        /// Where the environments' output goes (default: discarded).
        #[arg(long)]
        environment_output: Option<PathBuf>,
    },
    /// Usage and cost per tenant from an invocation log (`--log` of `serve` or `replay`), at the
    /// list prices of shared/pricing.json; the router's cost shared out by records.
    Usage {
        /// The invocation log.
        #[arg(long)]
        log: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
struct Common {
    /// The account's concurrency: most execution environments busy at once (a tenant-isolated
    /// function keeps up to 2.5 environments per unit of concurrency alive, busy or idle).
    #[arg(long, alias = "max-environments", default_value_t = 64)]
    concurrency: usize,
    /// Idle environments are stopped after this many milliseconds.
    #[arg(long, default_value_t = 300_000)]
    idle_timeout_ms: u64,
    /// Function timeout, in milliseconds.
    #[arg(long, default_value_t = 30_000)]
    function_timeout_ms: u64,
    /// Delay before the first retry of a failed async invocation (the second waits twice as
    /// long); Lambda waits about a minute.
    #[arg(long)]
    async_retry_delay_ms: Option<u64>,
    /// Injected faults, e.g. `429:0.1,500:0.05`.
    #[arg(long, value_parser = Faults::parse)]
    fault: Option<Faults>,
    /// Seed of the fault draw.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Extra environment variable for the functions, KEY=VALUE. Repeatable.
    #[arg(long = "env", value_parser = parse_variable)]
    variables: Vec<(String, String)>,
    /// Invocation log: one JSON line per invocation attempt.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Results file: one async destination record per finished async invocation.
    #[arg(long)]
    results: Option<PathBuf>,
    /// Where the environments' output goes (default: stderr).
    #[arg(long)]
    environment_output: Option<PathBuf>,
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {text:?}"))
}

impl Common {
    fn apply(self, mut settings: Settings) -> Settings {
        settings.concurrency = self.concurrency;
        settings.idle_timeout = Duration::from_millis(self.idle_timeout_ms);
        settings.function_timeout = Duration::from_millis(self.function_timeout_ms);
        if let Some(delay) = self.async_retry_delay_ms {
            settings.async_retry_delays = [
                Duration::from_millis(delay),
                Duration::from_millis(delay * 2),
            ];
        }
        settings.faults = self.fault.unwrap_or_default();
        settings.seed = self.seed;
        settings.variables.extend(self.variables);
        settings.log = self.log;
        settings.results = self.results;
        settings.environment_output = self.environment_output;
        settings
    }
}

/// Waits for Ctrl-C or SIGTERM.
async fn wait_for_stop() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    router::telemetry::init("local-lambda");
    match Cli::parse().command {
        Command::Run { config } => {
            let config = match local::config::Config::read(&config) {
                Ok(config) => config,
                Err(e) => {
                    eprintln!("local-lambda: {e:#}");
                    return ExitCode::from(2);
                }
            };
            let running = match local::run::Running::start(config).await {
                Ok(running) => running,
                Err(e) => {
                    eprintln!("local-lambda: {e:#}");
                    return ExitCode::from(2);
                }
            };
            eprintln!("local-lambda: Invoke API on http://{}", running.address);
            wait_for_stop().await;
            eprintln!("local-lambda: stopping");
            running.stop().await;
            ExitCode::SUCCESS
        }
        Command::Serve {
            listen,
            functions,
            common,
        } => {
            if !listen.ip().is_loopback() {
                eprintln!("local-lambda: --listen must be a loopback address");
                return ExitCode::from(2);
            }
            let settings = common.apply(Settings {
                functions,
                ..Settings::default()
            });
            let service = match local::service::Service::new(settings) {
                Ok(service) => service,
                Err(e) => {
                    eprintln!("local-lambda: {e}");
                    return ExitCode::from(2);
                }
            };
            let (address, server) = match local::api::serve(service.clone(), listen).await {
                Ok(bound) => bound,
                Err(e) => {
                    eprintln!("local-lambda: cannot listen on {listen}: {e}");
                    return ExitCode::from(2);
                }
            };
            eprintln!("local-lambda: Invoke API on http://{address}");
            let _ = tokio::signal::ctrl_c().await;
            server.abort();
            service.drain().await;
            service.pool().stop_all();
            ExitCode::SUCCESS
        }
        Command::Replay {
            backend,
            deadline_ms,
            at,
            common,
            files,
        } => {
            let settings = common.apply(settings_for(backend.unwrap_or_else(sibling_backend)));
            let result = replay(
                settings,
                &files,
                Duration::from_millis(deadline_ms),
                at,
                |name| std::env::var(name).ok(),
            )
            .await;
            match result {
                Ok((summary, _)) => {
                    let failed_files = summary.responses.iter().filter(|(_, r)| r.is_err()).count();
                    let _ = print(&summary, &mut std::io::stdout().lock());
                    if failed_files == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("local-lambda replay: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Conformance {
            executable,
            variables,
            failing_payload,
            timeout_ms,
            environment_output,
        } => {
            let mut options = local::conformance::Options::new(executable);
            options.variables = variables;
            // The SDK's own rule: the service's endpoint variable first, then the general one.
            options.dynamodb_endpoint = ["AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"]
                .iter()
                .filter_map(|name| std::env::var(name).ok())
                .find(|url| !url.trim().is_empty());
            options.timeout = Duration::from_millis(timeout_ms);
            options.environment_output = environment_output;
            if let Some(payload) = failing_payload {
                options.failing_payload = payload;
            }
            match local::conformance::run(&options).await {
                Ok(checks) => {
                    for check in &checks {
                        println!("{check}");
                    }
                    let failed = checks.iter().filter(|c| !c.passed).count();
                    println!(
                        "{} of {} checks passed",
                        checks.len() - failed,
                        checks.len()
                    );
                    if failed == 0 {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("local-lambda conformance: {e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Usage { log, json } => {
            let report = std::fs::read_to_string(&log)
                .map_err(|e| e.to_string())
                .and_then(|text| local::usage::read_log(&text))
                .and_then(|entries| {
                    local::usage::compute(&entries, &shared::pricing::Prices::list())
                });
            match report {
                Ok(report) if json => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("the report serialises")
                    );
                    ExitCode::SUCCESS
                }
                Ok(report) => {
                    print!("{}", local::usage::render(&report));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("local-lambda usage: {}: {e}", log.display());
                    ExitCode::from(2)
                }
            }
        }
    }
}
