#!/usr/bin/env bash
# The side-by-side comparison of BENCHMARKS.md: the Python router a team would write today
# (python_router.py, in $BASELINE_BENCH: the team's reference, not yet in this repository), the Rust router in `record` and `tenant-batch` mode, and the
# floor (`invoke-floor`: the same Invokes through the same client, nothing else), on the same
# workload ($BASELINE_BENCH/make_workload.py: 10,000 SQS records, 100 tenants, ES256, ~1 KB) and
# the same sink (`bench-sink`: 202 at once). Each is one process under /usr/bin/time; the median
# of REPEAT runs is shown, with ratios. Not part of the test suite (timings are not assertions).
#
#   BASELINE_BENCH=DIR scripts/bench-compare.sh                 # 10,000 records, 3 runs each
#   BASELINE_BENCH=DIR RECORDS=2000 REPEAT=1 scripts/bench-compare.sh
#
# Needs python3 with venv/pip (the Python router's packages are installed into target/bench/venv).
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${RECORDS:-10000}
REPEAT=${REPEAT:-3}
BENCH=${BASELINE_BENCH:?"set BASELINE_BENCH to the directory of the Python baseline (python_router.py, make_workload.py): it is not in this repository yet (issue 28)"}
OUT=target/bench
mkdir -p "$OUT"

if [ ! -x "$OUT/venv/bin/python" ]; then
  python3 -m venv "$OUT/venv"
  "$OUT/venv/bin/pip" install -q boto3 aws-lambda-powertools PyJWT cryptography
fi
cargo build --release --locked -q -p router -p cross-crate-tests \
  --bin router --bin bench-sink --bin invoke-floor

rm -rf "$OUT/workload"
"$OUT/venv/bin/python" "$BENCH/make_workload.py" "$OUT/workload" --records "$RECORDS" >/dev/null
FILES=("$OUT"/workload/batch-*.json)

# shellcheck source=scripts/bench-sink.sh
. scripts/bench-sink.sh
start_sink "$OUT"

# run NAME COMMAND...: one measured run; checks that every batch answered with no failure.
run() {
  local name=$1; shift
  /usr/bin/time -f '%U %S %e %M' -o "$OUT/time-$name" "$@" >"$OUT/out-$name" 2>"$OUT/err-$name"
  if [ "$name" != floor ]; then
    local ok
    ok=$(grep -c '"batchItemFailures": *\[\]' "$OUT/out-$name" || true)
    if [ "$ok" != "${#FILES[@]}" ]; then
      echo "$name: expected ${#FILES[@]} clean batch responses, got $ok" >&2
      exit 1
    fi
  fi
  cat "$OUT/time-$name" >>"$OUT/times-$name"
}

for name in python record tenant-batch floor; do rm -f "$OUT/times-$name"; done
for _ in $(seq "$REPEAT"); do
  run python "$OUT/venv/bin/python" "$BENCH/python_router.py" replay "${FILES[@]}"
  ROUTER_DELIVERY=record run record target/release/router replay "${FILES[@]}"
  ROUTER_DELIVERY=tenant-batch run tenant-batch target/release/router replay "${FILES[@]}"
  run floor target/release/invoke-floor "${FILES[@]}"
done

python3 - "$OUT" "$RECORDS" <<'EOF'
import statistics, sys
out, records = sys.argv[1], int(sys.argv[2])
rows = {}
for name in ["python", "record", "tenant-batch", "floor"]:
    runs = [list(map(float, l.split())) for l in open(f"{out}/times-{name}")]
    cpu = statistics.median(u + s for u, s, _, _ in runs)
    wall = statistics.median(e for _, _, e, _ in runs)
    rss = max(m for _, _, _, m in runs) / 1024
    rows[name] = (cpu, wall, rss)
py_cpu, py_wall, _ = rows["python"]
print(f"{records} records, median of {len(runs)} runs, whole processes (/usr/bin/time)")
print(f"| run | CPU s | CPU µs/record | wall s | wall µs/record | max RSS MiB | CPU vs Python | wall vs Python |")
print(f"| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, (cpu, wall, rss) in rows.items():
    print(f"| {name} | {cpu:.2f} | {cpu * 1e6 / records:.1f} | {wall:.2f} | {wall * 1e6 / records:.1f} "
          f"| {rss:.1f} | {py_cpu / cpu:.1f}× | {py_wall / wall:.1f}× |")
rec, floor = rows["record"][0], rows["floor"][0]
print(f"\nrecord mode CPU / floor CPU = {rec / floor:.2f}")
EOF
