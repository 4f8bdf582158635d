//! The environment's guard ([`EnvironmentGuard`]): which tenant an invocation is for (from the
//! context, never from the payload), the environment pinned to its first tenant and failing
//! closed on any other, and envelopes (or any record of a batch) naming another tenant refused
//! as security events before anything runs. What it admits runs through [`super::once`] (one
//! envelope) or [`super::batch`].

use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use serde_json::Value;

use super::batch;
use super::context::TenantContext;
use super::error::{GuardError, InvokeError};
use super::once::{self, Store};
use crate::idempotency::{IdempotencyStore, MemoryStore};
use crate::{Delivery, Envelope, TenantId};

/// How long an invocation may run when its caller gives no deadline (Lambda's maximum).
const LONGEST_INVOCATION_MS: i64 = 900_000;

/// Per-environment state of the guard: the pinned tenant, the fail-closed flag, and the
/// idempotency store with the function's name (part of every record's store id).
pub struct EnvironmentGuard {
    pinned: OnceLock<TenantId>,
    failed_closed: AtomicBool,
    store: Store,
}

impl Default for EnvironmentGuard {
    /// A guard of function `function` remembering records in the environment's memory.
    fn default() -> Self {
        Self::with_store("function", Box::new(MemoryStore::default()))
    }
}

impl std::fmt::Debug for EnvironmentGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnvironmentGuard")
            .field("pinned", &self.pinned.get())
            .field("function", &self.store.function)
            .field("shared_store", &self.store.items.is_shared())
            .finish()
    }
}

impl EnvironmentGuard {
    /// A guard of function `function` keeping its idempotency items in `store`.
    pub fn with_store(function: impl Into<String>, store: Box<dyn IdempotencyStore>) -> Self {
        Self {
            pinned: OnceLock::new(),
            failed_closed: AtomicBool::new(false),
            store: Store {
                function: function.into(),
                items: Arc::from(store),
                #[cfg(feature = "tenant-access")]
                access: None,
            },
        }
    }

    /// The guard with tenant-scoped access: every run gets the tenant's own session
    /// ([`super::access`]), and a tenant id holding `/` is refused (`Tenant.Invalid`), since a
    /// prefix grant `…/${aws:PrincipalTag/tenant_id}/*` for tenant `acme` would also cover
    /// tenant `acme/x`'s objects and parameters.
    #[cfg(feature = "tenant-access")]
    pub fn with_access(mut self, access: Arc<super::access::TenantAccess>) -> Self {
        self.store.access = Some(access);
        self
    }

    /// Whether runs get a tenant session of their own.
    fn scoped(&self) -> bool {
        #[cfg(feature = "tenant-access")]
        return self.store.access.is_some();
        #[cfg(not(feature = "tenant-access"))]
        return false;
    }

    /// The tenant this environment is pinned to, if any.
    pub fn tenant(&self) -> Option<&TenantId> {
        self.pinned.get()
    }

    /// Whether this environment failed closed (it will serve nobody again).
    pub fn has_failed_closed(&self) -> bool {
        self.failed_closed.load(Ordering::Acquire)
    }

    /// Admits an invocation for `context_tenant`, pinning the environment on first use.
    pub fn admit(&self, context_tenant: Option<&str>) -> Result<TenantId, GuardError> {
        if self.failed_closed.load(Ordering::Acquire) {
            return Err(GuardError::FailedClosed);
        }
        let tenant = context_tenant.ok_or(GuardError::NoTenant)?;
        let tenant =
            TenantId::parse(tenant).map_err(|e| GuardError::InvalidTenant(e.to_string()))?;
        if self.scoped() && tenant.as_str().contains('/') {
            return Err(GuardError::InvalidTenant(
                "a tenant id holding '/' cannot have tenant-scoped access: a prefix grant for \
                 another tenant would cover it"
                    .into(),
            ));
        }
        let pinned = self.pinned.get_or_init(|| tenant.clone());
        if *pinned != tenant {
            self.failed_closed.store(true, Ordering::Release);
            tracing::error!(
                message = "security: execution environment offered a second tenant; failing closed",
                security_event = "environment-tenant-mismatch",
                tenant_id = pinned.as_str(),
                offered_tenant_id = tenant.as_str(),
            );
            return Err(GuardError::FailedClosed);
        }
        Ok(tenant)
    }

