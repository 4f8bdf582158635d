//! `local-lambda run CONFIG`: the stand-in as a developer keeps it running — the Invoke API, the
//! functions of a configuration file, and its event source mappings polling their sources.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::Config;
use crate::esm::{Clients, MappingLog, Mappings};
use crate::service::Service;

/// The variable that tells functions where the Invoke API is, so that one function can invoke
/// another here (the AWS SDKs read it); a function's own environment may set it otherwise.
pub const LAMBDA_ENDPOINT_VARIABLE: &str = "AWS_ENDPOINT_URL_LAMBDA";

/// A running stand-in.
pub struct Running {
    /// The Invoke API's address.
    pub address: SocketAddr,
    /// The stand-in.
    pub service: Arc<Service>,
    mappings: Mappings,
    server: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Binds the Invoke API, starts the stand-in and the mappings, polling with clients from the
    /// SDK's environment (or the file's `[aws]` section).
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        let clients = Clients::load(config.endpoint_url.as_deref(), config.region.as_deref()).await;
        Self::start_with(config, clients).await
    }

    /// [`Running::start`] with given clients.
    pub async fn start_with(config: Config, clients: Clients) -> anyhow::Result<Self> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let address = listener.local_addr()?;
        let mut settings = config.settings;
        settings.variables.insert(
            0,
            (LAMBDA_ENDPOINT_VARIABLE.into(), format!("http://{address}")),
        );
        let service = Service::new(settings)?;
        let (_, server) = crate::api::serve_on(service.clone(), listener)?;
        let log = Arc::new(MappingLog::open(config.mapping_log.as_ref())?);
        let mappings = Mappings::start(service.clone(), config.mappings, clients, log);
        Ok(Self {
            address,
            service,
            mappings,
            server,
        })
    }

    /// The mapping log.
    pub fn mapping_log(&self) -> Arc<MappingLog> {
        self.mappings.log().clone()
    }

    /// Stops: the mappings finish their batches in flight, the async queue drains, the
    /// environments are stopped.
    pub async fn stop(self) {
        self.mappings.stop().await;
        self.service.drain().await;
        self.server.abort();
        self.service.pool().stop_all();
    }
}
