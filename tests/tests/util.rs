//! Helpers: a router wired to a local server, fixture loading and request inspection.

use std::collections::HashMap;
use std::time::Duration;

use cross_crate_tests::{fixtures_dir, router_env};
use router::InvocationInfo;
use router::{AwsBackend, Config, Router};
use serde_json::Value;
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Path of the Invoke API.
pub const INVOKE_PATH: &str = r"^/2015-03-31/functions/[^/]+/invocations$";

/// A recorded Invoke request.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Function name from the path.
    pub function: String,
    /// `X-Amz-Invocation-Type`.
    pub invocation_type: Option<String>,
    /// `X-Amz-Tenant-Id`.
    pub tenant: Option<String>,
    /// The payload.
    pub envelope: Value,
}

/// A server answering every Invoke with 202.
pub async fn lambda_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    server
}

/// Answers the first Invoke with `first` and every later one with 202.
pub async fn answer_once_then_accept(server: &MockServer, first: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(first)
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    accept_the_rest(server).await;
}

/// Answers every Invoke for `tenant` with `answer` (mount the fallback with [`accept_the_rest`]).
pub async fn answer_tenant(server: &MockServer, tenant: &str, answer: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .and(wiremock::matchers::header("x-amz-tenant-id", tenant))
        .respond_with(answer)
        .with_priority(1)
        .mount(server)
        .await;
}

/// Answers every Invoke not matched by a more specific mock with 202.
pub async fn accept_the_rest(server: &MockServer) {
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(ResponseTemplate::new(202))
        .with_priority(2)
        .mount(server)
        .await;
}

/// Makes `server` accept SQS `SendMessage` (the quarantine queue) and returns a queue URL on it.
pub async fn mount_quarantine(server: &MockServer) -> String {
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSQS.SendMessage"))
        .respond_with(ResponseTemplate::new(200).set_body_string(r#"{"MessageId":"q"}"#))
        .mount(server)
        .await;
    format!("{}/123456789012/quarantine", server.uri())
}

/// The quarantine messages `server` received, in arrival order.
pub async fn quarantined(server: &MockServer) -> Vec<Value> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| {
            r.headers
                .get("x-amz-target")
                .is_some_and(|t| t == "AmazonSQS.SendMessage")
        })
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON request"))
        .collect()
}

/// A server with no default answer (tests mount their own).
pub async fn bare_server() -> MockServer {
    MockServer::start().await
}

/// The Lambda error answer for `status` with AWS's error shape.
pub fn lambda_error(status: u16, error_type: &str) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .insert_header("x-amzn-ErrorType", error_type)
        .insert_header("content-type", "application/json")
        .set_body_string(format!(
            r#"{{"Type":"User","message":"injected {error_type}"}}"#
        ))
}

/// Router settings: the fixture defaults, fast retries, plus `overrides`.
pub fn config(overrides: &[(&str, &str)]) -> Config {
    let mut env = router_env();
    env.insert("ROUTER_RETRY_BASE_DELAY_MS".into(), "5".into());
    env.insert("ROUTER_RETRY_MAX_DELAY_MS".into(), "20".into());
    env.insert("ROUTER_DEADLINE_MARGIN_MS".into(), "100".into());
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(|name| env.get(name).cloned()).expect("valid test configuration")
}

/// A router whose SDK clients talk to `server` (Lambda, SQS and S3 alike).
pub fn router(server: &MockServer, overrides: &[(&str, &str)]) -> Router<AwsBackend> {
    router_at(&server.uri(), &server.uri(), overrides)
}

/// A router whose Lambda client talks to `lambda` and whose SQS and S3 clients to `quarantine`.
pub fn router_at(lambda: &str, quarantine: &str, overrides: &[(&str, &str)]) -> Router<AwsBackend> {
    let config = config(overrides);
    let lambda = testkit::lambda_client(lambda);
    let quarantine = config
        .quarantine_queue_url
        .clone()
        .map(|queue_url| router::Quarantine {
            sqs: testkit::sqs_client(quarantine),
            queue_url,
            max_message_bytes: config
                .quarantine_max_message_bytes
                .unwrap_or(router::backend::SQS_MESSAGE_LIMIT),
            bucket: config.quarantine_bucket.as_deref().map(|bucket| {
                let credentials = aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new("test", "test", None, None, "tests"),
                );
                router::QuarantineBucket::new(quarantine, true, bucket, "us-east-1", credentials)
                    .expect("a bucket")
            }),
        });
    let backend = AwsBackend::new(lambda, config.backend_function.clone(), quarantine);
    Router::new(config, backend).expect("the router starts")
}

/// A recorded upstream event in `tests/fixtures/upstream/` (its README says where each came from).
pub fn upstream(name: &str) -> std::path::PathBuf {
    fixtures_dir().join("upstream").join(name)
}

/// Reads `tests/fixtures/<name>`.
pub fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixtures_dir().join(name)).expect("fixture exists")
}

/// Handles `event` with a generous deadline and returns the response.
pub async fn handle(router: &Router<AwsBackend>, event: &str) -> Value {
    handle_within(router, event, Duration::from_secs(30)).await
}

/// Handles `event` with `budget` until the deadline.
pub async fn handle_within(router: &Router<AwsBackend>, event: &str, budget: Duration) -> Value {
    let info = InvocationInfo::with_budget(budget, router.config().deadline_margin);
    router.handle(event, &info).await.expect("a batch response")
}

/// The reported identifiers of a batch response, in order.
pub fn reported(response: &Value) -> Vec<String> {
    response["batchItemFailures"]
        .as_array()
        .expect("batchItemFailures")
        .iter()
        .map(|f| f["itemIdentifier"].as_str().expect("id").to_owned())
        .collect()
}

/// Every Invoke the server received, in arrival order.
pub async fn invocations(server: &MockServer) -> Vec<Invocation> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.url.path().ends_with("/invocations"))
        .map(|r| {
            let header = |name: &str| {
                r.headers
                    .get(name)
                    .map(|v| v.to_str().expect("ascii header").to_owned())
            };
            Invocation {
                function: r
                    .url
                    .path()
                    .split('/')
                    .nth(3)
                    .unwrap_or_default()
                    .to_owned(),
                invocation_type: header("x-amz-invocation-type"),
                tenant: header("x-amz-tenant-id"),
                envelope: serde_json::from_slice(&r.body).unwrap_or(Value::Null),
            }
        })
        .collect()
}

/// Invokes per tenant.
pub fn per_tenant(invocations: &[Invocation]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for i in invocations {
        *counts
            .entry(i.tenant.clone().unwrap_or_default())
            .or_default() += 1;
    }
    counts
}

/// Every fixture file of every source, token failure files included.
pub fn all_fixtures() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![fixtures_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json") && !path.ends_with("jwks.json")
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
