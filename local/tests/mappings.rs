//! Event source mappings against a real AWS-API server (moto's, started here): SQS standard and
//! FIFO, Kinesis and DynamoDB Streams, each with the semantics Lambda documents, seen from the
//! function (a Python Runtime-API process that logs every batch it gets) and from the sources.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use local::config::Config;
use local::esm::Clients;
use local::run::Running;
use serde_json::Value;
use testkit::Moto;

const ACCOUNT: &str = "123456789012";

fn clients(moto: &Moto) -> Clients {
    Clients {
        sqs: testkit::sqs_client(moto.endpoint()),
        kinesis: testkit::kinesis_client(moto.endpoint()),
        dynamodb: testkit::dynamodb_client(moto.endpoint()),
        streams: testkit::streams_client(moto.endpoint()),
    }
}

/// Starts the stand-in with one function running `rule` and the given mapping tables.
///
/// Queue mappings poll with one poller here: moto's server does not serialise concurrent
/// receives, so two pollers can be handed the same message at once — a duplicate AWS allows for
/// standard queues but rarely produces, which would make exact delivery counts flaky.
async fn start(moto: &Moto, rule: &str, mappings: &str) -> (Running, PathBuf) {
    let function = testkit::python_function("function.py", rule);
    let events = testkit::scratch("events.jsonl");
    let text = format!(
        r#"
        [service]
        listen = "127.0.0.1:0"
        [[functions]]
        name = "function"
        executable = "{}"
        timeout_seconds = 30
        environment = {{ EVENTS_LOG = "{}" }}
        {mappings}
        "#,
        function.display(),
        events.display()
    );
    let mut config =
        Config::parse(&text, Path::new("/"), &|_| None).expect("the configuration reads");
    for mapping in &mut config.mappings {
        mapping.pollers = 1;
    }
    let running = Running::start_with(config, clients(moto))
        .await
        .expect("it starts");
    (running, events)
}

