//! Verification of tenant identity tokens (JWTs) following RFC 8725.
//!
//! [`TokenVerifier::verify`] answers one question: was `token`, signed by the platform, valid for
//! `tenant` at the moment the record arrived? The rules, in order:
//! 1. a token larger than [`TokenPolicy::max_token_bytes`] is refused before any decoding;
//! 2. the header is pre-parsed: `none` and `HS*` are refused outright, and the configured `typ`
//!    must match;
//! 3. the key is chosen by `kid` and the key decides the algorithm ([`VerificationKey::allows`]);
//! 4. signature, `iss` and `aud` are checked, and `iss`, `aud` and a numeric `exp` must be present;
//! 5. `exp` and `nbf` are judged at the record's arrival time, with leeway, not at the time of
//!    processing, so a backlog after an outage is not poisoned by expiry;
//! 6. the tenant claim must be byte-equal to the record's tenant id.
//!
//! Steps 1–4 do not depend on the record, so their success is cached per token (bounded in size,
//! keyed by the token's SHA-256 and dropped when the key set changes); steps 5 and 6 run for every
//! record. Errors carry a stable, loggable reason code and never the token itself.
//!
//! [`VerificationKey::allows`]: crate::jwks::VerificationKey::allows

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::TenantId;
use crate::jwks::{KeyLookupError, KeyStore};

/// Default cap on a token's size, checked before decoding.
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;

/// What a valid token must look like.
#[derive(Clone, Debug)]
pub struct TokenPolicy {
    /// Accepted `iss` values (at least one).
    pub issuers: Vec<String>,
    /// Accepted `aud` values (at least one).
    pub audiences: Vec<String>,
    /// Name of the claim holding the tenant id.
    pub tenant_claim: String,
    /// Leeway for `exp` and `nbf`, in seconds.
    pub leeway_seconds: u64,
    /// Required `typ` header value (compared ASCII case-insensitively), if any.
    pub typ: Option<String>,
    /// Tokens larger than this are refused before decoding.
    pub max_token_bytes: usize,
    /// Number of verified tokens remembered; 0 disables the cache.
    pub cache_capacity: usize,
}

/// Why a token does not prove the record's tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Larger than the configured cap.
    #[error("token is {len} bytes, larger than the {max} byte limit")]
    TooLarge {
        /// Token length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a compact JWS, or its header or claims are not JSON of the right shape.
    #[error("token is malformed: {0}")]
    Malformed(String),
    /// `alg` is `none`, symmetric, unknown, or not the algorithm of the key.
    #[error("token algorithm {0:?} is refused")]
    AlgorithmRefused(String),
    /// The `typ` header does not match the configured type.
    #[error("token type {found:?} is not the expected {expected:?}")]
    TypeMismatch {
        /// The header's value.
        found: Option<String>,
        /// The configured value.
        expected: String,
    },
    /// No key for the token's `kid`, even after the allowed refresh.
    #[error("token was signed by an unknown key: {0}")]
    UnknownKey(String),
    /// The JWKS could not be loaded: transient, the record is retried.
    #[error("cannot verify the token now: {0}")]
    KeysUnavailable(String),
    /// The key is unknown, but the key set is older than the record and may not be refreshed yet
    /// (cool-down): transient, the record is retried after the next refresh.
    #[error("signing key not known yet ({0}); the key set predates the record")]
    KeysStale(String),
    /// The signature does not verify.
    #[error("token signature is invalid")]
    BadSignature,
    /// `iss` is missing or not accepted.
    #[error("token issuer is missing or not accepted")]
    Issuer,
    /// `aud` is missing or not accepted.
    #[error("token audience is missing or not accepted")]
    Audience,
    /// `exp` is missing.
    #[error("token has no exp claim")]
    MissingExpiry,
    /// `exp` or `nbf` is present but not a number (e.g. a string, CVE-2026-25537).
    #[error("token claim {0} is not a number")]
    NonNumericTime(&'static str),
    /// The token had expired when the record arrived.
    #[error("token had expired when the record arrived")]
    Expired,
    /// The token was not yet valid when the record arrived.
    #[error("token was not yet valid when the record arrived")]
    NotYetValid,
    /// The tenant claim is missing or not a string.
    #[error("token has no string tenant claim {0:?}")]
    MissingTenantClaim(String),
    /// The tenant claim differs from the record's tenant id.
    #[error("token tenant does not match the record's tenant")]
    TenantMismatch,
}

impl TokenError {
    /// A stable, short reason code for logs, metrics and the quarantine queue.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge { .. } => "token-too-large",
            TokenError::Malformed(_) => "token-malformed",
            TokenError::AlgorithmRefused(_) => "token-algorithm-refused",
            TokenError::TypeMismatch { .. } => "token-type-mismatch",
            TokenError::UnknownKey(_) => "token-unknown-key",
            TokenError::KeysUnavailable(_) => "jwks-unavailable",
            TokenError::KeysStale(_) => "jwks-stale",
            TokenError::BadSignature => "token-bad-signature",
            TokenError::Issuer => "token-issuer",
            TokenError::Audience => "token-audience",
            TokenError::MissingExpiry => "token-missing-exp",
            TokenError::NonNumericTime(_) => "token-non-numeric-time",
            TokenError::Expired => "token-expired",
            TokenError::NotYetValid => "token-not-yet-valid",
            TokenError::MissingTenantClaim(_) => "token-missing-tenant-claim",
            TokenError::TenantMismatch => "tenant-mismatch",
        }
    }

    /// Whether trying again later may succeed (only when the keys could not be loaded).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TokenError::KeysUnavailable(_) | TokenError::KeysStale(_)
        )
    }
}

