//! The tenant-isolated function wrapper: turns a plain
//! `async fn(TenantContext, Envelope) -> Result<Value, E>` into a Lambda handler that keeps the
//! backend contract (README, "Backend contract").
//!
//! - The tenant comes from the invocation context (`Lambda-Runtime-Aws-Tenant-Id`), never from the
//!   payload; an invocation without one is refused.
//! - The first tenant pins the execution environment for life ([`EnvironmentGuard`]). Any other
//!   tenant makes the environment fail closed: that invocation and every later one are refused,
//!   whatever their tenant, so a routing mistake can never reach state cached for another tenant.
//! - An envelope whose `tenantId` differs from the context's tenant is refused, logged as a
//!   security event, and nothing of it is processed.
//! - A payload that is not a version-1 envelope or envelope batch, or a record with an empty
//!   `id` or `idempotencyKey`, is refused (`Envelope.Invalid`).
//! - A repeated `idempotencyKey` is recognised through the idempotency store
//!   ([`crate::idempotency`]): the handler does not run again and the stored result is returned,
//!   marked `duplicate`; a record another environment is processing fails as in progress; a
//!   handler error or panic releases the record, so its redelivery runs it. With
//!   `BACKEND_IDEMPOTENCY_TABLE` the store is a DynamoDB table every environment of the tenant
//!   shares; without it, the environment's memory (a duplicate reaching another environment runs
//!   again). A record's effect happens once within the idempotency window (the TTL); it can
//!   happen again after a crash between the effect and the completion, or for a redelivery
//!   after the TTL.
//! - The payload is one envelope (`ROUTER_DELIVERY=record`) or an envelope batch of one tenant
//!   (`tenant-batch`): the handler runs once per record, in order, one at a time, with
//!   per-record results; a batch holding any record of another tenant is refused whole before
//!   anything runs. After a record fails, the batch's `ordering` decides which later records are
//!   not run (`skipped`): those with the same `orderingKey` (`lanes`), or all (`stream`). With
//!   `"answer": "per-record"` (a `request-response` router) the invocation succeeds and the
//!   compact answer says what became of each record ([`crate::answer`]); without it a failed
//!   record is a function error, so Lambda's async retries run the batch again.
//!
//! One module per job: [`context`] and [`error`] (what handlers and callers see), `guard`
//! (tenant admission and pinning), `once` (one record through the idempotency store), `batch`
//! (an envelope batch), `usage` (the per-invocation metrics) and `runtime` (the store the
//! environment asks for, and the Lambda loop).
//!
//! Tenant-scoped state (configuration, secrets, clients) can live in the environment, behind a
//! `OnceLock` or similar: the environment serves one tenant only.

#[cfg(feature = "tenant-access")]
pub mod access;
pub mod context;
pub mod error;

mod batch;
mod guard;
mod once;
mod runtime;
mod usage;

