//! The Lambda Invoke API on 127.0.0.1 (`POST /2015-03-31/functions/{name}/invocations`), answering
//! with AWS's error shapes (`x-amzn-ErrorType` header and a JSON body) so that aws-sdk-lambda maps
//! every answer to the right `InvokeError` variant
//! (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>).

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::json;
use shared::TenantId;

use crate::environment::InvocationResult;
use crate::pool::PoolError;
use crate::service::{LogEntry, Request, Service, now};

/// Largest async (`Event`) payload: 1 MB.
pub const ASYNC_LIMIT: usize = 1024 * 1024;
/// Largest synchronous payload: 6 MB.
pub const SYNC_LIMIT: usize = 6 * 1024 * 1024;

/// The HTTP application.
pub fn app(service: Arc<Service>) -> Router {
    Router::new()
        .route("/2015-03-31/functions/{name}/invocations", post(invoke))
        // Sizes are checked by the handler, so that an oversized request gets AWS's error shape.
        .layer(DefaultBodyLimit::disable())
        .with_state(service)
}

/// Serves the Invoke API on `address` (port 0 picks one) and returns the bound address.
pub async fn serve(
    service: Arc<Service>,
    address: SocketAddr,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    serve_on(service, listener)
}

/// Serves the Invoke API on a bound `listener` and returns its address.
pub fn serve_on(
    service: Arc<Service>,
    listener: tokio::net::TcpListener,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let bound = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app(service)).await;
    });
    Ok((bound, handle))
}

fn error(status: StatusCode, error_type: &str, message: &str, request_id: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "x-amzn-errortype",
        HeaderValue::from_str(error_type).expect("ascii"),
    );
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Ok(id) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", id);
    }
    let mut body = json!({"Type": "User", "message": message});
    if status == StatusCode::TOO_MANY_REQUESTS {
        body["Reason"] = json!("ConcurrentInvocationLimitExceeded");
    }
    if status.is_server_error() {
        body["Type"] = json!("Service");
    }
    (status, headers, body.to_string()).into_response()
}

