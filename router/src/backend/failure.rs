//! How a failed call to AWS is handled, decided here once: every Invoke failure is classified
//! into a [`FailureClass`] by HTTP status and error code (the Invoke API's error list), and every
//! quarantine write failure (SQS or S3) into retried or not ([`WriteFailure`]).

use std::time::Duration;

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
/// differently from a literal reading of "`EC2*`": `EC2ThrottledException` is throttling and
/// `EC2UnexpectedException` an unexpected EC2 error while setting up the function's network
/// interface ("retry later"), so both stay retried; `ResourceNotReadyException` (the function is
/// still being created or reconnected) stays retried too.
fn is_deployment_fault(code: &str) -> bool {
    let code = code.strip_suffix("Exception").unwrap_or(code);
    if matches!(code, "EC2Throttled" | "EC2Unexpected") {
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
            "EC2UnexpectedException",
            "ServiceException",
        ] {
            let status = if code == "ServiceException" { 500 } else { 502 };
            let failure = InvokeFailure::from_status(status, code, "", None);
            assert_eq!(failure.class, FailureClass::Retryable, "{code}");
        }
    }
}
