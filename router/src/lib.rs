//! The tenant router: takes SQS batches delivered by an event source mapping, proves each record's
//! tenant, wraps it in an [`shared::Envelope`] and invokes the tenant-isolated backend
//! asynchronously with that tenant id, answering with the partial batch response the event source
//! expects.
//!
//! Layout: [`config`] (environment → validated settings), [`source`] (per-source decoding and
//! responses), [`batch`] (ordering, retries, quarantine: the pure core; `tenant_batch` packs a
//! tenant's records into envelope batches when `ROUTER_DELIVERY=tenant-batch`), [`backend`] (the seam in
//! front of AWS), [`handler`] (one event in, one response out), [`replay`] (the `router replay`
//! command) and [`telemetry`].

pub mod backend;
pub mod batch;
pub mod config;
pub mod handler;
pub mod metrics;
pub mod outcome;
pub mod record;
pub mod replay;
pub mod retry;
pub mod source;
mod tenant_batch;

/// Logging set-up (shared with the backend).
pub use shared::telemetry;

pub use backend::{AwsBackend, Backend, FailureClass, InvokeFailure, InvokeRequest};
pub use config::Config;
pub use handler::{BatchError, BatchReport, InvocationInfo, Router};
pub use outcome::Outcome;
