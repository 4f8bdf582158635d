//! `ROUTER_DELIVERY=tenant-batch` through the real handler and SDK client: chunking at the async
//! payload limit, ordering inside and across chunks, the failure of one chunk, records larger than
//! half the limit, and a refused chunk split into single records.

use cross_crate_tests::info;
use std::time::Duration;

use cross_crate_tests::{
    T0_MS, TestKey, body, claims, into_fifo, kinesis_record, sign, sqs_event, sqs_record,
};
use router::Outcome;
use serde_json::{Value, json};
use shared::ASYNC_PAYLOAD_LIMIT;
use wiremock::Mock;
use wiremock::matchers::{body_string_contains, method, path_regex};

use crate::util::*;

const TENANT_BATCH: &[(&str, &str)] = &[("ROUTER_DELIVERY", "tenant-batch")];

/// An SQS record `m-<i>` of `tenant` whose payload is about `bytes` long.
fn record(i: usize, tenant: &str, bytes: usize) -> Value {
    let token = sign(TestKey::Es256, &claims(tenant));
    let item = json!({"n": i, "notes": "x".repeat(bytes)});
    sqs_record(&format!("m-{i}"), &body(tenant, &token, item), T0_MS)
}

/// The ids each Invoke carried, in arrival order, with its tenant header and payload size.
async fn chunks(server: &wiremock::MockServer) -> Vec<(String, Vec<String>, usize)> {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.url.path().ends_with("/invocations"))
        .map(|r| {
            let tenant = r.headers["x-amz-tenant-id"].to_str().unwrap().to_owned();
            let payload: Value = serde_json::from_slice(&r.body).unwrap();
            let ids = match payload.get("records") {
                Some(records) => {
                    assert_eq!(payload["version"], 1);
                    assert_eq!(payload["tenantId"], tenant.as_str());
                    records
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| {
                            assert_eq!(e["tenantId"], tenant.as_str());
                            e["id"].as_str().unwrap().to_owned()
                        })
                        .collect()
                }
                None => vec![payload["id"].as_str().unwrap().to_owned()],
            };
            (tenant, ids, r.body.len())
        })
        .collect()
}

fn all_invoked(outcomes: &[Outcome]) -> bool {
    outcomes
        .iter()
        .all(|o| matches!(o, Outcome::Invoked { .. }))
}

#[tokio::test]
async fn one_invoke_per_tenant_when_everything_fits() {
    let server = lambda_server().await;
    let router = router(&server, TENANT_BATCH);
    let records = (0..30)
        .map(|i| record(i, &format!("tenant-{}", i % 3), 100))
        .collect();
    let event = sqs_event(records).to_string();
    let report = router.route_event(&event, &info()).await.unwrap();
    assert!(all_invoked(&report.outcomes));
    assert!(reported(&report.response).is_empty());
    let mut chunks = chunks(&server).await;
    chunks.sort();
    assert_eq!(chunks.len(), 3, "one Invoke per tenant");
    for (n, (tenant, ids, _)) in chunks.iter().enumerate() {
        assert_eq!(*tenant, format!("tenant-{n}"));
        let expected: Vec<String> = (0..30)
            .filter(|i| i % 3 == n)
            .map(|i| format!("m-{i}"))
            .collect();
        assert_eq!(*ids, expected, "batch order within the tenant");
    }
}

#[tokio::test]
async fn chunks_are_filled_up_to_the_async_payload_limit() {
    let server = lambda_server().await;
    let router = router(&server, TENANT_BATCH);
    // 25 records of ~100 KB: at most 10 fit in 1 MB, so three chunks.
    let records = (0..25).map(|i| record(i, "acme", 100_000)).collect();
    let event = sqs_event(records).to_string();
    let response = handle(&router, &event).await;
    assert!(reported(&response).is_empty());
    let chunks = chunks(&server).await;
    assert!(chunks.len() >= 3, "{} chunks", chunks.len());
    let carried: Vec<String> = chunks.iter().flat_map(|(_, ids, _)| ids.clone()).collect();
    let expected: Vec<String> = (0..25).map(|i| format!("m-{i}")).collect();
    assert_eq!(carried, expected, "each record once, in order");
    for (n, (_, ids, size)) in chunks.iter().enumerate() {
        assert!(*size <= ASYNC_PAYLOAD_LIMIT, "chunk {n} is {size} bytes");
        if n + 1 < chunks.len() {
            // Full: the next record (about the same size as the others) would not have fitted.
            let per_record = size / ids.len();
            assert!(
                size + per_record > ASYNC_PAYLOAD_LIMIT,
                "chunk {n} of {size} bytes had room for another record"
            );
        }
    }
}

