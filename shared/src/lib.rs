//! Library shared by the router and the backend: the validated [`TenantId`], the source-agnostic
//! [`Envelope`] sent to the tenant-isolated backend, and the verification of tenant identity tokens
//! against a JWKS ([`token`], [`jwks`]).
//!
//! Nothing here talks to AWS; both binaries build on these types so that the router and the backend
//! agree on the wire format and on what a valid tenant is.

pub mod answer;
pub mod endpoint;
pub mod envelope;
pub mod function;
pub mod idempotency;
pub mod jwks;
pub mod metrics;
pub mod pricing;
pub mod telemetry;
pub mod tenant;
pub mod token;

pub use envelope::{
    ASYNC_PAYLOAD_LIMIT, BatchAnswer, BatchOrdering, BatchPayload, Delivery, ENVELOPE_VERSION,
    Envelope, EnvelopeBatch, EnvelopeHead, SQS_MESSAGE_LIMIT, SYNC_PAYLOAD_LIMIT, Source,
};
pub use tenant::{TenantId, TenantIdError};
