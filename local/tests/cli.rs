//! The `local-lambda` binary: `run` serves a configuration file's functions from any directory,
//! `serve` answers the Invoke API until interrupted, `replay` sends recorded events through the
//! router and prints responses and the per-tenant table. The function here is a shell script
//! implementing the Runtime API with curl (the real backend is exercised in backend/tests).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn echo_function() -> PathBuf {
    testkit::runtime_function(
        "echo.sh",
        r#"tenant=$(header lambda-runtime-aws-tenant-id)
  echo "handled $id for $tenant" >&2
  printf '{"tenant":"%s"}' "$tenant""#,
    )
}

/// Reads the child's stderr until its "Invoke API on" line (within 10 s); the reader is returned
/// so that the pipe stays open while the child runs.
fn wait_for_start(child: &mut std::process::Child) -> BufReader<std::process::ChildStderr> {
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let started = Instant::now();
    let mut line = String::new();
    while !line.contains("Invoke API on") {
        line.clear();
        stderr.read_line(&mut line).unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no start line: {line}"
        );
    }
    stderr
}

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures")
}

#[test]
fn replay_prints_responses_and_a_table_per_tenant() {
    let log = std::env::temp_dir().join(format!("local-lambda-log-{}.jsonl", std::process::id()));
    let output = Command::new(env!("CARGO_BIN_EXE_local-lambda"))
        .arg("replay")
        .arg("--backend")
        .arg(echo_function())
        .arg("--log")
        .arg(&log)
        .arg(fixtures().join("sqs/mixed-tenants.json"))
        .arg(fixtures().join("sqs/wrong-aud.json"))
        .env_remove("ROUTER_JWKS")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].ends_with("sqs/mixed-tenants.json  {\"batchItemFailures\":[]}"),
        "{stdout}"
    );
    assert!(
        lines[1].ends_with(r#"{"batchItemFailures":[{"itemIdentifier":"aud-1"}]}"#),
        "{stdout}"
    );
    let row = |tenant: &str| {
        lines
            .iter()
            .find(|l| l.split_whitespace().next() == Some(tenant))
            .unwrap_or_else(|| panic!("no row for {tenant} in {stdout}"))
            .split_whitespace()
            .skip(1)
            .map(|n| n.parse::<usize>().unwrap())
            .collect::<Vec<_>>()
    };
    // routed, rejected, failed, environments, backend ok, backend failed; a tenant's two records
    // may run at once, in one environment or two.
    for (tenant, rejected) in [("acme", 1), ("globex", 0), ("initech", 0)] {
        let row = row(tenant);
        assert_eq!(
            [row[0], row[1], row[2], row[4], row[5]],
            [2, rejected, 0, 2, 0],
            "{tenant}"
        );
        assert!((1..=2).contains(&row[3]), "{tenant}: {row:?}");
    }
    assert_eq!(std::fs::read_to_string(&log).unwrap().lines().count(), 6);

    // The same log, priced: every tenant's two invocations and records. `replay` runs the
    // router's handler in-process, so nothing without a tenant is there to share out.
    let usage = Command::new(env!("CARGO_BIN_EXE_local-lambda"))
        .args(["usage", "--json", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    assert!(
        usage.status.success(),
        "{}",
        String::from_utf8_lossy(&usage.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&usage.stdout).unwrap();
    let tenants = report["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 3, "{report}");
    for tenant in tenants {
        assert_eq!(tenant["invocations"], 2, "{tenant}");
        assert_eq!(tenant["records"], 2, "{tenant}");
        assert!(tenant["environments"].as_u64().unwrap() >= 1, "{tenant}");
        assert!(tenant["cost"].as_f64().unwrap() > 0.0, "{tenant}");
    }
    assert_eq!(report["shared"]["invocations"], 0, "{report}");
    assert!(tenants.iter().all(|t| t["sharedCost"] == 0.0), "{report}");
}

#[test]
fn conformance_fails_a_backend_without_a_guard() {
    // The echo function answers every invocation with success: no guard at all. The kit's table
    // goes on the server AWS_ENDPOINT_URL names (without it, the kit starts moto's itself).
    let moto = testkit::Moto::start();
    let output = Command::new(env!("CARGO_BIN_EXE_local-lambda"))
        .arg("conformance")
        .arg(echo_function())
        .args(["--timeout-ms", "10000"])
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL no tenant id is refused")),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("of 22 checks passed"),
        "{stdout}"
    );
}

#[test]
fn serve_answers_the_invoke_api_until_interrupted() {
    let port = testkit::free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-lambda"))
        .arg("serve")
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--function")
        .arg(format!("echo={},per-tenant", echo_function().display()))
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _stderr = wait_for_start(&mut child);
    let answer = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            "-H",
            "X-Amz-Tenant-Id: acme",
            "-d",
            "{}",
        ])
        .arg(format!(
            "http://127.0.0.1:{port}/2015-03-31/functions/echo/invocations"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(answer.stdout).unwrap(),
        r#"{"tenant":"acme"}"#
    );
    let refused = Command::new("curl")
        .args(["-sS", "-D", "-", "-X", "POST", "-d", "{}"])
        .arg(format!(
            "http://127.0.0.1:{port}/2015-03-31/functions/echo/invocations"
        ))
        .output()
        .unwrap();
    let refused = String::from_utf8(refused.stdout).unwrap().to_lowercase();
    assert!(
        refused.contains("x-amzn-errortype: invalidparametervalueexception"),
        "{refused}"
    );
    // Interrupt: it stops its environments and exits cleanly.
    Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn run_serves_a_configuration_files_functions_from_any_directory_until_terminated() {
    // The file and its function sit in one directory; the binary runs from another.
    let directory = testkit::scratch("app");
    std::fs::create_dir_all(directory.join("bin")).unwrap();
    std::fs::copy(echo_function(), directory.join("bin/echo.sh")).unwrap();
    let port = testkit::free_port();
    std::fs::write(
        directory.join("local-lambda.toml"),
        format!(
            "[service]\nlisten = \"127.0.0.1:{port}\"\nlog = \"logs/invocations.jsonl\"\n\
             [[functions]]\nname = \"echo\"\nexecutable = \"bin/echo.sh\"\ntenancy = \"per-tenant\"\n"
        ),
    )
    .unwrap();
    std::fs::create_dir_all(directory.join("logs")).unwrap();
    let elsewhere = testkit::scratch("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_local-lambda"))
        .arg("run")
        .arg(directory.join("local-lambda.toml"))
        .current_dir(&elsewhere)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _stderr = wait_for_start(&mut child);
    let answer = Command::new("curl")
        .args([
            "-sS",
            "-X",
            "POST",
            "-H",
            "X-Amz-Tenant-Id: globex",
            "-d",
            "{}",
        ])
        .arg(format!(
            "http://127.0.0.1:{port}/2015-03-31/functions/echo/invocations"
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8(answer.stdout).unwrap(),
        r#"{"tenant":"globex"}"#
    );
    // SIGTERM: it stops cleanly; the log is where the file said, beside it.
    Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(directory.join("logs/invocations.jsonl")).unwrap();
    assert!(log.contains("\"tenantId\":\"globex\""), "{log}");
    // A bad file is an error naming the file and the key.
    std::fs::write(
        directory.join("bad.toml"),
        "[[functions]]\nname = \"x\"\nexecutable = \"x\"\nmemory_mb = 1\n",
    )
    .unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_local-lambda"))
        .arg("run")
        .arg(directory.join("bad.toml"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let message = String::from_utf8(bad.stderr).unwrap();
    assert!(
        message.contains("bad.toml") && message.contains("memory_mb"),
        "{message}"
    );
}
