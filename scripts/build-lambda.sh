#!/usr/bin/env bash
# Builds the two Lambda bundles the CDK app (cdk/) deploys on the provided.al2023 runtime:
#
#   target/lambda/router/bootstrap
#   target/lambda/backend/bootstrap   target/lambda/backend/tenants/*.json
#
# Amazon Linux 2023 ships glibc 2.34, so the binaries are linked against exactly that glibc with
# cargo-zigbuild (zig as the linker, glibc version in the target suffix), whatever the build
# machine's own glibc; `objdump -T` then proves no symbol needs a newer one.
#
#   scripts/build-lambda.sh            # x86_64 (the stack's default architecture)
#   scripts/build-lambda.sh arm64      # aarch64 (Graviton): deploy with `-c architecture=arm64`
#
# Needs a Rust toolchain (rustup, to add the target) and python3 with pip. Installs what is
# missing: ziglang and cargo-zigbuild from PyPI into target/lambda-tools/venv (or cargo-zigbuild
# with `cargo install cargo-zigbuild --locked` when pip cannot), and the rustup target.
set -euo pipefail
cd "$(dirname "$0")/.."

GLIBC=2.34
ZIGLANG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.0

case "${1:-${ARCH:-x86_64}}" in
  x86_64 | amd64) arch=x86_64 triple=x86_64-unknown-linux-gnu machine='X86-64' ;;
  arm64 | aarch64) arch=arm64 triple=aarch64-unknown-linux-gnu machine='AArch64' ;;
  *)
    echo "usage: $0 [x86_64|arm64]" >&2
    exit 2
    ;;
esac

target_dir=${CARGO_TARGET_DIR:-target}
tools=$target_dir/lambda-tools
out=$target_dir/lambda

for tool in cargo python3 objdump readelf; do
  command -v "$tool" >/dev/null || { echo "build-lambda: $tool is required" >&2; exit 1; }
done

echo "== tools"
if command -v rustup >/dev/null && ! rustup target list --installed | grep -qx "$triple"; then
  rustup target add "$triple"
fi

# zig (ziglang on PyPI) and cargo-zigbuild (a binary wheel on PyPI, or crates.io) in a venv of
# our own: no system Python package is touched. cargo-zigbuild runs `python -m ziglang` with the
# interpreter named by CARGO_ZIGBUILD_PYTHON_PATH.
if [ ! -x "$tools/venv/bin/python3" ]; then
  python3 -m venv "$tools/venv"
fi
venv_python=$tools/venv/bin/python3
installed() { [ "$("$venv_python" -m pip show "$1" 2>/dev/null | sed -n 's/^Version: //p')" = "$2" ]; }
installed ziglang "$ZIGLANG_VERSION" ||
  "$venv_python" -m pip install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION"
export CARGO_ZIGBUILD_PYTHON_PATH=$PWD/$venv_python
export PATH=$PWD/$tools/venv/bin:$PATH
if ! command -v cargo-zigbuild >/dev/null; then
  "$venv_python" -m pip install --quiet --disable-pip-version-check "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION" ||
    cargo install cargo-zigbuild --locked --version "$CARGO_ZIGBUILD_VERSION"
fi
echo "zig $("$venv_python" -m ziglang version), $(cargo-zigbuild --version)"

echo "== cargo zigbuild ($triple, glibc $GLIBC)"
# One package per build: cargo unifies the features of the crates packages share, and the
# backend's DynamoDB idempotency store would otherwise change the SDK crates the router is built
# with (BENCHMARKS.md: what aws-sdk-s3 did to the router's memory).
cargo zigbuild --release --locked --target "$triple.$GLIBC" -p router --bins
cargo zigbuild --release --locked --target "$triple.$GLIBC" -p backend --bins

echo "== bundles"
rm -rf "$out/router" "$out/backend"
mkdir -p "$out/router" "$out/backend"
install -m 0755 "$target_dir/$triple/release/router" "$out/router/bootstrap"
install -m 0755 "$target_dir/$triple/release/backend" "$out/backend/bootstrap"
cp -R backend/tenants "$out/backend/tenants"

# The dynamic symbol table (objdump, or readelf for a foreign architecture objdump cannot read).
dynamic_symbols() { objdump -T "$1" 2>/dev/null || readelf --dyn-syms --wide "$1"; }
# Every GLIBC_x.y version the binary's symbols need, oldest first.
glibc_versions() { dynamic_symbols "$1" | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/^GLIBC_//' | sort -u -V || true; }
newer_than_glibc() { [ "$1" != "$GLIBC" ] && [ "$(printf '%s\n%s\n' "$1" "$GLIBC" | sort -V | tail -n 1)" = "$1" ]; }

status=0
for name in router backend; do
  bin=$out/$name/bootstrap
  if ! readelf -h "$bin" | grep -q "Machine:.*$machine"; then
    echo "build-lambda: $bin is not a $machine binary" >&2
    status=1
  fi
  versions=$(glibc_versions "$bin")
  for version in $versions; do
    if newer_than_glibc "$version"; then
      echo "build-lambda: $bin needs GLIBC_$version, newer than Amazon Linux 2023's $GLIBC:" >&2
      dynamic_symbols "$bin" | grep -E "GLIBC_${version//./\\.}([^0-9.]|\$)" >&2 || true
      status=1
    fi
  done
  newest=$(printf '%s\n' $versions | tail -n 1)
  printf '%-8s %s  %s bytes (%s), newest glibc symbol version: %s\n' "$name" "$bin" \
    "$(stat -c %s "$bin")" "$(du -h "$bin" | cut -f1)" "${newest:-none}"
done
printf '%-8s %s  %s files\n' tenants "$out/backend/tenants" "$(find "$out/backend/tenants" -type f | wc -l)"
[ "$status" -eq 0 ] || exit "$status"
echo "== done: deploy with (cd cdk && npx cdk deploy -c architecture=$arch …), see cdk/README.md"
