//! Tenant-scoped access: tenant isolation mode isolates compute only — one execution role serves
//! every tenant of the function — so once an environment is pinned to its tenant, the guard gives
//! that tenant its own short-lived session of the tenant access role (`BACKEND_TENANT_ROLE_ARN`),
//! assumed with the session tag `tenant_id=<tenant>`, whose every data permission is scoped by
//! `${aws:PrincipalTag/tenant_id}`. The handler (and the guard's own idempotency store) gets an
//! AWS SDK configuration built on that session only ([`TenantAccess::config`]), and resolves
//! secrets by reference with it ([`TenantAccess::secret`]).
//!
//! - The session is assumed through aws-config's `AssumeRoleProvider` (session name
//!   `tenant-<tenant>-<environment>`, the tag, `BACKEND_TENANT_SESSION_SECONDS`), cached in the
//!   environment — safe, since the environment serves one tenant for life — and refreshed before
//!   each invocation once less than five minutes (or half its lifetime) remain, within the
//!   invocation's deadline. No session, no run: the record fails transiently
//!   (`Tenant.CredentialsUnavailable`), never "runs with the execution role".
//! - Secrets by reference: `ssm:/tenants/<tenant>/<name>` (a parameter, decrypted) or
//!   `secretsmanager:<secret-id>[:<json-key>]`. An `ssm:` reference outside this tenant's path is
//!   refused before any call; values are cached per environment in a bounded cache for
//!   `BACKEND_SECRETS_TTL_SECONDS`, so a rotation is seen within that time; a value never appears
//!   in a log line, an error or a `Debug` ([`Secret`]).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use aws_config::SdkConfig;
use aws_config::identity::IdentityCache;
use aws_config::sts::AssumeRoleProvider;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{
    ProvideCredentials, SharedCredentialsProvider, error::CredentialsError, future,
};

use crate::TenantId;

/// The session tag every data permission of the access role is scoped by.
pub const TENANT_TAG: &str = "tenant_id";

/// Most secrets one environment remembers.
const SECRETS_CAPACITY: usize = 256;

/// The settings of tenant-scoped access, from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSettings {
    /// `BACKEND_TENANT_ROLE_ARN`: the tenant access role.
    pub role_arn: String,
    /// `BACKEND_TENANT_SESSION_SECONDS` (default 900, 900 to 3,600): the session's lifetime. STS
    /// caps a session assumed with an assumed role's credentials (the execution role's, role
    /// chaining) at one hour.
    pub session: Duration,
    /// `BACKEND_SECRETS_TTL_SECONDS` (default 300, at least 1): how long a resolved secret is
    /// believed.
    pub secrets_ttl: Duration,
}

impl AccessSettings {
    /// Reads the settings through `lookup`: `None` when `BACKEND_TENANT_ROLE_ARN` is unset; an
    /// error naming the variable when it is blank or a number is out of range.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, String> {
        let Some(role_arn) = lookup("BACKEND_TENANT_ROLE_ARN") else {
            return Ok(None);
        };
        let role_arn = role_arn.trim().to_owned();
        if role_arn.is_empty() {
            return Err(
                "BACKEND_TENANT_ROLE_ARN is set but empty: name the tenant access role, \
                        or unset it (every tenant then shares the execution role's access)"
                    .into(),
            );
        }
        let seconds =
            |name: &str, default: u64, range: std::ops::RangeInclusive<u64>| {
                match lookup(
            name,
        ) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|n| range.contains(n))
                .ok_or_else(|| {
                    format!(
                        "{name}: expected a whole number of seconds from {} to {}, got {text:?}",
                        range.start(),
                        range.end()
                    )
                }),
        }
            };
        Ok(Some(Self {
            role_arn,
            session: Duration::from_secs(seconds(
                "BACKEND_TENANT_SESSION_SECONDS",
                900,
                900..=3_600,
            )?),
            secrets_ttl: Duration::from_secs(seconds(
                "BACKEND_SECRETS_TTL_SECONDS",
                300,
                1..=u64::MAX,
            )?),
        }))
    }
}

/// Whether credentials expiring at `expiry`, of a session lasting `lifetime`, must be renewed at
/// `now`: when less than five minutes, or less than half the lifetime, remain (the shorter).
pub fn needs_refresh(expiry: SystemTime, lifetime: Duration, now: SystemTime) -> bool {
    let margin = Duration::from_secs(300).min(lifetime / 2);
    expiry
        .duration_since(now)
        .map_or(true, |remaining| remaining < margin)
}

/// `tenant-<tenant>-<environment>` as an STS role session name: the characters STS allows
/// (`[\w+=,.@-]`), others made `-`, at most 64 — the tenant part cut, never the environment's.
pub fn session_name(tenant: &TenantId, environment: &str) -> String {
    let room = 64usize.saturating_sub("tenant-".len() + 1 + environment.len());
    let tenant: String = tenant
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(room)
        .collect();
    format!("tenant-{tenant}-{environment}")
}

