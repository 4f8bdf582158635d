# Sourced by the benchmark scripts (not run): `start_sink DIR [bench-sink options]` starts
# target/release/bench-sink in the background (stopped when the script exits), then loads
# DIR/workload/env (the ROUTER_* settings of the workload) and points the AWS SDK at the sink.
start_sink() {
  local dir=$1; shift
  target/release/bench-sink "$@" >"$dir/sink.addr" 2>"$dir/sink.log" &
  SINK=$!
  trap 'kill "$SINK" 2>/dev/null || true' EXIT
  for _ in $(seq 50); do [ -s "$dir/sink.addr" ] && break; sleep 0.1; done
  set -a
  # shellcheck disable=SC1091
  . "$dir/workload/env"
  set +a
  export AWS_ENDPOINT_URL_LAMBDA="http://$(cat "$dir/sink.addr")" AWS_REGION=us-east-1 \
    AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
}
