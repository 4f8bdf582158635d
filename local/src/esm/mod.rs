//! Event source mappings: pollers that read SQS queues, Kinesis streams and DynamoDB streams
//! through the AWS SDK (from any AWS-API endpoint: moto's server, LocalStack, an account), invoke
//! a function of the stand-in synchronously with each batch, as Lambda's mappings do, and act on
//! its answer with Lambda's documented semantics:
//!
//! - [`sqs`]: delete what succeeded, leave the rest to reappear after the visibility timeout
//!   (the queue's redrive policy moves it to its dead-letter queue);
//! - [`stream`]: per shard in order, checkpoint at the lowest reported sequence number, bisect,
//!   retries, record age, the on-failure destination;
//! - [`mapping`]: what both share — the mapping's settings, reading a function's partial batch
//!   response, invoking through the stand-in, and the mapping log;
//! - this module: starting and stopping the pollers.

pub mod mapping;
pub mod sqs;
pub mod stream;

use std::sync::Arc;

use tokio::sync::watch;

pub use mapping::{
    BatchResult, Clients, MappingEvent, MappingLog, MappingSpec, Poller, SourceKind,
    StartingPosition, read_answer,
};

use crate::service::Service;

/// The running mappings.
pub struct Mappings {
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    log: Arc<MappingLog>,
}

impl Mappings {
    /// Starts a poller (or several, for a queue) per enabled mapping.
    pub fn start(
        service: Arc<Service>,
        specs: Vec<MappingSpec>,
        clients: Clients,
        log: Arc<MappingLog>,
    ) -> Self {
        let (stop, receiver) = watch::channel(false);
        let mut tasks = Vec::new();
        for spec in specs.into_iter().filter(|s| s.enabled) {
            let poller = |spec: MappingSpec| {
                Arc::new(Poller {
                    spec,
                    service: service.clone(),
                    clients: clients.clone(),
                    log: log.clone(),
                    stop: receiver.clone(),
                })
            };
            match spec.kind {
                // A FIFO queue gets one poller: one batch in flight at a time keeps every group's
                // order whatever the server does with concurrent receives (moto's are not
                // serialised). Lambda allows more, one batch per group; locally this costs only
                // throughput.
                SourceKind::Sqs { fifo } => {
                    let pollers = if fifo { 1 } else { spec.pollers.max(1) };
                    for _ in 0..pollers {
                        tasks.push(tokio::spawn(sqs::poll(poller(spec.clone()))));
                    }
                }
                SourceKind::Kinesis | SourceKind::DynamoDb => {
                    tasks.push(tokio::spawn(stream::poll(poller(spec))));
                }
            }
        }
        Self { stop, tasks, log }
    }

    /// The mapping log.
    pub fn log(&self) -> &Arc<MappingLog> {
        &self.log
    }

    /// Stops polling; a batch in flight is finished (and its answer acted on) first.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}