/// The environment's tenant session and what is built on it.
pub struct TenantAccess {
    credentials: Arc<SessionCredentials>,
    config: SdkConfig,
    secrets: quick_cache::sync::Cache<String, (Secret, Instant)>,
    secrets_ttl: Duration,
}

impl std::fmt::Debug for TenantAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantAccess")
            .field("role_arn", &self.credentials.settings.role_arn)
            .field("tenant", &self.credentials.tenant.get())
            .finish_non_exhaustive()
    }
}

/// The tenant session's credentials: assumed once the environment is pinned, cached, renewed.
struct SessionCredentials {
    base: SdkConfig,
    settings: AccessSettings,
    environment: String,
    tenant: OnceLock<TenantId>,
    assumer: tokio::sync::OnceCell<AssumeRoleProvider>,
    cached: tokio::sync::Mutex<Option<Credentials>>,
}

impl SessionCredentials {
    /// The session's credentials, renewed when [`needs_refresh`] says so.
    async fn current(&self) -> Result<Credentials, CredentialsError> {
        let Some(tenant) = self.tenant.get() else {
            return Err(CredentialsError::not_loaded(
                "no tenant yet: the environment is not pinned",
            ));
        };
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref()
            && let Some(expiry) = credentials.expiry()
            && !needs_refresh(expiry, self.settings.session, SystemTime::now())
        {
            return Ok(credentials.clone());
        }
        let assumer = self
            .assumer
            .get_or_init(|| async {
                AssumeRoleProvider::builder(&self.settings.role_arn)
                    .session_name(session_name(tenant, &self.environment))
                    .session_length(self.settings.session)
                    .tags([(TENANT_TAG, tenant.as_str())])
                    .configure(&self.base)
                    .build()
                    .await
            })
            .await;
        let fresh = assumer.provide_credentials().await?;
        *cached = Some(fresh.clone());
        Ok(fresh)
    }
}

/// The provider handed to the SDK clients of the tenant's configuration.
#[derive(Clone)]
struct TenantProvider(Arc<SessionCredentials>);

impl std::fmt::Debug for TenantProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TenantProvider")
    }
}

impl ProvideCredentials for TenantProvider {
    fn provide_credentials<'a>(&'a self) -> future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        future::ProvideCredentials::new(self.0.current())
    }
}

/// Why a session could not be had (the record is not run).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no tenant session: {0}")]
pub struct SessionError(pub String);

impl TenantAccess {
    /// Access to `settings.role_arn` on top of `base` (the execution role's configuration: its
    /// region, endpoints and credentials, which only ever call STS).
    pub fn new(base: SdkConfig, settings: AccessSettings) -> Self {
        let environment = format!("{:08x}", fastrand::u32(..));
        let secrets_ttl = settings.secrets_ttl;
        let credentials = Arc::new(SessionCredentials {
            base: base.clone(),
            settings,
            environment,
            tenant: OnceLock::new(),
            assumer: tokio::sync::OnceCell::new(),
            cached: tokio::sync::Mutex::new(None),
        });
        let config = base
            .into_builder()
            .credentials_provider(SharedCredentialsProvider::new(TenantProvider(
                credentials.clone(),
            )))
            // The provider caches the session itself, and renews it before every run.
            .identity_cache(IdentityCache::no_cache())
            .build();
        Self {
            credentials,
            config,
            secrets: quick_cache::sync::Cache::new(SECRETS_CAPACITY),
            secrets_ttl,
        }
    }

    /// The SDK configuration of the tenant's session: what the handler and the idempotency store
    /// build their clients from. Before [`TenantAccess::ensure`] has pinned a tenant, its
    /// credentials fail.
    pub fn config(&self) -> &SdkConfig {
        &self.config
    }

    /// Makes sure `tenant`'s session is there and fresh enough for a run due at `deadline_ms`
    /// (epoch milliseconds): assumed on the first call, renewed when it must be, within the
    /// deadline. The environment serves one tenant: another tenant is refused.
    pub async fn ensure(&self, tenant: &TenantId, deadline_ms: i64) -> Result<(), SessionError> {
        let pinned = self.credentials.tenant.get_or_init(|| tenant.clone());
        if pinned != tenant {
            return Err(SessionError(
                "this environment's session belongs to another tenant".into(),
            ));
        }
        let left = deadline_ms - chrono::Utc::now().timestamp_millis();
        let left = Duration::from_millis(u64::try_from(left).unwrap_or(0));
        match tokio::time::timeout(left, self.credentials.current()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(SessionError(describe(&error))),
            Err(_) => Err(SessionError(
                "STS did not answer before the invocation's deadline".into(),
            )),
        }
    }

