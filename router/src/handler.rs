//! The router's handler: recognises the event and decodes it with its source's module
//! (`crate::source`), routes the records through the engine (`crate::engine`) and answers in the
//! shape that source's event source mapping expects, with one metrics document per batch (more
//! when it made over 100 Invokes: `crate::metrics`). The
//! Lambda runtime loop and `router replay` both call [`Router::handle`].

use serde_json::Value;
use shared::Source;
use shared::jwks::KeyStore;
use shared::token::TokenVerifier;

use crate::backend::Backend;
use crate::config::{Config, Validation};
use crate::engine::{self, BatchStats, Identity, RouteContext};
use crate::invocation::{BatchError, InvocationInfo};
use crate::record::Ordering;
use crate::registry::{Directory, Fault, Fetched, Registry};
use crate::report::BatchReport;
use crate::source::{self, Batch};

/// Why the router cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The JWKS named by `ROUTER_JWKS` cannot be loaded.
    #[error("ROUTER_JWKS: {0}")]
    Jwks(#[from] shared::jwks::JwksError),
}

/// The router: configuration, identity verification and the backend seam, built once per process.
pub struct Router<B> {
    config: Config,
    identity: Identity,
    backend: B,
    metrics: Option<MetricsSink>,
}

/// The registry's reader before [`Router::with_registry`]: every read fails.
struct NoDirectory;

impl Directory for NoDirectory {
    fn batch_get<'a>(
        &'a self,
        _: &'a str,
        _: &'a [shared::TenantId],
    ) -> futures::future::BoxFuture<'a, Result<Fetched, Fault>> {
        Box::pin(async {
            Err(Fault {
                retryable: false,
                message: "the router was started without a client for it (internal error)".into(),
            })
        })
    }
}

/// Where a batch's EMF document goes (stdout inside Lambda, stderr for `router replay`).
pub type MetricsSink = Box<dyn Fn(&str) + Send + Sync>;

impl<B: Backend> Router<B> {
    /// Builds the router. File and inline JWKS are loaded here, so a bad one stops the start.
    pub fn new(config: Config, backend: B) -> Result<Self, StartError> {
        let verifier = match &config.jwt {
            Some(jwt) => {
                let keys = KeyStore::new(jwt.jwks.clone(), jwt.key_store.clone())?;
                for problem in keys.skipped() {
                    tracing::warn!(message = "JWKS key skipped", problem = problem.as_str());
                }
                Some(TokenVerifier::new(jwt.policy.clone(), keys))
            }
            None => None,
        };
        if config
            .validation
            .values()
            .any(|v| *v == Validation::Trusted)
        {
            tracing::warn!(
                message = "ROUTER_VALIDATION names trusted sources: their tenant ids are NOT \
                           verified; only the tenant-id pattern and ROUTER_TRUSTED_TENANTS apply",
                allow_list = config.trusted_tenants.is_some(),
            );
        }
        // Until `with_registry` gives it a client, a configured registry answers nothing, so
        // no record is admitted on a registry that was never asked.
        let registry = config
            .registry
            .clone()
            .map(|settings| Registry::new(settings, Box::new(NoDirectory)));
        let identity = Identity {
            verifier,
            trusted_tenants: config.trusted_tenants.clone(),
            registry,
        };
        Ok(Self {
            config,
            identity,
            backend,
            metrics: None,
        })
    }

    /// Reads the tenant registry (`ROUTER_TENANT_REGISTRY_TABLE`) through `directory`; without
    /// a registry configured, `directory` is not used.
    pub fn with_registry(mut self, directory: Box<dyn Directory>) -> Self {
        if let Some(settings) = self.config.registry.clone() {
            self.identity.registry = Some(Registry::new(settings, directory));
        }
        self
    }

    /// Sends one EMF metrics document per batch to `sink`.
    pub fn with_metrics(mut self, sink: MetricsSink) -> Self {
        self.metrics = Some(sink);
        self
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The backend seam (tests inspect their fakes through it).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// Handles one event and returns the response its event source mapping expects. For a direct
    /// EventBridge event, an event not delivered (failed, or rejected and not quarantined) is an
    /// error, so that Lambda's async retries and the on-failure destination keep it.
    /// The buffered log lines ([`shared::telemetry::init_buffered`]) are written before it returns.
    pub async fn handle(&self, event: &str, info: &InvocationInfo) -> Result<Value, BatchError> {
        let answer = self.handle_event(event, info).await;
        shared::telemetry::flush();
        answer
    }

    async fn handle_event(&self, event: &str, info: &InvocationInfo) -> Result<Value, BatchError> {
        let report = self.route_event(event, info).await?;
        // A direct EventBridge event has no batch response to report it in: one that was not
        // delivered — failed, or rejected and not in the quarantine queue — fails the invocation,
        // so Lambda's async retries and the on-failure destination keep it.
        if report.source == Some(Source::Eventbridge)
            && let Some(outcome) = report.outcomes.first()
            && outcome.is_reported()
        {
            return Err(BatchError::RetryLater(format!(
                "event {}: {} {}: {}",
                report.ids[0],
                outcome.name(),
                outcome.reason().unwrap_or_default(),
                outcome.detail().unwrap_or_default()
            )));
        }
        Ok(report.response)
    }

    /// Handles one event and returns every record's outcome along with the response.
    pub async fn route_event(
        &self,
        event: &str,
        info: &InvocationInfo,
    ) -> Result<BatchReport, BatchError> {
        let started = std::time::Instant::now();
        let Some(batch) = source::read(event, &self.config, info)? else {
            return Ok(BatchReport::empty(started.elapsed()));
        };
        let Batch {
            source,
            ordering,
            records,
        } = batch;
        let stats = BatchStats::default();
        let fifo = source == Source::Sqs && ordering == Ordering::Lanes;
        let invocation = self.config.invocation.for_batch(source, fifo);
        let context = RouteContext {
            backend: &self.backend,
            identity: &self.identity,
            config: &self.config,
            info,
            source,
            ordering,
            invocation,
            stats: &stats,
        };
        let (metas, outcomes) = engine::route(records, &context).await;
        let response = source::response(source, &metas, &outcomes)?;
        let report = BatchReport {
            source: Some(source),
            invocation: Some(invocation),
            tenants: metas
                .iter()
                .map(|m| m.claimed_tenant.get().cloned())
                .collect(),
            ids: metas.into_iter().map(|m| m.id).collect(),
            outcomes,
            response,
            attempts: stats.attempts(),
            retries: stats.retries(),
            latencies_ms: stats.latencies_ms(),
            duration: started.elapsed(),
        };
        tracing::info!(
            message = "batch routed",
            source = source.as_str(),
            ordering = ?ordering,
            invocation = invocation.as_str(),
            records = report.outcomes.len(),
            invoked = report.count("invoked"),
            rejected = report.count("rejected"),
            failed = report.count("failed"),
            reported = report.outcomes.iter().filter(|o| o.is_reported()).count(),
            duration_ms = report.duration.as_millis() as u64,
        );
        if let Some(sink) = &self.metrics {
            for document in crate::metrics::batch_documents(
                &report,
                &self.config.metrics_namespace,
                info.now_ms,
            ) {
                sink(&document.to_string());
            }
        }
        Ok(report)
    }
}
