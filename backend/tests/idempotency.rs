//! Exactly-once effect across execution environments: the backend (real processes under the
//! local stand-in) with `BACKEND_IDEMPOTENCY_TABLE` pointing at a real DynamoDB API — moto's
//! server, started here — through `AWS_ENDPOINT_URL_DYNAMODB`. Two stand-ins running the same
//! function are two environments of one tenant. What the handler did is read from the
//! environments' own log lines (`record processed`, `tenant handler failed`).

use std::path::PathBuf;
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use local::replay::settings_for;
use local::service::Service;
use serde_json::{Value, json};
use testkit::{Moto, create_idempotency_table, dynamodb_client, lambda_client, scratch};

const TABLE: &str = "idempotency";

/// One environment of the backend (a stand-in of its own) using the table on `moto`.
struct Environment {
    service: Arc<Service>,
    client: aws_sdk_lambda::Client,
    log: PathBuf,
}

/// Stand-in settings running the backend with its idempotency table on `dynamodb`, the
/// environments' output in `log`.
fn settings_with_table(dynamodb: &str, log: &std::path::Path) -> local::service::Settings {
    let mut settings = settings_for(PathBuf::from(env!("CARGO_BIN_EXE_backend")));
    for (name, value) in [
        ("BACKEND_IDEMPOTENCY_TABLE", TABLE),
        ("AWS_ENDPOINT_URL_DYNAMODB", dynamodb),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_REGION", "us-east-1"),
    ] {
        settings.variables.push((name.into(), value.into()));
    }
    settings.environment_output = Some(log.to_path_buf());
    settings
}

impl Environment {
    async fn start(dynamodb: &str) -> Self {
        let log = scratch("environment.log");
        let settings = settings_with_table(dynamodb, &log);
        let service = Service::new(settings).unwrap();
        let (address, _) = local::api::serve(service.clone(), "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        Self {
            service,
            client: lambda_client(&format!("http://{address}")),
            log,
        }
    }

    /// A sync Invoke for `tenant`: the function error's type, if any, and the answer.
    async fn invoke(&self, tenant: &str, payload: &Value) -> (Option<String>, Value) {
        let output = self
            .client
            .invoke()
            .function_name("backend")
            .tenant_id(tenant)
            .payload(Blob::new(payload.to_string()))
            .send()
            .await
            .unwrap();
        let answer: Value = serde_json::from_slice(output.payload().unwrap().as_ref()).unwrap();
        let error = output
            .function_error()
            .map(|_| answer["errorType"].as_str().unwrap_or_default().to_owned());
        (error, answer)
    }

    /// How many times this environment logged `message` for `record`.
    fn logged(&self, message: &str, record: &str) -> usize {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.split_once("] ").map(|(_, json)| json))
            .filter_map(|json| serde_json::from_str::<Value>(json).ok())
            .filter(|entry| entry["message"] == message && entry["record_id"] == record)
            .count()
    }
}

impl Drop for Environment {
    fn drop(&mut self) {
        self.service.pool().stop_all();
    }
}

fn envelope(tenant: &str, id: &str, item: Value) -> Value {
    testkit::envelope(tenant, id, json!({ "item": item }))
}

fn ok_item(id: &str) -> Value {
    json!({"title": format!("item {id}")})
}

/// An item the backend cannot enrich: its handler fails.
fn bad_item() -> Value {
    json!("not an item")
}

async fn table(moto: &Moto) -> aws_sdk_dynamodb::Client {
    let client = dynamodb_client(moto.endpoint());
    create_idempotency_table(&client, TABLE).await;
    client
}

