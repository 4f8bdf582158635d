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
//!    at once).
//! 2. After the handler: [`IdempotencyStore::complete`] stores the result (`COMPLETED`, `data`,
//!    `expiration`), or on a handler error [`IdempotencyStore::release`] deletes the item so a retry
//!    can run it.
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

/// What a claim found.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This environment now holds the record: run the handler.
    Acquired,
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
    /// Claims record `id` until `in_progress_until_ms` (epoch milliseconds: the invocation's
    /// deadline), at `now_ms`.
    fn claim<'a>(
        &'a self,
        id: &'a str,
        now_ms: i64,
        in_progress_until_ms: i64,
    ) -> StoreFuture<'a, Claim>;

    /// Stores `result` for record `id`, completed at `now_ms`.
    fn complete<'a>(&'a self, id: &'a str, result: &'a Value, now_ms: i64) -> StoreFuture<'a, ()>;

    /// Forgets record `id` (its handler failed), so a retry runs it.
    fn release<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()>;

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
    fn claim<'a>(
        &'a self,
        id: &'a str,
        now_ms: i64,
        in_progress_until_ms: i64,
    ) -> StoreFuture<'a, Claim> {
        Box::pin(async move {
            let mut items = self.items.lock().expect("not poisoned");
            match items.by_id.get(id) {
                Some(MemoryItem::Completed(result)) => return Ok(Claim::Completed(result.clone())),
                Some(MemoryItem::InProgress { until_ms }) if *until_ms > now_ms => {
                    return Ok(Claim::InProgress);
                }
                _ => {}
            }
            let item = MemoryItem::InProgress {
                until_ms: in_progress_until_ms,
            };
            if items.by_id.insert(id.to_owned(), item).is_none() {
                items.order.push_back(id.to_owned());
                if items.order.len() > Self::CAPACITY
                    && let Some(oldest) = items.order.pop_front()
                {
                    items.by_id.remove(&oldest);
                }
            }
            Ok(Claim::Acquired)
        })
    }

    fn complete<'a>(&'a self, id: &'a str, result: &'a Value, _now_ms: i64) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut items = self.items.lock().expect("not poisoned");
            if let Some(item) = items.by_id.get_mut(id) {
                *item = MemoryItem::Completed(result.clone());
            }
            Ok(())
        })
    }

    fn release<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut items = self.items.lock().expect("not poisoned");
            items.by_id.remove(id);
            items.order.retain(|kept| kept != id);
            Ok(())
        })
    }

    fn is_shared(&self) -> bool {
        false
    }
}

#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoDbStore;

#[cfg(feature = "dynamodb")]
mod dynamodb {
    //! The DynamoDB store, in Powertools' table layout: partition key `id` (S), `expiration`
    //! (N, epoch seconds, the table's TTL attribute), `status` (S), `data` (S, the result as JSON
    //! text), `in_progress_expiration` (N, epoch milliseconds).

    use std::time::Duration;

    use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
    use serde_json::Value;

    use super::{
        Claim, IdempotencyStore, STATUS_COMPLETED, STATUS_IN_PROGRESS, StoreError, StoreFuture,
    };

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

        fn expiration(&self, now_ms: i64) -> AttributeValue {
            AttributeValue::N((now_ms / 1000 + self.ttl.as_secs() as i64).to_string())
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

    impl IdempotencyStore for DynamoDbStore {
        fn claim<'a>(
            &'a self,
            id: &'a str,
            now_ms: i64,
            in_progress_until_ms: i64,
        ) -> StoreFuture<'a, Claim> {
            Box::pin(async move {
                let put = self
                    .client
                    .put_item()
                    .table_name(&self.table)
                    .item("id", AttributeValue::S(id.to_owned()))
                    .item("expiration", self.expiration(now_ms))
                    .item("status", AttributeValue::S(STATUS_IN_PROGRESS.into()))
                    .item(
                        "in_progress_expiration",
                        AttributeValue::N(in_progress_until_ms.to_string()),
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
                        AttributeValue::N((now_ms / 1000).to_string()),
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
                let error = match put {
                    Ok(_) => return Ok(Claim::Acquired),
                    Err(error) => error,
                };
                let Some(PutItemError::ConditionalCheckFailedException(failed)) =
                    error.as_service_error()
                else {
                    return Err(unavailable(error));
                };
                let old = failed.item().cloned().unwrap_or_default();
                let status = old
                    .get("status")
                    .and_then(|s| s.as_s().ok())
                    .map(String::as_str);
                match status {
                    Some(STATUS_COMPLETED) => {
                        let data = old.get("data").and_then(|d| d.as_s().ok());
                        let result = data
                            .and_then(|d| serde_json::from_str(d).ok())
                            .unwrap_or(Value::Null);
                        Ok(Claim::Completed(result))
                    }
                    _ => Ok(Claim::InProgress),
                }
            })
        }

        fn complete<'a>(
            &'a self,
            id: &'a str,
            result: &'a Value,
            now_ms: i64,
        ) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.client
                    .update_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(id.to_owned()))
                    .update_expression("SET #data = :data, #expiry = :expiry, #status = :status")
                    .expression_attribute_names("#data", "data")
                    .expression_attribute_names("#expiry", "expiration")
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(":data", AttributeValue::S(result.to_string()))
                    .expression_attribute_values(":expiry", self.expiration(now_ms))
                    .expression_attribute_values(
                        ":status",
                        AttributeValue::S(STATUS_COMPLETED.into()),
                    )
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(unavailable)
            })
        }

        fn release<'a>(&'a self, id: &'a str) -> StoreFuture<'a, ()> {
            Box::pin(async move {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .key("id", AttributeValue::S(id.to_owned()))
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(unavailable)
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
        assert_eq!(store.claim("a", 1_000, 5_000).await, Ok(Claim::Acquired));
        // Held, not expired: in progress; after its time: claimable again.
        assert_eq!(store.claim("a", 2_000, 6_000).await, Ok(Claim::InProgress));
        assert_eq!(store.claim("a", 5_001, 9_000).await, Ok(Claim::Acquired));
        store.complete("a", &json!({"r": 1}), 5_002).await.unwrap();
        assert_eq!(
            store.claim("a", 6_000, 9_000).await,
            Ok(Claim::Completed(json!({"r": 1})))
        );
        store.release("a").await.unwrap();
        assert_eq!(store.claim("a", 6_000, 9_000).await, Ok(Claim::Acquired));
        assert!(!store.is_shared());
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
