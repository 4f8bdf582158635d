//! The conformance kit (`local::conformance`, `local-lambda conformance EXECUTABLE`) against three
//! backends: the Rust one and the Python one (`examples/python-backend`) pass every check; one that
//! answers success to everything, as a backend without a guard would, fails the guard's checks.

use std::path::PathBuf;

use local::conformance::{Check, Options, run};

fn failed(checks: &[Check]) -> Vec<&'static str> {
    checks
        .iter()
        .filter(|c| !c.passed)
        .map(|c| c.name)
        .collect()
}

fn report(checks: &[Check]) -> String {
    checks
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_backend_passes_the_kit() {
    let checks = run(&Options::new(env!("CARGO_BIN_EXE_backend")))
        .await
        .unwrap();
    assert_eq!(checks.len(), 10, "{}", report(&checks));
    assert!(failed(&checks).is_empty(), "{}", report(&checks));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_backend_passes_the_kit() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let bootstrap = root.join("examples/python-backend/bootstrap");
    if !root.join("target/python-backend/venv/bin/python").exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI: the Python backend's packages are missing (scripts/fetch-python-backend.sh)"
        );
        eprintln!("skipped: run scripts/fetch-python-backend.sh to check the Python backend");
        return;
    }
    let checks = run(&Options::new(bootstrap)).await.unwrap();
    assert!(failed(&checks).is_empty(), "{}", report(&checks));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_answers_success_to_everything_fails_it() {
    let yes = testkit::runtime_function("yes.sh", r#"printf '{"ok":true}'"#);
    let checks = run(&Options::new(yes)).await.unwrap();
    let failed = failed(&checks);
    for name in [
        "no tenant id is refused",
        "an envelope naming another tenant is refused (Tenant.Mismatch)",
        "a batch with a record of another tenant is refused (Tenant.Mismatch)",
        "none of a refused batch's records was processed",
        "a duplicate idempotencyKey is recognised (duplicate: true)",
        "a batch gets one result per record, in order",
        "an ordered batch stops a lane at its first failure (lanes)",
        "a stream batch stops everything after its first failure",
        "a second tenant offered to an environment makes it fail closed",
    ] {
        assert!(
            failed.contains(&name),
            "{name} passed:\n{}",
            report(&checks)
        );
    }
}
