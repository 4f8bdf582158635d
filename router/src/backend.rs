//! The one seam in front of AWS: "invoke the backend for a tenant" (async, or sync with the
//! backend's answer), "write a message to the quarantine queue" and "keep a record in the
//! quarantine bucket".
//!
//! [`Backend`] is implemented by [`AwsBackend`] (aws-sdk-lambda and aws-sdk-sqs, pointed at AWS
//! or at any endpoint through the SDK's own `AWS_ENDPOINT_URL_*` settings; the quarantine bucket
//! through a SigV4-signed `PutObject`, [`QuarantineBucket`]) and by in-memory fakes in tests. Every Invoke failure is classified here, once, into
//! [`FailureClass`]; every quarantine write failure into retried or not ([`WriteFailure`]).

use std::future::Future;
use std::time::Duration;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_sqs::types::MessageAttributeValue;
use shared::TenantId;

use crate::config::InvocationType;

/// Longest retry-after hint taken into account (a Lambda invocation lasts 15 minutes at most).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

/// How an Invoke failure is handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureClass {
    /// Throttling, 5xx, timeouts, I/O: retried with backoff, then reported.
    Retryable,
    /// The request itself is unusable (400, 413, 415): the record is rejected.
    Rejected,
    /// The deployment is wrong (403, 404, …): not retried, reported for redelivery after a fix.
    NotRetried,
    /// The backend function's own deployment is broken (502 `KMS*`, `EC2*`, `ENI*`, `Subnet*`,
    /// `InvalidSecurityGroupID`, `InvalidSubnetID`, `InvalidZipFile`, `InvalidRuntime`): no
    /// retry within this invocation can succeed, so none is made; the record is reported for
    /// redelivery after the fix.
    DeploymentFault,
}

/// Whether a 5xx error code names a fault of the function's deployment (its KMS key, VPC
/// networking, package or runtime) rather than a passing condition
/// (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>, Errors). Decided
/// differently from a literal reading of "`EC2*`": `EC2ThrottledException` is throttling, so it
/// stays retried; `ResourceNotReadyException` (the function is still being created or
/// reconnected) stays retried too.
fn is_deployment_fault(code: &str) -> bool {
    let code = code.strip_suffix("Exception").unwrap_or(code);
    if code == "EC2Throttled" {
        return false;
    }
    ["KMS", "EC2", "ENI", "Subnet"]
        .iter()
        .any(|prefix| code.starts_with(prefix))
        || matches!(
            code,
            "InvalidSecurityGroupID" | "InvalidSubnetID" | "InvalidZipFile" | "InvalidRuntime"
        )
}

/// A failed Invoke attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeFailure {
    /// How to handle it.
    pub class: FailureClass,
    /// HTTP status, when the service answered.
    pub status: Option<u16>,
    /// Error code (`TooManyRequestsException`, `timeout`, `dispatch`, …).
    pub code: String,
    /// Message for the logs.
    pub message: String,
    /// The service's retry-after hint.
    pub retry_after: Option<Duration>,
}

impl InvokeFailure {
    /// Classifies an answer by HTTP status and error code, following the Invoke API's error list
    /// (<https://docs.aws.amazon.com/lambda/latest/api/API_Invoke.html>). Only the errors that
    /// describe the request itself reject the record; other 400s (`InvalidParameterValue` from a
    /// function that is not tenant-isolated, `RecursiveInvocation`, …) describe the deployment,
    /// so the record is reported for redelivery instead of being quarantined.
    pub fn from_status(
        status: u16,
        code: impl Into<String>,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        let code = code.into();
        let class = match (status, code.as_str()) {
            (500..=599, code) if is_deployment_fault(code) => FailureClass::DeploymentFault,
            // 409 ResourceConflict: the function is being updated; it will pass.
            (408 | 409 | 429 | 500..=599, _) => FailureClass::Retryable,
            (413 | 415, _) => FailureClass::Rejected,
            (400, "InvalidRequestContentException" | "RequestTooLargeException") => {
                FailureClass::Rejected
            }
            _ => FailureClass::NotRetried,
        };
        Self {
            class,
            status: Some(status),
            code,
            message: message.into(),
            retry_after,
        }
    }

