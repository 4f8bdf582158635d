//! The one seam in front of AWS: "invoke the backend for a tenant" (async, or sync with the
//! backend's answer), "write a message to the quarantine queue" and "keep a record in the
//! quarantine bucket".
//!
//! [`Backend`] (in `seam`, with what crosses it) is implemented by [`AwsBackend`] and by
//! in-memory fakes in tests. One module per job: `lambda` (the Invoke, aws-sdk-lambda), `queue` (the quarantine queue's writer,
//! aws-sdk-sqs, and its message limit), `bucket` (the claim check: a SigV4-signed `PutObject`,
//! [`QuarantineBucket`]) and `failure` (every Invoke failure classified once into
//! [`FailureClass`]; every quarantine write failure into retried or not, [`WriteFailure`]). All
//! of them reach AWS or any endpoint through the SDK's own `AWS_ENDPOINT_URL_*` settings.

mod bucket;
mod failure;
mod lambda;
mod queue;
mod seam;

pub use bucket::QuarantineBucket;
pub use failure::{FailureClass, InvokeFailure, WriteFailure};
pub use lambda::AwsBackend;
pub use queue::{Quarantine, SQS_MESSAGE_LIMIT, message_limit};
pub use seam::{Answer, Backend, InvokeRequest, QuarantineMessage};
