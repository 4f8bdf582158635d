//! The answer Kinesis and DynamoDB Streams event source mappings expect: the lowest reported
//! sequence number, since Lambda checkpoints there and redelivers everything after it
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-ddb-batchfailurereporting.html>).

use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};

use crate::outcome::Outcome;
use crate::record::{RecordMeta, compare_sequence_numbers};

/// The stream response: the lowest reported sequence number (an empty list when nothing is
/// reported).
pub fn response(metas: &[RecordMeta<'_>], outcomes: &[Outcome]) -> KinesisEventResponse {
    let lowest = metas
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_reported())
        .map(|(meta, _)| meta.id.as_str())
        .min_by(|a, b| compare_sequence_numbers(a, b));
    let mut response = KinesisEventResponse::default();
    if let Some(lowest) = lowest {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(lowest.to_owned());
        response.batch_item_failures.push(failure);
    }
    response
}
