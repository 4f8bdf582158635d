//! Proving a record's tenant before anything is sent for it: the maximum record age, then a
//! signed JWT whose tenant claim equals the record's tenant (`jwt` sources) or the allow-list
//! (`trusted` sources), then — with a tenant registry — that the proven tenant may still send;
//! and wrapping the proven record into its Invoke payload, which is never larger than the
//! invocation type's payload limit.

use std::collections::HashSet;
use std::time::Duration;

use shared::TenantId;
use shared::token::TokenVerifier;

use crate::config::{InvocationType, Suspended, Validation};
use crate::invocation::InvocationInfo;
use crate::outcome::{Outcome, Rejection, Verdict};
use crate::record::Decoded;
use crate::registry::{Lookup, Registry, Standing};
use crate::retry::RetryPolicy;

/// Reason: the registry has no item for the proven tenant (or one that is neither `active` nor
/// `suspended`).
pub const TENANT_UNKNOWN: &str = "tenant-unknown";
/// Reason: the registry says the tenant is suspended.
pub const TENANT_SUSPENDED: &str = "tenant-suspended";
/// Reason: the registry could not be read in time; the source keeps the record.
pub const REGISTRY_UNAVAILABLE: &str = "registry-unavailable";

/// What proves a record's tenant: the token verifier for `jwt` sources, the allow-list for
/// `trusted` ones. Which applies to a source is `Config::validation`.
pub struct Identity {
    /// Present when some source uses `jwt`.
    pub verifier: Option<TokenVerifier>,
    /// `ROUTER_TRUSTED_TENANTS`.
    pub trusted_tenants: Option<HashSet<TenantId>>,
    /// `ROUTER_TENANT_REGISTRY_TABLE`: who may still send.
    pub registry: Option<Registry>,
}

impl Identity {
    /// Proves `decoded`'s tenant under `validation`; records older than `max_age` at processing
    /// time are rejected first. A JWKS refresh never outlives the invocation's deadline.
    pub async fn prove(
        &self,
        decoded: &Decoded,
        validation: Validation,
        max_age: Option<Duration>,
        info: &InvocationInfo,
    ) -> Result<(), Verdict> {
        if let Some(max_age) = max_age {
            let age_ms = info.now_ms.saturating_sub(decoded.arrived_at_ms);
            if age_ms > max_age.as_millis() as i64 {
                return Err(Verdict::Reject(Rejection::new(
                    "record-too-old",
                    format!(
                        "the record is {age_ms} ms old, the limit is {} s",
                        max_age.as_secs()
                    ),
                )));
            }
        }
        match validation {
            Validation::Jwt => {
                let Some(verifier) = &self.verifier else {
                    unreachable!("the configuration requires JWT settings when a source uses jwt")
                };
                let Some(token) = decoded.token.as_deref() else {
                    return Err(Verdict::Reject(Rejection::new(
                        "missing-token",
                        "the record carries no identity token",
                    )));
                };
                let verdict = tokio::time::timeout(
                    info.deadline.remaining(),
                    verifier.verify(token, &decoded.tenant, decoded.arrived_at_ms),
                )
                .await;
                match verdict {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(error)) if error.is_transient() => Err(Verdict::Fail(Outcome::failed(
                        error.reason(),
                        error.to_string(),
                    ))),
                    Ok(Err(error)) => Err(Verdict::Reject(Rejection::new(
                        error.reason(),
                        error.to_string(),
                    ))),
                    Err(_) => Err(Verdict::Fail(Outcome::deadline(
                        "the token was verified (fetching the JWKS)",
                    ))),
                }
            }
            Validation::Trusted => match &self.trusted_tenants {
                Some(allowed) if !allowed.contains(&decoded.tenant) => {
                    Err(Verdict::Reject(Rejection::new(
                        "tenant-not-allowed",
                        "the tenant is not in ROUTER_TRUSTED_TENANTS",
                    )))
                }
                _ => Ok(()),
            },
        }
    }
}

impl Identity {
    /// With a registry: whether the proven `tenant` may send. Unknown → rejected
    /// (`tenant-unknown`); suspended → rejected, or failed so its source keeps the record
    /// (`ROUTER_SUSPENDED_TENANTS=hold`), both `tenant-suspended`; the registry unreadable →
    /// failed (`registry-unavailable`): never admitted on a guess.
    pub async fn admit(
        &self,
        tenant: &TenantId,
        retry: RetryPolicy,
        info: &InvocationInfo,
    ) -> Result<(), Verdict> {
        let Some(registry) = &self.registry else {
            return Ok(());
        };
        match registry.lookup(tenant, retry, info.deadline).await {
            Lookup::Known(Standing::Active) => Ok(()),
            Lookup::Known(Standing::Suspended) => match registry.settings().suspended {
                Suspended::Reject => Err(Verdict::Reject(Rejection::new(
                    TENANT_SUSPENDED,
                    "the tenant is suspended in the tenant registry",
                ))),
                Suspended::Hold => Err(Verdict::Fail(Outcome::failed(
                    TENANT_SUSPENDED,
                    "the tenant is suspended in the tenant registry; the record is held \
                     (ROUTER_SUSPENDED_TENANTS=hold) until it is reinstated",
                ))),
            },
            Lookup::Known(Standing::Unknown) => Err(Verdict::Reject(Rejection::new(
                TENANT_UNKNOWN,
                "the tenant is not in the tenant registry",
            ))),
            Lookup::Known(Standing::Invalid(what)) => Err(Verdict::Reject(Rejection::new(
                TENANT_UNKNOWN,
                format!(
                    "the tenant registry's item has {what}: neither \"active\" nor \"suspended\""
                ),
            ))),
            Lookup::Unavailable(why) => {
                Err(Verdict::Fail(Outcome::failed(REGISTRY_UNAVAILABLE, why)))
            }
        }
    }
}

/// The Invoke payload of a proven record: its envelope, with the record's ordering key (its
/// lane), refused when larger than `invocation`'s payload limit.
pub fn wrap(
    decoded: &Decoded,
    ordering_key: Option<&str>,
    invocation: InvocationType,
) -> Result<Vec<u8>, Rejection> {
    let payload = decoded.envelope.to_payload(&decoded.tenant, ordering_key);
    let limit = invocation.payload_limit();
    if payload.len() > limit {
        return Err(Rejection::new(
            "envelope-too-large",
            format!(
                "the envelope is {} bytes, the {} Invoke limit is {limit}",
                payload.len(),
                invocation.as_str()
            ),
        ));
    }
    Ok(payload)
}
