//! What every mapping shares, below the pollers: the mapping's settings, the sources' kinds,
//! the AWS clients, reading a function's partial batch response, invoking through the stand-in,
//! the on-failure record, SQS queue URLs and the mapping log.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{Value, json};
use tokio::sync::watch;

use crate::environment::InvocationResult;
use crate::pool::PoolError;
use crate::service::{Request, Service, now};

/// The kind of an event source, told by its ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// An SQS queue (`arn:aws:sqs:…`); FIFO when its name ends in `.fifo`.
    Sqs {
        /// Whether it is a FIFO queue.
        fifo: bool,
    },
    /// A Kinesis data stream (`arn:aws:kinesis:…:stream/NAME`).
    Kinesis,
    /// A DynamoDB stream (`arn:aws:dynamodb:…:table/NAME/stream/LABEL`), or a table
    /// (`…:table/NAME`), whose latest stream is then used.
    DynamoDb,
}

impl SourceKind {
    /// The kind of the source `arn`.
    pub fn of(arn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _, "sqs", _, _, name] if !name.is_empty() => Ok(Self::Sqs {
                fifo: name.ends_with(".fifo"),
            }),
            ["arn", _, "kinesis", _, _, resource] if resource.starts_with("stream/") => {
                Ok(Self::Kinesis)
            }
            ["arn", _, "dynamodb", _, _, resource] if resource.starts_with("table/") => {
                Ok(Self::DynamoDb)
            }
            _ => Err(format!(
                "{arn:?} is not an event source this stand-in polls (an SQS queue, a Kinesis \
                 stream or a DynamoDB stream ARN)"
            )),
        }
    }
}

/// Where a stream mapping starts reading a shard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartingPosition {
    /// The oldest record kept.
    TrimHorizon,
    /// Only records written after the mapping started.
    Latest,
}

/// One event source mapping (the properties of `AWS::Lambda::EventSourceMapping`).
#[derive(Debug, Clone)]
pub struct MappingSpec {
    /// The function it invokes.
    pub function: String,
    /// The source.
    pub event_source_arn: String,
    /// Its kind.
    pub kind: SourceKind,
    /// Most records per batch.
    pub batch_size: usize,
    /// Longest a batch is gathered before the function is invoked (0: as soon as records come).
    pub batching_window: Duration,
    /// `FunctionResponseTypes: [ReportBatchItemFailures]`.
    pub report_failures: bool,
    /// Streams: where a shard is first read.
    pub starting_position: StartingPosition,
    /// Streams: split a batch in two on a function error.
    pub bisect: bool,
    /// Streams: retries of a failed batch (`None`: no limit; stream retention is not modelled,
    /// so without a maximum record age a failing record is retried for ever, blocking its shard).
    pub max_retry_attempts: Option<u32>,
    /// Streams: records older than this are not sent (`None`: no limit).
    pub max_record_age: Option<Duration>,
    /// Streams: the SQS queue that gets a description of each discarded batch.
    pub on_failure: Option<String>,
    /// SQS: pollers receiving at once (`ScalingConfig.MaximumConcurrency`; default 2).
    pub pollers: usize,
    /// Whether it polls at all.
    pub enabled: bool,
}

impl MappingSpec {
    /// A short name for logs: `function<-source`.
    pub fn name(&self) -> String {
        format!("{}<-{}", self.function, self.event_source_arn)
    }
}

/// The AWS clients the mappings poll with.
#[derive(Debug, Clone)]
pub struct Clients {
    /// SQS (queues and on-failure destinations).
    pub sqs: aws_sdk_sqs::Client,
    /// Kinesis.
    pub kinesis: aws_sdk_kinesis::Client,
    /// DynamoDB (to find a table's latest stream).
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// DynamoDB Streams.
    pub streams: aws_sdk_dynamodbstreams::Client,
}

impl Clients {
    /// Clients from one SDK configuration.
    pub fn new(sdk: &aws_config::SdkConfig) -> Self {
        Self {
            sqs: aws_sdk_sqs::Client::new(sdk),
            kinesis: aws_sdk_kinesis::Client::new(sdk),
            dynamodb: aws_sdk_dynamodb::Client::new(sdk),
            streams: aws_sdk_dynamodbstreams::Client::new(sdk),
        }
    }

