//! The Lambda side of the guard: the idempotency store the environment's variables ask for
//! ([`StoreSettings`], checked at start and failing closed), and [`run`], the runtime loop with
//! the guard, logging and per-invocation metrics around a tenant handler.

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

use super::context::TenantContext;
use super::error::{GuardError, InvokeError};
use super::guard::EnvironmentGuard;
use super::usage::{Usage, invocation_metrics};
use crate::Envelope;
use crate::idempotency::{self, IdempotencyStore, MemoryStore};

/// Shortest `BACKEND_IDEMPOTENCY_TTL_SECONDS`: Lambda's longest function timeout. The guard
/// cannot learn its function's timeout at start, and a completed record must be remembered at
/// least as long as a run can last.
pub const MIN_TTL_SECONDS: u64 = 900;

/// Where the guard's idempotency items live, as the environment's variables say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// `BACKEND_IDEMPOTENCY_TABLE` unset: the environment's memory.
    Memory,
    /// A DynamoDB table every environment shares, completed records kept `ttl_seconds`.
    Table {
        /// `BACKEND_IDEMPOTENCY_TABLE`.
        table: String,
        /// `BACKEND_IDEMPOTENCY_TTL_SECONDS` (default 3,600, at least [`MIN_TTL_SECONDS`]).
        ttl_seconds: u64,
    },
}

impl StoreSettings {
    /// Reads `BACKEND_IDEMPOTENCY_TABLE` and `BACKEND_IDEMPOTENCY_TTL_SECONDS` through `lookup`.
    /// Fails closed, naming the variable: a table set but blank is an error (never "memory"),
    /// and so is a TTL that is not a whole number of at least [`MIN_TTL_SECONDS`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let ttl_seconds = match lookup("BACKEND_IDEMPOTENCY_TTL_SECONDS") {
            None => idempotency::DEFAULT_TTL_SECONDS,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n >= MIN_TTL_SECONDS => n,
                _ => {
                    return Err(format!(
                        "BACKEND_IDEMPOTENCY_TTL_SECONDS: expected a whole number of seconds of \
                         at least {MIN_TTL_SECONDS} (Lambda's longest function timeout), got \
                         {text:?}"
                    ));
                }
            },
        };
        match lookup("BACKEND_IDEMPOTENCY_TABLE") {
            None => Ok(StoreSettings::Memory),
            Some(table) if table.trim().is_empty() => Err(
                "BACKEND_IDEMPOTENCY_TABLE is set but empty: name the table, or unset it to keep \
                 idempotency items in each environment's memory"
                    .to_owned(),
            ),
            Some(table) => Ok(StoreSettings::Table {
                table: table.trim().to_owned(),
                ttl_seconds,
            }),
        }
    }
}

/// The idempotency store the environment's variables ask for ([`StoreSettings`]): a DynamoDB
/// table shared by every environment, reached through the SDK's own configuration
/// (`AWS_ENDPOINT_URL_DYNAMODB` included), else the environment's memory, with a warning: a
/// duplicate that reaches another environment runs again.
pub async fn idempotency_store_from_env() -> Result<Box<dyn IdempotencyStore>, lambda_runtime::Error>
{
    store_from_env(None).await
}

/// [`idempotency_store_from_env`], its table reached with `sdk` when given (the tenant's
/// session, with tenant-scoped access), else the SDK's own configuration.
async fn store_from_env(
    sdk: Option<&SdkConfigRef>,
) -> Result<Box<dyn IdempotencyStore>, lambda_runtime::Error> {
    match StoreSettings::from_lookup(|name| std::env::var(name).ok())? {
        StoreSettings::Memory => {
            tracing::warn!(
                message = "BACKEND_IDEMPOTENCY_TABLE is not set: duplicates are recognised within \
                           one execution environment only, and a redelivery that reaches another \
                           environment of the tenant runs again",
            );
            Ok(Box::new(MemoryStore::default()))
        }
        StoreSettings::Table { table, ttl_seconds } => {
            dynamodb_store(table, ttl_seconds, sdk).await
        }
    }
}

/// The SDK configuration a store may be given.
#[cfg(feature = "dynamodb")]
type SdkConfigRef = aws_config::SdkConfig;
#[cfg(not(feature = "dynamodb"))]
type SdkConfigRef = ();

#[cfg(feature = "dynamodb")]
async fn dynamodb_store(
    table: String,
    ttl: u64,
    sdk: Option<&SdkConfigRef>,
) -> Result<Box<dyn IdempotencyStore>, lambda_runtime::Error> {
    let client = match sdk {
        Some(sdk) => aws_sdk_dynamodb::Client::new(sdk),
        None => aws_sdk_dynamodb::Client::new(
            &aws_config::defaults(aws_config::BehaviorVersion::latest())
                .load()
                .await,
        ),
    };
    Ok(Box::new(idempotency::DynamoDbStore::new(
        client,
        table,
        std::time::Duration::from_secs(ttl),
    )))
}

