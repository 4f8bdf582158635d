//! The platform's public signing keys (a JWKS) and how the router keeps them fresh.
//!
//! [`KeyStore`] owns the current key set and refreshes it: on an unknown `kid` at most once per
//! cool-down, and when the set is older than its maximum age. A failed refresh never drops the keys
//! already held, so keys survive a JWKS outage; records whose key cannot be found while the JWKS is
//! unreachable are reported as transient failures ([`KeyLookupError::Unavailable`]), never accepted.
//!
//! Only asymmetric keys are kept: symmetric (`oct`) keys and keys whose `use` is not `sig` are
//! skipped, so an `HS*` token can never find a key (RFC 8725 §3.1).
//!
//! Each key verifies exactly one algorithm (RFC 8725 §3.1): its `alg`, else the one its type
//! implies — the curve for EC and OKP keys, RS256 for an RSA key ([`rsa_default`] when the
//! accepted list narrows it). A key whose algorithm is not in the accepted list
//! ([`KeyStoreSettings::accepted`], `ROUTER_JWT_ALGORITHMS`) is skipped, so that list is enforced
//! here, once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// A JWS algorithm (jsonwebtoken's), as the keys and `ROUTER_JWT_ALGORITHMS` name them.
pub use jsonwebtoken::Algorithm;
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};

/// Every algorithm a key may verify: the asymmetric JWS algorithms. The default accepted list.
pub const ASYMMETRIC_ALGORITHMS: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

fn is_rsa(alg: Algorithm) -> bool {
    matches!(
        alg,
        Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512
    )
}

