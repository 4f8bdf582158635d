//! The ONE set of helpers shared by the test binaries of this workspace (and the `demo` binary):
//! AWS SDK clients pointed at a local endpoint, AWS's Runtime Interface Emulator (RIE) and the
//! processes it runs, shell-script functions, and the envelopes the backend accepts.
//!
//! It depends on no crate of the workspace (router, backend, local, cross-crate-tests), so any of
//! them can dev-depend on it without a cycle.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// The region every test client uses.
pub const REGION: &str = "us-east-1";

/// The event source ARN of [`envelope`].
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:1:q";

/// Builds a client of the SDK crate `$sdk` for `$endpoint`: region [`REGION`], static test
/// credentials, the SDK's retries disabled (every service crate has the same builder).
macro_rules! local_client {
    ($sdk:ident, $endpoint:expr) => {{
        use $sdk::config::retry::RetryConfig;
        use $sdk::config::{BehaviorVersion, Credentials, Region};
        $sdk::Client::from_conf(
            $sdk::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new("test", "test", None, None, "testkit"))
                .endpoint_url($endpoint)
                .retry_config(RetryConfig::disabled())
                .build(),
        )
    }};
}

/// An aws-sdk-lambda client for `endpoint` (such as `http://127.0.0.1:9001`): region
/// [`REGION`], static test credentials, the SDK's retries disabled.
pub fn lambda_client(endpoint: &str) -> aws_sdk_lambda::Client {
    local_client!(aws_sdk_lambda, endpoint)
}

/// An aws-sdk-sqs client for `endpoint`, configured as [`lambda_client`] is.
pub fn sqs_client(endpoint: &str) -> aws_sdk_sqs::Client {
    local_client!(aws_sdk_sqs, endpoint)
}

/// Creates the SQS queue `name` with `attributes` (`VisibilityTimeout`, `RedrivePolicy`,
/// `FifoQueue`, …) and returns its URL.
pub async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(&str, String)],
) -> Result<String, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let mut request = sqs.create_queue().queue_name(name);
    for (key, value) in attributes {
        request = request.attributes(QueueAttributeName::from(*key), value);
    }
    let answer = request.send().await.map_err(|e| {
        format!(
            "queue {name}: {}",
            aws_sdk_sqs::error::DisplayErrorContext(e)
        )
    })?;
    answer
        .queue_url
        .ok_or_else(|| format!("queue {name}: no URL"))
}

/// Messages in the queue at `url`, visible or in flight.
pub async fn messages_left(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<usize, String> {
    use aws_sdk_sqs::types::QueueAttributeName;
    let answer = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await
        .map_err(|e| aws_sdk_sqs::error::DisplayErrorContext(e).to_string())?;
    Ok(answer
        .attributes
        .unwrap_or_default()
        .values()
        .filter_map(|v| v.parse::<usize>().ok())
        .sum())
}

/// Receives and deletes every visible message of the queue at `url`; returns their bodies.
pub async fn drain_queue(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<String>, String> {
    let error = |e: aws_sdk_sqs::Error| aws_sdk_sqs::error::DisplayErrorContext(e).to_string();
    let mut bodies = Vec::new();
    loop {
        let answer = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .map_err(|e| error(e.into()))?;
        let messages = answer.messages.unwrap_or_default();
        if messages.is_empty() {
            return Ok(bodies);
        }
        for message in messages {
            bodies.push(message.body().unwrap_or_default().to_owned());
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .map_err(|e| error(e.into()))?;
        }
    }
}

/// An aws-sdk-kinesis client for `endpoint`, configured as [`lambda_client`] is.
pub fn kinesis_client(endpoint: &str) -> aws_sdk_kinesis::Client {
    local_client!(aws_sdk_kinesis, endpoint)
}

/// An aws-sdk-dynamodbstreams client for `endpoint`, configured as [`lambda_client`] is.
pub fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    local_client!(aws_sdk_dynamodbstreams, endpoint)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An aws-sdk-dynamodb client for `endpoint`: region [`REGION`], static test credentials, the
/// SDK's retries disabled.
pub fn dynamodb_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    local_client!(aws_sdk_dynamodb, endpoint)
}

/// Creates an on-demand table named `name` whose partition key `key` is a string, with a stream of
/// new images when `stream` is set.
async fn create_string_key_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    key: &str,
    stream: bool,
) {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
        StreamSpecification, StreamViewType,
    };
    let stream = stream.then(|| {
        StreamSpecification::builder()
            .stream_enabled(true)
            .stream_view_type(StreamViewType::NewImage)
            .build()
            .unwrap()
    });
    client
        .create_table()
        .set_stream_specification(stream)
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(key)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(key)
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_or_else(|e| panic!("table {name} is created: {e}"));
}

/// Creates an on-demand table named `name` (partition key `pk`, string) with a stream of new
/// images, as a DynamoDB Streams source.
pub async fn create_table_with_stream(client: &aws_sdk_dynamodb::Client, name: &str) {
    create_string_key_table(client, name, "pk", true).await;
}

