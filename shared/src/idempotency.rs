//! The tenant guard's idempotency store: what makes a record's effect happen once across every
//! execution environment of a tenant, the way Powertools for AWS Lambda's idempotency utility
//! does it (and with its DynamoDB table layout, so a team's existing table can be used).
//!
//! Per record, keyed by [`record_id`] (the function, the tenant and the envelope's
//! `idempotencyKey`, so one tenant's key can never return another tenant's result):
//! 1. [`IdempotencyStore::claim`]: a conditional write of `INPROGRESS`, which only succeeds when
//!    there is no item, or the item has expired (`expiration`), or it is `INPROGRESS` past its
//!    `in_progress_expiration` (the environment that claimed it died). Otherwise the existing item
//!    answers: `COMPLETED` → [`Claim::Completed`] with the stored result (the handler does not
//!    run), `INPROGRESS` → [`Claim::InProgress`] (the record fails, transiently: it never runs twice
//!    at once). An `INPROGRESS` item never expires before its claim does (`expiration` is at
//!    least `in_progress_expiration`), so a TTL shorter than the run cannot let a second
//!    environment in while the first still runs.
//! 2. After the handler: [`IdempotencyStore::complete`] stores the result (`COMPLETED`, `data`,
//!    `expiration`), or on a handler error (or panic) [`IdempotencyStore::release`] deletes the
//!    item so a retry can run it. Both are conditional on still holding the claim ([`Hold`]: the
//!    `in_progress_expiration` this claim wrote, which no other claim can write, since a later
//!    claim is only possible once that time has passed and is then later still): an environment
//!    that outlived its claim never overwrites or deletes the item of the one that took over.
//!
//! A store that cannot be reached fails the record (transient), never "runs anyway".
//!
//! [`MemoryStore`] keeps the items in the environment (`BACKEND_IDEMPOTENCY_TABLE` unset: a
//! duplicate that reaches another environment runs again); with the `dynamodb` feature,
//! `DynamoDbStore` keeps them in a DynamoDB table.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use serde_json::Value;

use crate::TenantId;

/// `status` of an item whose record is being processed.
pub const STATUS_IN_PROGRESS: &str = "INPROGRESS";
/// `status` of an item whose record was processed; `data` holds the result.
pub const STATUS_COMPLETED: &str = "COMPLETED";

/// Default of `BACKEND_IDEMPOTENCY_TTL_SECONDS`: how long a completed record is remembered.
pub const DEFAULT_TTL_SECONDS: u64 = 3_600;

/// The store's `id` of a record: `<function>#<tenant>#<idempotencyKey>` (a tenant id never holds
/// `#`, so the tenant part cannot be confused with the key).
pub fn record_id(function: &str, tenant: &TenantId, idempotency_key: &str) -> String {
    format!("{function}#{}#{idempotency_key}", tenant.as_str())
}

/// A claim this environment holds: the `in_progress_expiration` it wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hold {
    /// Until when the claim holds (epoch milliseconds).
    pub until_ms: i64,
}

impl Hold {
    /// The claim made at `now_ms` for an invocation due at `deadline_ms`: never at or before
    /// `now_ms`, so each claim of a record holds a later time than the one it replaced.
    pub fn new(now_ms: i64, deadline_ms: i64) -> Self {
        Self {
            until_ms: deadline_ms.max(now_ms + 1),
        }
    }
}

/// What completing a claimed record did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The result is stored.
    Stored,
    /// The claim had expired and another environment holds the record now: nothing was
    /// written (its run will store its own result).
    ClaimLost,
}

/// What a claim found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This environment now holds the record: run the handler.
    Acquired(Hold),
    /// The record was processed before: its stored result.
    Completed(Value),
    /// Another environment is processing it now.
    InProgress,
}

/// The store could not answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the idempotency store is unavailable: {0}")]
pub struct StoreError(pub String);