/// The parts of a verified token that every record is judged on.
#[derive(Debug, Clone)]
struct VerifiedClaims {
    tenant: String,
    /// `exp`, in milliseconds since the epoch.
    exp_ms: i64,
    /// `nbf`, in milliseconds since the epoch.
    nbf_ms: Option<i64>,
    /// Key-set generation the signature was checked against.
    generation: u64,
}

/// The header fields read before verification.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    typ: Option<String>,
}

/// Verifies identity tokens against a [`KeyStore`] under a [`TokenPolicy`].
pub struct TokenVerifier {
    policy: TokenPolicy,
    keys: KeyStore,
    cache: Option<quick_cache::sync::Cache<[u8; 32], Arc<VerifiedClaims>>>,
}

impl TokenVerifier {
    /// Creates a verifier.
    pub fn new(policy: TokenPolicy, keys: KeyStore) -> Self {
        let cache = (policy.cache_capacity > 0)
            .then(|| quick_cache::sync::Cache::new(policy.cache_capacity));
        Self {
            policy,
            keys,
            cache,
        }
    }

    /// The policy in force.
    pub fn policy(&self) -> &TokenPolicy {
        &self.policy
    }

    /// The key store, e.g. to log skipped keys at start.
    pub fn keys(&self) -> &KeyStore {
        &self.keys
    }

    /// Checks that `token` proves `tenant` for a record that arrived at `arrived_at_ms`
    /// (milliseconds since the Unix epoch).
    pub async fn verify(
        &self,
        token: &str,
        tenant: &TenantId,
        arrived_at_ms: i64,
    ) -> Result<(), TokenError> {
        if token.len() > self.policy.max_token_bytes {
            return Err(TokenError::TooLarge {
                len: token.len(),
                max: self.policy.max_token_bytes,
            });
        }
        let claims = self.verified_claims(token, arrived_at_ms).await?;
        self.judge(&claims, tenant, arrived_at_ms)
    }

    async fn verified_claims(
        &self,
        token: &str,
        arrived_at_ms: i64,
    ) -> Result<Arc<VerifiedClaims>, TokenError> {
        let generation = self.keys.generation();
        let digest = self.cache.as_ref().map(|_| {
            let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
            let mut key = [0u8; 32];
            key.copy_from_slice(digest.as_ref());
            key
        });
        if let (Some(cache), Some(digest)) = (&self.cache, &digest)
            && let Some(hit) = cache.get(digest)
            && hit.generation == generation
        {
            return Ok(hit);
        }
        let claims = Arc::new(
            self.verify_signature_and_claims(token, generation, arrived_at_ms)
                .await?,
        );
        if let (Some(cache), Some(digest)) = (&self.cache, digest) {
            cache.insert(digest, claims.clone());
        }
        Ok(claims)
    }

