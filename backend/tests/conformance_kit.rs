//! The conformance kit (`local::conformance`, `local-lambda conformance EXECUTABLE`) against real
//! and deliberately broken backends: the Rust one and the Python one (`examples/python-backend`)
//! pass every check; one that answers success to everything, as a backend without a guard would,
//! fails more than half; and a model guard written here (Python, a store of files shared by its
//! environments) passes every check as written and, with one defect switched on, fails exactly the
//! checks that defect breaks. The checks of the kit's first version (tenant refusals, ordering,
//! failing closed) are shown to fail by the backend without a guard; each check added since by a
//! defect of its own.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use local::conformance::{Check, Options, run};

fn failed(checks: &[Check]) -> BTreeSet<&'static str> {
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

/// How many checks the kit has.
const CHECKS: usize = 22;

const NO_TENANT: &str = "no tenant id is refused";
const MISMATCH: &str = "an envelope naming another tenant is refused (Tenant.Mismatch)";
const REFUSED_NOTHING_PROCESSED: &str = "nothing of a refused envelope was processed";
const BATCH_MISMATCH: &str = "a batch with a record of another tenant is refused (Tenant.Mismatch)";
const REFUSED_BATCH_NOTHING_PROCESSED: &str = "none of a refused batch's records was processed";
const DUPLICATE: &str = "a duplicate idempotencyKey is recognised (duplicate: true)";
const PER_RECORD: &str = "a batch gets one result per record, in order";
const LANES: &str = "an ordered batch stops a lane at its first failure (lanes)";
const STREAM: &str = "a stream batch stops everything after its first failure";
const FAILS_CLOSED: &str = "a second tenant offered to an environment makes it fail closed";
const TWO_TENANTS: &str = "the same idempotencyKey under two tenants is processed for both";
const SECOND_ENVIRONMENT: &str =
    "a duplicate delivered to a second environment of the tenant is recognised";
const FIRST_RESULT: &str = "a duplicate's answer carries the first run's result";
const FAILURE_RUNS_AGAIN: &str =
    "a record that failed runs again when sent again (not a duplicate)";
const VERSION: &str = "an envelope or batch of an unknown version is refused (Envelope.Invalid)";
const EMPTY_ID: &str = "an envelope with an empty id is refused (Envelope.Invalid)";
const EMPTY_KEY: &str = "an envelope with an empty idempotencyKey is refused (Envelope.Invalid)";
const AT_ONCE: &str = "the same key sent to two environments at once is never processed twice";
const UNREADABLE: &str =
    "a duplicate whose stored result cannot be read still answers status: processed";
const COMPACT: &str = "every batch answer is compact (per record: id, status, error?, duplicate?) and its counts match";
const SCHEMAS: &str = "every answer fits schemas/v1";

