"""Order ids: UUIDv7, so new rows append to the store's B-trees instead of scattering."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from kds.ids import uuid7_hex


def test_uuid7_hex_is_a_version_7_uuid_in_uuid4_hex_shape() -> None:
    value = uuid7_hex()
    assert len(value) == 32 and value == value.lower()
    parsed = uuid.UUID(value)
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_uuid7_hex_leads_with_the_unix_milliseconds() -> None:
    before = time.time_ns() // 1_000_000
    value = uuid7_hex()
    after = time.time_ns() // 1_000_000
    assert before <= int(value[:12], 16) <= after


def test_ids_made_in_later_milliseconds_sort_later_and_never_repeat() -> None:
    first = uuid7_hex()
    deadline = time.time_ns() // 1_000_000 + 2
    while time.time_ns() // 1_000_000 < deadline:  # a busy-wait of 2 ms, not a sleep
        pass
    assert uuid7_hex() > first
    many = {uuid7_hex() for _ in range(10_000)}
    assert len(many) == 10_000


def test_ids_draw_their_randomness_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each os.urandom is a system call that gives the GIL away: one per order made ingest
    # wait on the store's writer thread. A block of random bytes serves many ids.
    calls = []
    real = os.urandom

    def counted(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(os, "urandom", counted)
    ids = {uuid7_hex() for _ in range(1_000)}
    assert len(ids) == 1_000
    assert len(calls) <= 10, f"{len(calls)} calls to os.urandom for 1,000 ids"


def test_every_digit_but_the_version_and_variant_is_random() -> None:
    # Ids come from blocks of random bits with the version and variant set by masks over the
    # whole block: each id's other 74 bits must be left random (and the block's ids apart).
    ids = [uuid7_hex() for _ in range(2_000)]
    for position in range(13, 32):
        digits = {i[position] for i in ids}
        expected = set("89ab") if position == 16 else set("0123456789abcdef")
        assert digits == expected, position
    assert {i[12] for i in ids} == {"7"}