fn ran(environments: &[&Environment], record: &str) -> usize {
    environments
        .iter()
        .map(|e| e.logged("record processed", record) + e.logged("tenant handler failed", record))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_record_in_two_environments_runs_once() {
    let moto = Moto::start();
    let dynamodb = table(&moto).await;
    let (a, b) = (
        Environment::start(moto.endpoint()).await,
        Environment::start(moto.endpoint()).await,
    );
    // One after the other: the second environment answers with the stored result.
    let first = a
        .invoke("acme", &envelope("acme", "e1", ok_item("e1")))
        .await;
    let second = b
        .invoke("acme", &envelope("acme", "e1", ok_item("e1")))
        .await;
    assert_eq!((first.0.as_deref(), second.0.as_deref()), (None, None));
    assert!(first.1.get("duplicate").is_none());
    assert_eq!(second.1["duplicate"], true);
    assert_eq!(second.1["result"], first.1["result"]);
    assert_eq!(ran(&[&a, &b], "e1"), 1);

    // At the same time: the handler runs once; the other answer is the stored result or "in
    // progress" (transient: redelivered later), never a second run.
    let payload = envelope("acme", "e2", ok_item("e2"));
    let (x, y) = tokio::join!(a.invoke("acme", &payload), b.invoke("acme", &payload));
    assert_eq!(ran(&[&a, &b], "e2"), 1);
    let errors: Vec<_> = [&x.0, &y.0].into_iter().flatten().collect();
    assert!(
        errors.iter().all(|e| *e == "Idempotency.InProgress"),
        "{errors:?}"
    );

    // Another tenant with the same idempotencyKey is another record.
    let other = b
        .invoke("globex", &envelope("globex", "e1", ok_item("e1")))
        .await;
    assert_eq!(other.0, None);
    assert!(other.1.get("duplicate").is_none());
    assert_eq!(ran(&[&a, &b], "e1"), 2);

    // The items are Powertools' layout, the id tenant-scoped.
    let item = dynamodb
        .get_item()
        .table_name(TABLE)
        .key(
            "id",
            AttributeValue::S("backend#acme#arn:aws:sqs:us-east-1:1:q#e1".into()),
        )
        .send()
        .await
        .unwrap()
        .item
        .expect("the item");
    assert_eq!(item["status"].as_s().unwrap(), "COMPLETED");
    assert!(item["expiration"].as_n().is_ok());
    assert!(item["in_progress_expiration"].as_n().is_ok());
    let data: Value = serde_json::from_str(item["data"].as_s().unwrap()).unwrap();
    assert_eq!(data["result"], first.1["result"]);
}

/// An environment that died between INPROGRESS and COMPLETED left its claim: until the claim's
/// `in_progress_expiration` the record fails as in progress; after it, it runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_environments_claim_holds_until_it_expires() {
    let moto = Moto::start();
    let dynamodb = table(&moto).await;
    let a = Environment::start(moto.endpoint()).await;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let claim = |until_ms: i64| {
        dynamodb
            .put_item()
            .table_name(TABLE)
            .item(
                "id",
                AttributeValue::S("backend#acme#arn:aws:sqs:us-east-1:1:q#k1".into()),
            )
            .item("status", AttributeValue::S("INPROGRESS".into()))
            .item(
                "expiration",
                AttributeValue::N((now_ms / 1000 + 3600).to_string()),
            )
            .item(
                "in_progress_expiration",
                AttributeValue::N(until_ms.to_string()),
            )
            .send()
    };
    claim(now_ms + 600_000).await.unwrap();
    let held = a
        .invoke("acme", &envelope("acme", "k1", ok_item("k1")))
        .await;
    assert_eq!(held.0.as_deref(), Some("Idempotency.InProgress"));
    assert_eq!(ran(&[&a], "k1"), 0);
    claim(now_ms - 1).await.unwrap();
    let after = a
        .invoke("acme", &envelope("acme", "k1", ok_item("k1")))
        .await;
    assert_eq!(after.0, None);
    assert_eq!(ran(&[&a], "k1"), 1);
}

/// A handler error leaves no item behind, so the retry — in another environment — runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_error_leaves_no_item_and_the_retry_runs() {
    let moto = Moto::start();
    let dynamodb = table(&moto).await;
    let (a, b) = (
        Environment::start(moto.endpoint()).await,
        Environment::start(moto.endpoint()).await,
    );
    let failing = envelope("acme", "f1", bad_item());
    let first = a.invoke("acme", &failing).await;
    assert_eq!(first.0.as_deref(), Some("Handler.Error"));
    let items = dynamodb.scan().table_name(TABLE).send().await.unwrap();
    assert_eq!(items.count(), 0, "no item left behind");
    let retry = b.invoke("acme", &failing).await;
    assert_eq!(retry.0.as_deref(), Some("Handler.Error"));
    assert_eq!(
        ran(&[&a, &b], "f1"),
        2,
        "the retry ran, not refused as in progress"
    );
}