    /// Loads the SDK's configuration from the environment (`AWS_ENDPOINT_URL_*`, `AWS_REGION`,
    /// credentials), with `endpoint_url` and `region` instead when given.
    pub async fn load(endpoint_url: Option<&str>, region: Option<&str>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(url) = endpoint_url {
            loader = loader.endpoint_url(url);
        }
        if let Some(region) = region {
            loader = loader.region(aws_config::Region::new(region.to_owned()));
        }
        Self::new(&loader.load().await)
    }
}

/// An AWS SDK error in one line: the service's code and message, or what failed on the way.
pub fn sdk_error<E, R>(error: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> String
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match error.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            text
        }
    }
}

/// How a function answered one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchResult {
    /// Every record succeeded.
    Success,
    /// These records failed (`batchItemFailures`, in the batch's order); the rest succeeded.
    Partial(Vec<String>),
    /// The whole batch failed: a function error, a crash, a timeout, or an invalid answer.
    Failed(String),
}

impl BatchResult {
    /// The name written to the mapping log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Partial(_) => "partial",
            Self::Failed(_) => "failed",
        }
    }
}

/// Reads a function's answer to a batch of records whose identifiers are `ids`, as Lambda does
/// (<https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html>,
/// <https://docs.aws.amazon.com/lambda/latest/dg/services-kinesis-batchfailurereporting.html>):
/// without `ReportBatchItemFailures` any answer is a success; with it, an empty or null answer or
/// `batchItemFailures` is a success, and an answer that is not JSON, or a failure whose
/// `itemIdentifier` is missing, empty, null or not in the batch, fails the whole batch.
pub fn read_answer(body: &[u8], ids: &[&str], report_failures: bool) -> BatchResult {
    if !report_failures {
        return BatchResult::Success;
    }
    let text = String::from_utf8_lossy(body);
    if text.trim().is_empty() {
        return BatchResult::Success;
    }
    let answer: Value = match serde_json::from_str(&text) {
        Ok(answer) => answer,
        Err(e) => return BatchResult::Failed(format!("the answer is not JSON: {e}")),
    };
    let failures = match &answer {
        Value::Null => return BatchResult::Success,
        Value::Object(map) => match map.get("batchItemFailures") {
            None | Some(Value::Null) => return BatchResult::Success,
            Some(Value::Array(failures)) => failures,
            Some(other) => {
                return BatchResult::Failed(format!("batchItemFailures is not a list: {other}"));
            }
        },
        // Lambda reads only an object's batchItemFailures; anything else reports none.
        _ => return BatchResult::Success,
    };
    let mut failed: Vec<String> = Vec::new();
    for failure in failures {
        match failure.get("itemIdentifier") {
            Some(Value::String(id)) if !id.is_empty() && ids.contains(&id.as_str()) => {
                if !failed.contains(id) {
                    failed.push(id.clone());
                }
            }
            other => {
                return BatchResult::Failed(format!(
                    "invalid batch item failure {failure}: itemIdentifier {} is not a record \
                     of the batch",
                    other.map_or("missing".to_owned(), Value::to_string)
                ));
            }
        }
    }
    if failed.is_empty() {
        BatchResult::Success
    } else {
        failed.sort_by_key(|id| ids.iter().position(|i| i == id));
        BatchResult::Partial(failed)
    }
}

