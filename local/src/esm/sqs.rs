//! The SQS mapping, as Lambda runs it
//! (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html>,
//! <https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>): pollers
//! long-poll the queue, gather up to the batch size within the batching window, invoke the
//! function synchronously, then delete every message that succeeded. A reported message, or
//! every message of a failed batch, is left alone: it reappears after the queue's visibility
//! timeout, and the queue's redrive policy moves it to the dead-letter queue after
//! `maxReceiveCount` receives. A FIFO queue is read by one poller (see [`super::Mappings`]), so
//! one batch is in flight at a time and SQS's order of each message group is kept.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, Message, MessageSystemAttributeName};
use serde_json::{Map, Value, json};

use super::mapping::{BatchResult, Poller, queue_url, sdk_error};

/// One poller of an SQS mapping, until the mappings stop.
pub async fn poll(poller: Arc<Poller>) {
    let spec = &poller.spec;
    let url = loop {
        match queue_url(&poller.clients.sqs, &spec.event_source_arn).await {
            Ok(url) => break url,
            Err(e) => {
                tracing::warn!(
                    message = "mapping cannot find its queue; trying again",
                    mapping = spec.name(),
                    error = e
                );
                if poller.stopping() {
                    return;
                }
                poller.pause(Duration::from_secs(1)).await;
            }
        }
    };
    while !poller.stopping() {
        let messages = match gather(&poller, &url).await {
            Ok(messages) => messages,
            Err(e) => {
                tracing::warn!(
                    message = "mapping cannot receive",
                    mapping = spec.name(),
                    error = e
                );
                poller.pause(Duration::from_secs(1)).await;
                continue;
            }
        };
        if messages.is_empty() {
            continue;
        }
        deliver(&poller, &url, &messages).await;
    }
}

/// Receives up to the batch size: until it is full or the batching window has passed (with no
/// window, as soon as a receive brings messages).
async fn gather(poller: &Poller, url: &str) -> Result<Vec<Message>, String> {
    let spec = &poller.spec;
    let started = Instant::now();
    let mut messages = Vec::new();
    loop {
        let left = spec.batching_window.saturating_sub(started.elapsed());
        // Long polls are kept short so that stopping is quick.
        let wait = left.as_secs().clamp(1, 2) as i32;
        let want = (spec.batch_size - messages.len()).min(10) as i32;
        let received = poller
            .clients
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(want)
            .wait_time_seconds(wait)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names("All")
            .send()
            .await
            .map_err(sdk_error);
        let received = match received {
            Ok(received) => received,
            // What was gathered is delivered: dropping it would spend a receive of each.
            Err(e) if !messages.is_empty() => {
                tracing::warn!(
                    message = "mapping cannot receive",
                    mapping = spec.name(),
                    error = e
                );
                return Ok(messages);
            }
            Err(e) => return Err(e),
        };
        messages.extend(received.messages.unwrap_or_default());
        let full = messages.len() >= spec.batch_size;
        let window_over = started.elapsed() >= spec.batching_window;
        if full || window_over || poller.stopping() {
            return Ok(messages);
        }
    }
}

/// The record Lambda hands the function for `message`
/// (<https://docs.aws.amazon.com/lambda/latest/dg/with-sqs.html>, "Example standard queue
/// message event").
pub fn record(message: &Message, arn: &str, region: &str) -> Value {
    let mut attributes = Map::new();
    for (name, value) in message.attributes.iter().flatten() {
        attributes.insert(name.as_str().to_owned(), json!(value));
    }
    let mut message_attributes = Map::new();
    for (name, value) in message.message_attributes.iter().flatten() {
        let mut attribute = json!({
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": value.data_type(),
        });
        if let Some(text) = value.string_value() {
            attribute["stringValue"] = json!(text);
        }
        if let Some(blob) = value.binary_value() {
            use base64::Engine;
            attribute["binaryValue"] =
                json!(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()));
        }
        message_attributes.insert(name.clone(), attribute);
    }
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body().unwrap_or_default(),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "eventSourceARN": arn,
        "awsRegion": region,
    })
}

/// Invokes the function with `messages` and deletes those that succeeded.
async fn deliver(poller: &Poller, url: &str, messages: &[Message]) {
    let spec = &poller.spec;
    let region = poller.event_source_arn_part(3);
    let records: Vec<Value> = messages
        .iter()
        .map(|m| record(m, &spec.event_source_arn, &region))
        .collect();
    let ids: Vec<&str> = messages
        .iter()
        .map(|m| m.message_id().unwrap_or_default())
        .collect();
    let Some(result) = poller.deliver(None, &records, &ids).await else {
        // Stopped while throttled: nothing was delivered; the messages reappear.
        return;
    };
    let keep: Vec<&str> = match &result {
        BatchResult::Success => Vec::new(),
        BatchResult::Partial(failed) => failed.iter().map(String::as_str).collect(),
        BatchResult::Failed(_) => return,
    };
    let by_id: HashMap<&str, &Message> = messages
        .iter()
        .map(|m| (m.message_id().unwrap_or_default(), m))
        .collect();
    let done: Vec<&Message> = ids
        .iter()
        .filter(|id| !keep.contains(id))
        .filter_map(|id| by_id.get(id).copied())
        .collect();
    for chunk in done.chunks(10) {
        let entries: Vec<DeleteMessageBatchRequestEntry> = chunk
            .iter()
            .enumerate()
            .filter_map(|(i, m)| {
                DeleteMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .build()
                    .ok()
            })
            .collect();
        let deleted = poller
            .clients
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(entries))
            .send()
            .await;
        match deleted {
            Ok(answer) if answer.failed.is_empty() => {}
            Ok(answer) => tracing::warn!(
                message = "messages not deleted; they will be delivered again",
                mapping = spec.name(),
                failed = answer.failed.len()
            ),
            Err(e) => tracing::warn!(
                message = "messages not deleted; they will be delivered again",
                mapping = spec.name(),
                error = sdk_error(e)
            ),
        }
    }
}