    /// A transient failure with no answer from the service.
    pub fn transient(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            class: FailureClass::Retryable,
            status: None,
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The reason code recorded when this failure ends a record.
    pub fn reason(&self) -> &'static str {
        match (self.class, self.status) {
            (_, Some(429)) => "throttled",
            (FailureClass::Retryable, Some(_)) => "backend-unavailable",
            (FailureClass::Retryable, None) if self.code == "timeout" => "invoke-timeout",
            (FailureClass::Retryable, None) => "invoke-io",
            (FailureClass::Rejected, Some(413)) => "invoke-too-large",
            (FailureClass::Rejected, _) => "invoke-refused",
            (FailureClass::NotRetried, _) => "backend-misconfigured",
            (FailureClass::DeploymentFault, _) => "backend-deployment-fault",
        }
    }
}

/// One Invoke.
#[derive(Clone, Copy, Debug)]
pub struct InvokeRequest<'a> {
    /// `Event` (async) or `RequestResponse` (sync).
    pub invocation_type: InvocationType,
    /// Tenant id sent as `X-Amz-Tenant-Id`: always the one proven for the record.
    pub tenant: &'a TenantId,
    /// The serialised envelope.
    pub payload: &'a [u8],
    /// `X-Amzn-Trace-Id` to send, continuing the record's trace.
    pub trace_header: Option<&'a str>,
}

/// How the service answered an Invoke it accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An async Invoke was queued (202).
    Queued,
    /// A sync Invoke ran (200): the function's answer, and whether it is a function error
    /// (`X-Amz-Function-Error`, then the payload is `{errorType, errorMessage}`).
    Returned {
        /// The `X-Amz-Function-Error` header (`Unhandled`, …), if present.
        function_error: Option<String>,
        /// The function's answer.
        payload: Vec<u8>,
    },
}

/// What the router needs from AWS.
pub trait Backend: Send + Sync {
    /// Invokes the backend for `request.tenant`, async or sync as `request.invocation_type` says.
    fn invoke(
        &self,
        request: InvokeRequest<'_>,
    ) -> impl Future<Output = Result<Answer, InvokeFailure>> + Send;

    /// Whether a quarantine queue is configured.
    fn has_quarantine(&self) -> bool;

    /// The quarantine bucket (`ROUTER_QUARANTINE_BUCKET`), if one is configured.
    fn quarantine_bucket(&self) -> Option<&str> {
        None
    }

    /// Writes one message to the quarantine queue.
    fn quarantine(
        &self,
        message: QuarantineMessage<'_>,
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send;

    /// Keeps a record too large for a quarantine message in the quarantine bucket at `key`.
    fn keep_record(
        &self,
        _key: &str,
        _record: &[u8],
    ) -> impl Future<Output = Result<(), WriteFailure>> + Send {
        async {
            Err(WriteFailure::permanent(
                "no quarantine bucket is configured",
            ))
        }
    }
}

/// One message for the quarantine queue.
#[derive(Clone, Copy, Debug)]
pub struct QuarantineMessage<'a> {
    /// The message body (JSON).
    pub body: &'a str,
    /// The rejection's reason code, also sent as the `reason` message attribute.
    pub reason: &'a str,
    /// For a FIFO queue: its `MessageGroupId` and `MessageDeduplicationId`.
    pub fifo: Option<(&'a str, &'a str)>,
}

/// A failed quarantine write (SQS or S3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteFailure {
    /// Throttling, 5xx, timeouts, I/O: worth another attempt.
    pub retryable: bool,
    /// What went wrong, for the record's outcome.
    pub message: String,
}

impl WriteFailure {
    /// A failure no retry can mend.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            retryable: false,
            message: message.into(),
        }
    }

    /// A failure that may pass.
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            retryable: true,
            message: message.into(),
        }
    }
}

