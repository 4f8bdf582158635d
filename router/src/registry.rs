//! The tenant registry: whether a proven tenant may still send. A DynamoDB table
//! (`ROUTER_TENANT_REGISTRY_TABLE`, partition key `tenantId` S, attribute `status` S, `active`
//! or `suspended`) is read with `BatchGetItem`, eventually consistent; each router environment
//! remembers a tenant's standing for `ROUTER_TENANT_REGISTRY_TTL_SECONDS` in a bounded cache
//! (unknown tenants too, so a flood of them costs one read each per TTL).
//!
//! Lookups that arrive together are sent together: the first lookup that misses the cache opens
//! a round, lets the other records that are running at that moment add their tenants, then reads
//! them all (at most 100 keys per `BatchGetItem`, the API's limit), retrying throttling and
//! unprocessed keys with the router's backoff within the invocation's deadline. A tenant the
//! registry could not answer for is [`Lookup::Unavailable`]: never assumed active.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use shared::TenantId;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::config::RegistrySettings;
use crate::retry::{Deadline, RetryPolicy};

/// Most keys in one `BatchGetItem` request.
pub const BATCH_GET_LIMIT: usize = 100;

/// Most times the first lookup of a round yields for others to join it.
const MAX_ROUND_YIELDS: usize = 32;

/// What the registry says of a tenant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Standing {
    /// `status` = `active`.
    Active,
    /// `status` = `suspended`.
    Suspended,
    /// No item for the tenant.
    Unknown,
    /// An item whose `status` is missing or neither value: treated as not allowed.
    Invalid(String),
}

/// The answer to one lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// The registry answered.
    Known(Standing),
    /// It could not be read in time (the reason); the record must be kept by its source.
    Unavailable(String),
}

/// One `BatchGetItem` answer: the items found, by tenant, and the keys left unprocessed.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Tenants found, with their standing (never [`Standing::Unknown`]).
    pub found: Vec<(TenantId, Standing)>,
    /// Keys DynamoDB did not process (throttling, response size); asked again.
    pub unprocessed: Vec<TenantId>,
}

/// A failed read of the table.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Throttling, a 5xx or a network error: worth another try.
    pub retryable: bool,
    /// What happened, for the record's outcome.
    pub message: String,
}

/// Reads the registry table: `BatchGetItem` in production, a stand-in in unit tests.
pub trait Directory: Send + Sync {
    /// Reads `tenants` (at most [`BATCH_GET_LIMIT`]) from `table`.
    fn batch_get<'a>(
        &'a self,
        table: &'a str,
        tenants: &'a [TenantId],
    ) -> BoxFuture<'a, Result<Fetched, Fault>>;
}

/// The registry with its cache and the round being collected.
pub struct Registry {
    settings: RegistrySettings,
    directory: Box<dyn Directory>,
    cache: quick_cache::sync::Cache<TenantId, (Standing, Instant)>,
    open: Mutex<Option<Round>>,
}

type Answers = Arc<HashMap<TenantId, Lookup>>;

/// Tenants waiting for the same read.
struct Round {
    tenants: Vec<TenantId>,
    answers: watch::Receiver<Option<Answers>>,
}

