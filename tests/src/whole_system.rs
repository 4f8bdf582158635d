//! The main job as the whole system, on one machine with no AWS account: moto's AWS-API server,
//! an SQS standard queue with a dead-letter queue, a FIFO queue, a Kinesis stream and a DynamoDB
//! table with a stream; `local-lambda` (in this process, from `examples/main-job/local-lambda.toml`)
//! running the router and the tenant-isolated backend as real processes fed by four event source
//! mappings; a producer writing several tenants' to-do events into every source — forged tokens,
//! malformed bodies, and records the backend fails every time included. When every produced
//! record has reached its end, each record's fate is read back from the sources themselves:
//!
//! - processed: the backend's idempotency table (`backend#<tenant>#<arn>#<id>`, `COMPLETED`);
//! - quarantined: the router's quarantine queue;
//! - dead-lettered: the standard queue's DLQ, and the streams' on-failure queue (batch ranges);
//! - redelivered: the mapping log (records delivered more than once);
//! - environments: the stand-in's invocation log;
//! - secrets: each tenant's rules name its signing key by reference
//!   (`ssm:/tenants/<tenant>/signing-key`, in moto's SSM); the backend resolves it with the
//!   tenant's own session (`BACKEND_TENANT_ROLE_ARN`, moto's STS) and stamps each result with
//!   the key's fingerprint, read back from the idempotency table: every processed record must
//!   carry its own tenant's.
//!
//! [`run`] returns the [`Report`]; `main-job` (`./scripts/main-job.sh`) prints it and the end-to-end
//! test checks that nothing was lost.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use aws_sdk_dynamodb::types::AttributeValue;
use router::record::compare_sequence_numbers;
use serde_json::{Value, json};

use crate::{TestKey, body, claims_at, sign};

/// The account moto uses.
const ACCOUNT: &str = "123456789012";
/// The tenants (each has rules in `examples/main-job/tenants/`).
pub const TENANTS: [&str; 3] = ["acme", "globex", "initech"];
/// The row of records without a tenant.
pub const NO_TENANT: &str = "(none)";

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// The repository (for the configuration file, the JWKS and the tenants' rules).
    pub repository: PathBuf,
    /// Longest to wait for every record to reach its end.
    pub timeout: Duration,
    /// To-do events per tenant and source.
    pub per_tenant: usize,
}

/// One tenant's line of the report.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TenantRow {
    /// Records produced for it (by the tenant the record claims).
    pub produced: usize,
    /// Processed by the backend (exactly once: its idempotency table).
    pub processed: usize,
    /// Rejected by the router, with a reason, into the quarantine queue.
    pub quarantined: usize,
    /// Delivered more than once by a mapping.
    pub redelivered: usize,
    /// In the DLQ or described to the on-failure destination.
    pub dead_lettered: usize,
    /// Backend environments that served it.
    pub environments: BTreeSet<String>,
    /// The fingerprints of the signing keys its processed records were stamped with (its own
    /// only, when all is well).
    pub signed_with: BTreeSet<String>,
}

/// What the whole system did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// Per tenant ([`NO_TENANT`] for records without one).
    pub tenants: BTreeMap<String, TenantRow>,
    /// Per source: produced and accounted for.
    pub sources: BTreeMap<String, (usize, usize)>,
    /// Records that reached no end (nothing, when all is well).
    pub lost: Vec<String>,
    /// Records that reached two ends (processed and dead-lettered, say).
    pub conflicting: Vec<String>,
    /// Records the backend processed under another tenant than the one they were produced for
    /// (nothing, when all is well).
    pub crossed_over: Vec<String>,
    /// Processed records not stamped with their own tenant's signing key (nothing, when all is
    /// well).
    pub wrong_secret: Vec<String>,
    /// Each tenant's signing key fingerprint, as the driver stored the key.
    pub own_keys: BTreeMap<String, String>,
    /// The quarantine reasons seen, with counts.
    pub reasons: BTreeMap<String, usize>,
    /// Backend environments whose invocations carried more than one tenant (nothing, when all
    /// is well).
    pub shared_environments: Vec<String>,
    /// Seconds from the first record produced until everything had settled.
    pub settled_after_seconds: f64,
    /// The invocation log (for `local-lambda usage`).
    pub invocation_log: PathBuf,
}

