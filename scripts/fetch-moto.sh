#!/usr/bin/env bash
# Installs moto's server (PyPI: moto with the server and the services used here, pinned) into a virtual environment under
# target/moto/, and prints the path of its `moto_server` executable. moto's server answers the
# AWS APIs (SQS, S3, DynamoDB, Kinesis, …) on 127.0.0.1 without Docker or an account; the tests
# that need a real AWS-API server start it with `testkit::Moto`.
set -euo pipefail
cd "$(dirname "$0")/.."
version=5.2.5
extras=server,s3,sqs,dynamodb,dynamodbstreams,kinesis,sts,iam,ssm,secretsmanager
dest=target/moto
bin=$dest/venv/bin/moto_server
if [ -x "$bin" ] && [ "$(cat "$dest/version" 2>/dev/null)" = "$version[$extras]" ]; then
  echo "$bin"
  exit 0
fi
rm -rf "$dest"
mkdir -p "$dest"
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
make_venv "$dest/venv"
"$dest/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  "moto[$extras]==$version" >&2
echo "$version[$extras]" > "$dest/version"
echo "$bin"
