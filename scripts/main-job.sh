#!/usr/bin/env bash
# The main job, locally, with no AWS account: builds the router, the backend and the Lambda
# stand-in, then replays every recorded fixture through the router's real handler into
# tenant-isolated backend environments (real processes) and prints the batch responses and a
# per-tenant table, then each tenant's usage and estimated cost from the stand-in's invocation log
# (target/main-job-invocations.jsonl). The backend's idempotency store is a DynamoDB table on moto's server (PyPI,
# installed into target/moto/ and started here on 127.0.0.1, stopped at the end), shared by every
# environment; without python3 the environments keep it in memory instead. Extra arguments go to
# `local-lambda replay` (e.g. --results FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --quiet --locked -p backend -p local --bins

store=()
if command -v python3 >/dev/null && moto=$(./scripts/fetch-moto.sh 2>/dev/null); then
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$moto" -H 127.0.0.1 -p "$port" >target/moto/server.log 2>&1 &
  moto_pid=$!
  trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
  endpoint="http://127.0.0.1:$port"
  target/moto/venv/bin/python - "$endpoint" <<'PY'
import sys, time, boto3
endpoint = sys.argv[1]
client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="local", aws_secret_access_key="local")
for _ in range(100):
    try:
        client.list_tables()
        break
    except Exception:
        time.sleep(0.1)
client.create_table(TableName="idempotency", BillingMode="PAY_PER_REQUEST",
                    AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
PY
  echo "idempotency store: DynamoDB table 'idempotency' on moto's server at $endpoint" >&2
  store=(--env BACKEND_IDEMPOTENCY_TABLE=idempotency --env "AWS_ENDPOINT_URL_DYNAMODB=$endpoint"
    --env AWS_REGION=us-east-1 --env AWS_ACCESS_KEY_ID=local --env AWS_SECRET_ACCESS_KEY=local)
else
  echo "idempotency store: in each environment's memory (python3 and moto's server unavailable)" >&2
fi

log=target/main-job-invocations.jsonl
rm -f "$log"
target/debug/local-lambda replay --at 2026-01-01T00:00:01Z --log "$log" \
  --environment-output target/local-lambda-environments.log "${store[@]}" "$@" \
  tests/fixtures/sqs/*.json tests/fixtures/kinesis/*.json tests/fixtures/dynamodb/*.json \
  tests/fixtures/eventbridge/*.json

echo
echo "Usage and estimated cost per tenant (local-lambda usage --log $log; list prices of shared/pricing.json):"
target/debug/local-lambda usage --log "$log"
