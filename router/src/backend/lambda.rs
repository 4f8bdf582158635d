//! The Invoke through aws-sdk-lambda: async (`Event`, answered 202) or sync (`RequestResponse`,
//! answered 200 with the function's answer), with the tenant id as `X-Amz-Tenant-Id` and the
//! record's own trace header when it brings one; every SDK failure classified once
//! ([`super::failure`]).

use std::time::Duration;

use aws_sdk_lambda::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError;
use aws_sdk_lambda::primitives::Blob;

use super::bucket::QuarantineBucket;
use super::failure::{FailureClass, InvokeFailure, WriteFailure};
use super::queue::{Quarantine, SQS_MESSAGE_LIMIT};
use super::seam::{Answer, Backend, InvokeRequest, QuarantineMessage};
use crate::config::InvocationType;

/// Longest retry-after hint taken into account (a Lambda invocation lasts 15 minutes at most).
const MAX_RETRY_AFTER: Duration = Duration::from_secs(900);

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

    fn quarantine_message_limit(&self) -> usize {
        self.quarantine
            .as_ref()
            .map_or(SQS_MESSAGE_LIMIT, |q| q.max_message_bytes)
    }

    async fn quarantine(&self, message: QuarantineMessage<'_>) -> Result<(), WriteFailure> {
        let Some(quarantine) = &self.quarantine else {
            return Err(WriteFailure::permanent("no quarantine queue is configured"));
        };
        quarantine.send(message).await
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
