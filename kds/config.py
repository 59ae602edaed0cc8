"""`config.toml`: the schema (pydantic) and loading with errors that name the key.

The whole file, sources included, is validated before anything starts. Each
source's section is validated by the `Config` model of its own module (see
`kds.sources.registry`), printers by `kds.printing.config.PrinterConfig` (both
imported only when the config has such a section).
"""

from __future__ import annotations

import difflib
import re
import tomllib
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

from .durations import Duration, format_duration, parse_duration
from .model import PurchaseType
from .sources.native.config import Config as NativeSourceConfig
from .sources.registry import (
    SOURCE_PACKAGES,
    SourceConfig,
    check_source,
    config_model,
    known_types,
)


def _purchase_type(value: Any) -> Any:
    """ "takeaway", "TakeAway" and "takeAway" all name PurchaseType.TAKE_AWAY."""
    if isinstance(value, str):
        by_lower = {t.value.lower(): t.value for t in PurchaseType}
        return by_lower.get(value.strip().lower().replace("-", "").replace("_", ""), value)
    return value


PickupType = Annotated[PurchaseType, BeforeValidator(_purchase_type)]
Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class LazyModel:
    """A field's model, imported when a config sets the field (not at every start)."""

    def __init__(self, load: Callable[[], type[BaseModel]]) -> None:
        self.load = load

    def validate(self, raw: Any) -> BaseModel:
        model = self.load()
        return raw if isinstance(raw, model) else model.model_validate(raw)

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self.validate)


def _printer_model() -> type[BaseModel]:
    from .printing.config import PrinterConfig  # a kitchen of screens never loads kds.printing

    return PrinterConfig


#: `printer = {...}` of an endpoint: a kds.printing.config.PrinterConfig.
Printer = Annotated[Any, LazyModel(_printer_model)]


class Section(BaseModel):
    """Base for config sections: unknown keys are errors (typos must not pass)."""

    model_config = ConfigDict(extra="forbid")


def _valid_listen(value: str) -> str:
    split_listen(value)  # ValueError names the expected shape; pydantic adds the key
    return value


class ServerConfig(Section):
    """[server]"""

    listen: Annotated[str, AfterValidator(_valid_listen)] = "0.0.0.0:8080"
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    shutdown_grace: Duration = 5.0
    # Names (the Host header) kds answers to besides loopback names, IP addresses and this
    # machine's hostname; anything else is refused where trust comes from the network (DNS rebinding).
    allowed_hosts: list[Annotated[str, Field(min_length=1, max_length=253)]] = Field(
        default_factory=list
    )
    # A connection must send a request's headers within header_timeout, and may sit idle
    # between requests for keepalive_timeout; then it is closed.
    header_timeout: Annotated[float, Field(gt=0), BeforeValidator(parse_duration)] = 10.0
    keepalive_timeout: Annotated[float, Field(gt=0), BeforeValidator(parse_duration)] = 30.0
    # Connections one client address may hold (0: no cap); loopback is exempt unless limit_loopback.
    max_connections_per_client: int = Field(default=64, ge=0)
    limit_loopback: bool = False
    # Connections in all (0: the open-file limit less a reserve for the database, printers and POS).
    max_connections: int = Field(default=0, ge=0)

    @property
    def host_port(self) -> tuple[str, int]:
        return split_listen(self.listen)


class DatabaseConfig(Section):
    """[database]"""

    path: str = "kds.sqlite3"
    #: `postgresql://user@host:5432/kds` selects the PostgreSQL store (several nodes, sites);
    #: unset, kds keeps its data in the SQLite file at `path`.
    url: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    synchronous: str = Field(default="FULL", pattern=r"^(FULL|NORMAL|EXTRA)$")
    archive_after: Duration = 24 * 3600
    archive_interval: Duration = 60
    inbox_retention: Duration = 7 * 86400


class TimersConfig(Section):
    """Elapsed-time colours of a station's cards."""

    warn_after: Duration = 300
    late_after: Duration = 600
    #: A late ticket's red header flashes (a slow pulse between two dark reds).
    late_flash: bool = False
    #: An alarm sounds once when a ticket on screen turns late.
    late_sound: bool = False

    @model_validator(mode="after")
    def _late_after_warn(self) -> TimersConfig:
        if self.late_after <= self.warn_after:
            raise ValueError(
                f"late_after ({format_duration(self.late_after)}) must be later than "
                f"warn_after ({format_duration(self.warn_after)})"
            )
        return self


