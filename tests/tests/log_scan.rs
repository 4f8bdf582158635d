//! No log line, at any level, carries a token or a payload body: every recorded fixture (token
//! failures included) goes through the router, with faults so that retry paths log too, while all
//! log output is captured at TRACE and scanned. A test binary of its own, because a scoped log
//! subscriber only sees reliably what runs on its thread with no other tests around.

use cross_crate_tests::info;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};

use shared::telemetry::{PowertoolsJson, filter_for};
use tracing_subscriber::Layer;
use tracing_subscriber::fmt::format::JsonFields;
use tracing_subscriber::layer::SubscriberExt;

#[path = "util.rs"]
#[allow(dead_code)]
mod util;

use util::*;

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

#[tokio::test]
async fn no_log_line_at_any_level_carries_a_token_or_a_payload() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry().with(
        tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(PowertoolsJson::new("router"))
            .with_filter(filter_for("trace")),
    );
    let _default = tracing::subscriber::set_default(subscriber);

    // Faults too, so that retry and failure paths log.
    let server = bare_server().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(lambda_error(429, "TooManyRequestsException"))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&server)
        .await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(202))
        .with_priority(2)
        .mount(&server)
        .await;
    let router = router(&server, &[]);
    let mut tokens = Vec::new();
    for file in all_fixtures() {
        let text = std::fs::read_to_string(&file).unwrap();
        collect_tokens(&serde_json::from_str(&text).unwrap(), &mut tokens);
        let _ = router.route_event(&text, &info()).await;
    }
    drop(_default);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.lines().count() > 100,
        "logs were captured: {}",
        logs.lines().count()
    );
    assert!(tokens.len() > 50, "tokens were found in the fixtures");
    assert!(!logs.contains("eyJ"), "a JWT fragment was logged");
    for token in &tokens {
        for part in token.split('.').filter(|p| p.len() >= 16) {
            assert!(!logs.contains(part), "a token part was logged");
        }
    }
    // Payload bodies are not logged either (the fixture items' titles).
    assert!(!logs.contains("to-do "), "a payload was logged");
    // Every line is JSON with the Powertools keys.
    for line in logs.lines() {
        let line: Value = serde_json::from_str(line).unwrap();
        for key in ["level", "timestamp", "message", "service"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let routed = logs
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|l| l["message"] == "record routed")
        .unwrap();
    for key in [
        "tenant_id",
        "source",
        "record_id",
        "outcome",
        "correlation_id",
    ] {
        assert!(routed.get(key).is_some(), "{key} missing: {routed}");
    }
}

/// Every string in a JSON value (and in JSON embedded in strings, and base64 Kinesis data) that
/// looks like a JWT.
fn collect_tokens(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => {
            if s.starts_with("eyJ") && s.matches('.').count() == 2 {
                out.push(s.clone());
            } else if let Ok(inner) = serde_json::from_str::<Value>(s) {
                collect_tokens(&inner, out);
            } else {
                use base64::Engine;
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s)
                    && let Ok(inner) = serde_json::from_slice::<Value>(&bytes)
                {
                    collect_tokens(&inner, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_tokens(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_tokens(v, out)),
        _ => {}
    }
}
