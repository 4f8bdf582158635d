"""The ``bootstrap`` executable as a Lambda environment runs it: a real process on awslambdaric,
against a minimal Runtime API served here on 127.0.0.1, the tenant in the ``next`` response's
``Lambda-Runtime-Aws-Tenant-Id`` header."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import BOOTSTRAP, REPOSITORY, batch, envelope, keyed

PREFIX = "/2018-06-01/runtime"


class RuntimeApi:
    """The Runtime API endpoints awslambdaric uses: ``next`` hands out queued invocations, the
    ``response`` / ``error`` / ``init/error`` posts are collected."""

    def __init__(self):
        self.pending: queue.Queue = queue.Queue()
        self.answers: dict[str, queue.Queue] = {}
        self.init_errors: queue.Queue = queue.Queue()
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, status: int, body: bytes = b"{}", headers: dict | None = None):
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self.reply(404)
                request_id, body, tenant = api.pending.get()
                headers = {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30_000),
                    "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:backend",
                    "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1",
                }
                if tenant is not None:
                    headers["Lambda-Runtime-Aws-Tenant-Id"] = tenant
                self.reply(200, body, headers)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.removeprefix(PREFIX).strip("/").split("/")
                if parts == ["init", "error"]:
                    api.init_errors.put(json.loads(body))
                elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                    api.answers.setdefault(parts[1], queue.Queue()).put((parts[2], json.loads(body)))
                else:
                    return self.reply(404)
                self.reply(202)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # a connection the stopped process dropped

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def invoke(self, event, tenant: str | None, timeout: float = 15) -> tuple[str, dict]:
        """One invocation: ``("response", result)`` or ``("error", {errorType, …})``."""
        request_id = str(uuid.uuid4())
        self.answers[request_id] = queue.Queue()
        self.pending.put((request_id, json.dumps(event).encode(), tenant))
        return self.answers[request_id].get(timeout=timeout)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def runtime_api():
    api = RuntimeApi()
    yield api
    api.close()


def start(executable: Path, api: RuntimeApi, cwd: Path, **variables) -> subprocess.Popen:
    """The environment local-lambda gives a function (it clears the rest), plus ``variables``."""
    env = {
        "PATH": os.environ["PATH"], "AWS_LAMBDA_RUNTIME_API": api.address, "AWS_LAMBDA_FUNCTION_NAME": "backend",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_STREAM_NAME": "env-0001", "AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_REGION": "us-east-1",
        "BACKEND_TENANT_CONFIG_DIR": str(REPOSITORY / "backend" / "tenants"), "BACKEND_PYTHON": sys.executable,
        "TZ": ":UTC",
    }
    env.update(variables)
    env = {k: v for k, v in env.items() if v is not None}
    output = open(cwd / "output.log", "wb")
    return subprocess.Popen([str(executable)], cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output,
                            stderr=subprocess.STDOUT)


def output(cwd: Path) -> list[dict]:
    lines = (cwd / "output.log").read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


def test_it_serves_its_tenant_and_fails_closed_on_another(runtime_api, tmp_path):
    # Started through a symbolic link from another directory, as a deployment tool might.
    link = tmp_path / "bin" / "bootstrap"
    link.parent.mkdir()
    link.symlink_to(BOOTSTRAP)
    process = start(link, runtime_api, tmp_path)
    try:
        kind, error = runtime_api.invoke(envelope("acme", "m0"), None)
        assert (kind, error["errorType"]) == ("error", "Tenant.Missing")
        kind, result = runtime_api.invoke(envelope("acme", "m1", payload={"item": {"title": "Ship it"}}), "acme")
        assert kind == "response"
        assert result["status"] == "processed"
        assert result["result"]["item"]["title"] == "[ACME] Ship it"
        assert result["result"]["environment"] == "env-0001"
        kind, again = runtime_api.invoke(envelope("acme", "m1", payload={"item": {"title": "Ship it"}}), "acme")
        assert again == {**result, "duplicate": True}
        kind, error = runtime_api.invoke(envelope("globex", "m2"), "acme")
        assert (kind, error["errorType"]) == ("error", "Tenant.Mismatch")
        kind, answer = runtime_api.invoke(
            batch("acme", [keyed("b1", "g", payload={"item": 1}), keyed("b2", "g"), envelope("acme", "b3")],
                  "lanes", "per-record"), "acme")
        assert kind == "response"
        assert [(r["id"], r["status"]) for r in answer["records"]] == [("b1", "failed"), ("b2", "skipped"),
                                                                        ("b3", "processed")]
        kind, error = runtime_api.invoke(envelope("globex", "m3"), "globex")
        assert (kind, error["errorType"]) == ("error", "Tenant.EnvironmentFailedClosed")
        assert process.wait(timeout=10) == 70, "a failed-closed environment ends itself"
    finally:
        stop(process)
    lines = output(tmp_path)
    documents = [line for line in lines if "_aws" in line]
    assert len(documents) == 6, "one EMF document per invocation"
    assert [d["tenant_id"] for d in documents] == [None, "acme", "acme", "acme", "acme", "globex"]
    assert [d["EnvironmentsCreated"] for d in documents] == [[1.0]] + [[0.0]] * 5
    assert documents[1]["memory_mb"] == 128
    security = [line for line in lines if line.get("security_event")]
    assert [s["security_event"] for s in security] == ["envelope-tenant-mismatch", "environment-tenant-mismatch"]
    processed = [line for line in lines if line.get("message") == "record processed"]
    assert processed and all(line["tenant_id"] == "acme" for line in processed)


@pytest.mark.parametrize(
    ("variables", "named"),
    [
        ({"BACKEND_IDEMPOTENCY_TTL_SECONDS": "soon"}, "BACKEND_IDEMPOTENCY_TTL_SECONDS"),
        ({"BACKEND_IDEMPOTENCY_TTL_SECONDS": "60"}, "BACKEND_IDEMPOTENCY_TTL_SECONDS"),
        ({"BACKEND_IDEMPOTENCY_TABLE": ""}, "BACKEND_IDEMPOTENCY_TABLE"),
        ({"BACKEND_IDEMPOTENCY_TABLE": "idempotency", "POWERTOOLS_IDEMPOTENCY_DISABLED": "true"},
         "POWERTOOLS_IDEMPOTENCY_DISABLED"),
    ],
    ids=["ttl-not-a-number", "ttl-below-900", "blank-table", "idempotency-disabled-with-a-table"],
)
def test_a_bad_setting_is_an_init_error(runtime_api, tmp_path, variables, named):
    # Fail closed: the environment never starts, rather than running records without the store.
    process = start(BOOTSTRAP, runtime_api, tmp_path, **variables)
    try:
        error = runtime_api.init_errors.get(timeout=15)
        assert error["errorType"] == "ValueError"
        assert error["errorMessage"].startswith(named)
        assert process.wait(timeout=10) != 0
    finally:
        stop(process)


def test_without_a_runtime_api_it_says_so(tmp_path):
    done = subprocess.run([str(BOOTSTRAP)], cwd=tmp_path, env={"PATH": os.environ["PATH"]}, capture_output=True,
                          text=True, timeout=10)
    assert done.returncode == 2
    assert "AWS_LAMBDA_RUNTIME_API is not set" in done.stderr


@pytest.mark.skipif(not (REPOSITORY / "target/python-backend/venv/bin/python").exists(),
                    reason="scripts/fetch-python-backend.sh has not made the venv")
def test_it_finds_the_repositorys_venv_by_itself(runtime_api, tmp_path):
    process = start(BOOTSTRAP, runtime_api, tmp_path, BACKEND_PYTHON=None)
    try:
        kind, result = runtime_api.invoke(envelope("initech", "m1", payload={"title": "x"}), "initech")
        assert (kind, result["result"]["item"]["title"]) == ("response", "TPS: x")
    finally:
        stop(process)
