//! A local stand-in for the Lambda service, so the whole system runs and is tested end to end with
//! no AWS account. Its execution environments are real OS processes:
//!
//! - [`api`]: the Invoke API (`Event`, `RequestResponse`, `DryRun`, `X-Amz-Tenant-Id`) with AWS's
//!   error shapes and optional fault injection;
//! - [`pool`]: per-tenant environments — one tenant per environment for life, reuse for the same
//!   tenant only, a limit that throttles like Lambda, idle stop, crash replacement;
//! - [`environment`]: one process and the Runtime API it talks to;
//! - [`service`]: the async queue with Lambda's two retries, the invocation log and the results
//!   file (async destination records);
//! - [`esm`]: event source mappings — SQS, Kinesis and DynamoDB Streams pollers with Lambda's
//!   semantics, against any AWS-API endpoint;
//! - [`config`]: the configuration file of `local-lambda run` (functions and mappings);
//! - [`run`]: `local-lambda run CONFIG`, the stand-in with its mappings;
//! - [`replay`]: recorded events through the router into tenant-isolated backends;
//! - [`usage`]: usage and cost per tenant from the invocation log;
//! - [`conformance`]: the conformance kit, checking any backend's tenant guard.

pub mod api;
pub mod config;
pub mod conformance;
pub mod environment;
pub mod esm;
pub mod pool;
pub mod replay;
pub mod run;
pub mod service;
pub mod usage;
