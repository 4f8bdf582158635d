//! The main job, locally, with no AWS account: replays every recorded SQS fixture through the
//! router's real handler and the real aws-sdk-lambda client into a local Invoke API that this
//! command starts on 127.0.0.1 and that answers every Invoke with 202, then prints each batch
//! response and what reached the Invoke API per tenant.
//!
//! Run: `cargo run -p cross-crate-tests --bin demo`.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use cross_crate_tests::{fixtures_dir, router_env};
use router::handler::InvocationInfo;
use router::{AwsBackend, Config, Router};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path_regex(r"^/2015-03-31/functions/[^/]+/invocations$"))
        .respond_with(ResponseTemplate::new(202))
        .mount(&server)
        .await;
    println!("local Invoke API on {} (answers 202)", server.uri());

    let env = router_env();
    let config = Config::from_lookup(|name| env.get(name).cloned())?;
    let lambda = aws_sdk_lambda::Client::from_conf(
        aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("local", "local", None, None, "demo"))
            .endpoint_url(server.uri())
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let backend = AwsBackend::new(lambda, config.backend_function.clone(), None);
    let router = Router::new(config, backend)?;

    let mut files: Vec<_> = std::fs::read_dir(fixtures_dir().join("sqs"))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let event = std::fs::read_to_string(file)?;
        let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(500));
        let report = router.route_event(&event, &info).await?;
        for outcome in &report.outcomes {
            let key = match outcome.reason() {
                Some(reason) => format!("{} ({reason})", outcome.name()),
                None => outcome.name().to_owned(),
            };
            *outcomes.entry(key).or_default() += 1;
        }
        println!(
            "{:<40} {}",
            file.file_name().unwrap_or_default().to_string_lossy(),
            report.response
        );
    }

    let mut per_tenant: BTreeMap<String, usize> = BTreeMap::new();
    for request in server.received_requests().await.unwrap_or_default() {
        let tenant = request
            .headers
            .get("x-amz-tenant-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("(none)")
            .to_owned();
        *per_tenant.entry(tenant).or_default() += 1;
    }
    println!("\nInvokes received (InvocationType=Event) per X-Amz-Tenant-Id:");
    for (tenant, count) in &per_tenant {
        println!("  {tenant:<12} {count}");
    }
    println!("\nRecords by outcome:");
    for (outcome, count) in &outcomes {
        println!("  {count:>3}  {outcome}");
    }
    Ok(())
}