impl Registry {
    /// A registry reading through `directory`.
    pub fn new(settings: RegistrySettings, directory: Box<dyn Directory>) -> Self {
        let cache = quick_cache::sync::Cache::new(settings.cache_size);
        Self {
            settings,
            directory,
            cache,
            open: Mutex::new(None),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RegistrySettings {
        &self.settings
    }

    /// `tenant`'s standing: from the cache while fresh, else read with the other tenants
    /// looked up at the same moment.
    pub async fn lookup(
        &self,
        tenant: &TenantId,
        retry: RetryPolicy,
        deadline: Deadline,
    ) -> Lookup {
        if let Some((standing, at)) = self.cache.get(tenant)
            && at.elapsed() < self.settings.ttl
        {
            return Lookup::Known(standing);
        }
        let (mut answers, leader) = {
            let mut open = self.open.lock().expect("registry lock");
            match open.as_mut() {
                Some(round) => {
                    if !round.tenants.contains(tenant) {
                        round.tenants.push(tenant.clone());
                    }
                    (round.answers.clone(), None)
                }
                None => {
                    let (send, answers) = watch::channel(None);
                    *open = Some(Round {
                        tenants: vec![tenant.clone()],
                        answers: answers.clone(),
                    });
                    (answers, Some(send))
                }
            }
        };
        if let Some(send) = leader {
            // The records running now reach their lookups while this task yields: the round
            // closes once a yield brings nobody new (or after a bounded number of yields).
            for _ in 0..MAX_ROUND_YIELDS {
                let joined = self.round_size();
                tokio::task::yield_now().await;
                if self.round_size() == joined {
                    break;
                }
            }
            let tenants = self
                .open
                .lock()
                .expect("registry lock")
                .take()
                .expect("the leader closes its round")
                .tenants;
            let read = self.read(tenants, retry, deadline).await;
            send.send_replace(Some(Arc::new(read)));
        }
        let answer = match answers.wait_for(Option::is_some).await {
            Ok(answers) => answers.as_ref().and_then(|a| a.get(tenant).cloned()),
            Err(_) => None,
        };
        answer.unwrap_or_else(|| {
            Lookup::Unavailable("the registry lookup was abandoned (internal error)".into())
        })
    }

    fn round_size(&self) -> usize {
        let open = self.open.lock().expect("registry lock");
        open.as_ref().map_or(0, |round| round.tenants.len())
    }

    /// Reads `tenants` in requests of at most [`BATCH_GET_LIMIT`] keys, all at once, and caches
    /// what the registry answered.
    async fn read(
        &self,
        tenants: Vec<TenantId>,
        retry: RetryPolicy,
        deadline: Deadline,
    ) -> HashMap<TenantId, Lookup> {
        let reads = tenants
            .chunks(BATCH_GET_LIMIT)
            .map(|chunk| self.read_chunk(chunk, retry, deadline));
        let mut answers = HashMap::with_capacity(tenants.len());
        for part in futures::future::join_all(reads).await {
            answers.extend(part);
        }
        let now = Instant::now();
        for (tenant, answer) in &answers {
            if let Lookup::Known(standing) = answer {
                self.cache.insert(tenant.clone(), (standing.clone(), now));
            }
        }
        answers
    }

    async fn read_chunk(
        &self,
        chunk: &[TenantId],
        retry: RetryPolicy,
        deadline: Deadline,
    ) -> HashMap<TenantId, Lookup> {
        let mut answers = HashMap::with_capacity(chunk.len());
        let mut left: Vec<TenantId> = chunk.to_vec();
        let mut attempt = 0;
        let why = loop {
            attempt += 1;
            let remaining = deadline.remaining();
            if remaining.is_zero() {
                break "the invocation deadline is too close".to_owned();
            }
            let fault = match tokio::time::timeout(
                remaining,
                self.directory.batch_get(&self.settings.table, &left),
            )
            .await
            {
                Err(_) => break "the invocation deadline passed while reading it".to_owned(),
                Ok(Ok(fetched)) => {
                    for (tenant, standing) in fetched.found {
                        answers.insert(tenant, Lookup::Known(standing));
                    }
                    let asked = std::mem::take(&mut left);
                    left = fetched.unprocessed;
                    for tenant in asked {
                        if !left.contains(&tenant) && !answers.contains_key(&tenant) {
                            answers.insert(tenant, Lookup::Known(Standing::Unknown));
                        }
                    }
                    if left.is_empty() {
                        return answers;
                    }
                    format!("{} keys left unprocessed", left.len())
                }
                Ok(Err(fault)) if !fault.retryable => break fault.message,
                Ok(Err(fault)) => fault.message,
            };
            let delay = retry.delay(attempt, None);
            if attempt >= retry.max_attempts || delay >= deadline.remaining() {
                break format!("{fault} (after {attempt} attempts)");
            }
            tokio::time::sleep(delay).await;
        };
        for tenant in left {
            answers.insert(
                tenant,
                Lookup::Unavailable(format!("the tenant registry could not be read: {why}")),
            );
        }
        answers
    }
}

/// [`Directory`] over DynamoDB's `BatchGetItem` (eventually consistent, only `tenantId` and
/// `status` projected).
pub struct DynamoDbDirectory(pub aws_sdk_dynamodb::Client);

impl Directory for DynamoDbDirectory {
    fn batch_get<'a>(
        &'a self,
        table: &'a str,
        tenants: &'a [TenantId],
    ) -> BoxFuture<'a, Result<Fetched, Fault>> {
        use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
        Box::pin(async move {
            let keys = tenants
                .iter()
                .map(|t| HashMap::from([(KEY.to_owned(), AttributeValue::S(t.to_string()))]))
                .collect();
            let request = KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .projection_expression("#k, #s")
                .expression_attribute_names("#k", KEY)
                .expression_attribute_names("#s", STATUS)
                .build()
                .map_err(|e| Fault {
                    retryable: false,
                    message: e.to_string(),
                })?;
            let output = self
                .0
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(|error| fault(&error))?;
            let mut fetched = Fetched::default();
            for item in output.responses.unwrap_or_default().into_values().flatten() {
                let Some(AttributeValue::S(tenant)) = item.get(KEY) else {
                    continue;
                };
                let Ok(tenant) = TenantId::parse(tenant) else {
                    continue;
                };
                let standing = match item.get(STATUS) {
                    Some(AttributeValue::S(s)) if s == "active" => Standing::Active,
                    Some(AttributeValue::S(s)) if s == "suspended" => Standing::Suspended,
                    Some(AttributeValue::S(s)) => Standing::Invalid(format!("status {s:?}")),
                    Some(_) => Standing::Invalid("status is not a string".into()),
                    None => Standing::Invalid("no status attribute".into()),
                };
                fetched.found.push((tenant, standing));
            }
            for keys in output.unprocessed_keys.unwrap_or_default().into_values() {
                for key in keys.keys {
                    if let Some(AttributeValue::S(tenant)) = key.get(KEY)
                        && let Ok(tenant) = TenantId::parse(tenant)
                    {
                        fetched.unprocessed.push(tenant);
                    }
                }
            }
            Ok(fetched)
        })
    }
}