    async fn verify_signature_and_claims(
        &self,
        token: &str,
        generation: u64,
        arrived_at_ms: i64,
    ) -> Result<VerifiedClaims, TokenError> {
        let header = pre_parse_header(token)?;
        if let Some(expected) = &self.policy.typ {
            let found = header.typ.as_deref();
            if !found.is_some_and(|typ| typ.eq_ignore_ascii_case(expected)) {
                return Err(TokenError::TypeMismatch {
                    found: header.typ.clone(),
                    expected: expected.clone(),
                });
            }
        }
        let alg: Algorithm = header
            .alg
            .parse()
            .map_err(|_| TokenError::AlgorithmRefused(header.alg.clone()))?;
        // Refused before any key is looked up: an algorithm outside the accepted list never
        // causes a JWKS refresh.
        if !self.keys.accepts(alg) {
            return Err(TokenError::AlgorithmRefused(header.alg));
        }
        let key = self
            .keys
            .key_for(header.kid.as_deref())
            .await
            .map_err(|e| match e {
                KeyLookupError::Unavailable(reason) => TokenError::KeysUnavailable(reason),
                // A key newer than our key set may sign a record newer than it: retry later
                // rather than quarantine a good record during a rotation.
                other
                    if self
                        .keys
                        .loaded_at_ms()
                        .is_some_and(|loaded| loaded < arrived_at_ms) =>
                {
                    TokenError::KeysStale(other.to_string())
                }
                other => TokenError::UnknownKey(other.to_string()),
            })?;
        if !key.allows(alg) {
            return Err(TokenError::AlgorithmRefused(header.alg));
        }

        let mut validation = Validation::new(alg);
        // Time claims are judged at the record's arrival time below, not at "now".
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.required_spec_claims.clear();
        // iss and aud are checked below, strictly: jsonwebtoken lets a null or numeric claim pass.
        validation.validate_aud = false;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::BadSignature,
                ErrorKind::InvalidAlgorithm => TokenError::AlgorithmRefused(alg_name(alg)),
                _ => TokenError::Malformed(e.to_string()),
            })?;
        let claims = data.claims;
        match claims.get("iss") {
            Some(Value::String(iss)) if self.policy.issuers.iter().any(|i| i == iss) => {}
            _ => return Err(TokenError::Issuer),
        }
        let accepted = |aud: &str| self.policy.audiences.iter().any(|a| a == aud);
        match claims.get("aud") {
            Some(Value::String(aud)) if accepted(aud) => {}
            Some(Value::Array(auds))
                if auds.iter().all(Value::is_string)
                    && auds.iter().filter_map(Value::as_str).any(accepted) => {}
            _ => return Err(TokenError::Audience),
        }
        let exp_ms = match claims.get("exp") {
            None | Some(Value::Null) => return Err(TokenError::MissingExpiry),
            Some(value) => numeric_date_ms(value).ok_or(TokenError::NonNumericTime("exp"))?,
        };
        let nbf_ms = match claims.get("nbf") {
            None => None,
            Some(value) => Some(numeric_date_ms(value).ok_or(TokenError::NonNumericTime("nbf"))?),
        };
        let tenant = match claims.get(&self.policy.tenant_claim) {
            Some(Value::String(tenant)) => tenant.clone(),
            _ => {
                return Err(TokenError::MissingTenantClaim(
                    self.policy.tenant_claim.clone(),
                ));
            }
        };
        Ok(VerifiedClaims {
            tenant,
            exp_ms,
            nbf_ms,
            generation,
        })
    }

    fn judge(
        &self,
        claims: &VerifiedClaims,
        tenant: &TenantId,
        arrived_at_ms: i64,
    ) -> Result<(), TokenError> {
        let leeway_ms = i64::try_from(self.policy.leeway_seconds)
            .unwrap_or(i64::MAX)
            .saturating_mul(1000);
        if arrived_at_ms > claims.exp_ms.saturating_add(leeway_ms) {
            return Err(TokenError::Expired);
        }
        if let Some(nbf_ms) = claims.nbf_ms
            && arrived_at_ms.saturating_add(leeway_ms) < nbf_ms
        {
            return Err(TokenError::NotYetValid);
        }
        // Byte equality: nothing is normalised, "Acme" and "acme" are other tenants.
        if claims.tenant.as_bytes() != tenant.as_str().as_bytes() {
            return Err(TokenError::TenantMismatch);
        }
        Ok(())
    }
}