/// With `request-response` the chunk limit is the sync payload limit (6 MB): records that take
/// three async chunks go in one sync Invoke, answered per record.
#[tokio::test]
async fn request_response_chunks_go_up_to_the_sync_payload_limit() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(|request: &wiremock::Request| {
            let payload: Value = serde_json::from_slice(&request.body).unwrap();
            let records: Vec<Value> = payload["records"]
                .as_array()
                .map(|records| {
                    records
                        .iter()
                        .map(|e| json!({"id": e["id"], "status": "processed"}))
                        .collect()
                })
                .unwrap_or_default();
            wiremock::ResponseTemplate::new(200).set_body_json(json!({"records": records}))
        })
        .mount(&server)
        .await;
    let router = router(
        &server,
        &[
            ("ROUTER_DELIVERY", "tenant-batch"),
            ("ROUTER_INVOCATION_TYPE", "request-response"),
            ("ROUTER_BATCH_HOLD_BYTES", "16777216"),
        ],
    );
    let records = (0..25).map(|i| record(i, "acme", 100_000)).collect();
    let report = router
        .route_event(&sqs_event(records).to_string(), &info())
        .await
        .unwrap();
    assert!(all_invoked(&report.outcomes), "{:?}", report.outcomes);
    let chunks = chunks(&server).await;
    assert_eq!(chunks.len(), 1, "one sync Invoke");
    let (_, ids, size) = &chunks[0];
    assert_eq!(ids.len(), 25);
    assert!(
        *size > ASYNC_PAYLOAD_LIMIT && *size <= shared::SYNC_PAYLOAD_LIMIT,
        "{size}"
    );
}

