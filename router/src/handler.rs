//! The router's handler: recognises the event, decodes it with its source's module, routes the
//! records through the batch core and answers in the shape that source's event source mapping
//! expects. The Lambda runtime loop and `router replay` both call [`Router::handle`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::event::streams::{
    KinesisBatchItemFailure, KinesisEventResponse as StreamsResponse,
};
use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use shared::Source;
use shared::jwks::KeyStore;
use shared::token::TokenVerifier;

use crate::backend::Backend;
use crate::batch::{BatchStats, Identity, Ordering, RouteContext, route};
use crate::config::{Config, Validation};
use crate::outcome::Outcome;
use crate::record::RecordMeta;
use crate::retry::Deadline;
use crate::source;

/// Why a whole event could not be handled (the invocation fails; nothing was invoked).
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The event is not a batch from a supported event source mapping.
    #[error("not a recognised event source batch: {0}")]
    NotAnEsmBatch(String),
    /// The batch is recognised but a record cannot be answered for.
    #[error("malformed batch: {0}")]
    Malformed(String),
    /// A single event (EventBridge) failed transiently; its sender should retry it.
    #[error("transient failure, retry later: {0}")]
    RetryLater(String),
}

/// Why the router cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The JWKS named by `ROUTER_JWKS` cannot be loaded.
    #[error("ROUTER_JWKS: {0}")]
    Jwks(#[from] shared::jwks::JwksError),
}

/// Facts about the current invocation.
#[derive(Clone, Debug)]
pub struct InvocationInfo {
    /// When the answer is due.
    pub deadline: Deadline,
    /// The invocation's X-Ray trace id, if any.
    pub trace_id: Option<String>,
    /// Processing time, in milliseconds since the epoch.
    pub now_ms: i64,
}

