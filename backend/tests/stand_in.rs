//! The Lambda stand-in's own behaviour, with the real `backend` and small shell-script functions:
//! AWS's error shapes through aws-sdk-lambda, environment reuse and limits, crashes, timeouts,
//! idle stop, the environment output prefix, the 6 MB response limit, JSON payloads, function
//! ARNs and qualifiers, each environment's scratch directory and the trace header.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use local::service::{FunctionSpec, Service, Settings};
use serde_json::{Value, json};
use testkit::{lambda_client, runtime_function, scratch, script};

fn settings(extra: Vec<FunctionSpec>) -> Settings {
    let mut settings = local::replay::settings_for(PathBuf::from(env!("CARGO_BIN_EXE_backend")));
    settings.functions.push(FunctionSpec::new(
        "plain",
        PathBuf::from(env!("CARGO_BIN_EXE_backend")),
    ));
    settings.functions.extend(extra);
    settings.environment_output = Some(scratch("environments.log"));
    settings
}

async fn stand_in(settings: Settings) -> (Arc<Service>, aws_sdk_lambda::Client) {
    let service = Service::new(settings).unwrap();
    let (address, _) = local::api::serve(service.clone(), "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (service, lambda_client(&format!("http://{address}")))
}

fn envelope(tenant: &str, id: &str) -> Vec<u8> {
    testkit::envelope(tenant, id, json!({"item": {"title": "t"}}))
        .to_string()
        .into_bytes()
}

async fn sync_invoke(
    client: &aws_sdk_lambda::Client,
    function: &str,
    tenant: Option<&str>,
    payload: Vec<u8>,
) -> Result<aws_sdk_lambda::operation::invoke::InvokeOutput, InvokeError> {
    let mut request = client
        .invoke()
        .function_name(function)
        .payload(Blob::new(payload));
    if let Some(tenant) = tenant {
        request = request.tenant_id(tenant);
    }
    request.send().await.map_err(|e| e.into_service_error())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoke_errors_have_the_shapes_the_sdk_maps() {
    let (service, client) = stand_in(settings(Vec::new())).await;
    let no_tenant = sync_invoke(&client, "backend", None, envelope("acme", "1")).await;
    assert!(
        matches!(
            no_tenant,
            Err(InvokeError::InvalidParameterValueException(_))
        ),
        "{no_tenant:?}"
    );
    let tenant_on_plain = sync_invoke(&client, "plain", Some("acme"), envelope("acme", "1")).await;
    assert!(matches!(
        tenant_on_plain,
        Err(InvokeError::InvalidParameterValueException(_))
    ));
    let bad_pattern = sync_invoke(&client, "backend", Some("acme#1"), envelope("acme", "1")).await;
    assert!(matches!(
        bad_pattern,
        Err(InvokeError::InvalidParameterValueException(_))
    ));
    let missing = sync_invoke(&client, "nope", Some("acme"), envelope("acme", "1")).await;
    assert!(matches!(
        missing,
        Err(InvokeError::ResourceNotFoundException(_))
    ));
    let too_large = client
        .invoke()
        .function_name("backend")
        .invocation_type(InvocationType::Event)
        .tenant_id("acme")
        .payload(Blob::new(vec![b' '; 1024 * 1024 + 1]))
        .send()
        .await
        .map_err(|e| e.into_service_error());
    assert!(
        matches!(too_large, Err(InvokeError::RequestTooLargeException(_))),
        "{too_large:?}"
    );
    let dry_run = client
        .invoke()
        .function_name("backend")
        .invocation_type(InvocationType::DryRun)
        .tenant_id("acme")
        .send()
        .await
        .unwrap();
    assert_eq!(dry_run.status_code(), 204);
    // None of these started an environment.
    assert!(service.pool().started().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environments_are_reused_for_their_tenant_only() {
    let (service, client) = stand_in(settings(Vec::new())).await;
    for (i, tenant) in ["acme", "acme", "globex", "acme", "globex"]
        .iter()
        .enumerate()
    {
        let output = sync_invoke(
            &client,
            "backend",
            Some(tenant),
            envelope(tenant, &i.to_string()),
        )
        .await
        .unwrap();
        let result: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
        assert_eq!(result["tenantId"], *tenant);
        // The backend reports its environment (log stream): it matches the stand-in's log.
        let entry = service.entries().last().unwrap().clone();
        assert_eq!(
            result["result"]["environment"],
            entry.environment_id.clone().unwrap()
        );
    }
    let started = service.pool().started();
    assert_eq!(started.len(), 2, "{started:?}");
    assert_eq!(started[0].tenant.as_deref(), Some("acme"));
    assert_eq!(started[1].tenant.as_deref(), Some("globex"));
    let cold: Vec<bool> = service.entries().iter().map(|e| e.cold_start).collect();
    assert_eq!(cold, [true, false, true, false, false]);
    // Both processes are real and distinct.
    assert_ne!(started[0].pid, started[1].pid);
    service.pool().stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_tenant_gets_another_environment_and_the_limit_throttles() {
    // Take an invocation, wait, answer; forever.
    let slow = runtime_function("slow.sh", r#"sleep 2; printf '{"ok":true}'"#);
    let mut settings = settings(vec![FunctionSpec {
        per_tenant: true,
        ..FunctionSpec::new("slow", slow)
    }]);
    settings.concurrency = 2;
    let (service, client) = stand_in(settings).await;
    let calls = (0..3).map(|_| {
        let client = client.clone();
        async move { sync_invoke(&client, "slow", Some("acme"), b"{}".to_vec()).await }
    });
    let results = futures_join(calls).await;
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let throttled = results
        .iter()
        .filter(|r| matches!(r, Err(InvokeError::TooManyRequestsException(_))))
        .count();
    assert_eq!((ok, throttled), (2, 1), "{results:?}");
    assert_eq!(
        service.pool().started().len(),
        2,
        "two environments for one busy tenant"
    );
    service.pool().stop_all();
}

async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_environment_answers_as_lambda_and_is_replaced() {
    let crash = script("crash.sh", "echo 'about to crash'; exit 3");
    let (service, client) = stand_in(settings(vec![FunctionSpec {
        per_tenant: true,
        ..FunctionSpec::new("crash", crash)
    }]))
    .await;
    for _ in 0..2 {
        let output = sync_invoke(&client, "crash", Some("acme"), b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(output.function_error(), Some("Unhandled"));
        let error: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
        assert_eq!(error["errorType"], "Runtime.ExitError");
        assert!(
            error["errorMessage"]
                .as_str()
                .unwrap()
                .contains("exit status: 3"),
            "{error}"
        );
    }
    assert_eq!(
        service.pool().started().len(),
        2,
        "the crashed environment was replaced"
    );
    let statuses: Vec<String> = service.entries().iter().map(|e| e.status.clone()).collect();
    assert_eq!(statuses, ["crashed", "crashed"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_past_its_timeout_is_stopped() {
    let hang = script("hang.sh", "sleep 30");
    let mut settings = settings(vec![FunctionSpec {
        per_tenant: true,
        ..FunctionSpec::new("hang", hang)
    }]);
    settings.function_timeout = Duration::from_millis(300);
    let (service, client) = stand_in(settings).await;
    let output = sync_invoke(&client, "hang", Some("acme"), b"{}".to_vec())
        .await
        .unwrap();
    let error: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    assert_eq!(error["errorType"], "Sandbox.Timedout");
    assert!(
        eventually(|| service.pool().alive() == 0).await,
        "the environment was stopped"
    );
}

/// Polls `condition` for up to five seconds.
async fn eventually(condition: impl Fn() -> bool) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(5) {
        if condition() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A runtime that takes one invocation and then runs `then` (in the shell).
fn taking_then(name: &str, then: &str) -> PathBuf {
    script(
        name,
        &format!(
            r#"curl -sS -o /dev/null "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation/next"
{then}"#
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_or_timeout_during_an_invocation_ends_it_as_lambda_would() {
    let mut settings = settings(vec![
        FunctionSpec {
            per_tenant: true,
            ..FunctionSpec::new("dies", taking_then("dies.sh", "exit 9"))
        },
        FunctionSpec {
            per_tenant: true,
            ..FunctionSpec::new("stalls", taking_then("stalls.sh", "sleep 30"))
        },
        FunctionSpec {
            per_tenant: true,
            ..FunctionSpec::new(
                "init-fails",
                script(
                    "init-fails.sh",
                    r#"curl -sS -X POST -H 'Lambda-Runtime-Function-Error-Type: Runtime.ConfigError' -d '{"errorType":"Runtime.ConfigError","errorMessage":"no config"}' "http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/init/error" >/dev/null; sleep 30"#,
                ),
            )
        },
    ]);
    settings.function_timeout = Duration::from_millis(800);
    let (service, client) = stand_in(settings).await;
    let error_of = |output: aws_sdk_lambda::operation::invoke::InvokeOutput| {
        assert_eq!(output.function_error(), Some("Unhandled"));
        serde_json::from_slice::<Value>(output.payload().unwrap().as_ref()).unwrap()
    };
    let died = error_of(
        sync_invoke(&client, "dies", Some("acme"), b"{}".to_vec())
            .await
            .unwrap(),
    );
    assert_eq!(died["errorType"], "Runtime.ExitError", "{died}");
    assert!(
        died["errorMessage"]
            .as_str()
            .unwrap()
            .contains("exit status: 9"),
        "{died}"
    );
    let stalled = error_of(
        sync_invoke(&client, "stalls", Some("acme"), b"{}".to_vec())
            .await
            .unwrap(),
    );
    assert_eq!(stalled["errorType"], "Sandbox.Timedout");
    let init = error_of(
        sync_invoke(&client, "init-fails", Some("acme"), b"{}".to_vec())
            .await
            .unwrap(),
    );
    assert_eq!(init["errorType"], "Runtime.ConfigError", "{init}");
    assert_eq!(init["errorMessage"], "no config");
    assert!(eventually(|| service.pool().alive() == 0).await);
    // A new invocation gets a new environment.
    let before = service.pool().started().len();
    let _ = sync_invoke(&client, "dies", Some("acme"), b"{}".to_vec()).await;
    assert_eq!(service.pool().started().len(), before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_environments_are_stopped_and_output_is_prefixed() {
    let mut settings = settings(Vec::new());
    settings.idle_timeout = Duration::from_millis(200);
    let output_file = settings.environment_output.clone().unwrap();
    let (service, client) = stand_in(settings).await;
    sync_invoke(&client, "backend", Some("globex"), envelope("globex", "1"))
        .await
        .unwrap();
    assert_eq!(service.pool().alive(), 1);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        service.pool().alive(),
        0,
        "the idle environment was stopped"
    );
    let output = std::fs::read_to_string(&output_file).unwrap();
    let id = &service.pool().started()[0].id;
    assert!(
        output
            .lines()
            .any(|l| l.starts_with(&format!("[{id} globex] "))),
        "{output}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_in_one_tenants_code_does_not_touch_another_tenants_environment() {
    // Tenant code that crashes for one tenant only.
    let function = runtime_function(
        "crashy.sh",
        r#"tenant=$(header lambda-runtime-aws-tenant-id)
  if [ "$tenant" = "crashy" ]; then exit 11; fi
  printf '{"pid":%s,"tenant":"%s"}' "$$" "$tenant""#,
    );
    let (service, client) = stand_in(settings(vec![FunctionSpec {
        per_tenant: true,
        ..FunctionSpec::new("crashy", function)
    }]))
    .await;
    let answer = |output: aws_sdk_lambda::operation::invoke::InvokeOutput| {
        serde_json::from_slice::<Value>(output.payload().unwrap().as_ref()).unwrap()
    };
    let before = answer(
        sync_invoke(&client, "crashy", Some("acme"), b"{}".to_vec())
            .await
            .unwrap(),
    );
    let crashed = sync_invoke(&client, "crashy", Some("crashy"), b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(crashed.function_error(), Some("Unhandled"));
    let after = answer(
        sync_invoke(&client, "crashy", Some("acme"), b"{}".to_vec())
            .await
            .unwrap(),
    );
    // acme's environment is the same process, untouched by the other tenant's crash.
    assert_eq!(before["pid"], after["pid"]);
    assert_eq!(after["tenant"], "acme");
    let started = service.pool().started();
    assert_eq!(started.len(), 2);
    assert_ne!(started[0].pid, started[1].pid);
    service.pool().stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_up_to_6_mb_are_answered_and_larger_ones_refused_as_lambda_does() {
    // A JSON string of `$SIZE` bytes and its quotes.
    let sized = runtime_function(
        "sized.sh",
        r#"printf '"'; head -c "$SIZE" /dev/zero | tr '\0' a; printf '"'"#,
    );
    let spec = |name: &str| FunctionSpec::new(name, sized.clone());
    let mut small = settings(vec![spec("three-mb")]);
    small.variables.push(("SIZE".into(), "3000000".into()));
    let (_small, client) = stand_in(small).await;
    let output = sync_invoke(&client, "three-mb", None, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(output.function_error(), None);
    assert_eq!(output.payload().unwrap().as_ref().len(), 3_000_002);

    let mut large = settings(vec![spec("seven-mb")]);
    large.variables.push(("SIZE".into(), "7000000".into()));
    let (_large, client) = stand_in(large).await;
    let output = sync_invoke(&client, "seven-mb", None, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(output.function_error(), Some("Unhandled"));
    let error: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
    assert_eq!(
        error["errorType"], "Function.ResponseSizeTooLarge",
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_must_be_json_and_names_may_be_arns_with_latest() {
    let (_service, client) = stand_in(settings(vec![])).await;
    let not_json = sync_invoke(&client, "plain", None, b"not json".to_vec()).await;
    assert!(
        matches!(
            not_json,
            Err(InvokeError::InvalidRequestContentException(_))
        ),
        "{not_json:?}"
    );
    for name in [
        "plain:$LATEST",
        "arn:aws:lambda:us-east-1:000000000000:function:plain",
        "arn:aws:lambda:us-east-1:000000000000:function:plain:$LATEST",
    ] {
        let output = sync_invoke(&client, name, None, b"{}".to_vec()).await;
        // The backend's guard refuses a payload that is no envelope: the function ran.
        assert!(output.is_ok(), "{name}: {output:?}");
    }
    let alias = sync_invoke(&client, "plain:prod", None, b"{}".to_vec()).await;
    assert!(
        matches!(alias, Err(InvokeError::ResourceNotFoundException(_))),
        "{alias:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_environment_has_its_own_scratch_directory_and_a_full_trace_header() {
    let probe = runtime_function(
        "probe.sh",
        r#"trace=$(header lambda-runtime-trace-id); touch "$TMPDIR/mine"; printf '{"tmp":"%s","trace":"%s"}' "$TMPDIR" "$trace""#,
    );
    let (_service, client) = stand_in(settings(vec![FunctionSpec {
        per_tenant: true,
        ..FunctionSpec::new("probe", probe)
    }]))
    .await;
    let mut seen = Vec::new();
    for tenant in ["acme", "globex"] {
        let output = sync_invoke(&client, "probe", Some(tenant), b"{}".to_vec())
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
        let tmp = answer["tmp"].as_str().unwrap().to_owned();
        assert!(std::path::Path::new(&tmp).join("mine").exists(), "{answer}");
        let trace = answer["trace"].as_str().unwrap();
        assert!(
            trace.starts_with("Root=1-")
                && trace.contains(";Parent=")
                && trace.contains(";Sampled="),
            "{trace}"
        );
        seen.push(tmp);
    }
    assert_ne!(
        seen[0], seen[1],
        "two tenants, two environments, two directories"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_invocations_keep_each_functions_retry_and_event_age_settings() {
    use local::service::{AsyncInvokeConfig, Request};
    let failing = runtime_function(
        "failing.sh",
        r#"outcome=error; printf '{"errorType":"Boom","errorMessage":"always"}'"#,
    );
    let function = |name: &str, async_invoke| FunctionSpec {
        async_invoke,
        ..FunctionSpec::new(name, failing.clone())
    };
    let mut settings = settings(vec![
        function(
            "no-retries",
            AsyncInvokeConfig {
                max_retry_attempts: 0,
                ..AsyncInvokeConfig::default()
            },
        ),
        function(
            "short-lived",
            AsyncInvokeConfig {
                max_retry_attempts: 2,
                max_event_age: Duration::from_millis(300),
            },
        ),
    ]);
    settings.async_retry_delays = [Duration::from_millis(200), Duration::from_millis(400)];
    let service = Service::new(settings).unwrap();
    for (function, id) in [("no-retries", "r1"), ("short-lived", "r2"), ("plain", "r3")] {
        service.enqueue(
            Request {
                function: function.into(),
                tenant: None,
                request_id: id.into(),
                invocation_type: "Event",
                trace_id: "Root=1-00000000-000000000000000000000000".into(),
            },
            bytes::Bytes::from_static(b"{}"),
        );
    }
    service.drain().await;
    let results = service.results();
    let of = |id: &str| {
        results
            .iter()
            .find(|r| r["requestContext"]["requestId"] == id)
            .unwrap()
            .clone()
    };
    let r1 = of("r1");
    assert_eq!(
        r1["requestContext"]["condition"], "RetriesExhausted",
        "{r1}"
    );
    assert_eq!(r1["requestContext"]["approximateInvokeCount"], 1, "{r1}");
    // Failed at 0 ms and at 200 ms; after the next 400 ms wait it is 600 ms old, past 300.
    let r2 = of("r2");
    assert_eq!(
        r2["requestContext"]["condition"], "EventAgeExceeded",
        "{r2}"
    );
    assert_eq!(r2["requestContext"]["approximateInvokeCount"], 2, "{r2}");
    assert_eq!(r2["responseContext"]["functionError"], "Unhandled");
    // The default: two retries (the backend refuses `{}`, no envelope, as a function error). The
    // success record's shape is checked by the end-to-end tests.
    let r3 = of("r3");
    assert_eq!(r3["requestContext"]["approximateInvokeCount"], 3, "{r3}");
}

#[test]
fn async_settings_are_parsed_within_lambdas_ranges() {
    let spec = FunctionSpec::parse("f=/bin/f,retries=0,max-event-age=60").unwrap();
    assert_eq!(spec.async_invoke.max_retry_attempts, 0);
    assert_eq!(spec.async_invoke.max_event_age, Duration::from_secs(60));
    for bad in [
        "f=/x,retries=3",
        "f=/x,max-event-age=59",
        "f=/x,max-event-age=21601",
    ] {
        assert!(FunctionSpec::parse(bad).is_err(), "{bad}");
    }
}

fn function(
    name: &str,
    executable: PathBuf,
    per_tenant: bool,
    concurrency: Option<usize>,
) -> FunctionSpec {
    FunctionSpec {
        per_tenant,
        concurrency,
        ..FunctionSpec::new(name, executable)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeout_counts_from_the_invoke_and_the_init_phase_has_its_own_limit() {
    let answer = runtime_function("answer.sh", "echo '{\"ok\":true}'");
    // Initialising takes 0.6 s, longer than the function timeout (0.4 s), within the init limit.
    let slow_init = script(
        "slow-init.sh",
        &format!("sleep 0.6\nexec {}", answer.display()),
    );
    let stuck_init = script(
        "stuck-init.sh",
        &format!("sleep 5\nexec {}", answer.display()),
    );
    let mut settings = settings(vec![
        function("slow-init", slow_init, false, None),
        function("stuck-init", stuck_init, false, None),
    ]);
    settings.function_timeout = Duration::from_millis(400);
    settings.init_limit = Duration::from_secs(2);
    let (service, client) = stand_in(settings).await;
    let output = sync_invoke(&client, "slow-init", None, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(
        output.function_error(),
        None,
        "the init phase does not count against the timeout"
    );
    let stuck = sync_invoke(&client, "stuck-init", None, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(stuck.function_error(), Some("Unhandled"));
    let error: Value = serde_json::from_slice(stuck.payload().unwrap().as_ref()).unwrap();
    assert_eq!(error["errorType"], "Sandbox.Timedout", "{error}");
    assert!(
        error["errorMessage"].as_str().unwrap().contains("INIT"),
        "{error}"
    );
    let entries = service.entries();
    assert!(
        entries.iter().any(|e| e.status == "init-timeout"),
        "{entries:?}"
    );
    service.pool().stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_concurrency_throttles_sync_invokes_and_queues_async_ones() {
    let slow = runtime_function("slow.sh", "sleep 1; echo '{}'");
    let (service, client) = stand_in(settings(vec![function("slow", slow, false, Some(1))])).await;
    let (a, b) = tokio::join!(
        sync_invoke(&client, "slow", None, b"{}".to_vec()),
        sync_invoke(&client, "slow", None, b"{}".to_vec())
    );
    let throttled = [&a, &b]
        .iter()
        .filter(|r| matches!(r, Err(InvokeError::TooManyRequestsException(_))))
        .count();
    assert_eq!(
        throttled, 1,
        "one of two sync invokes found the reserved concurrency of 1 in use: {a:?} {b:?}"
    );
    for _ in 0..3 {
        let accepted = client
            .invoke()
            .function_name("slow")
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(b"{}".to_vec()))
            .send()
            .await
            .unwrap();
        assert_eq!(
            accepted.status_code(),
            202,
            "an async invoke is queued, never refused for capacity"
        );
    }
    service.drain().await;
    let results = service.results();
    assert_eq!(results.len(), 3);
    assert!(
        results
            .iter()
            .all(|r| r["requestContext"]["condition"] == "Success"),
        "{results:?}"
    );
    assert!(
        service
            .entries()
            .iter()
            .any(|e| e.status == "waiting-for-capacity")
    );
    service.pool().stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_isolated_function_keeps_two_and_a_half_environments_per_unit_of_concurrency() {
    let answer = runtime_function("tenant-answer.sh", "echo '{}'");
    let (service, client) =
        stand_in(settings(vec![function("isolated", answer, true, Some(2))])).await;
    assert_eq!(
        service.pool().environment_cap("isolated"),
        5,
        "2,500 per 1,000 concurrency"
    );
    for i in 1..=7 {
        let tenant = format!("t{i}");
        let output = sync_invoke(&client, "isolated", Some(&tenant), b"{}".to_vec())
            .await
            .unwrap();
        assert_eq!(output.function_error(), None);
        assert!(
            service.pool().alive() <= 5,
            "never more than the quota alive"
        );
    }
    assert_eq!(
        service.pool().alive(),
        5,
        "idle environments stay, up to the quota"
    );
    assert_eq!(
        service.pool().started().len(),
        7,
        "past it, the longest-idle one made room"
    );
    sync_invoke(&client, "isolated", Some("t1"), b"{}".to_vec())
        .await
        .unwrap();
    let last = service.entries().pop().unwrap();
    assert!(
        last.cold_start,
        "t1's environment had been stopped to make room"
    );
    service.pool().stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runtime_that_answers_then_never_asks_again_times_the_next_invocation_out() {
    // Answers its first invocation, then never calls `next` again.
    let once = script(
        "answers-once.sh",
        r#"api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
id=$(curl -sS -D - -o /dev/null "$api/next" | tr -d '\r' | awk -F': ' 'tolower($1)=="lambda-runtime-aws-request-id" {print $2}')
curl -sS -X POST -d '{"ok":true}' "$api/$id/response" >/dev/null
sleep 30"#,
    );
    let mut settings = settings(vec![FunctionSpec::new("once", once)]);
    settings.function_timeout = Duration::from_millis(500);
    let (service, client) = stand_in(settings).await;
    let first = sync_invoke(&client, "once", None, b"{}".to_vec())
        .await
        .unwrap();
    assert_eq!(first.function_error(), None);
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        sync_invoke(&client, "once", None, b"{}".to_vec()),
    )
    .await
    .expect("the invocation ends instead of waiting for ever")
    .unwrap();
    assert_eq!(second.function_error(), Some("Unhandled"));
    let error: Value = serde_json::from_slice(second.payload().unwrap().as_ref()).unwrap();
    assert_eq!(error["errorType"], "Sandbox.Timedout", "{error}");
    service.pool().stop_all();
}