impl Report {
    /// Whether every record reached exactly one end, none for another tenant, and no environment
    /// served two tenants.
    pub fn all_well(&self) -> bool {
        self.lost.is_empty()
            && self.conflicting.is_empty()
            && self.shared_environments.is_empty()
            && self.crossed_over.is_empty()
            && self.wrong_secret.is_empty()
    }
}

/// A record the producer wrote.
#[derive(Debug, Clone)]
struct Produced {
    /// `sqs`, `kinesis` or `dynamodb` (as the router names them).
    source: &'static str,
    /// The tenant it claims ([`NO_TENANT`] if none).
    tenant: String,
    /// A unique label (also in the body), for reports.
    label: String,
    /// Its body (SQS, Kinesis data) or partition key (DynamoDB item `pk`).
    key: String,
    /// SQS message id or stream sequence number (DynamoDB: filled in from the stream).
    id: Option<String>,
    /// The stream shard, for streams.
    shard: Option<String>,
}

impl Produced {
    fn fate_key(&self) -> Option<(String, String)> {
        self.id.clone().map(|id| (self.source.to_owned(), id))
    }
}

/// Claims of a token for `tenant`, valid now for an hour.
fn claims(tenant: &str) -> Value {
    claims_at(tenant, chrono::Utc::now().timestamp())
}

/// Claims of a token for `tenant` that expired an hour ago.
fn expired_claims(tenant: &str) -> Value {
    claims_at(tenant, chrono::Utc::now().timestamp() - 7200)
}

fn item(label: &str) -> Value {
    json!({"id": label, "title": format!("Do {label}")})
}

struct Sources {
    sqs: aws_sdk_sqs::Client,
    kinesis: aws_sdk_kinesis::Client,
    dynamodb: aws_sdk_dynamodb::Client,
    streams: aws_sdk_dynamodbstreams::Client,
    queue_url: String,
    dlq_url: String,
    fifo_url: String,
    quarantine_url: String,
    failures_url: String,
    /// Per tenant, its signing key's fingerprint.
    own_keys: BTreeMap<String, String>,
}

fn queue_arn(name: &str) -> String {
    format!("arn:aws:sqs:us-east-1:{ACCOUNT}:{name}")
}

const STREAM_ARN: &str = "arn:aws:kinesis:us-east-1:123456789012:stream/todo-stream";