/// A boxed future of the store (the trait is used as `dyn`).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where the guard keeps its idempotency items.
pub trait IdempotencyStore: Send + Sync {
    /// Claims record `id` at `now_ms` for an invocation due at `deadline_ms` (epoch
    /// milliseconds): held until [`Hold::new`]`(now_ms, deadline_ms)`.
    fn claim<'a>(&'a self, id: &'a str, now_ms: i64, deadline_ms: i64) -> StoreFuture<'a, Claim>;

    /// Stores `result` for record `id`, completed at `now_ms`, if `hold` still holds it.
    fn complete<'a>(
        &'a self,
        id: &'a str,
        hold: Hold,
        result: &'a Value,
        now_ms: i64,
    ) -> StoreFuture<'a, Completion>;

    /// Forgets record `id` (its handler failed), so a retry runs it, if `hold` still holds it
    /// (otherwise the item is another environment's, and stays).
    fn release<'a>(&'a self, id: &'a str, hold: Hold) -> StoreFuture<'a, ()>;

    /// Whether every environment of the tenant shares the items.
    fn is_shared(&self) -> bool;
}

/// The items of one environment, the most recent [`MemoryStore::CAPACITY`].
#[derive(Debug, Default)]
pub struct MemoryStore {
    items: Mutex<Items>,
}

#[derive(Debug, Default)]
struct Items {
    order: VecDeque<String>,
    by_id: HashMap<String, MemoryItem>,
}

#[derive(Debug, Clone)]
enum MemoryItem {
    InProgress { until_ms: i64 },
    Completed(Value),
}

impl MemoryStore {
    /// Items remembered; the oldest is forgotten past it.
    pub const CAPACITY: usize = 10_000;
}

impl IdempotencyStore for MemoryStore {
    fn claim<'a>(&'a self, id: &'a str, now_ms: i64, deadline_ms: i64) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let mut items = self.items.lock().expect("not poisoned");
            match items.by_id.get(id) {
                Some(MemoryItem::Completed(result)) => return Ok(Claim::Completed(result.clone())),
                Some(MemoryItem::InProgress { until_ms }) if *until_ms > now_ms => {
                    return Ok(Claim::InProgress);
                }
                _ => {}
            }
            let hold = Hold::new(now_ms, deadline_ms);
            let item = MemoryItem::InProgress {
                until_ms: hold.until_ms,
            };
            if items.by_id.insert(id.to_owned(), item).is_none() {
                items.order.push_back(id.to_owned());
                if items.order.len() > Self::CAPACITY
                    && let Some(oldest) = items.order.pop_front()
                {
                    items.by_id.remove(&oldest);
                }
            }
            Ok(Claim::Acquired(hold))
        })
    }

    fn complete<'a>(
        &'a self,
        id: &'a str,
        hold: Hold,
        result: &'a Value,
        _now_ms: i64,
    ) -> StoreFuture<'a, Completion> {
        Box::pin(async move {
            let mut items = self.items.lock().expect("not poisoned");
            match items.by_id.get_mut(id) {
                Some(item @ MemoryItem::InProgress { .. }) if item.held_by(hold) => {
                    *item = MemoryItem::Completed(result.clone());
                    Ok(Completion::Stored)
                }
                _ => Ok(Completion::ClaimLost),
            }
        })
    }

    fn release<'a>(&'a self, id: &'a str, hold: Hold) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut items = self.items.lock().expect("not poisoned");
            if items.by_id.get(id).is_some_and(|item| item.held_by(hold)) {
                items.by_id.remove(id);
                items.order.retain(|kept| kept != id);
            }
            Ok(())
        })
    }

    fn is_shared(&self) -> bool {
        false
    }
}

impl MemoryItem {
    fn held_by(&self, hold: Hold) -> bool {
        matches!(self, MemoryItem::InProgress { until_ms } if *until_ms == hold.until_ms)
    }
}

#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoDbStore;

