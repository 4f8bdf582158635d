//! Test support shared by the fixture generator, the cross-crate tests, the benchmarks and the
//! local demo: the TEST-ONLY signing keys and their JWKS, token forging, and builders for SQS
//! records and events in the shape AWS delivers
//! (`tests/fixtures/upstream/aws-lambda-developer-guide--sqs-record.json`).
//!
//! Every key here is public and for tests only.

pub mod fairness;
pub mod whole_system;

use std::collections::HashMap;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// `SentTimestamp` of every recorded fixture: 2026-01-01T00:00:00Z. Tokens are judged at this
/// time, so the fixtures stay valid forever although their tokens have long expired.
pub const T0_MS: i64 = 1_767_225_600_000;
/// Issuer of the test tokens.
pub const ISSUER: &str = "https://issuer.tenant-router.test";
/// Audience of the test tokens.
pub const AUDIENCE: &str = "tenant-router";
/// ARN of the standard test queue.
pub const QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:tenant-events";
/// ARN of the FIFO test queue.
pub const FIFO_QUEUE_ARN: &str = "arn:aws:sqs:us-east-1:123456789012:tenant-events.fifo";

/// Directory holding the recorded fixtures (`tests/fixtures`).
pub fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The TEST-ONLY signing keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestKey {
    /// RSA 2048, published as RS256.
    Rs256,
    /// P-256, ES256.
    Es256,
    /// P-384, ES384.
    Es384,
    /// Ed25519, EdDSA.
    EdDsa,
    /// RSA 2048 that is NOT in the JWKS (an unknown `kid`).
    Unpublished,
}

impl TestKey {
    /// Every key that is in the published JWKS.
    pub const PUBLISHED: [TestKey; 4] = [
        TestKey::Rs256,
        TestKey::Es256,
        TestKey::Es384,
        TestKey::EdDsa,
    ];

    /// The key's `kid`.
    pub fn kid(self) -> &'static str {
        match self {
            TestKey::Rs256 => "test-rs256",
            TestKey::Es256 => "test-es256",
            TestKey::Es384 => "test-es384",
            TestKey::EdDsa => "test-eddsa",
            TestKey::Unpublished => "test-unpublished",
        }
    }

    /// The algorithm it signs with.
    pub fn algorithm(self) -> Algorithm {
        match self {
            TestKey::Rs256 | TestKey::Unpublished => Algorithm::RS256,
            TestKey::Es256 => Algorithm::ES256,
            TestKey::Es384 => Algorithm::ES384,
            TestKey::EdDsa => Algorithm::EdDSA,
        }
    }

    fn file(self) -> &'static str {
        match self {
            TestKey::Rs256 => "TEST-ONLY-rsa.pem",
            TestKey::Es256 => "TEST-ONLY-ec256.pem",
            TestKey::Es384 => "TEST-ONLY-ec384.pem",
            TestKey::EdDsa => "TEST-ONLY-ed25519.pem",
            TestKey::Unpublished => "TEST-ONLY-rsa-unpublished.pem",
        }
    }

    /// The private key.
    pub fn encoding_key(self) -> EncodingKey {
        let pem = std::fs::read(fixtures_dir().join("keys").join(self.file()))
            .expect("the TEST-ONLY keys are in tests/fixtures/keys");
        match self {
            TestKey::Rs256 | TestKey::Unpublished => EncodingKey::from_rsa_pem(&pem),
            TestKey::Es256 | TestKey::Es384 => EncodingKey::from_ec_pem(&pem),
            TestKey::EdDsa => EncodingKey::from_ed_pem(&pem),
        }
        .expect("a valid TEST-ONLY key")
    }

    /// The public key as a JWK with `kid`, `alg` and `use`.
    pub fn public_jwk(self) -> Jwk {
        let mut jwk =
            Jwk::from_encoding_key(&self.encoding_key(), self.algorithm()).expect("a public JWK");
        jwk.common.key_id = Some(self.kid().to_owned());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match self.algorithm() {
            Algorithm::RS256 => KeyAlgorithm::RS256,
            Algorithm::ES256 => KeyAlgorithm::ES256,
            Algorithm::ES384 => KeyAlgorithm::ES384,
            _ => KeyAlgorithm::EdDSA,
        });
        jwk
    }
}

/// The published test JWKS (the four published keys).
pub fn jwks() -> JwkSet {
    JwkSet {
        keys: TestKey::PUBLISHED.iter().map(|k| k.public_jwk()).collect(),
    }
}

/// Claims of a valid token for `tenant`, issued at [`T0_MS`] minus a minute, valid for an hour.
pub fn claims(tenant: &str) -> Value {
    claims_at(tenant, T0_MS / 1000)
}