/// Creates every source, destination and table.
async fn create(endpoint: &str) -> anyhow::Result<Sources> {
    let sqs = testkit::sqs_client(endpoint);
    let dlq_url = testkit::create_queue(&sqs, "todo-events-dlq", &[])
        .await
        .map_err(anyhow::Error::msg)?;
    let redrive =
        json!({"deadLetterTargetArn": queue_arn("todo-events-dlq"), "maxReceiveCount": "3"})
            .to_string();
    // Visibility timeouts outlast a batch's processing, as AWS advises.
    let queue_url = testkit::create_queue(
        &sqs,
        "todo-events",
        &[
            ("VisibilityTimeout", "5".into()),
            ("RedrivePolicy", redrive),
        ],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let fifo_url = testkit::create_queue(
        &sqs,
        "todo-events.fifo",
        &[
            ("FifoQueue", "true".into()),
            ("ContentBasedDeduplication", "true".into()),
            ("VisibilityTimeout", "5".into()),
        ],
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let quarantine_url = testkit::create_queue(&sqs, "router-quarantine", &[])
        .await
        .map_err(anyhow::Error::msg)?;
    let failures_url = testkit::create_queue(&sqs, "stream-failures", &[])
        .await
        .map_err(anyhow::Error::msg)?;
    let kinesis = testkit::kinesis_client(endpoint);
    // One shard: moto numbers records per shard from 1, so two shards would repeat sequence
    // numbers, which AWS keeps unique across a stream (and the router's idempotency keys rely on).
    kinesis
        .create_stream()
        .stream_name("todo-stream")
        .shard_count(1)
        .send()
        .await?;
    let dynamodb = testkit::dynamodb_client(endpoint);
    testkit::create_idempotency_table(&dynamodb, "idempotency").await;
    testkit::create_table_with_stream(&dynamodb, "todos").await;
    // Each tenant's signing key, by reference in its rules: a value the driver makes up now.
    let ssm = crate::ssm_client(endpoint);
    let mut own_keys = BTreeMap::new();
    for tenant in TENANTS {
        let key = format!("signing-key-of-{tenant}-{}", uuid::Uuid::new_v4());
        ssm.put_parameter()
            .name(format!("/tenants/{tenant}/signing-key"))
            .value(&key)
            .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
            .send()
            .await
            .context("the tenants' signing keys are stored in SSM")?;
        own_keys.insert(tenant.to_owned(), backend_fingerprint(&key));
    }
    Ok(Sources {
        own_keys,
        sqs,
        kinesis,
        dynamodb,
        streams: testkit::streams_client(endpoint),
        queue_url,
        dlq_url,
        fifo_url,
        quarantine_url,
        failures_url,
    })
}

/// Writes every record: per tenant `per_tenant` good to-dos into each source, plus the bad ones.
async fn produce(sources: &Sources, per_tenant: usize) -> anyhow::Result<Vec<Produced>> {
    let mut produced = Vec::new();
    let mut n = 0;
    let mut label = |what: &str| {
        n += 1;
        format!("{what}-{n}")
    };
    let token = |tenant: &str| sign(TestKey::Es256, &claims(tenant));
    // SQS standard.
    let mut bodies: Vec<(String, String)> = Vec::new();
    for tenant in TENANTS {
        for _ in 0..per_tenant {
            let l = label("sqs");
            bodies.push((tenant.into(), body(tenant, &token(tenant), item(&l))));
        }
    }
    let forged = label("sqs-forged");
    // Forged: HS256 "signed" with the RSA public key (an algorithm-confusion attack).
    let forged_token = crate::forge_hs256_with_rsa_public_key(&claims("globex"));
    bodies.push((
        "globex".into(),
        body("globex", &forged_token, item(&forged)),
    ));
    let mismatch = label("sqs-mismatch");
    bodies.push((
        "initech".into(),
        body("initech", &token("acme"), item(&mismatch)),
    ));
    bodies.push((
        NO_TENANT.into(),
        format!("not json {}", label("sqs-malformed")),
    ));
    // The backend fails an item that is not an object, every time: after three receives the
    // queue moves it to its DLQ.
    let poison = label("sqs-poison");
    bodies.push((
        "acme".into(),
        body(
            "acme",
            &token("acme"),
            json!(format!("{poison}: not an object")),
        ),
    ));
    for (tenant, body) in bodies {
        let sent = sources
            .sqs
            .send_message()
            .queue_url(&sources.queue_url)
            .message_body(&body)
            .send()
            .await?;
        produced.push(Produced {
            source: "sqs",
            tenant,
            label: body.chars().take(60).collect(),
            key: body,
            id: sent.message_id,
            shard: None,
        });
    }
    // SQS FIFO: one message group per tenant.
    for i in 0..per_tenant {
        for tenant in TENANTS {
            let l = label("fifo");
            let text = body(
                tenant,
                &token(tenant),
                json!({"id": l, "title": format!("step {i}")}),
            );
            let sent = sources
                .sqs
                .send_message()
                .queue_url(&sources.fifo_url)
                .message_body(&text)
                .message_group_id(tenant)
                .send()
                .await?;
            produced.push(Produced {
                source: "sqs",
                tenant: tenant.into(),
                label: l,
                key: text,
                id: sent.message_id,
                shard: None,
            });
        }
    }
    // Kinesis: the tenant is the partition key; the poison record goes last, so that only it
    // is left behind when its retries run out.
    let mut records: Vec<(String, String)> = Vec::new();
    for tenant in TENANTS {
        for _ in 0..per_tenant {
            let l = label("kinesis");
            records.push((tenant.into(), body(tenant, &token(tenant), item(&l))));
        }
    }
    let expired = label("kinesis-expired");
    records.push((
        "acme".into(),
        body(
            "acme",
            &sign(TestKey::Rs256, &expired_claims("acme")),
            item(&expired),
        ),
    ));
    let poison = label("kinesis-poison");
    records.push((
        "globex".into(),
        body("globex", &token("globex"), json!([poison, "not an object"])),
    ));
    for (tenant, data) in records {
        let put = sources
            .kinesis
            .put_record()
            .stream_arn(STREAM_ARN)
            .partition_key(&tenant)
            .data(aws_sdk_kinesis::primitives::Blob::new(data.as_bytes()))
            .send()
            .await?;
        produced.push(Produced {
            source: "kinesis",
            tenant,
            label: data.chars().take(60).collect(),
            key: data,
            id: Some(put.sequence_number),
            shard: Some(put.shard_id),
        });
    }
    // DynamoDB: each to-do an item, its change a stream record.
    let mut items: Vec<(String, HashMap<String, AttributeValue>)> = Vec::new();
    let s = |v: &str| AttributeValue::S(v.to_owned());
    for tenant in TENANTS {
        for _ in 0..per_tenant {
            let l = label("dynamodb");
            let todo = HashMap::from([
                ("id".to_owned(), s(&l)),
                ("title".to_owned(), s(&format!("Do {l}"))),
            ]);
            items.push((
                tenant.into(),
                HashMap::from([
                    ("pk".to_owned(), s(&l)),
                    ("tenantId".to_owned(), s(tenant)),
                    ("tenantToken".to_owned(), s(&token(tenant))),
                    ("item".to_owned(), AttributeValue::M(todo)),
                ]),
            ));
        }
    }
    let untokened = label("dynamodb-no-token");
    items.push((
        "initech".into(),
        HashMap::from([
            ("pk".to_owned(), s(&untokened)),
            ("tenantId".to_owned(), s("initech")),
        ]),
    ));
    for (tenant, item) in items {
        let pk = match &item["pk"] {
            AttributeValue::S(pk) => pk.clone(),
            _ => unreachable!("pk is a string"),
        };
        sources
            .dynamodb
            .put_item()
            .table_name("todos")
            .set_item(Some(item))
            .send()
            .await?;
        produced.push(Produced {
            source: "dynamodb",
            tenant,
            label: pk.clone(),
            key: pk,
            id: None,
            shard: None,
        });
    }
    Ok(produced)
}

/// Fills in the DynamoDB records' sequence numbers and shards, read from the table's stream.
async fn learn_dynamodb_sequences(
    sources: &Sources,
    produced: &mut [Produced],
) -> anyhow::Result<()> {
    use aws_sdk_dynamodbstreams::types::ShardIteratorType;
    let table = sources
        .dynamodb
        .describe_table()
        .table_name("todos")
        .send()
        .await?;
    let arn = table
        .table
        .and_then(|t| t.latest_stream_arn)
        .context("the table's stream")?;
    let stream = sources
        .streams
        .describe_stream()
        .stream_arn(&arn)
        .send()
        .await?;
    let shards = stream
        .stream_description
        .and_then(|d| d.shards)
        .unwrap_or_default();
    let mut sequences = HashMap::new();
    for shard in shards {
        let shard_id = shard.shard_id.unwrap_or_default();
        let mut iterator = sources
            .streams
            .get_shard_iterator()
            .stream_arn(&arn)
            .shard_id(&shard_id)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await?
            .shard_iterator;
        while let Some(current) = iterator {
            let page = sources
                .streams
                .get_records()
                .shard_iterator(current)
                .send()
                .await?;
            let records = page.records.unwrap_or_default();
            if records.is_empty() {
                break;
            }
            for record in records {
                let Some(change) = record.dynamodb else {
                    continue;
                };
                let pk = change
                    .keys
                    .as_ref()
                    .and_then(|k| k.get("pk"))
                    .and_then(|v| v.as_s().ok())
                    .cloned();
                if let (Some(pk), Some(sequence)) = (pk, change.sequence_number) {
                    sequences.insert(pk, (sequence, shard_id.clone()));
                }
            }
            iterator = page.next_shard_iterator;
        }
    }
    for record in produced.iter_mut().filter(|p| p.source == "dynamodb") {
        if let Some((sequence, shard)) = sequences.get(&record.key) {
            record.id = Some(sequence.clone());
            record.shard = Some(shard.clone());
        }
    }
    Ok(())
}

/// The ends records have reached so far, read from the sources.
#[derive(Default)]
struct Ends {
    processed: BTreeMap<(String, String), String>,
    /// The `signedWith` of each processed record's stored result.
    signed_with: BTreeMap<(String, String), String>,
    quarantined: BTreeMap<(String, String), String>,
    dead_lettered_bodies: BTreeSet<String>,
    failure_ranges: Vec<(String, String, String, String)>,
}

fn source_of_arn(arn: &str) -> &'static str {
    match arn.split(':').nth(2) {
        Some("kinesis") => "kinesis",
        Some("dynamodb") => "dynamodb",
        _ => "sqs",
    }
}

impl Ends {
    async fn read(&mut self, sources: &Sources) -> anyhow::Result<()> {
        // Processed: the backend's idempotency records, `backend#<tenant>#<arn>#<id>`.
        let mut start = None;
        loop {
            let page = sources
                .dynamodb
                .scan()
                .table_name("idempotency")
                .set_exclusive_start_key(start)
                .send()
                .await?;
            for item in page.items() {
                let completed = item
                    .get("status")
                    .and_then(|s| s.as_s().ok())
                    .is_some_and(|s| s == "COMPLETED");
                let Some(Ok(id)) = item.get("id").map(|v| v.as_s()) else {
                    continue;
                };
                let mut parts = id.splitn(3, '#');
                let (_, tenant, key) = (
                    parts.next(),
                    parts.next().unwrap_or_default(),
                    parts.next().unwrap_or_default(),
                );
                if let (true, Some((arn, record))) = (completed, key.rsplit_once('#')) {
                    let fate = (source_of_arn(arn).to_owned(), record.to_owned());
                    let stamp = item
                        .get("data")
                        .and_then(|d| d.as_s().ok())
                        .and_then(|d| serde_json::from_str::<Value>(d).ok())
                        .and_then(|d| d["result"]["signedWith"].as_str().map(str::to_owned));
                    if let Some(stamp) = stamp {
                        self.signed_with.insert(fate.clone(), stamp);
                    }
                    self.processed.insert(fate, tenant.to_owned());
                }
            }
            start = page.last_evaluated_key;
            if start.is_none() {
                break;
            }
        }
        let drain = |url| testkit::drain_queue(&sources.sqs, url);
        for body in drain(&sources.quarantine_url)
            .await
            .map_err(anyhow::Error::msg)?
        {
            let message: Value = serde_json::from_str(&body)?;
            let key = (
                message["source"].as_str().unwrap_or_default().to_owned(),
                message["recordId"].as_str().unwrap_or_default().to_owned(),
            );
            self.quarantined.insert(
                key,
                message["reason"].as_str().unwrap_or_default().to_owned(),
            );
        }
        let dead = drain(&sources.dlq_url).await.map_err(anyhow::Error::msg)?;
        self.dead_lettered_bodies.extend(dead);
        for body in drain(&sources.failures_url)
            .await
            .map_err(anyhow::Error::msg)?
        {
            let record: Value = serde_json::from_str(&body)?;
            let info = record
                .get("KinesisBatchInfo")
                .or_else(|| record.get("DDBStreamBatchInfo"))
                .context("batch info")?;
            let text = |key: &str| info[key].as_str().unwrap_or_default().to_owned();
            self.failure_ranges.push((
                source_of_arn(&text("streamArn")).to_owned(),
                text("shardId"),
                text("startSequenceNumber"),
                text("endSequenceNumber"),
            ));
        }
        Ok(())
    }

    /// Where `record` ended, if it has.
    fn of(&self, record: &Produced) -> Vec<&'static str> {
        let mut ends = Vec::new();
        let Some(key) = record.fate_key() else {
            return ends;
        };
        if self.processed.contains_key(&key) {
            ends.push("processed");
        }
        if self.quarantined.contains_key(&key) {
            ends.push("quarantined");
        }
        let in_range = |(source, shard, start, end): &(String, String, String, String)| {
            use std::cmp::Ordering::Greater;
            source == record.source
                && Some(shard) == record.shard.as_ref()
                && compare_sequence_numbers(start, &key.1) != Greater
                && compare_sequence_numbers(&key.1, end) != Greater
        };
        if self.dead_lettered_bodies.contains(&record.key)
            || self.failure_ranges.iter().any(in_range)
        {
            ends.push("dead-lettered");
        }
        ends
    }
}