#: What a bump-bar key can do (`keys = { "F1" = "bump" }`); the screens' web/js/keyboard.js
#: knows the same list (a test keeps them equal).
KEY_ACTIONS = (
    "accept",
    "bump",
    "bumpItem",
    "recall",
    "refuse",
    "undo",
    "cancel",
    "nextPage",
    "prevPage",
    "none",
    *(f"select{n}" for n in range(10)),
)


def _key_action(value: str) -> str:
    if value not in KEY_ACTIONS:
        raise ValueError(f"unknown action {value!r}{_suggest(value, KEY_ACTIONS)}")
    return value


KeyAction = Annotated[str, AfterValidator(_key_action)]


class EndpointConfig(Section):
    """[[endpoints]]: a kitchen station — a screen, a printer, or both."""

    name: Name
    display: bool | None = None
    printer: Printer | None = None
    auto_process: bool | None = None
    is_active: bool = True
    timers: TimersConfig = Field(default_factory=TimersConfig)
    keys: dict[str, KeyAction] = Field(default_factory=dict)
    type: str | None = None
    # Pacing (kds.pacing): later courses held until fired, the delay of an automatic
    # fire after the previous course is bumped, auto-bump, a scheduled order's window.
    hold_courses: bool = False
    fire_delay: Duration = 0
    auto_bump_after: Annotated[float, Field(gt=0), BeforeValidator(parse_duration)] | None = None
    lead_time: Duration = 900

    @model_validator(mode="after")
    def _defaults(self) -> EndpointConfig:
        # A station without a printer is a screen; a printer-only station has no
        # cook to tap, so it is processed once the printer delivered (DESIGN §4).
        if self.display is None:
            self.display = self.printer is None
        if self.auto_process is None:
            self.auto_process = self.printer is not None and not self.display
        if not self.display and self.printer is None:
            raise ValueError("an endpoint needs display = true or a printer")
        return self

    @property
    def kind(self) -> str:
        """screen, printer or both."""
        if self.display and self.printer:
            return "screen+printer"
        return "screen" if self.display else "printer"


class ProductMatch(Section):
    """Which products a rule is about: a product code, group and/or name glob (all must match)."""

    product_code: str | int | None = None
    product_group: str | None = None
    name_pattern: str | None = None

    def _require_match(self) -> None:
        if self.product_code is None and self.product_group is None and self.name_pattern is None:
            raise ValueError("a rule needs product_code, product_group or name_pattern")


class RoutingRule(ProductMatch):
    """One routing rule: the first rule that matches an item sends it to `endpoint`."""

    endpoint: Name | None = None
    endpoints: list[Name] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> RoutingRule:
        if self.endpoint:
            self.endpoints = [self.endpoint, *[e for e in self.endpoints if e != self.endpoint]]
        if not self.endpoints:
            raise ValueError("a rule needs `endpoint` (or `endpoints`)")
        self._require_match()
        return self


class PrepTimeRule(ProductMatch):
    """[[prep_times]]: how long the products a rule matches take (the first match counts)."""

    time: Annotated[float, Field(gt=0), BeforeValidator(parse_duration)]

    @model_validator(mode="after")
    def _complete(self) -> PrepTimeRule:
        self._require_match()
        return self


class RoutingConfig(Section):
    """[routing]"""

    default_endpoint: Name | None = None
    rules: list[RoutingRule] = Field(default_factory=list)


class UiConfig(Section):
    """[ui]: what the screens show."""

    lang: str = Field(default="en", pattern=r"^(en|sk|de|ru)$")
    pickup_ready_time: Duration = 120
    recall_window: Duration = 600
    sound: bool = True
    # Pickup numbers count 1..max_pickup_number, then start again (kds.numbers).
    max_pickup_number: int = Field(default=999, ge=2, le=999_999)
    # Purchase types whose numbers the pickup board shows (table orders go to the table).
    pickup_types: list[PickupType] = Field(
        default_factory=lambda: [PurchaseType.TAKE_AWAY, PurchaseType.DELIVERY]
    )


class TokenConfig(Section):
    """One API/screen credential; only its SHA-256 is kept (`kds token` makes one)."""

    name: Annotated[str, Field(min_length=1, max_length=64)]
    role: str = Field(pattern=r"^(pos|kitchen|viewer|admin)$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    # A kitchen token limited to these endpoints (their screens, feed and status routes); None: all.
    endpoints: list[Name] | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _kitchen_only(self) -> TokenConfig:
        if self.endpoints is not None and self.role != "kitchen":
            raise ValueError(
                "endpoints limits a kitchen token; other roles cannot be limited to endpoints"
            )
        return self


class SecurityConfig(Section):
    """[security]: who may do what.

    access = "tokens": every request needs a token of the right role.
    access = "loopback" (default): requests from this machine (127.0.0.1, ::1) are
    trusted; everyone else on the network needs a token.
    access = "open": no tokens at all — only on a trusted LAN (kds demo uses it).
    """

    access: str = Field(default="loopback", pattern=r"^(tokens|loopback|open)$")
    tokens: list[TokenConfig] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)
    ingest_rate: float = Field(default=200.0, ge=0)
    ingest_burst: int = Field(default=1000, ge=1)
    secure_cookies: bool = False