/// Claims of a token for `tenant` valid at `seconds` (epoch): issued a minute before, valid for
/// an hour.
pub fn claims_at(tenant: &str, seconds: i64) -> Value {
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": format!("service:{tenant}"),
        "tenant_id": tenant,
        "iat": seconds - 60,
        "exp": seconds + 3600,
    })
}

/// Signs `claims` with `key` (header: `alg`, `kid`, `typ: JWT`).
pub fn sign(key: TestKey, claims: &Value) -> String {
    let mut header = Header::new(key.algorithm());
    header.kid = Some(key.kid().to_owned());
    jsonwebtoken::encode(&header, claims, &key.encoding_key()).expect("signing works")
}

/// An unsigned token (`alg: none`) naming a published `kid`.
pub fn forge_alg_none(claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": TestKey::Rs256.kid()});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    )
}

/// The classic key-confusion forgery: HS256 with the RSA *public* key as the HMAC secret.
pub fn forge_hs256_with_rsa_public_key(claims: &Value) -> String {
    let public_pem = std::fs::read(fixtures_dir().join("keys/TEST-ONLY-rsa.pub.pem"))
        .expect("the TEST-ONLY public key");
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(TestKey::Rs256.kid().to_owned());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(&public_pem))
        .expect("signing works")
}

/// An SQS record as the ESM delivers it.
pub fn sqs_record(message_id: &str, body: &str, sent_ms: i64) -> Value {
    json!({
        "messageId": message_id,
        "receiptHandle": format!("rh-{message_id}"),
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": sent_ms.to_string(),
            "SenderId": "123456789012",
            "ApproximateFirstReceiveTimestamp": (sent_ms + 5).to_string()
        },
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": QUEUE_ARN,
        "awsRegion": "us-east-1"
    })
}

/// Makes an SQS record a FIFO record of `group` with sequence number `sequence`.
pub fn into_fifo(mut record: Value, group: &str, sequence: u64) -> Value {
    let attributes = record["attributes"].as_object_mut().expect("attributes");
    attributes.insert("MessageGroupId".into(), json!(group));
    attributes.insert("SequenceNumber".into(), json!(format!("{sequence:020}")));
    attributes.insert(
        "MessageDeduplicationId".into(),
        json!(format!("dedup-{sequence}")),
    );
    record["eventSourceARN"] = json!(FIFO_QUEUE_ARN);
    record
}

/// A body with a tenant, its token and an item.
pub fn body(tenant: &str, token: &str, item: Value) -> String {
    json!({"tenantId": tenant, "tenantToken": token, "type": "todo.created", "item": item})
        .to_string()
}

