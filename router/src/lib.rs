//! The tenant router: takes SQS, Kinesis and DynamoDB-stream batches delivered by an event source
//! mapping (and EventBridge events), proves each record's tenant, wraps it in an
//! [`shared::Envelope`] and invokes the tenant-isolated backend with that tenant id, answering
//! with the partial batch response the event source expects.
//!
//! Modules form one-way layers; each uses only those above it in this list:
//! 1. [`outcome`], [`retry`], [`config`], [`backend`], [`registry`] — leaf types: outcomes and
//!    reasons, retry policy and deadline, validated settings, the seam in front of AWS, the tenant
//!    registry and its cache;
//! 2. [`invocation`] — the invocation's facts and [`BatchError`];
//! 3. [`record`] — the record as the engine sees it, ordering, sequence comparison;
//! 4. [`source`] — decoding each source into records, and each source's response;
//! 5. [`engine`] — the one routing engine (lanes, gate, proof, delivery modes, retries,
//!    quarantine);
//! 6. [`report`], [`metrics`] — what happened to a batch;
//! 7. [`handler`] ([`Router`]), then [`replay`] and the binary.

pub mod backend;
pub mod config;
pub mod engine;
pub mod handler;
pub mod invocation;
pub mod metrics;
pub mod outcome;
pub mod record;
pub mod registry;
pub mod replay;
pub mod report;
pub mod retry;
pub mod source;

/// Logging set-up (shared with the backend).
pub use shared::telemetry;

pub use backend::{
    Answer, AwsBackend, Backend, FailureClass, InvokeFailure, InvokeRequest, Quarantine,
    QuarantineBucket, QuarantineMessage, WriteFailure,
};
pub use config::Config;
pub use handler::Router;
pub use invocation::{BatchError, InvocationInfo};
pub use outcome::Outcome;
pub use report::BatchReport;
