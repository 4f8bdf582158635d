"""End to end behind the real router: ``local-lambda replay`` sends every recorded fixture through
the router's handler into tenant-isolated environments running ``bootstrap``, and the batch
responses must be exactly those of the Rust backend. Needs the built binaries
(``cargo build -p backend -p local --bins``; ``LOCAL_LAMBDA`` / ``RUST_BACKEND`` name others),
and is skipped without them (a failure under CI)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from conftest import BOOTSTRAP, REPOSITORY

LOCAL_LAMBDA = Path(os.environ.get("LOCAL_LAMBDA", REPOSITORY / "target/debug/local-lambda"))
RUST_BACKEND = Path(os.environ.get("RUST_BACKEND", REPOSITORY / "target/debug/backend"))
FIXTURES = sorted(
    str(p.relative_to(REPOSITORY))
    for source in ("sqs", "kinesis", "dynamodb", "eventbridge")
    for p in (REPOSITORY / "tests/fixtures" / source).glob("*.json")
)

# Under CI (the test command after `cargo test`) the binaries are built: missing is a failure.
if os.environ.get("CI") and not (LOCAL_LAMBDA.exists() and RUST_BACKEND.exists()):
    raise RuntimeError(f"CI: {LOCAL_LAMBDA} and {RUST_BACKEND} must be built before these tests")
pytestmark = pytest.mark.skipif(not LOCAL_LAMBDA.exists(), reason=f"{LOCAL_LAMBDA} is not built")


def replay(backend: Path, tmp_path: Path, delivery: str, invocation_type: str) -> tuple[list[str], Path, Path]:
    """The batch responses (one line per fixture), and the invocation log and results files."""
    log, results = tmp_path / f"{backend.name}-log.jsonl", tmp_path / f"{backend.name}-results.jsonl"
    env = {**os.environ, "ROUTER_DELIVERY": delivery, "ROUTER_INVOCATION_TYPE": invocation_type,
           "BACKEND_PYTHON": os.environ.get("BACKEND_PYTHON", sys.executable)}
    done = subprocess.run(
        [str(LOCAL_LAMBDA), "replay", "--at", "2026-01-01T00:00:01Z", "--backend", str(backend),
         "--environment-output", str(tmp_path / f"{backend.name}-environments.log"), "--log", str(log),
         "--results", str(results), *FIXTURES],
        cwd=REPOSITORY, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    responses = [line for line in done.stdout.splitlines() if line.startswith("tests/fixtures/")]
    assert len(responses) == len(FIXTURES)
    return responses, log, results


@pytest.mark.parametrize("delivery", ["record", "tenant-batch"])
def test_request_response_answers_are_those_of_the_rust_backend(delivery, tmp_path):
    if not RUST_BACKEND.exists():
        pytest.skip(f"{RUST_BACKEND} is not built")
    python, log, _ = replay(BOOTSTRAP, tmp_path, delivery, "request-response")
    rust, _, _ = replay(RUST_BACKEND, tmp_path, delivery, "request-response")
    assert python == rust
    tenants = defaultdict(set)
    for line in log.read_text().splitlines():
        attempt = json.loads(line)
        if attempt.get("environmentId"):
            tenants[attempt["environmentId"]].add(attempt["tenantId"])
    assert tenants and all(len(served) == 1 for served in tenants.values()), tenants


def test_async_results_are_answers_of_the_schema(tmp_path, schemas):
    _, _, results = replay(BOOTSTRAP, tmp_path, "tenant-batch", "event")
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert records and all(r["requestContext"]["condition"] == "Success" for r in records)
    delivery, answer = schemas.validator("delivery"), schemas.validator("answer")
    for record in records:
        delivery.validate(record["requestPayload"])
        answer.validate(record["responsePayload"])
        assert record["responsePayload"]["tenantId"] == record["tenantId"]
