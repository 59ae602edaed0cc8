"""Which module handles each `[[sources]] type`.

A source module exposes `Config` (a pydantic model with `type` and `name`),
`WRITES_BACK` and `create(config, ctx) -> Component`, and optionally
`check(config, kds_endpoints) -> list[str]` for checks against the whole config. Modules are imported on
demand so a broken optional integration cannot stop the others loading.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from types import ModuleType
from typing import Any

from pydantic import BaseModel

SOURCE_MODULES: dict[str, str] = {
    "native": "kds.sources.native",
    "portos": "kds.sources.portos",
    "ready2order": "kds.sources.ready2order",
    "cheques": "kds.sources.cheques",
}


def source_module(source_type: str) -> ModuleType:
    """The adapter module of `source_type`."""
    try:
        return importlib.import_module(SOURCE_MODULES[source_type])
    except KeyError:
        known = ", ".join(sorted(SOURCE_MODULES))
        raise ValueError(f"unknown source type {source_type!r} (known: {known})") from None


def validate_source(raw: dict[str, Any]) -> BaseModel:
    """Validate one [[sources]] entry with its module's Config model."""
    source_type = raw.get("type")
    if not isinstance(source_type, str):
        raise ValueError("`type` is required (native, portos, ready2order or cheques)")
    return source_module(source_type).Config.model_validate(raw)


def check_source(config: BaseModel, kds_endpoints: Collection[str]) -> list[str]:
    """Errors of a validated source config against the rest of the config (e.g. unknown endpoints)."""
    check = getattr(source_module(config.type), "check", None)  # type: ignore[attr-defined]
    return list(check(config, kds_endpoints)) if check is not None else []
