#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, then every test of the workspace
# (unit, integration, end-to-end through the Lambda stand-in, conformance under AWS's Runtime
# Interface Emulator, tests against moto's AWS-API server, the conformance kit against the Rust and
# the Python backends, and each benchmark run once as a smoke test), then the Python example
# backend's own tests and the CDK library's. Needs the Rust toolchain, python3 with pip and venv
# (to fetch the emulator, moto and the Python backend's packages from PyPI), node for the CDK
# library, and curl (used by script functions in tests).
set -euo pipefail
cd "$(dirname "$0")/.."

# CI builds once from a clean clone: incremental compilation would only fill its disk (it
# doubles the size of target/).
if [ "${CI:-}" = true ]; then
  export CARGO_INCREMENTAL=0
fi

if ! command -v curl >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq curl >/dev/null
  else
    echo "curl is needed by the stand-in tests; please install it" >&2
    exit 1
  fi
fi

echo "== fetch AWS's Runtime Interface Emulator (aws-sam-cli wheel, PyPI)"
./scripts/fetch-rie.sh

echo "== install moto's server (PyPI) for the tests against a real AWS-API server"
./scripts/fetch-moto.sh

echo "== install the Python example backend's pinned packages (PyPI: awslambdaric, Powertools)"
./scripts/fetch-python-backend.sh >/dev/null

echo "== layering: no import cycles between modules (scripts/layering.py)"
python3 scripts/layering.py router/src shared/src local/src backend/src tests/src testkit/src

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --all-targets --locked

echo "== Python example backend (pytest: its guard, the JSON Schemas, behind the router in local-lambda)"
# Under CI a test that needs the built binaries must not be skipped.
target/python-backend/venv/bin/python -m pytest -q examples/python-backend/tests

echo "== CDK app (npm ci, tsc, assertion tests, cdk-nag, cdk synth, cfn-lint)"
./scripts/test-cdk.sh