/// The algorithm of an RSA key without `alg`: RS256, or, when `accepted` leaves out RS256 and
/// holds exactly one RSA algorithm, that one. `None`: no single default (the key needs an `alg`).
pub fn rsa_default(accepted: &[Algorithm]) -> Option<Algorithm> {
    if accepted.contains(&Algorithm::RS256) {
        return Some(Algorithm::RS256);
    }
    let mut rsa = accepted.iter().copied().filter(|a| is_rsa(*a));
    match (rsa.next(), rsa.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// Largest JWKS document accepted from a URL or file, in bytes.
pub const MAX_JWKS_BYTES: usize = 1024 * 1024;

/// Where the JWKS comes from (`ROUTER_JWKS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JwksSource {
    /// Fetched over HTTPS (plain `http://` is accepted for loopback hosts only, for tests).
    Url(String),
    /// Read from a local file (`file://` URL); re-read on refresh, so replacing the file rotates keys.
    File(PathBuf),
    /// The JWKS JSON itself; it cannot be refreshed.
    Inline(String),
}

/// Why a JWKS setting or document is unusable.
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    /// The setting is neither an `https://` URL, a `file://` URL nor inline JSON.
    #[error("expected an https:// URL, a file:// URL or inline JWKS JSON, got {0:?}")]
    BadSource(String),
    /// The document could not be read or fetched (transient for URLs).
    #[error("could not load the JWKS from {location}: {reason}")]
    Unreachable {
        /// Where it was loaded from.
        location: String,
        /// What went wrong.
        reason: String,
    },
    /// The document is not a JWKS.
    #[error("the JWKS from {location} is not valid: {reason}")]
    Invalid {
        /// Where it was loaded from.
        location: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why no key could be found for a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyLookupError {
    /// The key set (after any allowed refresh) has no key with this `kid`.
    #[error("no signing key with kid {0:?}")]
    UnknownKid(String),
    /// The token names no `kid` and the key set does not hold exactly one key.
    #[error("the token has no kid and the key set holds {0} keys")]
    MissingKid(usize),
    /// The JWKS could not be loaded; the record should be retried later.
    #[error("the JWKS is unavailable: {0}")]
    Unavailable(String),
}

impl JwksSource {
    /// Parses the `ROUTER_JWKS` value.
    pub fn parse(spec: &str) -> Result<Self, JwksError> {
        let trimmed = spec.trim();
        if trimmed.starts_with('{') {
            return Ok(Self::Inline(trimmed.to_owned()));
        }
        if let Some(path) = trimmed.strip_prefix("file://") {
            if path.is_empty() {
                return Err(JwksError::BadSource(spec.to_owned()));
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if crate::endpoint::is_allowed(trimmed) {
            return Ok(Self::Url(trimmed.to_owned()));
        }
        Err(JwksError::BadSource(spec.to_owned()))
    }

    fn location(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::File(path) => format!("file://{}", path.display()),
            Self::Inline(_) => "inline JSON".to_owned(),
        }
    }
}

/// A public key the router verifies tokens with.
pub struct VerificationKey {
    /// The key id, if the JWK had one.
    pub kid: Option<String>,
    /// The one algorithm this key verifies: its `alg`, else the one its type implies.
    pub algorithm: Algorithm,
    /// The key material.
    pub key: DecodingKey,
}

impl VerificationKey {
    /// Whether this key may verify a token signed with `alg`: only its own algorithm. The key
    /// decides, never the token.
    pub fn allows(&self, alg: Algorithm) -> bool {
        self.algorithm == alg
    }
}

/// An immutable set of verification keys, indexed by `kid`.
#[derive(Default)]
pub struct KeySet {
    by_kid: HashMap<String, Arc<VerificationKey>>,
    all: Vec<Arc<VerificationKey>>,
    /// What was skipped while loading and why (logged once per load).
    pub skipped: Vec<String>,
}

impl KeySet {
    /// Builds a key set from a JWKS document, keeping only usable asymmetric signing keys whose
    /// algorithm is in `accepted`.
    pub fn from_json(json: &[u8], accepted: &[Algorithm]) -> Result<Self, String> {
        let set: JwkSet = serde_json::from_slice(json).map_err(|e| e.to_string())?;
        let mut keys = KeySet::default();
        for (index, jwk) in set.keys.iter().enumerate() {
            let name = jwk
                .common
                .key_id
                .clone()
                .unwrap_or_else(|| format!("#{index}"));
            match verification_key(jwk, accepted) {
                Ok(key) => {
                    let key = Arc::new(key);
                    if let Some(kid) = &key.kid {
                        keys.by_kid.insert(kid.clone(), key.clone());
                    }
                    keys.all.push(key);
                }
                Err(reason) => keys.skipped.push(format!("key {name}: {reason}")),
            }
        }
        Ok(keys)
    }

    /// Number of usable keys.
    pub fn len(&self) -> usize {
        self.all.len()
    }

    /// Whether the set holds no usable key.
    pub fn is_empty(&self) -> bool {
        self.all.is_empty()
    }

    fn find(&self, kid: Option<&str>) -> Result<Arc<VerificationKey>, KeyLookupError> {
        match kid {
            Some(kid) => self
                .by_kid
                .get(kid)
                .cloned()
                .ok_or_else(|| KeyLookupError::UnknownKid(kid.to_owned())),
            None if self.all.len() == 1 => Ok(self.all[0].clone()),
            None => Err(KeyLookupError::MissingKid(self.all.len())),
        }
    }
}

fn verification_key(jwk: &Jwk, accepted: &[Algorithm]) -> Result<VerificationKey, String> {
    if let Some(usage) = &jwk.common.public_key_use
        && *usage != PublicKeyUse::Signature
    {
        return Err("not a signing key (use is not \"sig\")".into());
    }
    let declared = match jwk.common.key_algorithm {
        Some(alg) => Some(
            Algorithm::try_from(alg)
                .map_err(|_| format!("algorithm {alg:?} cannot sign tokens"))?,
        ),
        None => None,
    };
    let algorithm = match (&jwk.algorithm, declared) {
        (AlgorithmParameters::OctetKey(_), _) => {
            return Err("symmetric keys are never used: HS* tokens are refused".into());
        }
        (_, Some(Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => {
            return Err("symmetric algorithms are refused".into());
        }
        (AlgorithmParameters::RSA(_), Some(alg)) => {
            if !is_rsa(alg) {
                return Err(format!("algorithm {alg:?} does not fit an RSA key"));
            }
            alg
        }
        (AlgorithmParameters::RSA(_), None) => rsa_default(accepted).ok_or(
            "an RSA key without alg, and the accepted algorithms leave out RS256 and hold              several RSA algorithms: give the key an alg",
        )?,
        (AlgorithmParameters::EllipticCurve(params), alg) => {
            let from_curve = match params.curve {
                EllipticCurve::P256 => Algorithm::ES256,
                EllipticCurve::P384 => Algorithm::ES384,
                ref other => return Err(format!("unsupported curve {other:?}")),
            };
            if alg.is_some_and(|alg| alg != from_curve) {
                return Err(format!(
                    "algorithm {alg:?} does not fit curve {:?}",
                    params.curve
                ));
            }
            from_curve
        }
        (AlgorithmParameters::OctetKeyPair(params), alg) => {
            if params.curve != EllipticCurve::Ed25519 {
                return Err(format!("unsupported curve {:?}", params.curve));
            }
            if alg.is_some_and(|alg| alg != Algorithm::EdDSA) {
                return Err(format!("algorithm {alg:?} does not fit an Ed25519 key"));
            }
            Algorithm::EdDSA
        }
        _ => return Err("unsupported key type".into()),
    };
    if !accepted.contains(&algorithm) {
        return Err(format!(
            "its algorithm {algorithm:?} is not an accepted algorithm"
        ));
    }
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable key material: {e}"))?;
    Ok(VerificationKey {
        kid: jwk.common.key_id.clone(),
        algorithm,
        key,
    })
}

/// Settings of a [`KeyStore`].
#[derive(Clone, Debug)]
pub struct KeyStoreSettings {
    /// Least time between two refreshes caused by unknown `kid`s.
    pub refresh_cooldown: Duration,
    /// Age after which the key set is refreshed on the next lookup (a failure keeps the old set).
    pub max_age: Duration,
    /// Time limit of one HTTPS fetch.
    pub fetch_timeout: Duration,
    /// The algorithms keys may verify (`ROUTER_JWT_ALGORITHMS`); a key bound to another is
    /// skipped.
    pub accepted: Vec<Algorithm>,
}

impl Default for KeyStoreSettings {
    fn default() -> Self {
        Self {
            refresh_cooldown: Duration::from_secs(60),
            max_age: Duration::from_secs(600),
            fetch_timeout: Duration::from_secs(5),
            accepted: ASYMMETRIC_ALGORITHMS.to_vec(),
        }
    }
}

struct Loaded {
    keys: Arc<KeySet>,
    /// When the current keys were loaded; `None` before the first successful load.
    loaded_at: Option<Instant>,
    /// The same moment on the wall clock, in milliseconds since the epoch.
    loaded_at_ms: Option<i64>,
    /// When a refresh was last attempted, successful or not.
    attempted_at: Option<Instant>,
    /// Whether that attempt failed, and why.
    last_failure: Option<String>,
}

/// The current verification keys and the policy that refreshes them.
pub struct KeyStore {
    source: JwksSource,
    settings: KeyStoreSettings,
    http: Option<reqwest::Client>,
    state: RwLock<Loaded>,
    refresh: tokio::sync::Mutex<()>,
    generation: AtomicU64,
}

impl KeyStore {
    /// Creates a store. File and inline sources are loaded now, so a broken setting stops the
    /// router at start; a URL is fetched on first use, keeping start-up fast.
    pub fn new(source: JwksSource, settings: KeyStoreSettings) -> Result<Self, JwksError> {
        let (keys, loaded_at, http) = match &source {
            JwksSource::Url(_) => {
                let http = reqwest::Client::builder()
                    .timeout(settings.fetch_timeout)
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .map_err(|e| JwksError::Unreachable {
                        location: source.location(),
                        reason: format!("cannot build an HTTPS client: {e}"),
                    })?;
                (KeySet::default(), None, Some(http))
            }
            JwksSource::File(_) | JwksSource::Inline(_) => {
                let bytes = read_local(&source)?;
                let keys = parse_set(&source, &bytes, &settings.accepted)?;
                (keys, Some(Instant::now()), None)
            }
        };
        Ok(Self {
            source,
            settings,
            http,
            state: RwLock::new(Loaded {
                keys: Arc::new(keys),
                loaded_at,
                loaded_at_ms: loaded_at.map(|_| wall_clock_ms()),
                attempted_at: loaded_at,
                last_failure: None,
            }),
            refresh: tokio::sync::Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// Counter that changes whenever the key set is replaced; caches of verified tokens keyed on
    /// an older generation must not be trusted.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether tokens signed with `alg` may be verified at all (`ROUTER_JWT_ALGORITHMS`).
    pub fn accepts(&self, alg: Algorithm) -> bool {
        self.settings.accepted.contains(&alg)
    }

    /// When the current key set was loaded (milliseconds since the epoch), if it ever was.
    pub fn loaded_at_ms(&self) -> Option<i64> {
        self.state.read().expect("key store lock").loaded_at_ms
    }

    /// Problems found in the current key set (skipped keys), for a start-up log line.
    pub fn skipped(&self) -> Vec<String> {
        self.state
            .read()
            .expect("key store lock")
            .keys
            .skipped
            .clone()
    }

    /// Finds the key for a token's `kid`, refreshing the set when the rules allow.
    pub async fn key_for(&self, kid: Option<&str>) -> Result<Arc<VerificationKey>, KeyLookupError> {
        let (found, stale) = {
            let state = self.state.read().expect("key store lock");
            let stale = match state.loaded_at {
                None => true,
                Some(at) => at.elapsed() >= self.settings.max_age,
            };
            (state.keys.find(kid), stale)
        };
        match found {
            Ok(key) if !stale || matches!(self.source, JwksSource::Inline(_)) => return Ok(key),
            Ok(key) => {
                // Old but usable: refresh if allowed, and keep using the key if that fails.
                self.refresh_if_allowed().await;
                let state = self.state.read().expect("key store lock");
                if state.last_failure.is_some() {
                    return Ok(key); // the JWKS is down: the keys we hold survive
                }
                // A fresh set is authoritative: a key it dropped is revoked.
                return state.keys.find(kid);
            }
            Err(_) => {}
        }
        if matches!(self.source, JwksSource::Inline(_)) {
            return self.lookup(kid);
        }
        self.refresh_if_allowed().await;
        let state = self.state.read().expect("key store lock");
        match state.keys.find(kid) {
            Ok(key) => Ok(key),
            // Never judge a token against keys we could not load: fail it as transient.
            Err(_) if state.loaded_at.is_none() || state.last_failure.is_some() => {
                Err(KeyLookupError::Unavailable(
                    state
                        .last_failure
                        .clone()
                        .unwrap_or_else(|| "not loaded yet".into()),
                ))
            }
            Err(e) => Err(e),
        }
    }

    fn lookup(&self, kid: Option<&str>) -> Result<Arc<VerificationKey>, KeyLookupError> {
        self.state.read().expect("key store lock").keys.find(kid)
    }

    /// Refreshes unless another refresh happened within the cool-down. Concurrent callers wait for
    /// one refresh instead of each fetching.
    async fn refresh_if_allowed(&self) {
        let attempted_before = self.state.read().expect("key store lock").attempted_at;
        let _guard = self.refresh.lock().await;
        let attempted_now = self.state.read().expect("key store lock").attempted_at;
        if attempted_now != attempted_before {
            return; // someone else refreshed while we waited
        }
        if let Some(at) = attempted_now
            && at.elapsed() < self.settings.refresh_cooldown
        {
            return;
        }
        let result = self.load().await;
        let mut state = self.state.write().expect("key store lock");
        let now = Instant::now();
        state.attempted_at = Some(now);
        match result {
            Ok(keys) => {
                for problem in &keys.skipped {
                    tracing::warn!(message = "JWKS key skipped", problem = problem.as_str());
                }
                state.keys = Arc::new(keys);
                state.loaded_at = Some(now);
                state.loaded_at_ms = Some(wall_clock_ms());
                state.last_failure = None;
                self.generation.fetch_add(1, Ordering::AcqRel);
                tracing::info!(message = "JWKS refreshed", keys = state.keys.len());
            }
            Err(error) => {
                tracing::warn!(message = "JWKS refresh failed; keeping the keys held", error = %error);
                state.last_failure = Some(error.to_string());
            }
        }
    }

    async fn load(&self) -> Result<KeySet, JwksError> {
        let bytes = match (&self.source, &self.http) {
            (JwksSource::Url(url), Some(http)) => fetch(http, url).await?,
            _ => read_local(&self.source)?,
        };
        parse_set(&self.source, &bytes, &self.settings.accepted)
    }
}

fn wall_clock_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

fn read_local(source: &JwksSource) -> Result<Vec<u8>, JwksError> {
    match source {
        JwksSource::Inline(json) => Ok(json.as_bytes().to_vec()),
        JwksSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| JwksError::Unreachable {
                location: source.location(),
                reason: e.to_string(),
            })?;
            if bytes.len() > MAX_JWKS_BYTES {
                return Err(JwksError::Invalid {
                    location: source.location(),
                    reason: format!("larger than {MAX_JWKS_BYTES} bytes"),
                });
            }
            Ok(bytes)
        }
        JwksSource::Url(_) => unreachable!("URLs are fetched, not read"),
    }
}

async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, JwksError> {
    let unreachable = |reason: String| JwksError::Unreachable {
        location: url.to_owned(),
        reason,
    };
    let mut response = http
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if !response.status().is_success() {
        return Err(unreachable(format!("HTTP status {}", response.status())));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| unreachable(e.to_string()))?
    {
        if body.len() + chunk.len() > MAX_JWKS_BYTES {
            return Err(unreachable(format!("larger than {MAX_JWKS_BYTES} bytes")));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_set(
    source: &JwksSource,
    bytes: &[u8],
    accepted: &[Algorithm],
) -> Result<KeySet, JwksError> {
    let keys = KeySet::from_json(bytes, accepted).map_err(|reason| JwksError::Invalid {
        location: source.location(),
        reason,
    })?;
    if keys.is_empty() {
        return Err(JwksError::Invalid {
            location: source.location(),
            reason: format!(
                "no usable asymmetric signing key ({})",
                keys.skipped.join("; ")
            ),
        });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources() {
        assert_eq!(
            JwksSource::parse("https://x.example/jwks.json").unwrap(),
            JwksSource::Url("https://x.example/jwks.json".into())
        );
        assert_eq!(
            JwksSource::parse("file:///etc/jwks.json").unwrap(),
            JwksSource::File("/etc/jwks.json".into())
        );
        assert!(matches!(
            JwksSource::parse(r#" {"keys":[]}"#).unwrap(),
            JwksSource::Inline(_)
        ));
        assert!(JwksSource::parse("http://127.0.0.1:8080/jwks").is_ok());
        assert!(JwksSource::parse("http://localhost/jwks").is_ok());
        assert!(JwksSource::parse("http://[::1]:9/jwks").is_ok());
        for bad in [
            "http://example.com/jwks",
            "http://localhost.evil.com/",
            "/etc/jwks",
            "file://",
            "",
        ] {
            assert!(JwksSource::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn symmetric_and_encryption_keys_are_skipped() {
        let json = br#"{"keys":[
            {"kty":"oct","kid":"h","k":"c2VjcmV0","alg":"HS256"},
            {"kty":"OKP","crv":"Ed25519","kid":"enc","use":"enc","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},
            {"kty":"OKP","crv":"Ed25519","kid":"ok","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
        ]}"#;
        let set = KeySet::from_json(json, &ASYMMETRIC_ALGORITHMS).unwrap();
        assert_eq!(set.len(), 1);
        assert_eq!(set.skipped.len(), 2);
        let key = set.find(Some("ok")).unwrap();
        assert!(key.allows(Algorithm::EdDSA));
        assert!(!key.allows(Algorithm::HS256));
        assert!(matches!(
            set.find(Some("h")),
            Err(KeyLookupError::UnknownKid(_))
        ));
        // A single key is used for a token without kid.
        assert!(set.find(None).is_ok());
    }

    /// The modulus of the TEST-ONLY RSA key of `tests/fixtures/jwks.json`.
    const RSA_N: &str = "uvCF24nnIiSw-6CyLgqnuRR5vC1Y-Pc3mXE7fpZ98oNUPa98FZbTAOLt5GLxFeK96SqynI-ZZFZBwUMXG4OGqPry8IiBGKR1fWQfe8ApfuQD4iagbnjCOdg7HYbKyI54TDypvRUydcUFBOHh4B6JPLvYcrR6IVeoU9VsqDRNonRy7RuHK0KIO_MBBFfdLB1BM5ywpHN62P_kmkdf31ZDRLtbXfR1kj7_z7mXItEA30Rb8IayjzoVkctvFdU1ysQgURzb3kaMLEpUufrjgpajT9ozliBPSkzEfOT3DGcKoEHam2wCrQ02Bfr2CwjZKqOzk6A6Y8PsAjBSO5_xeSJTuQ";

    fn rsa_jwk(alg: Option<&str>) -> Vec<u8> {
        let mut jwk = serde_json::json!({"kty": "RSA", "kid": "r", "n": RSA_N, "e": "AQAB"});
        if let Some(alg) = alg {
            jwk["alg"] = alg.into();
        }
        serde_json::json!({"keys": [jwk]}).to_string().into_bytes()
    }

    /// RFC 8725 §3.1: a key verifies one algorithm. An RSA key without `alg` is RS256 only, not
    /// all six RSA algorithms; the accepted list narrows what any key may verify.
    #[test]
    fn each_key_is_bound_to_one_algorithm() {
        let set = KeySet::from_json(&rsa_jwk(None), &ASYMMETRIC_ALGORITHMS).unwrap();
        let key = set.find(Some("r")).unwrap();
        assert_eq!(key.algorithm, Algorithm::RS256);
        for other in [
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ] {
            assert!(!key.allows(other), "{other:?}");
        }
        let set = KeySet::from_json(&rsa_jwk(Some("PS384")), &ASYMMETRIC_ALGORITHMS).unwrap();
        assert_eq!(set.find(Some("r")).unwrap().algorithm, Algorithm::PS384);
        // Narrowed to PS256: a key without alg is PS256; a key declaring RS256 is skipped.
        let ps256 = [Algorithm::PS256, Algorithm::ES256];
        let set = KeySet::from_json(&rsa_jwk(None), &ps256).unwrap();
        assert_eq!(set.find(Some("r")).unwrap().algorithm, Algorithm::PS256);
        let set = KeySet::from_json(&rsa_jwk(Some("RS256")), &ps256).unwrap();
        assert!(set.is_empty());
        assert!(
            set.skipped[0].contains("not an accepted algorithm"),
            "{:?}",
            set.skipped
        );
        // Several RSA algorithms but not RS256: no default, the key must say.
        let set = KeySet::from_json(&rsa_jwk(None), &[Algorithm::PS256, Algorithm::PS512]).unwrap();
        assert!(set.is_empty());
        assert!(
            set.skipped[0].contains("give the key an alg"),
            "{:?}",
            set.skipped
        );
        assert_eq!(rsa_default(&[Algorithm::ES256]), None);
    }

    #[test]
    fn inline_source_without_usable_keys_is_an_error() {
        let source = JwksSource::parse(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap();
        assert!(matches!(
            KeyStore::new(source, KeyStoreSettings::default()),
            Err(JwksError::Invalid { .. })
        ));
    }
}
