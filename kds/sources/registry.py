"""Which package handles each `[[sources]] type`: one folder per POS.

A source package `kds.sources.<type>` has a `config` module with `Config` (a
pydantic model with `type: Literal[...]` and `name`) and optionally
`check(config, kds_endpoints) -> list[str]` for checks against the whole
config, and a `source` module with `WRITES_BACK` and `create(config, ctx) ->
Component`. The config models are light and imported here, to build
`SourceConfig`: the discriminated union (on `type`) that `[[sources]]` entries
are validated with, once, with the rest of config.toml. The source modules are
imported on demand, when the daemon is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from types import ModuleType
from typing import Annotated, Any, Union

from pydantic import BaseModel, Discriminator, TypeAdapter

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
        raise ValueError(f"unknown source type {source_type!r} (known: {known_types()})") from None


def known_types() -> str:
    """The source types, for messages."""
    return ", ".join(sorted(SOURCE_PACKAGES))


def config_module(source_type: str) -> ModuleType:
    """The config module of `source_type` (its `Config`, and `check` if any)."""
    return importlib.import_module(f"{_package(source_type)}.config")


def source_module(source_type: str) -> ModuleType:
    """The adapter module of `source_type` (`create`, `WRITES_BACK`)."""
    return importlib.import_module(f"{_package(source_type)}.source")


def config_model(source_type: str) -> type[BaseModel]:
    """The `Config` model of `source_type`."""
    model: type[BaseModel] = config_module(source_type).Config
    return model


#: One `[[sources]]` entry: the Config of the package its `type` names.
SourceConfig: Any = Annotated[
    Union[tuple(config_model(t) for t in SOURCE_PACKAGES)],  # noqa: UP007 (built at run time)
    Discriminator("type"),
]


_ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceConfig)


def validate_source(raw: Any) -> BaseModel:
    """One `[[sources]]` entry as its package's Config (pydantic's ValidationError when it is not)."""
    config: BaseModel = _ADAPTER.validate_python(raw)
    return config


def check_source(config: BaseModel, kds_endpoints: Collection[str]) -> list[str]:
    """Errors of a validated source config against the rest of the config (e.g. unknown endpoints)."""
    check = getattr(config_module(config.type), "check", None)  # type: ignore[attr-defined]
    return list(check(config, kds_endpoints)) if check is not None else []
