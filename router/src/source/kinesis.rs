//! Kinesis Data Streams batches.
//!
//! The payload is `kinesis.data` decoded from base64 and parsed as JSON. A KPL-aggregated record
//! is split into its user records ([`super::kpl`]); each becomes its own envelope (id
//! `<sequenceNumber>:<index>`) with its own partition key, and all of them report the parent's
//! sequence number, so a failure of any user record redelivers the parent. Arrival time is
//! `approximateArrivalTimestamp`. Records are ordered by partition key; failures are reported by
//! sequence number, lowest first
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html>).

use aws_lambda_events::event::kinesis::KinesisEventRecord;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use shared::Source;

use super::build::{self, Parts};
use super::document::JsonText;
use super::kpl;
use crate::config::{Config, TenantFrom};
use crate::invocation::{BatchError, InvocationInfo};
use crate::outcome::Rejection;
use crate::record::{
    ArnCache, Decoded, Pending, Record, RecordMeta, UserRecord, claimed, user_record_id,
};

#[derive(Deserialize)]
struct ArrivalOnly {
    kinesis: ArrivalInner,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArrivalInner {
    approximate_arrival_timestamp: Option<f64>,
}

/// Decodes every record of a Kinesis batch (KPL aggregates expand to several records).
pub fn decode<'a>(
    raw: &[&'a RawValue],
    config: &Config,
    info: &InvocationInfo,
) -> Result<Vec<Record<'a>>, BatchError> {
    let mut records = Vec::with_capacity(raw.len());
    let mut arns = ArnCache::default();
    for (index, raw) in raw.iter().enumerate() {
        let record = match serde_json::from_str::<KinesisEventRecord>(raw.get()) {
            Ok(record) => record,
            Err(error) => {
                // Unreadable, but reportable if its identifier can be found.
                records.push(build::unreadable_record(
                    raw,
                    index,
                    ("kinesis", "sequenceNumber"),
                    "a Kinesis record (is data valid base64?)",
                    &error,
                )?);
                continue;
            }
        };
        // A record without sequenceNumber can be routed, but if it fails the whole batch fails
        // (see `Router::route_event`).
        let id = record.kinesis.sequence_number.clone();
        // Read with full precision here: the parsed timestamp type rounds some fractions.
        let arrived_at_ms = serde_json::from_str::<ArrivalOnly>(raw.get())
            .ok()
            .and_then(|a| a.kinesis.approximate_arrival_timestamp)
            .filter(|t| t.is_finite() && *t > 0.0)
            .map(|t| (t * 1000.0).round() as i64)
            .unwrap_or(info.now_ms);
        let arn = record.event_source_arn.clone().unwrap_or_default();
        let source_arn = arns.get(&arn);
        let data = &record.kinesis.data.0;

        if kpl::is_aggregated(data) {
            // De-aggregating is decoding too: a panic in it fails this record alone.
            let users = crate::record::contain(|| kpl::deaggregate(data));
            match users {
                Some(Ok(users)) => {
                    for (sub, user) in users.into_iter().enumerate() {
                        let envelope_id = user_record_id(&id, sub);
                        let (decoded, claimed_tenant) = Pending::decode_now(|| {
                            decode_payload(
                                json_text(&user.data),
                                &envelope_id,
                                &arn,
                                &user.partition_key,
                                arrived_at_ms,
                                Some(sub),
                                config,
                                info,
                            )
                        });
                        records.push(Record {
                            meta: RecordMeta {
                                id: id.clone(),
                                raw,
                                lane: Some(user.partition_key),
                                claimed_tenant: claimed(claimed_tenant),
                                source_arn: source_arn.clone(),
                                user_record: Some(UserRecord {
                                    index: sub,
                                    cut: user_record_alone,
                                }),
                            },
                            decoded,
                        });
                    }
                }
                Some(Err(problem)) => records.push(Record {
                    meta: RecordMeta {
                        id,
                        raw,
                        lane: Some(record.kinesis.partition_key.clone()),
                        claimed_tenant: std::sync::OnceLock::new(),
                        source_arn: source_arn.clone(),
                        user_record: None,
                    },
                    decoded: Pending::ready(Err(Rejection::new("kpl-malformed", problem))),
                }),
                None => records.push(Record {
                    meta: RecordMeta {
                        id,
                        raw,
                        lane: Some(record.kinesis.partition_key.clone()),
                        claimed_tenant: std::sync::OnceLock::new(),
                        source_arn: source_arn.clone(),
                        user_record: None,
                    },
                    decoded: Pending::panicked("de-aggregating the KPL record"),
                }),
            }
            continue;
        }

        let partition_key = record.kinesis.partition_key.clone();
        let (decoded, claimed_tenant) = Pending::decode_now(|| {
            decode_payload(
                json_text(data),
                &id,
                &arn,
                &partition_key,
                arrived_at_ms,
                None,
                config,
                info,
            )
        });
        records.push(Record {
            meta: RecordMeta {
                id,
                raw,
                lane: Some(partition_key),
                claimed_tenant: claimed(claimed_tenant),
                source_arn,
                user_record: None,
            },
            decoded,
        });
    }
    Ok(records)
}

