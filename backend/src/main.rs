//! The `backend` binary: the tenant-isolated function. The Lambda runtime loop runs the to-do
//! enrichment behind `shared::function`'s tenant guard.

use std::path::PathBuf;
use std::sync::OnceLock;

use backend::{CONFIG_DIR_VARIABLE, TenantConfig, enrich};
use shared::function::TenantContext;
use shared::{Envelope, TenantId};

/// The tenant's configuration, loaded once per execution environment (which serves one tenant).
static CONFIG: OnceLock<(TenantId, TenantConfig)> = OnceLock::new();

fn config_for(tenant: &TenantId) -> Result<&'static TenantConfig, String> {
    if let Some((pinned, config)) = CONFIG.get() {
        // The guard pins the environment, so this cannot differ; check anyway, never serve
        // another tenant's rules.
        return if pinned == tenant {
            Ok(config)
        } else {
            Err("tenant configuration belongs to another tenant".into())
        };
    }
    let dir = std::env::var_os(CONFIG_DIR_VARIABLE).map(PathBuf::from);
    let config = TenantConfig::load(dir.as_deref(), tenant)?;
    tracing::info!(
        message = "tenant configuration loaded",
        tenant_id = tenant.as_str()
    );
    let (_, config) = CONFIG.get_or_init(|| (tenant.clone(), config));
    Ok(config)
}

async fn handle(context: TenantContext, envelope: Envelope) -> Result<serde_json::Value, String> {
    let config = config_for(&context.tenant_id)?;
    let mut item = enrich(config, &context, &envelope).map_err(|e| e.to_string())?;
    if let Some(reference) = &config.signing_key {
        // Resolved with the tenant's own session, cached for BACKEND_SECRETS_TTL_SECONDS.
        let key = context.secret(reference).await.map_err(|e| e.to_string())?;
        item["signedWith"] = serde_json::Value::String(backend::fingerprint(key.expose()));
    }
    Ok(item)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::telemetry::init_buffered("backend");
    let result = shared::function::run(handle).await;
    shared::telemetry::flush();
    result
}
