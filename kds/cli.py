"""`kds run | check-config | demo | bench | backup | ...`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import structlog

from .config import ConfigError, Settings, load_settings, split_listen
from .logs import setup_logging

log = structlog.get_logger(__name__)

#: Subcommands defined by other modules (with `register(subparsers)`), imported only
#: when used — `kds run` must not pay for simulators and the benchmark at start-up.
PLUGIN_COMMANDS = {
    "print-test": "kds.printing.cli",
    "virtual-printer": "kds.printing.cli",
    "portos-sim": "kds.simulators.portos",
    "ready2order": "kds.sources.r2o_cli",
    "demo": "kds.demo",
    "bench": "kds.bench",
}


def _load(args: argparse.Namespace) -> Settings:
    settings = load_settings(args.config)
    if getattr(args, "listen", None):
        split_listen(args.listen)  # validate early, with the flag's name in the error
        settings.server.listen = args.listen
    if getattr(args, "db", None):
        settings.database.path = args.db
    return settings


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop where it is installed (about 10 % less CPU per order in `kds bench`), else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run_async(main: Coroutine[Any, Any, int]) -> int:
    """Run `main` on the daemon's event loop."""
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM or SIGINT."""
    settings = _load(args)
    setup_logging(settings.logging.level, settings.logging.format)
    return run_async(run_daemon(settings))


async def run_daemon(settings: Settings) -> int:
    """Serve until a stop signal; in-flight requests finish, the store closes."""
    from .app import Daemon, serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = settings.server.host_port
    await serve(Daemon(settings), host, port, stop)
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the config file and say what it sets up."""
    settings = _load(args)
    print(f"{args.config}: ok")
    for endpoint in settings.endpoints:
        print(f"  endpoint {endpoint.name}: {endpoint.kind}")
    for source in settings.source_configs:
        print(f"  source {source.name}: {source.type}")
    print(f"  default endpoint: {settings.routing.default_endpoint}, {len(settings.routing.rules)} routing rule(s)")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent online copy of the database."""
    from .store import Store

    settings = _load(args)

    async def backup() -> None:
        store = Store(settings.database.path)
        await store.start()
        try:
            await store.backup(args.path)
        finally:
            await store.stop()

    asyncio.run(backup())
    print(f"backed up {settings.database.path} to {args.path}")
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    """Make a new API/screen token and print the config lines that allow it."""
    from .api.auth import hash_token, new_token

    endpoints = [e.strip() for e in (args.endpoints or "").split(",") if e.strip()]
    if endpoints and args.role != "kitchen":
        raise ValueError("--endpoints limits a kitchen token; use it with --role kitchen")
    token = new_token()
    print(f"token (give it to the {args.role}; it is not stored anywhere): {token}")
    print("add to config.toml:")
    print("[[security.tokens]]")
    print(f'name = "{args.name}"')
    print(f'role = "{args.role}"')
    print(f'sha256 = "{hash_token(token)}"')
    if endpoints:
        print("endpoints = [" + ", ".join(f'"{e}"' for e in endpoints) + "]")
    screen = endpoints[0] if endpoints else "grill"
    print(f"pair a screen by opening: http://KDS-HOST:PORT/pair?token={token}&next=/screen/{screen}")
    return 0


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="kds", description="Kitchen order-endpoint daemon and display service")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", default="config.toml", type=Path, help="path of config.toml")
        return p

    run = with_config(sub.add_parser("run", help="run the daemon"))
    run.add_argument("--listen", help="HOST:PORT to listen on (overrides [server] listen)")
    run.add_argument("--db", help="database path (overrides [database] path)")
    run.set_defaults(func=cmd_run)

    check = with_config(sub.add_parser("check-config", help="validate config.toml"))
    check.set_defaults(func=cmd_check_config)

    backup = with_config(sub.add_parser("backup", help="consistent online copy of the database"))
    backup.add_argument("path", help="where to write the copy")
    backup.add_argument("--db", help="database path (overrides [database] path)")
    backup.set_defaults(func=cmd_backup)

    token = sub.add_parser("token", help="make an API/screen token for config.toml")
    token.add_argument("--role", required=True, choices=["pos", "kitchen", "viewer", "admin"])
    token.add_argument("--name", required=True, help="who the token is for, e.g. grill-screen")
    token.add_argument("--endpoints", help="limit a kitchen token to these endpoints, comma-separated (e.g. grill,bar)")
    token.set_defaults(func=cmd_token)

    command = next((a for a in (argv or []) if not a.startswith("-")), None)
    if command in PLUGIN_COMMANDS:
        wanted = [PLUGIN_COMMANDS[command]]
    elif command in sub.choices:
        wanted = []
    else:  # help, or an unknown command: show everything
        wanted = list(dict.fromkeys(PLUGIN_COMMANDS.values()))
    for module_name in wanted:
        importlib.import_module(module_name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `kds` command."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ConfigError as err:
        print(f"kds: configuration error:\n{err}", file=sys.stderr)
        return 2
    except ValueError as err:
        print(f"kds: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