/// Where rejected records go: the quarantine queue, and the bucket that keeps records too large
/// for a queue message.
#[derive(Clone, Debug)]
pub struct Quarantine {
    /// The SQS client.
    pub sqs: aws_sdk_sqs::Client,
    /// `ROUTER_QUARANTINE_QUEUE_URL`.
    pub queue_url: String,
    /// `ROUTER_QUARANTINE_BUCKET`.
    pub bucket: Option<QuarantineBucket>,
}

/// The quarantine bucket: one `PutObject` per record kept, signed with SigV4 (rusty-s3, a
/// sans-IO S3 signer) with the SDK's own credentials and sent with the router's HTTPS client.
/// Not aws-sdk-s3: linking it made the router 1.4 MiB larger and, through cargo's feature
/// unification, every Invoke dearer in memory (42 MiB instead of 38 at the peak of a
/// 10,000-record batch, BENCHMARKS.md), for a path used only by records over 1 MiB.
#[derive(Clone, Debug)]
pub struct QuarantineBucket {
    bucket: rusty_s3::Bucket,
    credentials: aws_credential_types::provider::SharedCredentialsProvider,
    http: reqwest::Client,
}

impl QuarantineBucket {
    /// The bucket `name` in `region` at `endpoint`: an AWS S3 endpoint (virtual-hosted
    /// addressing) unless `path_style` (a local server such as moto's has no per-bucket host
    /// names).
    pub fn new(
        endpoint: &str,
        path_style: bool,
        name: &str,
        region: &str,
        credentials: aws_credential_types::provider::SharedCredentialsProvider,
    ) -> Result<Self, String> {
        let endpoint: url::Url = endpoint
            .parse()
            .map_err(|e| format!("the S3 endpoint {endpoint:?} is not a URL: {e}"))?;
        let style = if path_style {
            rusty_s3::UrlStyle::Path
        } else {
            rusty_s3::UrlStyle::VirtualHost
        };
        let bucket = rusty_s3::Bucket::new(endpoint, style, name.to_owned(), region.to_owned())
            .map_err(|e| format!("bucket {name:?}: {e}"))?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("cannot build an HTTPS client: {e}"))?;
        Ok(Self {
            bucket,
            credentials,
            http,
        })
    }

    /// The bucket's name.
    pub fn name(&self) -> &str {
        self.bucket.name()
    }

    async fn put(&self, key: &str, body: &[u8]) -> Result<(), WriteFailure> {
        use aws_credential_types::provider::ProvideCredentials;
        use rusty_s3::S3Action;
        let credentials = self
            .credentials
            .provide_credentials()
            .await
            .map_err(|e| WriteFailure::transient(format!("no AWS credentials: {e}")))?;
        let credentials = match credentials.session_token() {
            Some(token) => rusty_s3::Credentials::new_with_token(
                credentials.access_key_id(),
                credentials.secret_access_key(),
                token,
            ),
            None => rusty_s3::Credentials::new(
                credentials.access_key_id(),
                credentials.secret_access_key(),
            ),
        };
        let url = rusty_s3::actions::PutObject::new(&self.bucket, Some(&credentials), key)
            .sign(Duration::from_secs(300));
        // No encryption header: the bucket's default encryption (the stack's KMS key) applies.
        let answer = self
            .http
            .put(url)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| WriteFailure::transient(format!("PutObject was not answered: {e}")))?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            return Ok(());
        }
        let text = answer.text().await.unwrap_or_default();
        // S3's error document: <Error><Code>…</Code><Message>…</Message>…
        let code = text
            .split_once("<Code>")
            .and_then(|(_, rest)| rest.split_once("</Code>"))
            .map_or("Unknown", |(code, _)| code);
        Err(WriteFailure {
            retryable: status >= 500 || status == 429 || code == "SlowDown",
            message: format!("PutObject: {status} {code}"),
        })
    }
}

/// [`Backend`] over the AWS SDK.
#[derive(Clone, Debug)]
pub struct AwsBackend {
    lambda: aws_sdk_lambda::Client,
    function: String,
    quarantine: Option<Quarantine>,
}

impl AwsBackend {
    /// Builds the backend from SDK clients.
    pub fn new(
        lambda: aws_sdk_lambda::Client,
        function: String,
        quarantine: Option<Quarantine>,
    ) -> Self {
        Self {
            lambda,
            function,
            quarantine,
        }
    }
}