/// User record `index` of the KPL aggregate `raw` as a Kinesis record of its own, the way the
/// quarantine queue keeps it: the aggregate's record with `kinesis.data` and
/// `kinesis.partitionKey` those of the user record, and `kinesis.subSequenceNumber` its index.
/// `None` when `raw` is not an aggregate holding that user record. De-aggregating again costs
/// nothing unless a user record is rejected.
fn user_record_alone(raw: &RawValue, index: usize) -> Option<Box<RawValue>> {
    use base64::Engine;
    let mut record: Value = serde_json::from_str(raw.get()).ok()?;
    let data = record["kinesis"]["data"].as_str()?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(data)
        .ok()?;
    let user = kpl::deaggregate(&data).ok()?.into_iter().nth(index)?;
    let kinesis = record.get_mut("kinesis")?.as_object_mut()?;
    kinesis.insert(
        "data".into(),
        Value::String(base64::engine::general_purpose::STANDARD.encode(&user.data)),
    );
    kinesis.insert("partitionKey".into(), Value::String(user.partition_key));
    kinesis.insert("subSequenceNumber".into(), Value::from(index));
    serde_json::value::to_raw_value(&record).ok()
}

/// The record data as a JSON payload, or why it is not one.
fn json_text(data: &[u8]) -> Result<JsonText, String> {
    let text = std::str::from_utf8(data).map_err(|e| e.to_string())?;
    JsonText::new(text.to_owned()).map_err(|e| e.to_string())
}

#[allow(clippy::too_many_arguments)]
fn decode_payload(
    payload: Result<JsonText, String>,
    envelope_id: &str,
    arn: &str,
    partition_key: &str,
    arrived_at_ms: i64,
    sub_record: Option<usize>,
    config: &Config,
    info: &InvocationInfo,
) -> (Result<Decoded, Rejection>, Option<String>) {
    let payload = match payload {
        Ok(payload) => payload,
        Err(e) => {
            return (
                Err(Rejection::new(
                    "malformed-data",
                    format!("the record data is not JSON: {e}"),
                )),
                None,
            );
        }
    };
    let mut attributes = Map::new();
    attributes.insert("partitionKey".into(), Value::String(partition_key.into()));
    if let Some(sub) = sub_record {
        attributes.insert("aggregated".into(), Value::Bool(true));
        attributes.insert("subRecord".into(), Value::from(sub));
    }
    let parts = Parts {
        source: Source::Kinesis,
        id: envelope_id,
        event_source_arn: arn.to_owned(),
        arrived_at_ms,
        payload,
        attributes,
        trace_header: None,
    };
    build::build(
        parts,
        config,
        info,
        |from| match from {
            TenantFrom::PartitionKey => Some(Some(partition_key.to_owned())),
            _ => None,
        },
        |_| None,
    )
}
