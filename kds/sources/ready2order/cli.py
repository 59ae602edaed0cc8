"""`kds ready2order connect`: get an account token and register kds's webhook.

The ready2order token flow (seed 001): the integration's developer token asks
for a grant (`POST /v1/developerToken/grantAccessToken`), the account owner
opens the printed `grantAccessUri` and approves, and the account token is then
read with `GET /v1/developerToken/grantAccessToken/{grantAccessToken}`. The
token is stored in a file (mode 0600) that the source reads through
`account_token_file`. With `--public-url`, the webhook URL
`{public-url}/hooks/ready2order/{secret}` is registered (`PUT /v1/webhook`) and
the events kds uses are switched on (`PUT /v1/webhook/events`).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import aiohttp

from .webhook import CATALOG_EVENTS, ITEM_EVENTS

DEFAULT_API = "https://api.ready2order.com/v1"


class ConnectError(Exception):
    """The flow could not be completed; the message says why."""


def register(subparsers: Any) -> None:
    """Add `kds ready2order connect` to the CLI."""
    r2o = subparsers.add_parser("ready2order", help="ready2order integration helpers")
    sub = r2o.add_subparsers(dest="r2o_command", required=True)
    connect = sub.add_parser(
        "connect",
        help="get an account token (developer token → grant → approve) and register the webhook",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    connect.add_argument("--api", default=DEFAULT_API, help=f"API root (default {DEFAULT_API})")
    token = connect.add_mutually_exclusive_group()
    token.add_argument(
        "--developer-token",
        help="your integration's developer token (env R2O_DEVELOPER_TOKEN also works)",
    )
    token.add_argument("--account-token", help="skip the grant: an account token you already have")
    connect.add_argument(
        "--callback-uri", help="where ready2order sends the owner after approving (optional)"
    )
    connect.add_argument(
        "--token-file",
        default="ready2order.token",
        help="where to store the account token (default ready2order.token)",
    )
    connect.add_argument(
        "--wait", type=float, default=600.0, help="seconds to wait for the approval (default 600)"
    )
    connect.add_argument(
        "--public-url",
        help="kds's public base URL; registers {public-url}/hooks/ready2order/{secret}",
    )
    connect.add_argument(
        "--webhook-secret", help="the secret path part of the webhook URL (default: generated)"
    )
    connect.add_argument("--poll-interval", type=float, default=3.0, help=argparse.SUPPRESS)
    connect.set_defaults(func=run_connect)


def run_connect(args: argparse.Namespace, out: TextIO = sys.stdout) -> int:
    """Run the connect flow; exit code 0 on success."""
    try:
        asyncio.run(connect(args, out))
    except ConnectError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


async def connect(args: argparse.Namespace, out: TextIO) -> None:
    """The token flow, token storage and webhook registration."""
    api = args.api.rstrip("/")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as session:
        account_token = args.account_token
        if account_token is None:
            developer = args.developer_token or os.environ.get("R2O_DEVELOPER_TOKEN")
            if not developer:
                raise ConnectError(
                    "a developer token is needed (--developer-token or R2O_DEVELOPER_TOKEN)"
                )
            account_token = await _grant(session, api, developer, args, out)
        path = Path(args.token_file)
        _write_secret(path, account_token)
        print(f"account token stored in {path} (mode 0600)", file=out)
        secret = args.webhook_secret or secrets.token_urlsafe(24)
        if args.public_url:
            url = f"{args.public_url.rstrip('/')}/hooks/ready2order/{secret}"
            await _register_webhook(session, api, account_token, url)
            print(
                f"webhook registered: {args.public_url.rstrip('/')}/hooks/ready2order/<secret>",
                file=out,
            )
        print("\nAdd to config.toml:\n", file=out)
        print("[[sources]]", file=out)
        print('type = "ready2order"', file=out)
        if api != DEFAULT_API:
            print(f'base_url = "{api}"', file=out)
        print(f'account_token_file = "{path.resolve()}"', file=out)
        print(f'webhook_secret = "{secret}"', file=out)


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    token: str,
    body: dict[str, Any] | None = None,
) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    try:
        async with session.request(method, url, json=body, headers=headers) as resp:
            try:
                data = await resp.json(content_type=None)
            except ValueError:
                data = None
            return resp.status, data
    except (TimeoutError, aiohttp.ClientError) as err:
        raise ConnectError(f"cannot reach {url}: {type(err).__name__} {err}") from err


async def _grant(
    session: aiohttp.ClientSession, api: str, developer: str, args: argparse.Namespace, out: TextIO
) -> str:
    body = (
        {"callbackUri": args.callback_uri, "authorizationCallbackUri": args.callback_uri}
        if args.callback_uri
        else {}
    )
    status, data = await _call(
        session, "POST", f"{api}/developerToken/grantAccessToken", developer, body
    )
    if status in (401, 403):
        raise ConnectError(f"ready2order rejected the developer token (HTTP {status})")
    if status >= 300 or not isinstance(data, dict) or not data.get("grantAccessToken"):
        raise ConnectError(f"unexpected answer to the grant request (HTTP {status})")
    grant = str(data["grantAccessToken"])
    print("Ask the account owner to open this address, log in and approve kds:", file=out)
    print(f"\n    {data.get('grantAccessUri')}\n", file=out)
    print(
        f"Waiting for the approval (up to {args.wait:.0f} s; the grant expires after 10 minutes)...",
        file=out,
        flush=True,
    )
    deadline = time.monotonic() + args.wait
    while True:
        status, data = await _call(
            session, "GET", f"{api}/developerToken/grantAccessToken/{grant}", developer
        )
        if status == 200 and isinstance(data, dict):
            if data.get("accountToken"):
                return str(data["accountToken"])
            if str(data.get("status", "")).lower() in ("denied", "rejected", "expired"):
                raise ConnectError(f"the grant was {data['status']}; run connect again")
        elif status in (401, 403, 404):
            raise ConnectError(f"the grant cannot be read (HTTP {status}); run connect again")
        if time.monotonic() >= deadline:
            raise ConnectError("no approval in time; run connect again")
        await asyncio.sleep(args.poll_interval)  # waiting for a person to click Approve


async def _register_webhook(session: aiohttp.ClientSession, api: str, token: str, url: str) -> None:
    status, _ = await _call(session, "PUT", f"{api}/webhook", token, {"webhookUrl": url})
    if status >= 300:
        raise ConnectError(f"registering the webhook URL failed (HTTP {status})")
    for event in (*ITEM_EVENTS, *CATALOG_EVENTS):
        status, _ = await _call(session, "PUT", f"{api}/webhook/events", token, {"addEvent": event})
        if status >= 300:
            raise ConnectError(f"enabling the webhook event {event} failed (HTTP {status})")


def _write_secret(path: Path, value: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    os.chmod(path, 0o600)
