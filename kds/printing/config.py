"""Configuration of one kitchen printer (the `printer = {...}` of an endpoint)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PrinterConfig(BaseModel):
    """An ESC/POS network printer attached to an order endpoint."""

    model_config = ConfigDict(extra="forbid")

    address: str = Field(description="host:port of the printer (port 9100 if omitted)")
    profile: str = "TM-T20II"
    columns: int = Field(default=42, ge=24, le=64)