/// Invokes `function` synchronously with `payload` as a mapping does, waiting out throttles and
/// failed starts (Lambda's pollers back off and try again; neither counts as an attempt) until
/// `stop` is set, and reads the answer.
pub async fn invoke(
    service: &Service,
    function: &str,
    payload: Bytes,
    ids: &[&str],
    report_failures: bool,
    stop: &watch::Receiver<bool>,
) -> Option<BatchResult> {
    let request = Request {
        function: function.to_owned(),
        tenant: None,
        request_id: uuid::Uuid::new_v4().to_string(),
        invocation_type: "RequestResponse",
        trace_id: format!(
            "Root=1-{:08x}-{};Parent={};Sampled=0",
            chrono::Utc::now().timestamp(),
            &uuid::Uuid::new_v4().simple().to_string()[..24],
            &uuid::Uuid::new_v4().simple().to_string()[..16],
        ),
    };
    let mut delay = Duration::from_millis(20);
    let mut first = true;
    loop {
        // Only the first throttle of a batch goes to the invocation log.
        let logged = std::mem::replace(&mut first, false);
        match service
            .attempt_logged(&request, 1, payload.clone(), logged)
            .await
        {
            Ok(InvocationResult::Success(body)) => {
                return Some(read_answer(&body, ids, report_failures));
            }
            Ok(failure) => {
                return Some(BatchResult::Failed(
                    failure.error_type().unwrap_or_else(|| "Unhandled".into()),
                ));
            }
            // Errors before the function runs are tried again, as Lambda does with throttles
            // and service errors: they spend no retry.
            Err(error) => {
                if let PoolError::StartFailed(e) = &error {
                    tracing::warn!(
                        message = "the function cannot start; trying again",
                        function,
                        error = e.as_str()
                    );
                }
                if *stop.borrow() {
                    return None;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The queue URL of the queue `arn` (`arn:aws:sqs:REGION:ACCOUNT:NAME`).
pub async fn queue_url(client: &aws_sdk_sqs::Client, arn: &str) -> Result<String, String> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, _, _, _, account, name] = parts.as_slice() else {
        return Err(format!("{arn:?} is not an SQS queue ARN"));
    };
    client
        .get_queue_url()
        .queue_name(*name)
        .queue_owner_aws_account_id(*account)
        .send()
        .await
        .map_err(|e| format!("queue {arn}: {}", sdk_error(e)))?
        .queue_url
        .ok_or_else(|| format!("queue {arn}: no URL in the answer"))
}

/// One line of the mapping log: a batch a mapping delivered, or records it discarded.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MappingEvent {
    /// When (RFC 3339).
    pub timestamp: String,
    /// The function.
    pub function: String,
    /// The source.
    pub event_source_arn: String,
    /// The shard, for streams.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// `delivered` (a batch went to the function) or `discarded` (stream records given up:
    /// retries exhausted or too old, described to the on-failure destination if any).
    pub event: String,
    /// The records: SQS message ids or stream sequence numbers.
    pub records: Vec<String>,
    /// For `delivered`: `success`, `partial` or `failed`; for `discarded`: the condition
    /// (`RetryAttemptsExhausted`, `RecordAgeExceeded`).
    pub result: String,
    /// For `partial`: the records the function reported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
    /// For `failed`: why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The mapping log: every [`MappingEvent`], kept and written as JSON lines.
#[derive(Default)]
pub struct MappingLog {
    file: Option<Mutex<std::fs::File>>,
    events: Mutex<Vec<MappingEvent>>,
}

impl MappingLog {
    /// A log written to `path` (appended), or kept in memory only.
    pub fn open(path: Option<&PathBuf>) -> std::io::Result<Self> {
        let file = path
            .map(|p| {
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
            })
            .transpose()?
            .map(Mutex::new);
        Ok(Self {
            file,
            events: Mutex::new(Vec::new()),
        })
    }

    /// Records one event.
    pub fn write(&self, event: MappingEvent) {
        if let Some(file) = &self.file {
            let mut file = file.lock().expect("mapping log lock");
            let _ = serde_json::to_writer(&mut *file, &event);
            let _ = file.write_all(b"\n");
        }
        self.events.lock().expect("lock").push(event);
    }

    /// Every event so far.
    pub fn events(&self) -> Vec<MappingEvent> {
        self.events.lock().expect("lock").clone()
    }
}

/// What a poller needs: the mapping, the stand-in, the clients, the log and the stop signal.
pub struct Poller {
    /// The mapping.
    pub spec: MappingSpec,
    /// The stand-in it invokes.
    pub service: Arc<Service>,
    /// The AWS clients.
    pub clients: Clients,
    /// The mapping log.
    pub log: Arc<MappingLog>,
    /// Set when the mappings stop.
    pub stop: watch::Receiver<bool>,
}

impl Poller {
    /// Invokes the function with `records` (whose identifiers are `ids`, in order) as one event,
    /// `{"Records": [...]}`, and logs the delivery; `None` if the mappings stopped while it was
    /// throttled (nothing was delivered).
    pub(super) async fn deliver<T: serde::Serialize>(
        &self,
        shard: Option<&str>,
        records: &[T],
        ids: &[&str],
    ) -> Option<BatchResult> {
        let payload = Bytes::from(json!({ "Records": records }).to_string());
        let spec = &self.spec;
        let result = invoke(
            &self.service,
            &spec.function,
            payload,
            ids,
            spec.report_failures,
            &self.stop,
        )
        .await?;
        self.delivered(shard, ids, &result);
        Some(result)
    }

    /// Logs a delivered batch.
    fn delivered(&self, shard: Option<&str>, records: &[&str], result: &BatchResult) {
        let (failed, error) = match result {
            BatchResult::Success => (Vec::new(), None),
            BatchResult::Partial(failed) => (failed.clone(), None),
            BatchResult::Failed(error) => (Vec::new(), Some(error.clone())),
        };
        self.log.write(MappingEvent {
            timestamp: now(),
            function: self.spec.function.clone(),
            event_source_arn: self.spec.event_source_arn.clone(),
            shard: shard.map(str::to_owned),
            event: "delivered".into(),
            records: records.iter().map(|r| (*r).to_owned()).collect(),
            result: result.name().into(),
            failed,
            error,
        });
    }

    /// Whether the mappings are stopping.
    pub(super) fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Sleeps `duration`, or less if the mappings stop.
    pub(super) async fn pause(&self, duration: Duration) {
        let mut stop = self.stop.clone();
        let _ = tokio::time::timeout(duration, stop.wait_for(|s| *s)).await;
    }

    /// The function's ARN as Lambda writes it in destination records.
    pub(super) fn function_arn(&self) -> String {
        let region = self.event_source_arn_part(3);
        format!(
            "arn:aws:lambda:{region}:{}:function:{}",
            self.event_source_arn_part(4),
            self.spec.function
        )
    }

    /// Part `index` of the source's ARN (`arn:partition:service:region:account:resource`).
    pub(super) fn event_source_arn_part(&self, index: usize) -> String {
        self.spec
            .event_source_arn
            .split(':')
            .nth(index)
            .unwrap_or_default()
            .to_owned()
    }
}

/// A destination record for records a stream mapping discarded
/// (<https://docs.aws.amazon.com/lambda/latest/dg/kinesis-on-failure-destination.html>).
pub fn failure_record(
    function_arn: &str,
    condition: &str,
    attempts: u32,
    batch_info_key: &str,
    batch_info: Value,
) -> Value {
    let mut record = json!({
        "requestContext": {
            "requestId": uuid::Uuid::new_v4().to_string(),
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": attempts,
        },
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "version": "1.0",
        "timestamp": now(),
    });
    record[batch_info_key] = batch_info;
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_lambda_reads_them() {
        let ids = ["a", "b", "c"];
        let read = |body: &str| read_answer(body.as_bytes(), &ids, true);
        for success in [
            "",
            "null",
            "{}",
            r#"{"batchItemFailures":[]}"#,
            r#"{"batchItemFailures":null}"#,
            "\"ok\"",
        ] {
            assert_eq!(read(success), BatchResult::Success, "{success}");
        }
        assert_eq!(
            read(r#"{"batchItemFailures":[{"itemIdentifier":"c"},{"itemIdentifier":"b"}]}"#),
            BatchResult::Partial(vec!["b".into(), "c".into()])
        );
        for invalid in [
            "not json",
            r#"{"batchItemFailures":[{"itemIdentifier":"zzz"}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":""}]}"#,
            r#"{"batchItemFailures":[{"itemIdentifier":null}]}"#,
            r#"{"batchItemFailures":[{"id":"a"}]}"#,
            r#"{"batchItemFailures":"a"}"#,
        ] {
            assert!(matches!(read(invalid), BatchResult::Failed(_)), "{invalid}");
        }
        assert_eq!(
            read_answer(b"not json", &ids, false),
            BatchResult::Success,
            "without ReportBatchItemFailures any answer is a success"
        );
    }

    #[test]
    fn sources_are_told_by_their_arn() {
        assert_eq!(
            SourceKind::of("arn:aws:sqs:us-east-1:1:q.fifo"),
            Ok(SourceKind::Sqs { fifo: true })
        );
        assert_eq!(
            SourceKind::of("arn:aws:sqs:us-east-1:1:q"),
            Ok(SourceKind::Sqs { fifo: false })
        );
        assert_eq!(
            SourceKind::of("arn:aws:kinesis:us-east-1:1:stream/s"),
            Ok(SourceKind::Kinesis)
        );
        assert_eq!(
            SourceKind::of("arn:aws:dynamodb:us-east-1:1:table/t/stream/2026"),
            Ok(SourceKind::DynamoDb)
        );
        assert!(SourceKind::of("arn:aws:sns:us-east-1:1:topic").is_err());
    }
}
