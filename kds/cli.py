"""`kds run | check-config | demo | bench | backup | ...`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import errno
import gc
import importlib
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import Settings
    from .store.sqlite import ChunkReader

#: Subcommands defined by other modules (with `register(subparsers)`), imported only
#: when used — `kds run` must not pay for simulators and the benchmark at start-up.
PLUGIN_COMMANDS = {
    "print-test": "kds.printing.cli",
    "virtual-printer": "kds.printing.cli",
    "portos-sim": "kds.simulators.portos",
    "ready2order": "kds.sources.ready2order.cli",
    "demo": "kds.demo",
    "bench": "kds.bench",
    "migrate": "kds.store.cli",
}


def _load(args: argparse.Namespace) -> Settings:
    from .config import load_settings, split_listen

    settings = load_settings(args.config)
    if getattr(args, "listen", None):
        split_listen(args.listen)  # validate early, with the flag's name in the error
        settings.server.listen = args.listen
    if getattr(args, "db", None):
        if args.db.startswith(("postgresql://", "postgres://")):
            settings.database.url = args.db  # the PostgreSQL store
        else:
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


#: Why a server cannot listen, in words (the rest of an OSError is noise to an operator).
_LISTEN_PROBLEMS = {
    errno.EADDRINUSE: "the address is already in use (is kds, or a printer, already running there?); "
    "stop it or choose another port",
    errno.EACCES: "permission denied (ports below 1024 need root; choose a port above 1024)",
    errno.EADDRNOTAVAIL: "this machine has no such address",
}


def listen_problem(err: OSError, address: str) -> str | None:
    """One line saying why nothing can listen on `address`; None for other errors."""
    reason = _LISTEN_PROBLEMS.get(err.errno or 0)
    return None if reason is None else f"kds: cannot listen on {address}: {reason}"


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGTERM or SIGINT."""
    from .logs import setup_logging
    from .store import preload_orders
    from .tls import import_aiohttp

    settings = _load(args)
    setup_logging(settings.logging.level, settings.logging.format)
    # The orders are read on a thread of their own while this one imports the daemon: SQLite
    # builds their text without the GIL, on the second core (issue 19).
    database = settings.database
    preload = preload_orders(database.path, database.url)
    # Before anything imports aiohttp: its client contexts' CA certificates are loaded only
    # when a client needs them (most daemons make no outgoing request).
    import_aiohttp()
    try:
        return run_async(run_daemon(settings, banner=sys.stdout.isatty(), preload=preload))
    except OSError as err:
        if (problem := listen_problem(err, settings.server.listen)) is None:
            raise
        print(problem, file=sys.stderr)
        return 1


async def run_daemon(
    settings: Settings, *, banner: bool = False, preload: ChunkReader | None = None
) -> int:
    """Serve until a stop signal; in-flight requests finish, the store closes."""
    from .app import Daemon, serve

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    host, port = settings.server.host_port
    daemon = Daemon(settings, preload=preload)
    if banner:
        daemon.supervisor.spawn("cli:banner", _banner_once_listening(daemon.listening, settings))
    try:
        await serve(daemon, host, port, stop)
    finally:
        await daemon.supervisor.cancel("cli:banner")
    return 0


async def _banner_once_listening(listening: asyncio.Event, settings: Settings) -> None:
    await listening.wait()
    print(start_banner(settings), flush=True)


def screen_urls(settings: Settings, base: str) -> list[str]:
    """The URL of every screen: each station, expo, cashier board, pickup board."""
    urls = [f"{base}/screen/{e.name}" for e in settings.endpoints if e.display]
    return urls + [f"{base}/expo", f"{base}/board", f"{base}/pickup"]


def start_banner(settings: Settings) -> str:
    """What a person who started kds in a terminal needs: where the screens are, how to pair one."""
    host, port = settings.server.host_port
    local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
    remote = "KDS-HOST" if host in ("0.0.0.0", "::", "") else local
    station = next((e.name for e in settings.endpoints if e.display), "grill")
    pairing = (
        f"  kds token --role kitchen --name {station}-screen   (prints a token and the lines for config.toml)\n"
        f"  then open on that screen: http://{remote}:{port}/pair?token=TOKEN&next=/screen/{station}"
    )
    access = settings.security.access
    if access == "open":
        who = "Access is open: every machine on the network may use every screen and the API."
    elif access == "loopback":
        who = (
            "Screens on this machine need nothing; a screen on another machine is paired once:\n"
            + pairing
        )
    else:
        who = 'Every screen is paired once (access = "tokens"):\n' + pairing
    urls = "\n".join(f"  {url}" for url in screen_urls(settings, f"http://{local}:{port}"))
    return f"kds is running. Open a screen in a browser:\n{urls}\n{who}\nCtrl-C stops kds."


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the config file and say what it sets up."""
    settings = _load(args)
    print(f"{args.config}: ok")
    for endpoint in settings.endpoints:
        print(f"  endpoint {endpoint.name}: {endpoint.kind}")
    for source in settings.sources:
        print(f"  source {source.name}: {source.type}")
    print(
        f"  default endpoint: {settings.routing.default_endpoint}, {len(settings.routing.rules)} routing rule(s)"
    )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """A consistent online copy of the database."""
    from .store.sqlite import SqliteStore

    settings = _load(args)
    if settings.database.url is not None:
        raise ValueError(
            "kds backup copies a SQLite file; back up a PostgreSQL database with its own tools,"
            " e.g. pg_dump --format=custom --file=kds.dump 'postgresql://user@host/kds'"
            " (see docs/postgresql.md)"
        )

    async def backup() -> None:
        store = SqliteStore(settings.database.path)
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
    print(
        f"pair a screen by opening: http://KDS-HOST:PORT/pair?token={token}&next=/screen/{screen}"
    )
    return 0


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="kds", description="Kitchen order-endpoint daemon and display service"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", default="config.toml", type=Path, help="path of config.toml")
        return p

    run = with_config(sub.add_parser("run", help="run the daemon"))
    run.add_argument("--listen", help="HOST:PORT to listen on (overrides [server] listen)")
    run.add_argument(
        "--db", help="database path or postgresql:// URL (overrides [database] path / url)"
    )
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
    token.add_argument(
        "--endpoints",
        help="limit a kitchen token to these endpoints, comma-separated (e.g. grill,bar)",
    )
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
    gc_was_on = gc.isenabled()
    # Starting allocates what lives until exit (modules, pydantic's validators, the loaded
    # orders) and next to no garbage: a full collection meanwhile walks it all for nothing
    # (~0.1 s of a start). `kds run` turns the GC back on once ready (kds.app._tune_gc).
    gc.disable()
    try:
        return _run_command(argv, gc_was_on)
    finally:
        if gc_was_on:
            gc.enable()


def _run_command(argv: list[str], gc_was_on: bool) -> int:
    from .config import ConfigError

    args = build_parser(argv).parse_args(argv)
    if gc_was_on and args.func is not cmd_run:
        gc.enable()
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
