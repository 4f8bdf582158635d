"""The tenant's business logic, from the SaaS to-do example: the Python twin of
``backend/src/lib.rs``. It enriches a newly added to-do item with the tenant's own rules
(priority, due date, tags, title prefix), read from ``$BACKEND_TENANT_CONFIG_DIR/<tenant>.json``
once per execution environment and cached: safe only because the guard pins the environment to one
tenant for life.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG_DIR_VARIABLE = "BACKEND_TENANT_CONFIG_DIR"
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)")


class NoItem(ValueError):
    """The payload holds no to-do item object."""

    def __init__(self) -> None:
        super().__init__("the payload holds no to-do item (an object at /item, or the payload itself)")


@dataclass(frozen=True)
class TenantConfig:
    """One tenant's rules for new to-do items (the file's members are camelCase)."""

    display_name: str
    default_priority: str = "normal"
    due_in_days: int = 7
    tags: tuple[str, ...] = field(default_factory=tuple)
    title_prefix: str = ""

    @classmethod
    def load(cls, directory: Path | None, tenant: str) -> TenantConfig:
        """``<directory>/<tenant>.json``, or the defaults when there is no such file. A file that
        exists but cannot be read is an error: a tenant must not silently lose its rules."""
        if directory is None:
            return cls(display_name=tenant)
        path = directory / f"{file_stem(tenant)}.json"
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return cls(display_name=tenant)
        except OSError as error:
            raise ValueError(f"cannot read {path}: {error}") from None
        try:
            raw = json.loads(text)
            config = cls(
                display_name=_typed(raw, "displayName", str),
                default_priority=_typed(raw, "defaultPriority", str),
                due_in_days=_typed(raw, "dueInDays", int),
                tags=tuple(_typed(raw, "tags", list)),
                title_prefix=_typed(raw, "titlePrefix", str, default=""),
            )
            if not all(isinstance(tag, str) for tag in config.tags):
                raise ValueError("`tags` holds a value that is not a string")
            return config
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path} is not a tenant configuration: {error}") from None


def _typed(raw: Any, name: str, kind: type, **default: Any) -> Any:
    if not isinstance(raw, dict):
        raise ValueError("not a JSON object")
    if name not in raw and default:
        return default["default"]
    value = raw.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ValueError(f"`{name}` is missing or not a {kind.__name__}")
    return value


def file_stem(tenant: str) -> str:
    """A file name for a tenant: lowercase letters, digits, ``_`` and ``-`` kept, anything else
    (upper case too, so that ``ACME`` and ``acme`` never share a file on a case-insensitive file
    system) hex-escaped: tenant ids may hold ``/``, so they are never used as a path as they are."""
    return "".join(
        c if (c.isascii() and (c.islower() or c.isdigit())) or c in "_-" else f"%{ord(c):02X}" for c in tenant
    )


def enrich(config: TenantConfig, tenant: str, envelope: dict) -> dict:
    """The enriched to-do item of ``envelope`` (its ``payload.item``, or the payload itself when
    it has no ``item``), with ``config``'s rules."""
    payload = envelope.get("payload")
    if not isinstance(payload, dict):
        raise NoItem()
    if "item" in payload:
        if not isinstance(payload["item"], dict):
            raise NoItem()
        item = dict(payload["item"])
    else:
        item = dict(payload)
    item.pop("tenantId", None)
    title = item.get("title")
    if isinstance(title, str) and not title.startswith(config.title_prefix):
        item["title"] = config.title_prefix + title
    item.setdefault("priority", config.default_priority)
    if "dueDate" not in item:
        arrived = _parse_rfc3339(envelope.get("arrivedAt")) or dt.datetime.now(dt.UTC)
        item["dueDate"] = (arrived + dt.timedelta(days=config.due_in_days)).strftime("%Y-%m-%d")
    tags = item.pop("tags", None)
    tags = list(tags) if isinstance(tags, list) else []
    for tag in config.tags:
        if tag not in [t for t in tags if isinstance(t, str)]:
            tags.append(tag)
    item["tags"] = tags
    item["tenantId"] = tenant
    return {
        "item": item,
        "tenantName": config.display_name,
        "environment": os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", ""),
    }


def _parse_rfc3339(text: Any) -> dt.datetime | None:
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return None
    try:
        return dt.datetime.fromisoformat(text.upper()).astimezone(dt.UTC)
    except ValueError:
        return None


_CONFIG: tuple[str, TenantConfig] | None = None


def config_for(tenant: str) -> TenantConfig:
    """The tenant's configuration, loaded once per execution environment (which serves one tenant)."""
    global _CONFIG
    if _CONFIG is not None:
        pinned, config = _CONFIG
        # The guard pins the environment, so this cannot differ; check anyway, never serve
        # another tenant's rules.
        if pinned != tenant:
            raise ValueError("tenant configuration belongs to another tenant")
        return config
    directory = os.environ.get(CONFIG_DIR_VARIABLE)
    config = TenantConfig.load(Path(directory) if directory else None, tenant)
    _CONFIG = (tenant, config)
    return config


def handle(envelope: dict, context: Any) -> dict:
    """The tenant handler the guard runs once per record."""
    return enrich(config_for(context.tenant_id), context.tenant_id, envelope)