impl Backend for AwsBackend {
    async fn invoke(&self, request: InvokeRequest<'_>) -> Result<Answer, InvokeFailure> {
        let invocation_type = match request.invocation_type {
            InvocationType::Event => aws_sdk_lambda::types::InvocationType::Event,
            InvocationType::RequestResponse => {
                aws_sdk_lambda::types::InvocationType::RequestResponse
            }
        };
        let invoke = self
            .lambda
            .invoke()
            .function_name(&self.function)
            .invocation_type(invocation_type)
            .tenant_id(request.tenant.as_str())
            .payload(Blob::new(request.payload));
        // A per-request customisation costs a configuration merge on every call: only a record
        // that brings its own trace header pays it. The invocation's own trace id needs nothing:
        // the SDK's recursion-detection interceptor sends `_X_AMZN_TRACE_ID`, which the Lambda
        // runtime sets for each invocation.
        let result = match request.trace_header {
            Some(trace) => {
                let trace = trace.to_owned();
                invoke
                    .customize()
                    .mutate_request(move |http| {
                        // A malformed header value is dropped rather than failing the Invoke.
                        let _ = http
                            .headers_mut()
                            .try_insert("x-amzn-trace-id", trace.clone());
                    })
                    .send()
                    .await
            }
            None => invoke.send().await,
        };
        match (request.invocation_type, result) {
            (InvocationType::Event, Ok(output)) if output.status_code() == 202 => {
                Ok(Answer::Queued)
            }
            (InvocationType::RequestResponse, Ok(output)) if output.status_code() == 200 => {
                Ok(Answer::Returned {
                    function_error: output.function_error().map(str::to_owned),
                    payload: output.payload.map(Blob::into_inner).unwrap_or_default(),
                })
            }
            (invocation_type, Ok(output)) => Err(InvokeFailure::from_status(
                output.status_code() as u16,
                "UnexpectedStatus",
                match invocation_type {
                    InvocationType::Event => "an async Invoke must answer 202",
                    InvocationType::RequestResponse => "a sync Invoke must answer 200",
                },
                None,
            )),
            (_, Err(error)) => Err(classify(error)),
        }
    }

    fn has_quarantine(&self) -> bool {
        self.quarantine.is_some()
    }

    fn quarantine_bucket(&self) -> Option<&str> {
        self.quarantine
            .as_ref()?
            .bucket
            .as_ref()
            .map(QuarantineBucket::name)
    }

    async fn quarantine(&self, message: QuarantineMessage<'_>) -> Result<(), WriteFailure> {
        let Some(quarantine) = &self.quarantine else {
            return Err(WriteFailure::permanent("no quarantine queue is configured"));
        };
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(message.reason)
            .build()
            .map_err(|e| WriteFailure::permanent(e.to_string()))?;
        let mut send = quarantine
            .sqs
            .send_message()
            .queue_url(&quarantine.queue_url)
            .message_body(message.body)
            .message_attributes("reason", attribute);
        if let Some((group, deduplication)) = message.fifo {
            send = send
                .message_group_id(group)
                .message_deduplication_id(deduplication);
        }
        send.send().await.map(|_| ()).map_err(write_failure)
    }

    async fn keep_record(&self, key: &str, record: &[u8]) -> Result<(), WriteFailure> {
        let Some(bucket) = self.quarantine.as_ref().and_then(|q| q.bucket.as_ref()) else {
            return Err(WriteFailure::permanent(
                "no quarantine bucket is configured",
            ));
        };
        bucket.put(key, record).await
    }
}

