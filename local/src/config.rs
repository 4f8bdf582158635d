//! The configuration file of `local-lambda run`: the functions a developer serves and the event
//! source mappings that feed them, in TOML. Paths are relative to the file, so the installed
//! binary works from any directory; `${NAME}` in a string value is replaced by the environment
//! variable `NAME` (an unset one is an error naming it).
//!
//! ```toml
//! [service]
//! listen = "127.0.0.1:9001"        # the Invoke API
//! account_concurrency = 64         # most environments busy at once, all functions together
//! log = "invocations.jsonl"        # the invocation log (optional)
//! mapping_log = "mappings.jsonl"   # a line per batch delivered or records discarded (optional)
//!
//! [aws]                            # where sources are polled (default: the AWS SDK's environment)
//! endpoint_url = "${AWS_ENDPOINT_URL}"
//! region = "us-east-1"
//!
//! [[functions]]
//! name = "router"
//! executable = "target/release/router"   # any Runtime-API bootstrap, any language
//! memory_mb = 256
//! timeout_seconds = 30
//! tenancy = "shared"                     # or "per-tenant" (TenancyConfig PER_TENANT)
//! concurrency = 10                       # reserved concurrency (optional)
//! environment = { ROUTER_BACKEND_FUNCTION = "backend" }
//!
//! [[mappings]]
//! function = "router"
//! event_source_arn = "arn:aws:sqs:us-east-1:123456789012:orders"
//! batch_size = 10
//! function_response_types = ["ReportBatchItemFailures"]
//! ```
//!
//! The mapping keys are `AWS::Lambda::EventSourceMapping`'s properties in snake case, with
//! Lambda's defaults and ranges; the README's "Event source mappings and the configuration file"
//! is the full reference.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::esm::{MappingSpec, SourceKind, StartingPosition};
use crate::service::{AsyncInvokeConfig, DEFAULT_MEMORY_MB, FunctionSpec, Settings};

/// A configuration file, read.
#[derive(Debug, Clone)]
pub struct Config {
    /// The Invoke API's address.
    pub listen: SocketAddr,
    /// The stand-in's settings (functions included).
    pub settings: Settings,
    /// The event source mappings.
    pub mappings: Vec<MappingSpec>,
    /// The mapping log, if any.
    pub mapping_log: Option<PathBuf>,
    /// The AWS endpoint sources are polled at (else the SDK's environment).
    pub endpoint_url: Option<String>,
    /// The AWS region of the sources (else the SDK's environment).
    pub region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    service: ServiceSection,
    #[serde(default)]
    aws: AwsSection,
    #[serde(default)]
    functions: Vec<FunctionSection>,
    #[serde(default)]
    mappings: Vec<MappingSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServiceSection {
    #[serde(default = "default_listen")]
    listen: String,
    #[serde(default = "default_account_concurrency")]
    account_concurrency: usize,
    #[serde(default = "default_idle_timeout")]
    idle_timeout_seconds: u64,
    #[serde(default = "default_async_retry_delay")]
    async_retry_delay_seconds: f64,
    log: Option<String>,
    results: Option<String>,
    mapping_log: Option<String>,
    environment_output: Option<String>,
}

impl Default for ServiceSection {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            account_concurrency: default_account_concurrency(),
            idle_timeout_seconds: default_idle_timeout(),
            async_retry_delay_seconds: default_async_retry_delay(),
            log: None,
            results: None,
            mapping_log: None,
            environment_output: None,
        }
    }
}