/// An SQS event of `records`.
pub fn sqs_event(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

/// Router settings for the fixtures: the test JWKS inline, issuer, audience, and `backend`.
pub fn router_env() -> HashMap<String, String> {
    HashMap::from([
        ("ROUTER_BACKEND_FUNCTION".into(), "backend".into()),
        (
            "ROUTER_JWKS".into(),
            format!("file://{}", fixtures_dir().join("jwks.json").display()),
        ),
        ("ROUTER_JWT_ISSUER".into(), ISSUER.into()),
        ("ROUTER_JWT_AUDIENCE".into(), AUDIENCE.into()),
    ])
}

/// An in-process [`router::Backend`] that accepts every Invoke at once and remembers it; it can be
/// told to panic for one tenant, to test that a panic fails only that record.
#[derive(Default)]
pub struct FakeBackend {
    /// `(tenant, payload)` of every Invoke, in order.
    pub invoked: std::sync::Mutex<Vec<(String, Vec<u8>)>>,
    /// Whether to remember payloads (benchmarks turn this off).
    pub record: bool,
    /// Panic when invoked for this tenant.
    pub panic_for: Option<String>,
    /// How long each Invoke takes.
    pub latency: std::time::Duration,
    /// Invokes in flight now, and the most ever seen at once.
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// The most Invokes ever in flight at once.
    pub max_in_flight: std::sync::atomic::AtomicUsize,
}

impl FakeBackend {
    /// A backend that remembers every Invoke.
    pub fn recording() -> Self {
        Self {
            record: true,
            ..Self::default()
        }
    }
}

impl router::Backend for FakeBackend {
    async fn invoke(
        &self,
        request: router::InvokeRequest<'_>,
    ) -> Result<router::Answer, router::InvokeFailure> {
        use std::sync::atomic::Ordering;
        if self.panic_for.as_deref() == Some(request.tenant.as_str()) {
            panic!("injected panic for {}", request.tenant);
        }
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.record {
            self.invoked
                .lock()
                .expect("not poisoned")
                .push((request.tenant.to_string(), request.payload.to_vec()));
        }
        Ok(router::Answer::Queued)
    }

    fn has_quarantine(&self) -> bool {
        false
    }

    async fn quarantine(
        &self,
        _message: router::QuarantineMessage<'_>,
    ) -> Result<(), router::WriteFailure> {
        Err(router::WriteFailure::permanent("no quarantine queue"))
    }
}

/// A router over [`FakeBackend`] with the fixture settings plus `overrides`.
pub fn fake_router(
    backend: FakeBackend,
    overrides: &[(&str, &str)],
) -> router::Router<FakeBackend> {
    let mut env = router_env();
    for (k, v) in overrides {
        env.insert((*k).into(), (*v).into());
    }
    let config = router::Config::from_lookup(|name| env.get(name).cloned())
        .expect("valid test configuration");
    router::Router::new(config, backend).expect("the router starts")
}

/// A batch of `records` SQS records over `tenants` tenants, one token per tenant signed with
/// `key`, and `payload_bytes` of filler per record (the benchmark workload's shape).
pub fn workload(records: usize, tenants: usize, key: TestKey, payload_bytes: usize) -> String {
    let tokens: Vec<(String, String)> = (0..tenants)
        .map(|t| {
            let tenant = format!("tenant-{t:04}");
            let token = sign(key, &claims(&tenant));
            (tenant, token)
        })
        .collect();
    let filler = "x".repeat(payload_bytes);
    let batch = (0..records)
        .map(|i| {
            let (tenant, token) = &tokens[i % tenants];
            sqs_record(
                &format!("00000000-0000-0000-0000-{i:012}"),
                &body(
                    tenant,
                    token,
                    json!({"id": i, "title": format!("item {i}"), "notes": filler}),
                ),
                T0_MS,
            )
        })
        .collect();
    sqs_event(batch).to_string()
}

/// Writes `batches` SQS events of `per_batch` records over `tenants` tenants ([`workload`], ES256,
/// `payload_bytes` of filler) to fresh scratch files, record ids unique across the files
/// (`b<batch>-<id>`).
pub fn workload_files(
    batches: usize,
    per_batch: usize,
    tenants: usize,
    payload_bytes: usize,
) -> Vec<std::path::PathBuf> {
    (0..batches)
        .map(|b| {
            let mut event: Value =
                serde_json::from_str(&workload(per_batch, tenants, TestKey::Es256, payload_bytes))
                    .expect("a workload");
            for record in event["Records"].as_array_mut().expect("records") {
                let id = format!("b{b}-{}", record["messageId"].as_str().expect("an id"));
                record["messageId"] = json!(id);
            }
            let path = testkit::scratch(&format!("batch-{b}.json"));
            std::fs::write(&path, event.to_string()).expect("a scratch file");
            path
        })
        .collect()
}

/// ARN of the test Kinesis stream.
pub const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/tenant-events";
/// ARN of the test DynamoDB table's stream.
pub const TABLE_STREAM_ARN: &str =
    "arn:aws:dynamodb:us-east-1:123456789012:table/tenant-items/stream/2026-01-01T00:00:00.000";

/// A Kinesis record as the ESM delivers it (shape of
/// `aws-lambda-rust-runtime--example-kinesis-event.json`), arrived at [`T0_MS`].
pub fn kinesis_record(sequence: &str, partition_key: &str, data: &[u8]) -> Value {
    json!({
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": partition_key,
            "sequenceNumber": sequence,
            "data": base64::engine::general_purpose::STANDARD.encode(data),
            "approximateArrivalTimestamp": T0_MS as f64 / 1000.0 + 0.25,
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": format!("shardId-000000000000:{sequence}"),
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": "arn:aws:iam::123456789012:role/router",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN
    })
}

/// Plain JSON as DynamoDB attribute values (strings → S, numbers → N, booleans → BOOL, null →
/// NULL, arrays → L, objects → M).
pub fn attribute_values(value: &Value) -> Value {
    match value {
        Value::String(s) => json!({"S": s}),
        Value::Number(n) => json!({"N": n.to_string()}),
        Value::Bool(b) => json!({"BOOL": b}),
        Value::Null => json!({"NULL": true}),
        Value::Array(items) => json!({"L": items.iter().map(attribute_values).collect::<Vec<_>>()}),
        Value::Object(map) => json!({"M": map_attribute_values(map)}),
    }
}

/// An item (top-level map) as attribute values.
pub fn item_values(item: &Value) -> Value {
    map_attribute_values(item.as_object().expect("an item is an object"))
}

fn map_attribute_values(map: &serde_json::Map<String, Value>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), attribute_values(v)))
            .collect(),
    )
}