/// Classifies a failed SQS call: no answer (timeout, I/O), throttling and 5xx are worth
/// another attempt; any other error (access denied, a missing queue or bucket, a KMS key that
/// cannot be used, an invalid message) is not.
fn write_failure<E: ProvideErrorMetadata + std::error::Error>(
    error: SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> WriteFailure {
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let service = context.err();
            let code = service.code().unwrap_or("Unknown");
            let message = format!("{status} {code}: {}", service.message().unwrap_or(""));
            let throttled = code.contains("Throttl")
                || matches!(
                    code,
                    "RequestThrottled" | "SlowDown" | "RequestLimitExceeded"
                );
            WriteFailure {
                retryable: status >= 500 || status == 429 || throttled,
                message,
            }
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            WriteFailure::transient(format!("{error}"))
        }
        _ => WriteFailure::permanent(format!("{error}")),
    }
}

fn classify(error: SdkError<InvokeError, aws_smithy_runtime_api::http::Response>) -> InvokeFailure {
    match &error {
        SdkError::ServiceError(context) => {
            let status = context.raw().status().as_u16();
            let service = context.err();
            let retry_after = match service {
                InvokeError::TooManyRequestsException(e) => e
                    .retry_after_seconds()
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .map(|d| d.min(MAX_RETRY_AFTER)),
                _ => None,
            }
            .or_else(|| {
                context
                    .raw()
                    .headers()
                    .get("retry-after")
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
            });
            InvokeFailure::from_status(
                status,
                service.code().unwrap_or("Unknown"),
                service.message().unwrap_or(""),
                retry_after,
            )
        }
        SdkError::TimeoutError(_) => InvokeFailure::transient("timeout", "the Invoke timed out"),
        SdkError::DispatchFailure(e) => {
            InvokeFailure::transient("dispatch", format!("the Invoke was not sent: {e:?}"))
        }
        SdkError::ResponseError(_) => {
            InvokeFailure::transient("response", "the Invoke answer could not be read")
        }
        _ => InvokeFailure {
            class: FailureClass::NotRetried,
            status: None,
            code: "construction".into(),
            message: format!("{error}"),
            retry_after: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_status() {
        let class = |s| InvokeFailure::from_status(s, "x", "", None).class;
        for s in [429, 500, 502, 503, 504, 409] {
            assert_eq!(class(s), FailureClass::Retryable, "{s}");
        }
        for s in [413, 415] {
            assert_eq!(class(s), FailureClass::Rejected, "{s}");
        }
        for s in [400, 401, 403, 404] {
            assert_eq!(class(s), FailureClass::NotRetried, "{s}");
        }
        let code = |c| InvokeFailure::from_status(400, c, "", None).class;
        assert_eq!(
            code("InvalidRequestContentException"),
            FailureClass::Rejected
        );
        assert_eq!(
            code("InvalidParameterValueException"),
            FailureClass::NotRetried
        );
        assert_eq!(
            code("RecursiveInvocationException"),
            FailureClass::NotRetried
        );
        assert_eq!(
            InvokeFailure::from_status(429, "x", "", None).reason(),
            "throttled"
        );
        assert_eq!(
            InvokeFailure::from_status(413, "x", "", None).reason(),
            "invoke-too-large"
        );
        assert_eq!(
            InvokeFailure::transient("timeout", "").reason(),
            "invoke-timeout"
        );
    }

    #[test]
    fn deployment_faults_are_a_class_of_their_own() {
        for code in [
            "KMSAccessDeniedException",
            "KMSDisabledException",
            "KMSInvalidStateException",
            "KMSNotFoundException",
            "EC2AccessDeniedException",
            "EC2UnexpectedException",
            "ENILimitReachedException",
            "SubnetIPAddressLimitReachedException",
            "InvalidSubnetIDException",
            "InvalidSecurityGroupIDException",
            "InvalidZipFileException",
            "InvalidRuntimeException",
        ] {
            let failure = InvokeFailure::from_status(502, code, "", None);
            assert_eq!(failure.class, FailureClass::DeploymentFault, "{code}");
            assert_eq!(failure.reason(), "backend-deployment-fault", "{code}");
        }
        for code in [
            "ResourceNotReadyException",
            "EC2ThrottledException",
            "ServiceException",
        ] {
            let status = if code == "ServiceException" { 500 } else { 502 };
            let failure = InvokeFailure::from_status(status, code, "", None);
            assert_eq!(failure.class, FailureClass::Retryable, "{code}");
        }
    }
}
