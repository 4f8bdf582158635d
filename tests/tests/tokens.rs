//! Token rules beyond the recorded fixtures: strict `iss`/`aud` types, the key — not the token —
//! deciding the algorithm, one algorithm per key, and `ROUTER_JWT_ALGORITHMS`.

use std::time::Duration;

use cross_crate_tests::{
    FakeBackend, T0_MS, TestKey, body, claims, fake_router, sign, sqs_event, sqs_record,
};
use jsonwebtoken::{Algorithm, Header};
use router::InvocationInfo;
use serde_json::{Value, json};

async fn reason_for(token: &str) -> Option<&'static str> {
    reason_with(token, &[]).await
}

async fn reason_with(token: &str, overrides: &[(&str, &str)]) -> Option<&'static str> {
    let router = fake_router(FakeBackend::recording(), overrides);
    let event = sqs_event(vec![sqs_record(
        "t",
        &body("acme", token, json!({})),
        T0_MS,
    )]);
    let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(100));
    let report = router.route_event(&event.to_string(), &info).await.unwrap();
    report.outcomes[0].reason()
}

fn edited(edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut c = claims("acme");
    edit(c.as_object_mut().unwrap());
    sign(TestKey::Es256, &c)
}

#[tokio::test]
async fn issuer_must_be_the_accepted_string() {
    for iss in [
        Value::Null,
        json!(42),
        json!({"a": 1}),
        json!(["https://issuer.tenant-router.test"]),
    ] {
        let token = edited(|c| {
            c.insert("iss".into(), iss.clone());
        });
        assert_eq!(reason_for(&token).await, Some("token-issuer"), "iss {iss}");
    }
    let token = edited(|c| {
        c.remove("iss");
    });
    assert_eq!(reason_for(&token).await, Some("token-issuer"), "no iss");
}

#[tokio::test]
async fn audience_must_name_us_as_a_string() {
    for aud in [
        Value::Null,
        json!(42),
        json!([]),
        json!(["other", 7]),
        json!(["other"]),
    ] {
        let token = edited(|c| {
            c.insert("aud".into(), aud.clone());
        });
        assert_eq!(
            reason_for(&token).await,
            Some("token-audience"),
            "aud {aud}"
        );
    }
    let token = edited(|c| {
        c.remove("aud");
    });
    assert_eq!(reason_for(&token).await, Some("token-audience"), "no aud");
    // An array that includes us is accepted.
    let token = edited(|c| {
        c.insert("aud".into(), json!(["other", "tenant-router"]));
    });
    assert_eq!(reason_for(&token).await, None);
}

#[tokio::test]
async fn the_key_decides_the_algorithm() {
    // Signed with the RSA key, but naming the ES256 key's kid: refused before any signature check.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(TestKey::Es256.kid().into());
    let token =
        jsonwebtoken::encode(&header, &claims("acme"), &TestKey::Rs256.encoding_key()).unwrap();
    assert_eq!(reason_for(&token).await, Some("token-algorithm-refused"));
    // The right alg with another key's signature: a bad signature.
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(TestKey::Es256.kid().into());
    let other = jsonwebtoken::encode(
        &header,
        &claims("acme"),
        &cross_crate_tests::TestKey::Es256.encoding_key(),
    )
    .unwrap();
    let (head_and_claims, _) = other.rsplit_once('.').unwrap();
    let stranger = sign(TestKey::Es256, &claims("globex"));
    let (_, foreign_signature) = stranger.rsplit_once('.').unwrap();
    let spliced = format!("{head_and_claims}.{foreign_signature}");
    assert_eq!(reason_for(&spliced).await, Some("token-bad-signature"));
}

/// The published JWKS with the RSA key's `alg` removed, inline.
fn jwks_with_rsa_key_without_alg() -> String {
    let path = cross_crate_tests::fixtures_dir().join("jwks.json");
    let mut jwks: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    for key in jwks["keys"].as_array_mut().unwrap() {
        if key["kty"] == "RSA" {
            key.as_object_mut().unwrap().remove("alg");
        }
    }
    jwks.to_string()
}

fn rsa_signed(alg: Algorithm) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(TestKey::Rs256.kid().into());
    jsonwebtoken::encode(&header, &claims("acme"), &TestKey::Rs256.encoding_key()).unwrap()
}

/// RFC 8725 §3.1: an RSA key without `alg` verifies RS256 only, not every RSA algorithm; a
/// token the same key signed with PS256 or RS512 is refused.
#[tokio::test]
async fn an_rsa_key_without_alg_verifies_one_algorithm() {
    let jwks = jwks_with_rsa_key_without_alg();
    let overrides = [("ROUTER_JWKS", jwks.as_str())];
    assert_eq!(
        reason_with(&rsa_signed(Algorithm::RS256), &overrides).await,
        None
    );
    for alg in [Algorithm::PS256, Algorithm::RS512, Algorithm::PS512] {
        assert_eq!(
            reason_with(&rsa_signed(alg), &overrides).await,
            Some("token-algorithm-refused"),
            "{alg:?}"
        );
    }
    // Narrowed to PS256, the same key is bound to PS256 instead.
    let narrowed = [
        ("ROUTER_JWKS", jwks.as_str()),
        ("ROUTER_JWT_ALGORITHMS", "PS256,ES256"),
    ];
    assert_eq!(
        reason_with(&rsa_signed(Algorithm::PS256), &narrowed).await,
        None
    );
    assert_eq!(
        reason_with(&rsa_signed(Algorithm::RS256), &narrowed).await,
        Some("token-algorithm-refused")
    );
}

/// `ROUTER_JWT_ALGORITHMS` narrows what is accepted: a valid token signed with an algorithm
/// outside the list is refused, whatever key it names.
#[tokio::test]
async fn the_accepted_algorithms_narrow_every_key() {
    let only_es256 = [("ROUTER_JWT_ALGORITHMS", "ES256")];
    assert_eq!(
        reason_with(&sign(TestKey::Es256, &claims("acme")), &only_es256).await,
        None
    );
    for key in [TestKey::Rs256, TestKey::Es384, TestKey::EdDsa] {
        assert_eq!(
            reason_with(&sign(key, &claims("acme")), &only_es256).await,
            Some("token-algorithm-refused"),
            "{key:?}"
        );
    }
}
