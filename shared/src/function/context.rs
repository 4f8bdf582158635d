//! What a tenant handler learns about its invocation.

use crate::TenantId;

/// What a tenant handler learns about its invocation.
#[derive(Debug, Clone)]
pub struct TenantContext {
    /// The tenant this environment serves (from the invocation context).
    pub tenant_id: TenantId,
    /// The Lambda request id.
    pub request_id: String,
}
