//! The `router` binary: reads the configuration, builds the AWS clients once, then either replays
//! recorded events (`router replay`) or runs the Lambda runtime loop.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use router::Router;
use router::invocation::{InvocationInfo, now_ms};
use router::replay::{Cli, Command, aws_backend, aws_registry, replay, sdk_config};
use router::retry::Deadline;
use router::{Config, telemetry};
use serde_json::value::RawValue;
use tracing::Instrument;

/// mimalloc: routing allocates and frees many small buffers per record (the SDK's request, the
/// envelope, log lines); glibc's allocator spent about a fifth of the CPU on them (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let code = run().await;
    // Lines logged since the last invocation (start-up, shutdown) are written too.
    telemetry::flush();
    code
}

async fn run() -> ExitCode {
    let cli = Cli::parse();
    telemetry::init_buffered("router");
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("router: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let sdk = sdk_config().await;
    let backend = match aws_backend(&config, &sdk).await {
        Ok(backend) => backend,
        Err(e) => {
            eprintln!("router: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let in_lambda = cli.command.is_none();
    let registry = aws_registry(&config, &sdk);
    let router = match Router::new(config, backend) {
        Ok(router) => Ok(match registry {
            Some(directory) => router.with_registry(Box::new(directory)),
            None => router,
        }),
        Err(e) => Err(e),
    };
    let router = match router {
        // EMF documents go to stdout inside Lambda (CloudWatch reads them there); `replay` keeps
        // stdout for the responses, so its metrics go to stderr with the logs.
        Ok(router) if in_lambda => router.with_metrics(Box::new(|document| println!("{document}"))),
        Ok(router) => router.with_metrics(Box::new(|document| eprintln!("{document}"))),
        Err(e) => {
            eprintln!("router: cannot start: {e}");
            return ExitCode::from(2);
        }
    };
    match cli.command {
        Some(Command::Replay {
            deadline_ms,
            at,
            files,
        }) => {
            let errors = replay(
                &router,
                &files,
                Duration::from_millis(deadline_ms),
                at,
                &mut std::io::stdout().lock(),
            )
            .await;
            for error in &errors {
                eprintln!("router replay: {error}");
            }
            if errors.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None if std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some() => {
            let router: &'static Router<_> = Box::leak(Box::new(router));
            let cold = std::sync::atomic::AtomicBool::new(true);
            let cold: &'static _ = Box::leak(Box::new(cold));
            let handler = service_fn(move |event: LambdaEvent<Box<RawValue>>| async move {
                let span = tracing::info_span!(
                    "invocation",
                    function_request_id = event.context.request_id.as_str(),
                    xray_trace_id = event.context.xray_trace_id.as_deref(),
                    cold_start = cold.swap(false, std::sync::atomic::Ordering::Relaxed),
                );
                let now = now_ms();
                let remaining = u64::try_from(event.context.deadline as i64 - now).unwrap_or(0);
                let info = InvocationInfo {
                    deadline: Deadline::after(
                        Duration::from_millis(remaining),
                        router.config().deadline_margin,
                    ),
                    trace_id: event.context.xray_trace_id.clone(),
                    now_ms: now,
                };
                router
                    .handle(event.payload.get(), &info)
                    .instrument(span)
                    .await
                    .map_err(Error::from)
            });
            match lambda_runtime::run(handler).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("router: runtime error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        None => {
            eprintln!(
                "router: no command given and not running inside Lambda \
                 (AWS_LAMBDA_RUNTIME_API is unset); try `router replay FILE...` or `router --help`"
            );
            ExitCode::from(2)
        }
    }
}
