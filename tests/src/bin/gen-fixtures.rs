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
    for (folder, cases) in [
        ("kinesis", kinesis_cases()),
        ("dynamodb", dynamodb_cases()),
        ("eventbridge", eventbridge_cases()),
    ] {
        for (name, event) in cases {
            let path = dir.join(folder).join(format!("{name}.json"));
            fs::create_dir_all(path.parent().expect("a folder"))?;
            fs::write(path, serde_json::to_string_pretty(&event)? + "\n")?;
        }
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
        "tenant-trailing-space",
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

/// A 56-digit Kinesis sequence number, increasing with `i`.
fn kseq(i: u32) -> String {
    format!("4959033827149025660855969253836157109592157598913658{i:04}")
}

fn data(tenant: &str, token: &str, n: u32) -> Vec<u8> {
    body(tenant, token, item(n)).into_bytes()
}

fn records(records: Vec<Value>) -> Value {
    json!({ "Records": records })
}

fn kinesis_cases() -> Vec<(String, Value)> {
    let token = |key, tenant: &str| sign(key, &claims(tenant));
    let mut cases = Vec::new();

    let mut encrypted = kinesis_record(
        &kseq(4),
        "acme",
        &data("acme", &token(TestKey::Es384, "acme"), 4),
    );
    encrypted["kinesis"]["encryptionType"] = json!("KMS");
    cases.push((
        "mixed-tenants".to_owned(),
        records(vec![
            kinesis_record(
                &kseq(1),
                "acme",
                &data("acme", &token(TestKey::Rs256, "acme"), 1),
            ),
            kinesis_record(
                &kseq(2),
                "globex",
                &data("globex", &token(TestKey::Es256, "globex"), 2),
            ),
            kinesis_record(
                &kseq(3),
                "initech",
                &data("initech", &token(TestKey::EdDsa, "initech"), 3),
            ),
            encrypted,
        ]),
    ));

    cases.push((
        "token-failures".to_owned(),
        records(
            token_failure_cases()
                .into_iter()
                .enumerate()
                .map(|(i, (_, tenant, token, _))| {
                    kinesis_record(
                        &kseq(10 + i as u32),
                        &format!("k{i}"),
                        &data(&tenant, &token, i as u32),
                    )
                })
                .collect(),
        ),
    ));

    let mut bad_base64 = kinesis_record(&kseq(21), "acme", b"x");
    bad_base64["kinesis"]["data"] = json!("not*base64!");
    cases.push((
        "invalid-base64".to_owned(),
        records(vec![
            kinesis_record(
                &kseq(20),
                "acme",
                &data("acme", &token(TestKey::Es256, "acme"), 1),
            ),
            bad_base64,
        ]),
    ));

    let aggregate = router::source::kpl::aggregate(&[
        router::source::kpl::UserRecord {
            partition_key: "acme".into(),
            data: data("acme", &token(TestKey::Es256, "acme"), 1),
        },
        router::source::kpl::UserRecord {
            partition_key: "globex".into(),
            data: data("globex", &token(TestKey::Es256, "globex"), 2),
        },
        router::source::kpl::UserRecord {
            partition_key: "acme".into(),
            data: data("acme", &token(TestKey::Es256, "acme"), 3),
        },
    ]);
    cases.push((
        "kpl-aggregated".to_owned(),
        records(vec![
            kinesis_record(&kseq(30), "aggregate-1", &aggregate),
            kinesis_record(
                &kseq(31),
                "initech",
                &data("initech", &token(TestKey::Es256, "initech"), 4),
            ),
        ]),
    ));

    // Sequence numbers of 40, 128 and 129 digits. The 128-digit record fails; it is the lowest
    // failure although "1000…" sorts before "999…" as text.
    let n40 = "4967112958773434937100000000000000000001".to_owned();
    let n128 = "9".repeat(128);
    let n129a = format!("1{}", "0".repeat(128));
    let n129b = format!("1{}1", "0".repeat(127));
    cases.push((
        "long-sequence-numbers".to_owned(),
        records(vec![
            kinesis_record(
                &n40,
                "acme",
                &data("acme", &token(TestKey::Es256, "acme"), 1),
            ),
            kinesis_record(
                &n128,
                "globex",
                &data("globex", &token(TestKey::Es256, "acme"), 2),
            ),
            kinesis_record(
                &n129a,
                "initech",
                &data("initech", &token(TestKey::Es256, "initech"), 3),
            ),
            kinesis_record(
                &n129b,
                "acme",
                &data("acme", &token(TestKey::Es256, "acme"), 4),
            ),
        ]),
    ));

    // Two partition keys; the third record (acme) carries globex's token.
    cases.push((
        "mid-batch-failure".to_owned(),
        records(vec![
            kinesis_record(
                &kseq(40),
                "acme",
                &data("acme", &token(TestKey::Es256, "acme"), 1),
            ),
            kinesis_record(
                &kseq(41),
                "globex",
                &data("globex", &token(TestKey::Es256, "globex"), 2),
            ),
            kinesis_record(
                &kseq(42),
                "acme",
                &data("acme", &token(TestKey::Es256, "globex"), 3),
            ),
            kinesis_record(
                &kseq(43),
                "globex",
                &data("globex", &token(TestKey::Es256, "globex"), 4),
            ),
            kinesis_record(
                &kseq(44),
                "acme",
                &data("acme", &token(TestKey::Es256, "acme"), 5),
            ),
            kinesis_record(
                &kseq(45),
                "globex",
                &data("globex", &token(TestKey::Es256, "globex"), 6),
            ),
        ]),
    ));
    cases
}

/// A 25-digit DynamoDB sequence number, increasing with `i`.
fn dseq(i: u32) -> String {
    format!("14054000000000020632{i:05}")
}

fn keys(tenant: &str, n: u32) -> Value {
    item_values(&json!({"pk": format!("TENANT#{tenant}#order#{n}"), "sk": format!("item#{n}")}))
}

fn image(tenant: &str, token: &str, n: u32) -> Value {
    item_values(&json!({
        "pk": format!("TENANT#{tenant}#order#{n}"), "sk": format!("item#{n}"),
        "tenantId": tenant, "tenantToken": token, "title": format!("to-do {n}"), "done": false,
        "priority": n
    }))
}

fn dynamodb_cases() -> Vec<(String, Value)> {
    let token = |key, tenant: &str| sign(key, &claims(tenant));
    let insert = |seq: u32, tenant: &str, token: &str, n: u32| {
        dynamodb_record(
            &dseq(seq),
            "INSERT",
            keys(tenant, n),
            Some(image(tenant, token, n)),
            None,
            "NEW_AND_OLD_IMAGES",
        )
    };
    let mut cases = Vec::new();
    cases.push((
        "mixed-tenants".to_owned(),
        records(vec![
            insert(1, "acme", &token(TestKey::Rs256, "acme"), 1),
            dynamodb_record(
                &dseq(2),
                "MODIFY",
                keys("globex", 2),
                Some(image("globex", &token(TestKey::Es256, "globex"), 2)),
                Some(image("globex", &token(TestKey::Es256, "globex"), 2)),
                "NEW_AND_OLD_IMAGES",
            ),
            insert(3, "initech", &token(TestKey::EdDsa, "initech"), 3),
            insert(4, "acme", &token(TestKey::Es384, "acme"), 4),
        ]),
    ));

    let mut all_types = image("acme", &token(TestKey::Es256, "acme"), 5);
    let extra = json!({
        "s": {"S": "text"},
        "n": {"N": "12345678901234567890.123"},
        "b": {"B": "AAEqQQ=="},
        "ss": {"SS": ["red", "green"]},
        "ns": {"NS": ["1", "-2.5", "99999999999999999999999999999999999999"]},
        "bs": {"BS": ["AAEqQQ==", "QSoBAA=="]},
        "m": {"M": {"nested": {"M": {"deep": {"N": "0.000000000000000000000000000000000001"}}}}},
        "l": {"L": [{"S": "x"}, {"N": "1"}, {"BOOL": true}, {"NULL": true}]},
        "bool": {"BOOL": true},
        "null": {"NULL": true}
    });
    for (k, v) in extra.as_object().unwrap() {
        all_types[k] = v.clone();
    }
    cases.push((
        "all-types".to_owned(),
        records(vec![dynamodb_record(
            &dseq(10),
            "INSERT",
            keys("acme", 5),
            Some(all_types),
            None,
            "NEW_AND_OLD_IMAGES",
        )]),
    ));
    cases.push((
        "remove-with-old-image".to_owned(),
        records(vec![dynamodb_record(
            &dseq(20),
            "REMOVE",
            keys("globex", 6),
            None,
            Some(image("globex", &token(TestKey::Es256, "globex"), 6)),
            "NEW_AND_OLD_IMAGES",
        )]),
    ));
    cases.push((
        "remove-without-old-image".to_owned(),
        records(vec![dynamodb_record(
            &dseq(21),
            "REMOVE",
            keys("globex", 7),
            None,
            None,
            "NEW_IMAGE",
        )]),
    ));
    cases.push((
        "keys-only".to_owned(),
        records(vec![dynamodb_record(
            &dseq(30),
            "INSERT",
            keys("initech", 8),
            None,
            None,
            "KEYS_ONLY",
        )]),
    ));
    let mut no_tenant_attribute = image("globex", &token(TestKey::Es256, "globex"), 9);
    no_tenant_attribute
        .as_object_mut()
        .unwrap()
        .remove("tenantId");
    cases.push((
        "key-prefix-tenant".to_owned(),
        records(vec![dynamodb_record(
            &dseq(40),
            "INSERT",
            keys("globex", 9),
            Some(no_tenant_attribute),
            None,
            "NEW_AND_OLD_IMAGES",
        )]),
    ));
    let mut ttl = dynamodb_record(
        &dseq(50),
        "REMOVE",
        keys("acme", 10),
        None,
        Some(image("acme", &token(TestKey::Es256, "acme"), 10)),
        "NEW_AND_OLD_IMAGES",
    );
    ttl["userIdentity"] = json!({"type": "Service", "principalId": "dynamodb.amazonaws.com"});
    cases.push(("ttl-delete".to_owned(), records(vec![ttl])));

    cases.push((
        "token-failures".to_owned(),
        records(
            token_failure_cases()
                .into_iter()
                .enumerate()
                .map(|(i, (_, tenant, token, _))| {
                    let n = 100 + i as u32;
                    let mut image = image(&tenant, &token, n);
                    // Distinct keys (valid or not, the key is not the tenant here).
                    image["pk"] = json!({"S": format!("case#{i}")});
                    dynamodb_record(
                        &dseq(n),
                        "INSERT",
                        item_values(&json!({"pk": format!("case#{i}"), "sk": "s"})),
                        Some(image),
                        None,
                        "NEW_AND_OLD_IMAGES",
                    )
                })
                .collect(),
        ),
    ));
    // Two items; the third record (acme's item) carries globex's token.
    cases.push((
        "mid-batch-failure".to_owned(),
        records(vec![
            insert(60, "acme", &token(TestKey::Es256, "acme"), 11),
            insert(61, "globex", &token(TestKey::Es256, "globex"), 12),
            insert(62, "acme", &token(TestKey::Es256, "globex"), 11),
            insert(63, "globex", &token(TestKey::Es256, "globex"), 12),
            insert(64, "acme", &token(TestKey::Es256, "acme"), 11),
        ]),
    ));
    cases
}

fn eventbridge_cases() -> Vec<(String, Value)> {
    let mut cases = Vec::new();
    for (n, (tenant, key)) in [
        ("acme", TestKey::Rs256),
        ("globex", TestKey::Es256),
        ("initech", TestKey::EdDsa),
    ]
    .into_iter()
    .enumerate()
    {
        let detail = json!({"tenantId": tenant, "tenantToken": sign(key, &claims(tenant)), "item": item(n as u32), "correlationId": format!("corr-{tenant}")});
        cases.push((
            tenant.to_owned(),
            eventbridge_event(&format!("eb-{tenant}"), detail),
        ));
    }
    for (case, tenant, token, _) in token_failure_cases() {
        let detail = json!({"tenantId": tenant, "tenantToken": token, "item": item(0)});
        cases.push((
            format!("token-failures/{case}"),
            eventbridge_event(&format!("eb-{case}"), detail),
        ));
    }
    cases
}