async fn invoke(
    State(service): State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let invocation_type = header("x-amz-invocation-type")
        .unwrap_or("RequestResponse")
        .to_owned();
    let tenant = header("x-amz-tenant-id").map(str::to_owned);
    let trace_id = header("x-amzn-trace-id")
        .map(str::to_owned)
        .unwrap_or_else(|| {
            format!(
                "Root=1-{:08x}-{};Parent={:016x};Sampled=0",
                chrono::Utc::now().timestamp(),
                &request_id.replace('-', "")[..24],
                fastrand::u64(..)
            )
        });
    let refuse = |status: StatusCode, error_type: &str, message: &str, log_status: &str| {
        service.record(LogEntry {
            timestamp: now(),
            request_id: request_id.clone(),
            function: name.clone(),
            tenant_id: tenant.clone(),
            environment_id: None,
            pid: None,
            invocation_type: invocation_type.clone(),
            attempt: 1,
            status: log_status.to_owned(),
            error_type: Some(error_type.to_owned()),
            cold_start: false,
            duration_ms: 0,
            memory_mb: service
                .function(&name)
                .map_or(crate::service::DEFAULT_MEMORY_MB, |f| f.memory_mb),
            architecture: shared::pricing::this_architecture().to_owned(),
            payload_bytes: body.len(),
            records: 0,
        });
        error(status, error_type, message, &request_id)
    };

    // A name, `name:qualifier`, a partial ARN (`<account>:function:name`) or a full ARN; the
    // stand-in has one version, `$LATEST`.
    let (name, qualifier) = function_name(&name);
    let name = name.to_owned();
    if qualifier.is_some_and(|q| q != "$LATEST") {
        let qualifier = qualifier.unwrap_or_default();
        return refuse(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!(
                "Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}:{qualifier}"
            ),
            "rejected",
        );
    }
    let Some(function) = service.function(&name).cloned() else {
        return refuse(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}"),
            "rejected",
        );
    };
    if !matches!(
        invocation_type.as_str(),
        "Event" | "RequestResponse" | "DryRun"
    ) {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("Unsupported invocation type {invocation_type}"),
            "rejected",
        );
    }
    match (&tenant, function.per_tenant) {
        (None, true) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                "The function uses tenant isolation mode: TenantId is required",
                "rejected",
            );
        }
        (Some(_), false) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "InvalidParameterValueException",
                "TenantId is only valid for functions in tenant isolation mode",
                "rejected",
            );
        }
        (Some(tenant), true) => {
            if let Err(e) = TenantId::parse(tenant) {
                return refuse(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameterValueException",
                    &format!("Invalid TenantId: {e}"),
                    "rejected",
                );
            }
        }
        (None, false) => {}
    }
    let limit = if invocation_type == "Event" {
        ASYNC_LIMIT
    } else {
        SYNC_LIMIT
    };
    if body.len() > limit {
        return refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!(
                "Request must be smaller than {limit} bytes for the {invocation_type} invocation type"
            ),
            "rejected",
        );
    }
    if !body.is_empty() && serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() {
        return refuse(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContentException",
            "Could not parse request body into json: the payload is not valid JSON",
            "rejected",
        );
    }
    if let Some(status) = service.draw_fault() {
        let (status_code, error_type, message) = match status {
            429 => (
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyRequestsException",
                "Rate exceeded",
            ),
            502 => (
                StatusCode::BAD_GATEWAY,
                "ResourceNotReadyException",
                "injected fault",
            ),
            503 => (
                StatusCode::SERVICE_UNAVAILABLE,
                "ServiceException",
                "injected fault",
            ),
            _ => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "ServiceException",
                "injected fault",
            ),
        };
        return refuse(
            status_code,
            error_type,
            message,
            &format!("injected-{status}"),
        );
    }

    match invocation_type.as_str() {
        "DryRun" => (StatusCode::NO_CONTENT, [("x-amzn-requestid", request_id)]).into_response(),
        // Lambda queues an async invocation whatever the function's concurrency: one that finds
        // no capacity waits in the queue (logged `waiting-for-capacity`), it is not refused.
        "Event" => {
            let request = Request {
                function: name,
                tenant,
                request_id: request_id.clone(),
                invocation_type: "Event",
                trace_id,
            };
            service.enqueue(request, body);
            (StatusCode::ACCEPTED, [("x-amzn-requestid", request_id)]).into_response()
        }
        _ => {
            let request = Request {
                function: name,
                tenant,
                request_id: request_id.clone(),
                invocation_type: "RequestResponse",
                trace_id,
            };
            // Run it to the end even if the caller goes away: the environment stays busy until
            // the function answers, as in Lambda.
            let runner = service.clone();
            let result = tokio::spawn(async move { runner.attempt(&request, 1, body).await })
                .await
                .unwrap_or_else(|e| {
                    Err(PoolError::StartFailed(format!("stand-in task failed: {e}")))
                });
            match result {
                Ok(InvocationResult::Success(body)) => (
                    StatusCode::OK,
                    [
                        ("x-amzn-requestid", request_id),
                        ("x-amz-executed-version", "$LATEST".to_owned()),
                    ],
                    body,
                )
                    .into_response(),
                Ok(failure) => (
                    StatusCode::OK,
                    [
                        ("x-amzn-requestid", request_id),
                        ("x-amz-function-error", "Unhandled".to_owned()),
                        ("x-amz-executed-version", "$LATEST".to_owned()),
                    ],
                    failure.error_document().unwrap_or_default().to_string(),
                )
                    .into_response(),
                Err(PoolError::Throttled) => error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "TooManyRequestsException",
                    "Rate exceeded",
                    &request_id,
                ),
                Err(PoolError::StartFailed(e)) => error(
                    StatusCode::BAD_GATEWAY,
                    "ResourceNotReadyException",
                    &e,
                    &request_id,
                ),
            }
        }
    }
}

/// Splits an Invoke's function name into the function and its qualifier: `name`,
/// `name:qualifier`, `<account>:function:name[:qualifier]` or
/// `arn:aws:lambda:<region>:<account>:function:name[:qualifier]`.
fn function_name(raw: &str) -> (&str, Option<&str>) {
    let rest = match raw.split_once(":function:") {
        Some((_, rest)) => rest,
        None => raw,
    };
    match rest.split_once(':') {
        Some((name, qualifier)) => (name, Some(qualifier)),
        None => (rest, None),
    }
}

#[cfg(test)]
mod tests {
    use super::function_name;

    #[test]
    fn function_names_arns_and_qualifiers() {
        assert_eq!(function_name("backend"), ("backend", None));
        assert_eq!(
            function_name("backend:$LATEST"),
            ("backend", Some("$LATEST"))
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:000000000000:function:backend"),
            ("backend", None)
        );
        assert_eq!(
            function_name("arn:aws:lambda:us-east-1:000000000000:function:backend:prod"),
            ("backend", Some("prod"))
        );
        assert_eq!(
            function_name("000000000000:function:backend"),
            ("backend", None)
        );
    }
}
