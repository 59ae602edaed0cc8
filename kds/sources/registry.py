"""Which package handles each `[[sources]] type`: one folder per POS.

A source package `kds.sources.<type>` has a `config` module with `Config` (a
pydantic model with `type` and `name`) and optionally `check(config,
kds_endpoints) -> list[str]` for checks against the whole config, and a
`source` module with `WRITES_BACK` and `create(config, ctx) -> Component`.
Source modules are imported on demand (when the daemon is built), so a broken
optional integration cannot stop the others loading.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from types import ModuleType
from typing import Any

from pydantic import BaseModel

SOURCE_PACKAGES: dict[str, str] = {
    "native": "kds.sources.native",
    "portos": "kds.sources.portos",
    "ready2order": "kds.sources.ready2order",
    "cheques": "kds.sources.cheques",
}


def _package(source_type: str) -> str:
    try:
        return SOURCE_PACKAGES[source_type]
    except KeyError:
        known = ", ".join(sorted(SOURCE_PACKAGES))
        raise ValueError(f"unknown source type {source_type!r} (known: {known})") from None


def config_module(source_type: str) -> ModuleType:
    """The config module of `source_type` (its `Config`, and `check` if any)."""
    return importlib.import_module(f"{_package(source_type)}.config")


def source_module(source_type: str) -> ModuleType:
    """The adapter module of `source_type` (`create`, `WRITES_BACK`)."""
    return importlib.import_module(f"{_package(source_type)}.source")


def validate_source(raw: dict[str, Any]) -> BaseModel:
    """Validate one [[sources]] entry with its package's Config model."""
    source_type = raw.get("type")
    if not isinstance(source_type, str):
        raise ValueError("`type` is required (native, portos, ready2order or cheques)")
    return config_module(source_type).Config.model_validate(raw)


def check_source(config: BaseModel, kds_endpoints: Collection[str]) -> list[str]:
    """Errors of a validated source config against the rest of the config (e.g. unknown endpoints)."""
    check = getattr(config_module(config.type), "check", None)  # type: ignore[attr-defined]
    return list(check(config, kds_endpoints)) if check is not None else []