/// A tenant batch whose third record fails, delivered again to another environment: only the
/// third record runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redelivered_tenant_batch_runs_only_its_failed_record() {
    let moto = Moto::start();
    let _dynamodb = table(&moto).await;
    let (a, b) = (
        Environment::start(moto.endpoint()).await,
        Environment::start(moto.endpoint()).await,
    );
    let batch = json!({
        "version": 1, "tenantId": "acme", "answer": "per-record",
        "records": [
            envelope("acme", "b1", ok_item("b1")),
            envelope("acme", "b2", ok_item("b2")),
            envelope("acme", "b3", bad_item()),
        ],
    });
    let statuses = |answer: &Value| -> Vec<(String, bool)> {
        answer["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["status"].as_str().unwrap().to_owned(),
                    r.get("duplicate").is_some(),
                )
            })
            .collect()
    };
    let first = a.invoke("acme", &batch).await;
    assert_eq!(first.0, None);
    let again = b.invoke("acme", &batch).await;
    assert_eq!(again.0, None);
    let expected = |duplicates: bool| {
        vec![
            ("processed".to_owned(), duplicates),
            ("processed".to_owned(), duplicates),
            ("failed".to_owned(), false),
        ]
    };
    assert_eq!(statuses(&first.1), expected(false));
    assert_eq!(statuses(&again.1), expected(true));
    assert_eq!(ran(&[&a, &b], "b1"), 1);
    assert_eq!(ran(&[&a, &b], "b2"), 1);
    assert_eq!(ran(&[&a, &b], "b3"), 2);
}

/// A store that cannot be reached fails the record (transient) and runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_fails_the_record_and_runs_nothing() {
    let closed = format!("http://127.0.0.1:{}", testkit::free_port());
    let a = Environment::start(&closed).await;
    let answer = a
        .invoke("acme", &envelope("acme", "u1", ok_item("u1")))
        .await;
    assert_eq!(answer.0.as_deref(), Some("Idempotency.StoreUnavailable"));
    assert_eq!(ran(&[&a], "u1"), 0);
}

