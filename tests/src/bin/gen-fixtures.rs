//! Regenerates `tests/fixtures/jwks.json` and `tests/fixtures/sqs/*.json` from the TEST-ONLY keys.
//! Token signatures of some algorithms are randomised, so regenerating changes bytes but not
//! meaning. Run: `cargo run -p cross-crate-tests --bin gen-fixtures`.

use std::fs;

use cross_crate_tests::*;
use serde_json::{Value, json};

fn main() -> anyhow::Result<()> {
    let dir = fixtures_dir();
    fs::write(
        dir.join("jwks.json"),
        serde_json::to_string_pretty(&jwks())? + "\n",
    )?;
    let sqs = dir.join("sqs");
    fs::create_dir_all(&sqs)?;
    for (name, event) in sqs_cases() {
        fs::write(
            sqs.join(format!("{name}.json")),
            serde_json::to_string_pretty(&event)? + "\n",
        )?;
    }
    println!("fixtures written to {}", dir.display());
    Ok(())
}

fn item(n: u32) -> Value {
    json!({"id": n, "title": format!("to-do {n}"), "done": false})
}

/// One record whose token is `token` for tenant `tenant`.
fn single(id: &str, tenant: &str, token: &str) -> Value {
    sqs_event(vec![sqs_record(id, &body(tenant, token, item(1)), T0_MS)])
}

fn with_claims(edit: impl FnOnce(&mut Value)) -> Value {
    let mut c = claims("acme");
    edit(&mut c);
    c
}

