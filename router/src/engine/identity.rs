//! Proving a record's tenant before anything is sent for it: the maximum record age, then a
//! signed JWT whose tenant claim equals the record's tenant (`jwt` sources) or the allow-list
//! (`trusted` sources); and wrapping the proven record into its Invoke payload, which is never
//! larger than the invocation type's payload limit.

use std::collections::HashSet;
use std::time::Duration;

use shared::TenantId;
use shared::token::TokenVerifier;

use crate::config::{InvocationType, Validation};
use crate::invocation::InvocationInfo;
use crate::outcome::{Outcome, Rejection, Verdict};
use crate::record::Decoded;

/// What proves a record's tenant: the token verifier for `jwt` sources, the allow-list for
/// `trusted` ones. Which applies to a source is `Config::validation`.
pub struct Identity {
    /// Present when some source uses `jwt`.
    pub verifier: Option<TokenVerifier>,
    /// `ROUTER_TRUSTED_TENANTS`.
    pub trusted_tenants: Option<HashSet<TenantId>>,
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
