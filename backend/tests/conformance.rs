//! Conformance with AWS's own Runtime Interface Emulator (RIE, from the aws-sam-cli wheel on PyPI;
//! `scripts/fetch-rie.sh` puts it in `target/rie/`). The backend runs unchanged under it, and the
//! stand-in's Runtime API answers the same requests the same way: the same function, given the
//! same invocation under both, sees the same headers and variables and answers the same.
//!
//! Without the emulator the tests say so and stop, except under CI (`CI` set), where its absence
//! is a failure.

use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_lambda::primitives::Blob;
use local::service::{FunctionSpec, Service};
use serde_json::{Value, json};
use testkit::{Rie, emulator, lambda_client, script};

/// Invokes synchronously and returns the answer body as JSON.
async fn invoke(
    client: &aws_sdk_lambda::Client,
    function: &str,
    tenant: Option<&str>,
    payload: &str,
) -> Value {
    let mut request = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload.as_bytes().to_vec()));
    if let Some(tenant) = tenant {
        request = request.tenant_id(tenant);
    }
    let output = request.send().await.expect("an answer");
    serde_json::from_slice(output.payload().expect("a body").as_ref()).expect("JSON")
}

async fn stand_in(functions: Vec<FunctionSpec>) -> (Arc<Service>, aws_sdk_lambda::Client) {
    let mut settings = local::replay::settings_for(PathBuf::from(env!("CARGO_BIN_EXE_backend")));
    settings.functions = functions;
    let service = Service::new(settings).unwrap();
    let (address, _) = local::api::serve(service.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (service, lambda_client(&format!("http://{address}")))
}

fn tenant_config_dir() -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tenants")
        .display()
        .to_string()
}

fn envelope(tenant: &str, id: &str) -> String {
    testkit::envelope(tenant, id, json!({"item": {"title": "Ship it", "id": 1}})).to_string()
}

/// The environment's log stream differs by design (the emulator names it `$LATEST`).
fn without_environment(mut answer: Value) -> Value {
    if let Some(result) = answer.get_mut("result").and_then(Value::as_object_mut) {
        result.remove("environment");
    }
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backend_answers_the_same_under_the_emulator_and_the_stand_in() {
    let Some(emulator) = emulator() else { return };
    let backend = PathBuf::from(env!("CARGO_BIN_EXE_backend"));
    let rie = Rie::start(
        &emulator,
        &backend,
        &[("BACKEND_TENANT_CONFIG_DIR", tenant_config_dir())],
    );
    let rie_client = lambda_client(&rie.endpoint());
    // The stand-in serves the same executable twice: tenant-isolated, and (to send an invocation
    // without a tenant, which its Invoke API refuses for isolated functions) not isolated.
    let (service, stand_in) = stand_in(vec![
        FunctionSpec {
            per_tenant: true,
            ..FunctionSpec::new("backend", backend.clone())
        },
        FunctionSpec::new("plain", backend),
    ])
    .await;

    let cases: [(Option<&str>, String, &str); 4] = [
        (Some("acme"), envelope("acme", "m1"), "processed"),
        (Some("acme"), envelope("acme", "m1"), "duplicate"),
        (Some("acme"), envelope("globex", "m2"), "Tenant.Mismatch"),
        (None, envelope("acme", "m3"), "Tenant.Missing"),
    ];
    for (tenant, payload, expected) in &cases {
        let function = if tenant.is_some() { "backend" } else { "plain" };
        let under_rie =
            without_environment(invoke(&rie_client, "function", *tenant, payload).await);
        let under_stand_in =
            without_environment(invoke(&stand_in, function, *tenant, payload).await);
        assert_eq!(under_rie, under_stand_in, "{expected}");
        match *expected {
            "processed" => {
                assert_eq!(under_rie["status"], "processed");
                assert_eq!(under_rie["result"]["item"]["title"], "[ACME] Ship it");
            }
            "duplicate" => assert_eq!(under_rie["duplicate"], true),
            error_type => assert_eq!(under_rie["errorType"], error_type, "{under_rie}"),
        }
    }
    service.pool().stop_all();
}

/// A function written as a shell script that reports what the Runtime API and the process
/// environment gave it.
fn probe() -> PathBuf {
    script(
        "probe.sh",
        r#"api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
body=$(mktemp)
while true; do
  # Once the Runtime API is gone (the emulator or the stand-in stopped), so is the function: a
  # probe that kept polling would outlive the test.
  headers=$(curl -sS -f -D - -o "$body" "$api/next") || exit 0
  headers=$(echo "$headers" | tr -d '\r')
  value() { echo "$headers" | awk -F': ' -v h="$1" 'tolower($1)==h {print $2}'; }
  id=$(value lambda-runtime-aws-request-id)
  present() { if [ -n "$1" ]; then echo true; else echo false; fi; }
  vars=""
  for v in AWS_LAMBDA_FUNCTION_NAME AWS_LAMBDA_FUNCTION_VERSION AWS_LAMBDA_FUNCTION_MEMORY_SIZE \
           AWS_LAMBDA_LOG_GROUP_NAME AWS_LAMBDA_LOG_STREAM_NAME AWS_LAMBDA_RUNTIME_API; do
    eval "val=\${$v}"
    vars="$vars\"$v\":$(present "$val"),"
  done
  printf '{"tenant":"%s","requestId":%s,"deadline":%s,"functionArn":%s,"contentType":"%s",%s"payload":%s}' \
    "$(value lambda-runtime-aws-tenant-id)" "$(present "$id")" \
    "$(present "$(value lambda-runtime-deadline-ms)")" \
    "$(present "$(value lambda-runtime-invoked-function-arn)")" \
    "$(value content-type)" "$vars" "$(cat "$body")" > "$body.out"
  curl -sS -X POST --data-binary @"$body.out" "$api/$id/response" > /dev/null
done"#,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_runtime_api_gives_a_function_what_the_emulator_gives_it() {
    let Some(emulator) = emulator() else { return };
    let probe = probe();
    let rie = Rie::start(&emulator, &probe, &[]);
    let (service, stand_in) = stand_in(vec![FunctionSpec {
        per_tenant: true,
        ..FunctionSpec::new("probe", probe)
    }])
    .await;
    let payload = r#"{"hello":"tenant"}"#;
    let under_rie = invoke(
        &lambda_client(&rie.endpoint()),
        "function",
        Some("acme"),
        payload,
    )
    .await;
    let under_stand_in = invoke(&stand_in, "probe", Some("acme"), payload).await;
    assert_eq!(under_rie, under_stand_in);
    assert_eq!(under_rie["tenant"], "acme");
    assert_eq!(under_rie["requestId"], true);
    assert_eq!(under_rie["deadline"], true);
    assert_eq!(under_rie["payload"], json!({"hello": "tenant"}));
    for variable in [
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_RUNTIME_API",
    ] {
        assert_eq!(
            under_stand_in[variable], true,
            "{variable}: {under_stand_in}"
        );
    }
    eprintln!("probe under the emulator: {under_rie}");
    service.pool().stop_all();
}
