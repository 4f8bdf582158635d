//! Logging set-up shared by the router and the backend: JSON lines in the shape of Powertools for
//! AWS Lambda (`level`, `timestamp`, `message`, `service`, then the fields of the enclosing spans —
//! `function_request_id`, `xray_trace_id`, `cold_start`, `correlation_id`, `tenant_id` … — and of
//! the event itself, all at the top level), or readable text when stderr is a terminal and
//! `AWS_LAMBDA_LOG_FORMAT` is not `JSON`. The level comes from `AWS_LAMBDA_LOG_LEVEL` or
//! `RUST_LOG`, `info` by default; crates that may print request bodies are capped at INFO.

use std::collections::BTreeMap;
use std::fmt;
use std::io::IsTerminal;

use serde_json::Value;
use serde_json::value::RawValue;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

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

/// The filter for a requested level or `target=level` directive list (`RUST_LOG` syntax without
/// span or field filters), with the quiet crates capped at INFO. An unreadable request means
/// `info`.
///
/// [`Targets`] rather than `EnvFilter`: it needs no regular-expression engine (a smaller
/// bootstrap) and matches targets by prefix only, which is all these levels need.
pub fn filter_for(requested: &str) -> Targets {
    let readable = requested
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "_:=,".contains(c));
    let parsed: Targets = readable
        .then(|| requested.parse().ok())
        .flatten()
        .unwrap_or_else(|| Targets::new().with_default(LevelFilter::INFO));
    let default = parsed.default_level().unwrap_or(LevelFilter::OFF);
    let quiet = |target: &str| {
        QUIET_BELOW_INFO
            .iter()
            .any(|q| target == *q || target.starts_with(&format!("{q}::")))
    };
    let mut filter = Targets::new().with_default(default);
    for (target, level) in parsed.iter() {
        let level = if quiet(target) {
            level.min(LevelFilter::INFO)
        } else {
            level
        };
        filter = filter.with_target(target, level);
    }
    for q in QUIET_BELOW_INFO {
        // The level a quiet crate would get from the request, capped.
        let requested = parsed
            .iter()
            .filter(|(target, _)| q.starts_with(target) || *target == *q)
            .max_by_key(|(target, _)| target.len())
            .map_or(default, |(_, level)| level);
        if !parsed.iter().any(|(target, _)| target == *q) {
            filter = filter.with_target(*q, requested.min(LevelFilter::INFO));
        }
    }
    filter
}

/// The level asked for by the environment.
fn requested_level() -> String {
    // Lambda's advanced logging controls name FATAL, which tracing calls ERROR.
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_lowercase().replace("fatal", "error"))
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into())
}

/// Installs the global subscriber, writing to stderr. Safe to call more than once (later calls do
/// nothing).
pub fn init(service: &'static str) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
        || !std::io::stderr().is_terminal();
    let filter = filter_for(&requested_level());
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let registry = tracing_subscriber::registry();
    let _ = if json {
        registry
            .with(
                layer
                    .fmt_fields(JsonFields::new())
                    .event_format(PowertoolsJson::new(service))
                    .with_filter(filter),
            )
            .try_init()
    } else {
        registry.with(layer.with_filter(filter)).try_init()
    };
}

/// Formats each event as one Powertools-style JSON object.
#[derive(Debug, Clone)]
pub struct PowertoolsJson {
    service: &'static str,
}

impl PowertoolsJson {
    /// A formatter that stamps every line with `service`.
    pub fn new(service: &'static str) -> Self {
        Self { service }
    }
}

