//! `bench-sink [PORT] [--delay-ms N] [--sync-delay-ms N]`: an Invoke API that keeps nothing, so that router
//! benchmarks measure the router, not the backend. An async Invoke (`X-Amz-Invocation-Type:
//! Event`) is answered 202; a sync one (`RequestResponse`) 200 with what the tenant guard would
//! answer when every record succeeds (`{}` for one envelope, `{"records": [{"id", "status":
//! "processed"}…]}` for an envelope batch). `--delay-ms` answers after that long (20 ms is the
//! order of an in-region Invoke round trip); `--sync-delay-ms` answers sync Invokes after that
//! long instead (the round trip plus the backend's run; default: `--delay-ms`). Prints the address it listens on (`127.0.0.1:PORT`,
//! an ephemeral port by default) and a count of the requests it answered when it gets SIGTERM or
//! Ctrl-C. Benchmark tooling only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use serde_json::{Value, json};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut port = 0u16;
    let mut delay = Duration::ZERO;
    let mut sync_delay = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--delay-ms" => {
                let ms: u64 = args.next().unwrap_or_default().parse()?;
                delay = Duration::from_millis(ms);
            }
            "--sync-delay-ms" => {
                let ms: u64 = args.next().unwrap_or_default().parse()?;
                sync_delay = Some(Duration::from_millis(ms));
            }
            other => port = other.parse()?,
        }
    }
    let sync_delay = sync_delay.unwrap_or(delay);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?);
    let answered = Arc::new(AtomicU64::new(0));
    let counter = answered.clone();
    let app = Router::new().route(
        "/2015-03-31/functions/{function}/invocations",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                let sync = headers
                    .get("x-amz-invocation-type")
                    .is_some_and(|t| t == "RequestResponse");
                let wait = if sync { sync_delay } else { delay };
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                if !sync {
                    return (StatusCode::ACCEPTED, [("x-amzn-requestid", "bench")]).into_response();
                }
                let answer = match serde_json::from_slice::<Value>(&body) {
                    Ok(Value::Object(payload)) => match payload.get("records") {
                        Some(Value::Array(records)) => json!({"records": records
                            .iter()
                            .map(|r| json!({"id": r["id"], "status": "processed"}))
                            .collect::<Vec<_>>()}),
                        _ => json!({}),
                    },
                    _ => json!({}),
                };
                (
                    StatusCode::OK,
                    [("x-amzn-requestid", "bench")],
                    answer.to_string(),
                )
                    .into_response()
            }
        }),
    );
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("a SIGTERM handler");
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await?;
    eprintln!("bench-sink: answered {}", answered.load(Ordering::Relaxed));
    Ok(())
}
