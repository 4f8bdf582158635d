#!/usr/bin/env bash
# BENCHMARKS.md, "Invocation types against a 20 ms backend": the 10,000-record workload
# ($BASELINE_BENCH/make_workload.py: 10 SQS batches of 1,000 records, 100 tenants, ES256, ~1 KB)
# through the Rust router in both delivery modes and both invocation types, and through the Python
# router ($BASELINE_BENCH/python_router.py, the team's reference, not yet in this repository; async Invokes one at a time), against `bench-sink
# --delay-ms 20`: every Invoke answers after 20 ms, the order of an in-region Invoke round trip
# (a sync one with the per-record answer of a backend whose records all succeed). Each run is one
# process under /usr/bin/time; the median of REPEAT runs is shown (the Python router runs
# PY_REPEAT times: about 200 s each). Then what each costs in Lambda per million records at 128 MB
# and 1,024 MB of router memory. Not part of the test suite (timings are not assertions).
#
#   scripts/bench-invocation-types.sh                  # REPEAT=3 PY_REPEAT=1 DELAY_MS=20
#   SYNC_DELAY_MS=120 PY_REPEAT=0 scripts/bench-invocation-types.sh   # a backend that runs 100 ms
#   RECORDS=2000 REPEAT=1 PY_REPEAT=0 scripts/bench-invocation-types.sh
#   REPORT_ONLY=1 scripts/bench-invocation-types.sh    # the tables again, from the last runs
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-10000}
REPEAT=${REPEAT:-3}
PY_REPEAT=${PY_REPEAT:-1}
DELAY_MS=${DELAY_MS:-20}
SYNC_DELAY_MS=${SYNC_DELAY_MS:-$DELAY_MS}
BENCH=${BASELINE_BENCH:?"set BASELINE_BENCH to the directory of the Python baseline (python_router.py, make_workload.py): it is not in this repository yet (issue 28)"}
OUT=target/bench/invocation-types
mkdir -p "$OUT"
VENV=target/bench/venv
NAMES=(record-event record-request-response tenant-batch-event tenant-batch-request-response)

if [ -z "${REPORT_ONLY:-}" ]; then
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q boto3 aws-lambda-powertools PyJWT cryptography
fi
cargo build --release --locked -q -p router -p cross-crate-tests --bin router --bin bench-sink

rm -rf "$OUT/workload"
"$VENV/bin/python" "$BENCH/make_workload.py" "$OUT/workload" --records "$RECORDS" >/dev/null
FILES=("$OUT"/workload/batch-*.json)

# shellcheck source=scripts/bench-sink.sh
. scripts/bench-sink.sh
start_sink "$OUT" --delay-ms "$DELAY_MS" --sync-delay-ms "$SYNC_DELAY_MS"

# run NAME COMMAND...: one measured run; every batch must answer with no failure. The router's
# EMF documents (stderr) give the Invokes it made.
run() {
  local name=$1; shift
  /usr/bin/time -f '%U %S %e %M' -o "$OUT/time-$name" "$@" >"$OUT/out-$name" 2>"$OUT/err-$name"
  local ok
  ok=$(grep -c '"batchItemFailures": *\[\]' "$OUT/out-$name" || true)
  if [ "$ok" != "${#FILES[@]}" ]; then
    echo "$name: expected ${#FILES[@]} clean batch responses, got $ok" >&2
    exit 1
  fi
  local invokes
  invokes=$(python3 -c '
import json, sys
n = 0
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{") and "\"InvokeAttempts\"" in line:
        n += int(json.loads(line)["InvokeAttempts"])
print(n)' "$OUT/err-$name")
  echo "$(cat "$OUT/time-$name") $invokes" >>"$OUT/times-$name"
}

for name in python "${NAMES[@]}"; do rm -f "$OUT/times-$name"; done
for _ in $(seq "$REPEAT"); do
  for delivery in record tenant-batch; do
    for invocation in event request-response; do
      ROUTER_DELIVERY=$delivery ROUTER_INVOCATION_TYPE=$invocation \
        run "$delivery-$invocation" target/release/router replay "${FILES[@]}"
    done
  done
done
for _ in $(seq "$PY_REPEAT"); do
  run python "$VENV/bin/python" "$BENCH/python_router.py" replay "${FILES[@]}"
  # The Python router writes no EMF: one Invoke per record.
  sed -i "\$ s/ 0\$/ $RECORDS/" "$OUT/times-python"
done
kill "$SINK" 2>/dev/null || true
fi
FILES=("$OUT"/workload/batch-*.json)

python3 - "$OUT" "$RECORDS" "${#FILES[@]}" "$DELAY_MS" "$SYNC_DELAY_MS" "${NAMES[@]}" <<'PY'
import os, statistics, sys
out, records, batches = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
delay, sync_delay = sys.argv[4], sys.argv[5]
names = sys.argv[6:] + (["python"] if os.path.exists(f"{out}/times-python") else [])
rows = {}
for name in names:
    runs = [list(map(float, l.split())) for l in open(f"{out}/times-{name}")]
    cpu = statistics.median(u + s for u, s, *_ in runs)
    wall = statistics.median(r[2] for r in runs)
    rss = max(r[3] for r in runs) / 1024
    invokes = statistics.median(r[4] for r in runs)
    rows[name] = (cpu, wall, rss, invokes, len(runs))
print(f"{records} records in {batches} batches, sink answering async Invokes after {delay} ms and "
      f"sync ones after {sync_delay} ms; median of the runs shown; whole processes (/usr/bin/time)\n")
print("| run | runs | CPU s | CPU µs/record | wall s | wall µs/record | Invokes | max RSS MiB |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, (cpu, wall, rss, invokes, n) in rows.items():
    print(f"| {name} | {n} | {cpu:.2f} | {cpu * 1e6 / records:.1f} | {wall:.2f} "
          f"| {wall * 1e6 / records:.1f} | {invokes:.0f} | {rss:.1f} |")

# Lambda cost per million records. The router's billed duration per batch is modelled as the
# larger of the measured wall time (mostly waiting for Invokes) and the measured CPU time scaled
# to the vCPU share Lambda gives that memory (1,769 MB = one vCPU); requests are the router's own
# invocations (one per batch) plus the Invokes of the backend it makes. List prices, x86,
# us-east-1: $0.0000166667 per GB-s, $0.20 per million requests (the backend's own duration and
# its tenant environments are the same for every router and are left out).
GB_S, REQ = 0.0000166667, 0.20 / 1e6
print("\nPer million records (router duration model: max(wall, CPU × 1769 MB / memory)):\n")
print("| run | memory | router GB-s | router requests | backend Invokes | $ router duration | $ requests | $ total |")
print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
scale = 1e6 / records
for name, (cpu, wall, rss, invokes, n) in rows.items():
    for memory in (128, 1024):
        share = min(memory / 1769, 1.0)
        per_batch = max(wall / batches, cpu / batches / share)
        router_requests = batches * scale
        gbs = per_batch * router_requests * memory / 1024
        backend = invokes * scale
        d, r = gbs * GB_S, (router_requests + backend) * REQ
        print(f"| {name} | {memory} MB | {gbs:,.0f} | {router_requests:,.0f} | {backend:,.0f} "
              f"| {d:.4f} | {r:.4f} | {d + r:.4f} |")
PY