    /// Resolves a secret by reference for `tenant` (see the module), with the tenant's session.
    pub async fn secret(&self, tenant: &TenantId, reference: &str) -> Result<Secret, SecretError> {
        let parsed = Reference::parse(reference, tenant)?;
        if let Some((secret, at)) = self.secrets.get(reference)
            && at.elapsed() < self.secrets_ttl
        {
            return Ok(secret);
        }
        let value = match parsed {
            Reference::Parameter(name) => {
                let ssm = aws_sdk_ssm::Client::new(&self.config);
                let answer = ssm
                    .get_parameter()
                    .name(name)
                    .with_decryption(true)
                    .send()
                    .await
                    .map_err(|e| SecretError::Unavailable(service_error(reference, &e)))?;
                answer
                    .parameter
                    .and_then(|p| p.value)
                    .ok_or_else(|| SecretError::Unavailable(format!("{reference}: no value")))?
            }
            Reference::Secret { id, key } => {
                let secrets = aws_sdk_secretsmanager::Client::new(&self.config);
                let answer = secrets
                    .get_secret_value()
                    .secret_id(id)
                    .send()
                    .await
                    .map_err(|e| SecretError::Unavailable(service_error(reference, &e)))?;
                let text = answer.secret_string.ok_or_else(|| {
                    SecretError::Unavailable(format!("{reference}: not a string secret"))
                })?;
                match key {
                    None => text,
                    Some(key) => {
                        let document: serde_json::Value =
                            serde_json::from_str(&text).map_err(|_| {
                                SecretError::Malformed(format!(
                                    "{reference}: the secret is not a JSON object"
                                ))
                            })?;
                        match document.get(key) {
                            Some(serde_json::Value::String(value)) => value.clone(),
                            Some(other) => other.to_string(),
                            None => {
                                return Err(SecretError::Malformed(format!(
                                    "{reference}: the secret has no member {key:?}"
                                )));
                            }
                        }
                    }
                }
            }
        };
        let secret = Secret(Arc::from(value));
        self.secrets
            .insert(reference.to_owned(), (secret.clone(), Instant::now()));
        Ok(secret)
    }
}

