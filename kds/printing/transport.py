"""Our own asyncio TCP client for ESC/POS network printers (raw port 9100).

Every step is bounded — connect, each write, each status answer — so a dead or
hung printer costs a timeout, never a blocked event loop. One job (one ticket,
or the batch of tickets waiting for the printer) is one connection:

1. connect (`connect_timeout`);
2. where the printer answers status (`status_query`), ask `DLE EOT 1, 2, 4`
   (online? cover open / paper end? paper sensor) and refuse to send to a
   printer that reports a fault — nothing was printed, the retry is clean;
3. `prepare()` — the spooler durably records the attempts here;
4. write the tickets, one after the other (`write_timeout` each);
5. ask the status again: an answer without a fault means the printer took
   the job; no answer, a dropped connection or a fault now means the outcome
   is unknown (`PrinterFault.maybe_printed`), and the retry is marked REPRINT.

Printers that never answer `DLE EOT` are configured with `status_query = false`:
the job counts as delivered once the bytes are written.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import structlog

from .config import PrinterConfig

log = structlog.get_logger(__name__)

DLE_EOT = b"\x10\x04"
#: Printer status, offline cause, paper roll sensor — asked in one round trip.
STATUS_QUERY = DLE_EOT + b"\x01" + DLE_EOT + b"\x02" + DLE_EOT + b"\x04"


class PrinterFault(Exception):
    """A job did not (certainly) print: `state` says why, `maybe_printed` if it may have."""

    def __init__(self, state: str, detail: str, *, maybe_printed: bool = False) -> None:
        super().__init__(f"{state}: {detail}")
        self.state = state
        self.detail = detail
        self.maybe_printed = maybe_printed


@dataclass(frozen=True)
class PrinterStatus:
    """The answers to DLE EOT 1, 2 and 4 (Epson TM bit layout)."""

    offline: bool
    cover_open: bool
    paper_end: bool
    paper_near_end: bool
    error: bool
    raw: bytes

    @classmethod
    def parse(cls, raw: bytes) -> PrinterStatus:
        """Decode the three status bytes."""
        printer, cause, paper = raw[0], raw[1], raw[2]
        if any(byte & 0x93 != 0x12 for byte in raw):
            # Epson fixes bits 1 and 4 at 1, bits 0 and 7 at 0; other brands'
            # emulations vary, so read the bits anyway rather than refuse to print.
            log.debug("printer.odd_status", raw=raw.hex())
        return cls(
            offline=bool(printer & 0x08),
            cover_open=bool(cause & 0x04),
            paper_end=bool(cause & 0x20) or (paper & 0x60) == 0x60,
            paper_near_end=(paper & 0x0C) == 0x0C,
            error=bool(cause & 0x40),
            raw=raw,
        )

    @property
    def state(self) -> str:
        """ok, paper_out, cover_open, error or offline."""
        if self.paper_end:
            return "paper_out"
        if self.cover_open:
            return "cover_open"
        if self.error:
            return "error"
        if self.offline:
            return "offline"
        return "ok"

    @property
    def detail(self) -> str:
        """A short human explanation for the screens."""
        return {
            "ok": "paper low" if self.paper_near_end else "ready",
            "paper_out": "out of paper",
            "cover_open": "cover open",
            "error": "printer error (cutter jam or mechanical fault)",
            "offline": "printer offline",
        }[self.state]


class PrinterConnection:
    """One open connection to a printer, every operation bounded by a timeout."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, config: PrinterConfig
    ) -> None:
        self._reader = reader
        self._writer = writer
        self.config = config
        self.address = config.address

    @classmethod
    async def open(cls, config: PrinterConfig) -> PrinterConnection:
        """Connect within `connect_timeout`; PrinterFault("offline") otherwise."""
        try:
            async with asyncio.timeout(config.connect_timeout):
                reader, writer = await asyncio.open_connection(config.host, config.port)
        except TimeoutError:
            raise PrinterFault(
                "offline", f"no connection to {config.address} within {config.connect_timeout}s"
            ) from None
        except OSError as err:
            raise PrinterFault(
                "offline", f"cannot connect to {config.address}: {err.strerror or err}"
            ) from None
        return cls(reader, writer, config)

    async def status(self, *, after_job: bool = False) -> PrinterStatus:
        """Ask DLE EOT 1, 2, 4 and wait up to `status_timeout` for the answers."""
        try:
            await self._send(STATUS_QUERY)
            async with asyncio.timeout(self.config.status_timeout):
                raw = await self._reader.readexactly(3)
        except TimeoutError:
            raise PrinterFault(
                "timeout",
                f"{self.address} did not answer its status within {self.config.status_timeout}s (hung?)",
                maybe_printed=after_job,
            ) from None
        except (asyncio.IncompleteReadError, ConnectionError, OSError) as err:
            raise PrinterFault(
                "disconnected",
                f"{self.address} dropped the connection: {err!r}",
                maybe_printed=after_job,
            ) from None
        return PrinterStatus.parse(raw)

    async def write(self, data: bytes) -> None:
        """Write `data` and wait until the socket took it, within `write_timeout`."""
        try:
            await self._send(data)
        except TimeoutError:
            raise PrinterFault(
                "timeout",
                f"{self.address} did not take the job within {self.config.write_timeout}s",
                maybe_printed=True,
            ) from None
        except (ConnectionError, OSError) as err:
            raise PrinterFault(
                "disconnected",
                f"{self.address} dropped the connection: {err!r}",
                maybe_printed=True,
            ) from None

    async def _send(self, data: bytes) -> None:
        self._writer.write(data)
        async with asyncio.timeout(self.config.write_timeout):
            await self._writer.drain()

    async def close(self) -> None:
        """Close politely, but never wait longer than `write_timeout`."""
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.config.write_timeout):
                await self._writer.wait_closed()

    def abort(self) -> None:
        """Drop the connection at once (a hung printer gets no graceful close)."""
        self._writer.transport.abort()