/// Runs the whole system once and reports each tenant's records.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let moto = testkit::Moto::start();
    let sources = create(moto.endpoint()).await?;
    let out = options.repository.join("target/main-job");
    std::fs::create_dir_all(&out)?;
    for file in ["invocations.jsonl", "mappings.jsonl", "environments.log"] {
        let _ = std::fs::remove_file(out.join(file));
    }
    let config_path = options
        .repository
        .join("examples/main-job/local-lambda.toml");
    let text = std::fs::read_to_string(&config_path)?;
    let (endpoint, repository, quarantine) = (
        moto.endpoint().to_owned(),
        options.repository.display().to_string(),
        sources.quarantine_url.clone(),
    );
    let variable = move |name: &str| match name {
        "MOTO_ENDPOINT" => Some(endpoint.clone()),
        "REPO" => Some(repository.clone()),
        "QUARANTINE_QUEUE_URL" => Some(quarantine.clone()),
        _ => None,
    };
    let base = config_path.parent().unwrap_or(Path::new("."));
    let config = local::config::Config::parse(&text, base, &variable)
        .map_err(|e| anyhow::anyhow!("{}: {e}", config_path.display()))?;
    let invocation_log = config.settings.log.clone().unwrap_or_default();
    let clients = local::esm::Clients {
        sqs: sources.sqs.clone(),
        kinesis: sources.kinesis.clone(),
        dynamodb: sources.dynamodb.clone(),
        streams: sources.streams.clone(),
    };
    let running = local::run::Running::start_with(config, clients).await?;

    let started = Instant::now();
    let mut produced = produce(&sources, options.per_tenant).await?;
    learn_dynamodb_sequences(&sources, &mut produced).await?;
    let mut ends = Ends::default();
    loop {
        ends.read(&sources).await?;
        if produced.iter().all(|p| !ends.of(p).is_empty()) {
            break;
        }
        if started.elapsed() > options.timeout {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settled_after_seconds = started.elapsed().as_secs_f64();
    let mapping_log = running.mapping_log();
    let entries = running.service.entries();
    running.stop().await;

    let mut deliveries: HashMap<(String, String), usize> = HashMap::new();
    for event in mapping_log
        .events()
        .iter()
        .filter(|e| e.event == "delivered")
    {
        let source = source_of_arn(&event.event_source_arn);
        for id in &event.records {
            *deliveries
                .entry((source.to_owned(), id.clone()))
                .or_default() += 1;
        }
    }
    let mut report = Report {
        settled_after_seconds,
        invocation_log,
        own_keys: sources.own_keys.clone(),
        ..Report::default()
    };
    for record in &produced {
        let row = report.tenants.entry(record.tenant.clone()).or_default();
        row.produced += 1;
        let fates = ends.of(record);
        let source = report.sources.entry(record.source.to_owned()).or_default();
        source.0 += 1;
        if !fates.is_empty() {
            source.1 += 1;
        }
        match fates.as_slice() {
            [] => report
                .lost
                .push(format!("{} {}", record.source, record.label)),
            [_, _, ..] => report
                .conflicting
                .push(format!("{} {} ({fates:?})", record.source, record.label)),
            _ => {}
        }
        for fate in fates {
            match fate {
                "processed" => row.processed += 1,
                "quarantined" => row.quarantined += 1,
                _ => row.dead_lettered += 1,
            }
        }
        if let Some(key) = record.fate_key()
            && ends.processed.contains_key(&key)
        {
            let stamp = ends.signed_with.get(&key).cloned().unwrap_or_default();
            if sources.own_keys.get(&record.tenant) != Some(&stamp) {
                report.wrong_secret.push(format!(
                    "{} {} (signed with {stamp:?})",
                    record.source, record.label
                ));
            }
            row.signed_with.insert(stamp);
        }
        if let Some(tenant) = record.fate_key().and_then(|k| ends.processed.get(&k))
            && *tenant != record.tenant
        {
            report.crossed_over.push(format!(
                "{} {} (processed for {tenant})",
                record.source, record.label
            ));
        }
        if record
            .fate_key()
            .and_then(|k| deliveries.get(&k))
            .is_some_and(|n| *n > 1)
        {
            row.redelivered += 1;
        }
    }
    for reason in ends.quarantined.values() {
        *report.reasons.entry(reason.clone()).or_default() += 1;
    }
    let mut tenants_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in entries.iter().filter(|e| e.function == "backend") {
        if let (Some(environment), Some(tenant)) = (&entry.environment_id, &entry.tenant_id) {
            tenants_of
                .entry(environment.clone())
                .or_default()
                .insert(tenant.clone());
            report
                .tenants
                .entry(tenant.clone())
                .or_default()
                .environments
                .insert(environment.clone());
        }
    }
    report.shared_environments = tenants_of
        .into_iter()
        .filter(|(_, t)| t.len() > 1)
        .map(|(e, _)| e)
        .collect();
    Ok(report)
}

/// The report as a table.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<10} {:>8} {:>9} {:>11} {:>11} {:>13}  environments\n",
        "tenant", "produced", "processed", "quarantined", "redelivered", "dead-lettered"
    ));
    for (tenant, row) in &report.tenants {
        let environments: Vec<&str> = row.environments.iter().map(String::as_str).collect();
        out.push_str(&format!(
            "{tenant:<10} {:>8} {:>9} {:>11} {:>11} {:>13}  {}\n",
            row.produced,
            row.processed,
            row.quarantined,
            row.redelivered,
            row.dead_lettered,
            if environments.is_empty() {
                "-".to_owned()
            } else {
                environments.join(" ")
            }
        ));
    }
    out.push('\n');
    for (source, (produced, ended)) in &report.sources {
        out.push_str(&format!(
            "{source:<9} {produced} produced, {ended} reached an end\n"
        ));
    }
    let reasons: Vec<String> = report
        .reasons
        .iter()
        .map(|(r, n)| format!("{r} {n}"))
        .collect();
    out.push_str(&format!("quarantine reasons: {}\n", reasons.join(", ")));
    let keys: Vec<String> = report
        .tenants
        .iter()
        .filter(|(_, row)| !row.signed_with.is_empty())
        .map(|(tenant, row)| {
            let own = report
                .own_keys
                .get(tenant)
                .is_some_and(|own| row.signed_with.len() == 1 && row.signed_with.contains(own));
            let seen: Vec<&str> = row.signed_with.iter().map(String::as_str).collect();
            format!(
                "{tenant} {} ({})",
                seen.join(" "),
                if own { "its own" } else { "NOT ITS OWN" }
            )
        })
        .collect();
    out.push_str(&format!(
        "signing key read by reference with the tenant's own session: {}\n",
        keys.join(", ")
    ));
    out.push_str(&format!(
        "settled after {:.1} s\n",
        report.settled_after_seconds
    ));
    if report.all_well() {
        out.push_str(
            "nothing lost: every record was processed once (for its own tenant, with its own secret), quarantined or \
             dead-lettered; no environment served two tenants\n",
        );
    } else {
        for lost in &report.lost {
            out.push_str(&format!("LOST: {lost}\n"));
        }
        for conflict in &report.conflicting {
            out.push_str(&format!("TWO ENDS: {conflict}\n"));
        }
        for environment in &report.shared_environments {
            out.push_str(&format!("SHARED ENVIRONMENT: {environment}\n"));
        }
        for record in &report.crossed_over {
            out.push_str(&format!("CROSSED OVER: {record}\n"));
        }
        for record in &report.wrong_secret {
            out.push_str(&format!("WRONG SECRET: {record}\n"));
        }
    }
    out
}

/// The backend's fingerprint of a signing key (`backend::fingerprint`: the first 12 hex digits of
/// its SHA-256), computed here the same way so the driver needs no dependency on the backend.
fn backend_fingerprint(secret: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, secret.as_bytes());
    digest.as_ref()[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