/// A credentials error in one line: its message and its causes.
fn describe(error: &CredentialsError) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A service error for `reference`, without anything of the value.
fn service_error<E: std::error::Error>(reference: &str, error: &E) -> String {
    let mut text = format!("{reference}: {error}");
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A secret reference, checked for the tenant.
#[derive(Debug, PartialEq, Eq)]
enum Reference<'a> {
    /// `ssm:<name>`.
    Parameter(&'a str),
    /// `secretsmanager:<id>[:<json-key>]`.
    Secret { id: &'a str, key: Option<&'a str> },
}

impl<'a> Reference<'a> {
    fn parse(reference: &'a str, tenant: &TenantId) -> Result<Self, SecretError> {
        if let Some(name) = reference.strip_prefix("ssm:") {
            let own = format!("/tenants/{}/", tenant.as_str());
            let below = name.strip_prefix(&own).unwrap_or_default();
            if below.is_empty() || below.split('/').any(|part| part.is_empty() || part == "..") {
                return Err(SecretError::Refused(format!(
                    "{reference:?} is not a parameter under {own}: a tenant reads only its own"
                )));
            }
            return Ok(Reference::Parameter(name));
        }
        if let Some(rest) = reference.strip_prefix("secretsmanager:") {
            // An ARN holds colons itself: `arn:aws:secretsmanager:<region>:<account>:secret:<name>`
            // has seven parts; an eighth is the JSON key.
            let (id, key) = if rest.starts_with("arn:") {
                let parts: Vec<&str> = rest.splitn(8, ':').collect();
                if parts.len() == 8 {
                    let cut = rest.len() - parts[7].len() - 1;
                    (&rest[..cut], Some(parts[7]))
                } else {
                    (rest, None)
                }
            } else {
                match rest.split_once(':') {
                    Some((id, key)) => (id, Some(key)),
                    None => (rest, None),
                }
            };
            if id.is_empty() || key.is_some_and(str::is_empty) {
                return Err(SecretError::Malformed(format!(
                    "{reference:?}: expected secretsmanager:<secret-id>[:<json-key>]"
                )));
            }
            return Ok(Reference::Secret { id, key });
        }
        // Not echoed: a value passed by mistake must not reach an error.
        Err(SecretError::Malformed(
            "a secret reference starts with ssm:/tenants/<tenant>/ or secretsmanager:".into(),
        ))
    }
}

/// A resolved secret. Its `Debug` and `Display` never show the value: read it with
/// [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    /// The value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why a secret reference was not resolved. No variant holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The reference names another tenant's parameter: refused before any call.
    #[error("secret reference refused: {0}")]
    Refused(String),
    /// The reference, or the secret's shape, is not one the guard reads.
    #[error("secret reference malformed: {0}")]
    Malformed(String),
    /// The service could not be asked, or had no such value (transient for the record).
    #[error("secret unavailable: {0}")]
    Unavailable(String),
    /// This function runs without tenant-scoped access (`BACKEND_TENANT_ROLE_ARN` unset).
    #[error("secrets by reference need BACKEND_TENANT_ROLE_ARN (tenant-scoped access)")]
    NoAccess,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap()
    }

    #[test]
    fn settings_fail_closed_and_name_the_variable() {
        let read = |vars: &[(&str, &str)]| {
            let vars: std::collections::HashMap<String, String> = vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            AccessSettings::from_lookup(|name| vars.get(name).cloned())
        };
        assert_eq!(read(&[]), Ok(None));
        let on = read(&[("BACKEND_TENANT_ROLE_ARN", "arn:aws:iam::1:role/t")])
            .unwrap()
            .unwrap();
        assert_eq!(on.session, Duration::from_secs(900));
        assert_eq!(on.secrets_ttl, Duration::from_secs(300));
        assert!(
            read(&[("BACKEND_TENANT_ROLE_ARN", " ")])
                .unwrap_err()
                .contains("BACKEND_TENANT_ROLE_ARN")
        );
        for (name, value) in [
            ("BACKEND_TENANT_SESSION_SECONDS", "899"),
            ("BACKEND_TENANT_SESSION_SECONDS", "3601"),
            ("BACKEND_SECRETS_TTL_SECONDS", "0"),
            ("BACKEND_SECRETS_TTL_SECONDS", "soon"),
        ] {
            let error = read(&[("BACKEND_TENANT_ROLE_ARN", "arn:r"), (name, value)]).unwrap_err();
            assert!(error.starts_with(name), "{error}");
        }
    }

    #[test]
    fn a_session_is_renewed_before_it_runs_out() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let lifetime = Duration::from_secs(900);
        assert!(!needs_refresh(
            now + Duration::from_secs(600),
            lifetime,
            now
        ));
        assert!(needs_refresh(now + Duration::from_secs(299), lifetime, now));
        assert!(needs_refresh(now - Duration::from_secs(1), lifetime, now));
        // A long session: five minutes before its end.
        let long = Duration::from_secs(43_200);
        assert!(!needs_refresh(now + Duration::from_secs(301), long, now));
        assert!(needs_refresh(now + Duration::from_secs(299), long, now));
    }

    #[test]
    fn session_names_carry_the_tenant_within_sts_rules() {
        assert_eq!(session_name(&acme(), "0a1b2c3d"), "tenant-acme-0a1b2c3d");
        let odd = TenantId::parse("a b:c+d").unwrap();
        assert_eq!(session_name(&odd, "e"), "tenant-a-b-c+d-e");
        let long = TenantId::parse(&"x".repeat(100)).unwrap();
        let name = session_name(&long, "0a1b2c3d");
        assert_eq!(name.len(), 64);
        assert!(
            name.ends_with("-0a1b2c3d"),
            "the environment is kept: {name}"
        );
    }

    #[test]
    fn references_to_another_tenants_path_are_refused() {
        assert_eq!(
            Reference::parse("ssm:/tenants/acme/db-password", &acme()),
            Ok(Reference::Parameter("/tenants/acme/db-password"))
        );
        for other in [
            "ssm:/tenants/globex/db-password",
            "ssm:/tenants/acme",
            "ssm:/tenants/acme/",
            "ssm:/tenants/acme/../globex/x",
            "ssm:/tenants/acmex/x",
            "ssm:tenants/acme/x",
        ] {
            assert!(
                matches!(
                    Reference::parse(other, &acme()),
                    Err(SecretError::Refused(_))
                ),
                "{other}"
            );
        }
        assert_eq!(
            Reference::parse("secretsmanager:acme/api:token", &acme()),
            Ok(Reference::Secret {
                id: "acme/api",
                key: Some("token")
            })
        );
        let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:acme-api-AbCdEf";
        assert_eq!(
            Reference::parse(&format!("secretsmanager:{arn}:token"), &acme()),
            Ok(Reference::Secret {
                id: arn,
                key: Some("token")
            })
        );
        assert_eq!(
            Reference::parse(&format!("secretsmanager:{arn}"), &acme()),
            Ok(Reference::Secret { id: arn, key: None })
        );
        assert!(matches!(
            Reference::parse("vault:x", &acme()),
            Err(SecretError::Malformed(_))
        ));
    }

    #[test]
    fn a_secret_never_shows_its_value() {
        let secret = Secret(Arc::from("hunter2"));
        assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
        assert_eq!(secret.expose(), "hunter2");
    }
}
