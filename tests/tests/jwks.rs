//! The JWKS over HTTP: fetched on first use, one rate-limited refresh on an unknown `kid`, key
//! rotation, and an outage that fails records transiently instead of rejecting or accepting them.

use std::time::Duration;

use cross_crate_tests::{T0_MS, TestKey, body, claims, sign, sqs_event, sqs_record};
use jsonwebtoken::jwk::JwkSet;
use router::InvocationInfo;
use router::Outcome;
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::util::*;

fn event(key: TestKey, id: &str) -> String {
    event_at(key, id, T0_MS)
}

/// A record sent at `sent_ms` whose token is valid then.
fn event_at(key: TestKey, id: &str, sent_ms: i64) -> String {
    let mut c = claims("acme");
    c["exp"] = json!(sent_ms / 1000 + 3600);
    let token = sign(key, &c);
    sqs_event(vec![sqs_record(
        id,
        &body("acme", &token, json!({})),
        sent_ms,
    )])
    .to_string()
}

fn jwks_of(keys: &[TestKey]) -> String {
    serde_json::to_string(&JwkSet {
        keys: keys.iter().map(|k| k.public_jwk()).collect(),
    })
    .unwrap()
}

async fn serve_jwks(server: &MockServer, keys: &[TestKey]) {
    server.reset().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_string(jwks_of(keys)))
        .mount(server)
        .await;
}

async fn jwks_fetches(server: &MockServer) -> usize {
    server.received_requests().await.unwrap_or_default().len()
}

async fn route(router: &router::Router<router::AwsBackend>, event: &str) -> Outcome {
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    router.route_event(event, &info).await.unwrap().outcomes[0].clone()
}

#[tokio::test]
async fn an_unknown_kid_triggers_at_most_one_refresh_per_cool_down() {
    let lambda = lambda_server().await;
    let issuer = MockServer::start().await;
    serve_jwks(&issuer, &[TestKey::Es256]).await;
    let url = format!("{}/.well-known/jwks.json", issuer.uri());
    let router = router(&lambda, &[("ROUTER_JWKS", url.as_str())]);

    // First use loads the JWKS.
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "a")).await,
        Outcome::Invoked { .. }
    ));
    assert_eq!(jwks_fetches(&issuer).await, 1);
    // Unknown kids within the cool-down are rejected without hammering the issuer.
    for id in ["b", "c", "d"] {
        let outcome = route(&router, &event(TestKey::Rs256, id)).await;
        assert_eq!(outcome.reason(), Some("token-unknown-key"));
    }
    assert_eq!(jwks_fetches(&issuer).await, 1);
}

#[tokio::test]
async fn after_the_cool_down_an_unknown_kid_refreshes_once_more() {
    let lambda = lambda_server().await;
    let issuer = MockServer::start().await;
    serve_jwks(&issuer, &[TestKey::Es256]).await;
    let url = format!("{}/.well-known/jwks.json", issuer.uri());
    let router = router(
        &lambda,
        &[
            ("ROUTER_JWKS", url.as_str()),
            ("ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS", "1"),
        ],
    );
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "a")).await,
        Outcome::Invoked { .. }
    ));
    assert_eq!(
        route(&router, &event(TestKey::EdDsa, "b")).await.reason(),
        Some("token-unknown-key")
    );
    assert_eq!(jwks_fetches(&issuer).await, 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(
        route(&router, &event(TestKey::EdDsa, "c")).await.reason(),
        Some("token-unknown-key")
    );
    assert_eq!(
        jwks_fetches(&issuer).await,
        2,
        "exactly one refresh after the cool-down"
    );
}