/// The registry table's partition key.
pub const KEY: &str = "tenantId";
/// The attribute holding a tenant's standing.
pub const STATUS: &str = "status";

/// Classifies a failed `BatchGetItem`: throttling, server errors and transport problems are
/// retried; anything else (a missing table, access denied, a bad request) is not.
fn fault<E, R>(error: &aws_sdk_dynamodb::error::SdkError<E, R>) -> Fault
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
    let code = aws_sdk_dynamodb::error::ProvideErrorMetadata::code(error).unwrap_or_default();
    let retryable = match error {
        SdkError::ServiceError(_) => matches!(
            code,
            "ProvisionedThroughputExceededException"
                | "RequestLimitExceeded"
                | "ThrottlingException"
                | "InternalServerError"
                | "ServiceUnavailable"
        ),
        SdkError::ResponseError(_) => true,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => true,
        _ => false,
    };
    let message = match aws_sdk_dynamodb::error::ProvideErrorMetadata::message(error) {
        Some(message) if !code.is_empty() => format!("{code}: {message}"),
        _ if !code.is_empty() => code.to_owned(),
        _ => aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
    };
    Fault { retryable, message }
}

/// A registry for tests: a fixed table, counting requests and keys, failing on demand.
#[cfg(test)]
pub(crate) mod fake {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[derive(Default)]
    pub struct FakeDirectory {
        pub items: Mutex<HashMap<String, Standing>>,
        pub requests: AtomicUsize,
        pub keys: AtomicUsize,
        /// Faults answered, first to last, before the table is read.
        pub faults: Mutex<Vec<Fault>>,
        /// Keys answered unprocessed once each.
        pub unprocess_once: Mutex<Vec<String>>,
    }

