#!/usr/bin/env bash
# The scaling table of BENCHMARKS.md: CPU per record of `router replay` (whole process, under
# /usr/bin/time) against `bench-sink`, for batches of 100 to 10,000 records, 1 to 1,000 tenants,
# SQS, Kinesis and DynamoDB Streams, in both delivery modes. Workloads come from `gen-workload`
# (RECORDS records in all, ~1 KB payloads, ES256 tokens, one per tenant). Also prints the Invokes
# each run made (from the router's EMF metrics). Not part of the test suite.
#
#   scripts/bench-scaling.sh               # RECORDS=10000
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-10000}
OUT=target/bench/scaling
mkdir -p "$OUT"
cargo build --release --locked -q -p router -p cross-crate-tests \
  --bin router --bin bench-sink --bin gen-workload

target/release/bench-sink >"$OUT/sink.addr" 2>"$OUT/sink.log" &
SINK=$!
trap 'kill "$SINK" 2>/dev/null || true' EXIT
for _ in $(seq 50); do [ -s "$OUT/sink.addr" ] && break; sleep 0.1; done
export AWS_ENDPOINT_URL_LAMBDA="http://$(cat "$OUT/sink.addr")" AWS_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench

echo "| source | records per batch | tenants | mode | CPU µs/record | wall µs/record | max RSS MiB | Invokes |"
echo "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: |"
measure() {
  local source=$1 batch=$2 tenants=$3
  local dir="$OUT/$source-$batch-$tenants"
  rm -rf "$dir"
  target/release/gen-workload "$dir" --source "$source" --records "$RECORDS" --batch "$batch" \
    --tenants "$tenants" 2>/dev/null
  for mode in record tenant-batch; do
    (
      set -a
      # shellcheck disable=SC1091
      . "$dir/env"
      set +a
      ROUTER_DELIVERY=$mode /usr/bin/time -f '%U %S %e %M' -o "$dir/time-$mode" \
        target/release/router replay "$dir"/batch-*.json >"$dir/out-$mode" 2>"$dir/err-$mode"
      # Every batch answered with no failure.
      files=$(ls "$dir"/batch-*.json | wc -l)
      clean=$(grep -c '"batchItemFailures":\[\]' "$dir/out-$mode" || true)
      [ "$clean" = "$files" ] || { echo "$dir $mode: $clean of $files batches clean" >&2; exit 1; }
      # Invoke attempts, from the router's own EMF metrics (one document per batch).
      invokes=$(grep -o '"InvokeAttempts":[0-9.]*' "$dir/err-$mode" | cut -d: -f2 |
        python3 -c 'import sys; print(int(sum(float(l) for l in sys.stdin)))')
      read -r user sys wall rss <"$dir/time-$mode"
      python3 -c "
u, s, w, m, n = $user, $sys, $wall, $rss, $RECORDS
print(f'| $source | $batch | $tenants | $mode | {(u + s) * 1e6 / n:.1f} | {w * 1e6 / n:.1f} | {m / 1024:.1f} | $invokes |')"
    )
  done
}

for batch in 100 1000 10000; do measure sqs "$batch" 100; done
for tenants in 1 10 1000; do measure sqs 1000 "$tenants"; done
for source in kinesis dynamodb; do measure "$source" 1000 100; done
