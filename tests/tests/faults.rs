//! Fault injection on the Invoke API: throttling, 5xx, 413, slow answers and the deadline.

use std::time::{Duration, Instant};

use cross_crate_tests::{T0_MS, TestKey, body, claims, sign, sqs_event, sqs_record};
use router::InvocationInfo;
use router::Outcome;
use serde_json::json;
use wiremock::matchers::{header, method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::util::*;

fn batch(n: usize) -> String {
    let records = (0..n)
        .map(|i| {
            let tenant = format!("tenant-{}", i % 3);
            let token = sign(TestKey::Es256, &claims(&tenant));
            sqs_record(
                &format!("m-{i}"),
                &body(&tenant, &token, json!({"n": i})),
                T0_MS,
            )
        })
        .collect();
    sqs_event(records).to_string()
}

#[tokio::test]
async fn throttled_then_accepted_is_retried_and_succeeds() {
    let server = bare_server().await;
    answer_once_then_accept(&server, lambda_error(429, "TooManyRequestsException")).await;
    let router = router(&server, &[]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router.route_event(&batch(1), &info).await.unwrap();
    assert_eq!(report.outcomes, [Outcome::Invoked { attempts: 2 }]);
    assert!(reported(&report.response).is_empty());
    assert_eq!(invocations(&server).await.len(), 2);
}

#[tokio::test]
async fn a_retry_after_hint_is_honoured() {
    let server = bare_server().await;
    answer_once_then_accept(
        &server,
        lambda_error(429, "TooManyRequestsException").insert_header("Retry-After", "1"),
    )
    .await;
    let router = router(&server, &[]);
    let started = Instant::now();
    let response = handle(&router, &batch(1)).await;
    // The router may not come back sooner than the service asked (a lower bound, not a benchmark).
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(reported(&response).is_empty());
}

#[tokio::test]
async fn a_persistent_500_is_reported_after_the_retries() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(lambda_error(500, "ServiceException"))
        .mount(&server)
        .await;
    let router = router(&server, &[("ROUTER_RETRY_MAX_ATTEMPTS", "4")]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router.route_event(&batch(2), &info).await.unwrap();
    for outcome in &report.outcomes {
        assert_eq!(outcome.reason(), Some("backend-unavailable"));
        assert!(outcome.is_reported());
    }
    assert_eq!(reported(&report.response), ["m-0", "m-1"]);
    assert_eq!(invocations(&server).await.len(), 8, "4 attempts per record");
}

#[tokio::test]
async fn a_413_is_not_retried_and_rejects_the_record() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(lambda_error(413, "RequestTooLargeException"))
        .mount(&server)
        .await;
    let router = router(&server, &[]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router.route_event(&batch(1), &info).await.unwrap();
    assert!(matches!(
        report.outcomes[0],
        Outcome::Rejected {
            reason: "invoke-too-large",
            quarantined: false,
            ..
        }
    ));
    assert_eq!(reported(&report.response), ["m-0"]);
    assert_eq!(invocations(&server).await.len(), 1, "never retried");
}

#[tokio::test]
async fn a_404_is_reported_without_retrying() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(lambda_error(404, "ResourceNotFoundException"))
        .mount(&server)
        .await;
    let router = router(&server, &[]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router.route_event(&batch(1), &info).await.unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("backend-misconfigured"));
    assert!(matches!(report.outcomes[0], Outcome::Failed { .. }));
    assert_eq!(invocations(&server).await.len(), 1);
}

/// A 502 naming the function's own deployment (its KMS key, VPC networking, package) cannot
/// pass within this invocation: reported at once, not retried; ResourceNotReady is retried.
#[tokio::test]
async fn a_deployment_fault_is_reported_without_retrying() {
    for (code, attempts, reason) in [
        ("KMSAccessDeniedException", 1, "backend-deployment-fault"),
        ("ENILimitReachedException", 1, "backend-deployment-fault"),
        ("InvalidZipFileException", 1, "backend-deployment-fault"),
        ("ResourceNotReadyException", 3, "backend-unavailable"),
    ] {
        let server = bare_server().await;
        Mock::given(method("POST"))
            .and(path_regex(INVOKE_PATH))
            .respond_with(lambda_error(502, code))
            .mount(&server)
            .await;
        let router = router(&server, &[("ROUTER_RETRY_MAX_ATTEMPTS", "3")]);
        let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
        let report = router.route_event(&batch(1), &info).await.unwrap();
        assert_eq!(report.outcomes[0].reason(), Some(reason), "{code}");
        assert!(
            matches!(report.outcomes[0], Outcome::Failed { .. }),
            "{code}"
        );
        assert_eq!(reported(&report.response), ["m-0"], "{code}");
        assert_eq!(invocations(&server).await.len(), attempts, "{code}");
    }
}

#[tokio::test]
async fn a_slow_endpoint_never_makes_the_handler_miss_its_deadline() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(ResponseTemplate::new(202).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let router = router(
        &server,
        &[
            ("ROUTER_MAX_IN_FLIGHT", "2"),
            ("ROUTER_DEADLINE_MARGIN_MS", "400"),
        ],
    );
    let budget = Duration::from_millis(1500);
    let info = InvocationInfo::with_budget(budget, Duration::from_millis(400));
    let started = Instant::now();
    let report = router.route_event(&batch(10), &info).await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed < budget,
        "answered after {elapsed:?}, the deadline was {budget:?}"
    );
    // Every record is reported: the first ones timed out, the others were never started.
    assert_eq!(reported(&report.response).len(), 10);
    let reasons: Vec<_> = report
        .outcomes
        .iter()
        .map(|o| o.reason().unwrap())
        .collect();
    assert!(reasons.contains(&"deadline"), "{reasons:?}");
    assert!(
        reasons
            .iter()
            .all(|r| *r == "deadline" || *r == "invoke-timeout"),
        "{reasons:?}"
    );
    let started_records = invocations(&server).await.len();
    assert!(started_records < 10, "{started_records} records started");
}

