"""The ready2order and cheques [[sources]] sections: clear errors, token from a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from kds.config import ConfigError, settings_from_dict
from kds.sources.base import SourceUnavailable
from kds.sources.ready2order.config import Config

SECRET = "a-long-enough-secret-123"


def settings(*sources: dict) -> object:
    return settings_from_dict({"endpoints": [{"name": "grill"}], "sources": list(sources)})


def test_errors_name_the_key() -> None:
    # Guarantees: a typo or a weak secret is reported with its key before anything starts.
    with pytest.raises(ConfigError, match="sources.ready2order.webhook_secret"):
        settings({"type": "ready2order", "account_token": "t", "webhook_secret": "short"})
    with pytest.raises(ConfigError, match="account_token"):
        settings({"type": "ready2order", "webhook_secret": SECRET})
    with pytest.raises(
        ConfigError,
        match="sources.cheques: unknown key .pol_interval. — did you mean .poll_interval.",
    ):
        settings({"type": "cheques", "url": "http://till/v1", "pol_interval": "1s"})
    ok = settings(
        {
            "type": "ready2order",
            "account_token": "t",
            "webhook_secret": SECRET,
            "group_window": "2s",
        },
        {"type": "cheques", "url": "http://till/v1", "method": "PUT"},
    )
    r2o, cheques = ok.sources
    assert r2o.group_window == 2.0 and r2o.hook_path == "/hooks/ready2order/{secret}"
    assert cheques.method == "PUT" and cheques.cheque_types == ["Postponed", "Order"]


def test_account_token_file(tmp_path: Path) -> None:
    # Guarantees: the token written by `connect` is read from its file; a missing file is a source error, not a crash.
    path = tmp_path / "token"
    config = Config(account_token_file=str(path), webhook_secret=SECRET)
    with pytest.raises(SourceUnavailable):
        config.token()
    path.write_text("acc-token\n")
    assert config.token() == "acc-token"
    assert "acc-token" not in repr(Config(account_token="acc-token", webhook_secret=SECRET))
