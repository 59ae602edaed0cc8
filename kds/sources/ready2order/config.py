"""`[[sources]] type = "ready2order"`: account token, webhook secret, windows and limits."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from ...durations import Duration
from ..base import HttpUrl, SourceUnavailable


class Config(BaseModel):
    """[[sources]] type = "ready2order"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["ready2order"] = "ready2order"
    name: str = Field(default="ready2order", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    base_url: HttpUrl = "https://api.ready2order.com/v1"
    # The account token (Bearer), or a file holding it (written by `kds ready2order connect`).
    account_token: SecretStr | None = None
    account_token_file: str | None = None
    # The secret part of the webhook URL: /hooks/ready2order/{webhook_secret}.
    webhook_secret: SecretStr
    group_window: Duration = 3.0
    poll_interval: Duration = 30.0
    catalog_refresh: Duration = 900.0
    rate_limit: int = Field(default=60, ge=1)
    rate_period: Duration = 60.0
    page_size: int = Field(default=100, ge=1, le=250)
    request_timeout: Duration = 10.0
    max_backoff: Duration = 60.0
    # Training-mode orders: "ignore" them, or "mark" them on the ticket.
    training: Literal["ignore", "mark"] = "ignore"
    # How many fetches an announced item may be missing from before its webhook is closed,
    # and how soon to fetch again while one is missing.
    missing_fetches: int = Field(default=3, ge=1)
    refetch_delay: Duration = 2.0
    # `order_status` (undocumented; the seed shows 1 on an open item): values to make, values that void.
    open_statuses: list[int] = Field(default_factory=lambda: [1])
    void_statuses: list[int] = Field(default_factory=list)

    @field_validator("webhook_secret")
    @classmethod
    def _long_secret(cls, value: SecretStr) -> SecretStr:
        secret = value.get_secret_value()
        if len(secret) < 16 or not all(c.isalnum() or c in "-_.~" for c in secret):
            raise ValueError(
                "must be at least 16 URL-safe characters (letters, digits, - _ . ~); `kds ready2order connect` makes one"
            )
        return value

    @model_validator(mode="after")
    def _statuses_apart(self) -> Config:
        both = sorted(set(self.open_statuses) & set(self.void_statuses))
        if both:
            raise ValueError(f"order_status {both} is in both open_statuses and void_statuses")
        return self

    @model_validator(mode="after")
    def _one_token(self) -> Config:
        if (self.account_token is None) == (self.account_token_file is None):
            raise ValueError(
                "set exactly one of account_token or account_token_file (see `kds ready2order connect`)"
            )
        return self

    def token(self) -> str:
        """The account token (read from its file when configured so)."""
        if self.account_token is not None:
            return self.account_token.get_secret_value()
        try:
            text = Path(self.account_token_file or "").read_text(encoding="utf-8").strip()
        except OSError as err:
            raise SourceUnavailable(f"cannot read account_token_file: {err}") from err
        if not text:
            raise SourceUnavailable("account_token_file is empty")
        return text

    @property
    def hook_path(self) -> str:
        """The webhook route (one per source name)."""
        base = "ready2order" if self.name == "ready2order" else self.name
        return f"/hooks/{base}/{{secret}}"
