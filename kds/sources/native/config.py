"""`[[sources]] type = "native"`: orders posted to kds's own API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict


class Config(BaseModel):
    """[[sources]] type = "native"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["native"] = "native"
    name: str = "native"