#[cfg(feature = "dynamodb")]
mod dynamodb {
    //! The DynamoDB store, in Powertools' table layout: partition key `id` (S), `expiration`
    //! (N, epoch seconds, the table's TTL attribute), `status` (S), `data` (S, the result as JSON
    //! text), `in_progress_expiration` (N, epoch milliseconds).

    use std::collections::HashMap;
    use std::time::Duration;

    use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
    use serde_json::Value;

    use super::{
        Claim, Completion, Hold, IdempotencyStore, STATUS_COMPLETED, STATUS_IN_PROGRESS,
        StoreError, StoreFuture,
    };

    /// Condition of completing or releasing: the item is still this claim's.
    const STILL_HELD: &str = "#status = :inprogress AND #in_progress_expiry = :held";

    /// Items in a DynamoDB table, shared by every environment.
    #[derive(Clone, Debug)]
    pub struct DynamoDbStore {
        client: aws_sdk_dynamodb::Client,
        table: String,
        ttl: Duration,
    }

    impl DynamoDbStore {
        /// The store in `table`; completed records are kept for `ttl`.
        pub fn new(client: aws_sdk_dynamodb::Client, table: String, ttl: Duration) -> Self {
            Self { client, table, ttl }
        }

        fn expiration(&self, now_ms: i64) -> i64 {
            now_ms.div_euclid(1000) + self.ttl.as_secs() as i64
        }

        /// One conditional `PutItem` of `INPROGRESS`: `Ok(None)` acquired, `Ok(Some(item))` the
        /// condition failed and the item was returned with the failure, `Err` otherwise (a
        /// failure without the item is `Ok(Some(empty))`).
        async fn put_claim(
            &self,
            id: &str,
            now_ms: i64,
            hold: Hold,
        ) -> Result<Option<HashMap<String, AttributeValue>>, StoreError> {
            // An in-progress item never expires before its claim: a TTL shorter than the run
            // must not let another environment in while this one runs.
            let expiration = self
                .expiration(now_ms)
                .max((hold.until_ms + 999).div_euclid(1000));
            let put = self
                .client
                .put_item()
                .table_name(&self.table)
                .item("id", AttributeValue::S(id.to_owned()))
                .item("expiration", AttributeValue::N(expiration.to_string()))
                .item("status", AttributeValue::S(STATUS_IN_PROGRESS.into()))
                .item(
                    "in_progress_expiration",
                    AttributeValue::N(hold.until_ms.to_string()),
                )
                // Powertools' condition: no item, an expired one, or an INPROGRESS one whose
                // environment ran out of time.
                .condition_expression(
                    "attribute_not_exists(#id) OR #expiry < :now OR \
                     (#status = :inprogress AND attribute_exists(#in_progress_expiry) \
                     AND #in_progress_expiry < :now_ms)",
                )
                .expression_attribute_names("#id", "id")
                .expression_attribute_names("#expiry", "expiration")
                .expression_attribute_names("#status", "status")
                .expression_attribute_names("#in_progress_expiry", "in_progress_expiration")
                .expression_attribute_values(
                    ":now",
                    AttributeValue::N(now_ms.div_euclid(1000).to_string()),
                )
                .expression_attribute_values(":now_ms", AttributeValue::N(now_ms.to_string()))
                .expression_attribute_values(
                    ":inprogress",
                    AttributeValue::S(STATUS_IN_PROGRESS.into()),
                )
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                )
                .send()
                .await;
            match put {
                Ok(_) => Ok(None),
                Err(error) => match error.as_service_error() {
                    Some(failed) if failed.is_conditional_check_failed_exception() => {
                        let item = match failed {
                            aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(
                                failed,
                            ) => failed.item().cloned().unwrap_or_default(),
                            _ => HashMap::new(),
                        };
                        Ok(Some(item))
                    }
                    _ => Err(unavailable(error)),
                },
            }
        }