/// Creates an idempotency table in the layout of Powertools for AWS Lambda (partition key `id`,
/// string; on demand) named `name`.
pub async fn create_idempotency_table(client: &aws_sdk_dynamodb::Client, name: &str) {
    create_string_key_table(client, name, "id", false).await;
}

/// Creates a tenant registry table named `name` (partition key `tenantId`, string; on demand)
/// holding `tenants` as `(tenant, status)`.
pub async fn create_registry_table(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    tenants: &[(&str, &str)],
) {
    create_string_key_table(client, name, "tenantId", false).await;
    for (tenant, status) in tenants {
        set_tenant_status(client, name, tenant, status).await;
    }
}

/// Writes `tenant`'s `status` into the registry table `name`.
pub async fn set_tenant_status(
    client: &aws_sdk_dynamodb::Client,
    name: &str,
    tenant: &str,
    status: &str,
) {
    use aws_sdk_dynamodb::types::AttributeValue;
    client
        .put_item()
        .table_name(name)
        .item("tenantId", AttributeValue::S(tenant.into()))
        .item("status", AttributeValue::S(status.into()))
        .send()
        .await
        .expect("the tenant is written");
}

/// An aws-sdk-s3 client for `endpoint`: region [`REGION`], static test credentials, the SDK's
/// retries disabled, path-style addressing (a local server has no per-bucket host names).
pub fn s3_client(endpoint: &str) -> aws_sdk_s3::Client {
    use aws_sdk_s3::config::retry::RetryConfig;
    use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
    aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(REGION))
            .credentials_provider(Credentials::new("test", "test", None, None, "testkit"))
            .endpoint_url(endpoint)
            .force_path_style(true)
            .retry_config(RetryConfig::disabled())
            .build(),
    )
}

