//! `cold-start [--runs N] BINARY`: how long a Lambda bootstrap takes from process start to its
//! first `GET /2018-06-01/runtime/invocation/next`, the request that tells Lambda the function is
//! initialised. A minimal Runtime API on 127.0.0.1 takes that request; the binary inherits this
//! process's environment (so `ROUTER_*` settings apply) plus `AWS_LAMBDA_RUNTIME_API` and the
//! variables Lambda always sets. Prints each run and the median and worst, in milliseconds.
//! Benchmark tooling; see BENCHMARKS.md.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut runs = 20;
    if args.first().is_some_and(|a| a == "--runs") {
        runs = args
            .get(1)
            .ok_or_else(|| anyhow::anyhow!("--runs N"))?
            .parse()?;
        args.drain(..2);
    }
    let [binary] = args.as_slice() else {
        anyhow::bail!("usage: cold-start [--runs N] BINARY");
    };
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let address = listener.local_addr()?;
        let started = Instant::now();
        let mut child = Command::new(binary)
            .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", "router")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "512")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "cold-start")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/router")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        listener.set_nonblocking(false)?;
        let (stream, _) = listener.accept()?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut line = String::new();
        BufReader::new(&stream).read_line(&mut line)?;
        let took = started.elapsed();
        anyhow::ensure!(
            line.starts_with("GET /2018-06-01/runtime/invocation/next"),
            "unexpected first request {line:?}"
        );
        child.kill()?;
        child.wait()?;
        times.push(took.as_secs_f64() * 1000.0);
        println!("{:.2} ms", took.as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "runs {runs}: median {:.2} ms, worst {:.2} ms",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    Ok(())
}
