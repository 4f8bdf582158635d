//! Event sources: recognising an event ([`read`]), decoding each source's records into
//! [`Record`]s, and turning the records' outcomes into the response that source's event source
//! mapping expects ([`response`]).
//!
//! Below this module, `build` holds the rules all sources share (tenant, token, correlation id,
//! envelope) and `document` what a JSON pointer reads from; each source module uses them, and
//! this module uses the source modules. Nothing here routes.

mod build;
mod document;
pub mod dynamodb;
pub mod eventbridge;
pub mod kinesis;
pub mod kpl;
pub mod sqs;
mod stream;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use shared::Source;

use crate::config::Config;
use crate::invocation::{BatchError, InvocationInfo};
use crate::outcome::Outcome;
use crate::record::{Ordering, Record, RecordMeta};

/// The records of one event, with what its source implies.
#[derive(Debug)]
pub struct Batch<'a> {
    /// The event's source.
    pub source: Source,
    /// The source's ordering rules.
    pub ordering: Ordering,
    /// Every record, in batch order.
    pub records: Vec<Record<'a>>,
}

/// The top-level shape of an event: an ESM batch, or one EventBridge event.
#[derive(Deserialize)]
struct EventShape<'a> {
    #[serde(rename = "Records", borrow)]
    records: Option<Vec<&'a RawValue>>,
    #[serde(rename = "detail-type", borrow)]
    detail_type: Option<&'a RawValue>,
    #[serde(borrow)]
    source: Option<&'a RawValue>,
    #[serde(borrow)]
    detail: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct SourceOnly<'a> {
    #[serde(rename = "eventSource", alias = "EventSource", borrow)]
    event_source: Option<&'a str>,
}

/// Recognises the event from the event itself and reads its records: `Records[0].eventSource` is
/// `aws:sqs`, `aws:kinesis` or `aws:dynamodb`; an object with `detail-type`, `source` and
/// `detail` is an EventBridge event. `None` for an empty batch (a success with nothing to
/// report); anything else is an error.
pub fn read<'a>(
    event: &'a str,
    config: &Config,
    info: &InvocationInfo,
) -> Result<Option<Batch<'a>>, BatchError> {
    let shape: EventShape<'_> = serde_json::from_str(event)
        .map_err(|e| BatchError::NotAnEsmBatch(format!("the event is not a JSON object: {e}")))?;
    let batch = match shape {
        EventShape {
            records: Some(raw), ..
        } => {
            let Some(first) = raw.first() else {
                return Ok(None);
            };
            let event_source = serde_json::from_str::<SourceOnly<'_>>(first.get())
                .ok()
                .and_then(|s| s.event_source)
                .unwrap_or_default();
            match event_source {
                "aws:sqs" => {
                    let (records, fifo) = sqs::decode(&raw)?;
                    let ordering = if fifo {
                        Ordering::Lanes
                    } else {
                        Ordering::Independent
                    };
                    Batch {
                        source: Source::Sqs,
                        ordering,
                        records,
                    }
                }
                "aws:kinesis" => Batch {
                    source: Source::Kinesis,
                    ordering: Ordering::Stream,
                    records: kinesis::decode(&raw, config, info)?,
                },
                "aws:dynamodb" => Batch {
                    source: Source::Dynamodb,
                    ordering: Ordering::Stream,
                    records: dynamodb::decode(&raw, config, info)?,
                },
                other => {
                    return Err(BatchError::NotAnEsmBatch(format!(
                        "unsupported eventSource {other:?}"
                    )));
                }
            }
        }
        EventShape {
            records: None,
            detail_type: Some(_),
            source: Some(_),
            detail: Some(_),
        } => {
            let raw: &RawValue = serde_json::from_str(event).expect("parsed above");
            let map: serde_json::Map<String, Value> = serde_json::from_str(event)
                .map_err(|e| BatchError::NotAnEsmBatch(e.to_string()))?;
            Batch {
                source: Source::Eventbridge,
                ordering: Ordering::Independent,
                records: vec![eventbridge::decode(raw, map, config, info)?],
            }
        }
        _ => {
            return Err(BatchError::NotAnEsmBatch(
                "the event has no Records array and is not an EventBridge event".into(),
            ));
        }
    };
    Ok(Some(batch))
}

/// The response `source`'s event source mapping expects for these outcomes (in batch order).
///
/// A reported record without an identifier cannot be reported alone (an empty identifier would
/// fail the batch at the event source mapping anyway): the invocation fails instead, so that the
/// whole batch is retried.
pub fn response(
    source: Source,
    metas: &[RecordMeta<'_>],
    outcomes: &[Outcome],
) -> Result<Value, BatchError> {
    if let Some(index) = metas
        .iter()
        .zip(outcomes)
        .position(|(meta, outcome)| meta.id.is_empty() && outcome.is_reported())
    {
        return Err(BatchError::Malformed(format!(
            "record {index} has no sequence number and was not delivered ({}); failing the \
             whole batch so that it is retried",
            outcomes[index].reason().unwrap_or("unknown")
        )));
    }
    let response = match source {
        Source::Sqs => serde_json::to_value(sqs::response(metas, outcomes)),
        Source::Kinesis | Source::Dynamodb => {
            serde_json::to_value(stream::response(metas, outcomes))
        }
        Source::Eventbridge => Ok(serde_json::json!({
            "outcome": outcomes[0].name(),
            "reason": outcomes[0].reason(),
        })),
    };
    Ok(response.expect("a batch response always serialises"))
}