/// Blocks until something accepts connections at `address`; panics after `timeout`.
pub fn wait_until_listening(address: SocketAddr, timeout: Duration) {
    let started = Instant::now();
    while TcpStream::connect(address).is_err() {
        assert!(
            started.elapsed() < timeout,
            "nothing listened at {address} within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The Runtime Interface Emulator in `target/rie/` (put there by `scripts/fetch-rie.sh`).
/// Without it: `None` after printing `SKIPPED`, so the test can stop; under CI (`CI` set) a
/// panic, since there its absence is a failure.
pub fn emulator() -> Option<PathBuf> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/rie/aws-lambda-rie-x86_64");
    if path.is_file() {
        return Some(path);
    }
    if std::env::var_os("CI").is_some() {
        panic!("the Runtime Interface Emulator is missing: run scripts/fetch-rie.sh first");
    }
    eprintln!(
        "SKIPPED: no emulator at {}; run scripts/fetch-rie.sh",
        path.display()
    );
    None
}

/// A child process killed (and reaped) when this is dropped.
#[derive(Debug)]
pub struct ChildGuard(pub Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The emulator running one function; stopped on drop.
#[derive(Debug)]
pub struct Rie {
    _child: ChildGuard,
    address: SocketAddr,
}

impl Rie {
    /// Starts `emulator` running `executable` with `variables` added to the environment, and
    /// waits (up to ten seconds, else panics) until its Invoke API listens.
    pub fn start(emulator: &Path, executable: &Path, variables: &[(&str, String)]) -> Rie {
        let address: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let runtime_api = format!("127.0.0.1:{}", free_port());
        let child = Command::new(emulator)
            .arg("--runtime-interface-emulator-address")
            .arg(address.to_string())
            .arg("--runtime-api-address")
            .arg(&runtime_api)
            .arg(executable)
            .envs(variables.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the emulator runs");
        let child = ChildGuard(child);
        wait_until_listening(address, Duration::from_secs(10));
        Rie {
            _child: child,
            address,
        }
    }

    /// Where the emulator's Invoke API listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The Invoke API's endpoint URL, for [`lambda_client`].
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// moto's server (an AWS-API server from PyPI that runs without Docker: SQS, S3, DynamoDB,
/// DynamoDB Streams, Kinesis) on a free port of 127.0.0.1, with a fresh state; stopped on drop.
#[derive(Debug)]
pub struct Moto {
    _child: ChildGuard,
    endpoint: String,
}

impl Moto {
    /// Starts moto's server, installing it first with `scripts/fetch-moto.sh` when
    /// `target/moto/` does not hold it yet, and waits (up to a minute, else panics) until it
    /// answers.
    pub fn start() -> Moto {
        static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let executable = {
            let _one_at_a_time = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
            let output = Command::new(root.join("scripts/fetch-moto.sh"))
                .stderr(Stdio::inherit())
                .output()
                .expect("scripts/fetch-moto.sh runs");
            assert!(output.status.success(), "scripts/fetch-moto.sh failed");
            root.join(String::from_utf8(output.stdout).unwrap().trim())
        };
        let port = free_port();
        let child = Command::new(executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let child = ChildGuard(child);
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_until_listening(address, Duration::from_secs(60));
        Moto {
            _child: child,
            endpoint: format!("http://{address}"),
        }
    }

    /// The endpoint URL of every service it serves (`AWS_ENDPOINT_URL`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }
}

/// A fresh path for `name` in this process's scratch directory (under the system temp
/// directory), unique across calls.
pub fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("tenant-router-testkit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{n}-{name}"))
}

/// A function written as a shell script: `#!/bin/sh`, then `body`, in a fresh [`scratch`] path,
/// mode 755.
pub fn script(name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// A function written as a shell script on the Runtime API: for each invocation it runs
/// `reply` (shell code) with `$headers` (the `next` response's headers), `header NAME`
/// (one of them, lowercase name), `$id` (the request id) and `$event` (a file holding the
/// payload) set, and posts what `reply` prints to `$api/$id/response`, or to `$api/$id/error`
/// when `reply` sets `outcome=error`. It ends when the Runtime API goes away.
pub fn runtime_function(name: &str, reply: &str) -> PathBuf {
    script(
        name,
        &format!(
            r#"api="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime/invocation"
event=$(mktemp)
header() {{ echo "$headers" | awk -F': ' -v h="$1" 'tolower($1)==h {{print $2}}'; }}
while true; do
  headers=$(curl -sS -f -D - -o "$event" "$api/next") || exit 0
  headers=$(echo "$headers" | tr -d '\r')
  id=$(header lambda-runtime-aws-request-id)
  outcome=response
  {{ {reply}
  }} >"$event.reply"
  curl -sS -X POST --data-binary @"$event.reply" "$api/$id/$outcome" >/dev/null
done"#
        ),
    )
}

/// A function written in Python (`python3` on `PATH`) on the Runtime API, for event source
/// mapping tests. `rule` is Python code defining `rule(records)`, called once per batch with one
/// dict per record — `id` (SQS message id or stream sequence number), `name` (the SQS body, the
/// Kinesis data as text, or the DynamoDB item's `pk`), `count` (SQS receive count), `group` (FIFO
/// message group), `seen` (earlier deliveries of that name) — and returning the answer (raising
/// fails the invocation). Every batch is appended to the file named by the function's
/// `EVENTS_LOG` variable as a JSON line: `start`, `end` (epoch seconds), `records`, `outcome`.
pub fn python_function(name: &str, rule: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = scratch(name);
    let script = format!(
        r#"#!/usr/bin/env python3
import base64, json, os, time, urllib.request
API = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
LOG = os.environ["EVENTS_LOG"]

def earlier(name):
    if not os.path.exists(LOG):
        return 0
    with open(LOG) as f:
        return sum(1 for line in f for r in json.loads(line)["records"] if r["name"] == name)

def describe(r):
    if "messageId" in r:
        a = r["attributes"]
        return dict(id=r["messageId"], name=r["body"], count=int(a["ApproximateReceiveCount"]),
                    group=a.get("MessageGroupId"))
    if "kinesis" in r:
        k = r["kinesis"]
        return dict(id=k["sequenceNumber"], name=base64.b64decode(k["data"]).decode(), count=None, group=None)
    d = r["dynamodb"]
    return dict(id=d["SequenceNumber"], name=d["NewImage"]["pk"]["S"], count=None, group=None)

{rule}

while True:
    try:
        with urllib.request.urlopen(API + "next") as answer:
            request_id = answer.headers["Lambda-Runtime-Aws-Request-Id"]
            event = json.loads(answer.read())
    except Exception:
        break
    start = time.time()
    records = [describe(r) for r in event["Records"]]
    for r in records:
        r["seen"] = earlier(r["name"])
    try:
        body, path, outcome = rule(records), "/response", "answered"
    except Exception as e:
        body, path, outcome = dict(errorType=type(e).__name__, errorMessage=str(e)), "/error", "error"
    with open(LOG, "a") as f:
        f.write(json.dumps(dict(start=start, end=time.time(), records=records, outcome=outcome, answer=body)) + "\n")
    request = urllib.request.Request(API + request_id + path, data=json.dumps(body).encode(), method="POST")
    urllib.request.urlopen(request).read()
"#
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// The envelope the backend accepts, for `tenant`, record `id` and `payload`: version 1 from
/// SQS ([`QUEUE_ARN`]), idempotency key `<arn>#<id>`, arrived 2026-01-01T00:00:00.000Z,
/// correlation id `corr-<id>`.
pub fn envelope(tenant: &str, id: &str, payload: Value) -> Value {
    json!({
        "version": 1, "tenantId": tenant, "source": "sqs", "eventSourceArn": QUEUE_ARN,
        "id": id, "idempotencyKey": format!("{QUEUE_ARN}#{id}"),
        "arrivedAt": "2026-01-01T00:00:00.000Z", "correlationId": format!("corr-{id}"),
        "payload": payload
    })
}
