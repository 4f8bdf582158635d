//! The main job, locally, with no AWS account: replays every recorded fixture (SQS, Kinesis,
//! DynamoDB Streams, EventBridge) through the router's real handler and the real aws-sdk-lambda
//! client into a local Invoke API that this command starts on 127.0.0.1 and that answers every
//! Invoke with 202, then prints each response, the Invokes received per tenant, and how many
//! records ended in each outcome.
//!
//! Run: `cargo run -p cross-crate-tests --bin demo`.

use std::collections::BTreeMap;
use std::time::Duration;

use cross_crate_tests::{fixtures_dir, router_env};
use router::InvocationInfo;
use router::{AwsBackend, Config, Router};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn display(file: &std::path::Path) -> String {
    file.strip_prefix(fixtures_dir())
        .unwrap_or(file)
        .display()
        .to_string()
}

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
    let lambda = testkit::lambda_client(&server.uri());
    let backend = AwsBackend::new(lambda, config.backend_function.clone(), None);
    let router = Router::new(config, backend)?;

    let mut files = Vec::new();
    for source in ["sqs", "kinesis", "dynamodb", "eventbridge"] {
        let mut found: Vec<_> = std::fs::read_dir(fixtures_dir().join(source))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    for file in &files {
        let event = std::fs::read_to_string(file)?;
        let info = InvocationInfo::with_budget(Duration::from_secs(30), Duration::from_millis(500));
        let report = match router.route_event(&event, &info).await {
            Ok(report) => report,
            Err(error) => {
                println!("{:<44} error: {error}", display(file));
                continue;
            }
        };
        for outcome in &report.outcomes {
            let key = match outcome.reason() {
                Some(reason) => format!("{} ({reason})", outcome.name()),
                None => outcome.name().to_owned(),
            };
            *outcomes.entry(key).or_default() += 1;
        }
        println!("{:<44} {}", display(file), report.response);
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