    impl Directory for Arc<FakeDirectory> {
        fn batch_get<'a>(
            &'a self,
            _: &'a str,
            tenants: &'a [TenantId],
        ) -> BoxFuture<'a, Result<Fetched, Fault>> {
            Box::pin(async move {
                assert!(tenants.len() <= BATCH_GET_LIMIT);
                self.requests.fetch_add(1, Ordering::SeqCst);
                self.keys.fetch_add(tenants.len(), Ordering::SeqCst);
                let fault = {
                    let mut faults = self.faults.lock().unwrap();
                    (!faults.is_empty()).then(|| faults.remove(0))
                };
                if let Some(fault) = fault {
                    return Err(fault);
                }
                let items = self.items.lock().unwrap();
                let mut unprocess = self.unprocess_once.lock().unwrap();
                let mut fetched = Fetched::default();
                for tenant in tenants {
                    if let Some(at) = unprocess.iter().position(|t| t == tenant.as_str()) {
                        unprocess.remove(at);
                        fetched.unprocessed.push(tenant.clone());
                    } else if let Some(standing) = items.get(tenant.as_str()) {
                        fetched.found.push((tenant.clone(), standing.clone()));
                    }
                }
                Ok(fetched)
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;
    use std::time::Duration;

    use super::fake::FakeDirectory;
    use super::*;
    use crate::config::Suspended;

    const RETRY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(2),
    };

    fn registry(ttl: Duration) -> (Registry, Arc<FakeDirectory>) {
        let directory = Arc::new(FakeDirectory::default());
        directory.items.lock().unwrap().extend([
            ("acme".to_owned(), Standing::Active),
            ("globex".to_owned(), Standing::Suspended),
            (
                "odd".to_owned(),
                Standing::Invalid("status \"paused\"".into()),
            ),
        ]);
        let settings = RegistrySettings {
            table: "tenants".into(),
            ttl,
            cache_size: 1000,
            suspended: Suspended::Reject,
        };
        (
            Registry::new(settings, Box::new(directory.clone())),
            directory,
        )
    }

    fn tenant(name: &str) -> TenantId {
        TenantId::parse(name).unwrap()
    }

    fn deadline() -> Deadline {
        Deadline::after(Duration::from_secs(5), Duration::ZERO)
    }

    #[tokio::test]
    async fn standings_come_from_the_table() {
        let (registry, _) = registry(Duration::from_secs(60));
        let look = |name: &'static str| registry.lookup_owned(name);
        assert_eq!(look("acme").await, Lookup::Known(Standing::Active));
        assert_eq!(look("globex").await, Lookup::Known(Standing::Suspended));
        assert_eq!(look("initech").await, Lookup::Known(Standing::Unknown));
        assert_eq!(
            look("odd").await,
            Lookup::Known(Standing::Invalid("status \"paused\"".into()))
        );
    }

    impl Registry {
        async fn lookup_owned(&self, name: &str) -> Lookup {
            self.lookup(&tenant(name), RETRY, deadline()).await
        }
    }

    #[tokio::test]
    async fn lookups_made_together_share_one_request_of_at_most_100_keys() {
        let (registry, directory) = registry(Duration::from_secs(60));
        let names: Vec<String> = (0..250).map(|n| format!("t{n}")).collect();
        let answers =
            futures::future::join_all(names.iter().map(|n| registry.lookup_owned(n))).await;
        assert!(
            answers
                .iter()
                .all(|a| *a == Lookup::Known(Standing::Unknown))
        );
        assert_eq!(directory.requests.load(Ordering::SeqCst), 3);
        assert_eq!(directory.keys.load(Ordering::SeqCst), 250);
        // Cached now, the unknown ones too.
        registry.lookup_owned("t7").await;
        assert_eq!(directory.requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_standing_is_believed_for_the_ttl_only() {
        let (registry, directory) = registry(Duration::from_millis(50));
        assert_eq!(
            registry.lookup_owned("acme").await,
            Lookup::Known(Standing::Active)
        );
        directory
            .items
            .lock()
            .unwrap()
            .insert("acme".into(), Standing::Suspended);
        assert_eq!(
            registry.lookup_owned("acme").await,
            Lookup::Known(Standing::Active),
            "within the TTL"
        );
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(
            registry.lookup_owned("acme").await,
            Lookup::Known(Standing::Suspended)
        );
        assert_eq!(directory.requests.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn throttling_and_unprocessed_keys_are_retried() {
        let (registry, directory) = registry(Duration::from_secs(60));
        directory.faults.lock().unwrap().push(Fault {
            retryable: true,
            message: "ProvisionedThroughputExceededException".into(),
        });
        directory.unprocess_once.lock().unwrap().push("acme".into());
        assert_eq!(
            registry.lookup_owned("acme").await,
            Lookup::Known(Standing::Active)
        );
        assert_eq!(directory.requests.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_unreadable_registry_is_unavailable_and_never_cached() {
        let (registry, directory) = registry(Duration::from_secs(60));
        directory.faults.lock().unwrap().push(Fault {
            retryable: false,
            message: "ResourceNotFoundException: no such table".into(),
        });
        let Lookup::Unavailable(why) = registry.lookup_owned("acme").await else {
            panic!("fails closed")
        };
        assert!(why.contains("ResourceNotFoundException"), "{why}");
        assert_eq!(directory.requests.load(Ordering::SeqCst), 1, "not retried");
        // Retryable faults until the attempts run out.
        directory.faults.lock().unwrap().extend(std::iter::repeat_n(
            Fault {
                retryable: true,
                message: "ThrottlingException".into(),
            },
            3,
        ));
        let Lookup::Unavailable(why) = registry.lookup_owned("acme").await else {
            panic!("fails closed")
        };
        assert!(why.contains("after 3 attempts"), "{why}");
        assert_eq!(
            registry.lookup_owned("acme").await,
            Lookup::Known(Standing::Active),
            "an unavailable answer was not cached"
        );
    }

    #[tokio::test]
    async fn a_closed_deadline_reads_nothing() {
        let (registry, directory) = registry(Duration::from_secs(60));
        let closed = Deadline::after(Duration::ZERO, Duration::ZERO);
        let Lookup::Unavailable(why) = registry.lookup(&tenant("acme"), RETRY, closed).await else {
            panic!("fails closed")
        };
        assert!(why.contains("deadline"), "{why}");
        assert_eq!(directory.requests.load(Ordering::SeqCst), 0);
    }
}
