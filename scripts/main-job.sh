#!/usr/bin/env bash
# The main job, locally, with no AWS account: builds the router, the backend and the Lambda
# stand-in, then replays every recorded fixture through the router's real handler into
# tenant-isolated backend environments (real processes) and prints the batch responses and a
# per-tenant table. Extra arguments go to `local-lambda replay` (e.g. --log FILE --results FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked -p backend -p local --bins
exec target/debug/local-lambda replay --at 2026-01-01T00:00:01Z --environment-output target/local-lambda-environments.log "$@" \
  tests/fixtures/sqs/*.json tests/fixtures/kinesis/*.json tests/fixtures/dynamodb/*.json \
  tests/fixtures/eventbridge/*.json
