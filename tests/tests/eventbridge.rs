//! EventBridge events delivered to the router directly: tenant and token from `detail`, a
//! rejection answered with success (quarantined or logged), a transient failure answered with an
//! error so that EventBridge retries.

use std::time::Duration;

use cross_crate_tests::{T0_MS, TestKey, claims, eventbridge_event, sign, token_failure_cases};
use router::InvocationInfo;
use router::Outcome;
use serde_json::json;
use wiremock::Mock;
use wiremock::matchers::{method, path_regex};

use crate::util::*;

/// Processed a second after the fixtures were recorded: a direct EventBridge event is judged at
/// processing time.
fn info() -> InvocationInfo {
    at(T0_MS + 1_000)
}

fn at(now_ms: i64) -> InvocationInfo {
    let mut info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    info.now_ms = now_ms;
    info
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
async fn every_token_failure_is_quarantined_and_answered_with_success() {
    let server = lambda_server().await;
    let url = mount_quarantine(&server).await;
    let router = router(&server, &[("ROUTER_QUARANTINE_QUEUE_URL", url.as_str())]);
    for (case, _, _, reason) in token_failure_cases() {
        let event = fixture(&format!("eventbridge/token-failures/{case}.json"));
        let report = router.route_event(&event, &info()).await.unwrap();
        assert_eq!(report.outcomes[0].reason(), Some(reason), "{case}");
        // Quarantined, so handled: a rejection will never succeed, no retry is asked for.
        let response = router.handle(&event, &info()).await.expect(case);
        assert_eq!(response["outcome"], "rejected", "{case}");
        assert_eq!(response["reason"], reason, "{case}");
    }
    assert_eq!(
        quarantined(&server).await.len(),
        2 * token_failure_cases().len()
    );
    assert!(invocations(&server).await.is_empty());
}

/// A rejected event that the quarantine queue does not hold (none configured, or the write
/// failed) fails the invocation, so Lambda's async retries and the on-failure destination keep
/// it: acknowledging it would lose it.
#[tokio::test]
async fn a_rejection_not_in_the_quarantine_queue_fails_the_invocation() {
    // No SendMessage answer is mounted: with a queue configured, every write fails.
    let server = lambda_server().await;
    let url = format!("{}/123456789012/quarantine", server.uri());
    for overrides in [vec![], vec![("ROUTER_QUARANTINE_QUEUE_URL", url.as_str())]] {
        let router = router(&server, &overrides);
        for (case, _, _, reason) in token_failure_cases() {
            let event = fixture(&format!("eventbridge/token-failures/{case}.json"));
            let error = router.handle(&event, &info()).await.unwrap_err();
            assert!(
                matches!(error, router::BatchError::RetryLater(_)),
                "{case}: {error}"
            );
            let text = error.to_string();
            assert!(
                text.contains("rejected") && text.contains(reason),
                "{case}: {text}"
            );
        }
    }
    assert!(invocations(&server).await.is_empty());
}

/// The producer sets `time`: a token valid at the event's `time` but expired when the router
/// processes it is refused, so a leaked token cannot be replayed by backdating the event.
#[tokio::test]
async fn tokens_are_judged_at_processing_time_not_at_the_events_time() {
    let server = lambda_server().await;
    let url = mount_quarantine(&server).await;
    let router = router(
        &server,
        &[
            ("ROUTER_QUARANTINE_QUEUE_URL", url.as_str()),
            ("ROUTER_MAX_RECORD_AGE_SECONDS", "600"),
        ],
    );
    // Valid from T0 - 60 s to T0 + 3600 s; the event claims to be from T0.
    let token = sign(TestKey::Es256, &claims("acme"));
    let event = eventbridge_event(
        "eb-backdated",
        json!({"tenantId": "acme", "tenantToken": token, "item": {"title": "t"}}),
    )
    .to_string();
    let report = router
        .route_event(&event, &at(T0_MS + 1_000))
        .await
        .unwrap();
    assert_eq!(report.outcomes[0], Outcome::Invoked { attempts: 1 });
    // Two hours later the same event (same `time`) carries an expired token.
    let two_hours_later = T0_MS + 2 * 3_600_000;
    let report = router
        .route_event(&event, &at(two_hours_later))
        .await
        .unwrap();
    assert_eq!(report.outcomes[0].reason(), Some("token-expired"));
    // The event's age is not taken from `time` either: a day-old `time` is not "too old", and
    // the envelope's arrivedAt is the processing time, with `time` passed on as an attribute.
    let mut old = eventbridge_event(
        "eb-old-time",
        json!({"tenantId": "acme", "tenantToken": token, "item": {"title": "t"}}),
    );
    old["time"] = json!("2025-12-31T00:00:00Z");
    let report = router
        .route_event(&old.to_string(), &at(T0_MS + 1_000))
        .await
        .unwrap();
    assert_eq!(report.outcomes[0], Outcome::Invoked { attempts: 1 });
    let invoked = invocations(&server).await;
    let envelope = &invoked.last().unwrap().envelope;
    assert_eq!(envelope["arrivedAt"], "2026-01-01T00:00:01.000Z");
    assert_eq!(envelope["attributes"]["time"], "2025-12-31T00:00:00Z");
    assert_eq!(quarantined(&server).await.len(), 1);
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
