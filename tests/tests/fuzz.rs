//! Fuzzing of everything that parses untrusted bytes: the token pre-parser and verifier, the SQS,
//! Kinesis (KPL included) and DynamoDB record decoders with the attribute-value converter, and
//! the envelope builder — no panic, and every record accounted for.
//!
//! cargo-fuzz needs a nightly toolchain, which this project's machines do not have, so these are
//! proptest generators over raw bytes and over structure-aware JSON (not coverage-guided), plus
//! `mutated_fixtures`, which mutates a seed corpus: the recorded fixtures in `tests/fixtures/`.
//! `FUZZ_CASES` sets the cases per target (default 300 here); docs/reliability.md records the long
//! runs. A panic anywhere fails the case; proptest then shrinks it to a minimal input.

use cross_crate_tests::info;
use router::source::kpl;

use cross_crate_tests::{FakeBackend, TestKey, claims, fake_router, sign};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

/// Runs `test` on `strategy`: `FUZZ_CASES` cases (default 300), or, with `FUZZ_SECONDS`, rounds
/// of 1,000 fresh cases until that much time has passed; prints the count.
fn fuzz<S: Strategy>(name: &str, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    let seconds: Option<u64> = std::env::var("FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok());
    let per_round = match seconds {
        Some(_) => 1_000,
        None => std::env::var("FUZZ_CASES")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(300),
    };
    let started = std::time::Instant::now();
    let mut total = 0u64;
    loop {
        let mut runner = TestRunner::new(Config {
            cases: per_round,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&strategy, &test)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        total += u64::from(per_round);
        match seconds {
            Some(limit) if started.elapsed().as_secs() < limit => continue,
            _ => break,
        }
    }
    eprintln!(
        "fuzz target {name}: {total} cases in {:.1} s, no failure",
        started.elapsed().as_secs_f64()
    );
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Arbitrary DynamoDB attribute values, valid and not.
fn attribute_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        ".{0,20}".prop_map(|s| json!({"S": s})),
        "-?[0-9]{1,40}(\\.[0-9]{1,10})?([eE][+-]?[0-9]{1,3})?".prop_map(|n| json!({"N": n})),
        ".{0,10}".prop_map(|n| json!({"N": n})),
        "[A-Za-z0-9+/]{0,16}={0,2}".prop_map(|b| json!({"B": b})),
        any::<bool>().prop_map(|b| json!({"BOOL": b})),
        Just(json!({"NULL": true})),
        proptest::collection::vec(".{0,8}", 0..4).prop_map(|v| json!({"SS": v})),
        proptest::collection::vec("[0-9]{1,5}", 0..4).prop_map(|v| json!({"NS": v})),
        json_value().prop_map(|v| json!({"X": v})),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(|l| json!({"L": l})),
            proptest::collection::btree_map("[a-zA-Z/~]{0,8}", inner, 0..6)
                .prop_map(|m| json!({"M": m})),
        ]
    })
}