#[tokio::test]
async fn records_larger_than_half_the_limit_go_one_per_invoke() {
    // The size of a record's envelope, measured in record mode, for notes of 10 bytes.
    let probe = lambda_server().await;
    handle(
        &router(&probe, &[]),
        &sqs_event(vec![record(4, "acme", 10)]).to_string(),
    )
    .await;
    let envelope_of_10 = probe.received_requests().await.unwrap()[0].body.len();
    // Fits the limit alone (20 bytes to spare), but not with the batch's own fields around it.
    let almost_the_limit = ASYNC_PAYLOAD_LIMIT - 20 - (envelope_of_10 - 10);

    let server = lambda_server().await;
    let router = router(&server, TENANT_BATCH);
    let records = vec![
        record(0, "acme", 600_000),
        record(1, "acme", 10),
        record(2, "acme", 600_000),
        record(3, "acme", 10),
        record(4, "acme", almost_the_limit),
    ];
    let event = sqs_event(records).to_string();
    let report = router.route_event(&event, &info()).await.unwrap();
    assert!(all_invoked(&report.outcomes), "{:?}", report.outcomes);
    let chunks = chunks(&server).await;
    let carried: Vec<Vec<String>> = chunks.iter().map(|(_, ids, _)| ids.clone()).collect();
    assert_eq!(
        carried,
        [vec!["m-0", "m-1"], vec!["m-2", "m-3"], vec!["m-4"]]
            .map(|c| c.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    );
    for (_, _, size) in &chunks {
        assert!(*size <= ASYNC_PAYLOAD_LIMIT);
    }
    // The last went as a plain envelope of exactly the measured size.
    let last = &server.received_requests().await.unwrap()[2];
    assert_eq!(last.body.len(), ASYNC_PAYLOAD_LIMIT - 20);
    let payload: Value = serde_json::from_slice(&last.body).unwrap();
    assert!(payload.get("records").is_none());
    assert_eq!(payload["id"], "m-4");
}

/// Answers 500 to every Invoke carrying `id`, 202 to the others.
async fn fail_chunks_with(server: &wiremock::MockServer, id: &str) {
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .and(body_string_contains(format!("\"id\":\"{id}\"")))
        .respond_with(lambda_error(500, "ServiceException"))
        .with_priority(1)
        .mount(server)
        .await;
    accept_the_rest(server).await;
}

#[tokio::test]
async fn a_failed_chunk_fails_exactly_the_records_it_carried() {
    let server = bare_server().await;
    fail_chunks_with(&server, "m-12").await;
    let router = router(
        &server,
        &[
            ("ROUTER_DELIVERY", "tenant-batch"),
            ("ROUTER_RETRY_MAX_ATTEMPTS", "2"),
        ],
    );
    let mut records: Vec<Value> = (0..25).map(|i| record(i, "acme", 100_000)).collect();
    records.push(record(25, "globex", 10));
    let event = sqs_event(records).to_string();
    let response = handle(&router, &event).await;
    let chunks = chunks(&server).await;
    let failed = chunks
        .iter()
        .find(|(_, ids, _)| ids.contains(&"m-12".to_owned()))
        .unwrap()
        .1
        .clone();
    assert!(failed.len() > 1);
    assert_eq!(
        reported(&response),
        failed,
        "the failed chunk's records, no others"
    );
    // The failed chunk was tried twice; the others once.
    let attempts = chunks.iter().filter(|(_, ids, _)| *ids == failed).count();
    assert_eq!(attempts, 2);
}

#[tokio::test]
async fn fifo_order_holds_across_chunks_and_a_failed_chunk_stops_its_groups() {
    let server = bare_server().await;
    fail_chunks_with(&server, "m-13").await;
    let router = router(
        &server,
        &[
            ("ROUTER_DELIVERY", "tenant-batch"),
            ("ROUTER_RETRY_MAX_ATTEMPTS", "1"),
        ],
    );
    // Two groups of one tenant, interleaved, 100 KB each: three chunks of acme, sent in turn.
    let records: Vec<Value> = (0..30)
        .map(|i| into_fifo(record(i, "acme", 100_000), &format!("g{}", i % 2), i as u64))
        .collect();
    let event = sqs_event(records).to_string();
    let response = handle(&router, &event).await;
    let chunks = chunks(&server).await;
    // Packed in batch order and sent one after the other: arrival order is batch order.
    let carried: Vec<String> = chunks.iter().flat_map(|(_, ids, _)| ids.clone()).collect();
    let mut sorted = carried.clone();
    sorted.sort_by_key(|id| id[2..].parse::<usize>().unwrap());
    assert_eq!(carried, sorted);
    // m-13 failed with its chunk; nothing after the chunk's first record of each group was
    // delivered, and everything from there on is reported, in batch order.
    let failed = &chunks
        .iter()
        .find(|(_, ids, _)| ids.contains(&"m-13".to_owned()))
        .unwrap()
        .1;
    let first_failed: usize = failed[0][2..].parse().unwrap();
    assert_eq!(
        chunks.last().unwrap().1,
        *failed,
        "no chunk after the failed one"
    );
    let expected: Vec<String> = (first_failed..30).map(|i| format!("m-{i}")).collect();
    assert_eq!(reported(&response), expected);
}

#[tokio::test]
async fn a_stream_reports_the_lowest_sequence_number_of_a_failed_chunk() {
    let server = bare_server().await;
    let token = sign(TestKey::Es256, &claims("acme"));
    let data = |i: usize| {
        json!({"tenantId": "acme", "tenantToken": token, "notes": "x".repeat(100_000), "i": i})
            .to_string()
    };
    let sequence = |i: usize| format!("4959{i:052}");
    fail_chunks_with(&server, &sequence(15)).await;
    let router = router(
        &server,
        &[
            ("ROUTER_DELIVERY", "tenant-batch"),
            ("ROUTER_RETRY_MAX_ATTEMPTS", "1"),
        ],
    );
    let records: Vec<Value> = (0..30)
        .map(|i| kinesis_record(&sequence(i), &format!("key-{}", i % 3), data(i).as_bytes()))
        .collect();
    let response = handle(&router, &json!({"Records": records}).to_string()).await;
    let chunks = chunks(&server).await;
    let failed = &chunks
        .iter()
        .find(|(_, ids, _)| ids.contains(&sequence(15)))
        .unwrap()
        .1;
    let lowest = failed.iter().min().unwrap().clone();
    assert_eq!(reported(&response), std::slice::from_ref(&lowest));
    // Nothing at or above it went out after the failure.
    assert_eq!(chunks.last().unwrap().1, *failed);
    for (_, ids, _) in &chunks[..chunks.len() - 1] {
        assert!(ids.iter().all(|id| *id < lowest));
    }
}

#[tokio::test]
async fn a_refused_chunk_is_split_and_only_the_bad_record_is_rejected() {
    let server = bare_server().await;
    // The service refuses any Invoke carrying m-3 as unusable.
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .and(body_string_contains("\"id\":\"m-3\""))
        .respond_with(lambda_error(413, "RequestTooLargeException"))
        .with_priority(1)
        .mount(&server)
        .await;
    accept_the_rest(&server).await;
    let router = router(&server, TENANT_BATCH);
    let records = (0..6).map(|i| record(i, "acme", 10)).collect();
    let report = router
        .route_event(&sqs_event(records).to_string(), &info())
        .await
        .unwrap();
    assert_eq!(reported(&report.response), ["m-3"]);
    assert_eq!(report.outcomes[3].reason(), Some("invoke-too-large"));
    let carried: Vec<Vec<String>> = chunks(&server)
        .await
        .into_iter()
        .map(|(_, ids, _)| ids)
        .collect();
    assert_eq!(carried[0].len(), 6, "first all together");
    assert_eq!(carried.len(), 7, "then one by one");
    assert!(carried[1..].iter().all(|ids| ids.len() == 1));
}

#[tokio::test]
async fn invalid_records_are_rejected_alone_and_the_rest_batched() {
    let server = lambda_server().await;
    let router = router(&server, TENANT_BATCH);
    let mut records: Vec<Value> = (0..4).map(|i| record(i, "acme", 10)).collect();
    records.push(sqs_record("m-bad", "{not json", T0_MS));
    let forged = sign(TestKey::Es256, &claims("globex"));
    records.push(sqs_record(
        "m-forged",
        &body("acme", &forged, json!({})),
        T0_MS,
    ));
    let response = handle(&router, &sqs_event(records).to_string()).await;
    assert_eq!(reported(&response), ["m-bad", "m-forged"]);
    let carried: Vec<Vec<String>> = chunks(&server)
        .await
        .into_iter()
        .map(|(_, ids, _)| ids)
        .collect();
    assert_eq!(carried, [["m-0", "m-1", "m-2", "m-3"]]);
}

/// `ROUTER_BATCH_HOLD_BYTES` bounds what waits to be sent: with many tenants in one batch, the
/// largest chunk goes early, so there are more chunks than tenants, none larger than the budget
/// plus one record, and still every record once, each tenant's in batch order.
#[tokio::test]
async fn the_hold_budget_sends_the_largest_chunk_early() {
    let server = lambda_server().await;
    let router = router(
        &server,
        &[
            ("ROUTER_DELIVERY", "tenant-batch"),
            ("ROUTER_BATCH_HOLD_BYTES", "60000"),
        ],
    );
    // 40 records of ~5 KB over 4 tenants, interleaved: 200 KB in all, 50 KB per tenant.
    let records = (0..40)
        .map(|i| record(i, &format!("tenant-{}", i % 4), 5_000))
        .collect();
    let event = sqs_event(records).to_string();
    let report = router.route_event(&event, &info()).await.unwrap();
    assert!(all_invoked(&report.outcomes), "{:?}", report.outcomes);
    let chunks = chunks(&server).await;
    assert!(
        chunks.len() > 4,
        "{} chunks: the budget sent none early",
        chunks.len()
    );
    let largest_record = chunks
        .iter()
        .filter(|(_, ids, _)| ids.len() == 1)
        .map(|(_, _, size)| *size)
        .max()
        .unwrap_or(6_000);
    for (tenant, ids, size) in &chunks {
        assert!(*size <= 60_000 + largest_record, "{tenant}: {size} bytes");
        assert!(!ids.is_empty());
    }
    for n in 0..4 {
        let tenant = format!("tenant-{n}");
        let carried: Vec<String> = chunks
            .iter()
            .filter(|(t, _, _)| *t == tenant)
            .flat_map(|(_, ids, _)| ids.clone())
            .collect();
        let expected: Vec<String> = (0..40)
            .filter(|i| i % 4 == n)
            .map(|i| format!("m-{i}"))
            .collect();
        assert_eq!(
            carried, expected,
            "{tenant}: each record once, in batch order"
        );
    }
}

/// A chunk that never goes out (the deadline came while the tenant's previous chunk was on its
/// way) ends its first record of each FIFO group with the deadline and the group's later ones
/// as `earlier-record-failed`, exactly as if each had been taken after the other.
#[tokio::test]
async fn a_chunk_that_never_goes_out_keeps_its_groups_rules() {
    let server = bare_server().await;
    Mock::given(method("POST"))
        .and(path_regex(INVOKE_PATH))
        .respond_with(wiremock::ResponseTemplate::new(202).set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;
    let router = router(
        &server,
        &[
            ("ROUTER_DELIVERY", "tenant-batch"),
            ("ROUTER_RETRY_MAX_ATTEMPTS", "1"),
        ],
    );
    let records = vec![
        into_fifo(record(0, "acme", 10), "g0", 0),
        // Not JSON: rejected, and the chunk holding g0's first record must go before it.
        into_fifo(sqs_record("m-1", "{not json", T0_MS), "g0", 1),
        into_fifo(record(2, "acme", 10), "g1", 2),
        into_fifo(record(3, "acme", 10), "g1", 3),
    ];
    let info =
        router::InvocationInfo::with_budget(Duration::from_millis(600), Duration::from_millis(100));
    let report = router
        .route_event(&sqs_event(records).to_string(), &info)
        .await
        .unwrap();
    let reasons: Vec<_> = report.outcomes.iter().map(|o| o.reason()).collect();
    assert_eq!(
        reasons,
        [
            Some("invoke-timeout"),
            Some("earlier-record-failed"),
            Some("deadline"),
            Some("earlier-record-failed"),
        ],
        "{:?}",
        report.outcomes
    );
    let carried: Vec<String> = chunks(&server)
        .await
        .into_iter()
        .flat_map(|(_, ids, _)| ids)
        .collect();
    assert_eq!(carried, ["m-0"], "the second chunk never went out");
}