/// Every batch the function got, in order.
fn batches(events: &Path) -> Vec<Value> {
    std::fs::read_to_string(events)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The names of a batch's records.
fn names(batch: &Value) -> Vec<String> {
    batch["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect()
}

/// How many times each name was delivered.
fn deliveries(events: &Path) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for batch in batches(events) {
        for name in names(&batch) {
            *counts.entry(name).or_default() += 1;
        }
    }
    counts
}

/// Creates the queue `name`; returns its URL and ARN.
async fn create_queue(
    sqs: &aws_sdk_sqs::Client,
    name: &str,
    attributes: &[(&str, String)],
) -> (String, String) {
    let url = testkit::create_queue(sqs, name, attributes).await.unwrap();
    (url, format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}"))
}

async fn messages_left(sqs: &aws_sdk_sqs::Client, url: &str) -> usize {
    testkit::messages_left(sqs, url).await.unwrap()
}

async fn wait_until<F: AsyncFnMut() -> bool>(what: &str, timeout: Duration, mut done: F) {
    let started = Instant::now();
    while !done().await {
        assert!(
            started.elapsed() < timeout,
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_redelivers_only_the_reported_messages_which_then_succeed_or_reach_the_dlq() {
    let moto = Moto::start();
    let sqs = testkit::sqs_client(moto.endpoint());
    let (dlq_url, dlq_arn) = create_queue(&sqs, "orders-dlq", &[]).await;
    let redrive = format!(r#"{{"deadLetterTargetArn":"{dlq_arn}","maxReceiveCount":"2"}}"#);
    let (url, arn) = create_queue(
        &sqs,
        "orders",
        // Longer than gathering and processing a batch takes, as AWS advises.
        &[
            ("VisibilityTimeout", "3".into()),
            ("RedrivePolicy", redrive),
        ],
    )
    .await;
    let bodies = ["ok-1", "ok-2", "ok-3", "ok-4", "ok-5", "flaky", "bad"];
    for body in bodies {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    // `flaky` fails on its first delivery only, `bad` on every one.
    let rule = r#"
def rule(records):
    failed = [r for r in records if r["name"] == "bad" or (r["name"] == "flaky" and r["count"] == 1)]
    return {"batchItemFailures": [{"itemIdentifier": r["id"]} for r in failed]}
"#;
    let mapping = format!(
        r#"[[mappings]]
        function = "function"
        event_source_arn = "{arn}"
        batch_size = 10
        maximum_batching_window_seconds = 0
        function_response_types = ["ReportBatchItemFailures"]"#
    );
    let (running, events) = start(&moto, rule, &mapping).await;
    wait_until("the queue is empty", Duration::from_secs(60), async || {
        messages_left(&sqs, &url).await == 0
    })
    .await;
    let log = running.mapping_log();
    running.stop().await;

    let counts = deliveries(&events);
    for ok in &bodies[..5] {
        assert_eq!(
            counts[*ok], 1,
            "{ok} succeeded the first time and was deleted, never redelivered: {counts:?}"
        );
    }
    assert_eq!(
        counts["flaky"], 2,
        "the reported message came back once, then succeeded"
    );
    assert_eq!(
        counts["bad"], 2,
        "the poison message was received maxReceiveCount (2) times"
    );
    assert_eq!(
        testkit::drain_queue(&sqs, &dlq_url).await.unwrap(),
        ["bad"],
        "then the queue moved it to its DLQ"
    );
    let partial = log
        .events()
        .iter()
        .filter(|e| e.result == "partial")
        .count();
    assert!(
        partial >= 2,
        "the mapping log has the partial batches: {:?}",
        log.events()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqs_function_errors_and_invalid_answers_fail_the_whole_batch() {
    let moto = Moto::start();
    let sqs = testkit::sqs_client(moto.endpoint());
    let (url, arn) = create_queue(&sqs, "jobs", &[("VisibilityTimeout", "3".into())]).await;
    for body in ["a", "b", "c"] {
        sqs.send_message()
            .queue_url(&url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
    // First delivery: the function fails; second: it names a record that is not in the batch
    // (an invalid answer); third: it succeeds.
    let rule = r#"
def rule(records):
    first = min(r["count"] for r in records)
    if first == 1:
        raise RuntimeError("boom")
    if first == 2:
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    return {"batchItemFailures": []}
"#;
    let mapping = format!(
        r#"[[mappings]]
        function = "function"
        event_source_arn = "{arn}"
        maximum_batching_window_seconds = 0
        function_response_types = ["ReportBatchItemFailures"]"#
    );
    let (running, events) = start(&moto, rule, &mapping).await;
    wait_until("the queue is empty", Duration::from_secs(60), async || {
        messages_left(&sqs, &url).await == 0
    })
    .await;
    running.stop().await;
    let counts = deliveries(&events);
    assert_eq!(
        counts,
        BTreeMap::from([("a".into(), 3), ("b".into(), 3), ("c".into(), 3)]),
        "an error and an invalid answer each failed every message of the batch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_groups_arrive_in_order_and_a_reported_message_comes_back_before_the_queue_is_done() {
    let moto = Moto::start();
    let sqs = testkit::sqs_client(moto.endpoint());
    let (url, arn) = create_queue(
        &sqs,
        "orders.fifo",
        &[
            ("FifoQueue", "true".into()),
            ("ContentBasedDeduplication", "true".into()),
            ("VisibilityTimeout", "3".into()),
        ],
    )
    .await;
    for i in 0..5 {
        for group in ["g1", "g2", "g3"] {
            sqs.send_message()
                .queue_url(&url)
                .message_body(format!("{group}-{i}"))
                .message_group_id(group)
                .send()
                .await
                .unwrap();
        }
    }
    // g2-4, the last of its group, fails on its first delivery; as a FIFO consumer must, the
    // function would also report every later message of its group in the batch. (With an
    // earlier message failing, two of a group wait out their visibility timeout, and moto
    // 5.2.5 may hand the later one out first: its pending-group bookkeeping is updated message
    // by message. AWS keeps the group's order; see the README, "Against moto".)
    let rule = r#"
import time
def rule(records):
    time.sleep(0.1)
    failed, stopped = [], set()
    for r in records:
        if r["group"] in stopped or (r["name"] == "g2-4" and r["count"] == 1):
            stopped.add(r["group"])
            failed.append({"itemIdentifier": r["id"]})
    return {"batchItemFailures": failed}
"#;
    let mapping = format!(
        r#"[[mappings]]
        function = "function"
        event_source_arn = "{arn}"
        batch_size = 4
        function_response_types = ["ReportBatchItemFailures"]"#
    );
    let (running, events) = start(&moto, rule, &mapping).await;
    wait_until("the queue is empty", Duration::from_secs(60), async || {
        messages_left(&sqs, &url).await == 0
    })
    .await;
    running.stop().await;

    let batches = batches(&events);
    let mut processed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for batch in &batches {
        let failed: Vec<&str> = batch["answer"]["batchItemFailures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["itemIdentifier"].as_str().unwrap())
            .collect();
        for record in batch["records"].as_array().unwrap() {
            if !failed.contains(&record["id"].as_str().unwrap()) {
                let group = record["group"].as_str().unwrap().to_owned();
                processed
                    .entry(group)
                    .or_default()
                    .push(record["name"].as_str().unwrap().to_owned());
            }
        }
    }
    for group in ["g1", "g2", "g3"] {
        let expected: Vec<String> = (0..5).map(|i| format!("{group}-{i}")).collect();
        assert_eq!(
            processed[group],
            expected,
            "group {group} was processed in order, each message once; batches: {}",
            batches
                .iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    assert_eq!(
        deliveries(&events)["g2-4"],
        2,
        "the reported message came back"
    );
}

async fn put_kinesis(kinesis: &aws_sdk_kinesis::Client, arn: &str, names: &[&str]) -> Vec<String> {
    let mut sequences = Vec::new();
    for name in names {
        let put = kinesis
            .put_record()
            .stream_arn(arn)
            .partition_key("one-key")
            .data(aws_sdk_kinesis::primitives::Blob::new(name.as_bytes()))
            .send()
            .await
            .unwrap();
        sequences.push(put.sequence_number);
    }
    sequences
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinesis_retries_from_the_lowest_reported_sequence_number_bisects_and_sends_what_it_gives_up_to_the_destination()
 {
    let moto = Moto::start();
    let sqs = testkit::sqs_client(moto.endpoint());
    let kinesis = testkit::kinesis_client(moto.endpoint());
    for name in ["partial", "poison"] {
        kinesis
            .create_stream()
            .stream_name(name)
            .shard_count(1)
            .send()
            .await
            .unwrap();
    }
    let arn = |name: &str| format!("arn:aws:kinesis:us-east-1:{ACCOUNT}:stream/{name}");
    let (failures_url, failures_arn) = create_queue(&sqs, "stream-failures", &[]).await;
    let partial = put_kinesis(
        &kinesis,
        &arn("partial"),
        &["r0", "r1", "r2", "r3", "r4", "r5"],
    )
    .await;
    let poison = put_kinesis(&kinesis, &arn("poison"), &["p0", "p1", "p2", "p3"]).await;
    // On "partial", r4 and r3 are reported the first time they are seen (the lowest is r3); on
    // "poison", any batch holding p2 fails as a whole.
    let rule = r#"
def rule(records):
    names = [r["name"] for r in records]
    if "p2" in names:
        raise RuntimeError("poison")
    failed = [r for r in records if r["name"] in ("r4", "r3") and r["seen"] == 0]
    return {"batchItemFailures": [{"itemIdentifier": r["id"]} for r in failed]}
"#;
    let mapping = format!(
        r#"[[mappings]]
        function = "function"
        event_source_arn = "{}"
        starting_position = "TRIM_HORIZON"
        maximum_batching_window_seconds = 1
        function_response_types = ["ReportBatchItemFailures"]
        [[mappings]]
        function = "function"
        event_source_arn = "{}"
        starting_position = "TRIM_HORIZON"
        maximum_batching_window_seconds = 1
        function_response_types = ["ReportBatchItemFailures"]
        bisect_batch_on_function_error = true
        maximum_retry_attempts = 2
        on_failure = "{failures_arn}""#,
        arn("partial"),
        arn("poison")
    );
    let (running, events) = start(&moto, rule, &mapping).await;
    wait_until(
        "both streams are settled",
        Duration::from_secs(60),
        async || {
            let counts = deliveries(&events);
            counts.get("r5") == Some(&2)
                && counts.get("p3").is_some_and(|n| *n >= 3)
                && messages_left(&sqs, &failures_url).await == 1
        },
    )
    .await;
    let log = running.mapping_log();
    running.stop().await;

    let batches = batches(&events);
    let of = |prefix: char| -> Vec<Vec<String>> {
        batches
            .iter()
            .map(names)
            .filter(|n| n[0].starts_with(prefix))
            .collect()
    };
    assert_eq!(
        of('r'),
        [
            vec!["r0", "r1", "r2", "r3", "r4", "r5"],
            vec!["r3", "r4", "r5"]
        ],
        "the batch was retried from the lowest reported sequence number on, exactly"
    );
    assert_eq!(
        of('p'),
        [
            vec!["p0", "p1", "p2", "p3"],
            vec!["p0", "p1"],
            vec!["p2", "p3"],
            vec!["p2"],
            vec!["p2"],
            vec!["p2"],
            vec!["p3"],
        ],
        "a failing batch was split in two until the poison record stood alone (splits are not retries), \
         then it was retried twice, the limit"
    );
    let sent = testkit::drain_queue(&sqs, &failures_url).await.unwrap();
    let record: Value = serde_json::from_str(&sent[0]).unwrap();
    assert_eq!(
        record["requestContext"]["condition"],
        "RetryAttemptsExhausted"
    );
    let info = &record["KinesisBatchInfo"];
    assert_eq!(info["batchSize"], 1);
    assert_eq!(info["startSequenceNumber"], poison[2].as_str());
    assert_eq!(info["endSequenceNumber"], poison[2].as_str());
    assert_eq!(info["streamArn"], arn("poison"));
    assert_eq!(info["shardId"], "shardId-000000000000");
    assert_eq!(partial.len(), 6);
    let discarded: Vec<_> = log
        .events()
        .into_iter()
        .filter(|e| e.event == "discarded")
        .collect();
    assert_eq!(discarded.len(), 1);
    assert_eq!(discarded[0].records, [poison[2].clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_streams_retry_from_the_lowest_reported_sequence_number() {
    use aws_sdk_dynamodb::types::AttributeValue;
    let moto = Moto::start();
    let dynamodb = testkit::dynamodb_client(moto.endpoint());
    testkit::create_table_with_stream(&dynamodb, "todos").await;
    for i in 0..6 {
        dynamodb
            .put_item()
            .table_name("todos")
            .item("pk", AttributeValue::S(format!("i{i}")))
            .item("title", AttributeValue::S(format!("item {i}")))
            .send()
            .await
            .unwrap();
    }
    let rule = r#"
def rule(records):
    failed = [r for r in records if r["name"] in ("i4", "i2") and r["seen"] == 0]
    return {"batchItemFailures": [{"itemIdentifier": r["id"]} for r in failed]}
"#;
    // The table's ARN: the mapping reads its latest stream.
    let mapping = format!(
        r#"[[mappings]]
        function = "function"
        event_source_arn = "arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/todos"
        starting_position = "TRIM_HORIZON"
        maximum_batching_window_seconds = 1
        function_response_types = ["ReportBatchItemFailures"]"#
    );
    let (running, events) = start(&moto, rule, &mapping).await;
    wait_until(
        "the stream is settled",
        Duration::from_secs(60),
        async || deliveries(&events).get("i5") == Some(&2),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    running.stop().await;
    let batches: Vec<Vec<String>> = batches(&events).iter().map(names).collect();
    assert_eq!(
        batches,
        [
            vec!["i0", "i1", "i2", "i3", "i4", "i5"],
            vec!["i2", "i3", "i4", "i5"]
        ],
        "redelivered exactly from the lowest reported sequence number on"
    );
    let first = &self::batches(&events)[0]["records"][0];
    assert!(
        first["id"]
            .as_str()
            .unwrap()
            .chars()
            .all(|c| c.is_ascii_digit()),
        "sequence numbers are the item identifiers"
    );
}
