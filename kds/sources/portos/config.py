"""`[[sources]] type = "portos"`: the PORTOS source's config and its checks against the whole config."""

from __future__ import annotations

from collections.abc import Collection
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from ...durations import Duration
from ..base import HttpUrl


class Config(BaseModel):
    """[[sources]] type = "portos"."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["portos"] = "portos"
    name: str = Field(default="portos", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    base_url: HttpUrl
    # Auth: exactly one of a static token, credentials, or an ApiKey for NWS4 signing.
    token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    device_name: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    auth_path: str = "/auth"
    refresh_path: str = "/auth/refresh"
    # Polling.
    poll_interval: Duration = 1.0
    page_size: int = Field(default=100, ge=1, le=1000)
    request_timeout: Duration = 10.0
    max_backoff: Duration = 30.0
    reconcile_interval: Duration = 10.0
    # Which PORTOS endpoints this kds processes (empty: those named like a kds [[endpoints]]
    # entry, through endpoint_map), and renames to kds endpoints.
    endpoints: list[str] = Field(default_factory=list)
    endpoint_map: dict[str, str] = Field(default_factory=dict)
    # Optional PORTOS webhooks (X-PORTOS-WEBHOOK-SIGNATURE): each one triggers a poll at once.
    webhook_secret: SecretStr | None = None
    # Write-back.
    writeback_retry: Duration = 0.5
    writeback_max_backoff: Duration = 30.0
    writeback_concurrency: int = Field(default=4, ge=1, le=32)

    @model_validator(mode="after")
    def _one_auth(self) -> Config:
        schemes = [
            self.token is not None,
            self.username is not None or self.password is not None,
            self.client_id is not None or self.client_secret is not None,
        ]
        if sum(schemes) != 1:
            raise ValueError(
                "set exactly one of: token; username + password + device_name; client_id + client_secret"
            )
        if schemes[1] and not (self.username and self.password is not None and self.device_name):
            raise ValueError(
                "credentials need username, password and device_name (the PORTOS DeviceName)"
            )
        if schemes[2] and not (self.client_id and self.client_secret):
            raise ValueError("request signing needs both client_id and client_secret")
        targets = list(self.endpoint_map.values())
        if len(targets) != len(set(targets)):
            raise ValueError(
                "endpoint_map must not map two PORTOS endpoints to one kds endpoint (write-back would be ambiguous)"
            )
        return self

    def to_kds(self, portos_name: str) -> str:
        """The kds endpoint for a PORTOS endpoint name."""
        return self.endpoint_map.get(portos_name, portos_name)

    def to_portos(self, kds_name: str) -> str:
        """The PORTOS endpoint for a kds endpoint name."""
        return next((p for p, k in self.endpoint_map.items() if k == kds_name), kds_name)

    def owns(self, portos_name: str, kds_endpoints: Collection[str]) -> bool:
        """Whether kds processes this PORTOS endpoint (else it is left alone in PORTOS).

        Named in `endpoints`, or — when that list is empty — mapped to a kds
        endpoint by name or through `endpoint_map` (and written back to the same name).
        """
        if self.endpoints:
            return portos_name in self.endpoints
        kds_name = self.to_kds(portos_name)
        return kds_name in kds_endpoints and self.to_portos(kds_name) == portos_name


def check(config: Config, kds_endpoints: Collection[str]) -> list[str]:
    """Cross-checks against the whole config: each endpoint kds claims must be a kds endpoint."""
    errors = [
        f"endpoints: PORTOS endpoint {name!r} is not a kds endpoint (add an [[endpoints]] entry"
        f" named {config.to_kds(name)!r} or map it with endpoint_map)"
        for name in config.endpoints
        if config.to_kds(name) not in kds_endpoints
    ]
    for portos_name, kds_name in config.endpoint_map.items():
        if kds_name not in kds_endpoints:
            errors.append(
                f"endpoint_map: {portos_name!r} maps to {kds_name!r}, which is not a kds endpoint"
            )
    return errors
