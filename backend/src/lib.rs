//! The tenant-isolated backend's guard and handler logic, callable without the Lambda runtime.
//!
//! The tenant comes from the invocation context (`Lambda-Runtime-Aws-Tenant-Id`, exposed as
//! `Context::tenant_id`), never from the payload. [`TenantPin`] binds the execution environment to
//! the first tenant it serves; any other tenant afterwards makes it fail closed. An envelope whose
//! `tenantId` differs from the context's tenant is refused and logged as a security event, and
//! nothing of it is processed.

use std::sync::OnceLock;

use serde_json::{Value, json};
use shared::{Envelope, TenantId};

/// Why an invocation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BackendError {
    /// The invocation carried no tenant id: the function is not tenant-isolated, or was invoked
    /// without one.
    #[error("the invocation has no tenant id")]
    NoTenant,
    /// The context's tenant id is not a valid tenant id.
    #[error("the invocation's tenant id is invalid: {0}")]
    InvalidTenant(String),
    /// This environment already belongs to another tenant.
    #[error("this execution environment belongs to another tenant")]
    EnvironmentPinned,
    /// The envelope names another tenant than the invocation.
    #[error("the envelope's tenant does not match the invocation's tenant")]
    TenantMismatch,
    /// The payload is not an envelope.
    #[error("the payload is not a valid envelope: {0}")]
    BadEnvelope(String),
}

/// Binds an execution environment to the first tenant it serves, for life.
#[derive(Debug, Default)]
pub struct TenantPin(OnceLock<TenantId>);

impl TenantPin {
    /// Pins to `tenant` if unpinned; fails if pinned to another tenant.
    pub fn admit(&self, tenant: &TenantId) -> Result<(), BackendError> {
        let pinned = self.0.get_or_init(|| tenant.clone());
        if pinned == tenant {
            Ok(())
        } else {
            Err(BackendError::EnvironmentPinned)
        }
    }
}

/// Handles one invocation: checks the tenant, then processes the envelope and returns the result
/// that async destinations carry back to the platform.
pub fn handle(
    pin: &TenantPin,
    context_tenant: Option<&str>,
    event: &str,
) -> Result<Value, BackendError> {
    let tenant = context_tenant.ok_or(BackendError::NoTenant)?;
    let tenant = TenantId::parse(tenant).map_err(|e| BackendError::InvalidTenant(e.to_string()))?;
    if let Err(error) = pin.admit(&tenant) {
        tracing::error!(
            message = "security: environment pinned to another tenant refused an invocation",
            security_event = "environment-tenant-mismatch",
            tenant_id = tenant.as_str(),
        );
        return Err(error);
    }
    let envelope = Envelope::from_payload(event.as_bytes())
        .map_err(|e| BackendError::BadEnvelope(e.to_string()))?;
    if envelope.tenant_id != tenant {
        tracing::error!(
            message = "security: envelope for another tenant refused",
            security_event = "envelope-tenant-mismatch",
            tenant_id = tenant.as_str(),
            envelope_tenant_id = %envelope.tenant_id.as_str().escape_debug(),
            record_id = envelope.id.as_str(),
        );
        return Err(BackendError::TenantMismatch);
    }
    tracing::info!(
        message = "record processed",
        tenant_id = tenant.as_str(),
        source = envelope.source.as_str(),
        record_id = envelope.id.as_str(),
        correlation_id = envelope.correlation_id.as_str(),
    );
    Ok(json!({
        "status": "processed",
        "tenantId": tenant,
        "id": envelope.id,
        "idempotencyKey": envelope.idempotency_key,
        "correlationId": envelope.correlation_id,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope(tenant: &str) -> &'static str {
        let json = json!({
            "version": 1, "tenantId": tenant, "source": "sqs", "eventSourceArn": "arn:q",
            "id": "m1", "idempotencyKey": "arn:q#m1", "arrivedAt": "2024-01-01T00:00:00Z",
            "correlationId": "c1", "payload": {"x": 1}
        });
        Box::leak(json.to_string().into_boxed_str())
    }

    #[test]
    fn processes_its_own_tenant() {
        let pin = TenantPin::default();
        let result = handle(&pin, Some("acme"), envelope("acme")).unwrap();
        assert_eq!(result["tenantId"], "acme");
        assert_eq!(result["idempotencyKey"], "arn:q#m1");
    }

    #[test]
    fn refuses_without_tenant() {
        let pin = TenantPin::default();
        assert_eq!(
            handle(&pin, None, envelope("acme")),
            Err(BackendError::NoTenant)
        );
    }

    #[test]
    fn refuses_an_envelope_for_another_tenant() {
        let pin = TenantPin::default();
        assert_eq!(
            handle(&pin, Some("acme"), envelope("globex")),
            Err(BackendError::TenantMismatch)
        );
        assert_eq!(
            handle(&pin, Some("acme"), envelope("acme ")),
            Err(BackendError::TenantMismatch)
        );
    }

    #[test]
    fn environment_is_pinned_to_its_first_tenant() {
        let pin = TenantPin::default();
        handle(&pin, Some("acme"), envelope("acme")).unwrap();
        assert_eq!(
            handle(&pin, Some("globex"), envelope("globex")),
            Err(BackendError::EnvironmentPinned)
        );
        // Still serves its own tenant.
        assert!(handle(&pin, Some("acme"), envelope("acme")).is_ok());
    }
}