/// Routes `event` and checks that every record is accounted for when it is a batch.
fn route(event: &str) -> Result<(), TestCaseError> {
    let router = fake_router(
        FakeBackend::recording(),
        &[(
            "ROUTER_TENANT_FROM",
            "payload:/tenantId;kinesis=partition-key",
        )],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(report) = runtime.block_on(router.route_event(event, &info())) {
        // Every record of the event has an outcome (a KPL aggregate one per user record).
        let records = serde_json::from_str::<serde_json::Value>(event)
            .ok()
            .and_then(|v| v.get("Records").and_then(|r| r.as_array()).map(Vec::len))
            .unwrap_or(1);
        prop_assert!(
            report.outcomes.len() >= records || report.ids.is_empty(),
            "{} outcomes for {records} records",
            report.outcomes.len()
        );
        // What was invoked is exactly what ended invoked (record mode: one Invoke each).
        let invoked = router.backend().invoked.lock().unwrap().len();
        prop_assert_eq!(invoked, report.count("invoked"));
        // Every reported id is one of the batch's, and not empty.
        if let Some(failures) = report.response["batchItemFailures"].as_array() {
            for failure in failures {
                let id = failure["itemIdentifier"].as_str().unwrap_or_default();
                prop_assert!(
                    !id.is_empty() && report.ids.iter().any(|i| i == id),
                    "{id:?}"
                );
            }
        }
    }
    Ok(())
}

#[test]
fn fuzz_token_pre_parser_and_verifier() {
    fuzz(
        "token_pre_parser_and_verifier",
        &prop_oneof![
            ".{0,200}",
            "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,60}",
            (json_value(), json_value()).prop_map(|(h, c)| {
                use base64::Engine;
                let e = base64::engine::general_purpose::URL_SAFE_NO_PAD;
                format!(
                    "{}.{}.sig",
                    e.encode(h.to_string()),
                    e.encode(c.to_string())
                )
            }),
        ],
        |token| {
            let _ = shared::token::pre_parse_header(&token);
            let body = json!({"tenantId": "acme", "tenantToken": token}).to_string();
            route(
                    &json!({"Records": [cross_crate_tests::sqs_record("t", &body, cross_crate_tests::T0_MS)]})
                        .to_string(),
                )
        },
    );
}

#[test]
fn fuzz_sqs_records() {
    fuzz(
        "sqs_records",
        &proptest::collection::vec((json_value(), ".{0,80}"), 0..6),
        |records| {
            let records: Vec<Value> = records
                .into_iter()
                .enumerate()
                .map(|(i, (mut record, body))| {
                    if let Value::Object(map) = &mut record {
                        map.insert("eventSource".into(), json!("aws:sqs"));
                        if i % 2 == 0 {
                            map.insert("messageId".into(), json!(format!("m{i}")));
                            map.insert("body".into(), json!(body));
                        }
                        record
                    } else {
                        cross_crate_tests::sqs_record(&format!("m{i}"), &body, 0)
                    }
                })
                .collect();
            route(&json!({"Records": records}).to_string())
        },
    );
}

#[test]
fn fuzz_kinesis_data_and_kpl() {
    let token = sign(TestKey::Es256, &claims("acme"));
    fuzz(
        "kinesis_data_and_kpl",
        &(
            proptest::collection::vec(any::<u8>(), 0..300),
            proptest::collection::vec((".{0,10}", json_value()), 0..5),
            any::<bool>(),
        ),
        |(raw, users, aggregate)| {
            let data = if aggregate {
                // A well-formed aggregate of arbitrary user records, or raw bytes behind the
                // magic (a broken aggregate).
                if users.is_empty() {
                    let mut bytes = kpl::MAGIC.to_vec();
                    bytes.extend_from_slice(&raw);
                    bytes
                } else {
                    kpl::aggregate(
                        &users
                            .iter()
                            .map(|(key, value)| kpl::UserRecord {
                                partition_key: key.clone(),
                                data: json!({"tenantId": key, "tenantToken": token, "v": value})
                                    .to_string()
                                    .into_bytes(),
                            })
                            .collect::<Vec<_>>(),
                    )
                }
            } else {
                raw.clone()
            };
            let _ = kpl::deaggregate(&raw);
            let record = cross_crate_tests::kinesis_record(
                "49590338271490256608559692538361571095921575989136588898",
                "acme",
                &data,
            );
            route(&json!({"Records": [record]}).to_string())
        },
    );
}

#[test]
fn fuzz_dynamodb_images_and_the_attribute_value_converter() {
    fuzz(
        "dynamodb_images_and_the_attribute_value_converter",
        &(
            proptest::collection::btree_map("[a-zA-Z]{1,8}", attribute_value(), 0..8),
            prop_oneof![
                Just("INSERT".to_owned()),
                Just("MODIFY".to_owned()),
                Just("REMOVE".to_owned()),
                ".{0,6}".prop_map(String::from),
            ],
        ),
        |(image, event_name)| {
            let image = Value::Object(image.into_iter().collect());
            let record = cross_crate_tests::dynamodb_record(
                "1405400000000002063282832",
                &event_name,
                json!({"pk": {"S": "TENANT#acme#1"}}),
                Some(image.clone()),
                Some(image),
                "NEW_AND_OLD_IMAGES",
            );
            route(&json!({"Records": [record]}).to_string())
        },
    );
}

#[test]
fn fuzz_whole_events() {
    fuzz(
        "whole_events",
        &prop_oneof![
            ".{0,300}".prop_map(String::from),
            json_value().prop_map(|v| v.to_string())
        ],
        |event| route(&event),
    );
}

/// The recorded fixtures of every source, the seed corpus of `mutated_fixtures`.
fn corpus() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    let mut stack = vec![cross_crate_tests::fixtures_dir()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|x| x == "json")
                && !path.ends_with("jwks.json")
                && std::fs::metadata(&path).unwrap().len() < 64 * 1024
            {
                files.push(std::fs::read(&path).unwrap());
            }
        }
    }
    files.sort();
    files
}

/// One mutation of a seed: flip, insert or delete bytes, truncate, or splice in another seed.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Delete {
        at: usize,
        len: usize,
    },
    Truncate {
        at: usize,
    },
    Splice {
        at: usize,
        other: usize,
        from: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        (
            any::<usize>(),
            prop_oneof![
                proptest::collection::vec(any::<u8>(), 1..8),
                prop_oneof![
                    Just(b"\"".to_vec()),
                    Just(b"{".to_vec()),
                    Just(b"]".to_vec()),
                    Just(b"\\u0000".to_vec()),
                    Just(b"null".to_vec()),
                    Just(b"-1e999".to_vec()),
                    Just(b"99999999999999999999999999".to_vec()),
                ],
            ]
        )
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Mutation::Delete { at, len }),
        any::<usize>().prop_map(|at| Mutation::Truncate { at }),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(at, other, from)| Mutation::Splice { at, other, from }),
    ]
}

