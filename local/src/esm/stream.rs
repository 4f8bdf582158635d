//! The Kinesis and DynamoDB Streams mappings, as Lambda runs them
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-errorhandling.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html>):
//!
//! - one reader per shard, so a shard's records reach the function in order, one batch at a
//!   time (parallelization factor 1); shards are looked for again every few seconds;
//! - a batch is retried until it succeeds: on a partial batch response from the lowest reported
//!   sequence number on (the checkpoint), on a function error whole, or split in two when
//!   `bisect` is on; the shard waits meanwhile;
//! - after `max_retry_attempts` retries, or for records older than `max_record_age`, the records
//!   are discarded and the on-failure destination (an SQS queue) gets a description of them
//!   (`KinesisBatchInfo` / `DDBStreamBatchInfo`): the shard then goes on;
//! - the checkpoint is kept in memory: a restarted stand-in reads from its starting position.
//!
//! Splitting a batch does not count as a retry ("Splitting a batch does not count towards the
//! retry quota"); sending the same records again does.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodbstreams::types::AttributeValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use router::record::compare_sequence_numbers;
use serde_json::{Map, Value, json};

use super::mapping::{
    BatchResult, MappingEvent, Poller, SourceKind, StartingPosition, failure_record, queue_url,
    sdk_error,
};
use crate::service::now;

/// How often an idle shard is read again.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often the stream's shards are listed again.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5);

/// One stream record, as the function will see it.
#[derive(Debug, Clone)]
pub struct StreamRecord {
    /// Its sequence number.
    pub sequence: String,
    /// When it reached the stream, in epoch milliseconds.
    pub arrived_ms: i64,
    /// The event record handed to the function.
    pub event: Value,
}

/// A shard of the stream.
#[derive(Debug, Clone)]
struct Shard {
    id: String,
    parent: Option<String>,
}

/// Where to read a shard from.
enum Position<'a> {
    Start(StartingPosition),
    After(&'a str),
}

/// A stream's reader, for either kind.
struct Reader<'a> {
    poller: &'a Poller,
    /// The stream's ARN (a DynamoDB table's latest stream, when a table was given).
    arn: String,
}

