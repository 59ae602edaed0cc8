"""`kds demo`: a whole simulated restaurant around the real daemon.

It starts the daemon on the given config (the repo's `config.toml` by default)
with its own database, a virtual printer for every printer endpoint, the
simulated POS systems chosen with `--pos`, traffic from them at `--rate`
orders a minute, and simulated cooks (`kds.simulators.cooks`) who accept and bump
the tickets at every station screen so orders flow through to the pickup board.
It listens on 127.0.0.1 unless `--listen` says otherwise, and is open (no
tokens) only there. It prints the screen URLs and runs until Ctrl-C (or
`--duration`).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import itertools
import random
import secrets
import signal
from collections.abc import Callable, Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from .cli import screen_urls
from .config import Settings, load_settings, split_listen
from .logs import setup_logging
from .model import utcnow
from .simulators.cooks import CookPace, SimulatedCooks
from .simulators.traffic import paced
from .sources.registry import validate_source
from .tasks import TaskSupervisor

log = structlog.get_logger(__name__)

POS_KINDS = ("native", "portos", "ready2order", "cheques")
#: Seconds a simulator, printer or the cooks may take to stop.
PART_STOP = 2.0
DEFAULT_LISTEN = "127.0.0.1:8080"

# The native POS's menu: ~30 products over grill, cold kitchen and bar (by product group).
MENU: list[tuple[str, str, int]] = [
    ("Cheeseburger", "Mains", 101),
    ("Double smash burger", "Mains", 102),
    ("Ribeye steak 300 g", "Mains", 103),
    ("Chicken wings", "Mains", 104),
    ("Grilled halloumi", "Mains", 105),
    ("Pork ribs", "Mains", 106),
    ("Fish & chips", "Mains", 107),
    ("Veggie burger", "Mains", 108),
    ("Fries", "Sides", 109),
    ("Sweet potato fries", "Sides", 110),
    ("Onion rings", "Sides", 111),
    ("Grilled corn", "Sides", 112),
    ("Caesar salad", "Salads", 201),
    ("Greek salad", "Salads", 202),
    ("Čučoriedkový koláč", "Desserts", 203),
    ("Tiramisu", "Desserts", 204),
    ("Gazpacho", "Salads", 205),
    ("Beef tartare", "Salads", 206),
    ("Burrata", "Salads", 207),
    ("Cheesecake", "Desserts", 208),
    ("Борщ", "Salads", 209),
    ("Pilsner 0.5 l", "Drinks", 301),
    ("Kofola 0.5 l", "Drinks", 302),
    ("Espresso", "Drinks", 303),
    ("Cappuccino", "Drinks", 304),
    ("Lemonade", "Drinks", 305),
    ("Mineral water", "Drinks", 306),
    ("House red 0.2 l", "Drinks", 307),
    ("Aperol spritz", "Drinks", 308),
    ("Größe Apfelschorle", "Drinks", 309),
]
MODIFIERS = [
    "no onion",
    "extra cheese",
    "gluten free",
    "no ice",
    "well done",
    "spicy",
    "sauce on the side",
]
COMMENTS = [
    None,
    None,
    None,
    "allergy: nuts",
    "birthday — bring a candle",
    "kids portion",
    "medium rare",
]


class DemoRestaurant:
    """The simulators, virtual printers and traffic around one daemon."""

    def __init__(
        self,
        settings: Settings,
        pos: list[str],
        rate: float,
        printer_log_dir: Path,
        seed: int | None = None,
    ) -> None:
        self.settings = settings
        self.pos = pos
        self.rate = rate
        self.printer_log_dir = printer_log_dir
        self.seed = seed
        self.stop = asyncio.Event()
        self._running: list[Any] = []  # simulators and printers, stopped last
        self._cooks: Any = None
        #: The traffic generators (and the daemon's serve task, see run_demo).
        self.tasks = TaskSupervisor()
        self._traffic: list[str] = []
        self._traffic_factories: list[Callable[[], Coroutine[Any, Any, Any]]] = []
        self._r2o: tuple[Any, str] | None = None
        self._rng = random.Random(seed)
        self.speed = 1.0  # the kitchen's pace: due times come this many times sooner

    async def start_printers(self) -> None:
        """A virtual printer for every printer endpoint, the endpoint pointed at it."""
        from .simulators.printer import VirtualPrinter

        self.printer_log_dir.mkdir(parents=True, exist_ok=True)
        for endpoint in self.settings.endpoints:
            if endpoint.printer is None:
                continue
            printer = VirtualPrinter(
                port=0, log_path=self.printer_log_dir / f"{endpoint.name}.jsonl"
            )
            await printer.start()
            self._running.append(printer)
            endpoint.printer.address = printer.address
            log.info("demo.printer", endpoint=endpoint.name, address=printer.address)

    async def start_pos(self) -> None:
        """Start the chosen POS simulators and add a source for each to the settings."""
        sources = [c for c in self.settings.sources if c.type == "native"]
        if "portos" in self.pos:
            from .simulators.portos import PortosSimulator

            portos = PortosSimulator(demo_catalog=True)
            await portos.start()
            self._running.append(portos)
            sources.append(
                validate_source(
                    {
                        "type": "portos",
                        "base_url": portos.url,
                        "username": "kds",
                        "password": "kds",
                        "device_name": "P01",
                        "poll_interval": "1s",
                        "endpoint_map": {"kitchen": "cold"},
                    }
                )
            )
            self._traffic_factories.append(lambda: portos.feed(60.0 / self.rate, seed=self.seed))
        if "ready2order" in self.pos:
            from .simulators.ready2order import Ready2OrderSimulator

            r2o = Ready2OrderSimulator(seed=self.seed)
            await r2o.start()
            r2o.seed_menu()
            self._running.append(r2o)
            secret = secrets.token_hex(16)
            sources.append(
                validate_source(
                    {
                        "type": "ready2order",
                        "base_url": r2o.api_url,
                        "account_token": r2o.account_token,
                        "webhook_secret": secret,
                        "poll_interval": "30s",
                        "group_window": "2s",
                    }
                )
            )
            self._r2o = (r2o, secret)
            self._traffic_factories.append(lambda: r2o.run_traffic(self.rate, self.stop))
        if "cheques" in self.pos:
            from .simulators.cheques import ChequesSimulator

            cheques = ChequesSimulator(seed=self.seed)
            await cheques.start()
            cheques.seed_menu()
            self._running.append(cheques)
            sources.append(
                validate_source(
                    {"type": "cheques", "url": cheques.endpoint_url, "poll_interval": "2s"}
                )
            )
            self._traffic_factories.append(lambda: cheques.run_traffic(self.rate, self.stop))
        self.settings.sources = sources

    def start_traffic(self, kds_url: str) -> None:
        """Begin generating orders from every chosen POS."""
        if self._r2o is not None:
            r2o, secret = self._r2o
            r2o.webhook_url = f"{kds_url}/hooks/ready2order/{secret}"
            r2o.webhook_events.update(
                {"orderItem.created", "orderItem.cancelled", "orderItem.transferred"}
            )
        if "native" in self.pos:
            self._spawn_traffic("demo:native", self._native_traffic(kds_url))
        for n, factory in enumerate(self._traffic_factories):
            self._spawn_traffic(f"demo:pos:{n}", factory())

    def _spawn_traffic(self, name: str, work: Coroutine[Any, Any, Any]) -> None:
        self.tasks.spawn(name, work)
        self._traffic.append(name)

    async def _native_traffic(self, kds_url: str) -> None:
        numbers = itertools.count(1)
        async with aiohttp.ClientSession(kds_url) as http:

            async def post_one() -> None:
                try:
                    async with http.post(
                        "/api/v1/orders", json=self.native_order(next(numbers))
                    ) as response:
                        created = await response.json()
                    if response.status == 201 and self._rng.random() < 0.08:
                        # Now and then a cashier rushes an order (first on every station).
                        async with http.post(f"/api/v1/orders/{created['id']}/rush", json={}):
                            pass
                except aiohttp.ClientError as err:
                    log.warning("demo.native_post_failed", error=str(err))

            await paced(post_one, self.rate, self.stop, self._rng)

    def native_order(self, number: int) -> dict[str, Any]:
        """A random order like a till would send it."""
        rng = self._rng
        purchase = rng.choices(["walkIn", "takeAway", "delivery"], weights=[6, 3, 1])[0]
        items = []
        for item_id, (name, group, code) in enumerate(rng.sample(MENU, rng.randint(1, 5)), start=1):
            items.append(
                {
                    "id": item_id,
                    "plu": {"name": name, "code": code, "group": group},
                    "quantity": {"amount": rng.choice([1, 1, 1, 2, 3]), "unit": "pcs"},
                    "comment": rng.choice(COMMENTS),
                    "courseNumber": 1 if group in ("Salads", "Drinks") else 2,
                    "modifiers": rng.sample(MODIFIERS, rng.choice([0, 0, 1, 2])),
                }
            )
        table = str(rng.randint(1, 20))
        # Some take-away orders are for later: the board shows them scheduled until their window.
        due = (
            {"dueAt": (utcnow() + timedelta(minutes=rng.randint(20, 40) / self.speed)).isoformat()}
            if purchase == "takeAway" and rng.random() < 0.3
            else {}
        )
        return {
            **due,
            "id": f"demo-{secrets.token_hex(4)}-{number}",
            "deviceName": rng.choice(["Till 1", "Till 2", "Handheld 3"]),
            "user": rng.choice(["Anna", "Peter", "Jana", "Tomáš"]),
            "ticket": {
                "id": f"T{number}",
                "name": f"Table {table}" if purchase == "walkIn" else f"{purchase} {number}",
                "location": {"zoneName": rng.choice(["Hall", "Terrace"]), "tableName": table}
                if purchase == "walkIn"
                else None,
                "purchaseType": purchase,
                "customer": {"name": rng.choice(["Eva", "Marek", "Lucia"])}
                if purchase == "delivery"
                else None,
            },
            "items": items,
        }

    async def start_cooks(self, kds_url: str, speed: float) -> None:
        """A simulated cook at every station screen, working at `speed` times a real pace."""
        stations = [e.name for e in self.settings.endpoints if e.display]
        cooks = SimulatedCooks(
            kds_url, stations, CookPace(speed=speed), rng=random.Random(self.seed)
        )
        await cooks.start()
        self._cooks = cooks

    async def stop_clients(self) -> None:
        """Stop the traffic and the cooks: the daemon's clients go before the daemon does.

        A cook still connected when the daemon stops would hold its websocket open until
        the daemon gave up on it.
        """
        self.stop.set()
        for name in self._traffic:
            await self.tasks.cancel(name)
        self._traffic.clear()
        if self._cooks is not None:
            cooks, self._cooks = self._cooks, None
            await _stop_part(cooks)

    async def close(self) -> None:
        """Stop the clients (if still running), then the simulators and printers."""
        await self.stop_clients()
        for part in reversed(self._running):
            await _stop_part(part)
        self._running.clear()
        await self.tasks.stop()


async def _stop_part(part: Any) -> None:
    """Stop one simulator, printer or the cooks; a part that fails or hangs is logged."""
    try:
        async with asyncio.timeout(PART_STOP):
            await part.stop()
    except Exception:
        log.exception("demo.stop_failed", part=type(part).__name__)


def demo_server(listen: str | None) -> tuple[str, str]:
    """The demo's listen address and access mode: open (no tokens) only on loopback."""
    listen = listen or DEFAULT_LISTEN
    host, _ = split_listen(listen)
    return listen, "open" if _is_loopback(host) else "loopback"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def pace_at(settings: Settings, speed: float) -> None:
    """A kitchen `speed` times faster also fires courses and releases dishes that much sooner."""
    for endpoint in settings.endpoints:
        endpoint.fire_delay /= speed
        endpoint.lead_time /= speed
        if endpoint.auto_bump_after is not None:
            endpoint.auto_bump_after /= speed
    for rule in settings.prep_times:
        rule.time /= speed