impl InvocationInfo {
    /// Information for an invocation due `budget` from now.
    pub fn with_budget(budget: Duration, margin: Duration) -> Self {
        Self {
            deadline: Deadline::after(budget, margin),
            trace_id: None,
            now_ms: now_ms(),
        }
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
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

/// The stream response: the lowest reported sequence number, since Lambda checkpoints there and
/// redelivers everything after it (an empty list when nothing is reported).
fn stream_response(metas: &[RecordMeta<'_>], outcomes: &[Outcome]) -> Value {
    let lowest = metas
        .iter()
        .zip(outcomes)
        .filter(|(_, outcome)| outcome.is_reported())
        .map(|(meta, _)| meta.id.as_str())
        .min_by(|a, b| source::compare_sequence_numbers(a, b));
    let mut response = StreamsResponse::default();
    if let Some(lowest) = lowest {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(lowest.to_owned());
        response.batch_item_failures.push(failure);
    }
    serde_json::to_value(response).expect("a batch response always serialises")
}

#[derive(Deserialize)]
struct SourceOnly<'a> {
    #[serde(rename = "eventSource", alias = "EventSource", borrow)]
    event_source: Option<&'a str>,
}

/// What happened to one event: each record's outcome and the response sent back.
#[derive(Debug, Clone)]
pub struct BatchReport {
    /// The event's source (`None` for an empty batch).
    pub source: Option<Source>,
    /// Record identifiers, in batch order.
    pub ids: Vec<String>,
    /// The tenant id each record claimed (proven only if it was invoked), in batch order.
    pub tenants: Vec<Option<String>>,
    /// One outcome per record, in batch order.
    pub outcomes: Vec<Outcome>,
    /// The response the event source mapping receives.
    pub response: Value,
    /// Invoke attempts made (retries included).
    pub attempts: u64,
    /// Invoke attempts that were retries.
    pub retries: u64,
    /// The duration of each Invoke attempt, in milliseconds.
    pub latencies_ms: Vec<f64>,
    /// Time spent on the batch.
    pub duration: std::time::Duration,
}

/// The router: configuration, identity verification and the backend seam, built once per process.
pub struct Router<B> {
    config: Config,
    identity: Identity,
    backend: B,
    metrics: Option<MetricsSink>,
}

/// Where a batch's EMF document goes (stdout inside Lambda, stderr for `router replay`).
pub type MetricsSink = Box<dyn Fn(&str) + Send + Sync>;

impl<B: Backend> Router<B> {
    /// Builds the router. File and inline JWKS are loaded here, so a bad one stops the start.
    pub fn new(config: Config, backend: B) -> Result<Self, StartError> {
        let verifier = match &config.jwt {
            Some(jwt) => {
                let keys = KeyStore::new(jwt.jwks.clone(), jwt.key_store.clone())?;
                for problem in keys.skipped() {
                    tracing::warn!(message = "JWKS key skipped", problem = problem.as_str());
                }
                Some(TokenVerifier::new(jwt.policy.clone(), keys))
            }
            None => None,
        };
        if config
            .validation
            .values()
            .any(|v| *v == Validation::Trusted)
        {
            tracing::warn!(
                message = "ROUTER_VALIDATION names trusted sources: their tenant ids are NOT \
                           verified; only the tenant-id pattern and ROUTER_TRUSTED_TENANTS apply",
                allow_list = config.trusted_tenants.is_some(),
            );
        }
        let identity = Identity {
            verifier,
            trusted_tenants: config.trusted_tenants.clone(),
        };
        Ok(Self {
            config,
            identity,
            backend,
            metrics: None,
        })
    }

    /// Sends one EMF metrics document per batch to `sink`.
    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = Some(sink);
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The backend seam (tests inspect their fakes through it).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Handles one event and returns the response its event source mapping expects. For a direct
    /// EventBridge event, a transient failure is an error, so that EventBridge retries it.
    /// The buffered log lines ([`shared::telemetry::init_buffered`]) are written before it returns.
    pub async fn handle(&self, event: &str, info: &InvocationInfo) -> Result<Value, BatchError> {
        let answer = self.handle_event(event, info).await;
        shared::telemetry::flush();
        answer
    }

    async fn handle_event(&self, event: &str, info: &InvocationInfo) -> Result<Value, BatchError> {
        let report = self.route_event(event, info).await?;
        if report.source == Some(Source::Eventbridge)
            && let Some(Outcome::Failed { reason, detail }) = report.outcomes.first()
        {
            return Err(BatchError::RetryLater(format!(
                "event {}: {reason}: {detail}",
                report.ids[0]
            )));
        }
        Ok(report.response)
    }

    /// Handles one event and returns every record's outcome along with the response.
    pub async fn route_event(
        &self,
        event: &str,
        info: &InvocationInfo,
    ) -> Result<BatchReport, BatchError> {
        let started = std::time::Instant::now();
        let shape: EventShape<'_> = serde_json::from_str(event).map_err(|e| {
            BatchError::NotAnEsmBatch(format!("the event is not a JSON object: {e}"))
        })?;
        let (records, source, ordering) = match shape {
            EventShape {
                records: Some(raw), ..
            } => {
                let Some(first) = raw.first() else {
                    // An empty batch is a success with nothing to report.
                    return Ok(BatchReport {
                        source: None,
                        ids: Vec::new(),
                        tenants: Vec::new(),
                        outcomes: Vec::new(),
                        response: serde_json::json!({ "batchItemFailures": [] }),
                        attempts: 0,
                        retries: 0,
                        latencies_ms: Vec::new(),
                        duration: started.elapsed(),
                    });
                };
                let event_source = serde_json::from_str::<SourceOnly<'_>>(first.get())
                    .ok()
                    .and_then(|s| s.event_source)
                    .unwrap_or_default();
                match event_source {
                    "aws:sqs" => {
                        let (records, fifo) = source::sqs::decode(&raw)?;
                        let ordering = if fifo {
                            Ordering::Lanes
                        } else {
                            Ordering::Independent
                        };
                        (records, Source::Sqs, ordering)
                    }
                    "aws:kinesis" => (
                        source::kinesis::decode(&raw, &self.config, info)?,
                        Source::Kinesis,
                        Ordering::Stream,
                    ),
                    "aws:dynamodb" => (
                        source::dynamodb::decode(&raw, &self.config, info)?,
                        Source::Dynamodb,
                        Ordering::Stream,
                    ),
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
                let record = source::eventbridge::decode(raw, map, &self.config, info)?;
                (vec![record], Source::Eventbridge, Ordering::Independent)
            }
            _ => {
                return Err(BatchError::NotAnEsmBatch(
                    "the event has no Records array and is not an EventBridge event".into(),
                ));
            }
        };
        let stats = BatchStats::default();
        let context = RouteContext {
            backend: &self.backend,
            identity: &self.identity,
            config: &self.config,
            deadline: info.deadline,
            source,
            ordering,
            now_ms: info.now_ms,
            info,
            stats: &stats,
        };
        let (metas, outcomes) = route(records, &context).await;
        // A failed record without an identifier cannot be reported alone (an empty identifier
        // would fail the batch at the ESM anyway): fail the invocation, so the batch is retried.
        if let Some(index) = metas
            .iter()
            .zip(&outcomes)
            .position(|(meta, outcome)| meta.id.is_empty() && outcome.is_reported())
        {
            return Err(BatchError::Malformed(format!(
                "record {index} has no sequence number and was not delivered ({}); failing the \
                 whole batch so that it is retried",
                outcomes[index].reason().unwrap_or("unknown")
            )));
        }
        let response = match source {
            Source::Sqs => serde_json::to_value(source::sqs::response(&metas, &outcomes)),
            Source::Kinesis | Source::Dynamodb => Ok(stream_response(&metas, &outcomes)),
            Source::Eventbridge => Ok(serde_json::json!({
                "outcome": outcomes[0].name(),
                "reason": outcomes[0].reason(),
            })),
        }
        .expect("a batch response always serialises");

        let count = |name: &str| outcomes.iter().filter(|o| o.name() == name).count();
        tracing::info!(
            message = "batch routed",
            source = source.as_str(),
            ordering = ?ordering,
            records = outcomes.len(),
            invoked = count("invoked"),
            rejected = count("rejected"),
            failed = count("failed"),
            reported = outcomes.iter().filter(|o| o.is_reported()).count(),
            duration_ms = started.elapsed().as_millis() as u64,
        );
        let report = BatchReport {
            source: Some(source),
            tenants: metas
                .iter()
                .map(|m| m.claimed_tenant.get().cloned())
                .collect(),
            ids: metas.into_iter().map(|m| m.id).collect(),
            outcomes,
            response,
            attempts: stats.attempts(),
            retries: stats.retries(),
            latencies_ms: stats.latencies_ms(),
            duration: started.elapsed(),
        };
        if let Some(sink) = &self.metrics {
            let document = crate::metrics::batch_document(
                &report,
                &self.config.metrics_namespace,
                info.now_ms,
            );
            sink(&document.to_string());
        }
        Ok(report)
    }
}
