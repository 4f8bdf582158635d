//! Logging set-up shared by the router and the backend: JSON lines in the shape of Powertools for
//! AWS Lambda (`level`, `timestamp`, `message`, `service`, then the fields of the enclosing spans —
//! `function_request_id`, `xray_trace_id`, `cold_start`, `correlation_id`, `tenant_id` … — and of
//! the event itself, all at the top level), or readable text when stderr is a terminal and
//! `AWS_LAMBDA_LOG_FORMAT` is not `JSON`. The level comes from `AWS_LAMBDA_LOG_LEVEL` or
//! `RUST_LOG`, `info` by default; crates that may print request bodies are capped at INFO.

use std::fmt;
use std::io::IsTerminal;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
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

/// The filter for a requested level or directive string, with the quiet crates capped at INFO.
pub fn filter_for(requested: &str) -> EnvFilter {
    let mut directives = requested.to_owned();
    for target in QUIET_BELOW_INFO {
        directives.push_str(&format!(",{target}=info"));
    }
    EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// The level asked for by the environment.
fn requested_level() -> String {
    std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .ok()
        .map(|l| l.to_lowercase())
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into())
}

/// Installs the global subscriber, writing to stderr. Safe to call more than once (later calls do
/// nothing).
pub fn init(service: &'static str) {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
        || !std::io::stderr().is_terminal();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter_for(&requested_level()))
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(PowertoolsJson::new(service))
            .try_init()
    } else {
        builder.try_init()
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
        let mut line = Map::new();
        line.insert(
            "level".into(),
            Value::String(event.metadata().level().to_string()),
        );
        line.insert(
            "timestamp".into(),
            Value::String(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
        );
        line.insert("message".into(), Value::String(String::new()));
        line.insert("service".into(), Value::String(self.service.into()));
        // Span fields, outermost first, so inner spans win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && let Ok(Value::Object(map)) = serde_json::from_str::<Value>(fields)
                {
                    line.extend(map);
                }
            }
        }
        event.record(&mut JsonVisitor(&mut line));
        let text = serde_json::to_string(&line).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
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
