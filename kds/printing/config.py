"""Configuration of one kitchen printer (the `printer = {...}` of an endpoint).

Durations accept seconds as a number or a string with a unit ("500ms", "3s",
"1m"), like the rest of config.toml.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

DEFAULT_PORT = 9100

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(value: Any) -> Any:
    """Seconds from a number or a string like "500ms", "3s", "1m"."""
    if isinstance(value, str):
        match = _DURATION.match(value)
        if not match:
            raise ValueError(f"not a duration: {value!r} (use e.g. 500ms, 3s, 1m)")
        return float(match.group(1)) * _UNITS[match.group(2)]
    return value


Seconds = Annotated[float, BeforeValidator(parse_duration), Field(gt=0, le=3600)]


def split_address(address: str, default_port: int = DEFAULT_PORT) -> tuple[str, int]:
    """(host, port) of "host", "host:port" or "[v6]:port"."""
    address = address.strip()
    if address.startswith("["):
        host, _, rest = address[1:].partition("]")
        port = rest.lstrip(":") or str(default_port)
    elif address.count(":") == 1:
        host, port = address.split(":")
    else:
        host, port = address, str(default_port)
    if not host:
        raise ValueError(f"no host in printer address {address!r}")
    if not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError(f"bad port in printer address {address!r}")
    return host, int(port)


class PrinterConfig(BaseModel):
    """An ESC/POS network printer attached to an order endpoint."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="host:port of the printer (port 9100 if omitted)")
    profile: str = Field(default="TM-T20II", description="python-escpos capabilities profile")
    columns: int = Field(default=42, ge=24, le=64, description="characters per line in normal size")

    # Transport
    status_query: bool = Field(
        default=True,
        description="ask DLE EOT status before and after a job; false for printers that never answer",
    )
    connect_timeout: Seconds = 3.0
    write_timeout: Seconds = 5.0
    status_timeout: Seconds = 3.0

    # Spooling
    attempts: int = Field(
        default=3, ge=1, le=100, description="failed tries before the items are marked failed"
    )
    retry_initial: Seconds = Field(
        default=1.0, description="first retry delay; doubles up to retry_max"
    )
    retry_max: Seconds = Field(default=30.0, description="cap of the retry delay")
    probe_interval: Seconds | None = Field(
        default=30.0,
        description="ask an idle printer's status this often (it is always asked once at start)",
    )
    fallback: str | None = Field(
        default=None, description="another endpoint's name, or host:port of a printer"
    )
    fallback_after: int = Field(
        default=3, ge=1, le=100, description="failed tries before the fallback takes over"
    )

    # Ticket
    copies: int = Field(default=1, ge=1, le=5)
    buzzer: int = Field(default=0, ge=0, le=9, description="beeps after each ticket (0 = off)")
    logo: str | None = Field(
        default=None, description="image file printed at the top of each ticket"
    )
    cut: Literal["full", "partial"] = "partial"
    large_items: bool = Field(default=True, description="items in double height")
    code_pages: list[str] | None = Field(
        default=None,
        description="restrict the profile's code pages to these (e.g. ['CP437', 'CP852'])",
    )
    ascii_only: bool = Field(default=False, description="transliterate everything to ASCII")

    @field_validator("address")
    @classmethod
    def _valid_address(cls, value: str) -> str:
        split_address(value)
        return value.strip()

    @field_validator("fallback")
    @classmethod
    def _valid_fallback(cls, value: str | None) -> str | None:
        # An endpoint name, or an address; a name is resolved when the daemon is built.
        if value is not None:
            value = value.strip()
            split_address(value)
        return value or None

    @field_validator("profile")
    @classmethod
    def _known_profile(cls, value: str) -> str:
        from escpos.capabilities import CAPABILITIES

        if value not in CAPABILITIES["profiles"]:
            known = ", ".join(sorted(CAPABILITIES["profiles"]))
            raise ValueError(f"unknown printer profile {value!r}; known: {known}")
        return value

    @model_validator(mode="after")
    def _known_code_pages(self) -> PrinterConfig:
        if self.code_pages is not None:
            from escpos.capabilities import CAPABILITIES

            offered = set(CAPABILITIES["profiles"][self.profile]["codePages"].values())
            wanted = [c.upper() for c in self.code_pages]
            missing = [c for c in wanted if c not in offered]
            if missing:
                raise ValueError(
                    f"code_pages {missing} are not in profile {self.profile!r} (it has {sorted(offered)})"
                )
            self.code_pages = wanted
        if self.retry_max < self.retry_initial:
            raise ValueError("retry_max must be at least retry_initial")
        return self

    @property
    def host(self) -> str:
        """The printer's host name or IP."""
        return split_address(self.address)[0]

    @property
    def port(self) -> int:
        """The printer's TCP port (9100 unless given)."""
        return split_address(self.address)[1]