        /// The item of record `id`, read consistently (the fallback when a failed condition
        /// came without the item, as Powertools does it).
        async fn get(&self, id: &str) -> Result<HashMap<String, AttributeValue>, StoreError> {
            self.client
                .get_item()
                .table_name(&self.table)
                .key("id", AttributeValue::S(id.to_owned()))
                .consistent_read(true)
                .send()
                .await
                .map(|output| output.item.unwrap_or_default())
                .map_err(unavailable)
        }
    }

    /// What an existing item means for a claim at `now_ms`; `None` when it no longer stands in
    /// the way (gone, or expired since the condition failed): claim again.
    fn standing(item: &HashMap<String, AttributeValue>, now_ms: i64) -> Option<Claim> {
        let number = |name: &str| {
            item.get(name)
                .and_then(|n| n.as_n().ok())
                .and_then(|n| n.parse::<i64>().ok())
        };
        let status = item.get("status").and_then(|s| s.as_s().ok())?;
        if number("expiration").is_some_and(|expiry| expiry < now_ms.div_euclid(1000)) {
            return None;
        }
        match status.as_str() {
            STATUS_COMPLETED => {
                let data = item.get("data").and_then(|d| d.as_s().ok());
                let result = data
                    .and_then(|d| serde_json::from_str(d).ok())
                    .unwrap_or(Value::Null);
                Some(Claim::Completed(result))
            }
            STATUS_IN_PROGRESS
                if number("in_progress_expiration").is_some_and(|until| until < now_ms) =>
            {
                None
            }
            // In progress, or a status this guard does not write: not its to take.
            _ => Some(Claim::InProgress),
        }
    }

    fn unavailable<E: ProvideErrorMetadata + std::error::Error>(
        error: SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> StoreError {
        match error.as_service_error() {
            Some(service) => StoreError(format!(
                "{}: {}",
                service.code().unwrap_or("error"),
                service.message().unwrap_or("")
            )),
            None => StoreError(format!("{error}")),
        }
    }

    /// Whether `error` is a failed condition (the claim is no longer held).
    fn condition_failed<E: ProvideErrorMetadata + std::error::Error>(
        error: &SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> bool {
        error
            .as_service_error()
            .and_then(ProvideErrorMetadata::code)
            .is_some_and(|code| code == "ConditionalCheckFailedException")
    }

    impl IdempotencyStore for DynamoDbStore {
        fn claim<'a>(
            &'a self,
            id: &'a str,
            now_ms: i64,
            deadline_ms: i64,
        ) -> StoreFuture<'a, Claim> {
            Box::pin(async move {
                let hold = Hold::new(now_ms, deadline_ms);
                // Twice at most: an item that vanished between the failed condition and the
                // read is claimed once more.
                for _ in 0..2 {
                    let Some(mut item) = self.put_claim(id, now_ms, hold).await? else {
                        return Ok(Claim::Acquired(hold));
                    };
                    if item.is_empty() {
                        item = self.get(id).await?;
                    }
                    if let Some(claim) = standing(&item, now_ms) {
                        return Ok(claim);
                    }
                }
                Err(StoreError(format!(
                    "record {id}: the claim's condition failed twice, but no item stands in \
                     its way"
                )))
            })
        }

        fn complete<'a>(
            &'a self,
            id: &'a str,
            hold: Hold,
            result: &'a Value,
            now_ms: i64,
        ) -> StoreFuture<'a, Completion> {
            Box::pin(async move {
                let update = self
                    .client
                    .update_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(id.to_owned()))
                    .update_expression("SET #data = :data, #expiry = :expiry, #status = :status")
                    .condition_expression(STILL_HELD)
                    .expression_attribute_names("#data", "data")
                    .expression_attribute_names("#expiry", "expiration")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_names("#in_progress_expiry", "in_progress_expiration")
                    .expression_attribute_values(":data", AttributeValue::S(result.to_string()))
                    .expression_attribute_values(
                        ":expiry",
                        AttributeValue::N(self.expiration(now_ms).to_string()),
                    )
                    .expression_attribute_values(
                        ":status",
                        AttributeValue::S(STATUS_COMPLETED.into()),
                    )
                    .expression_attribute_values(
                        ":inprogress",
                        AttributeValue::S(STATUS_IN_PROGRESS.into()),
                    )
                    .expression_attribute_values(
                        ":held",
                        AttributeValue::N(hold.until_ms.to_string()),
                    )
                    .send()
                    .await;
                match update {
                    Ok(_) => Ok(Completion::Stored),
                    Err(error) if condition_failed(&error) => Ok(Completion::ClaimLost),
                    Err(error) => Err(unavailable(error)),
                }
            })
        }

        fn release<'a>(&'a self, id: &'a str, hold: Hold) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                let delete = self
                    .client
                    .delete_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(id.to_owned()))
                    .condition_expression(STILL_HELD)
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_names("#in_progress_expiry", "in_progress_expiration")
                    .expression_attribute_values(
                        ":inprogress",
                        AttributeValue::S(STATUS_IN_PROGRESS.into()),
                    )
                    .expression_attribute_values(
                        ":held",
                        AttributeValue::N(hold.until_ms.to_string()),
                    )
                    .send()
                    .await;
                match delete {
                    Ok(_) => Ok(()),
                    // Another environment's item now: it stays.
                    Err(error) if condition_failed(&error) => Ok(()),
                    Err(error) => Err(unavailable(error)),
                }
            })
        }

        fn is_shared(&self) -> bool {
            true
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn the_memory_store_follows_the_claim_rules() {
        let store = MemoryStore::default();
        let first = Hold { until_ms: 5_000 };
        assert_eq!(
            store.claim("a", 1_000, 5_000).await,
            Ok(Claim::Acquired(first))
        );
        // Held, not expired: in progress; after its time: claimable again, by a later hold.
        assert_eq!(store.claim("a", 2_000, 6_000).await, Ok(Claim::InProgress));
        let second = Hold { until_ms: 9_000 };
        assert_eq!(
            store.claim("a", 5_001, 9_000).await,
            Ok(Claim::Acquired(second))
        );
        // The first environment outlived its claim: it neither completes nor releases the
        // second one's item.
        assert_eq!(
            store.complete("a", first, &json!({"r": 0}), 5_002).await,
            Ok(Completion::ClaimLost)
        );
        store.release("a", first).await.unwrap();
        assert_eq!(store.claim("a", 5_003, 9_500).await, Ok(Claim::InProgress));
        assert_eq!(
            store.complete("a", second, &json!({"r": 1}), 5_004).await,
            Ok(Completion::Stored)
        );
        assert_eq!(
            store.claim("a", 6_000, 9_000).await,
            Ok(Claim::Completed(json!({"r": 1})))
        );
        // A completed item is not released by a stale hold.
        store.release("a", second).await.unwrap();
        assert_eq!(
            store.claim("a", 6_000, 9_000).await,
            Ok(Claim::Completed(json!({"r": 1})))
        );
        assert!(!store.is_shared());
    }

    #[test]
    fn a_hold_is_always_later_than_its_claim() {
        assert_eq!(Hold::new(1_000, 5_000).until_ms, 5_000);
        // A deadline already past still gives a hold after now.
        assert_eq!(Hold::new(1_000, 900).until_ms, 1_001);
    }

    #[test]
    fn record_ids_are_tenant_scoped() {
        let acme = TenantId::parse("acme").unwrap();
        let globex = TenantId::parse("globex").unwrap();
        assert_eq!(
            record_id("backend", &acme, "arn:q#m1"),
            "backend#acme#arn:q#m1"
        );
        assert_ne!(
            record_id("backend", &acme, "arn:q#m1"),
            record_id("backend", &globex, "arn:q#m1")
        );
    }
}