fn alg_name(alg: Algorithm) -> String {
    format!("{alg:?}")
}

/// Reads a compact JWS header without trusting it: used only to refuse `none`/`HS*`, check `typ`
/// and pick the key. Exposed for fuzzing.
pub fn pre_parse_header(token: &str) -> Result<PreParsedHeader, TokenError> {
    let (encoded, rest) = token
        .split_once('.')
        .ok_or_else(|| TokenError::Malformed("not a compact JWS".into()))?;
    if rest.split('.').count() != 2 {
        return Err(TokenError::Malformed(
            "a compact JWS has three parts".into(),
        ));
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| TokenError::Malformed("header is not base64url".into()))?;
    let header: RawHeader = serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Malformed("header is not a JSON object with alg".into()))?;
    if header.alg.eq_ignore_ascii_case("none") || header.alg.starts_with("HS") {
        return Err(TokenError::AlgorithmRefused(header.alg));
    }
    Ok(PreParsedHeader {
        alg: header.alg,
        kid: header.kid,
        typ: header.typ,
    })
}

/// The untrusted header fields of a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreParsedHeader {
    /// The `alg` the token claims.
    pub alg: String,
    /// The `kid`, if any.
    pub kid: Option<String>,
    /// The `typ`, if any.
    pub typ: Option<String>,
}

/// A NumericDate (RFC 7519 §2) in milliseconds; anything but a JSON number is refused.
fn numeric_date_ms(value: &Value) -> Option<i64> {
    let Value::Number(number) = value else {
        return None;
    };
    if let Some(seconds) = number.as_i64() {
        return Some(seconds.saturating_mul(1000));
    }
    let seconds = number.as_f64()?;
    seconds.is_finite().then_some((seconds * 1000.0) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn pre_parser_refuses_none_and_hmac() {
        for alg in ["none", "NONE", "HS256", "HS512"] {
            let token = format!("{}.{}.", b64(&format!(r#"{{"alg":"{alg}"}}"#)), b64("{}"));
            assert!(
                matches!(
                    pre_parse_header(&token),
                    Err(TokenError::AlgorithmRefused(_))
                ),
                "{alg}"
            );
        }
    }

    #[test]
    fn pre_parser_reads_kid_and_typ() {
        let token = format!(
            "{}.{}.sig",
            b64(r#"{"alg":"ES256","kid":"k1","typ":"JWT"}"#),
            b64("{}")
        );
        assert_eq!(
            pre_parse_header(&token).unwrap(),
            PreParsedHeader {
                alg: "ES256".into(),
                kid: Some("k1".into()),
                typ: Some("JWT".into())
            }
        );
    }

    #[test]
    fn pre_parser_refuses_garbage() {
        for token in [
            "",
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.x",
            &format!("{}.e30.x", b64("[1]")),
        ] {
            assert!(
                matches!(pre_parse_header(token), Err(TokenError::Malformed(_))),
                "{token:?}"
            );
        }
    }

    #[test]
    fn numeric_dates() {
        assert_eq!(numeric_date_ms(&serde_json::json!(10)), Some(10_000));
        assert_eq!(numeric_date_ms(&serde_json::json!(1.5)), Some(1_500));
        assert_eq!(numeric_date_ms(&serde_json::json!("10")), None);
        assert_eq!(numeric_date_ms(&serde_json::json!(null)), None);
    }
}
