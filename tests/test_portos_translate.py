"""PORTOS Order → kds OrderIn (recorded payload in tests/fixtures/portos) and the source's config."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kds.sources.portos.client import _query
from kds.sources.portos.config import Config, check
from kds.sources.portos.translate import (
    foreign_endpoints,
    portos_item_endpoints,
    returned_lines,
    translate,
)

FIXTURE = Path(__file__).parent / "fixtures" / "portos" / "order_terrace.json"


def recorded() -> dict[str, Any]:
    return json.loads(FIXTURE.read_text(encoding="utf-8"))


#: The kds endpoints of the restaurant in the recorded order.
KDS = {"Kuchyna", "Gril", "Bar"}


def config(**extra: Any) -> Config:
    return Config(type="portos", base_url="http://pos.example/api/", token="t", **extra)


def test_translation_keeps_portos_ids_ticket_and_item_details() -> None:
    order = translate(recorded(), config(), KDS)
    assert order is not None
    assert (
        order.id == "66a1f0c2e4b0a1d2c3f4a5b6" and order.source == "portos" and order.number == 42
    )
    assert order.device_name == "P01" and order.user == {"userName": "999", "name": "Majiteľ"}
    ticket = order.ticket
    assert (
        ticket.id == "66a1f0b9e4b0a1d2c3f4a5b1" and ticket.name == "Stôl 12" and ticket.version == 3
    )
    assert ticket.location is not None and (
        ticket.location.zone_name,
        ticket.location.table_name,
    ) == ("Terasa", "12")
    assert (
        ticket.purchase_type.value == "walkIn"
        and ticket.customer
        and ticket.customer["fullName"] == "Ján Novák"
    )
    soup, steak = order.items  # the Kofola's only endpoint is already processSkipped: not ours
    assert (soup.id, soup.plu.name, soup.plu.code, soup.comment, soup.course_number) == (
        1,
        "Cesnaková polievka",
        105,
        "bez syra",
        1,
    )
    assert (str(soup.quantity.amount), soup.quantity.unit) == ("2", "ks")
    assert [e.name for e in soup.endpoints] == ["Kuchyna"]
    assert [e.name for e in steak.endpoints] == ["Gril", "Kuchyna"]  # failed is still processable
    assert steak.course_number == 2


def test_endpoint_filter_and_map() -> None:
    # Only the PORTOS endpoints this kds processes, renamed to kds's endpoint names.
    kds = {"grill", "kitchen"}
    order = translate(
        recorded(),
        config(endpoints=["Gril"], endpoint_map={"Gril": "grill", "Kuchyna": "kitchen"}),
        kds,
    )
    assert order is not None
    assert [(i.id, [e.name for e in i.endpoints]) for i in order.items] == [(2, ["grill"])]
    assert translate(recorded(), config(endpoints=["Pizza"]), KDS | {"Pizza"}) is None
    cfg = config(endpoint_map={"Gril": "grill"})
    assert (
        cfg.to_kds("Gril") == "grill"
        and cfg.to_portos("grill") == "Gril"
        and cfg.to_portos("bar") == "bar"
    )


def test_without_endpoints_kds_owns_only_the_endpoints_it_runs() -> None:
    # endpoints = []: PORTOS endpoints named like a kds endpoint (directly or mapped) and no others.
    cfg = config(endpoint_map={"Gril": "grill"})
    kds = {"grill", "Kuchyna"}
    assert [cfg.owns(n, kds) for n in ("Gril", "Kuchyna", "Bar", "grill")] == [
        True,
        True,
        False,
        False,
    ]
    order = translate(recorded(), cfg, kds)
    assert order is not None
    assert [(i.id, [e.name for e in i.endpoints]) for i in order.items] == [
        (1, ["Kuchyna"]),
        (2, ["grill", "Kuchyna"]),
    ]
    assert foreign_endpoints(recorded(), cfg, {"grill"}) == [
        "Kuchyna",
        "Kuchyna",
    ]  # Bar's line is already final
    assert (
        translate(recorded(), config(), set()) is None
    )  # no kds endpoint of PORTOS's: nothing is claimed


def test_claimed_endpoints_must_be_kds_endpoints() -> None:
    errors = check(config(endpoints=["Pizza"], endpoint_map={"Gril": "grill"}), {"Gril"})
    assert (
        len(errors) == 2 and "'Pizza' is not a kds endpoint" in errors[0] and "'grill'" in errors[1]
    )
    assert check(config(endpoints=["Gril"], endpoint_map={"Gril": "grill"}), {"grill"}) == []


def test_odd_values_are_tolerated_or_rejected_whole() -> None:
    raw = recorded()
    raw["ticket"]["purchaseType"] = "dineInSpecial"
    raw["items"][0]["comment"] = "x" * 2000
    raw["items"][0]["endpoints"] = []  # no routing from PORTOS: kds routes it
    raw["items"].append(
        {"id": 9, "plu": {"name": "Refund", "code": 1}, "quantity": {"amount": -1, "unit": "ks"}}
    )
    order = translate(raw, config(), KDS)
    assert order is not None
    assert order.ticket.purchase_type.value == "unknown"
    assert len(order.items[0].comment or "") == 500 and order.items[0].endpoints == []
    assert [i.id for i in order.items] == [1, 2]
    raw["items"][1]["id"] = 1  # repeated item ids: unreadable, not half-taken
    with pytest.raises(ValidationError):
        translate(raw, config(), KDS)


def _with_return(**line: Any) -> dict[str, Any]:
    """The recorded order and one returned line at the grill (fields replaced by `line`)."""
    raw = recorded()
    returned = {"id": 9, "plu": {"name": "Steak", "code": 7}, "quantity": {"amount": -1}}
    raw["items"].append({**returned, "endpoints": [{"name": "Gril"}], **line})
    return raw


def test_a_returned_line_is_read_with_its_dish_and_amount() -> None:
    (line,) = returned_lines(_with_return(), config(), KDS)
    assert (line.id, line.code, line.name, line.amount) == (9, 7, "Steak", Decimal(1))
    assert line.kds_endpoints == ("Gril",) and line.acknowledge


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ({"plu": "oops"}, "line 9: its plu is not an object"),
        ({"plu": ["Steak"]}, "line 9: its plu is not an object"),
        ({"quantity": {"amount": float("nan")}}, "line 9: its quantity is not a number"),
        ({"quantity": -float("inf")}, "line 9: its quantity is not a number"),
    ],
)
def test_a_returned_line_that_cannot_be_read_makes_the_order_unreadable(
    line: dict[str, Any], reason: str
) -> None:
    # A return kds cannot match to a dish must not cancel the wrong one, nor crash processing:
    # the order is unreadable (shown to staff, tried again on every poll).
    with pytest.raises(ValueError, match=reason):
        returned_lines(_with_return(**line), config(), KDS)


def test_an_order_of_returns_only_needs_a_ticket_object() -> None:
    raw = _with_return()
    raw["items"] = raw["items"][-1:]
    raw["ticket"] = "T-1"
    assert translate(raw, config(), KDS) is None  # no new dishes
    with pytest.raises(ValueError, match="the order's ticket is not an object"):
        returned_lines(raw, config(), KDS)


def test_item_endpoints_of_a_raw_order() -> None:
    assert portos_item_endpoints(recorded()) == {1: ["Kuchyna"], 2: ["Gril", "Kuchyna"], 3: ["Bar"]}


def test_config_needs_exactly_one_auth_scheme() -> None:
    base = {"type": "portos", "base_url": "https://pos.example/api"}
    assert Config(**base, username="u", password="p", device_name="P01").username == "u"
    assert Config(**base, client_id="c", client_secret="s").client_id == "c"
    for bad in (
        {},
        {"token": "t", "client_id": "c", "client_secret": "s"},
        {"username": "u", "password": "p"},  # DeviceName is required by PORTOS
        {"client_id": "c"},
    ):
        with pytest.raises(ValidationError):
            Config(**base, **bad)
    with pytest.raises(ValidationError):
        Config(type="portos", base_url="pos.example", token="t")
    with pytest.raises(ValidationError):
        config(endpoint_map={"A": "grill", "B": "grill"})
    assert "s3cr3t-value" not in repr(
        Config(**base, token="s3cr3t-value")
    )  # secrets stay out of logs


def test_query_string_keeps_ndata_readable() -> None:
    assert _query(
        [("isProcessable", "true"), ("$skip", 0), ("number", "gte:2;lt:5"), ("id", "a b")]
    ) == ("isProcessable=true&$skip=0&number=gte:2;lt:5&id=a%20b")


def test_check_config_names_an_endpoint_kds_does_not_have(tmp_path: Path) -> None:
    # `kds check-config` fails (instead of kds acknowledging lines to a station that does not exist).
    from kds.config import ConfigError, settings_from_dict

    from .util import base_config

    source = {
        "type": "portos",
        "base_url": "http://pos.example/api",
        "token": "t",
        "endpoints": ["pizza"],
    }
    with pytest.raises(
        ConfigError,
        match=r"sources\.portos\.endpoints: PORTOS endpoint 'pizza' is not a kds endpoint",
    ):
        settings_from_dict(base_config(tmp_path, sources=[{"type": "native"}, source]))