async def run_demo(args: argparse.Namespace) -> int:
    """Run the demo restaurant until Ctrl-C or --duration."""
    from .app import Daemon, serve

    settings = load_settings(args.config)
    settings.database.path = args.db
    settings.server.listen, settings.security.access = demo_server(args.listen)
    host, port = split_listen(settings.server.listen)
    demo = DemoRestaurant(settings, args.pos, args.rate, Path(args.printer_log_dir), seed=args.seed)
    if args.cook_speed > 0:
        demo.speed = args.cook_speed
        pace_at(settings, args.cook_speed)
    stop = asyncio.Event()  # Ctrl-C, SIGTERM or --duration
    daemon_stop = asyncio.Event()  # set once the demo's own clients are gone
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server: asyncio.Task[None] | None = None
    try:
        await demo.start_printers()
        await demo.start_pos()
        daemon = Daemon(settings)
        server = demo.tasks.spawn("demo:daemon", serve(daemon, host, port, daemon_stop))
        # Screens may connect once the port is bound.
        ready = demo.tasks.spawn("demo:listening", daemon.listening.wait())
        await asyncio.wait({server, ready}, return_when=asyncio.FIRST_COMPLETED)
        if server.done():
            server.result()  # raises what stopped the daemon from starting
            return 1
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else f"[{host}]" if ":" in host else host
        demo.start_traffic(f"http://127.0.0.1:{port}")
        if args.cook_speed > 0:
            await demo.start_cooks(f"http://127.0.0.1:{port}", args.cook_speed)
        print(
            f"kds demo is running with {', '.join(args.pos)} traffic at {args.rate:g} orders/min. Screens:",
            flush=True,
        )
        for url in screen_urls(settings, f"http://{shown}:{port}"):
            print(f"  {url}", flush=True)
        cooks = (
            f"simulated cooks bump tickets ({args.cook_speed:g}× pace)"
            if args.cook_speed > 0
            else "no simulated cooks"
        )
        print(
            f"  {cooks}; printed tickets: {args.printer_log_dir}/<endpoint>.jsonl   (Ctrl-C to stop)",
            flush=True,
        )
        if settings.security.access != "open":
            print(
                "  other machines need a token: kds token --role kitchen --name my-screen",
                flush=True,
            )
        try:
            await asyncio.wait_for(stop.wait(), args.duration)
        except TimeoutError:
            stop.set()
        await demo.stop_clients()
        daemon_stop.set()
        await server
        return 0
    finally:
        await demo.stop_clients()
        daemon_stop.set()
        if server is not None:
            await asyncio.wait({server})  # the daemon's own shutdown deadline bounds this
        await demo.close()


