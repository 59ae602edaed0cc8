"""`[[sources]] type = "cheques"`: where the cheques API is and how often to read it."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from ...durations import Duration
from ..base import HttpUrl


class Config(BaseModel):
    """[[sources]] type = "cheques"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["cheques"] = "cheques"
    name: str = Field(default="cheques", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    url: HttpUrl
    method: Literal["POST", "PUT", "GET"] = "POST"
    auth_token: SecretStr | None = None
    pin: SecretStr | None = None
    poll_interval: Duration = 2.0
    request_timeout: Duration = 5.0
    max_backoff: Duration = 30.0
    cheque_types: list[str] = Field(default_factory=lambda: ["Postponed", "Order"])