impl Reader<'_> {
    /// The stream's shards, each with its parent (if any), every page of them.
    async fn shards(&self) -> Result<Vec<Shard>, String> {
        let clients = &self.poller.clients;
        let mut shards = Vec::new();
        match self.poller.spec.kind {
            SourceKind::Kinesis => {
                let mut token = None;
                loop {
                    let request = match &token {
                        Some(token) => clients.kinesis.list_shards().next_token(token),
                        None => clients.kinesis.list_shards().stream_arn(&self.arn),
                    };
                    let answer = request.send().await.map_err(sdk_error)?;
                    shards.extend(answer.shards().iter().map(|s| Shard {
                        id: s.shard_id().to_owned(),
                        parent: s.parent_shard_id().map(str::to_owned),
                    }));
                    token = answer.next_token;
                    if token.is_none() {
                        return Ok(shards);
                    }
                }
            }
            _ => {
                let mut after: Option<String> = None;
                loop {
                    let answer = clients
                        .streams
                        .describe_stream()
                        .stream_arn(&self.arn)
                        .set_exclusive_start_shard_id(after.take())
                        .send()
                        .await
                        .map_err(sdk_error)?;
                    let Some(description) = answer.stream_description else {
                        return Ok(shards);
                    };
                    shards.extend(description.shards().iter().filter_map(|s| {
                        Some(Shard {
                            id: s.shard_id.clone()?,
                            parent: s.parent_shard_id.clone(),
                        })
                    }));
                    after = description.last_evaluated_shard_id;
                    if after.is_none() {
                        return Ok(shards);
                    }
                }
            }
        }
    }

    async fn iterator(
        &self,
        shard: &str,
        position: Position<'_>,
    ) -> Result<Option<String>, String> {
        let clients = &self.poller.clients;
        match self.poller.spec.kind {
            SourceKind::Kinesis => {
                use aws_sdk_kinesis::types::ShardIteratorType as Type;
                let request = clients
                    .kinesis
                    .get_shard_iterator()
                    .stream_arn(&self.arn)
                    .shard_id(shard);
                let request = match position {
                    Position::Start(StartingPosition::TrimHorizon) => {
                        request.shard_iterator_type(Type::TrimHorizon)
                    }
                    Position::Start(StartingPosition::Latest) => {
                        request.shard_iterator_type(Type::Latest)
                    }
                    Position::After(sequence) => request
                        .shard_iterator_type(Type::AfterSequenceNumber)
                        .starting_sequence_number(sequence),
                };
                let answer = request.send().await.map_err(sdk_error)?;
                Ok(answer.shard_iterator)
            }
            _ => {
                use aws_sdk_dynamodbstreams::types::ShardIteratorType as Type;
                let request = clients
                    .streams
                    .get_shard_iterator()
                    .stream_arn(&self.arn)
                    .shard_id(shard);
                let request = match position {
                    Position::Start(StartingPosition::TrimHorizon) => {
                        request.shard_iterator_type(Type::TrimHorizon)
                    }
                    Position::Start(StartingPosition::Latest) => {
                        request.shard_iterator_type(Type::Latest)
                    }
                    Position::After(sequence) => request
                        .shard_iterator_type(Type::AfterSequenceNumber)
                        .sequence_number(sequence),
                };
                let answer = request.send().await.map_err(sdk_error)?;
                Ok(answer.shard_iterator)
            }
        }
    }

    /// Reads up to `limit` records; the next iterator is `None` when the shard is closed.
    async fn read(
        &self,
        shard: &str,
        iterator: &str,
        limit: usize,
    ) -> Result<(Vec<StreamRecord>, Option<String>), String> {
        let clients = &self.poller.clients;
        let region = self.poller.event_source_arn_part(3);
        match self.poller.spec.kind {
            SourceKind::Kinesis => {
                let answer = clients
                    .kinesis
                    .get_records()
                    .stream_arn(&self.arn)
                    .shard_iterator(iterator)
                    .limit(limit.min(10_000) as i32)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let records = answer
                    .records()
                    .iter()
                    .map(|r| {
                        let arrived_ms = r
                            .approximate_arrival_timestamp()
                            .and_then(|t| t.to_millis().ok())
                            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                        StreamRecord {
                            sequence: r.sequence_number().to_owned(),
                            arrived_ms,
                            event: json!({
                                "kinesis": {
                                    "kinesisSchemaVersion": "1.0",
                                    "partitionKey": r.partition_key(),
                                    "sequenceNumber": r.sequence_number(),
                                    "data": STANDARD.encode(r.data().as_ref()),
                                    "approximateArrivalTimestamp": arrived_ms as f64 / 1000.0,
                                },
                                "eventSource": "aws:kinesis",
                                "eventVersion": "1.0",
                                "eventID": format!("{shard}:{}", r.sequence_number()),
                                "eventName": "aws:kinesis:record",
                                "invokeIdentityArn": "arn:aws:iam::000000000000:role/local-lambda",
                                "awsRegion": region,
                                "eventSourceARN": self.poller.spec.event_source_arn,
                            }),
                        }
                    })
                    .collect();
                Ok((records, answer.next_shard_iterator))
            }
            _ => {
                let answer = clients
                    .streams
                    .get_records()
                    .shard_iterator(iterator)
                    .limit(limit.min(1000) as i32)
                    .send()
                    .await
                    .map_err(sdk_error)?;
                let records = answer
                    .records()
                    .iter()
                    .filter_map(|r| {
                        let change = r.dynamodb.as_ref();
                        let Some((change, sequence)) =
                            change.and_then(|c| Some((c, c.sequence_number.clone()?)))
                        else {
                            // Nothing to deliver or checkpoint: DynamoDB Streams always sets
                            // both, so this is a server's fault, said rather than hidden.
                            tracing::warn!(
                                message =
                                    "stream record without a change or a sequence number skipped",
                                mapping = self.poller.spec.name(),
                                shard,
                                event_id = r.event_id()
                            );
                            return None;
                        };
                        let created_ms = change
                            .approximate_creation_date_time
                            .and_then(|t| t.to_millis().ok())
                            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                        let mut dynamodb = json!({
                            "ApproximateCreationDateTime": created_ms / 1000,
                            "SequenceNumber": sequence,
                        });
                        let images = [
                            ("Keys", &change.keys),
                            ("NewImage", &change.new_image),
                            ("OldImage", &change.old_image),
                        ];
                        for (key, image) in images {
                            if let Some(image) = image {
                                dynamodb[key] = attribute_map(image);
                            }
                        }
                        if let Some(size) = change.size_bytes {
                            dynamodb["SizeBytes"] = json!(size);
                        }
                        if let Some(view) = &change.stream_view_type {
                            dynamodb["StreamViewType"] = json!(view.as_str());
                        }
                        Some(StreamRecord {
                            sequence,
                            arrived_ms: created_ms,
                            event: json!({
                                "eventID": r.event_id(),
                                "eventName": r.event_name().map(|n| n.as_str()),
                                "eventVersion": "1.1",
                                "eventSource": "aws:dynamodb",
                                "awsRegion": region,
                                "dynamodb": dynamodb,
                                "eventSourceARN": self.arn,
                            }),
                        })
                    })
                    .collect();
                Ok((records, answer.next_shard_iterator))
            }
        }
    }

    fn batch_info_key(&self) -> &'static str {
        match self.poller.spec.kind {
            SourceKind::Kinesis => "KinesisBatchInfo",
            _ => "DDBStreamBatchInfo",
        }
    }
}

