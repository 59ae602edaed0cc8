"""POS text never reaches a printer as commands: every POS string is cleaned before rendering."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from kds.printing.sanitize import clean_text
from kds.printing.transliterate import ascii_of
from kds.simulators.printer import EscPosDecoder, PrintedJob, VirtualPrinter

from .util import FAST_PRINTER, base_config, order_body

#: Cut, drawer kick, printer beep (DLE DC4), a 127-line feed, a reset, NUL, DEL, a C1 control (CSI).
INJECTED = "\x1bi\x1bp\x00\x19\x19\x10\x14\x01\x00\x05\x1bd\x7f\x1b@\x00\x7f\x9b"


def dirty(text: str) -> str:
    """`text` split by printer commands, a bare CR and a bare LF."""
    middle = len(text) // 2
    return f"{text[:middle]}{INJECTED}{text[middle:]}\r{INJECTED}\n{INJECTED}"


def commands(job: PrintedJob) -> list[str]:
    """The commands of a printed job, decoded from its bytes; line feeds left out (text wraps differently)."""
    decoder = EscPosDecoder()
    decoder.feed(job.raw)
    decoder.finish()
    assert not decoder.unknown, decoder.unknown
    return [c for c in decoder.commands if c != "0a"]


def test_clean_text_keeps_text_and_line_breaks_and_drops_every_control() -> None:
    # Line breaks become "\n" (CRLF, CR, NEL and the Unicode separators too), tabs spaces;
    # C0, DEL, C1 and format characters (bidi, zero-width) go; letters of any script stay.
    assert clean_text("Čučoriedkový koláč, Борщ") == "Čučoriedkový koláč, Борщ"
    assert clean_text("a\r\nb\rc\nd\x85e\u2028f\u2029g") == "a\nb\nc\nd\ne\nf\ng"
    assert clean_text("well\tdone") == "well done"
    assert (
        clean_text("x\x1bi\x1bp\x00\x19\x19\x10\x14\x1bd\x7f\x1b@\x7f\x9b\u202e\u200d\ufeffy")
        == "xipd@y"
    )
    for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:
        assert clean_text(f"a{chr(code)}b") in ("ab", "a b", "a\nb")


def test_transliteration_never_makes_a_control_byte() -> None:
    # What clean_text lets through is turned into ASCII by transliteration for printers
    # without the right code page: no character of Unicode turns into a control byte there.
    for code in range(0x80, sys.maxunicode + 1):
        if unicodedata.category(chr(code)).startswith("C"):
            continue
        assert all(0x20 <= ord(c) < 0x7F for c in ascii_of(chr(code))), hex(code)


@pytest.fixture
def config_data(tmp_path: Path, printer: VirtualPrinter) -> dict[str, Any]:
    printer_config = {"address": printer.address, **FAST_PRINTER}
    return base_config(
        tmp_path,
        endpoints=[{"name": "grill", "display": True, "printer": printer_config}],
        routing={"default_endpoint": "grill", "rules": []},
    )


def order_fields(text: Any) -> dict[str, Any]:
    """An order whose every text field went through `text` (code and unit are short: injected once)."""
    return order_body(
        deviceName=text("POS1"),
        user={"userName": text("anna"), "name": text("Anna")},
        ticket={
            "id": text("T-1"),
            "name": text("Table 5"),
            "location": {"zoneName": text("Terrace"), "tableName": text("5")},
            "purchaseType": "delivery",
            "customer": {
                "name": text("Jana Novak"),
                "phone": text("+421 900"),
                "address": text("Main St 1"),
            },
        },
        items=[
            {
                "id": 1,
                "plu": {
                    "name": text("Cheeseburger"),
                    "code": "1" + INJECTED + "01" if text is dirty else "101",
                    "stockName": text("burger"),
                    "group": text("Mains"),
                },
                "quantity": {"amount": 2, "unit": "kg" + INJECTED[:6]}
                if text is dirty
                else {"amount": 2, "unit": "kg"},
                "comment": text("medium rare"),
                "courseNumber": 1,
                "modifiers": [text("no onion"), text("extra cheese")],
            }
        ],
    )


async def test_no_command_byte_comes_from_pos_text(
    client: TestClient, printer: VirtualPrinter
) -> None:
    # An order whose every text field carries ESC i (cut), ESC p (drawer), DLE DC4, ESC d 127
    # (feed), ESC @ (reset), NUL, DEL, a C1 control and bare CR/LF prints exactly the commands
    # of the same order without them; the text is still there, the comment's line break a
    # new line with the comment's indentation.
    clean_body = order_fields(lambda text: text)
    clean_body["id"] = "clean"
    dirty_body = order_fields(dirty)
    dirty_body["id"] = "dirty"
    for body in (clean_body, dirty_body):
        response = await client.post("/api/v1/orders", json=body)
        assert response.status == 201, await response.text()
    clean_job, dirty_job = await printer.wait_for_jobs(2)
    assert commands(dirty_job) == commands(clean_job)
    assert dirty_job.cuts == clean_job.cuts == 1 and dirty_job.beeps == 0
    text = dirty_job.text
    assert "Cheese" in text and "burger" in text and "Jana" in text
    comment = [line.text for line in dirty_job.lines if line.text.startswith("   ! ")]
    assert len(comment) == 1
    after = [line.text for line in dirty_job.lines]
    start = after.index(comment[0])
    assert after[start + 1].startswith("     ") and after[start + 1].strip() == "ipd@"