class NodeConfig(Section):
    """[node]: this kds among several on one PostgreSQL database."""

    #: How /readyz and /api/v1/printers name this node (default: the host name).
    name: Name | None = None
    #: The site (restaurant) this node serves when one database holds several.
    site: Name | None = None


class LoggingConfig(Section):
    """[logging]"""

    level: str = Field(default="info", pattern=r"^(debug|info|warning|error)$")
    format: str = Field(default="auto", pattern=r"^(auto|json|console)$")


#: `[allergens]`: an allergen's name (shown on screens and paper) and its keywords.
AllergenName = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^\S(.*\S)?$")]
Keyword = Annotated[str, Field(min_length=1, max_length=64, pattern=r"\S")]


class Settings(Section):
    """The whole config.toml."""

    server: ServerConfig = Field(default_factory=ServerConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    endpoints: list[EndpointConfig] = Field(min_length=1)
    routing: RoutingConfig = Field(default_factory=RoutingConfig)
    prep_times: list[PrepTimeRule] = Field(default_factory=list)
    # Each [[sources]] entry as the Config of its package, chosen by `type` (kds.sources.registry).
    sources: list[SourceConfig] = Field(default_factory=lambda: [NativeSourceConfig()])
    ui: UiConfig = Field(default_factory=UiConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    node: NodeConfig = Field(default_factory=NodeConfig)
    allergens: dict[AllergenName, Annotated[list[Keyword], Field(min_length=1)]] = Field(
        default_factory=dict
    )

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        names = [e.name for e in self.endpoints]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"endpoint names must be unique, repeated: {', '.join(duplicates)}")
        if self.routing.default_endpoint is None:
            self.routing.default_endpoint = names[0]
        elif self.routing.default_endpoint not in names:
            raise ValueError(
                f"routing.default_endpoint {self.routing.default_endpoint!r} is not an endpoint"
            )
        by_name = {e.name: e for e in self.endpoints}
        for e in self.endpoints:
            fallback = e.printer.fallback if e.printer else None
            if fallback and ":" not in fallback:
                other = by_name.get(fallback)
                if other is None or other.printer is None:
                    raise ValueError(
                        f"endpoints.{e.name}.printer.fallback: {fallback!r} is not an endpoint with a printer"
                    )
                if other is e:
                    raise ValueError(
                        f"endpoints.{e.name}.printer.fallback: a printer cannot be its own fallback"
                    )
        for token in self.security.tokens:
            unknown = sorted(set(token.endpoints or ()) - set(names))
            if unknown:
                raise ValueError(
                    f"security.tokens {token.name!r} names unknown endpoint(s): {', '.join(unknown)}"
                )
        for i, rule in enumerate(self.routing.rules):
            unknown = [e for e in rule.endpoints if e not in names]
            if unknown:
                raise ValueError(
                    f"routing.rules[{i}] names unknown endpoint(s): {', '.join(unknown)}"
                )
        return self

    def endpoint(self, name: str) -> EndpointConfig | None:
        """The config of endpoint `name`, if configured."""
        return next((e for e in self.endpoints if e.name == name), None)


class ConfigError(Exception):
    """The config cannot be used; the message names each bad key and why."""


#: A host name, IPv4 address or IPv6 address (bracketed or not); empty means every address.
_LISTEN_HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]*$")


def split_listen(listen: str) -> tuple[str, int]:
    """`"host:port"` (or `"[::1]:port"`) → (host, port); ValueError for anything kds cannot bind."""
    host, sep, port = listen.rpartition(":")
    if (
        not sep
        or not (port.isascii() and port.isdigit())
        or not 0 <= int(port) <= 65535
        or not _LISTEN_HOST.match(host)
    ):
        raise ValueError(
            f"expected HOST:PORT with a port 0-65535 (e.g. 0.0.0.0:8080), got {listen!r}"
        )
    return host.strip("[]") or "0.0.0.0", int(port)


