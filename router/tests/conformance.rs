//! The router's bootstrap runs unchanged under AWS's Runtime Interface Emulator (fetched by
//! `scripts/fetch-rie.sh` into `target/rie/`): a recorded SQS event sent to it comes back as the
//! same batch response `router replay` prints, with the same Invokes made.
//!
//! Without the emulator the test says so and stops, except under CI (`CI` set).

use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_lambda::primitives::Blob;
use testkit::{Rie, emulator, lambda_client};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

fn settings(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL_LAMBDA", endpoint.to_owned()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("ROUTER_BACKEND_FUNCTION", "backend".into()),
        (
            "ROUTER_JWKS",
            format!("file://{}", fixtures().join("jwks.json").display()),
        ),
        (
            "ROUTER_JWT_ISSUER",
            "https://issuer.tenant-router.test".into(),
        ),
        ("ROUTER_JWT_AUDIENCE", "tenant-router".into()),
    ]
}

async fn sink() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2015-03-31/functions/backend/invocations$"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    server
}

fn invoked(requests: Vec<wiremock::Request>) -> Vec<(String, String)> {
    let mut invoked: Vec<(String, String)> = requests
        .into_iter()
        .map(|r| {
            let envelope: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            (
                r.headers["x-amz-tenant-id"].to_str().unwrap().to_owned(),
                envelope["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    invoked.sort();
    invoked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_runs_unchanged_under_the_emulator() {
    let Some(emulator) = emulator() else { return };
    for fixture in [
        "sqs/mixed-tenants.json",
        "sqs/fifo-groups.json",
        "kinesis/mid-batch-failure.json",
    ] {
        let event = std::fs::read_to_string(fixtures().join(fixture)).unwrap();

        // Under the emulator.
        let under_rie = sink().await;
        let rie = Rie::start(
            &emulator,
            Path::new(env!("CARGO_BIN_EXE_router")),
            &settings(&under_rie.uri()),
        );
        let client = lambda_client(&rie.endpoint());
        let output = client
            .invoke()
            .function_name("function")
            .payload(Blob::new(event.clone().into_bytes()))
            .send()
            .await
            .unwrap();
        assert_eq!(output.function_error(), None, "{fixture}");
        let response: serde_json::Value =
            serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();

        // With `router replay`.
        let under_replay = sink().await;
        let replayed = tokio::task::spawn_blocking({
            let endpoint = under_replay.uri();
            let path = fixtures().join(fixture);
            move || {
                Command::new(env!("CARGO_BIN_EXE_router"))
                    .env_clear()
                    .envs(settings(&endpoint))
                    .arg("replay")
                    .arg(path)
                    .output()
                    .unwrap()
            }
        })
        .await
        .unwrap();
        assert!(replayed.status.success());
        let replayed: serde_json::Value = serde_json::from_slice(&replayed.stdout).unwrap();

        assert_eq!(response, replayed, "{fixture}");
        assert_eq!(
            invoked(under_rie.received_requests().await.unwrap()),
            invoked(under_replay.received_requests().await.unwrap()),
            "{fixture}"
        );
    }
}
