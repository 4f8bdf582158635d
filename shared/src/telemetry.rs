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

/// Crates that may print request or response bodies (and so tokens, payloads, session
/// credentials or secret values) at DEBUG or TRACE: they are never logged below INFO, whatever
/// level is asked for.
const QUIET_BELOW_INFO: &[&str] = &[
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_lambda",
    "aws_sdk_sqs",
    "aws_sdk_dynamodb",
    "aws_sdk_sts",
    "aws_sdk_ssm",
    "aws_sdk_secretsmanager",
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

/// Installs the global subscriber, writing each line to stderr as it is logged. Safe to call more
/// than once (later calls do nothing).
pub fn init(service: &'static str) {
    install(service, false);
}

/// Like [`init`], but INFO and lower lines are gathered and written together ([`BufferedStderr`]):
/// for functions that log a line per record. The caller must call [`flush`] at the end of every
/// invocation, before its response goes out.
pub fn init_buffered(service: &'static str) {
    install(service, true);
}

fn install(service: &'static str, buffered: bool) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"))
        || !std::io::stderr().is_terminal();
    let filter = filter_for(&requested_level());
    let writer = BufferedStderr { buffered };
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(writer)
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

/// Lines gathered by [`BufferedStderr`], not yet written.
static PENDING: std::sync::Mutex<LineBuffer> = std::sync::Mutex::new(LineBuffer::new());

/// Buffered lines are written once they reach this size.
const FLUSH_AT: usize = 32 * 1024;

/// Writes the gathered log lines to stderr. The router and the backend call it at the end of every
/// invocation, so that an invocation's lines are out before its response.
pub fn flush() {
    let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let _ = pending.write_out(&mut std::io::stderr().lock());
}

/// The log writer [`init`] and [`init_buffered`] install. Buffered, a line per record costs a
/// system call per 32 KiB instead of one per line (about 5 µs of the router's CPU per record,
/// BENCHMARKS.md); a WARN or ERROR line is written at once, after every line before it, so what
/// explains a failure is never held back.
#[derive(Debug, Clone, Copy)]
pub struct BufferedStderr {
    buffered: bool,
}

/// One event's writer from [`BufferedStderr`].
#[derive(Debug)]
pub struct LineWriter {
    urgent: bool,
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BufferedStderr {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { urgent: true }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter {
            urgent: !self.buffered || *meta.level() <= tracing::Level::WARN,
        }
    }
}

impl std::io::Write for LineWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        pending.push(line, self.urgent, &mut std::io::stderr().lock())?;
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Lines waiting to be written, in order.
#[derive(Debug)]
struct LineBuffer {
    bytes: Vec<u8>,
}

impl LineBuffer {
    const fn new() -> Self {
        Self { bytes: Vec::new() }
    }

    /// Adds a line; writes everything gathered to `out` if the line is urgent or the buffer full.
    fn push(
        &mut self,
        line: &[u8],
        urgent: bool,
        out: &mut impl std::io::Write,
    ) -> std::io::Result<()> {
        self.bytes.extend_from_slice(line);
        if urgent || self.bytes.len() >= FLUSH_AT {
            self.write_out(out)?;
        }
        Ok(())
    }

    /// Writes everything gathered to `out`.
    fn write_out(&mut self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let written = out.write_all(&self.bytes).and_then(|()| out.flush());
        self.bytes.clear();
        written
    }
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
                // Parsed once per span (an invocation span covers every record of a batch) and
                // kept beside the formatted text; parsed again only if fields were recorded since.
                let text_len = match span.extensions().get::<FormattedFields<N>>() {
                    Some(text) => text.len(),
                    None => continue,
                };
                let cached = span
                    .extensions()
                    .get::<ParsedFields>()
                    .is_some_and(|parsed| parsed.text_len == text_len);
                if !cached {
                    let parsed = {
                        let extensions = span.extensions();
                        let text = extensions
                            .get::<FormattedFields<N>>()
                            .map(|f| f.as_str())
                            .unwrap_or("{}");
                        // Span fields are written by `JsonFields`: an object (or nothing).
                        serde_json::from_str::<BTreeMap<String, Box<RawValue>>>(text)
                            .map(|map| map.into_iter().collect())
                            .unwrap_or_default()
                    };
                    span.extensions_mut().replace(ParsedFields {
                        text_len,
                        fields: parsed,
                    });
                }
                let extensions = span.extensions();
                let Some(parsed) = extensions.get::<ParsedFields>() else {
                    continue;
                };
                for (key, value) in &parsed.fields {
                    if !written.contains(&key.as_str())
                        && !span_fields.iter().any(|(k, _)| k == key)
                    {
                        span_fields.push((key.clone(), value.clone()));
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

/// A span's fields as parsed from their JSON text, and the length of that text when parsed.
struct ParsedFields {
    text_len: usize,
    fields: Vec<(String, Box<RawValue>)>,
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

    #[test]
    fn buffered_lines_wait_for_a_flush_an_urgent_line_or_a_full_buffer() {
        let mut buffer = LineBuffer::new();
        let mut out = Vec::new();
        buffer.push(b"info 1\n", false, &mut out).unwrap();
        buffer.push(b"info 2\n", false, &mut out).unwrap();
        assert!(out.is_empty(), "INFO lines are held");
        // A WARN line goes out at once, after the lines before it.
        buffer.push(b"warn\n", true, &mut out).unwrap();
        assert_eq!(out, b"info 1\ninfo 2\nwarn\n");
        buffer.push(b"info 3\n", false, &mut out).unwrap();
        buffer.write_out(&mut out).unwrap();
        assert_eq!(out, b"info 1\ninfo 2\nwarn\ninfo 3\n");
        // A full buffer is written without waiting.
        let mut out = Vec::new();
        let line = vec![b'x'; 1000];
        for _ in 0..(FLUSH_AT / 1000 + 1) {
            buffer.push(&line, false, &mut out).unwrap();
        }
        assert!(out.len() >= FLUSH_AT);
    }
}
