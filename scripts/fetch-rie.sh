#!/usr/bin/env bash
# Fetches AWS's Lambda Runtime Interface Emulator, which ships inside the aws-sam-cli wheel on PyPI
# (samcli/local/rapid/aws-lambda-rie-x86_64, a static binary that runs without Docker), into
# target/rie/. The conformance tests run the router and the backend under it.
set -euo pipefail
cd "$(dirname "$0")/.."
version=1.170.0
dest=target/rie
bin=$dest/aws-lambda-rie-x86_64
if [ -x "$bin" ] && [ "$(cat "$dest/version" 2>/dev/null)" = "$version" ]; then
  echo "$bin"
  exit 0
fi
mkdir -p "$dest/wheel"
python3 -m pip download --quiet --disable-pip-version-check --no-deps \
  "aws-sam-cli==$version" -d "$dest/wheel" >&2
python3 - "$dest" "$version" <<'PY'
import glob, os, sys, zipfile
dest, version = sys.argv[1], sys.argv[2]
wheel = glob.glob(os.path.join(dest, "wheel", f"aws_sam_cli-{version}-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    data = z.read("samcli/local/rapid/aws-lambda-rie-x86_64")
path = os.path.join(dest, "aws-lambda-rie-x86_64")
with open(path, "wb") as f:
    f.write(data)
os.chmod(path, 0o755)
with open(os.path.join(dest, "version"), "w") as f:
    f.write(version)
PY
rm -rf "$dest/wheel"
echo "$bin"
