//! Cross-crate tests, compiled as one binary: the router's real handler and the real AWS SDK
//! clients against local HTTP servers started by each test (wiremock), which record every request
//! and inject faults.

mod eventbridge;
mod fairness;
mod faults;
mod isolation;
mod jwks;
mod observability;
mod quarantine;
mod registry;
mod request_response;
mod schemas;
mod settings;
mod sqs_fixtures;
mod streams;
mod tenant_batch;
mod tokens;
mod util;
