"""A virtual ESC/POS network printer: decodes what it receives, answers status.

`VirtualPrinter` listens on TCP (port 9100 style, one job per connection),
decodes the ESC/POS byte stream into text lines with their style (emphasis,
size, inversion, alignment), selects code pages with `ESC t` and decodes the
text with the right codec from the printer's python-escpos profile, splits
tickets at cuts, and answers real-time `DLE EOT n` status queries like an
Epson TM printer does. Tests and `kds demo` read what it printed from
`printer.jobs` (in process) or from its JSON-lines log (one object per job,
for another process).

Modes (`await printer.set_mode(...)`):

* ``online``       prints and answers status.
* ``offline``      stops listening: connections are refused.
* ``paper_out``    accepts, answers status "offline, paper end", prints nothing.
* ``cover_open``   accepts, answers status "offline, cover open", prints nothing.
* ``hang``         accepts and never reads (no status answer, nothing printed).
* ``drop_mid_job`` reads `drop_after` bytes of the job, prints them, then resets the connection.
* ``slow``         waits `delay` seconds before handling each received chunk.
* ``stall``        answers status until the job starts, prints it, then never answers
                   again (the client cannot know whether the job printed).

Modes follow the fault vocabulary every simulator shares (`kds.simulators.faults`):
`times=N` makes a mode apply to the next N connections only, then the next mode
queued with `then_mode()`, or online. `answers_status=False` models a printer
that never answers `DLE EOT` (in any mode, until set again).

Control from another process: with `control_port`, a tiny HTTP API on
127.0.0.1 — ``GET /state``, ``GET /jobs?since=SEQ``, ``GET|POST|DELETE /mode``
``{"mode": "paper_out", "times": 1, "drop_after": 64, "delay": 0.5,
"answers_status": true}``, ``POST /reset``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import json
import re
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import structlog

from .faults import OFFLINE, ONLINE, FaultSwitch, mode_routes

log = structlog.get_logger(__name__)

MODES = (ONLINE, OFFLINE, "paper_out", "cover_open", "hang", "drop_mid_job", "slow", "stall")
#: Parameters of the modes, with their defaults.
PARAMS = {"drop_after": 64, "delay": 0.5}

ESC, GS, DLE, FS = 0x1B, 0x1D, 0x10, 0x1C
EOT = 0x04

# DLE EOT n answers (Epson): bits 1 and 4 are always set.
# ESC commands without an argument, and with one argument byte.
_ESC_NO_ARG = frozenset(b"2<Sim")
_ESC_ONE_ARG = frozenset(b"!-EGaMV{ JdeRr3A+=tUT%")

#: A run of text bytes (printable ASCII and the code page's upper half): decoded at once.
_TEXT_RUN = re.compile(rb"[\x20-\x7e\x80-\xff]+")

_STATUS_BASE = 0x12
_OFFLINE = 0x08
_COVER_OPEN = 0x04
_PAPER_STOP = 0x20
_PAPER_END_SENSOR = 0x60
_ERROR = 0x40


@functools.cache
def _decode_tables(profile: str) -> dict[int, list[str]]:
    """{slot: 128 characters for bytes 0x80..0xFF} for every code page of `profile`.

    Built once per profile (tens of milliseconds), as a printer has its pages in ROM.
    """
    from escpos.capabilities import get_profile
    from escpos.magicencode import Encoder

    tables: dict[int, list[str]] = {}
    for name, slot in get_profile(profile).get_code_pages().items():
        with contextlib.suppress(LookupError, AssertionError, KeyError):
            tables[int(slot)] = Encoder._get_codepage_char_list(name)
    return tables


@functools.cache
def _code_page_names(profile: str) -> dict[int, str]:
    from escpos.capabilities import get_profile

    return {int(slot): name for name, slot in get_profile(profile).get_code_pages().items()}


@dataclass
class Line:
    """One printed line and the style it was printed in."""

    text: str
    bold: bool = False
    width: int = 1
    height: int = 1
    invert: bool = False
    underline: bool = False
    align: str = "left"

    @property
    def large(self) -> bool:
        """True when printed bigger than normal size."""
        return self.width > 1 or self.height > 1


@dataclass
class _Style:
    bold: bool = False
    width: int = 1
    height: int = 1
    invert: bool = False
    underline: bool = False
    align: str = "left"


class EscPosDecoder:
    """Incremental ESC/POS decoder: feed bytes, read lines, tickets and status queries.

    Commands may arrive split across TCP reads; an incomplete command waits
    for more bytes. `on_status(n)` is called for each `DLE EOT n` and returns
    the answer byte (or None for no answer).
    """

    def __init__(
        self, profile: str = "TM-T20II", on_status: Callable[[int], int | None] | None = None
    ) -> None:
        self.tables = _decode_tables(profile)
        self.page_names = _code_page_names(profile)
        self.on_status = on_status
        self.answers: bytearray = bytearray()
        self.lines: list[Line] = []
        self.tickets: list[list[Line]] = []
        self.cuts = 0
        self.beeps = 0
        self.images = 0
        self.status_queries: list[int] = []
        self.code_pages: list[str] = []
        self.unknown: list[str] = []
        #: Every command received (not text): its bytes in hex, images cut short.
        self.commands: list[str] = []
        self.job_bytes = 0  # bytes that are not real-time status queries
        self.raw = bytearray()
        self._buf = bytearray()
        self._ticket_start = 0
        self._slot = 0
        self._style = _Style()
        self._pending: list[str] = []
        self._pending_style: _Style | None = None

    # ------------------------------------------------------------------ API

    def feed(self, data: bytes) -> None:
        """Decode `data`; status answers accumulate in `self.answers`."""
        self.raw += data
        self._buf += data
        pos = 0
        buf = self._buf
        while pos < len(buf):
            used = self._step(buf, pos)
            if used == 0:
                break
            pos += used
        del self._buf[:pos]

    @property
    def ends_with_cut(self) -> bool:
        """True when nothing was printed after the last cut (call before `finish`)."""
        return self.cuts > 0 and not self._pending and len(self.lines) == self._ticket_start

    def finish(self) -> None:
        """The connection ended: print what is still in the line buffer."""
        self._flush_line(force=False)
        if len(self.lines) > self._ticket_start:
            self.tickets.append(self.lines[self._ticket_start :])
            self._ticket_start = len(self.lines)

    @property
    def text(self) -> str:
        """Everything printed, one line per line."""
        return "\n".join(line.text for line in self.lines)

    def ticket_texts(self) -> list[str]:
        """The text of each ticket (split at cuts)."""
        return ["\n".join(line.text for line in ticket) for ticket in self.tickets]

    @property
    def printed_anything(self) -> bool:
        """True when the job produced text, a cut or an image."""
        return bool(self.lines or self._pending or self.cuts or self.images)

    # ------------------------------------------------------------------ parser

    def _need(self, buf: bytearray, pos: int, n: int) -> bool:
        return pos + n <= len(buf)

    def _step(self, buf: bytearray, pos: int) -> int:
        """Decode one byte or command at `pos`; 0 when it is incomplete."""
        used = self._decode(buf, pos)
        if used and (buf[pos] < 0x20 or buf[pos] == 0x7F):
            self.commands.append(buf[pos : pos + min(used, 8)].hex(" "))
        return used

    def _decode(self, buf: bytearray, pos: int) -> int:
        b = buf[pos]
        if b == DLE:
            return self._dle(buf, pos)
        used = 0
        if b == ESC:
            used = self._esc(buf, pos)
        elif b == GS:
            used = self._gs(buf, pos)
        elif b == FS:
            used = self._fs(buf, pos)
        elif b == 0x0A:  # LF
            self._flush_line(force=True)
            used = 1
        elif b in (0x0D, 0x00):  # CR, NUL
            used = 1
        elif b == 0x09:  # HT: next 8-column tab stop
            current = len("".join(self._pending))
            self._put(" " * (8 - current % 8))
            used = 1
        elif b == 0x07:  # BEL
            self.beeps += 1
            used = 1
        elif b == 0x0C:  # FF
            self._flush_line(force=False)
            used = 1
        elif b < 0x20:
            self.unknown.append(f"0x{b:02x}")
            used = 1
        elif b == 0x7F:
            self._put(chr(b))
            used = 1
        else:
            run = _TEXT_RUN.match(buf, pos)
            assert run is not None  # b itself is a text byte
            self._put(self._text(run.group()))
            used = run.end() - pos
        self.job_bytes += used
        return used

    def _text(self, run: bytes) -> str:
        if run.isascii():
            return run.decode("ascii")
        table = self.tables.get(self._slot)
        return "".join(
            chr(b) if b < 0x80 else (table[b - 0x80] if table else "\ufffd") for b in run
        )

    def _put(self, text: str) -> None:
        if self._pending_style is None:
            self._pending_style = replace(self._style)
        else:
            # A line with mixed styles reads as its boldest, largest part.
            ps = self._pending_style
            ps.bold = ps.bold or self._style.bold
            ps.width = max(ps.width, self._style.width)
            ps.height = max(ps.height, self._style.height)
            ps.invert = ps.invert or self._style.invert
            ps.underline = ps.underline or self._style.underline
        self._pending.append(text)

    def _flush_line(self, *, force: bool) -> None:
        if not self._pending and not force:
            return
        s = self._pending_style or self._style
        text = "".join(self._pending)
        self.lines.append(Line(text, s.bold, s.width, s.height, s.invert, s.underline, s.align))
        self._pending = []
        self._pending_style = None

    def _cut(self) -> None:
        self._flush_line(force=False)
        self.cuts += 1
        self.tickets.append(self.lines[self._ticket_start :])
        self._ticket_start = len(self.lines)

    def _dle(self, buf: bytearray, pos: int) -> int:
        if not self._need(buf, pos, 2):
            return 0
        cmd = buf[pos + 1]
        if cmd == EOT:  # DLE EOT n: real-time status
            if not self._need(buf, pos, 3):
                return 0
            n = buf[pos + 2]
            self.status_queries.append(n)
            if self.on_status is not None:
                answer = self.on_status(n)
                if answer is not None:
                    self.answers.append(answer)
            return 3
        if cmd == 0x05:  # DLE ENQ n
            return 3 if self._need(buf, pos, 3) else 0
        if cmd == 0x14:  # DLE DC4 fn m t
            return 5 if self._need(buf, pos, 5) else 0
        self.unknown.append(f"DLE 0x{cmd:02x}")
        return 2

    def _esc(self, buf: bytearray, pos: int) -> int:
        if not self._need(buf, pos, 2):
            return 0
        cmd = buf[pos + 1]
        if cmd == ord("@"):  # initialize: reset modes, clear the line buffer
            self._style = _Style()
            self._slot = 0
            self._pending = []
            self._pending_style = None
            return 2
        if cmd in _ESC_NO_ARG:
            if cmd in (ord("i"), ord("m")):  # obsolete partial cuts
                self._cut()
            return 2
        if cmd == ord("B"):  # ESC B n t: buzzer
            if not self._need(buf, pos, 4):
                return 0
            self.beeps += buf[pos + 2]
            return 4
        if cmd == ord("p"):  # ESC p m t1 t2: drawer kick
            return 5 if self._need(buf, pos, 5) else 0
        if cmd in (ord("$"), ord("\\")):
            return 4 if self._need(buf, pos, 4) else 0
        if cmd == ord("*"):  # ESC * m nL nH d...: column image
            if not self._need(buf, pos, 5):
                return 0
            m, n = buf[pos + 2], buf[pos + 3] + 256 * buf[pos + 4]
            size = 5 + n * (3 if m in (32, 33) else 1)
            if not self._need(buf, pos, size):
                return 0
            self.images += 1
            return size
        if cmd == ord("D"):  # ESC D n1 ... NUL: tab stops
            end = buf.find(b"\x00", pos + 2)
            return 0 if end < 0 else end - pos + 1
        if cmd == ord("c"):  # ESC c 0/1/3/4/5 n
            return 4 if self._need(buf, pos, 4) else 0
        if cmd == ord("("):  # ESC ( A pL pH ...: beeper and friends
            if not self._need(buf, pos, 5):
                return 0
            size = 5 + buf[pos + 3] + 256 * buf[pos + 4]
            if not self._need(buf, pos, size):
                return 0
            self.beeps += 1 if buf[pos + 2] == ord("A") else 0
            return size
        if cmd in _ESC_ONE_ARG:
            if not self._need(buf, pos, 3):
                return 0
            n = buf[pos + 2]
            self._esc_arg(cmd, n)
            return 3
        self.unknown.append(f"ESC 0x{cmd:02x}")
        return 2

    def _esc_arg(self, cmd: int, n: int) -> None:
        c = chr(cmd)
        if (
            c == "!"
        ):  # print mode: bit3 emphasis, bit4 double height, bit5 double width, bit7 underline
            self._style.bold = bool(n & 0x08)
            self._style.height = 2 if n & 0x10 else 1
            self._style.width = 2 if n & 0x20 else 1
            self._style.underline = bool(n & 0x80)
        elif c in ("E", "G"):
            self._style.bold = bool(n & 1)
        elif c == "-":
            self._style.underline = n in (1, 2, 49, 50)
        elif c == "a":
            self._style.align = {
                0: "left",
                1: "center",
                2: "right",
                48: "left",
                49: "center",
                50: "right",
            }.get(n, "left")
        elif c == "t":
            self._slot = n
            name = self.page_names.get(n, f"slot {n}")
            if name not in self.code_pages:
                self.code_pages.append(name)
        elif c in ("d", "J", "e"):
            self._flush_line(force=False)

    def _gs(self, buf: bytearray, pos: int) -> int:
        if not self._need(buf, pos, 2):
            return 0
        cmd = chr(buf[pos + 1])
        if cmd == "V":  # GS V m [n]: cut
            if not self._need(buf, pos, 3):
                return 0
            m = buf[pos + 2]
            size = 4 if m in (65, 66, 97, 98, 103, 104) else 3
            if not self._need(buf, pos, size):
                return 0
            self._cut()
            return size
        if cmd == "!":
            if not self._need(buf, pos, 3):
                return 0
            n = buf[pos + 2]
            self._style.width = (n >> 4) + 1
            self._style.height = (n & 0x0F) + 1
            return 3
        if cmd == "B":
            if not self._need(buf, pos, 3):
                return 0
            self._style.invert = bool(buf[pos + 2] & 1)
            return 3
        if cmd == "v":  # GS v 0 m xL xH yL yH d...: raster image
            if not self._need(buf, pos, 8):
                return 0
            x = buf[pos + 4] + 256 * buf[pos + 5]
            y = buf[pos + 6] + 256 * buf[pos + 7]
            size = 8 + x * y
            if not self._need(buf, pos, size):
                return 0
            self._flush_line(force=False)
            self.images += 1
            return size
        if cmd in ("(", "8"):  # GS ( x pL pH ... / GS 8 L p1 p2 p3 p4 ...
            if cmd == "(":
                if not self._need(buf, pos, 5):
                    return 0
                size = 5 + buf[pos + 3] + 256 * buf[pos + 4]
            else:
                if not self._need(buf, pos, 7):
                    return 0
                size = 7 + int.from_bytes(buf[pos + 3 : pos + 7], "little")
            if not self._need(buf, pos, size):
                return 0
            if buf[pos + 2] == ord("L") and size > 6 and buf[pos + 6] in (ord("2"), 50):
                self.images += 1
            return size
        if cmd == "k":  # GS k m ...: barcode
            if not self._need(buf, pos, 3):
                return 0
            m = buf[pos + 2]
            if m <= 6:
                end = buf.find(b"\x00", pos + 3)
                return 0 if end < 0 else end - pos + 1
            if not self._need(buf, pos, 4):
                return 0
            size = 4 + buf[pos + 3]
            return size if self._need(buf, pos, size) else 0
        if cmd in "LWP":
            return 4 if self._need(buf, pos, 4) else 0
        if cmd in "bHhwfa|rIE":
            return 3 if self._need(buf, pos, 3) else 0
        self.unknown.append(f"GS {cmd!r}")
        return 2

    def _fs(self, buf: bytearray, pos: int) -> int:
        if not self._need(buf, pos, 2):
            return 0
        cmd = chr(buf[pos + 1])
        if cmd == "p":  # FS p n m: NV logo
            if not self._need(buf, pos, 4):
                return 0
            self.images += 1
            return 4
        if cmd in ".&":
            return 2
        if cmd in "!C-":
            return 3 if self._need(buf, pos, 3) else 0
        self.unknown.append(f"FS {cmd!r}")
        return 2


@dataclass
class PrintedJob:
    """What one connection printed."""

    seq: int
    printer: str
    printed: bool
    complete: bool
    lines: list[Line]
    tickets: list[str]
    cuts: int
    code_pages: list[str]
    status_queries: list[int]
    beeps: int
    images: int
    nbytes: int
    mode: str
    started_at: str
    finished_at: str
    raw: bytes = field(repr=False, default=b"")
    #: `time.perf_counter()` when the job's last cut arrived (latency in the printer's process).
    cut_at: float | None = None
    #: `time.perf_counter()` when each cut arrived: one per ticket of a job of several.
    cut_times: list[float] = field(default_factory=list)

    @property
    def text(self) -> str:
        """Everything this job printed."""
        return "\n".join(line.text for line in self.lines)

    def to_json(self) -> dict[str, Any]:
        """The JSON-lines log record of this job."""
        data = asdict(self)
        data["text"] = self.text
        data["raw"] = base64.b64encode(self.raw).decode()
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PrintedJob:
        """A job read back from the JSON-lines log."""
        data = dict(data)
        data.pop("text", None)
        data["lines"] = [Line(**line) for line in data["lines"]]
        data["raw"] = base64.b64decode(data.get("raw", ""))
        return cls(**data)


def read_log(path: str | Path) -> list[PrintedJob]:
    """Every job recorded in a virtual printer's JSON-lines log."""
    jobs: list[PrintedJob] = []
    with contextlib.suppress(FileNotFoundError), open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if line:
                with contextlib.suppress(ValueError):
                    jobs.append(PrintedJob.from_json(json.loads(line)))
    return jobs


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class VirtualPrinter:
    """An ESC/POS printer on 127.0.0.1 for tests and `kds demo`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        name: str | None = None,
        profile: str = "TM-T20II",
        log_path: str | Path | None = None,
        control_port: int | None = None,
        mode: str = "online",
        answers_status: bool = True,
        on_job: Callable[[PrintedJob], None] | None = None,
    ) -> None:
        self.host = host
        self.on_job = on_job
        self.port = port
        self.name = name or f"virtual-printer:{port}"
        self.profile = profile
        self.log_path = Path(log_path) if log_path else None
        self.control_port = control_port
        self.jobs: list[PrintedJob] = []
        self.discarded: list[PrintedJob] = []
        self.connections = 0
        self.bytes_received = 0  # everything read, including jobs still in progress
        self.cuts_received = 0  # tickets cut, including those of jobs still in progress
        self.answers_status = answers_status
        self.faults = FaultSwitch(MODES, PARAMS)
        self._initial_mode = mode
        self._server: asyncio.Server | None = None
        self._control: Any = None
        self._changed = asyncio.Condition()
        self._hung: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._seq = 0
        self._started = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """host:port to configure a printer endpoint with."""
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        """Listen (unless starting offline) and open the control port."""
        self._started = True
        await self._listen()
        if self._initial_mode != "online":
            await self.set_mode(self._initial_mode)
        if self.control_port is not None:
            await self._start_control()
        log.info("virtual_printer.started", printer=self.name, address=self.address, mode=self.mode)

    async def stop(self) -> None:
        """Stop listening, drop every connection."""
        self._started = False
        await self._unlisten()
        self._release_hung()
        for task in list(self._handlers):
            task.cancel()
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=2)
        if self._control is not None:
            await self._control.cleanup()
            self._control = None

    async def __aenter__(self) -> VirtualPrinter:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _listen(self) -> None:
        if self._server is not None:
            return
        self._server = await asyncio.start_server(
            self._handle, self.host, self.port, reuse_address=True
        )
        self.port = self._server.sockets[0].getsockname()[1]
        if self.name.endswith(":0"):
            self.name = f"virtual-printer:{self.port}"

    async def _unlisten(self) -> None:
        if self._server is not None:
            self._server.close()
            # Server.wait_closed() also waits for open connections; don't.
            self._server = None

    def _release_hung(self) -> None:
        for writer in list(self._hung):
            writer.transport.abort()
        self._hung.clear()

    # ------------------------------------------------------------------ modes

    @property
    def mode(self) -> str:
        """The current mode."""
        return self.faults.mode

    @property
    def times(self) -> int | None:
        """How many more connections the current mode applies to (None: until changed)."""
        return self.faults.times

    async def set_mode(
        self,
        mode: str,
        *,
        times: int | None = None,
        drop_after: int | None = None,
        delay: float | None = None,
        answers_status: bool | None = None,
    ) -> None:
        """Switch mode (see the module docstring); `times` limits it to N connections."""
        self.faults.set(mode, times=times, drop_after=drop_after, delay=delay)
        if answers_status is not None:
            self.answers_status = answers_status
        if mode != "hang":
            self._release_hung()
        if mode == OFFLINE:
            await self._unlisten()
        elif self._started:
            await self._listen()
        log.info("virtual_printer.mode", printer=self.name, mode=mode, times=times)

    def then_mode(self, mode: str, *, times: int | None = 1, **params: Any) -> None:
        """Queue `mode` to follow the current one (for `times` connections)."""
        self.faults.then(mode, times=times, **params)

    async def _set_mode_from_control(self, mode: str, **params: Any) -> None:
        answers_status = params.pop("answers_status", None)
        if answers_status is not None and not isinstance(answers_status, bool):
            raise ValueError("answers_status must be true or false")
        await self.set_mode(mode, answers_status=answers_status, **params)

    def _status(self, mode: str, n: int) -> int | None:
        if not self.answers_status:
            return None
        offline = mode in ("paper_out", "cover_open")
        if n == 1:
            return _STATUS_BASE | (_OFFLINE if offline else 0)
        if n == 2:
            value = _STATUS_BASE
            if mode == "cover_open":
                value |= _COVER_OPEN
            if mode == "paper_out":
                value |= _PAPER_STOP
            return value
        if n == 3:
            return _STATUS_BASE
        if n == 4:
            return _STATUS_BASE | (_PAPER_END_SENSOR if mode == "paper_out" else 0)
        return None

    # ------------------------------------------------------------------ connections

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Stopping: end quietly (asyncio's stream callback chokes on a
            # cancelled client_connected_cb task).
            pass
        finally:
            if task is not None:
                self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        fault = self.faults.take()
        mode = fault.mode if fault is not None else ONLINE
        if mode == "hang":
            # Accept and never read: the client's status query is never answered.
            self._hung.add(writer)
            try:
                await asyncio.Event().wait()
            finally:
                self._hung.discard(writer)
            return
        started = _now()
        decoder = EscPosDecoder(self.profile)
        decoder.on_status = lambda n: (
            None if mode == "stall" and decoder.job_bytes else self._status(mode, n)
        )
        complete = True
        cut_times: list[float] = []
        while True:
            try:
                data = await reader.read(4096)
            except ConnectionError:
                complete = False
                break
            if not data:
                break
            self.bytes_received += len(data)
            if mode == "slow":
                await asyncio.sleep(self.faults.param("delay", fault))  # the fault, not a test wait
            if mode == "drop_mid_job":
                dropped = False
                for i in range(len(data)):
                    decoder.feed(data[i : i + 1])
                    if decoder.job_bytes >= self.faults.param("drop_after", fault):
                        dropped = True
                        break
                await self._answer(writer, decoder)
                if dropped:
                    complete = False
                    writer.transport.abort()
                    break
                continue
            # A cut arrived when its bytes were read (decoding them is the fake's own work).
            arrived = time.perf_counter()
            cuts = decoder.cuts
            decoder.feed(data)
            cut_times += [arrived] * (decoder.cuts - cuts)
            self.cuts_received += decoder.cuts - cuts
            await self._answer(writer, decoder)
        complete = complete and decoder.ends_with_cut
        decoder.finish()
        if decoder.printed_anything:
            await self._record(decoder, mode, started, complete, cut_times)

    async def _answer(self, writer: asyncio.StreamWriter, decoder: EscPosDecoder) -> None:
        if decoder.answers:
            writer.write(bytes(decoder.answers))
            decoder.answers.clear()
            await writer.drain()

    async def _record(
        self,
        decoder: EscPosDecoder,
        mode: str,
        started: str,
        complete: bool,
        cut_times: list[float],
    ) -> None:
        printed = mode not in ("paper_out", "cover_open")
        self._seq += 1
        job = PrintedJob(
            seq=self._seq,
            printer=self.name,
            printed=printed,
            complete=complete,
            lines=decoder.lines,
            tickets=decoder.ticket_texts(),
            cuts=decoder.cuts,
            code_pages=decoder.code_pages,
            status_queries=decoder.status_queries,
            beeps=decoder.beeps,
            images=decoder.images,
            nbytes=len(decoder.raw),
            mode=mode,
            started_at=started,
            finished_at=_now(),
            raw=bytes(decoder.raw),
            cut_at=cut_times[-1] if cut_times else None,
            cut_times=cut_times,
        )
        (self.jobs if printed else self.discarded).append(job)
        if self.log_path is not None:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(job.to_json(), ensure_ascii=False) + "\n")
        log.info(
            "virtual_printer.job",
            printer=self.name,
            seq=job.seq,
            printed=printed,
            complete=complete,
            tickets=len(job.tickets),
        )
        if self.on_job is not None:
            try:
                self.on_job(job)
            except Exception:
                log.exception("virtual_printer.on_job_failed", printer=self.name)
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ reading what printed

    async def wait_for_jobs(self, n: int, timeout: float = 5.0) -> list[PrintedJob]:
        """Wait until at least `n` jobs printed; TimeoutError after `timeout` seconds."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: len(self.jobs) >= n)

        try:
            await asyncio.wait_for(_wait(), timeout)
        except TimeoutError:
            raise TimeoutError(
                f"{self.name}: {len(self.jobs)} of {n} jobs printed within {timeout}s"
            ) from None
        return list(self.jobs)

    async def wait_for(
        self, predicate: Callable[[VirtualPrinter], bool], timeout: float = 5.0
    ) -> None:
        """Wait until `predicate(self)` holds after a job; TimeoutError after `timeout`."""

        async def _wait() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

        await asyncio.wait_for(_wait(), timeout)

    def tickets(self) -> list[str]:
        """The text of every ticket printed, in order."""
        return [ticket for job in self.jobs for ticket in job.tickets]

    def reset(self) -> None:
        """Forget what was printed."""
        self.jobs.clear()
        self.discarded.clear()

    def state(self) -> dict[str, Any]:
        """Mode and counters (the control port's GET /state)."""
        return {
            "name": self.name,
            "address": self.address,
            **self.faults.state(),  # mode, times, its parameters, queued, applied
            "answers_status": self.answers_status,
            "jobs": len(self.jobs),
            "discarded": len(self.discarded),
            "connections": self.connections,
        }

    # ------------------------------------------------------------------ control port

    async def _start_control(self) -> None:
        from aiohttp import web

        async def get_state(request: web.Request) -> web.Response:
            return web.json_response(self.state())

        async def get_jobs(request: web.Request) -> web.Response:
            since = int(request.query.get("since", "0"))
            return web.json_response([j.to_json() for j in self.jobs if j.seq > since])

        async def post_reset(request: web.Request) -> web.Response:
            self.reset()
            return web.json_response(self.state())

        app = web.Application()
        app.add_routes(
            [
                web.get("/state", get_state),
                web.get("/jobs", get_jobs),
                web.post("/reset", post_reset),
                *mode_routes("", self.state, self._set_mode_from_control),
            ]
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.control_port)
        await site.start()
        if self.control_port == 0:
            self.control_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._control = runner