/// Installs moto's server under `target/moto/` when it is not there (`scripts/fetch-moto.sh`, as
/// `testkit::Moto` does), for the runs that leave starting it to the kit.
fn moto_installed() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(root.join("scripts/fetch-moto.sh"))
        .stdout(Stdio::null())
        .status()
        .expect("scripts/fetch-moto.sh runs");
    assert!(status.success(), "scripts/fetch-moto.sh failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rust_backend_passes_the_kit() {
    moto_installed();
    // No endpoint: the kit starts moto's server for the run itself.
    let checks = run(&Options::new(env!("CARGO_BIN_EXE_backend")))
        .await
        .unwrap();
    assert_eq!(checks.len(), CHECKS, "{}", report(&checks));
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
    moto_installed();
    let checks = run(&Options::new(bootstrap)).await.unwrap();
    assert_eq!(checks.len(), CHECKS, "{}", report(&checks));
    assert!(failed(&checks).is_empty(), "{}", report(&checks));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_answers_success_to_everything_fails_most_checks() {
    let moto = testkit::Moto::start();
    let yes = testkit::runtime_function("yes.sh", r#"printf '{"ok":true}'"#);
    let mut options = Options::new(yes);
    options.dynamodb_endpoint = Some(moto.endpoint().to_owned());
    let checks = run(&options).await.unwrap();
    let failed = failed(&checks);
    assert!(
        failed.len() * 2 > checks.len(),
        "only {} of {} failed:\n{}",
        failed.len(),
        checks.len(),
        report(&checks)
    );
    // The guard's own checks, and the new ones the issue lists, all among them.
    for name in [
        NO_TENANT,
        MISMATCH,
        BATCH_MISMATCH,
        REFUSED_NOTHING_PROCESSED,
        REFUSED_BATCH_NOTHING_PROCESSED,
        DUPLICATE,
        PER_RECORD,
        LANES,
        STREAM,
        FAILS_CLOSED,
        TWO_TENANTS,
        SECOND_ENVIRONMENT,
        FIRST_RESULT,
        FAILURE_RUNS_AGAIN,
        VERSION,
        EMPTY_ID,
        EMPTY_KEY,
        AT_ONCE,
        UNREADABLE,
        COMPACT,
        SCHEMAS,
    ] {
        assert!(failed.contains(name), "{name} passed:\n{}", report(&checks));
    }
}

/// A tenant guard in Python on the Runtime API that keeps the contract, with its store in files
/// shared by its environments (`MODEL_STORE`, a directory; a claim is an exclusive create), unless
/// `DEFECT` switches one defect on:
///
/// - `tenantless-key`: the store is keyed by the `idempotencyKey` alone;
/// - `memory`: the store is the environment's memory;
/// - `relabel`: a duplicate runs the handler again and is only labelled `duplicate`;
/// - `cache-failures`: a failure is stored, and answered again for the same key;
/// - `any-version`: an envelope's or batch's `version` is not read;
/// - `empty-ids`: an empty `id` or `idempotencyKey` is accepted;
/// - `racy`: a claim looks, waits, then writes (not one conditional write);
/// - `verbose-batch`: a batch answer carries each processed record's `result`;
/// - `no-correlation`: the answer to one envelope leaves out `correlationId`.
const MODEL_GUARD: &str = r##"#!/usr/bin/env python3
import hashlib, json, os, sys, time, urllib.request

API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
DEFECT = os.environ.get("DEFECT", "")
STORE = os.environ["MODEL_STORE"]
memory = {}
pinned = None
closed = False


class GuardError(Exception):
    def __init__(self, kind, message):
        super().__init__(message)
        self.kind = kind


def path_of(tenant, key):
    name = key if DEFECT == "tenantless-key" else tenant + "#" + key
    return os.path.join(STORE, hashlib.sha256(name.encode()).hexdigest())


def load(path):
    """None: never seen; "busy": claimed, not completed; else the stored dict."""
    if DEFECT == "memory":
        return memory.get(path)
    try:
        with open(path) as f:
            text = f.read()
    except FileNotFoundError:
        return None
    return json.loads(text) if text else "busy"


def claim(path):
    """None when this invocation now holds the record, else what stands in its way."""
    if DEFECT == "memory":
        if path in memory:
            return memory[path]
        memory[path] = "busy"
        return None
    if DEFECT == "racy":
        seen = load(path)
        if seen is not None:
            return seen
        time.sleep(0.2)
        open(path, "w").close()
        return None
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        return None
    except FileExistsError:
        return load(path) or "busy"


def save(path, value):
    if DEFECT == "memory":
        memory[path] = value
        return
    with open(path + ".tmp", "w") as f:
        json.dump(value, f)
    os.replace(path + ".tmp", path)


def forget(path):
    if DEFECT == "memory":
        memory.pop(path, None)
    else:
        os.remove(path)


def handle(tenant, envelope):
    payload = envelope["payload"]
    if not isinstance(payload, dict) or not isinstance(payload.get("item"), dict):
        raise ValueError("the payload holds no to-do item")
    return {"tenant": tenant, "item": payload["item"]}


def once(tenant, envelope):
    """("processed", result, duplicate) or ("failed", errorType, message)."""
    path = path_of(tenant, envelope["idempotencyKey"])
    seen = claim(path)
    if seen == "busy":
        return ("failed", "Idempotency.InProgress", "in progress in another environment")
    if seen is not None:
        if "failed" in seen:
            return ("failed", "Handler.Error", seen["failed"])
        if DEFECT == "relabel":
            return ("processed", handle(tenant, envelope), True)
        return ("processed", seen["result"], True)
    try:
        result = handle(tenant, envelope)
    except Exception as e:
        if DEFECT == "cache-failures":
            save(path, {"failed": str(e)})
        else:
            forget(path)
        return ("failed", "Handler.Error", str(e))
    save(path, {"result": result})
    return ("processed", result, False)


def valid_version(value):
    if DEFECT != "any-version" and value.get("version") != 1:
        raise GuardError("Envelope.Invalid", "unknown version")


def check(envelope, tenant):
    if not isinstance(envelope, dict):
        raise GuardError("Envelope.Invalid", "not an envelope")
    valid_version(envelope)
    for name in ("id", "idempotencyKey"):
        value = envelope.get(name)
        if not isinstance(value, str) or (value == "" and DEFECT != "empty-ids"):
            raise GuardError("Envelope.Invalid", "no " + name)
    if envelope.get("tenantId") != tenant:
        raise GuardError("Tenant.Mismatch", "another tenant's envelope")


def batch(tenant, event):
    valid_version(event)
    if event.get("tenantId") != tenant:
        raise GuardError("Tenant.Mismatch", "another tenant's batch")
    records = event.get("records")
    if not isinstance(records, list):
        raise GuardError("Envelope.Invalid", "no records")
    for record in records:
        check(record, tenant)
    ordering = event.get("ordering")
    failed_lanes, stopped = set(), False
    results = []
    counts = dict(processed=0, duplicates=0, failed=0, skipped=0)
    for record in records:
        lane = record.get("orderingKey")
        if stopped or (ordering == "lanes" and lane is not None and lane in failed_lanes):
            results.append(dict(id=record["id"], status="skipped", error="an earlier record failed"))
            counts["skipped"] += 1
            continue
        outcome = once(tenant, record)
        if outcome[0] == "failed":
            results.append(dict(id=record["id"], status="failed", error=outcome[2][:256]))
            counts["failed"] += 1
            stopped = ordering == "stream"
            if ordering == "lanes" and lane is not None:
                failed_lanes.add(lane)
            continue
        result = dict(id=record["id"], status="processed")
        if DEFECT == "verbose-batch":
            result["result"] = outcome[1]
        if outcome[2]:
            result["duplicate"] = True
            counts["duplicates"] += 1
        else:
            counts["processed"] += 1
        results.append(result)
    if event.get("answer") != "per-record" and counts["failed"]:
        raise GuardError("Handler.PartialFailure", "some records failed")
    return dict(tenantId=tenant, records=results, **counts)


def invoke(tenant, event):
    global pinned, closed
    if os.environ.get("BACKEND_TENANT_ROLE_ARN"):
        # This model has no STS client: with tenant-scoped access asked for, it never runs.
        raise GuardError("Tenant.CredentialsUnavailable", "no tenant session")
    if closed:
        raise GuardError("Tenant.EnvironmentFailedClosed", "this environment served another tenant")
    if not tenant:
        raise GuardError("Tenant.Missing", "no tenant id")
    if pinned is None:
        pinned = tenant
    elif tenant != pinned:
        closed = True
        raise GuardError("Tenant.EnvironmentFailedClosed", "this environment served another tenant")
    if isinstance(event, dict) and "records" in event:
        return batch(tenant, event)
    check(event, tenant)
    outcome = once(tenant, event)
    if outcome[0] == "failed":
        raise GuardError(outcome[1], outcome[2])
    answer = dict(tenantId=tenant, id=event["id"], idempotencyKey=event["idempotencyKey"],
                  correlationId=event.get("correlationId", ""), source=event.get("source"),
                  status="processed", result=outcome[1])
    if DEFECT == "no-correlation":
        del answer["correlationId"]
    if outcome[2]:
        answer["duplicate"] = True
    return answer


def post(path, body, error_type=None):
    request = urllib.request.Request(API + path, data=json.dumps(body).encode(), method="POST")
    if error_type:
        request.add_header("Lambda-Runtime-Function-Error-Type", error_type)
    urllib.request.urlopen(request).read()


while True:
    try:
        with urllib.request.urlopen(API + "next") as answer:
            headers, body = answer.headers, answer.read()
    except Exception:
        sys.exit(0)
    request_id = headers["Lambda-Runtime-Aws-Request-Id"]
    try:
        try:
            event = json.loads(body)
        except ValueError:
            raise GuardError("Envelope.Invalid", "not JSON")
        result = invoke(headers.get("Lambda-Runtime-Aws-Tenant-Id"), event)
    except GuardError as e:
        post(request_id + "/error", dict(errorType=e.kind, errorMessage=str(e)), e.kind)
        continue
    post(request_id + "/response", result)
"##;

fn model_guard() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = testkit::scratch("model-guard.py");
    std::fs::write(&path, MODEL_GUARD).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_defect_of_a_model_guard_fails_exactly_its_checks() {
    // One server for every run: each run makes a table of its own.
    let moto = testkit::Moto::start();
    let guard = model_guard();
    // (defect, the checks it fails, the checks it may fail besides: whether an answer that
    // breaks the compact form or carries an empty id also breaks the schema is the schema's to
    // say; the compact and envelope checks say it either way).
    let cases: [(&str, &[&str], &[&str]); 10] = [
        ("", &[], &[]),
        ("tenantless-key", &[TWO_TENANTS], &[]),
        ("memory", &[SECOND_ENVIRONMENT, AT_ONCE], &[]),
        ("relabel", &[FIRST_RESULT], &[]),
        ("cache-failures", &[FAILURE_RUNS_AGAIN], &[]),
        ("any-version", &[VERSION], &[]),
        ("empty-ids", &[EMPTY_ID, EMPTY_KEY], &[SCHEMAS]),
        ("racy", &[AT_ONCE], &[]),
        ("verbose-batch", &[COMPACT], &[SCHEMAS]),
        ("no-correlation", &[SCHEMAS], &[]),
    ];
    let mut wrong = Vec::new();
    for (defect, must, may) in cases {
        let store = testkit::scratch("model-store");
        std::fs::create_dir_all(&store).unwrap();
        let mut options = Options::new(&guard);
        options.dynamodb_endpoint = Some(moto.endpoint().to_owned());
        options.variables = vec![
            ("DEFECT".into(), defect.into()),
            ("MODEL_STORE".into(), store.display().to_string()),
        ];
        let checks = run(&options).await.unwrap();
        assert_eq!(checks.len(), CHECKS, "{}", report(&checks));
        let mut failed = failed(&checks);
        for name in may {
            failed.remove(name);
        }
        let must: BTreeSet<&str> = must.iter().copied().collect();
        if failed != must {
            wrong.push(format!(
                "DEFECT={defect:?}: expected to fail {must:?}, failed {failed:?}\n{}",
                report(&checks)
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}