fn sqs_cases() -> Vec<(&'static str, Value)> {
    let t0 = T0_MS / 1000;
    let token = |key, tenant: &str| sign(key, &claims(tenant));
    let mut cases = Vec::new();

    // Valid records of three tenants, every published algorithm, and bodies carried by SNS and
    // EventBridge.
    let sns_body = json!({
        "Type": "Notification",
        "MessageId": "5a8c1b1e-0000-4000-8000-000000000001",
        "TopicArn": "arn:aws:sns:us-east-1:123456789012:tenant-topic",
        "Message": body("globex", &token(TestKey::Es256, "globex"), item(5)),
        "Timestamp": "2026-01-01T00:00:00.000Z"
    })
    .to_string();
    let eventbridge_body = json!({
        "version": "0", "id": "eb-0001", "detail-type": "todo.created", "source": "saas.todo",
        "account": "123456789012", "time": "2026-01-01T00:00:00Z", "region": "us-east-1",
        "resources": [],
        "detail": {"tenantId": "initech", "tenantToken": token(TestKey::EdDsa, "initech"),
                   "item": item(6), "correlationId": "corr-eb-6"}
    })
    .to_string();
    cases.push((
        "mixed-tenants",
        sqs_event(vec![
            sqs_record(
                "mixed-1",
                &body("acme", &token(TestKey::Rs256, "acme"), item(1)),
                T0_MS,
            ),
            sqs_record(
                "mixed-2",
                &body("globex", &token(TestKey::Es256, "globex"), item(2)),
                T0_MS,
            ),
            sqs_record(
                "mixed-3",
                &body("initech", &token(TestKey::Es384, "initech"), item(3)),
                T0_MS,
            ),
            sqs_record(
                "mixed-4",
                &body("acme", &token(TestKey::EdDsa, "acme"), item(4)),
                T0_MS,
            ),
            sqs_record("mixed-5", &sns_body, T0_MS),
            sqs_record("mixed-6", &eventbridge_body, T0_MS),
        ]),
    ));

    cases.push((
        "alg-none",
        single("none-1", "acme", &forge_alg_none(&claims("acme"))),
    ));
    cases.push((
        "hs256-with-rsa-public-key",
        single(
            "hs256-1",
            "acme",
            &forge_hs256_with_rsa_public_key(&claims("acme")),
        ),
    ));
    cases.push((
        "unknown-kid",
        single("kid-1", "acme", &token(TestKey::Unpublished, "acme")),
    ));
    cases.push((
        "expired-at-arrival",
        single(
            "expired-1",
            "acme",
            &sign(
                TestKey::Es256,
                &with_claims(|c| c["exp"] = json!(t0 - 3600)),
            ),
        ),
    ));
    cases.push((
        "nbf-in-future",
        single(
            "nbf-1",
            "acme",
            &sign(
                TestKey::Es256,
                &with_claims(|c| c["nbf"] = json!(t0 + 3600)),
            ),
        ),
    ));
    cases.push((
        "string-exp",
        single(
            "strexp-1",
            "acme",
            &sign(
                TestKey::Es256,
                &with_claims(|c| c["exp"] = json!((t0 + 3600).to_string())),
            ),
        ),
    ));
    cases.push((
        "wrong-iss",
        single(
            "iss-1",
            "acme",
            &sign(
                TestKey::Es256,
                &with_claims(|c| c["iss"] = json!("https://evil.example")),
            ),
        ),
    ));
    cases.push((
        "wrong-aud",
        single(
            "aud-1",
            "acme",
            &sign(
                TestKey::Es256,
                &with_claims(|c| c["aud"] = json!("another-service")),
            ),
        ),
    ));
    cases.push((
        "no-tenant-claim",
        single(
            "noclaim-1",
            "acme",
            &sign(
                TestKey::Es256,
                &with_claims(|c| {
                    c.as_object_mut().unwrap().remove("tenant_id");
                }),
            ),
        ),
    ));
    cases.push((
        "tenant-mismatch-case",
        single("case-1", "Acme", &token(TestKey::Es256, "acme")),
    ));
    cases.push((
        "tenant-mismatch-trailing-space",
        single("space-1", "acme ", &token(TestKey::Es256, "acme")),
    ));
    cases.push((
        "token-9kib",
        single(
            "big-1",
            "acme",
            &sign(
                TestKey::Es256,
                &with_claims(|c| c["pad"] = json!("x".repeat(9 * 1024))),
            ),
        ),
    ));
    let long = "t".repeat(257);
    cases.push((
        "tenant-257-chars",
        single("long-1", &long, &token(TestKey::Es256, &long)),
    ));
    cases.push((
        "tenant-forbidden-char",
        single("char-1", "acme#1", &token(TestKey::Es256, "acme#1")),
    ));
    cases.push((
        "malformed-body",
        sqs_event(vec![sqs_record(
            "malformed-1",
            "{\"tenantId\": \"acme\", ",
            T0_MS,
        )]),
    ));
    cases.push((
        "oversized-envelope",
        sqs_event(vec![sqs_record(
            "oversized-1",
            &body(
                "acme",
                &token(TestKey::Es256, "acme"),
                json!({"notes": "x".repeat(1024 * 1024 + 1)}),
            ),
            T0_MS,
        )]),
    ));
    cases.push((
        "backlog-expired-now",
        single(
            "backlog-1",
            "acme",
            &sign(TestKey::Es256, &with_claims(|c| c["exp"] = json!(t0 + 600))),
        ),
    ));

    // FIFO: two groups. The second acme record's token is for another tenant, so it is rejected
    // (and, with no quarantine queue, reported): acme's third record must not be invoked.
    let fifo = |id: &str, tenant: &str, token: &str, n: u32, group: &str| {
        into_fifo(
            sqs_record(id, &body(tenant, token, item(n)), T0_MS),
            group,
            n.into(),
        )
    };
    cases.push((
        "fifo-groups",
        sqs_event(vec![
            fifo("fifo-1", "acme", &token(TestKey::Es256, "acme"), 1, "acme"),
            fifo(
                "fifo-2",
                "globex",
                &token(TestKey::Es256, "globex"),
                2,
                "globex",
            ),
            fifo(
                "fifo-3",
                "acme",
                &token(TestKey::Es256, "globex"),
                3,
                "acme",
            ),
            fifo(
                "fifo-4",
                "globex",
                &token(TestKey::Es256, "globex"),
                4,
                "globex",
            ),
            fifo("fifo-5", "acme", &token(TestKey::Es256, "acme"), 5, "acme"),
        ]),
    ));
    cases
}
