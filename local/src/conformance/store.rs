//! The durable idempotency store the conformance kit hands every environment it starts: a
//! DynamoDB table of its own in the contract's layout (partition key `id`, a string; TTL on
//! `expiration`) on a DynamoDB API server. The server is the caller's when
//! [`super::Options::dynamodb_endpoint`] names one (the CLI takes `AWS_ENDPOINT_URL_DYNAMODB`, else
//! `AWS_ENDPOINT_URL`); otherwise it is moto's server (`moto_server`: the one
//! `scripts/fetch-moto.sh` installs under `target/moto/`, else the first on `PATH`), started here
//! on a free port of 127.0.0.1 and stopped when the kit is done.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};

use crate::esm::mapping::sdk_error;

/// The region of the kit's environments and of its own client.
pub(super) const REGION: &str = "us-east-1";

/// The credentials every environment gets: a local server takes any.
const CREDENTIALS: &str = "conformance";

/// Longest moto's server may take to listen (it imports every service it serves first: a few
/// seconds, more on a busy machine).
const MOTO_START_LIMIT: Duration = Duration::from_secs(60);

/// The table, its server and a client of it.
pub(super) struct Store {
    endpoint: String,
    table: String,
    client: aws_sdk_dynamodb::Client,
    /// moto's server when the kit started it (stopped on drop, the table with it); `None` for the
    /// caller's server, from which [`Store::close`] removes the table.
    moto: Option<MotoServer>,
}

impl Store {
    /// Creates the table on `endpoint`, or on moto's server started for it when `None`.
    pub(super) async fn open(endpoint: Option<&str>) -> anyhow::Result<Store> {
        let (endpoint, moto) = match endpoint {
            Some(endpoint) => (endpoint.to_owned(), None),
            None => {
                let moto = MotoServer::start().await?;
                (moto.endpoint.clone(), Some(moto))
            }
        };
        let client = aws_sdk_dynamodb::Client::from_conf(
            aws_sdk_dynamodb::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new(REGION))
                .credentials_provider(Credentials::new(
                    CREDENTIALS,
                    CREDENTIALS,
                    None,
                    None,
                    "conformance",
                ))
                .endpoint_url(&endpoint)
                .build(),
        );
        // A name of its own: the caller's server may hold other runs' tables.
        let table = format!("conformance-idempotency-{}", uuid::Uuid::new_v4().simple());
        let store = Store {
            endpoint,
            table,
            client,
            moto,
        };
        store.create_table().await?;
        Ok(store)
    }

    async fn create_table(&self) -> anyhow::Result<()> {
        let whose = match self.moto {
            Some(_) => "moto's server, started for this run",
            None => "AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL",
        };
        let failed = |what: &str, e: String| {
            anyhow::anyhow!(
                "cannot {what} the idempotency table {} on {} ({whose}): {e}",
                self.table,
                self.endpoint
            )
        };
        self.client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(
                AttributeDefinition::builder()
                    .attribute_name("id")
                    .attribute_type(ScalarAttributeType::S)
                    .build()?,
            )
            .key_schema(
                KeySchemaElement::builder()
                    .attribute_name("id")
                    .key_type(KeyType::Hash)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| failed("create", sdk_error(e)))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name("expiration")
                    .enabled(true)
                    .build()?,
            )
            .send()
            .await
            .map_err(|e| failed("set the TTL of", sdk_error(e)))?;
        Ok(())
    }

    /// What every environment is started with to use the table: its name, the server, the region
    /// and (dummy) credentials.
    pub(super) fn variables(&self) -> Vec<(String, String)> {
        [
            ("BACKEND_IDEMPOTENCY_TABLE", self.table.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", CREDENTIALS),
            ("AWS_SECRET_ACCESS_KEY", CREDENTIALS),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Writes a `COMPLETED` item for the record id `id` whose `data` is not JSON: a stored result
    /// that cannot be read back.
    pub(super) async fn plant_unreadable(&self, id: &str) -> anyhow::Result<()> {
        let expiration = chrono::Utc::now().timestamp() + 3_600;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("id", AttributeValue::S(id.to_owned()))
            .item("status", AttributeValue::S("COMPLETED".into()))
            .item("data", AttributeValue::S("{not JSON".into()))
            .item("expiration", AttributeValue::N(expiration.to_string()))
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot write to {}: {}", self.table, sdk_error(e)))?;
        Ok(())
    }

    /// Removes the table from the caller's server (moto's goes with its process).
    pub(super) async fn close(self) {
        if self.moto.is_none()
            && let Err(e) = self
                .client
                .delete_table()
                .table_name(&self.table)
                .send()
                .await
        {
            tracing::warn!(
                message = "the idempotency table could not be removed",
                table = self.table,
                error = sdk_error(e)
            );
        }
    }
}

/// moto's server, a child process killed on drop; its output goes to a file beside the system's
/// temporary files (moto logs every request, which an unread pipe would block on), removed on
/// drop, read when it fails to start.
struct MotoServer {
    child: Child,
    log: PathBuf,
    endpoint: String,
}

impl MotoServer {
    async fn start() -> anyhow::Result<MotoServer> {
        let Some(executable) = moto_executable() else {
            anyhow::bail!(
                "no DynamoDB API server for the idempotency table: moto's server (moto_server) is \
                 neither in target/moto/ nor on PATH. Install it with scripts/fetch-moto.sh (or \
                 `pip install 'moto[server,dynamodb]'`), or set AWS_ENDPOINT_URL_DYNAMODB (or \
                 AWS_ENDPOINT_URL) to a DynamoDB API server of your own"
            );
        };
        // The port is free when asked, not necessarily when moto binds it: try a few.
        let mut last = None;
        for _ in 0..3 {
            match Self::start_on_free_port(&executable).await {
                Ok(server) => return Ok(server),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one attempt"))
    }

    async fn start_on_free_port(executable: &Path) -> anyhow::Result<MotoServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::env::temp_dir().join(format!(
            "local-lambda-moto-{}-{port}.log",
            std::process::id()
        ));
        let output = std::fs::File::create(&log)?;
        let child = Command::new(executable)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(output.try_clone()?)
            .stderr(output)
            .spawn()
            .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", executable.display()))?;
        let mut server = MotoServer {
            child,
            log,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait()? {
                let output = std::fs::read_to_string(&server.log).unwrap_or_default();
                anyhow::bail!(
                    "{} ended ({status}) before it listened: {}",
                    executable.display(),
                    output.trim()
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                return Ok(server);
            }
            if started.elapsed() > MOTO_START_LIMIT {
                anyhow::bail!(
                    "{} did not listen on 127.0.0.1:{port} within {MOTO_START_LIMIT:?}",
                    executable.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `moto_server`: under `target/moto/` (where `scripts/fetch-moto.sh` puts the pinned version)
/// beside this executable or this workspace, else the first on `PATH`.
fn moto_executable() -> Option<PathBuf> {
    const INSTALLED: &str = "moto/venv/bin/moto_server";
    // `target/debug/local-lambda` and `target/debug/deps/<test>` both have `target/` above them.
    let beside = std::env::current_exe().ok().into_iter().flat_map(|exe| {
        exe.ancestors()
            .skip(1)
            .map(|dir| dir.join(INSTALLED))
            .collect::<Vec<_>>()
    });
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target")
        .join(INSTALLED);
    let path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("moto_server"));
    beside
        .chain(std::iter::once(workspace))
        .chain(path)
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}
