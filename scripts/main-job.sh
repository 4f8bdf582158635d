#!/usr/bin/env bash
# The main job, locally, with no AWS account: the whole system. Builds the router, the backend,
# local-lambda and the driver, then (target/debug/main-job, tests/src/whole_system.rs):
#   1. starts moto's AWS-API server on 127.0.0.1 (PyPI, installed into target/moto/);
#   2. creates an SQS standard queue with a DLQ, a FIFO queue, a Kinesis stream, a DynamoDB table
#      with a stream, the router's quarantine queue, an on-failure queue and the backend's
#      idempotency table;
#   3. runs local-lambda from examples/main-job/local-lambda.toml: the router and the
#      tenant-isolated backend as real processes, four event source mappings polling the sources;
#   4. produces three tenants' to-do events into every source (forged and expired tokens, a
#      malformed body, a missing token, and records the backend fails every time included);
#   5. once every record has reached its end, prints per tenant what was produced, processed,
#      quarantined, redelivered and dead-lettered and the environments that served it, then each
#      tenant's usage and estimated cost. Exits 1 if a record was lost or crossed tenants.
# Logs: target/main-job/{invocations,mappings}.jsonl and environments.log.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked -p router -p backend -p local --bins
cargo build --quiet --locked -p cross-crate-tests --bin main-job
exec target/debug/main-job "$@"