/// End to end through the router and the stand-in, with faults injected (429 and 500 answers,
/// Lambda's async retries) and every batch delivered twice, as an event source mapping redelivers
/// a whole batch: the backend's effects — records its handler processed, in any environment —
/// equal the distinct records, each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_faults_and_redelivered_batches_each_record_takes_effect_once() {
    let moto = Moto::start();
    let _dynamodb = table(&moto).await;
    let log = scratch("environments.log");
    let mut settings = settings_with_table(moto.endpoint(), &log);
    settings.faults = local::service::Faults::parse("429:0.1,500:0.05").unwrap();
    settings.seed = 11;
    settings.async_retry_delays = [
        std::time::Duration::from_millis(20),
        std::time::Duration::from_millis(40),
    ];
    let files = cross_crate_tests::workload_files(2, 40, 4, 100);
    // Each batch twice: the second delivery is the event source mapping's redelivery.
    let delivered_twice: Vec<PathBuf> = files.iter().chain(&files).cloned().collect();
    let lookup = |name: &str| match name {
        "ROUTER_RETRY_MAX_ATTEMPTS" => Some("8".to_owned()),
        "ROUTER_RETRY_BASE_DELAY_MS" => Some("2".to_owned()),
        "ROUTER_RETRY_MAX_DELAY_MS" => Some("10".to_owned()),
        _ => None,
    };
    let (summary, service) = local::replay::replay(
        settings,
        &delivered_twice,
        std::time::Duration::from_secs(120),
        Some(local::replay::FIXTURES_RECORDED_AT_MS),
        lookup,
    )
    .await
    .unwrap();
    service.pool().stop_all();
    for (file, response) in &summary.responses {
        assert_eq!(
            response.as_ref().unwrap(),
            &json!({"batchItemFailures": []}),
            "{file:?}"
        );
    }
    let invoked: usize = summary.tenants.values().map(|t| t.routed).sum();
    assert_eq!(invoked, 160, "every record was delivered twice");
    let text = std::fs::read_to_string(&log).unwrap();
    let mut effects: std::collections::BTreeMap<String, usize> = Default::default();
    for entry in text
        .lines()
        .filter_map(|line| line.split_once("] ").map(|(_, json)| json))
        .filter_map(|json| serde_json::from_str::<Value>(json).ok())
        .filter(|entry| entry["message"] == "record processed")
    {
        *effects
            .entry(entry["record_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    assert_eq!(effects.len(), 80, "every distinct record took effect");
    assert!(
        effects.values().all(|n| *n == 1),
        "a record took effect twice: {:?}",
        effects.iter().filter(|(_, n)| **n > 1).collect::<Vec<_>>()
    );
    let environments: usize = summary.tenants.values().map(|t| t.environments.len()).sum();
    assert!(
        environments > 4,
        "more than one environment per tenant: {environments}"
    );
}

/// The store's own rules against moto's DynamoDB, with a TTL far shorter than the run: the
/// in-progress item does not expire before its claim (a second environment is kept out), and an
/// environment that outlived its claim neither completes nor releases the item of the one that
/// took the record over. (With `expiration` = now + TTL, the second claim got in; with
/// unconditional writes, the first run's result overwrote the second's claim.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_outlives_a_short_ttl_and_a_lost_claim_writes_nothing() {
    use shared::idempotency::{Claim, Completion, DynamoDbStore, IdempotencyStore};
    let moto = Moto::start();
    let dynamodb = table(&moto).await;
    let store = DynamoDbStore::new(
        dynamodb.clone(),
        TABLE.into(),
        std::time::Duration::from_secs(1),
    );
    let now_ms = chrono::Utc::now().timestamp_millis();
    let Ok(Claim::Acquired(first)) = store.claim("r1", now_ms, now_ms + 600_000).await else {
        panic!("a new record is claimed");
    };
    let item = dynamodb
        .get_item()
        .table_name(TABLE)
        .key("id", AttributeValue::S("r1".into()))
        .send()
        .await
        .unwrap()
        .item
        .unwrap();
    let expiration: i64 = item["expiration"].as_n().unwrap().parse().unwrap();
    assert!(
        expiration * 1000 >= now_ms + 600_000,
        "an in-progress item expires no earlier than its claim ({expiration})"
    );
    // Five seconds later, past the 1 s TTL: still in progress.
    assert_eq!(
        store.claim("r1", now_ms + 5_000, now_ms + 605_000).await,
        Ok(Claim::InProgress)
    );
    // Past the claim: another environment takes it over.
    let later = now_ms + 601_000;
    let Ok(Claim::Acquired(second)) = store.claim("r1", later, later + 600_000).await else {
        panic!("an expired claim is taken over");
    };
    assert_ne!(first, second);
    // The first environment's late completion and release write nothing.
    assert_eq!(
        store.complete("r1", first, &json!({"run": 1}), later).await,
        Ok(Completion::ClaimLost)
    );
    store.release("r1", first).await.unwrap();
    assert_eq!(
        store.claim("r1", later + 1, later + 600_000).await,
        Ok(Claim::InProgress),
        "the second claim still holds"
    );
    assert_eq!(
        store
            .complete("r1", second, &json!({"run": 2}), later + 2)
            .await,
        Ok(Completion::Stored)
    );
    assert_eq!(
        store.claim("r1", later + 3, later + 600_000).await,
        Ok(Claim::Completed(json!({"run": 2})))
    );
}

/// A DynamoDB API that answers a failed condition without the item (no
/// `ReturnValuesOnConditionCheckFailure` support): the store reads the item with a consistent
/// `GetItem`, as Powertools does, and answers from it; when the item is gone by then, it claims
/// once more.
#[tokio::test]
async fn a_failed_condition_without_the_item_falls_back_to_a_consistent_read() {
    use shared::idempotency::{Claim, DynamoDbStore, IdempotencyStore};
    use wiremock::matchers::{body_partial_json, header, method};
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let server = MockServer::start().await;
    let failed = ResponseTemplate::new(400).set_body_json(json!({
        "__type": "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException",
        "message": "The conditional request failed"
    }));
    Mock::given(method("POST"))
        .and(header("x-amz-target", "DynamoDB_20120810.PutItem"))
        .respond_with(failed.clone())
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "DynamoDB_20120810.GetItem"))
        .and(body_partial_json(
            json!({"ConsistentRead": true, "Key": {"id": {"S": "done"}}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Item": {
            "id": {"S": "done"}, "status": {"S": "COMPLETED"},
            "expiration": {"N": "99999999999"}, "data": {"S": "{\"n\":1}"}
        }})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "DynamoDB_20120810.GetItem"))
        .and(body_partial_json(
            json!({"ConsistentRead": true, "Key": {"id": {"S": "busy"}}}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"Item": {
            "id": {"S": "busy"}, "status": {"S": "INPROGRESS"},
            "expiration": {"N": "99999999999"}, "in_progress_expiration": {"N": "99999999999999"}
        }})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "DynamoDB_20120810.GetItem"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .mount(&server)
        .await;
    let store = DynamoDbStore::new(
        dynamodb_client(&server.uri()),
        TABLE.into(),
        std::time::Duration::from_secs(3600),
    );
    let now_ms = chrono::Utc::now().timestamp_millis();
    assert_eq!(
        store.claim("done", now_ms, now_ms + 1000).await,
        Ok(Claim::Completed(json!({"n": 1})))
    );
    assert_eq!(
        store.claim("busy", now_ms, now_ms + 1000).await,
        Ok(Claim::InProgress)
    );
    // Gone at every read: claimed twice, then the store counts as unavailable (never "run
    // anyway").
    assert!(store.claim("gone", now_ms, now_ms + 1000).await.is_err());
    let puts = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.headers.get("x-amz-target").map(|v| v.to_str().unwrap())
                == Some("DynamoDB_20120810.PutItem")
        })
        .count();
    assert_eq!(puts, 4, "one put each for done and busy, two for gone");
}