def cmd_demo(args: argparse.Namespace) -> int:
    """`kds demo`."""
    setup_logging("warning" if not args.verbose else "info", "console")
    from .cli import run_async

    return run_async(run_demo(args))


def _pos_kinds(value: str) -> list[str]:
    kinds = (
        list(POS_KINDS) if value == "mix" else [v.strip() for v in value.split(",") if v.strip()]
    )
    unknown = [k for k in kinds if k not in POS_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(
            f"unknown POS {', '.join(unknown) or value!r}; choose from {', '.join(POS_KINDS)} or mix"
        )
    return kinds


def register(subparsers: Any) -> None:
    """Add `kds demo` to the CLI."""
    demo = subparsers.add_parser("demo", help="run a simulated restaurant around the real daemon")
    demo.add_argument("--config", default="config.toml", type=Path, help="path of config.toml")
    demo.add_argument(
        "--pos",
        type=_pos_kinds,
        default=list(POS_KINDS),
        help="which POS sends orders: native, portos, ready2order, cheques, a comma-separated list, or mix (default)",
    )
    demo.add_argument(
        "--rate", type=float, default=2.0, help="orders per minute from each POS (default 2)"
    )
    demo.add_argument(
        "--cook-speed",
        type=float,
        default=1.0,
        help="simulated cooks work this many times faster than a real kitchen; 0: no cooks (default 1)",
    )
    demo.add_argument(
        "--listen",
        help=f"HOST:PORT (default {DEFAULT_LISTEN}; open access only on a loopback address)",
    )
    demo.add_argument(
        "--db", default="kds-demo.sqlite3", help="database of the demo (default kds-demo.sqlite3)"
    )
    demo.add_argument(
        "--printer-log-dir", default="demo-printers", help="where virtual printers log tickets"
    )
    demo.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    demo.add_argument("--seed", type=int, default=None, help="random seed for reproducible traffic")
    demo.add_argument("--verbose", action="store_true", help="log at info level")
    demo.set_defaults(func=cmd_demo)
