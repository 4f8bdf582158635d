#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it: formatting, lints, then every test of the workspace.
# Needs only the Rust toolchain (cargo fetches the crates).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test (unit, integration, and each benchmark run once as a smoke test)"
cargo test --workspace --all-targets --locked
