//! The `router` binary end to end: `router replay` against a local Invoke API, exit codes, and
//! configuration errors that name the variable.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

/// The binary with a clean AWS environment pointed at `endpoint` and the fixture settings.
fn router(endpoint: &str) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_router"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL_LAMBDA", endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("ROUTER_BACKEND_FUNCTION", "backend")
        .env(
            "ROUTER_JWKS",
            format!("file://{}", fixtures().join("jwks.json").display()),
        )
        .env("ROUTER_JWT_ISSUER", "https://issuer.tenant-router.test")
        .env("ROUTER_JWT_AUDIENCE", "tenant-router");
    command
}

async fn server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2015-03-31/functions/backend/invocations$"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    server
}

async fn run(mut command: Command, stdin: Option<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("the router binary runs");
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            input.write_all(text.as_bytes()).unwrap();
        }
        drop(input);
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_prints_one_exact_response_line_per_file() {
    let server = server().await;
    let mut command = router(&server.uri());
    command
        .arg("replay")
        .arg(fixtures().join("sqs/mixed-tenants.json"))
        .arg(fixtures().join("sqs/fifo-groups.json"));
    let output = run(command, None).await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        stdout,
        "{\"batchItemFailures\":[]}\n\
         {\"batchItemFailures\":[{\"itemIdentifier\":\"fifo-3\"},{\"itemIdentifier\":\"fifo-5\"}]}\n"
    );
    // Logs go to stderr, as JSON lines when not a terminal, and never carry a token.
    assert!(
        stderr.lines().any(|l| l.contains("\"batch routed\"")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("eyJ"),
        "a token fragment was logged: {stderr}"
    );
    assert_eq!(server.received_requests().await.unwrap().len(), 6 + 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_recognises_every_source_from_the_event_itself() {
    let server = server().await;
    let mut command = router(&server.uri());
    command
        .args(["replay", "--at", "2026-01-01T00:00:01Z"])
        .arg(fixtures().join("kinesis/mixed-tenants.json"))
        .arg(fixtures().join("dynamodb/mid-batch-failure.json"))
        .arg(fixtures().join("eventbridge/acme.json"))
        .arg(fixtures().join("sqs/mixed-tenants.json"));
    let output = run(command, None).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "{\"batchItemFailures\":[]}\n\
         {\"batchItemFailures\":[{\"itemIdentifier\":\"1405400000000002063200062\"}]}\n\
         {\"outcome\":\"invoked\",\"reason\":null}\n\
         {\"batchItemFailures\":[]}\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn replay_reads_standard_input() {
    let server = server().await;
    let mut command = router(&server.uri());
    command.args(["replay", "-"]);
    let event = std::fs::read_to_string(fixtures().join("sqs/wrong-aud.json")).unwrap();
    let output = run(command, Some(event)).await;
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"aud-1\"}]}\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_an_esm_event_fails_with_its_name() {
    let server = server().await;
    let dir = std::env::temp_dir().join(format!("router-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("not-an-event.json");
    std::fs::write(&bad, r#"{"hello": "world"}"#).unwrap();
    let mut command = router(&server.uri());
    command
        .arg("replay")
        .arg(&bad)
        .arg(fixtures().join("sqs/wrong-iss.json"));
    let output = run(command, None).await;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("not-an-event.json") && stderr.contains("Records"),
        "{stderr}"
    );
    // The good file was still processed.
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "{\"batchItemFailures\":[{\"itemIdentifier\":\"iss-1\"}]}\n"
    );
    std::fs::remove_dir_all(dir).ok();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_configuration_stops_the_binary_naming_the_variable() {
    for (variable, value) in [
        ("ROUTER_BACKEND_FUNCTION", ""),
        ("ROUTER_MAX_IN_FLIGHT", "lots"),
        ("ROUTER_JWKS", "file:///nonexistent/jwks.json"),
    ] {
        let mut command = router("http://127.0.0.1:9");
        command.env(variable, value).args(["replay", "-"]);
        let output = run(command, Some(String::new())).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{variable}: {stderr}");
        assert!(stderr.contains(variable), "{variable}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_command_outside_lambda_it_explains_itself() {
    let output = run(router("http://127.0.0.1:9"), None).await;
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("router replay"));
}
