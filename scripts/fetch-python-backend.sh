#!/usr/bin/env bash
# Installs the Python example backend's pinned dependencies (examples/python-backend/
# requirements-dev.txt: awslambdaric, Powertools for AWS Lambda (Python) and boto3, plus pytest,
# jsonschema and moto for its tests, every one with its version and hashes) into a virtual
# environment under target/python-backend/, and prints the path of its `python`, which
# examples/python-backend/bootstrap then uses. Fast when already installed (the requirements'
# checksum is kept beside the venv). To change a version: edit requirements*.in, then
#   pip-compile --generate-hashes --allow-unsafe --strip-extras --no-emit-index-url \
#     --no-emit-find-links requirements.in        (and the same for requirements-dev.in)
# in examples/python-backend with pip-tools 7.6.2.
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=examples/python-backend/requirements-dev.txt
dest=target/python-backend
python=$dest/venv/bin/python
stamp=$(sha256sum "$requirements" | cut -d' ' -f1)
if [ -x "$python" ] && [ "$(cat "$dest/installed" 2>/dev/null)" = "$stamp" ]; then
  echo "$python"
  exit 0
fi
rm -rf "$dest/venv" "$dest/installed"
mkdir -p "$dest"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
make_venv "$dest/venv"
"$python" -m pip install --quiet --disable-pip-version-check --require-hashes \
  -r "$requirements" >&2
echo "$stamp" > "$dest/installed"
echo "$python"
