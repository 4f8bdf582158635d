#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, then every test of the workspace
# (unit, integration, end-to-end through the Lambda stand-in, conformance under AWS's Runtime
# Interface Emulator, tests against moto's AWS-API server, and each benchmark run once as a smoke
# test). Needs the Rust toolchain, python3 with pip and venv (to fetch the emulator and moto from
# PyPI) and curl (used by script functions in tests).
set -euo pipefail
cd "$(dirname "$0")/.."

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

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --all-targets --locked

echo "== CDK app (npm ci, tsc, assertion tests, cdk-nag, cdk synth, cfn-lint)"
./scripts/test-cdk.sh
