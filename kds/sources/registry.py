"""Which package handles each `[[sources]] type`: one folder per POS.

A source package `kds.sources.<type>` has a `config` module with `Config` (a
pydantic model with `type: Literal[...]` and `name`) and optionally
`check(config, kds_endpoints) -> list[str]` for checks against the whole
config, and a `source` module with `WRITES_BACK` and `create(config, ctx) ->
Component`. `SourceConfig` validates a `[[sources]]` entry with the rest of
config.toml, as the `Config` of the package its `type` names: only the packages
a config names are imported (a daemon that takes orders only on its own API
builds no POS models at start). The source modules are imported when the daemon
is built.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from types import ModuleType
from typing import Annotated, Any

from pydantic import BaseModel, PlainValidator, TypeAdapter
from pydantic_core import PydanticCustomError

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


def _source_config(raw: Any) -> BaseModel:
    """A `[[sources]]` entry as the Config of its `type`; errors as a union tagged on `type` has."""
    if isinstance(raw, BaseModel):  # a Config already (a default, or built by kds demo)
        return raw
    if not isinstance(raw, dict):
        raise PydanticCustomError(
            "model_attributes_type",
            "Input should be a valid dictionary or object to extract fields from",
        )
    if "type" not in raw:
        raise PydanticCustomError(
            "union_tag_not_found",
            "Unable to extract tag using discriminator {discriminator}",
            {"discriminator": "'type'"},
        )
    tag = raw["type"]
    if not isinstance(tag, str) or tag not in SOURCE_PACKAGES:
        raise PydanticCustomError(
            "union_tag_invalid",
            "Input tag {tag} found using {discriminator} does not match any of the expected tags",
            {"tag": str(tag), "discriminator": "'type'"},
        )
    return config_model(tag).model_validate(raw)


#: One `[[sources]]` entry: the Config of the package its `type` names.
SourceConfig: Any = Annotated[Any, PlainValidator(_source_config)]


_ADAPTER: TypeAdapter[Any] = TypeAdapter(SourceConfig)


def validate_source(raw: Any) -> BaseModel:
    """One `[[sources]]` entry as its package's Config (pydantic's ValidationError when it is not)."""
    config: BaseModel = _ADAPTER.validate_python(raw)
    return config


def check_source(config: BaseModel, kds_endpoints: Collection[str]) -> list[str]:
    """Errors of a validated source config against the rest of the config (e.g. unknown endpoints)."""
    check = getattr(config_module(config.type), "check", None)  # type: ignore[attr-defined]
    return list(check(config, kds_endpoints)) if check is not None else []