fn default_listen() -> String {
    "127.0.0.1:9001".into()
}
fn default_account_concurrency() -> usize {
    64
}
fn default_idle_timeout() -> u64 {
    300
}
fn default_async_retry_delay() -> f64 {
    60.0
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AwsSection {
    endpoint_url: Option<String>,
    region: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FunctionSection {
    name: String,
    executable: String,
    memory_mb: Option<u32>,
    timeout_seconds: Option<u64>,
    #[serde(default)]
    tenancy: Tenancy,
    concurrency: Option<usize>,
    maximum_retry_attempts: Option<u32>,
    maximum_event_age_seconds: Option<u64>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
}

#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
enum Tenancy {
    #[default]
    Shared,
    PerTenant,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingSection {
    function: String,
    event_source_arn: String,
    batch_size: Option<u32>,
    #[serde(default)]
    maximum_batching_window_seconds: u32,
    #[serde(default)]
    function_response_types: Vec<String>,
    starting_position: Option<String>,
    #[serde(default)]
    bisect_batch_on_function_error: bool,
    #[serde(default = "minus_one")]
    maximum_retry_attempts: i64,
    #[serde(default = "minus_one")]
    maximum_record_age_seconds: i64,
    on_failure: Option<String>,
    maximum_concurrency: Option<usize>,
    #[serde(default = "yes")]
    enabled: bool,
}

fn minus_one() -> i64 {
    -1
}
fn yes() -> bool {
    true
}

/// `path` without `.` and with each `name/..` removed (lexically: no symbolic link is followed).
fn normalise(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir
                if matches!(out.components().next_back(), Some(Component::Normal(_))) =>
            {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// Replaces each `${NAME}` in `text` by `variable(NAME)`.
pub fn expand(text: &str, variable: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
        let name = &after[..end];
        let value =
            variable(name).ok_or_else(|| format!("environment variable {name} is not set"))?;
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

impl Config {
    /// Reads the file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Self::parse(&text, &base, &|name| std::env::var(name).ok())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
    }

    /// Parses `text`; relative paths are taken from `base`, `${NAME}` from `variable`.
    pub fn parse(
        text: &str,
        base: &Path,
        variable: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let file: File = toml::from_str(text).map_err(|e| e.to_string())?;
        let expand =
            |what: &str, value: &str| expand(value, variable).map_err(|e| format!("{what}: {e}"));
        let path = |what: &str, value: &str| -> Result<PathBuf, String> {
            let value = expand(what, value)?;
            Ok(normalise(&base.join(value)))
        };
        let service = file.service;
        let listen: SocketAddr = expand("service.listen", &service.listen)?
            .parse()
            .map_err(|e| format!("service.listen: {e}"))?;
        if !listen.ip().is_loopback() {
            return Err("service.listen must be a loopback address".into());
        }
        if service.account_concurrency == 0 {
            return Err("service.account_concurrency must be at least 1".into());
        }
        let mut functions = Vec::new();
        for f in &file.functions {
            let at = |key: &str| format!("function {:?}: {key}", f.name);
            if f.name.is_empty() || functions.iter().any(|g: &FunctionSpec| g.name == f.name) {
                return Err(format!("function name {:?} is empty or repeated", f.name));
            }
            let memory_mb = f.memory_mb.unwrap_or(DEFAULT_MEMORY_MB);
            if !(128..=10_240).contains(&memory_mb) {
                return Err(format!(
                    "{} {memory_mb} is not 128 to 10240",
                    at("memory_mb")
                ));
            }
            let timeout = f.timeout_seconds.map(Duration::from_secs);
            if f.timeout_seconds.is_some_and(|s| !(1..=900).contains(&s)) {
                return Err(format!("{} is not 1 to 900", at("timeout_seconds")));
            }
            if f.concurrency == Some(0) {
                return Err(format!("{} must be at least 1", at("concurrency")));
            }
            let mut async_invoke = AsyncInvokeConfig::default();
            if let Some(n) = f.maximum_retry_attempts {
                if n > 2 {
                    return Err(format!(
                        "{} {n} is not 0 to 2",
                        at("maximum_retry_attempts")
                    ));
                }
                async_invoke.max_retry_attempts = n;
            }
            if let Some(age) = f.maximum_event_age_seconds {
                if !(60..=21_600).contains(&age) {
                    return Err(format!(
                        "{} {age} is not 60 to 21600",
                        at("maximum_event_age_seconds")
                    ));
                }
                async_invoke.max_event_age = Duration::from_secs(age);
            }
            let mut variables = Vec::new();
            for (key, value) in &f.environment {
                variables.push((key.clone(), expand(&at(key), value)?));
            }
            functions.push(FunctionSpec {
                name: f.name.clone(),
                executable: path(&at("executable"), &f.executable)?,
                per_tenant: f.tenancy == Tenancy::PerTenant,
                memory_mb,
                async_invoke,
                timeout,
                variables,
                concurrency: f.concurrency,
            });
        }
        let mut mappings = Vec::new();
        for (index, m) in file.mappings.iter().enumerate() {
            let arn = expand("event_source_arn", &m.event_source_arn)?;
            let at = |key: &str| format!("mapping {} ({arn}): {key}", index + 1);
            let Some(target) = functions.iter().find(|f| f.name == m.function) else {
                return Err(format!(
                    "{} {:?} is not a function here",
                    at("function"),
                    m.function
                ));
            };
            // Lambda has no event source mappings for tenant-isolated functions (each of their
            // invokes needs a tenant id, which a mapping cannot give): the gap the router closes.
            if target.per_tenant {
                return Err(format!(
                    "{} {:?} is tenant-isolated, and Lambda cannot map an event source to such a \
                     function; map the source to a router that invokes it with a tenant id",
                    at("function"),
                    m.function
                ));
            }
            let kind = SourceKind::of(&arn).map_err(|e| at(&e))?;
            // A FIFO queue takes batches of at most 10 and no batching window.
            if kind == (SourceKind::Sqs { fifo: true }) && m.maximum_batching_window_seconds > 0 {
                return Err(format!(
                    "{} is not supported for a FIFO queue",
                    at("maximum_batching_window_seconds")
                ));
            }
            let (default_batch, max_batch) = match kind {
                SourceKind::Sqs { fifo: true } => (10, 10),
                SourceKind::Sqs { .. } => (10, 10_000),
                SourceKind::Kinesis => (100, 10_000),
                SourceKind::DynamoDb => (100, 10_000),
            };
            let batch_size = m.batch_size.unwrap_or(default_batch);
            if !(1..=max_batch).contains(&batch_size) {
                return Err(format!(
                    "{} {batch_size} is not 1 to {max_batch}",
                    at("batch_size")
                ));
            }
            if m.maximum_batching_window_seconds > 300 {
                return Err(format!(
                    "{} is not 0 to 300",
                    at("maximum_batching_window_seconds")
                ));
            }
            if matches!(kind, SourceKind::Sqs { .. })
                && batch_size > 10
                && m.maximum_batching_window_seconds == 0
            {
                return Err(format!(
                    "{}: a batch over 10 messages needs maximum_batching_window_seconds of 1 or more",
                    at("batch_size")
                ));
            }
            let report_failures = match m.function_response_types.as_slice() {
                [] => false,
                [only] if only == "ReportBatchItemFailures" => true,
                other => {
                    return Err(format!(
                        "{} {other:?}: only \"ReportBatchItemFailures\" is known",
                        at("function_response_types")
                    ));
                }
            };
            let stream = !matches!(kind, SourceKind::Sqs { .. });
            let starting_position = match (stream, m.starting_position.as_deref()) {
                (true, Some("TRIM_HORIZON")) => StartingPosition::TrimHorizon,
                (true, Some("LATEST")) => StartingPosition::Latest,
                (true, other) => {
                    return Err(format!(
                        "{} {other:?}: a stream needs TRIM_HORIZON or LATEST",
                        at("starting_position")
                    ));
                }
                (false, None) => StartingPosition::TrimHorizon,
                (false, Some(_)) => {
                    return Err(format!(
                        "{} applies to streams only",
                        at("starting_position")
                    ));
                }
            };
            let stream_only = [
                (
                    "bisect_batch_on_function_error",
                    m.bisect_batch_on_function_error,
                ),
                ("maximum_retry_attempts", m.maximum_retry_attempts != -1),
                (
                    "maximum_record_age_seconds",
                    m.maximum_record_age_seconds != -1,
                ),
                ("on_failure", m.on_failure.is_some()),
            ];
            if !stream && let Some((key, _)) = stream_only.iter().find(|(_, set)| *set) {
                return Err(format!(
                    "{} applies to streams only (a queue's redrive policy sends messages to its \
                     dead-letter queue)",
                    at(key)
                ));
            }
            if !(-1..=10_000).contains(&m.maximum_retry_attempts) {
                return Err(format!(
                    "{} is not -1 to 10000",
                    at("maximum_retry_attempts")
                ));
            }
            let age = m.maximum_record_age_seconds;
            if age != -1 && !(60..=604_800).contains(&age) {
                return Err(format!(
                    "{} is not -1 or 60 to 604800",
                    at("maximum_record_age_seconds")
                ));
            }
            let on_failure = m
                .on_failure
                .as_deref()
                .map(|d| expand("on_failure", d))
                .transpose()?;
            if let Some(destination) = &on_failure
                && !matches!(SourceKind::of(destination), Ok(SourceKind::Sqs { .. }))
            {
                return Err(format!(
                    "{} {destination:?} is not an SQS queue ARN",
                    at("on_failure")
                ));
            }
            if m.maximum_concurrency
                .is_some_and(|n| !(2..=1000).contains(&n))
            {
                return Err(format!("{} is not 2 to 1000", at("maximum_concurrency")));
            }
            mappings.push(MappingSpec {
                function: m.function.clone(),
                event_source_arn: arn.clone(),
                kind,
                batch_size: batch_size as usize,
                batching_window: Duration::from_secs(m.maximum_batching_window_seconds.into()),
                report_failures,
                starting_position,
                bisect: m.bisect_batch_on_function_error,
                max_retry_attempts: u32::try_from(m.maximum_retry_attempts).ok(),
                max_record_age: u64::try_from(age).ok().map(Duration::from_secs),
                on_failure,
                pollers: m.maximum_concurrency.unwrap_or(2),
                enabled: m.enabled,
            });
        }
        let optional = |what: &str, value: &Option<String>| -> Result<Option<PathBuf>, String> {
            value.as_deref().map(|v| path(what, v)).transpose()
        };
        let delay = Duration::from_secs_f64(service.async_retry_delay_seconds.max(0.0));
        let settings = Settings {
            functions,
            concurrency: service.account_concurrency,
            idle_timeout: Duration::from_secs(service.idle_timeout_seconds),
            async_retry_delays: [delay, delay * 2],
            log: optional("service.log", &service.log)?,
            results: optional("service.results", &service.results)?,
            environment_output: optional(
                "service.environment_output",
                &service.environment_output,
            )?,
            ..Settings::default()
        };
        let aws = file.aws;
        Ok(Self {
            listen,
            settings,
            mappings,
            mapping_log: optional("service.mapping_log", &service.mapping_log)?,
            endpoint_url: aws
                .endpoint_url
                .as_deref()
                .map(|e| expand("aws.endpoint_url", e))
                .transpose()?,
            region: aws
                .region
                .as_deref()
                .map(|r| expand("aws.region", r))
                .transpose()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, Path::new("/etc/app"), &|name| {
            (name == "PORT").then(|| "4566".to_owned())
        })
    }

    const BASE: &str = r#"
        [aws]
        endpoint_url = "http://127.0.0.1:${PORT}"
        [[functions]]
        name = "router"
        executable = "bin/router"
        timeout_seconds = 10
        concurrency = 5
        environment = { A = "x${PORT}" }
        [[functions]]
        name = "backend"
        executable = "/opt/backend"
        tenancy = "per-tenant"
        memory_mb = 512
    "#;

    #[test]
    fn reads_functions_and_mappings_with_lambdas_defaults() {
        let config = parse(&format!(
            "{BASE}
            [[mappings]]
            function = \"router\"
            event_source_arn = \"arn:aws:sqs:us-east-1:123456789012:q.fifo\"
            function_response_types = [\"ReportBatchItemFailures\"]
            [[mappings]]
            function = \"router\"
            event_source_arn = \"arn:aws:kinesis:us-east-1:123456789012:stream/s\"
            starting_position = \"TRIM_HORIZON\"
            bisect_batch_on_function_error = true
            maximum_retry_attempts = 2
            on_failure = \"arn:aws:sqs:us-east-1:123456789012:failures\"
            "
        ))
        .unwrap();
        assert_eq!(
            config.endpoint_url.as_deref(),
            Some("http://127.0.0.1:4566")
        );
        let [router, backend] = config.settings.functions.as_slice() else {
            panic!("two functions")
        };
        assert_eq!(router.executable, Path::new("/etc/app/bin/router"));
        assert_eq!(normalise(Path::new("/a/b/../../c/./d")), Path::new("/c/d"));
        assert_eq!(normalise(Path::new("../x")), Path::new("../x"));
        assert_eq!(router.timeout, Some(Duration::from_secs(10)));
        assert_eq!(router.concurrency, Some(5));
        assert_eq!(router.variables, vec![("A".into(), "x4566".into())]);
        assert!(!router.per_tenant && backend.per_tenant);
        assert_eq!(backend.executable, Path::new("/opt/backend"));
        assert_eq!(backend.memory_mb, 512);
        let [queue, stream] = config.mappings.as_slice() else {
            panic!("two mappings")
        };
        assert_eq!(queue.kind, SourceKind::Sqs { fifo: true });
        assert_eq!((queue.batch_size, queue.report_failures), (10, true));
        assert_eq!(stream.kind, SourceKind::Kinesis);
        assert_eq!(stream.batch_size, 100);
        assert_eq!(stream.max_retry_attempts, Some(2));
        assert_eq!(stream.max_record_age, None);
        assert!(stream.bisect && stream.on_failure.is_some());
    }

    #[test]
    fn bad_settings_are_errors_naming_the_key() {
        for (extra, expected) in [
            ("[service]\nlisten = \"0.0.0.0:1\"", "loopback"),
            ("[service]\ncolour = 1", "unknown field"),
            (
                "[[mappings]]\nfunction = \"nope\"\nevent_source_arn = \"arn:aws:sqs:us-east-1:1:q\"",
                "not a function",
            ),
            (
                "[[mappings]]\nfunction = \"router\"\nevent_source_arn = \"arn:aws:sns:us-east-1:1:t\"",
                "event source",
            ),
            (
                "[[mappings]]\nfunction = \"router\"\nevent_source_arn = \"arn:aws:sqs:us-east-1:1:q\"\nbatch_size = 20",
                "maximum_batching_window_seconds",
            ),
            (
                "[[mappings]]\nfunction = \"router\"\nevent_source_arn = \"arn:aws:sqs:us-east-1:1:q\"\nmaximum_retry_attempts = 3",
                "streams only",
            ),
            (
                "[[mappings]]\nfunction = \"router\"\nevent_source_arn = \"arn:aws:kinesis:us-east-1:1:stream/s\"",
                "TRIM_HORIZON or LATEST",
            ),
            (
                "[[mappings]]\nfunction = \"backend\"\nevent_source_arn = \"arn:aws:sqs:us-east-1:1:q\"",
                "tenant-isolated",
            ),
            (
                "[[mappings]]\nfunction = \"router\"\nevent_source_arn = \"arn:aws:sqs:us-east-1:1:q.fifo\"\nbatch_size = 11",
                "not 1 to 10",
            ),
            (
                "[[mappings]]\nfunction = \"router\"\nevent_source_arn = \"arn:aws:sqs:us-east-1:1:q.fifo\"\nmaximum_batching_window_seconds = 1",
                "not supported for a FIFO queue",
            ),
            (
                "[[mappings]]\nfunction = \"router\"\nevent_source_arn = \"arn:aws:kinesis:us-east-1:1:stream/s\"\nstarting_position = \"LATEST\"\nmaximum_record_age_seconds = 5",
                "maximum_record_age_seconds",
            ),
        ] {
            let error = parse(&format!("{BASE}\n{extra}")).unwrap_err();
            assert!(error.contains(expected), "{extra}: {error}");
        }
        let unset = Config::parse(BASE, Path::new("/"), &|_| None).unwrap_err();
        assert!(unset.contains("PORT is not set"), "{unset}");
    }
}