#[cfg(not(feature = "dynamodb"))]
async fn dynamodb_store(
    table: String,
    _ttl: u64,
    _sdk: Option<&SdkConfigRef>,
) -> Result<Box<dyn IdempotencyStore>, lambda_runtime::Error> {
    Err(format!(
        "BACKEND_IDEMPOTENCY_TABLE={table:?}, but this function was built without the \
         DynamoDB store (the `dynamodb` feature of `shared`)"
    )
    .into())
}

/// The environment's guard as its variables ask for it: the idempotency store
/// ([`StoreSettings`]) and, with `BACKEND_TENANT_ROLE_ARN`, tenant-scoped access — the store then
/// reached with the tenant's session too. Without it, a warning that every tenant shares the
/// execution role's access.
pub async fn guard_from_env(function: String) -> Result<EnvironmentGuard, lambda_runtime::Error> {
    let lookup = |name: &str| std::env::var(name).ok();
    #[cfg(feature = "tenant-access")]
    if let Some(settings) = super::access::AccessSettings::from_lookup(lookup)? {
        let base = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let access = std::sync::Arc::new(super::access::TenantAccess::new(base, settings));
        let store = store_from_env(Some(access.config())).await?;
        return Ok(EnvironmentGuard::with_store(function, store).with_access(access));
    }
    #[cfg(not(feature = "tenant-access"))]
    if lookup("BACKEND_TENANT_ROLE_ARN").is_some() {
        return Err(
            "BACKEND_TENANT_ROLE_ARN is set, but this function was built without \
                    tenant-scoped access (the `tenant-access` feature of `shared`)"
                .into(),
        );
    }
    tracing::warn!(
        message = "BACKEND_TENANT_ROLE_ARN is not set: every tenant's environment holds the \
                   execution role's credentials, so tenants share its data access",
    );
    let store = store_from_env(None).await?;
    Ok(EnvironmentGuard::with_store(function, store))
}

/// Runs the Lambda runtime loop with `handler` behind an [`EnvironmentGuard`], logging inside an
/// `invocation` span (`function_request_id`, `xray_trace_id`, `cold_start`, `tenant_id`) and
/// writing one EMF document per invocation to stdout (namespace `BACKEND_METRICS_NAMESPACE`,
/// default `TenantBackend`).
pub async fn run<F, Fut, E>(handler: F) -> Result<(), lambda_runtime::Error>
where
    F: Fn(TenantContext, Envelope) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Value, E>> + Send,
    E: Display + Send,
{
    use tracing::Instrument;

    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "backend".into());
    let guard: &'static EnvironmentGuard = Box::leak(Box::new(guard_from_env(function).await?));
    let handler = &*Box::leak(Box::new(handler));
    let cold: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(true)));
    let namespace: &'static str = Box::leak(
        std::env::var("BACKEND_METRICS_NAMESPACE")
            .unwrap_or_else(|_| "TenantBackend".into())
            .into_boxed_str(),
    );
    let memory_mb: Option<u32> = std::env::var("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        .ok()
        .and_then(|mb| mb.parse().ok());
    let service: &'static str = Box::leak(
        std::env::var("AWS_LAMBDA_FUNCTION_NAME")
            .unwrap_or_else(|_| "backend".into())
            .into_boxed_str(),
    );
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<Box<serde_json::value::RawValue>>| async move {
            let context = &event.context;
            let cold_start = cold.swap(false, Ordering::Relaxed);
            let span = tracing::info_span!(
                "invocation",
                function_request_id = context.request_id.as_str(),
                xray_trace_id = context.xray_trace_id.as_deref(),
                cold_start,
                tenant_id = context.tenant_id.as_deref(),
            );
            let started = std::time::Instant::now();
            let result = guard
                .invoke_until(
                    context.tenant_id.as_deref(),
                    &context.request_id,
                    context.deadline as i64,
                    event.payload.get(),
                    handler,
                )
                .instrument(span.clone())
                .await;
            let took = started.elapsed();
            let usage = Usage {
                payload: event.payload.get(),
                new_environment: cold_start,
                memory_mb,
                architecture: crate::pricing::this_architecture(),
                duration: took,
            };
            let document = invocation_metrics(
                namespace,
                service,
                context.tenant_id.as_deref(),
                &context.request_id,
                &result,
                &usage,
                0,
            );
            span.in_scope(|| {
                tracing::info!(
                    message = "tenant usage",
                    records = document["Records"].as_f64(),
                    payload_bytes = usage.payload.len(),
                    duration_ms = took.as_secs_f64() * 1000.0,
                    new_environment = cold_start,
                    memory_mb,
                );
            });
            println!("{document}");
            crate::telemetry::flush();
            if matches!(result, Err(InvokeError::Refused(GuardError::FailedClosed))) {
                // This environment will serve nobody again: end it shortly after the error is
                // reported, so the platform replaces it instead of failing every later event.
                std::thread::spawn(|| {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                    std::process::exit(70);
                });
            }
            result
        },
    ))
    .await
}