#[tokio::test]
async fn a_transient_failure_in_a_fifo_group_stops_that_group_only() {
    let server = bare_server().await;
    answer_tenant(&server, "acme", lambda_error(503, "ServiceException")).await;
    accept_the_rest(&server).await;
    let router = router(&server, &[("ROUTER_RETRY_MAX_ATTEMPTS", "2")]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router
        .route_event(&fixture("sqs/fifo-groups.json"), &info)
        .await
        .unwrap();
    // acme: fifo-1 fails after 2 attempts; fifo-3 and fifo-5 are never started.
    assert_eq!(report.outcomes[0].reason(), Some("backend-unavailable"));
    assert_eq!(report.outcomes[2].reason(), Some("earlier-record-failed"));
    assert_eq!(report.outcomes[4].reason(), Some("earlier-record-failed"));
    // globex goes on.
    assert!(matches!(report.outcomes[1], Outcome::Invoked { .. }));
    assert!(matches!(report.outcomes[3], Outcome::Invoked { .. }));
    assert_eq!(reported(&report.response), ["fifo-1", "fifo-3", "fifo-5"]);
    let acme = invocations(&server)
        .await
        .into_iter()
        .filter(|i| i.tenant.as_deref() == Some("acme"))
        .count();
    assert_eq!(acme, 2, "only fifo-1's two attempts reached the API");
}

#[tokio::test]
async fn a_slow_quarantine_queue_never_makes_the_handler_miss_its_deadline() {
    let server = lambda_server().await;
    Mock::given(method("POST"))
        .and(header("x-amz-target", "AmazonSQS.SendMessage"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let url = format!("{}/123456789012/quarantine", server.uri());
    let router = router(
        &server,
        &[
            ("ROUTER_QUARANTINE_QUEUE_URL", url.as_str()),
            ("ROUTER_DEADLINE_MARGIN_MS", "400"),
        ],
    );
    let budget = Duration::from_millis(1500);
    let info = InvocationInfo::with_budget(budget, Duration::from_millis(400));
    let started = Instant::now();
    let report = router
        .route_event(&fixture("sqs/wrong-aud.json"), &info)
        .await
        .unwrap();
    assert!(
        started.elapsed() < budget,
        "answered after {:?}",
        started.elapsed()
    );
    assert!(matches!(
        &report.outcomes[0],
        Outcome::Rejected { quarantined: false, detail, .. } if detail.contains("deadline")
    ));
    assert_eq!(reported(&report.response), ["aud-1"]);
}

#[tokio::test]
async fn a_slow_jwks_never_makes_the_handler_miss_its_deadline() {
    let server = lambda_server().await;
    let issuer = bare_server().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&issuer)
        .await;
    let jwks = format!("{}/jwks.json", issuer.uri());
    let router = router(
        &server,
        &[
            ("ROUTER_JWKS", jwks.as_str()),
            ("ROUTER_DEADLINE_MARGIN_MS", "400"),
        ],
    );
    let budget = Duration::from_millis(1500);
    let info = InvocationInfo::with_budget(budget, Duration::from_millis(400));
    let started = Instant::now();
    let report = router.route_event(&batch(3), &info).await.unwrap();
    assert!(
        started.elapsed() < budget,
        "answered after {:?}",
        started.elapsed()
    );
    assert_eq!(reported(&report.response).len(), 3);
    assert!(invocations(&server).await.is_empty());
}
