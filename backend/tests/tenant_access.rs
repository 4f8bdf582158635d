//! Tenant-scoped access against moto's STS, SSM and Secrets Manager (issue 24 §1–2): the
//! handler's AWS configuration is the tenant's own session of the access role, assumed with the
//! `tenant_id` session tag (GetCallerIdentity answers the assumed role's session, named for the
//! tenant), cached in the environment; no session means nothing runs (a transient
//! `Tenant.CredentialsUnavailable`); another tenant can never reach the session (the environment
//! fails closed first); secrets by reference resolve with the session, another tenant's path is
//! refused before any call, a rotation is seen after the TTL, and no value reaches a log line.
//! moto does not evaluate IAM conditions: what the access role's policies allow is AWS's to
//! enforce, and their shape is tested in the CDK library.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::SdkConfig;
use serde_json::{Value, json};
use shared::Envelope;
use shared::function::access::{AccessSettings, SecretError, TenantAccess};
use shared::function::{EnvironmentGuard, InvokeError, TenantContext};
use testkit::Moto;

const ROLE: &str = "arn:aws:iam::123456789012:role/tenant-access";

/// The execution role's configuration: static test credentials at `endpoint`.
async fn execution_role(endpoint: &str) -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(
                aws_credential_types::Credentials::new(
                    "execution",
                    "execution-secret",
                    None,
                    None,
                    "test",
                ),
            ),
        )
        .endpoint_url(endpoint)
        .load()
        .await
}

async fn access(endpoint: &str, secrets_ttl: Duration) -> Arc<TenantAccess> {
    Arc::new(TenantAccess::new(
        execution_role(endpoint).await,
        AccessSettings {
            role_arn: ROLE.into(),
            session: Duration::from_secs(900),
            secrets_ttl,
        },
    ))
}

fn envelope(tenant: &str, id: &str) -> String {
    testkit::envelope(tenant, id, json!({"n": 1})).to_string()
}

async fn put_parameter(base: &SdkConfig, name: &str, value: &str) {
    aws_sdk_ssm::Client::new(base)
        .put_parameter()
        .name(name)
        .value(value)
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .overwrite(true)
        .send()
        .await
        .unwrap();
}

