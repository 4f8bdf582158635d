//! `bench-sink [PORT]`: an Invoke API that answers every request with 202 at once and keeps
//! nothing, so that router benchmarks measure the router, not the backend. Prints the address it
//! listens on (`127.0.0.1:PORT`, an ephemeral port by default) and a count of the requests it
//! answered when it gets SIGTERM or Ctrl-C. Benchmark tooling only.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .map(|p| p.parse())
        .transpose()?
        .unwrap_or(0);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("{}", listener.local_addr()?);
    let answered = Arc::new(AtomicU64::new(0));
    let counter = answered.clone();
    let app = Router::new().route(
        "/2015-03-31/functions/{function}/invocations",
        post(move |_body: axum::body::Bytes| {
            let counter = counter.clone();
            async move {
                counter.fetch_add(1, Ordering::Relaxed);
                (StatusCode::ACCEPTED, [("x-amzn-requestid", "bench")])
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