impl<S, N> FormatEvent<S, N> for PowertoolsJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        // Written straight into one line, without building a JSON tree: this runs once per
        // record. Keys appear once; the event's fields win over its spans', inner spans' over
        // outer ones'.
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let mut line = String::with_capacity(256);
        line.push_str("{\"level\":\"");
        line.push_str(event.metadata().level().as_str());
        line.push_str("\",\"timestamp\":\"");
        line.push_str(&chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        line.push_str("\",\"message\":");
        push_json_str(&mut line, fields.message.as_deref().unwrap_or(""));
        line.push_str(",\"service\":");
        push_json_str(&mut line, self.service);
        let mut written: Vec<&str> = fields.values.iter().map(|(name, _)| *name).collect();
        written.extend(["level", "timestamp", "message", "service"]);
        if let Some(scope) = ctx.event_scope() {
            // Innermost first, so that an inner span's key is written and the outer one skipped.
            let spans: Vec<_> = scope.collect();
            let mut span_fields: Vec<(String, Box<RawValue>)> = Vec::new();
            for span in &spans {
                let extensions = span.extensions();
                let Some(text) = extensions.get::<FormattedFields<N>>() else {
                    continue;
                };
                // Span fields are written by `JsonFields`: an object (or nothing).
                let Ok(parsed) = serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(text)
                else {
                    continue;
                };
                for (key, value) in parsed {
                    if !written.contains(&key.as_str())
                        && !span_fields.iter().any(|(k, _)| *k == key)
                    {
                        span_fields.push((key, value));
                    }
                }
            }
            for (key, value) in &span_fields {
                line.push(',');
                push_json_str(&mut line, key);
                line.push(':');
                line.push_str(value.get());
            }
        }
        for (name, value) in &fields.values {
            line.push(',');
            push_json_str(&mut line, name);
            line.push(':');
            line.push_str(value);
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

fn push_json_str(line: &mut String, value: &str) {
    // Serialising a string into a string cannot fail.
    line.push_str(&serde_json::to_string(value).expect("a string serialises"));
}

/// An event's fields: its message, and the others as JSON text.
#[derive(Default)]
struct EventFields {
    message: Option<String>,
    values: Vec<(&'static str, String)>,
}

impl EventFields {
    fn put(&mut self, field: &Field, json: String) {
        self.values.retain(|(name, _)| *name != field.name());
        self.values.push((field.name(), json));
    }
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            let mut json = String::with_capacity(value.len() + 2);
            push_json_str(&mut json, value);
            self.put(field, json);
        }
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.to_string());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.to_string());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.to_string());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value).to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = Some(text);
        } else {
            let mut json = String::with_capacity(text.len() + 2);
            push_json_str(&mut json, &text);
            self.put(field, json);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_carry_powertools_keys_and_span_fields_at_the_top_level() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(PowertoolsJson::new("router"))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let invocation = tracing::info_span!(
                "invocation",
                function_request_id = "req-1",
                xray_trace_id = "Root=1-abc",
                cold_start = true
            );
            let _entered = invocation.enter();
            let record = tracing::info_span!("record", correlation_id = "corr-9");
            let _record = record.enter();
            tracing::info!(
                message = "record routed",
                tenant_id = "acme",
                attempts = 2u64
            );
        });
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "record routed");
        assert_eq!(line["service"], "router");
        assert_eq!(line["function_request_id"], "req-1");
        assert_eq!(line["xray_trace_id"], "Root=1-abc");
        assert_eq!(line["cold_start"], true);
        assert_eq!(line["correlation_id"], "corr-9");
        assert_eq!(line["tenant_id"], "acme");
        assert_eq!(line["attempts"], 2);
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn sdk_crates_never_log_below_info() {
        use tracing::Level;
        use tracing_subscriber::layer::SubscriberExt;

        for requested in [
            "trace",
            "debug",
            "aws_smithy_runtime=trace,trace",
            "aws_smithy_runtime::client=trace,debug",
            "not a directive list!",
        ] {
            let subscriber = tracing_subscriber::registry().with(filter_for(requested));
            tracing::subscriber::with_default(subscriber, || {
                assert!(!tracing::enabled!(target: "aws_smithy_runtime::client", Level::DEBUG));
                assert!(!tracing::enabled!(target: "hyper_util::client", Level::TRACE));
                assert!(
                    tracing::enabled!(target: "aws_smithy_runtime", Level::INFO),
                    "{requested}"
                );
                if !requested.starts_with("not") {
                    assert!(tracing::enabled!(target: "router::batch", Level::DEBUG));
                }
            });
        }
        let warn = tracing_subscriber::registry().with(filter_for("warn"));
        tracing::subscriber::with_default(warn, || {
            assert!(!tracing::enabled!(target: "aws_smithy_runtime", Level::INFO));
            assert!(!tracing::enabled!(target: "router", Level::INFO));
            assert!(tracing::enabled!(target: "router", Level::WARN));
        });
    }
}
