"""The to-do enrichment, case by case as ``backend/src/lib.rs`` tests it, on the same tenant files."""

from __future__ import annotations

import json

import pytest

import todo
from conftest import REPOSITORY, envelope

TENANTS = REPOSITORY / "backend" / "tenants"


def acme() -> todo.TenantConfig:
    return todo.TenantConfig.load(TENANTS, "acme")


def todo_envelope(payload) -> dict:
    return envelope("acme", "m1", payload=payload, arrivedAt="2026-01-01T00:00:00.000Z")


def test_enriches_with_the_tenants_rules(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_LOG_STREAM_NAME", "env-0001")
    payload = {"tenantId": "acme", "item": {"id": 1, "title": "Ship it", "tags": ["x"]}}
    out = todo.enrich(acme(), "acme", todo_envelope(payload))
    assert out == {
        "item": {"id": 1, "title": "[ACME] Ship it", "priority": "high", "dueDate": "2026-01-03",
                 "tags": ["x", "acme", "sla-gold"], "tenantId": "acme"},
        "tenantName": "ACME Corporation",
        "environment": "env-0001",
    }
    assert payload["item"]["title"] == "Ship it", "the envelope is left as it was"


def test_keeps_what_the_item_already_says():
    out = todo.enrich(acme(), "acme", todo_envelope({"title": "[ACME] x", "priority": "low", "dueDate": "2030-01-01",
                                                     "tags": ["acme"], "tenantId": "forged"}))
    item = out["item"]
    assert (item["title"], item["priority"], item["dueDate"]) == ("[ACME] x", "low", "2030-01-01")
    assert item["tags"] == ["acme", "sla-gold"]
    assert item["tenantId"] == "acme", "the tenant is the context's, never the payload's"


@pytest.mark.parametrize("payload", [[1], {"item": 5}, "text", None])
def test_refuses_a_payload_without_an_item(payload):
    with pytest.raises(todo.NoItem, match="the payload holds no to-do item"):
        todo.enrich(acme(), "acme", todo_envelope(payload))


def test_the_due_date_counts_from_arrival_in_utc():
    config = todo.TenantConfig(display_name="x", due_in_days=1)
    for arrived, due in [("2026-01-01T23:30:00.000Z", "2026-01-02"), ("2026-01-01T23:30:00-02:00", "2026-01-03"),
                         ("2026-01-01t23:30:00.123456789z", "2026-01-02")]:
        item = todo.enrich(config, "x", envelope(arrivedAt=arrived, payload={}))["item"]
        assert item["dueDate"] == due, arrived


def test_unknown_tenants_get_defaults_and_odd_ids_stay_inside_the_directory():
    assert todo.file_stem("../acme") == "%2E%2E%2Facme"
    assert todo.file_stem("ACME") == "%41%43%4D%45"
    assert todo.file_stem("a_b-c9") == "a_b-c9"
    assert todo.TenantConfig.load(TENANTS, "../acme") == todo.TenantConfig(display_name="../acme")
    assert todo.TenantConfig.load(None, "acme") == todo.TenantConfig(
        display_name="acme", default_priority="normal", due_in_days=7, tags=(), title_prefix="")


def test_a_tenant_file_that_cannot_be_read_is_an_error(tmp_path):
    (tmp_path / "acme.json").write_text(json.dumps({"displayName": "A", "defaultPriority": "p", "dueInDays": "2",
                                                    "tags": []}))
    with pytest.raises(ValueError, match="is not a tenant configuration: `dueInDays`"):
        todo.TenantConfig.load(tmp_path, "acme")
    (tmp_path / "acme.json").write_text("{")
    with pytest.raises(ValueError, match="is not a tenant configuration"):
        todo.TenantConfig.load(tmp_path, "acme")


def test_the_configuration_is_loaded_once_per_environment(monkeypatch, tmp_path):
    monkeypatch.setattr(todo, "_CONFIG", None)
    monkeypatch.setenv(todo.CONFIG_DIR_VARIABLE, str(TENANTS))
    assert todo.config_for("acme").display_name == "ACME Corporation"
    monkeypatch.setenv(todo.CONFIG_DIR_VARIABLE, str(tmp_path))
    assert todo.config_for("acme").display_name == "ACME Corporation", "cached"
    with pytest.raises(ValueError, match="belongs to another tenant"):
        todo.config_for("globex")