#[tokio::test]
async fn an_unknown_kid_newer_than_the_key_set_is_retried_not_quarantined() {
    let lambda = lambda_server().await;
    let issuer = MockServer::start().await;
    serve_jwks(&issuer, &[TestKey::Es256]).await;
    let url = format!("{}/.well-known/jwks.json", issuer.uri());
    let router = router(&lambda, &[("ROUTER_JWKS", url.as_str())]);
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "a")).await,
        Outcome::Invoked { .. }
    ));
    // Sent after our keys were loaded, signed by a key we have not seen, inside the cool-down:
    // the issuer may have rotated, so the record fails transiently and comes back.
    let later = router::invocation::now_ms() + 1_000;
    let outcome = route(&router, &event_at(TestKey::EdDsa, "b", later)).await;
    assert!(
        matches!(
            outcome,
            Outcome::Failed {
                reason: "jwks-stale",
                ..
            }
        ),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_key_dropped_from_the_jwks_is_revoked_even_for_cached_tokens() {
    let lambda = lambda_server().await;
    let issuer = MockServer::start().await;
    serve_jwks(&issuer, &[TestKey::Es256, TestKey::EdDsa]).await;
    let url = format!("{}/.well-known/jwks.json", issuer.uri());
    let router = router(
        &lambda,
        &[
            ("ROUTER_JWKS", url.as_str()),
            ("ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS", "0"),
            ("ROUTER_JWKS_MAX_AGE_SECONDS", "1"),
        ],
    );
    let same = event(TestKey::EdDsa, "a");
    assert!(matches!(
        route(&router, &same).await,
        Outcome::Invoked { .. }
    ));
    serve_jwks(&issuer, &[TestKey::Es256]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The same token, verified and cached before, is refused once its key is gone.
    assert_eq!(
        route(&router, &same).await.reason(),
        Some("token-unknown-key")
    );
}

#[tokio::test]
async fn a_rotated_key_is_picked_up_by_the_refresh() {
    let lambda = lambda_server().await;
    let issuer = MockServer::start().await;
    serve_jwks(&issuer, &[TestKey::Es256]).await;
    let url = format!("{}/.well-known/jwks.json", issuer.uri());
    let router = router(
        &lambda,
        &[
            ("ROUTER_JWKS", url.as_str()),
            ("ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS", "0"),
        ],
    );
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "a")).await,
        Outcome::Invoked { .. }
    ));
    // The issuer rotates to a new key and keeps the old one published for a while.
    serve_jwks(&issuer, &[TestKey::Es256, TestKey::EdDsa]).await;
    assert!(matches!(
        route(&router, &event(TestKey::EdDsa, "b")).await,
        Outcome::Invoked { .. }
    ));
    assert_eq!(
        jwks_fetches(&issuer).await,
        1,
        "one refresh after the reset"
    );
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "c")).await,
        Outcome::Invoked { .. }
    ));
}

#[tokio::test]
async fn while_the_jwks_is_down_records_fail_and_are_retried_never_accepted() {
    let lambda = lambda_server().await;
    let issuer = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&issuer)
        .await;
    let url = format!("{}/.well-known/jwks.json", issuer.uri());
    let router = router(&lambda, &[("ROUTER_JWKS", url.as_str())]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router
        .route_event(&event(TestKey::Es256, "a"), &info)
        .await
        .unwrap();
    assert!(matches!(
        report.outcomes[0],
        Outcome::Failed {
            reason: "jwks-unavailable",
            ..
        }
    ));
    assert_eq!(reported(&report.response), ["a"]);
    assert!(invocations(&lambda).await.is_empty());

    // Once the JWKS is back (and the cool-down allows), the same record goes through.
    let router = crate::util::router(
        &lambda,
        &[
            ("ROUTER_JWKS", url.as_str()),
            ("ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS", "0"),
        ],
    );
    assert_eq!(
        route(&router, &event(TestKey::Es256, "a")).await.reason(),
        Some("jwks-unavailable")
    );
    serve_jwks(&issuer, &[TestKey::Es256]).await;
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "a")).await,
        Outcome::Invoked { .. }
    ));
}

#[tokio::test]
async fn keys_held_survive_an_outage_of_the_jwks() {
    let lambda = lambda_server().await;
    let issuer = MockServer::start().await;
    serve_jwks(&issuer, &[TestKey::Es256]).await;
    let url = format!("{}/.well-known/jwks.json", issuer.uri());
    let router = router(
        &lambda,
        &[
            ("ROUTER_JWKS", url.as_str()),
            ("ROUTER_JWKS_REFRESH_COOLDOWN_SECONDS", "0"),
            ("ROUTER_JWKS_MAX_AGE_SECONDS", "1"),
            ("ROUTER_JWT_CACHE_SIZE", "0"),
        ],
    );
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "a")).await,
        Outcome::Invoked { .. }
    ));
    issuer.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&issuer)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // The set is stale, the refresh fails, the held key still verifies.
    assert!(matches!(
        route(&router, &event(TestKey::Es256, "b")).await,
        Outcome::Invoked { .. }
    ));
    assert_eq!(jwks_fetches(&issuer).await, 1, "a refresh was attempted");
}
