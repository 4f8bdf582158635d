//! What a tenant handler learns about its invocation: its tenant, its request id, and — with
//! tenant-scoped access (`BACKEND_TENANT_ROLE_ARN`) — the AWS SDK configuration of the tenant's
//! own session and its secrets by reference ([`super::access`]).

#[cfg(feature = "tenant-access")]
use std::sync::Arc;

#[cfg(feature = "tenant-access")]
use super::access::{Secret, SecretError, TenantAccess};
use crate::TenantId;

/// What a tenant handler learns about its invocation.
#[derive(Debug, Clone)]
pub struct TenantContext {
    /// The tenant this environment serves (from the invocation context).
    pub tenant_id: TenantId,
    /// The Lambda request id.
    pub request_id: String,
    /// The tenant's session, with tenant-scoped access.
    #[cfg(feature = "tenant-access")]
    access: Option<Arc<TenantAccess>>,
}

impl TenantContext {
    /// A context for `tenant_id`'s invocation `request_id`, without tenant-scoped access.
    pub fn new(tenant_id: TenantId, request_id: impl Into<String>) -> Self {
        Self {
            tenant_id,
            request_id: request_id.into(),
            #[cfg(feature = "tenant-access")]
            access: None,
        }
    }

    /// The same context, with the tenant's session.
    #[cfg(feature = "tenant-access")]
    pub(crate) fn with_access(mut self, access: Option<Arc<TenantAccess>>) -> Self {
        self.access = access;
        self
    }
}

#[cfg(feature = "tenant-access")]
impl TenantContext {
    /// The AWS SDK configuration to build clients from: the tenant's own session of the tenant
    /// access role, never the execution role's credentials. `None` without tenant-scoped access
    /// (`BACKEND_TENANT_ROLE_ARN` unset).
    pub fn aws(&self) -> Option<&aws_config::SdkConfig> {
        self.access.as_deref().map(TenantAccess::config)
    }

    /// Resolves a secret by reference with the tenant's session: `ssm:/tenants/<tenant>/<name>`
    /// or `secretsmanager:<secret-id>[:<json-key>]` ([`super::access`]).
    pub async fn secret(&self, reference: &str) -> Result<Secret, SecretError> {
        match &self.access {
            Some(access) => access.secret(&self.tenant_id, reference).await,
            None => Err(SecretError::NoAccess),
        }
    }
}
