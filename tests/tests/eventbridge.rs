//! EventBridge events delivered to the router directly: tenant and token from `detail`, a
//! rejection answered with success (quarantined or logged), a transient failure answered with an
//! error so that EventBridge retries.

use std::time::Duration;

use cross_crate_tests::token_failure_cases;
use router::InvocationInfo;
use router::Outcome;
use serde_json::json;
use wiremock::Mock;
use wiremock::matchers::{method, path_regex};

use crate::util::*;

fn info() -> InvocationInfo {
    InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100))
}

#[tokio::test]
async fn events_of_each_tenant_are_invoked_with_that_tenant() {
    let server = lambda_server().await;
    let router = router(&server, &[]);
    for tenant in ["acme", "globex", "initech"] {
        let response = router
            .handle(&fixture(&format!("eventbridge/{tenant}.json")), &info())
            .await
            .expect("handled");
        assert_eq!(response, json!({"outcome": "invoked", "reason": null}));
    }
    let invocations = invocations(&server).await;
    assert_eq!(invocations.len(), 3);
    for i in &invocations {
        let tenant = i.tenant.clone().unwrap();
        assert_eq!(i.envelope["tenantId"], tenant);
        assert_eq!(i.envelope["source"], "eventbridge");
        assert_eq!(i.envelope["id"], format!("eb-{tenant}"));
        assert_eq!(i.envelope["correlationId"], format!("corr-{tenant}"));
        assert_eq!(i.envelope["eventSourceArn"], "saas.todo");
        assert_eq!(i.envelope["attributes"]["detailType"], "todo.created");
        assert!(i.envelope["payload"].get("tenantToken").is_none());
    }
}

#[tokio::test]
async fn every_token_failure_is_rejected_and_answered_with_success() {
    let server = lambda_server().await;
    let router = router(&server, &[]);
    for (case, _, _, reason) in token_failure_cases() {
        let event = fixture(&format!("eventbridge/token-failures/{case}.json"));
        let report = router.route_event(&event, &info()).await.unwrap();
        assert_eq!(report.outcomes[0].reason(), Some(reason), "{case}");
        // Not retried by EventBridge: a rejection will never succeed.
        let response = router.handle(&event, &info()).await.expect(case);
        assert_eq!(response["outcome"], "rejected", "{case}");
        assert_eq!(response["reason"], reason, "{case}");
    }
    assert!(invocations(&server).await.is_empty());
}

#[tokio::test]
async fn a_transient_failure_is_an_error_so_eventbridge_retries() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(lambda_error(500, "ServiceException"))
        .mount(&server)
        .await;
    let router = router(&server, &[("ROUTER_RETRY_MAX_ATTEMPTS", "2")]);
    let error = router
        .handle(&fixture("eventbridge/acme.json"), &info())
        .await
        .unwrap_err();
    assert!(
        matches!(error, router::BatchError::RetryLater(_)),
        "{error}"
    );
    assert!(error.to_string().contains("eb-acme"), "{error}");

    // 429 then 202: retried inside the invocation, success.
    let server = bare_server().await;
    answer_once_then_accept(&server, lambda_error(429, "TooManyRequestsException")).await;
    let router = crate::util::router(&server, &[]);
    let report = router
        .route_event(&fixture("eventbridge/globex.json"), &info())
        .await
        .unwrap();
    assert_eq!(report.outcomes[0], Outcome::Invoked { attempts: 2 });
}