def _suggest(word: str, choices: typing.Iterable[str]) -> str:
    """ " — did you mean 'x'?" for the closest choice, else the choices themselves."""
    choices = sorted(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else f" (known: {', '.join(choices)})"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config model inside an annotation such as `list[EndpointConfig]` or `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if isinstance(annotation, LazyModel):  # in Annotated[...]'s metadata
        return annotation.load()
    for arg in typing.get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None


def _model_at(model: type[BaseModel] | None, path: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model of the section at `path` (list indexes are skipped)."""
    for part in path:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part) if model is not None else None
        if field is None:
            return None
        model = _model_in(field.annotation)
    return model


def _keys_of(model: type[BaseModel] | None) -> list[str]:
    return [name for name, f in (model.model_fields if model else {}).items() if not f.exclude]


def _label(path: tuple[Any, ...], data: Any) -> str:
    """`("endpoints", 0, "timers")` → "endpoints.grill.timers": sections by their name."""
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            item = data[part] if isinstance(data, list) and 0 <= part < len(data) else None
            name = item.get("name") if isinstance(item, dict) else None
            if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                out.append(f".{name}")
            else:
                out.append(f"[{part}]")
            data = item
        else:
            out.append(f".{part}" if out else str(part))
            data = data.get(part) if isinstance(data, dict) else None
    return "".join(out)


def _join(section: str, key: str) -> str:
    return f"{section}.{key}" if section and key and not key.startswith("[") else section + key


def _format_errors(
    err: ValidationError, data: Any, model: type[BaseModel], prefix: str = ""
) -> str:
    """One line per error: where (by name), what is wrong, and the key that was probably meant."""
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        if loc[:1] == ("sources",) and len(loc) > 1 and isinstance(loc[1], int):
            lines.append(_source_error(e, loc, data))
        else:
            lines.append(_error_line(e, loc, data, model, prefix))
    return "\n".join(lines)


def _error_line(
    e: Any, loc: tuple[Any, ...], data: Any, model: type[BaseModel] | None, prefix: str
) -> str:
    """`where: reason` of one error at `loc` in the section `data` (validated by `model`)."""
    if e["type"] == "extra_forbidden":
        parent, key = loc[:-1], str(loc[-1])
        where = _join(prefix, _label(parent, data))
        reason = f"unknown key {key!r}{_suggest(key, _keys_of(_model_at(model, parent)))}"
    else:
        where = _join(prefix, _label(loc, data))
        reason = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            reason = "required, but missing"
    return f"{where}: {reason}" if where else reason


def _source_error(e: Any, loc: tuple[Any, ...], data: Any) -> str:
    """An error in a [[sources]] entry, named `sources.<name or type>` and read against its Config."""
    sources = data.get("sources") if isinstance(data, dict) else None
    sources = sources if isinstance(sources, list) else []
    raw = sources[loc[1]] if loc[1] < len(sources) else None
    label = _source_label(loc[1], raw, sources)
    if e["type"] == "union_tag_invalid":
        return f"{label}: unknown source type {e['ctx']['tag']!r} (known: {known_types()})"
    if e["type"] == "union_tag_not_found":
        return f"{label}: `type` is required ({known_types()})"
    kind = raw.get("type") if isinstance(raw, dict) else None
    model = config_model(kind) if isinstance(kind, str) and kind in SOURCE_PACKAGES else None
    return _error_line(e, loc[2:], raw, model, label)


def _source_label(index: int, raw: Any, sources: list[Any]) -> str:
    """`sources.portos` (its name, else its type when that is unique), else `sources[1]`."""
    raw = raw if isinstance(raw, dict) else {}
    for key in ("name", "type"):
        value = raw.get(key)
        same = [s for s in sources if isinstance(s, dict) and s.get(key) == value]
        if isinstance(value, str) and len(same) == 1:
            return f"sources.{value}"
    return f"sources[{index}]"


def settings_from_dict(data: dict[str, Any]) -> Settings:
    """Validate a parsed config; raise ConfigError naming every bad key."""
    try:
        settings = Settings.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, data, Settings)) from err
    errors = []
    raw = data.get("sources") if isinstance(data.get("sources"), list) else []
    kds_endpoints = {e.name for e in settings.endpoints}
    for i, config in enumerate(settings.sources):
        label = _source_label(i, raw[i] if i < len(raw) else None, raw)
        errors += [f"{label}.{e}" for e in check_source(config, kds_endpoints)]
    names = [c.name for c in settings.sources]
    if len(names) != len(set(names)):
        errors.append("sources: each source needs a unique `name` (defaults to its type)")
    if errors:
        raise ConfigError("\n".join(errors))
    return settings


def load_settings(path: str | Path) -> Settings:
    """Read and validate a config.toml."""
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise ConfigError(f"{path}: no such file") from err
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from err
    return settings_from_dict(data)