/// A DynamoDB item or key as attribute-value JSON (`{"S": "x"}`, `{"N": "1"}`, …), as the
/// event record carries it.
pub fn attribute_map(map: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(
        map.iter()
            .map(|(k, v)| (k.clone(), attribute(v)))
            .collect::<Map<_, _>>(),
    )
}

fn attribute(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": STANDARD.encode(b.as_ref())}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(n) => json!({"NULL": n}),
        AttributeValue::Ss(items) => json!({"SS": items}),
        AttributeValue::Ns(items) => json!({"NS": items}),
        AttributeValue::Bs(items) => {
            json!({"BS": items.iter().map(|b| STANDARD.encode(b.as_ref())).collect::<Vec<_>>()})
        }
        AttributeValue::L(items) => json!({"L": items.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::M(map) => json!({"M": attribute_map(map)}),
        _ => json!({"NULL": true}),
    }
}

/// The stream ARN a mapping reads: the given one, or a table's latest stream.
async fn stream_arn(poller: &Poller) -> Result<String, String> {
    let arn = &poller.spec.event_source_arn;
    if poller.spec.kind != SourceKind::DynamoDb || arn.contains("/stream/") {
        return Ok(arn.clone());
    }
    let table = arn.rsplit('/').next().unwrap_or_default();
    poller
        .clients
        .dynamodb
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(sdk_error)?
        .table
        .and_then(|t| t.latest_stream_arn)
        .ok_or_else(|| format!("table {table} has no stream"))
}

/// A stream mapping, until the mappings stop: a reader per shard.
pub async fn poll(poller: Arc<Poller>) {
    let arn = loop {
        match stream_arn(&poller).await {
            Ok(arn) => break arn,
            Err(e) => {
                tracing::warn!(
                    message = "mapping cannot find its stream; trying again",
                    mapping = poller.spec.name(),
                    error = e
                );
                if poller.stopping() {
                    return;
                }
                poller.pause(Duration::from_secs(1)).await;
            }
        }
    };
    let mut readers = tokio::task::JoinSet::new();
    // Shards being read or done, shards done, and shards waiting for their parent to be done.
    let (mut started, mut done) = (HashSet::new(), HashSet::new());
    let mut waiting: Vec<Shard> = Vec::new();
    let mut first_listing = true;
    while !poller.stopping() {
        let reader = Reader {
            poller: &poller,
            arn: arn.clone(),
        };
        match reader.shards().await {
            Ok(shards) => {
                let listed: HashSet<String> = shards.iter().map(|s| s.id.clone()).collect();
                for shard in shards {
                    if !started.contains(&shard.id) && !waiting.iter().any(|w| w.id == shard.id) {
                        waiting.push(shard);
                    }
                }
                let (ready, still) = ready_shards(std::mem::take(&mut waiting), &done, &listed);
                waiting = still;
                for shard in ready {
                    // Shards that appear later are read from their start: nothing written to
                    // them before they were found is skipped.
                    let position = if first_listing {
                        spec_position(&poller)
                    } else {
                        StartingPosition::TrimHorizon
                    };
                    started.insert(shard.id.clone());
                    let (poller, arn) = (poller.clone(), arn.clone());
                    readers.spawn(async move {
                        let reader = Reader {
                            poller: &poller,
                            arn,
                        };
                        read_shard(&reader, &shard.id, position).await;
                        shard.id
                    });
                }
                first_listing = false;
            }
            Err(e) => tracing::warn!(
                message = "mapping cannot list shards",
                mapping = poller.spec.name(),
                error = e
            ),
        }
        // Wait for the next listing, noting the shards that end meanwhile.
        let next_listing = tokio::time::Instant::now() + DISCOVERY_INTERVAL;
        loop {
            let mut stop = poller.stop.clone();
            tokio::select! {
                Some(Ok(shard)) = readers.join_next(), if !readers.is_empty() => {
                    done.insert(shard);
                }
                _ = tokio::time::sleep_until(next_listing) => break,
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    }
    while readers.join_next().await.is_some() {}
}

/// Splits `waiting` into the shards that may be read now and those still waiting: a child starts
/// once its parent is done (or gone from the stream's listing), so that a key's records keep their
/// order across a reshard, as Lambda reads them.
fn ready_shards(
    waiting: Vec<Shard>,
    done: &HashSet<String>,
    listed: &HashSet<String>,
) -> (Vec<Shard>, Vec<Shard>) {
    waiting.into_iter().partition(|s| match &s.parent {
        Some(parent) => done.contains(parent) || !listed.contains(parent),
        None => true,
    })
}

/// The mapping's starting position.
fn spec_position(poller: &Poller) -> StartingPosition {
    poller.spec.starting_position
}

/// Reads one shard in order, from `start`, until the mappings stop or the shard is closed.
async fn read_shard(reader: &Reader<'_>, shard: &str, start: StartingPosition) {
    let poller = reader.poller;
    let spec = &poller.spec;
    let mut checkpoint: Option<String> = None;
    let mut iterator: Option<String> = None;
    while !poller.stopping() {
        let current = match iterator.take() {
            Some(current) => current,
            None => {
                let position = match &checkpoint {
                    Some(sequence) => Position::After(sequence),
                    None => Position::Start(start),
                };
                match reader.iterator(shard, position).await {
                    Ok(Some(current)) => current,
                    Ok(None) => return,
                    Err(e) => {
                        tracing::warn!(
                            message = "mapping cannot read its shard",
                            mapping = spec.name(),
                            shard,
                            error = e
                        );
                        poller.pause(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
        };
        // Gather a batch: up to the batch size, within the batching window.
        let started = std::time::Instant::now();
        let mut batch: Vec<StreamRecord> = Vec::new();
        let mut next = Some(current);
        let mut failed = false;
        while let Some(current) = next.take() {
            match reader
                .read(shard, &current, spec.batch_size - batch.len())
                .await
            {
                Ok((records, following)) => {
                    let empty = records.is_empty();
                    batch.extend(records);
                    next = following;
                    let full = batch.len() >= spec.batch_size;
                    if full || started.elapsed() >= spec.batching_window || poller.stopping() {
                        break;
                    }
                    if empty {
                        poller.pause(POLL_INTERVAL.min(spec.batching_window)).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(
                        message = "mapping cannot read its shard",
                        mapping = spec.name(),
                        shard,
                        error = e
                    );
                    failed = true;
                    break;
                }
            }
        }
        if failed && batch.is_empty() {
            // Read again from the checkpoint (or the start) with a fresh iterator.
            poller.pause(Duration::from_secs(1)).await;
            continue;
        }
        // After a failed read, what was gathered is delivered and the shard is read again after
        // it with a fresh iterator: nothing read is dropped.
        let closed = next.is_none() && !failed;
        if batch.is_empty() {
            if closed {
                return;
            }
            iterator = next;
            poller.pause(POLL_INTERVAL).await;
            continue;
        }
        let last = batch.last().map(|r| r.sequence.clone());
        if !handle(reader, shard, batch).await {
            // Stopped before the batch was settled: it is not checkpointed.
            return;
        }
        checkpoint = last;
        iterator = if failed { None } else { next };
        if closed {
            return;
        }
    }
}

/// Delivers one batch until every record of it has succeeded or been discarded; `false` if the
/// mappings stopped first.
async fn handle(reader: &Reader<'_>, shard: &str, batch: Vec<StreamRecord>) -> bool {
    let poller = reader.poller;
    let spec = &poller.spec;
    // Batches still to deliver, with the retries already spent on their records.
    let mut work: VecDeque<(Vec<StreamRecord>, u32)> = VecDeque::from([(batch, 0)]);
    while let Some((records, retries)) = work.pop_front() {
        let records = match spec.max_record_age {
            Some(age) => {
                let oldest_kept = chrono::Utc::now().timestamp_millis() - age.as_millis() as i64;
                let (old, fresh): (Vec<_>, Vec<_>) = records
                    .into_iter()
                    .partition(|r| r.arrived_ms < oldest_kept);
                if !old.is_empty()
                    && !discard(reader, shard, &old, "RecordAgeExceeded", retries).await
                {
                    return false;
                }
                fresh
            }
            None => records,
        };
        if records.is_empty() {
            continue;
        }
        let ids: Vec<&str> = records.iter().map(|r| r.sequence.as_str()).collect();
        let events: Vec<&Value> = records.iter().map(|r| &r.event).collect();
        let Some(result) = poller.deliver(Some(shard), &events, &ids).await else {
            return false;
        };
        let retry = match result {
            BatchResult::Success => continue,
            BatchResult::Partial(failed) => {
                // The checkpoint: the lowest reported sequence number; retried from there on.
                let lowest = failed
                    .iter()
                    .min_by(|a, b| compare_sequence_numbers(a, b))
                    .expect("a partial result names a record");
                let from = records
                    .iter()
                    .position(|r| &r.sequence == lowest)
                    .unwrap_or(0);
                records[from..].to_vec()
            }
            BatchResult::Failed(_) if spec.bisect && records.len() > 1 => {
                // "Splitting a batch does not count towards the retry quota" (Lambda's
                // documentation): each half is tried with the retries spent so far.
                let mut first = records;
                let second = first.split_off(first.len() / 2);
                work.push_front((second, retries));
                work.push_front((first, retries));
                continue;
            }
            BatchResult::Failed(_) => records,
        };
        // The same records go again: that is a retry.
        let retries = retries + 1;
        if spec.max_retry_attempts.is_some_and(|max| retries > max) {
            if !discard(reader, shard, &retry, "RetryAttemptsExhausted", retries).await {
                return false;
            }
            continue;
        }
        if poller.stopping() {
            return false;
        }
        work.push_front((retry, retries));
        poller
            .pause(Duration::from_millis(100) * retries.min(10))
            .await;
    }
    true
}

/// Gives up `records`, on which `invocations` invocations were spent: describes them to the
/// on-failure destination, trying until the destination has it, then logs them as discarded.
/// `false` if the mappings stopped before the destination had it (the records are then not
/// checkpointed, so nothing is given up unrecorded).
async fn discard(
    reader: &Reader<'_>,
    shard: &str,
    records: &[StreamRecord],
    condition: &str,
    invocations: u32,
) -> bool {
    let poller = reader.poller;
    let spec = &poller.spec;
    if let Some(destination) = &spec.on_failure {
        let (first, last) = (&records[0], &records[records.len() - 1]);
        let time = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        };
        let info = json!({
            "shardId": shard,
            "startSequenceNumber": first.sequence,
            "endSequenceNumber": last.sequence,
            "approximateArrivalOfFirstRecord": time(first.arrived_ms),
            "approximateArrivalOfLastRecord": time(last.arrived_ms),
            "batchSize": records.len(),
            "streamArn": reader.arn,
        });
        let body = failure_record(
            &poller.function_arn(),
            condition,
            invocations,
            reader.batch_info_key(),
            info,
        )
        .to_string();
        loop {
            let sent = match queue_url(&poller.clients.sqs, destination).await {
                Ok(url) => poller
                    .clients
                    .sqs
                    .send_message()
                    .queue_url(url)
                    .message_body(&body)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(sdk_error),
                Err(e) => Err(e),
            };
            match sent {
                Ok(()) => break,
                Err(e) => {
                    tracing::warn!(
                        message = "cannot write to the on-failure destination; trying again",
                        mapping = spec.name(),
                        error = e
                    );
                    if poller.stopping() {
                        return false;
                    }
                    poller.pause(Duration::from_secs(1)).await;
                }
            }
        }
    } else {
        tracing::warn!(
            message = "records discarded (no on-failure destination)",
            mapping = spec.name(),
            shard,
            records = records.len(),
            condition
        );
    }
    poller.log.write(MappingEvent {
        timestamp: now(),
        function: spec.function.clone(),
        event_source_arn: spec.event_source_arn.clone(),
        shard: Some(shard.to_owned()),
        event: "discarded".into(),
        records: records.iter().map(|r| r.sequence.clone()).collect(),
        result: condition.into(),
        failed: Vec::new(),
        error: None,
    });
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_shard_waits_for_its_parent() {
        let shard = |id: &str, parent: Option<&str>| Shard {
            id: id.into(),
            parent: parent.map(Into::into),
        };
        let set = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<HashSet<_>>();
        let ids = |shards: &[Shard]| shards.iter().map(|s| s.id.clone()).collect::<Vec<_>>();
        let waiting = vec![
            shard("p", None),
            shard("c1", Some("p")),
            shard("c2", Some("gone")),
        ];
        let (ready, still) = ready_shards(waiting, &set(&[]), &set(&["p", "c1", "c2"]));
        assert_eq!(
            ids(&ready),
            ["p", "c2"],
            "a child of a shard no longer listed may start"
        );
        assert_eq!(ids(&still), ["c1"], "a child of an open parent waits");
        let (ready, still) = ready_shards(still, &set(&["p"]), &set(&["p", "c1", "c2"]));
        assert_eq!(
            (ids(&ready), still.len()),
            (vec!["c1".to_owned()], 0),
            "the parent is done"
        );
    }

    #[test]
    fn sequence_numbers_order_numerically() {
        let mut numbers = vec![
            "10",
            "9",
            "49590338271490256608559692538361571095921575989136588898",
            "100",
        ];
        numbers.sort_by(|a, b| compare_sequence_numbers(a, b));
        assert_eq!(
            numbers,
            [
                "9",
                "10",
                "100",
                "49590338271490256608559692538361571095921575989136588898"
            ]
        );
    }
}