    /// Runs one invocation through the guard and `handler`. The payload is one envelope or an
    /// envelope batch ([`Delivery::read`]: version 1, every record with an `id` and an
    /// `idempotencyKey`); `handler` runs once per record, in order, and a batch is refused
    /// whole, before anything runs, if any of its records names another tenant.
    ///
    /// `Ok` carries the result for the async destination (or the `request-response` caller):
    /// the record's result, or for a batch `{tenantId, records: [{id, status, error?,
    /// duplicate?}…], processed, duplicates, failed, skipped}` (see [`super::batch`]). A handler
    /// error (or panic) is returned as `Err` (a function error, so Lambda retries the async
    /// invocation).
    pub async fn invoke<F, Fut, E>(
        &self,
        context_tenant: Option<&str>,
        request_id: &str,
        payload: &str,
        handler: F,
    ) -> Result<Value, InvokeError>
    where
        F: Fn(TenantContext, Envelope) -> Fut,
        Fut: Future<Output = Result<Value, E>>,
        E: Display,
    {
        let deadline_ms = chrono::Utc::now().timestamp_millis() + LONGEST_INVOCATION_MS;
        self.invoke_until(context_tenant, request_id, deadline_ms, payload, handler)
            .await
    }

    /// [`EnvironmentGuard::invoke`] for an invocation due at `deadline_ms` (epoch milliseconds):
    /// a record claimed in the idempotency store is held for another environment until then.
    pub async fn invoke_until<F, Fut, E>(
        &self,
        context_tenant: Option<&str>,
        request_id: &str,
        deadline_ms: i64,
        payload: &str,
        handler: F,
    ) -> Result<Value, InvokeError>
    where
        F: Fn(TenantContext, Envelope) -> Fut,
        Fut: Future<Output = Result<Value, E>>,
        E: Display,
    {
        let tenant = self.admit(context_tenant)?;
        let delivery = Delivery::read(payload.as_bytes()).map_err(GuardError::BadEnvelope)?;
        match delivery {
            Delivery::One(envelope) => {
                check_tenant(
                    &tenant,
                    &envelope.tenant_id,
                    &envelope.id,
                    &envelope.correlation_id,
                )?;
                self.session(&tenant, deadline_ms).await?;
                once::process(
                    &self.store,
                    &tenant,
                    request_id,
                    deadline_ms,
                    envelope,
                    &handler,
                )
                .await
                .map(|processed| processed.result)
                .map_err(InvokeError::from)
            }
            Delivery::Batch(batch) => {
                check_tenant(&tenant, &batch.tenant_id, "-", "-")?;
                for envelope in &batch.records {
                    check_tenant(
                        &tenant,
                        &envelope.tenant_id,
                        &envelope.id,
                        &envelope.correlation_id,
                    )?;
                }
                self.session(&tenant, deadline_ms).await?;
                batch::run(
                    &self.store,
                    &tenant,
                    request_id,
                    deadline_ms,
                    batch,
                    &handler,
                )
                .await
            }
        }
    }
}

impl EnvironmentGuard {
    /// With tenant-scoped access, the tenant's session before anything runs (the idempotency
    /// store's claim included), once the refusals, which need none, are behind.
    async fn session(&self, tenant: &TenantId, deadline_ms: i64) -> Result<(), InvokeError> {
        #[cfg(feature = "tenant-access")]
        if let Some(access) = &self.store.access {
            access.ensure(tenant, deadline_ms).await.map_err(|e| {
                tracing::warn!(
                    message = "no tenant session; nothing run",
                    tenant_id = tenant.as_str(),
                    error = %e,
                );
                InvokeError::CredentialsUnavailable(e.to_string())
            })?;
        }
        #[cfg(not(feature = "tenant-access"))]
        let _ = (tenant, deadline_ms);
        Ok(())
    }
}

/// Refuses, as a security event, an envelope (or batch) naming another tenant than the context.
fn check_tenant(
    tenant: &TenantId,
    named: &TenantId,
    record_id: &str,
    correlation_id: &str,
) -> Result<(), GuardError> {
    if named == tenant {
        return Ok(());
    }
    tracing::error!(
        message = "security: envelope for another tenant refused",
        security_event = "envelope-tenant-mismatch",
        tenant_id = tenant.as_str(),
        envelope_tenant_id = %named.as_str().escape_debug(),
        record_id = record_id,
        correlation_id = correlation_id,
    );
    Err(GuardError::TenantMismatch)
}