/// A DynamoDB stream record (shape of `aws-lambda-rust-runtime--example-dynamodb-event.json`),
/// created at [`T0_MS`]. Images and keys are attribute-value JSON.
pub fn dynamodb_record(
    sequence: &str,
    event_name: &str,
    keys: Value,
    new_image: Option<Value>,
    old_image: Option<Value>,
    view: &str,
) -> Value {
    let mut change = json!({
        "ApproximateCreationDateTime": T0_MS / 1000,
        "Keys": keys,
        "SequenceNumber": sequence,
        "SizeBytes": 128,
        "StreamViewType": view,
    });
    if let Some(image) = new_image {
        change["NewImage"] = image;
    }
    if let Some(image) = old_image {
        change["OldImage"] = image;
    }
    json!({
        "eventID": format!("evt-{sequence}"),
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "dynamodb": change,
        "eventSourceARN": TABLE_STREAM_ARN
    })
}

/// An EventBridge event delivered to the router directly, at [`T0_MS`].
pub fn eventbridge_event(id: &str, detail: Value) -> Value {
    json!({
        "version": "0",
        "id": id,
        "detail-type": "todo.created",
        "source": "saas.todo",
        "account": "123456789012",
        "time": "2026-01-01T00:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": detail
    })
}

/// Tokens that must each be refused, with the reason: `(case, payload tenant, token, reason)`.
/// Shared by the fixtures of every source.
pub fn token_failure_cases() -> Vec<(&'static str, String, String, &'static str)> {
    let t0 = T0_MS / 1000;
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut c = claims("acme");
        edit(&mut c);
        sign(TestKey::Es256, &c)
    };
    let long = "t".repeat(257);
    vec![
        (
            "alg-none",
            "acme".into(),
            forge_alg_none(&claims("acme")),
            "token-algorithm-refused",
        ),
        (
            "hs256-with-rsa-public-key",
            "acme".into(),
            forge_hs256_with_rsa_public_key(&claims("acme")),
            "token-algorithm-refused",
        ),
        (
            "unknown-kid",
            "acme".into(),
            sign(TestKey::Unpublished, &claims("acme")),
            "token-unknown-key",
        ),
        (
            "expired-at-arrival",
            "acme".into(),
            edited(&|c| c["exp"] = json!(t0 - 3600)),
            "token-expired",
        ),
        (
            "nbf-in-future",
            "acme".into(),
            edited(&|c| c["nbf"] = json!(t0 + 3600)),
            "token-not-yet-valid",
        ),
        (
            "string-exp",
            "acme".into(),
            edited(&|c| c["exp"] = json!((t0 + 3600).to_string())),
            "token-non-numeric-time",
        ),
        (
            "wrong-iss",
            "acme".into(),
            edited(&|c| c["iss"] = json!("https://evil.example")),
            "token-issuer",
        ),
        (
            "wrong-aud",
            "acme".into(),
            edited(&|c| c["aud"] = json!("another-service")),
            "token-audience",
        ),
        (
            "no-tenant-claim",
            "acme".into(),
            edited(&|c| {
                c.as_object_mut().unwrap().remove("tenant_id");
            }),
            "token-missing-tenant-claim",
        ),
        (
            "tenant-mismatch-case",
            "Acme".into(),
            sign(TestKey::Es256, &claims("acme")),
            "tenant-mismatch",
        ),
        (
            "tenant-trailing-space",
            "acme ".into(),
            sign(TestKey::Es256, &claims("acme")),
            "invalid-tenant-id",
        ),
        (
            "token-9kib",
            "acme".into(),
            edited(&|c| c["pad"] = json!("x".repeat(9 * 1024))),
            "token-too-large",
        ),
        (
            "tenant-257-chars",
            long.clone(),
            sign(TestKey::Es256, &claims(&long)),
            "invalid-tenant-id",
        ),
        (
            "tenant-forbidden-char",
            "acme#1".into(),
            sign(TestKey::Es256, &claims("acme#1")),
            "invalid-tenant-id",
        ),
    ]
}

/// An invocation of the router with 30 s to go and a 100 ms safety margin: the tests' usual.
pub fn info() -> router::InvocationInfo {
    info_for(std::time::Duration::from_secs(30))
}

/// An invocation of the router with `budget` to go and a 100 ms safety margin.
pub fn info_for(budget: std::time::Duration) -> router::InvocationInfo {
    router::InvocationInfo::with_budget(budget, std::time::Duration::from_millis(100))
}

/// An aws-sdk-ssm client for `endpoint` (moto's server), region `us-east-1`, test credentials.
pub fn ssm_client(endpoint: &str) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::from_conf(
        aws_sdk_ssm::config::Builder::new()
            .behavior_version(aws_sdk_ssm::config::BehaviorVersion::latest())
            .region(aws_sdk_ssm::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_ssm::config::Credentials::new(
                "test", "test", None, None, "tests",
            ))
            .endpoint_url(endpoint)
            .build(),
    )
}