async def probe(config: PrinterConfig) -> PrinterStatus | None:
    """Connect and ask the status (None for a printer configured not to answer)."""
    conn = await PrinterConnection.open(config)
    try:
        status = await conn.status() if config.status_query else None
    except BaseException:
        conn.abort()
        raise
    await conn.close()
    return status


async def print_tickets(
    config: PrinterConfig, prepare: Callable[[], Awaitable[Iterable[bytes]]]
) -> PrinterStatus | None:
    """Print the tickets `prepare()` gives over one connection; PrinterFault if not (surely).

    `prepare` runs once the printer is known to be ready, right before the first
    byte (the spooler records the attempts there and may render again). Its tickets
    are taken one at a time, each write bounded by `write_timeout`, so a lazy
    iterable tells the caller which tickets were handed over when a fault comes.
    Returns the status read after the last ticket (None when the printer does not
    answer status queries).
    """
    conn = await PrinterConnection.open(config)
    ok = False
    try:
        if config.status_query:
            before = await conn.status()
            if before.state != "ok":
                raise PrinterFault(before.state, before.detail)
        for data in await prepare():
            await conn.write(data)
        after: PrinterStatus | None = None
        if config.status_query:
            after = await conn.status(after_job=True)
            if after.state != "ok":
                raise PrinterFault(
                    after.state, f"{after.detail} (during the job)", maybe_printed=True
                )
        ok = True
        return after
    finally:
        if ok:
            await conn.close()
        else:
            conn.abort()


async def send_job(
    config: PrinterConfig,
    data: bytes,
    *,
    before_write: Callable[[], Awaitable[None]] | None = None,
) -> PrinterStatus | None:
    """Print one ticket, `data`: `print_tickets` with `before_write` run before its first byte."""

    async def prepare() -> tuple[bytes]:
        if before_write is not None:
            await before_write()
        return (data,)

    return await print_tickets(config, prepare)
