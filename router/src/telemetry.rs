//! Logging set-up: JSON lines on stderr (or readable text in a terminal), level from
//! `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG`, `info` by default.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Crates that may print request bodies (and so tokens or payloads) at DEBUG or TRACE: they are
/// never logged below INFO, whatever level is asked for.
const QUIET_BELOW_INFO: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_lambda",
    "aws_sdk_sqs",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "rustls",
];

/// The filter for a requested level or directive string, with the quiet crates capped at INFO.
pub fn filter_for(requested: &str) -> EnvFilter {
    let mut directives = requested.to_owned();
    for target in QUIET_BELOW_INFO {
        directives.push_str(&format!(",{target}=info"));
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Installs the global subscriber. Safe to call once per process.
pub fn init(service: &'static str) {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = filter_for(&level);
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
        || !std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
    if result.is_ok() {
        tracing::debug!(message = "logging ready", service = service);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_crates_never_log_below_info() {
        use tracing::Level;
        use tracing_subscriber::layer::SubscriberExt;

        for requested in ["trace", "debug", "aws_smithy_runtime=trace,trace"] {
            let subscriber = tracing_subscriber::registry().with(filter_for(requested));
            tracing::subscriber::with_default(subscriber, || {
                assert!(!tracing::enabled!(target: "aws_smithy_runtime::client", Level::DEBUG));
                assert!(!tracing::enabled!(target: "hyper_util::client", Level::TRACE));
                assert!(tracing::enabled!(target: "aws_smithy_runtime", Level::INFO));
                assert!(tracing::enabled!(target: "router::batch", Level::DEBUG));
            });
        }
    }
}
