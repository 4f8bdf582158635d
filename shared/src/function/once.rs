//! One admitted record, run once across environments through the idempotency store
//! ([`crate::idempotency`]): claimed first (a completed record answers with its stored result and
//! the handler does not run; one in progress elsewhere fails, transiently), its result stored
//! after, and its claim released whenever the handler does not succeed — an error, a panic, or
//! the run being dropped before it ends — so a redelivery runs it again instead of waiting for
//! the claim to expire.

use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use serde_json::{Value, json};

use super::context::TenantContext;
use super::error::RecordError;
use crate::answer::RecordStatus;
use crate::idempotency::{self, Claim, Completion, Hold, IdempotencyStore};
use crate::{Envelope, TenantId};

/// A processed record: its result (the answer to a single envelope:
/// `{tenantId, id, idempotencyKey, correlationId, source, status, result, duplicate?}`) and
/// whether it was recognised from the store rather than run now.
pub(super) struct Processed {
    pub result: Value,
    pub duplicate: bool,
}

/// What a record's run needs from its environment: where the guard keeps its idempotency items
/// and under which function name, and (tenant-scoped access) the tenant's session.
pub(super) struct Store {
    pub function: String,
    pub items: Arc<dyn IdempotencyStore>,
    #[cfg(feature = "tenant-access")]
    pub access: Option<Arc<super::access::TenantAccess>>,
}

/// Releases a claim when the run it guards is dropped before it ends (the caller cancelled the
/// invocation, or a panic unwound through it): spawned, since a drop cannot wait.
struct ReleaseOnDrop {
    store: Option<Arc<dyn IdempotencyStore>>,
    id: String,
    hold: Hold,
}

impl ReleaseOnDrop {
    /// The run ended: whoever ended it settles the claim.
    fn disarm(&mut self) {
        self.store = None;
    }
}

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        let Some(store) = self.store.take() else {
            return;
        };
        let (id, hold) = (std::mem::take(&mut self.id), self.hold);
        tracing::warn!(
            message = "record's run was dropped before it ended; releasing its claim",
            record_id = id.as_str(),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.release(&id, hold).await;
            });
        }
    }
}

/// The message of a panic's payload.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Runs `handler` for one admitted envelope of `tenant`, once (see the module).
pub(super) async fn process<F, Fut, E>(
    store: &Store,
    tenant: &TenantId,
    request_id: &str,
    deadline_ms: i64,
    envelope: Envelope,
    handler: &F,
) -> Result<Processed, RecordError>
where
    F: Fn(TenantContext, Envelope) -> Fut,
    Fut: Future<Output = Result<Value, E>>,
    E: Display,
{
    let id = idempotency::record_id(&store.function, tenant, &envelope.idempotency_key);
    let now_ms = chrono::Utc::now().timestamp_millis();
    let summary = json!({
        "tenantId": tenant,
        "id": envelope.id,
        "idempotencyKey": envelope.idempotency_key,
        "correlationId": envelope.correlation_id,
        "source": envelope.source,
        "status": RecordStatus::Processed,
    });
    let (record_id, correlation_id) = (envelope.id.clone(), envelope.correlation_id.clone());
    let hold = match store.items.claim(&id, now_ms, deadline_ms).await {
        Err(error) => {
            tracing::warn!(
                message = "idempotency store unavailable; record not processed",
                tenant_id = tenant.as_str(),
                record_id = record_id.as_str(),
                correlation_id = correlation_id.as_str(),
                error = %error,
            );
            return Err(RecordError::Store(error.to_string()));
        }
        Ok(Claim::InProgress) => {
            tracing::warn!(
                message = "record in progress in another environment; not processed",
                tenant_id = tenant.as_str(),
                record_id = record_id.as_str(),
                correlation_id = correlation_id.as_str(),
            );
            return Err(RecordError::InProgress);
        }
        Ok(Claim::Completed(earlier)) => {
            tracing::info!(
                message = "duplicate record recognised; not processed again",
                tenant_id = tenant.as_str(),
                record_id = record_id.as_str(),
                correlation_id = correlation_id.as_str(),
            );
            // A stored result that cannot be read back (another writer's item, a truncated
            // `data`) still answers as this record's duplicate, in the shape of a result.
            let mut result = match earlier {
                Value::Object(_) => earlier,
                other => {
                    let mut result = summary;
                    result["result"] = other;
                    result
                }
            };
            result["status"] = json!(RecordStatus::Processed);
            result["duplicate"] = Value::Bool(true);
            return Ok(Processed {
                result,
                duplicate: true,
            });
        }
        Ok(Claim::Acquired(hold)) => hold,
    };
    let context = TenantContext::new(tenant.clone(), request_id);
    #[cfg(feature = "tenant-access")]
    let context = context.with_access(store.access.clone());
    let mut armed = ReleaseOnDrop {
        store: Some(store.items.clone()),
        id: id.clone(),
        hold,
    };
    // A panic while the handler builds its future, or while it runs.
    let ran = match std::panic::catch_unwind(AssertUnwindSafe(|| handler(context, envelope))) {
        Ok(run) => AssertUnwindSafe(run).catch_unwind().await,
        Err(panic) => Err(panic),
    };
    armed.disarm();
    let error = match ran {
        Ok(Ok(result)) => {
            let mut output = summary;
            output["result"] = result;
            tracing::info!(
                message = "record processed",
                tenant_id = tenant.as_str(),
                record_id = record_id.as_str(),
                correlation_id = correlation_id.as_str(),
            );
            let now_ms = chrono::Utc::now().timestamp_millis();
            match store.items.complete(&id, hold, &output, now_ms).await {
                Ok(Completion::Stored) => {}
                // The effect happened: answering with an error would have it redelivered and run
                // again. Either way it is logged, since it may run once more.
                Ok(Completion::ClaimLost) => tracing::error!(
                    message = "idempotency store: the claim expired while the record ran and \
                               another environment took it over; this run's result is not stored",
                    tenant_id = tenant.as_str(),
                    record_id = record_id.as_str(),
                    correlation_id = correlation_id.as_str(),
                ),
                Err(error) => tracing::error!(
                    message = "idempotency store: result not stored; a redelivery after the \
                               claim expires would run the record again",
                    tenant_id = tenant.as_str(),
                    record_id = record_id.as_str(),
                    correlation_id = correlation_id.as_str(),
                    error = %error,
                ),
            }
            return Ok(Processed {
                result: output,
                duplicate: false,
            });
        }
        Ok(Err(error)) => error.to_string(),
        Err(panic) => format!("the handler panicked: {}", panic_message(panic.as_ref())),
    };
    tracing::warn!(
        message = "tenant handler failed",
        tenant_id = tenant.as_str(),
        record_id = record_id.as_str(),
        correlation_id = correlation_id.as_str(),
        error = error.as_str(),
    );
    if let Err(release) = store.items.release(&id, hold).await {
        tracing::warn!(
            message = "idempotency store: claim not released; a retry waits for it to expire",
            tenant_id = tenant.as_str(),
            record_id = record_id.as_str(),
            error = %release,
        );
    }
    Err(RecordError::Handler(error))
}