/// What the handler saw: who it was to STS, and a secret it resolved (its length only).
async fn who_am_i(context: TenantContext, _: Envelope) -> Result<Value, String> {
    let aws = context.aws().ok_or("no tenant session")?;
    let sts = aws_sdk_sts::Client::new(aws);
    let who = sts
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let credentials = aws_credential_types::provider::ProvideCredentials::provide_credentials(
        &aws.credentials_provider().unwrap(),
    )
    .await
    .map_err(|e| e.to_string())?;
    let secret = context
        .secret("ssm:/tenants/acme/db-password")
        .await
        .map_err(|e| e.to_string())?;
    let refused = context.secret("ssm:/tenants/globex/db-password").await;
    Ok(json!({
        "arn": who.arn(),
        "accessKey": credentials.access_key_id(),
        "secretMatches": secret.expose() == "acme-pass-1",
        "otherRefused": matches!(refused, Err(SecretError::Refused(_))),
    }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_works_with_the_tenants_own_session_only() {
    let moto = Moto::start();
    let base = execution_role(moto.endpoint()).await;
    put_parameter(&base, "/tenants/acme/db-password", "acme-pass-1").await;
    put_parameter(&base, "/tenants/globex/db-password", "globex-pass").await;
    let guard = EnvironmentGuard::default()
        .with_access(access(moto.endpoint(), Duration::from_secs(300)).await);
    let first = guard
        .invoke(Some("acme"), "r1", &envelope("acme", "m1"), who_am_i)
        .await
        .unwrap();
    let seen = &first["result"];
    let arn = seen["arn"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:sts::123456789012:assumed-role/tenant-access/tenant-acme-"),
        "the tenant's session, named for the tenant: {arn}"
    );
    assert_ne!(seen["accessKey"], "execution", "never the execution role's");
    assert_eq!(seen["secretMatches"], true);
    assert_eq!(seen["otherRefused"], true);
    // The session is kept for the environment.
    let second = guard
        .invoke(Some("acme"), "r2", &envelope("acme", "m2"), who_am_i)
        .await
        .unwrap();
    assert_eq!(second["result"]["accessKey"], seen["accessKey"]);
    // Another tenant never reaches it: the environment fails closed first.
    let other = guard
        .invoke(Some("globex"), "r3", &envelope("globex", "m3"), who_am_i)
        .await;
    assert_eq!(
        other.unwrap_err().error_type(),
        "Tenant.EnvironmentFailedClosed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_is_seen_after_the_ttl() {
    let moto = Moto::start();
    let base = execution_role(moto.endpoint()).await;
    put_parameter(&base, "/tenants/acme/api-key", "key-1").await;
    let access = access(moto.endpoint(), Duration::from_secs(1)).await;
    let tenant = shared::TenantId::parse("acme").unwrap();
    access
        .ensure(&tenant, chrono::Utc::now().timestamp_millis() + 30_000)
        .await
        .unwrap();
    let read = || access.secret(&tenant, "ssm:/tenants/acme/api-key");
    assert_eq!(read().await.unwrap().expose(), "key-1");
    put_parameter(&base, "/tenants/acme/api-key", "key-2").await;
    assert_eq!(
        read().await.unwrap().expose(),
        "key-1",
        "cached within the TTL"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(
        read().await.unwrap().expose(),
        "key-2",
        "seen after the TTL"
    );
    // Secrets Manager, whole and by JSON key.
    let secrets = aws_sdk_secretsmanager::Client::new(&base);
    secrets
        .create_secret()
        .name("acme/api")
        .secret_string(r#"{"token":"t-1","port":5432}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(
        access
            .secret(&tenant, "secretsmanager:acme/api:token")
            .await
            .unwrap()
            .expose(),
        "t-1"
    );
    assert_eq!(
        access
            .secret(&tenant, "secretsmanager:acme/api:port")
            .await
            .unwrap()
            .expose(),
        "5432"
    );
    assert!(matches!(
        access
            .secret(&tenant, "secretsmanager:acme/api:missing")
            .await,
        Err(SecretError::Malformed(_))
    ));
}

/// No session, no run: STS cannot be reached, so the record fails transiently and the handler
/// never runs (with the execution role's credentials or any other).
#[tokio::test]
async fn without_a_session_nothing_runs() {
    // Nothing listens there.
    let guard = EnvironmentGuard::default()
        .with_access(access("http://127.0.0.1:1", Duration::from_secs(300)).await);
    let ran = AtomicBool::new(false);
    let error = guard
        .invoke(Some("acme"), "r1", &envelope("acme", "m1"), |_, _| async {
            ran.store(true, Ordering::SeqCst);
            Ok::<_, String>(Value::Null)
        })
        .await
        .unwrap_err();
    assert!(
        matches!(error, InvokeError::CredentialsUnavailable(_)),
        "{error:?}"
    );
    assert_eq!(error.error_type(), "Tenant.CredentialsUnavailable");
    assert!(
        !shared::answer::is_guard_refusal(error.error_type()),
        "transient"
    );
    assert!(!ran.load(Ordering::SeqCst));
    // A reference to another tenant's path is refused before any call: the answer is a refusal,
    // not an unreachable service.
    let tenant = shared::TenantId::parse("acme").unwrap();
    let access = access("http://127.0.0.1:1", Duration::from_secs(300)).await;
    assert!(matches!(
        access.secret(&tenant, "ssm:/tenants/globex/x").await,
        Err(SecretError::Refused(_))
    ));
}

/// A tenant id holding `/` cannot have tenant-scoped access: `acme`'s prefix grants would cover
/// `acme/x`'s objects and parameters.
#[tokio::test]
async fn a_tenant_id_with_a_slash_is_refused_with_tenant_scoped_access() {
    let scoped = EnvironmentGuard::default()
        .with_access(access("http://127.0.0.1:1", Duration::from_secs(300)).await);
    let error = scoped
        .invoke(
            Some("acme/x"),
            "r1",
            &envelope("acme/x", "m1"),
            |_, _| async { Ok::<_, String>(Value::Null) },
        )
        .await
        .unwrap_err();
    assert_eq!(error.error_type(), "Tenant.Invalid");
    assert!(scoped.tenant().is_none(), "not pinned");
    // Without it, such a tenant id is an ordinary one.
    let plain = EnvironmentGuard::default();
    assert!(
        plain
            .invoke(
                Some("acme/x"),
                "r1",
                &envelope("acme/x", "m1"),
                |_, _| async { Ok::<_, String>(Value::Null) }
            )
            .await
            .is_ok()
    );
}

/// Every line the guard (and the SDK, at the most the production filter lets through) writes
/// while a secret is resolved and used, at TRACE: none holds the value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_value_reaches_a_log_line() {
    use tracing_subscriber::layer::SubscriberExt;
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::registry()
        .with(shared::telemetry::filter_for("trace"))
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(move || writer.clone()),
        );
    let _guard = tracing::subscriber::set_default(subscriber);
    let moto = Moto::start();
    let base = execution_role(moto.endpoint()).await;
    put_parameter(&base, "/tenants/acme/db-password", "acme-pass-1").await;
    let guard = EnvironmentGuard::default()
        .with_access(access(moto.endpoint(), Duration::from_secs(300)).await);
    let answer = guard
        .invoke(
            Some("acme"),
            "r1",
            &envelope("acme", "m1"),
            |context, _| async move {
                let secret = context
                    .secret("ssm:/tenants/acme/db-password")
                    .await
                    .map_err(|e| e.to_string())?;
                tracing::info!(secret = ?secret, "resolved");
                // A handler failing with the secret's Debug in its error.
                Err::<Value, _>(format!("downstream refused {secret:?}"))
            },
        )
        .await
        .unwrap_err();
    assert!(!answer.to_string().contains("acme-pass-1"));
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("resolved"), "the lines were captured");
    assert!(!text.contains("acme-pass-1"), "a secret value in the log");
}

/// The session is renewed before it runs out: with a one-second session (below what the
/// settings accept, built here directly), a run after it is half gone gets new credentials, and
/// the handler's clients sign with them. (Reuse while fresh: the test above.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_is_renewed_before_it_runs_out() {
    let moto = Moto::start();
    let base = execution_role(moto.endpoint()).await;
    put_parameter(&base, "/tenants/acme/db-password", "acme-pass-1").await;
    let access = Arc::new(TenantAccess::new(
        base,
        AccessSettings {
            role_arn: ROLE.into(),
            session: Duration::from_secs(1),
            secrets_ttl: Duration::from_secs(300),
        },
    ));
    let guard = EnvironmentGuard::default().with_access(access);
    let first = guard
        .invoke(Some("acme"), "r1", &envelope("acme", "m1"), who_am_i)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let renewed = guard
        .invoke(Some("acme"), "r3", &envelope("acme", "m3"), who_am_i)
        .await
        .unwrap();
    assert_ne!(
        renewed["result"]["accessKey"], first["result"]["accessKey"],
        "renewed once it ran low"
    );
    assert!(
        renewed["result"]["arn"]
            .as_str()
            .unwrap()
            .contains("assumed-role/tenant-access/tenant-acme-")
    );
}