fn mutate(corpus: &[Vec<u8>], seed: usize, mutations: &[Mutation]) -> Vec<u8> {
    let mut bytes = corpus[seed % corpus.len()].clone();
    for m in mutations {
        let len = bytes.len().max(1);
        match m {
            Mutation::Flip { at, mask } => {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] ^= mask;
                }
            }
            Mutation::Insert { at, bytes: new } => {
                let i = at % len;
                bytes.splice(i.min(bytes.len())..i.min(bytes.len()), new.iter().copied());
            }
            Mutation::Delete { at, len: n } => {
                let i = (at % len).min(bytes.len());
                let end = (i + n).min(bytes.len());
                bytes.drain(i..end);
            }
            Mutation::Truncate { at } => bytes.truncate(at % len),
            Mutation::Splice { at, other, from } => {
                let donor = &corpus[other % corpus.len()];
                let from = from % donor.len().max(1);
                let i = (at % len).min(bytes.len());
                bytes.truncate(i);
                bytes.extend_from_slice(&donor[from.min(donor.len())..]);
            }
        }
    }
    bytes
}

#[test]
fn fuzz_mutated_fixtures() {
    let corpus = corpus();
    assert!(
        corpus.len() > 30,
        "the seed corpus is the recorded fixtures"
    );
    fuzz(
        "mutated_fixtures",
        (any::<usize>(), proptest::collection::vec(mutation(), 1..6)),
        |(seed, mutations)| {
            let bytes = mutate(&corpus, seed, &mutations);
            route(&String::from_utf8_lossy(&bytes))
        },
    );
}

/// The verifier's acceptance oracle: a record whose valid token was changed in any way (a byte
/// replaced, inserted or removed, the token cut short, two segments swapped) is never invoked,
/// while the same record with the token as signed is (so the oracle is not vacuous). Covers an
/// RSA, an ECDSA and an Ed25519 key, and the verified-token cache, which sees every original
/// token before its mutation.
#[test]
fn fuzz_mutated_tokens_are_never_invoked() {
    #[derive(Debug, Clone)]
    enum Mutation {
        Replace(usize, u8),
        Insert(usize, u8),
        Remove(usize),
        Truncate(usize),
        SwapSegments(usize, usize),
    }
    let mutation = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Remove),
        any::<usize>().prop_map(Mutation::Truncate),
        (0..3usize, 0..3usize).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
    ];
    let keys = [TestKey::Rs256, TestKey::Es256, TestKey::EdDsa];
    let tokens: Vec<String> = keys.iter().map(|k| sign(*k, &claims("acme"))).collect();
    let router = fake_router(FakeBackend::recording(), &[]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let invoked = |token: &str| -> bool {
        let body = json!({"tenantId": "acme", "tenantToken": token}).to_string();
        let event = json!({"Records": [cross_crate_tests::sqs_record("t", &body, cross_crate_tests::T0_MS)]})
            .to_string();
        let before = router.backend().invoked.lock().unwrap().len();
        let report = runtime
            .block_on(router.route_event(&event, &info()))
            .unwrap();
        let after = router.backend().invoked.lock().unwrap().len();
        let invoked = matches!(report.outcomes[0], router::Outcome::Invoked { .. });
        assert_eq!(invoked, after > before, "the outcome says what was sent");
        invoked
    };
    fuzz(
        "mutated_tokens_are_never_invoked",
        &(0..keys.len(), mutation),
        |(key, mutation)| {
            let original = tokens[key].as_bytes();
            let mut bytes = original.to_vec();
            match mutation {
                Mutation::Replace(i, b) => {
                    let i = i % bytes.len();
                    bytes[i] = b;
                }
                Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
                Mutation::Remove(i) => {
                    bytes.remove(i % bytes.len());
                }
                Mutation::Truncate(i) => bytes.truncate(i % bytes.len()),
                Mutation::SwapSegments(a, b) => {
                    let mut segments: Vec<&[u8]> = original.split(|c| *c == b'.').collect();
                    segments.swap(a, b);
                    bytes = segments.join(&b'.');
                }
            }
            let mutated = String::from_utf8_lossy(&bytes).into_owned();
            // The control: the token as signed goes through (and is cached as verified).
            prop_assert!(invoked(&tokens[key]));
            if mutated != tokens[key] {
                prop_assert!(
                    !invoked(&mutated),
                    "a mutated token was accepted: {mutated:?}"
                );
            }
            Ok(())
        },
    );
}
