//! The command line: `router replay [--deadline-ms N] [--at TIME] FILE...` runs the handler on recorded events
//! and prints each batch response on its own stdout line; with no command inside Lambda
//! (`AWS_LAMBDA_RUNTIME_API` set) the binary runs the Lambda runtime loop instead.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::backend::{AwsBackend, Backend, Quarantine, QuarantineBucket, message_limit};
use crate::config::Config;
use crate::handler::Router;
use crate::invocation::InvocationInfo;

/// Command-line arguments.
#[derive(Debug, Parser)]
#[command(
    name = "router",
    version,
    about = "Routes event source mapping batches to a tenant-isolated Lambda function",
    long_about = "Routes event source mapping batches to a tenant-isolated Lambda function.\n\n\
        With no command and AWS_LAMBDA_RUNTIME_API set, runs as a Lambda function. \
        Configuration comes from ROUTER_* environment variables (see the README)."
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs the handler on recorded event files and prints one batch response per file.
    Replay {
        /// Time budget of each simulated invocation, in milliseconds.
        #[arg(long, default_value_t = 60_000)]
        deadline_ms: u64,
        /// Processing time the handler sees (RFC 3339), e.g. when the events were recorded;
        /// default: now. Tokens are judged at the source's arrival time, except those of direct
        /// EventBridge events, which are judged at processing time.
        #[arg(long, value_parser = parse_time)]
        at: Option<i64>,
        /// Event files (JSON); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// The SDK configuration every client of the router shares: the SDK's own configuration chain
/// (region, credentials, `AWS_ENDPOINT_URL_*`), with its retries and stalled-stream protection
/// turned off because the router retries itself, within its deadline. Loaded once at start.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .stalled_stream_protection(
            aws_config::stalled_stream_protection::StalledStreamProtectionConfig::disabled(),
        )
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .build(),
        )
        .load()
        .await
}

/// The tenant registry's reader: DynamoDB through `sdk` (`AWS_ENDPOINT_URL_DYNAMODB` included),
/// each attempt bounded to 2 s; `None` without `ROUTER_TENANT_REGISTRY_TABLE`.
pub fn aws_registry(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Option<crate::registry::DynamoDbDirectory> {
    config.registry.as_ref()?;
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(sdk)
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(2))
                .operation_attempt_timeout(Duration::from_secs(2))
                .build(),
        )
        .build();
    Some(crate::registry::DynamoDbDirectory(
        aws_sdk_dynamodb::Client::from_conf(dynamodb),
    ))
}

/// Builds the AWS backend the way the binary does, from [`sdk_config`] (`AWS_ENDPOINT_URL_LAMBDA`
/// / `AWS_ENDPOINT_URL_SQS` / `AWS_ENDPOINT_URL_S3` included). Fails when the quarantine bucket
/// cannot be addressed, or the quarantine queue's message limit cannot be known.
pub async fn aws_backend(
    config: &Config,
    sdk: &aws_config::SdkConfig,
) -> Result<AwsBackend, String> {
    let lambda = aws_sdk_lambda::Client::new(sdk);
    let bucket = match config.quarantine_bucket.as_deref() {
        None => None,
        Some(name) => {
            // The SDK's endpoint convention: AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL (a local
            // server, addressed by path), else the region's S3 endpoint (virtual-hosted).
            let configured = std::env::var("AWS_ENDPOINT_URL_S3")
                .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
                .ok()
                .filter(|url| !url.trim().is_empty());
            let region = sdk.region().map_or("us-east-1", |r| r.as_ref()).to_owned();
            let endpoint = configured
                .clone()
                .unwrap_or_else(|| format!("https://s3.{region}.amazonaws.com"));
            let credentials = sdk
                .credentials_provider()
                .ok_or("ROUTER_QUARANTINE_BUCKET: no AWS credentials are configured")?;
            Some(
                QuarantineBucket::new(&endpoint, configured.is_some(), name, &region, credentials)
                    .map_err(|e| format!("ROUTER_QUARANTINE_BUCKET: {e}"))?,
            )
        }
    };
    let quarantine = match config.quarantine_queue_url.clone() {
        None => None,
        Some(queue_url) => {
            let sqs = aws_sdk_sqs::Client::new(sdk);
            let max_message_bytes =
                message_limit(&sqs, &queue_url, config.quarantine_max_message_bytes).await?;
            Some(Quarantine {
                sqs,
                queue_url,
                max_message_bytes,
                bucket,
            })
        }
    };
    Ok(AwsBackend::new(
        lambda,
        config.backend_function.clone(),
        quarantine,
    ))
}

/// Why a replayed file produced no response.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {reason}")]
pub struct ReplayError {
    /// The file.
    pub file: String,
    /// What went wrong.
    pub reason: String,
}

/// An RFC 3339 time (`--at`) as milliseconds since the epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("expected an RFC 3339 time such as 2026-01-01T00:00:01Z: {e}"))
}

/// Replays each file through `router`, writing one response line per file to `out`. Files that
/// cannot be read or are not event source batches are reported and skipped; the others still run.
/// `at_ms` is the processing time the handler sees (`None`: the clock).
pub async fn replay<B: Backend>(
    router: &Router<B>,
    files: &[PathBuf],
    budget: Duration,
    at_ms: Option<i64>,
    out: &mut impl Write,
) -> Vec<ReplayError> {
    let mut errors = Vec::new();
    for file in files {
        let name = file.display().to_string();
        let text = match read(file) {
            Ok(text) => text,
            Err(e) => {
                errors.push(ReplayError {
                    file: name,
                    reason: e.to_string(),
                });
                continue;
            }
        };
        let mut info = InvocationInfo::with_budget(budget, router.config().deadline_margin);
        if let Some(at_ms) = at_ms {
            info.now_ms = at_ms;
        }
        let span = tracing::info_span!(
            "invocation",
            function_request_id = format!("replay-{}", uuid::Uuid::new_v4()),
            replay_file = name.as_str(),
        );
        match tracing::Instrument::instrument(router.handle(&text, &info), span).await {
            Ok(response) => {
                let written = writeln!(out, "{response}").and_then(|()| out.flush());
                if let Err(e) = written {
                    errors.push(ReplayError {
                        file: name,
                        reason: format!("cannot write the response: {e}"),
                    });
                }
            }
            Err(e) => errors.push(ReplayError {
                file: name,
                reason: e.to_string(),
            }),
        }
    }
    errors
}

fn read(file: &PathBuf) -> std::io::Result<String> {
    if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else {
        std::fs::read_to_string(file)
    }
}