pub use context::TenantContext;
pub use error::{GuardError, InvokeError};
pub use guard::EnvironmentGuard;
pub use runtime::{
    MIN_TTL_SECONDS, StoreSettings, guard_from_env, idempotency_store_from_env, run,
};
pub use usage::{Usage, invocation_metrics};

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, Ordering};

    use serde_json::{Value, json};

    use super::*;
    use crate::idempotency::{Claim, IdempotencyStore, MemoryStore};
    use crate::{Envelope, TenantId};

    fn envelope(tenant: &str, id: &str) -> String {
        json!({
            "version": 1, "tenantId": tenant, "source": "sqs", "eventSourceArn": "arn:q",
            "id": id, "idempotencyKey": format!("arn:q#{id}"), "arrivedAt": "2026-01-01T00:00:00Z",
            "correlationId": "c1", "payload": {"x": 1}
        })
        .to_string()
    }

    async fn echo(context: TenantContext, envelope: Envelope) -> Result<Value, String> {
        Ok(json!({"seenTenant": context.tenant_id, "payload": envelope.payload.get()}))
    }

    #[tokio::test]
    async fn processes_its_own_tenant() {
        let guard = EnvironmentGuard::default();
        let out = guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), echo)
            .await
            .unwrap();
        assert_eq!(out["status"], "processed");
        assert_eq!(out["tenantId"], "acme");
        assert_eq!(out["result"]["seenTenant"], "acme");
        assert_eq!(guard.tenant().unwrap().as_str(), "acme");
    }

    #[tokio::test]
    async fn refuses_without_a_tenant_and_with_an_invalid_one() {
        let guard = EnvironmentGuard::default();
        let err = guard.invoke(None, "r", &envelope("acme", "m"), echo).await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::NoTenant)));
        let err = guard
            .invoke(Some("a#b"), "r", &envelope("acme", "m"), echo)
            .await;
        assert!(matches!(
            err,
            Err(InvokeError::Refused(GuardError::InvalidTenant(_)))
        ));
    }

    #[tokio::test]
    async fn refuses_an_envelope_for_another_tenant_without_running_the_handler() {
        let guard = EnvironmentGuard::default();
        let ran = AtomicBool::new(false);
        let err = guard
            .invoke(Some("acme"), "r", &envelope("Acme", "m"), |_, _| async {
                ran.store(true, Ordering::SeqCst);
                Ok::<_, String>(Value::Null)
            })
            .await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::TenantMismatch)));
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn a_second_tenant_makes_the_environment_fail_closed() {
        let guard = EnvironmentGuard::default();
        guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), echo)
            .await
            .unwrap();
        let err = guard
            .invoke(Some("globex"), "r2", &envelope("globex", "m2"), echo)
            .await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::FailedClosed)));
        // From now on it serves nobody, not even its first tenant.
        let err = guard
            .invoke(Some("acme"), "r3", &envelope("acme", "m3"), echo)
            .await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::FailedClosed)));
    }

    #[tokio::test]
    async fn duplicates_are_recognised_and_not_processed_again() {
        let guard = EnvironmentGuard::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let handler = |_: TenantContext, _: Envelope| async {
            runs.fetch_add(1, Ordering::SeqCst);
            Ok::<_, String>(json!({"n": 1}))
        };
        let first = guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), handler)
            .await
            .unwrap();
        let second = guard
            .invoke(Some("acme"), "r2", &envelope("acme", "m1"), handler)
            .await
            .unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(first.get("duplicate").is_none());
        assert_eq!(second["duplicate"], true);
        assert_eq!(second["result"], first["result"]);
    }

    #[tokio::test]
    async fn a_duplicate_whose_stored_result_is_unreadable_still_answers_as_one() {
        // The store holds the record completed, but its result could not be read back.
        let store = MemoryStore::default();
        let id = crate::idempotency::record_id(
            "function",
            &TenantId::parse("acme").unwrap(),
            "arn:q#m1",
        );
        let Ok(Claim::Acquired(hold)) = store.claim(&id, 0, 0).await else {
            panic!("a new record is claimed");
        };
        store.complete(&id, hold, &Value::Null, 0).await.unwrap();
        let guard = EnvironmentGuard::with_store("function", Box::new(store));
        let answer = guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), |_, _| async {
                Err::<Value, _>("never runs")
            })
            .await
            .unwrap();
        assert_eq!(answer["duplicate"], true);
        assert_eq!(answer["id"], "m1");
        assert_eq!(answer["status"], "processed");
        assert_eq!(answer["result"], Value::Null);
    }

    #[test]
    fn invocation_metrics_are_valid_emf_and_keep_tenants_out_of_dimensions() {
        let ok: Result<Value, InvokeError> = Ok(json!({"correlationId": "c1"}));
        let refused: Result<Value, InvokeError> = Err(GuardError::TenantMismatch.into());
        for result in [ok, refused] {
            let document = invocation_metrics(
                "TenantBackend",
                "backend",
                Some("acme"),
                "r1",
                &result,
                &Usage {
                    payload: r#"{"tenantId":"acme"}"#,
                    new_environment: true,
                    memory_mb: Some(256),
                    architecture: "x86_64",
                    duration: std::time::Duration::from_millis(3),
                },
                0,
            );
            crate::metrics::validate(&document).unwrap();
            assert_eq!(document["tenant_id"], "acme");
            // Usage: one invocation of one record, 19 bytes, in a new environment of 256 MB.
            assert_eq!(document["Invocations"], 1.0);
            assert_eq!(document["Records"], 1.0);
            assert_eq!(document["PayloadBytes"], 19.0);
            assert_eq!(document["EnvironmentsCreated"], 1.0);
            assert_eq!(document["memory_mb"], 256);
            assert_eq!(document["architecture"], "x86_64");
            assert_eq!(
                document["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
                json!([["Service"]])
            );
        }
    }

    #[tokio::test]
    async fn a_handler_error_is_a_function_error() {
        let guard = EnvironmentGuard::default();
        let err = guard
            .invoke(Some("acme"), "r", &envelope("acme", "m"), |_, _| async {
                Err::<Value, _>("boom")
            })
            .await;
        assert_eq!(err, Err(InvokeError::Handler("boom".into())));
    }

    fn batch(tenant: &str, records: &[String]) -> String {
        let records: Vec<Value> = records
            .iter()
            .map(|r| serde_json::from_str(r).unwrap())
            .collect();
        json!({"version": 1, "tenantId": tenant, "records": records}).to_string()
    }

    /// An envelope batch of acme's records with these ids.
    fn acme_batch(ids: &[&str]) -> String {
        let records: Vec<String> = ids.iter().map(|id| envelope("acme", id)).collect();
        batch("acme", &records)
    }

    #[tokio::test]
    async fn a_batch_runs_the_handler_once_per_record_in_order() {
        let guard = EnvironmentGuard::default();
        let seen = Mutex::new(Vec::new());
        let handler = |_: TenantContext, envelope: Envelope| {
            seen.lock().unwrap().push(envelope.id.clone());
            async { Ok::<_, String>(json!({"ok": true})) }
        };
        let payload = acme_batch(&["m3", "m1", "m2"]);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        assert_eq!(*seen.lock().unwrap(), ["m3", "m1", "m2"]);
        assert_eq!(out["tenantId"], "acme");
        assert_eq!(out["processed"], 3);
        assert_eq!(out["duplicates"], 0);
        let ids: Vec<_> = out["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_str().unwrap(), r["status"].as_str().unwrap()))
            .collect();
        assert_eq!(
            ids,
            [
                ("m3", "processed"),
                ("m1", "processed"),
                ("m2", "processed")
            ]
        );
    }

    #[tokio::test]
    async fn a_batch_with_one_record_of_another_tenant_is_refused_whole() {
        let guard = EnvironmentGuard::default();
        let ran = AtomicBool::new(false);
        let handler = |_: TenantContext, _: Envelope| {
            ran.store(true, Ordering::SeqCst);
            async { Ok::<_, String>(Value::Null) }
        };
        let mixed = batch("acme", &[envelope("acme", "m1"), envelope("globex", "m2")]);
        let err = guard.invoke(Some("acme"), "r", &mixed, handler).await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::TenantMismatch)));
        let other = batch("globex", &[envelope("acme", "m1")]);
        let err = guard.invoke(Some("acme"), "r", &other, handler).await;
        assert_eq!(err, Err(InvokeError::Refused(GuardError::TenantMismatch)));
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn duplicates_are_recognised_within_and_across_batches() {
        let guard = EnvironmentGuard::default();
        let runs = std::sync::atomic::AtomicUsize::new(0);
        let handler = |_: TenantContext, _: Envelope| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<_, String>(json!({"n": 1})) }
        };
        let first = acme_batch(&["m1", "m1"]);
        let out = guard
            .invoke(Some("acme"), "r1", &first, handler)
            .await
            .unwrap();
        assert_eq!(
            (out["processed"].clone(), out["duplicates"].clone()),
            (json!(1), json!(1))
        );
        assert_eq!(out["records"][1]["duplicate"], true);
        // A record once delivered alone is a duplicate in a later batch, and the other way round.
        guard
            .invoke(Some("acme"), "r2", &envelope("acme", "m2"), handler)
            .await
            .unwrap();
        let second = acme_batch(&["m2", "m3"]);
        let out = guard
            .invoke(Some("acme"), "r3", &second, handler)
            .await
            .unwrap();
        assert_eq!(
            (out["processed"].clone(), out["duplicates"].clone()),
            (json!(1), json!(1))
        );
        let again = guard
            .invoke(Some("acme"), "r4", &envelope("acme", "m3"), handler)
            .await
            .unwrap();
        assert_eq!(again["duplicate"], true);
        assert_eq!(runs.load(Ordering::SeqCst), 3);
    }

    /// An envelope of acme with `id` and ordering key `key`.
    fn keyed(id: &str, key: &str) -> String {
        let mut envelope: Value = serde_json::from_str(&envelope("acme", id)).unwrap();
        envelope["orderingKey"] = json!(key);
        envelope.to_string()
    }

    fn ordered_batch(ordering: &str, answer: Option<&str>, records: &[String]) -> String {
        let mut batch: Value = serde_json::from_str(&batch("acme", records)).unwrap();
        batch["ordering"] = json!(ordering);
        if let Some(answer) = answer {
            batch["answer"] = json!(answer);
        }
        batch.to_string()
    }

    fn statuses(out: &Value) -> Vec<(String, String)> {
        out["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["id"].as_str().unwrap().to_owned(),
                    r["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// `ordering: lanes`: after a record fails, the later records with its ordering key are not
    /// run; the other keys go on. With `answer: per-record` the invocation succeeds and says so.
    #[tokio::test]
    async fn a_failed_record_stops_its_lane_in_the_batch() {
        let guard = EnvironmentGuard::default();
        let ran = Mutex::new(Vec::new());
        let handler = |_: TenantContext, envelope: Envelope| {
            ran.lock().unwrap().push(envelope.id.clone());
            let fail = envelope.id == "a2";
            async move {
                if fail {
                    Err("boom".to_owned())
                } else {
                    Ok(json!({}))
                }
            }
        };
        let records = [
            keyed("a1", "g-a"),
            keyed("a2", "g-a"),
            keyed("b1", "g-b"),
            keyed("a3", "g-a"),
            keyed("b2", "g-b"),
        ];
        let payload = ordered_batch("lanes", Some("per-record"), &records);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        assert_eq!(*ran.lock().unwrap(), ["a1", "a2", "b1", "b2"]);
        let expected = [
            ("a1", "processed"),
            ("a2", "failed"),
            ("b1", "processed"),
            ("a3", "skipped"),
            ("b2", "processed"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(i, s)| (i.to_string(), s.to_string()))
            .collect();
        assert_eq!(statuses(&out), expected);
        assert_eq!(
            (out["failed"].clone(), out["skipped"].clone()),
            (json!(1), json!(1))
        );
        let result: crate::answer::BatchResult = serde_json::from_value(out).unwrap();
        assert!(result.records[3].error.as_deref().unwrap().contains("a2"));
        // Without `answer`, the same batch is a function error naming the failure.
        let guard = EnvironmentGuard::default();
        let payload = ordered_batch("lanes", None, &records);
        let err = guard
            .invoke(Some("acme"), "r2", &payload, handler)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                InvokeError::PartialFailure {
                    failed: 1,
                    skipped: 1,
                    ..
                }
            ),
            "{err:?}"
        );
    }

    /// `ordering: stream`: after a record fails, no later record of the batch runs.
    #[tokio::test]
    async fn a_failed_record_stops_a_stream_batch() {
        let guard = EnvironmentGuard::default();
        let handler = |_: TenantContext, envelope: Envelope| {
            let fail = envelope.id == "2";
            async move {
                if fail {
                    Err("boom".to_owned())
                } else {
                    Ok(json!({}))
                }
            }
        };
        let records = [keyed("1", "k1"), keyed("2", "k1"), keyed("3", "k2")];
        let payload = ordered_batch("stream", Some("per-record"), &records);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        let got: Vec<_> = statuses(&out).into_iter().map(|(_, s)| s).collect();
        assert_eq!(got, ["processed", "failed", "skipped"]);
    }

    #[tokio::test]
    async fn a_failed_record_fails_the_batch_and_its_retry_runs_only_that_record() {
        let guard = EnvironmentGuard::default();
        let fail_m2 = AtomicBool::new(true);
        let runs = Mutex::new(Vec::new());
        let handler = |_: TenantContext, envelope: Envelope| {
            runs.lock().unwrap().push(envelope.id.clone());
            let fail = envelope.id == "m2" && fail_m2.load(Ordering::SeqCst);
            async move {
                if fail {
                    Err("downstream unavailable".to_owned())
                } else {
                    Ok(json!({}))
                }
            }
        };
        let payload = acme_batch(&["m1", "m2", "m3"]);
        let err = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap_err();
        assert_eq!(
            err,
            InvokeError::PartialFailure {
                processed: 2,
                duplicates: 0,
                failed: 1,
                skipped: 0,
                detail: "m2: downstream unavailable".into(),
            }
        );
        assert_eq!(err.error_type(), "Handler.PartialFailure");
        let document = invocation_metrics(
            "N",
            "backend",
            Some("acme"),
            "r1",
            &Err(err),
            &Usage {
                payload: &payload,
                new_environment: false,
                memory_mb: None,
                architecture: "arm64",
                duration: std::time::Duration::ZERO,
            },
            0,
        );
        assert_eq!(document["RecordsProcessed"], 2.0);
        assert_eq!(document["HandlerErrors"], 1.0);
        assert_eq!(document["Records"], 3.0);
        assert_eq!(document["EnvironmentsCreated"], 0.0);
        assert_eq!(document["PayloadBytes"], payload.len() as f64);
        // Lambda retries the invocation: only m2 runs again.
        fail_m2.store(false, Ordering::SeqCst);
        let out = guard
            .invoke(Some("acme"), "r1", &payload, handler)
            .await
            .unwrap();
        assert_eq!(
            (out["processed"].clone(), out["duplicates"].clone()),
            (json!(1), json!(2))
        );
        assert_eq!(*runs.lock().unwrap(), ["m1", "m2", "m3", "m2"]);
    }

    /// A handler that panics fails its record like an error does, and releases its claim: the
    /// redelivery runs (it is not `Idempotency.InProgress` until the deadline).
    #[tokio::test]
    async fn a_panicking_handler_releases_its_claim() {
        let guard = EnvironmentGuard::default();
        let panics = AtomicBool::new(true);
        let handler = |_: TenantContext, _: Envelope| {
            let panic = panics.load(Ordering::SeqCst);
            async move {
                if panic {
                    panic!("injected panic");
                }
                Ok::<_, String>(json!({"ran": true}))
            }
        };
        let err = guard
            .invoke(Some("acme"), "r1", &envelope("acme", "m1"), handler)
            .await
            .unwrap_err();
        assert_eq!(err.error_type(), "Handler.Error");
        assert!(err.to_string().contains("injected panic"), "{err}");
        panics.store(false, Ordering::SeqCst);
        let out = guard
            .invoke(Some("acme"), "r2", &envelope("acme", "m1"), handler)
            .await
            .unwrap();
        assert_eq!(out["result"]["ran"], true);
        assert!(out.get("duplicate").is_none());
        // A panic before the handler's future exists, inside a batch: that record fails, the
        // others run, and it runs on the retry.
        let sync_panic = AtomicBool::new(true);
        let handler = |_: TenantContext, envelope: Envelope| {
            if envelope.id == "b2" && sync_panic.load(Ordering::SeqCst) {
                panic!("before the future");
            }
            async { Ok::<_, String>(json!({})) }
        };
        let payload = acme_batch(&["b1", "b2", "b3"]);
        let payload = {
            let mut batch: Value = serde_json::from_str(&payload).unwrap();
            batch["answer"] = json!("per-record");
            batch.to_string()
        };
        let out = guard
            .invoke(Some("acme"), "r3", &payload, handler)
            .await
            .unwrap();
        let got: Vec<_> = statuses(&out).into_iter().map(|(_, s)| s).collect();
        assert_eq!(got, ["processed", "failed", "processed"]);
        sync_panic.store(false, Ordering::SeqCst);
        let out = guard
            .invoke(Some("acme"), "r4", &payload, handler)
            .await
            .unwrap();
        assert_eq!(
            (out["processed"].clone(), out["duplicates"].clone()),
            (json!(1), json!(2))
        );
    }

    /// A run dropped before it ends (its caller gave up) releases its claim too.
    #[tokio::test]
    async fn a_dropped_run_releases_its_claim() {
        let guard = EnvironmentGuard::default();
        let slow = AtomicBool::new(true);
        let handler = |_: TenantContext, _: Envelope| {
            let slow = slow.load(Ordering::SeqCst);
            async move {
                if slow {
                    tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
                }
                Ok::<_, String>(json!({}))
            }
        };
        let cut = tokio::time::timeout(
            std::time::Duration::from_millis(20),
            guard.invoke(Some("acme"), "r1", &envelope("acme", "m1"), handler),
        )
        .await;
        assert!(cut.is_err(), "cut off");
        slow.store(false, Ordering::SeqCst);
        // The release is spawned: let it run.
        tokio::task::yield_now().await;
        let out = guard
            .invoke(Some("acme"), "r2", &envelope("acme", "m1"), handler)
            .await;
        assert!(out.is_ok(), "{out:?}");
    }

    /// A batch answer is compact and bounded: per record only id, status, error (cut) and
    /// duplicate — never the handler's result, however large.
    #[tokio::test]
    async fn a_batch_answer_carries_no_handler_result() {
        let guard = EnvironmentGuard::default();
        let handler = |_: TenantContext, envelope: Envelope| {
            let fail = envelope.id == "m2";
            async move {
                if fail {
                    Err("x".repeat(10_000))
                } else {
                    Ok(json!({"big": "y".repeat(100_000)}))
                }
            }
        };
        let mut batch: Value = serde_json::from_str(&acme_batch(&["m1", "m2", "m1"])).unwrap();
        batch["answer"] = json!("per-record");
        let out = guard
            .invoke(Some("acme"), "r1", &batch.to_string(), handler)
            .await
            .unwrap();
        let records = out["records"].as_array().unwrap();
        for record in records {
            let keys: Vec<&str> = record
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.as_str())
                .collect();
            assert!(
                keys.iter()
                    .all(|k| ["id", "status", "error", "duplicate"].contains(k)),
                "{keys:?}"
            );
            assert!(record.to_string().len() <= crate::answer::record_answer_bound("m1"));
        }
        assert_eq!(records[2]["duplicate"], true);
        let error = records[1]["error"].as_str().unwrap();
        assert_eq!(error.chars().count(), crate::answer::MAX_ERROR_CHARS);
        // The compact answer reads back as what the router reads.
        let read: crate::answer::BatchResult = serde_json::from_value(out).unwrap();
        assert!(read.records[2].duplicate);
    }

    /// Unknown versions and empty ids or keys are refused before anything runs.
    #[tokio::test]
    async fn envelopes_of_another_version_or_without_id_or_key_are_refused() {
        let guard = EnvironmentGuard::default();
        let ran = AtomicBool::new(false);
        let handler = |_: TenantContext, _: Envelope| {
            ran.store(true, Ordering::SeqCst);
            async { Ok::<_, String>(Value::Null) }
        };
        for (member, value) in [
            ("version", json!(2)),
            ("id", json!("")),
            ("idempotencyKey", json!("")),
        ] {
            let mut bad: Value = serde_json::from_str(&envelope("acme", "m1")).unwrap();
            bad[member] = value;
            let err = guard
                .invoke(Some("acme"), "r", &bad.to_string(), handler)
                .await
                .unwrap_err();
            assert_eq!(err.error_type(), "Envelope.Invalid", "{member}");
            let batch = batch("acme", &[envelope("acme", "m2"), bad.to_string()]);
            let err = guard
                .invoke(Some("acme"), "r", &batch, handler)
                .await
                .unwrap_err();
            assert_eq!(err.error_type(), "Envelope.Invalid", "{member} in a batch");
        }
        assert!(!ran.load(Ordering::SeqCst));
    }

    #[test]
    fn store_settings_fail_closed() {
        let read = |vars: &[(&str, &str)]| {
            let vars: std::collections::HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            StoreSettings::from_lookup(|name| vars.get(name).cloned())
        };
        assert_eq!(read(&[]), Ok(StoreSettings::Memory));
        assert_eq!(
            read(&[("BACKEND_IDEMPOTENCY_TABLE", "t")]),
            Ok(StoreSettings::Table {
                table: "t".into(),
                ttl_seconds: 3_600
            })
        );
        let blank = read(&[("BACKEND_IDEMPOTENCY_TABLE", "  ")]).unwrap_err();
        assert!(blank.contains("BACKEND_IDEMPOTENCY_TABLE"), "{blank}");
        for ttl in ["899", "0", "-1", "soon", ""] {
            let error = read(&[
                ("BACKEND_IDEMPOTENCY_TABLE", "t"),
                ("BACKEND_IDEMPOTENCY_TTL_SECONDS", ttl),
            ])
            .unwrap_err();
            assert!(error.contains("BACKEND_IDEMPOTENCY_TTL_SECONDS"), "{error}");
        }
        assert_eq!(
            read(&[
                ("BACKEND_IDEMPOTENCY_TABLE", "t"),
                ("BACKEND_IDEMPOTENCY_TTL_SECONDS", "900")
            ]),
            Ok(StoreSettings::Table {
                table: "t".into(),
                ttl_seconds: 900
            })
        );
    }
}
