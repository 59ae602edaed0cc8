"""`kds ready2order connect`: the developer-token → grant → account-token flow against the simulator."""

from __future__ import annotations

import argparse
import asyncio
import io
import stat
from pathlib import Path

from kds.simulators.ready2order import Ready2OrderSimulator
from kds.sources.ready2order.cli import register, run_connect

from .util import wait_until


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kds")
    register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def test_connect_gets_the_account_token_and_registers_the_webhook(tmp_path: Path) -> None:
    # Guarantees: the printed grant URL, a 0600 token file after approval, webhook URL and events registered.
    sim = Ready2OrderSimulator(account_token="granted-account-token", developer_token="dev-123")
    await sim.start()
    try:
        token_file = tmp_path / "r2o.token"
        args = parse(
            [
                "ready2order",
                "connect",
                "--api",
                sim.api_url,
                "--developer-token",
                "dev-123",
                "--token-file",
                str(token_file),
                "--public-url",
                "https://kds.example/",
                "--webhook-secret",
                "s" * 24,
                "--poll-interval",
                "0.02",
                "--wait",
                "5",
            ]
        )
        out = io.StringIO()
        running = asyncio.create_task(asyncio.to_thread(args.func, args, out))
        grant = await wait_until(lambda: next(iter(sim.grants), None))
        # The sim knows the grant before the CLI (a thread) has printed its answer.
        await wait_until(lambda: f"{sim.url}/grant/{grant}" in out.getvalue())
        sim.approve(grant)
        assert await asyncio.wait_for(running, 10) == 0
        assert token_file.read_text().strip() == "granted-account-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert sim.webhook_url == "https://kds.example/hooks/ready2order/" + "s" * 24
        assert {
            "orderItem.created",
            "orderItem.cancelled",
            "orderItem.transferred",
        } <= sim.webhook_events
        text = out.getvalue()
        assert 'type = "ready2order"' in text and "account_token_file" in text
        assert "granted-account-token" not in text  # the secret is in the file, not on the terminal
    finally:
        await sim.stop()


async def test_connect_with_a_wrong_developer_token_fails_clearly(tmp_path: Path) -> None:
    # Guarantees: a rejected developer token is exit code 1 and no token file.
    sim = Ready2OrderSimulator(developer_token="dev-123")
    await sim.start()
    try:
        args = parse(
            [
                "ready2order",
                "connect",
                "--api",
                sim.api_url,
                "--developer-token",
                "wrong",
                "--token-file",
                str(tmp_path / "t"),
                "--wait",
                "1",
            ]
        )
        assert await asyncio.to_thread(run_connect, args, io.StringIO()) == 1
        assert not (tmp_path / "t").exists()
    finally:
        await sim.stop()
