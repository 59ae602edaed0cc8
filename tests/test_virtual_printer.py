"""The virtual ESC/POS printer: decoding, status answers, modes, log, control port and CLI."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from kds.printing.config import PrinterConfig
from kds.printing.transport import STATUS_QUERY, PrinterStatus, send_job
from kds.simulators.printer import EscPosDecoder, VirtualPrinter, read_log

from .util import ROOT, free_port, wait_until


@pytest.fixture
async def printer(tmp_path: Path) -> AsyncIterator[VirtualPrinter]:
    async with VirtualPrinter(log_path=tmp_path / "printer.jsonl") as vp:
        yield vp


def ticket_bytes() -> bytes:
    return (
        b"\x1b@"
        + b"\x1b!\x00\x1bE\x01\x1ba\x01GRILL\n"
        + b"\x1d!\x22#42\n"
        + b"\x1d!\x00\x1bE\x00\x1ba\x00\x1dB\x01 VOID \x1dB\x00\n"
        + b"\x1bt\x12"
        + "Čučoriedkový".encode("cp852")
        + b"\n"
        + b"\x1bt\x11"
        + "Борщ".encode("cp866")
        + b"\n"
        + b"\x1bt\x00"
        + "Größe".encode("cp437")
        + b"\n"
        + b"\x1bB\x02\x02"
        + b"\x1bd\x06\x1dVA\x03"
    )


def test_decoder_text_styles_code_pages_and_cut() -> None:
    d = EscPosDecoder("TM-T20II")
    d.feed(ticket_bytes())
    d.finish()
    assert [line.text for line in d.lines] == [
        "GRILL",
        "#42",
        " VOID ",
        "Čučoriedkový",
        "Борщ",
        "Größe",
    ]
    grill, number, void = d.lines[:3]
    assert grill.bold and grill.align == "center" and grill.width == 1
    assert number.width == 3 and number.height == 3 and number.bold
    assert void.invert and not void.bold
    assert d.code_pages == ["CP852", "CP866", "CP437"]
    assert (
        d.cuts == 1
        and d.beeps == 2
        and d.ticket_texts() == ["GRILL\n#42\n VOID \nČučoriedkový\nБорщ\nGröße"]
    )
    assert not d.unknown


def test_decoder_copes_with_commands_split_across_reads() -> None:
    # TCP may split a command anywhere: feeding byte by byte decodes the same as all at once.
    whole = EscPosDecoder()
    whole.feed(ticket_bytes())
    split = EscPosDecoder()
    for i in range(len(ticket_bytes())):
        split.feed(ticket_bytes()[i : i + 1])
    assert (
        split.lines == whole.lines
        and split.cuts == whole.cuts
        and split.code_pages == whole.code_pages
    )


def test_decoders_of_one_profile_share_its_code_page_tables() -> None:
    # A printer knows its code pages from ROM: building them for each connection made the
    # fake, not kds, the bottleneck of the bench's print phase (~45 ms per job on a busy box).
    assert EscPosDecoder("TM-T20II").tables is EscPosDecoder("TM-T20II").tables


def test_decoder_counts_a_text_run_and_its_commands_as_byte_by_byte() -> None:
    whole = EscPosDecoder()
    whole.feed(ticket_bytes())
    split = EscPosDecoder()
    for i in range(len(ticket_bytes())):
        split.feed(ticket_bytes()[i : i + 1])
    assert whole.job_bytes == split.job_bytes == len(ticket_bytes())
    assert whole.commands == split.commands and whole.unknown == split.unknown == []


def test_decoder_skips_image_data(tmp_path: Path) -> None:
    # A logo's raster bytes never show up as text, however they look.
    from kds.model import ItemEndpoint, Order, OrderItem, OrderStatus, Plu, utcnow
    from kds.printing.render import Ticket, TicketRenderer

    logo = tmp_path / "logo.png"
    Image.new("1", (120, 40), color=0).save(logo)
    now = utcnow()
    order = Order(
        id="o",
        number=1,
        source="native",
        external_id="e",
        created_at=now,
        updated_at=now,
        items=[
            OrderItem(
                id=1,
                plu=Plu(name="Soup"),
                quantity={"amount": 1},
                endpoints=[ItemEndpoint(name="grill", status=OrderStatus.CREATED)],
            ),
        ],
    )
    data = TicketRenderer(PrinterConfig(address="127.0.0.1", logo=str(logo))).render(
        Ticket(order=order, endpoint="grill")
    )
    d = EscPosDecoder()
    d.feed(data)
    d.finish()
    assert d.images == 1 and d.lines[0].text == "GRILL" and "1 x Soup" in d.text and not d.unknown


async def status_of(vp: VirtualPrinter) -> PrinterStatus | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", vp.port)
    try:
        writer.write(STATUS_QUERY)
        await writer.drain()
        try:
            return PrinterStatus.parse(await asyncio.wait_for(reader.readexactly(3), 0.5))
        except TimeoutError:
            return None
    finally:
        writer.close()


async def test_status_answers_per_mode(printer: VirtualPrinter) -> None:
    # DLE EOT 1/2/4 are answered like an Epson: online, paper end, cover open; hang answers nothing.
    status = await status_of(printer)
    assert status is not None and status.state == "ok"
    await printer.set_mode("paper_out")
    status = await status_of(printer)
    assert (
        status is not None and status.state == "paper_out" and status.offline and status.paper_end
    )
    await printer.set_mode("cover_open")
    status = await status_of(printer)
    assert status is not None and status.state == "cover_open"
    await printer.set_mode("online", answers_status=False)
    assert await status_of(printer) is None
    await printer.set_mode("hang")
    assert await status_of(printer) is None


async def test_offline_refuses_then_listens_again_on_the_same_port(printer: VirtualPrinter) -> None:
    port = printer.port
    await printer.set_mode("offline")
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", port)
    await printer.set_mode("online")
    assert printer.port == port
    await send_job(PrinterConfig(address=printer.address), ticket_bytes())
    jobs = await printer.wait_for_jobs(1)
    assert jobs[0].complete and jobs[0].lines[0].text == "GRILL"


async def test_drop_mid_job_records_a_partial_job_then_times_out(printer: VirtualPrinter) -> None:
    # drop_mid_job with times=1: the first job is cut off after 20 bytes, the next prints whole.
    await printer.set_mode("drop_mid_job", times=1, drop_after=20)
    reader, writer = await asyncio.open_connection("127.0.0.1", printer.port)
    writer.write(ticket_bytes())
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the printer hung up on us
    writer.close()
    jobs = await printer.wait_for_jobs(1)
    assert not jobs[0].complete and jobs[0].nbytes == 20 and jobs[0].cuts == 0
    assert printer.mode == "online"
    await send_job(PrinterConfig(address=printer.address), ticket_bytes())
    jobs = await printer.wait_for_jobs(2)
    assert jobs[1].complete


async def test_paper_out_prints_nothing(printer: VirtualPrinter) -> None:
    # A client that ignores status sends the job anyway: it is discarded, not printed.
    await printer.set_mode("paper_out")
    await send_job(PrinterConfig(address=printer.address, status_query=False), ticket_bytes())
    await wait_until(lambda: printer.discarded)
    assert printer.jobs == [] and printer.discarded[0].printed is False


async def test_json_lines_log_round_trips(printer: VirtualPrinter, tmp_path: Path) -> None:
    await send_job(PrinterConfig(address=printer.address), ticket_bytes())
    await printer.wait_for_jobs(1)
    logged = read_log(tmp_path / "printer.jsonl")
    assert len(logged) == 1
    assert logged[0].text == printer.jobs[0].text and logged[0].lines == printer.jobs[0].lines
    assert logged[0].raw == printer.jobs[0].raw and logged[0].tickets == printer.jobs[0].tickets
    raw = json.loads((tmp_path / "printer.jsonl").read_text().splitlines()[0])
    assert raw["text"].startswith("GRILL\n#42") and raw["printed"] is True


async def test_each_ticket_of_a_job_has_the_time_its_cut_arrived(printer: VirtualPrinter) -> None:
    # Several tickets over one connection: each keeps the moment its own cut arrived (the
    # bench's print figure), taken when the bytes were read.
    reader, writer = await asyncio.open_connection("127.0.0.1", printer.port)
    writer.write(ticket_bytes())
    await writer.drain()
    await wait_until(lambda: printer.bytes_received >= len(ticket_bytes()))
    between = time.perf_counter()
    writer.write(ticket_bytes())
    await writer.drain()
    writer.close()
    job = (await printer.wait_for_jobs(1))[0]
    assert len(job.tickets) == 2 and len(job.cut_times) == 2
    assert job.cut_times[0] <= between <= job.cut_times[1] == job.cut_at


async def test_wait_for_jobs_is_bounded(printer: VirtualPrinter) -> None:
    with pytest.raises(asyncio.TimeoutError, match="0 of 1 jobs"):
        await printer.wait_for_jobs(1, timeout=0.05)


async def test_control_port_switches_modes_from_another_process() -> None:
    async with (
        VirtualPrinter(control_port=0) as vp,
        aiohttp.ClientSession(f"http://127.0.0.1:{vp.control_port}") as http,
    ):
        async with http.post("/mode", json={"mode": "offline"}) as response:
            assert response.status == 200 and (await response.json())["mode"] == "offline"
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", vp.port)
        async with http.post("/mode", json={"mode": "sideways"}) as response:
            assert response.status == 400
        async with http.post("/mode", json={"mode": "online"}) as response:
            assert response.status == 200
        await send_job(PrinterConfig(address=vp.address), ticket_bytes())
        await vp.wait_for_jobs(1)
        async with http.get("/jobs", params={"since": "0"}) as response:
            jobs = await response.json()
        assert len(jobs) == 1 and jobs[0]["text"].startswith("GRILL")
        async with http.get("/state") as response:
            assert (await response.json())["jobs"] == 1


async def test_cli_runs_a_virtual_printer(tmp_path: Path) -> None:
    # `kds virtual-printer --port N --log PATH` prints what it receives and stops on SIGTERM.
    port = free_port()
    log = tmp_path / "vp.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kds.cli",
            "virtual-printer",
            "--port",
            str(port),
            "--log",
            str(log),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:

        async def up() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                return False
            writer.close()
            return True

        await wait_until(up, timeout=15)
        await send_job(PrinterConfig(address=f"127.0.0.1:{port}"), ticket_bytes())
        await wait_until(lambda: read_log(log), timeout=5)
        assert read_log(log)[0].lines[1].text == "#42"
        proc.send_signal(signal.SIGTERM)
        out, _ = await asyncio.to_thread(proc.communicate, timeout=10)
        assert proc.returncode == 0
        assert "Čučoriedkový" in out.decode()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
