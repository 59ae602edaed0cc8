"""A corpus of bad input, each case with the answer it must get — and nothing half-applied.

`tests/fixtures/bad_input/manifest.json` lists raw request bodies (invalid and
overlong UTF-8, UTF-16, lone surrogates, truncated and trailing JSON, NaN,
1e999, 5000-digit numbers, negative and zero quantities, unknown statuses,
wrong types, HTML/script in every text field...) and the statuses each may
get. Bodies too big for a fixture file (10,000 items, 10,000 levels of
nesting, over the body limit) are made here. For every refused request the
database rows and the order's JSON are unchanged; every accepted one is whole
and keeps its text verbatim.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiohttp.test_utils import TestClient

from kds.app import Daemon

from .crash.harness import check_order_whole
from .util import order_body

CORPUS = Path(__file__).parent / "fixtures" / "bad_input"
CASES = json.loads((CORPUS / "manifest.json").read_text())["cases"]
TABLES = ("orders", "items", "item_endpoints", "status_changes", "outbox", "inbox")


async def row_counts(daemon: Daemon) -> dict[str, int]:
    """Rows per table: what a refused request must leave alone."""
    await daemon.store.barrier()
    return {t: (await daemon.store.fetchone(f"SELECT COUNT(*) AS n FROM {t}"))["n"] for t in TABLES}  # type: ignore[index]


async def post_raw(
    client: TestClient, path: str, body: bytes, content_type: str = "application/json"
) -> tuple[int, Any]:
    response = await client.post(path, data=body, headers={"Content-Type": content_type})
    text = await response.text()
    assert response.content_type == "application/json", (
        f"{path}: {response.status} {response.content_type}: {text[:200]}"
    )
    return response.status, json.loads(text)


def text_fields(order: dict[str, Any]) -> list[str]:
    """Every string a POS sent that kds keeps as text."""
    found: list[str] = []

    def walk(value: Any) -> None:
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            for v in value.values():
                walk(v)
        elif isinstance(value, list):
            for v in value:
                walk(v)

    walk(order)
    return found


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["route"] == "ingest"], ids=lambda c: c["name"]
)
async def test_ingest_corpus(client: TestClient, daemon: Daemon, case: dict[str, Any]) -> None:
    # Each bad body gets the answer the corpus names (never a 5xx); a refused one stores nothing;
    # an accepted one is a whole order and keeps every string verbatim.
    body = (CORPUS / case["file"]).read_bytes()
    before = await row_counts(daemon)
    status, answer = await post_raw(client, "/api/v1/orders", body)
    assert status in case["expect"], f"{case['name']}: {status} {answer} ({case.get('why', '')})"
    if status >= 400:
        assert set(answer) >= {"error", "detail"}, answer
        assert await row_counts(daemon) == before, (
            f"{case['name']} was refused but changed the database"
        )
        return
    problems = check_order_whole(answer, None)
    assert not problems, problems
    stored = await (await client.get(f"/api/v1/orders/{answer['id']}")).json()
    assert stored == answer
    sent = json.loads(body.decode("utf-8-sig"))
    for item_sent, item_stored in zip(sent["items"], stored["items"]):
        assert item_stored["plu"]["name"] == item_sent["plu"]["name"]
        assert item_stored.get("comment") == item_sent.get("comment")


async def test_html_and_script_are_stored_and_served_verbatim_as_json_text(
    client: TestClient,
) -> None:
    # Markup in every text field comes back byte for byte as JSON strings — over the API and the
    # live feed — with nosniff, so nothing on the way can treat it as HTML.
    body = json.loads((CORPUS / "html_everywhere.body").read_text())
    async with websockets.connect(f"ws://127.0.0.1:{client.port}/api/v1/ws") as ws:
        await ws.recv()  # snapshot
        response = await client.post("/api/v1/orders", json=body)
        assert response.status == 201
        created = await response.json()
        feed = json.loads(await ws.recv())
    response = await client.get(f"/api/v1/orders/{created['id']}")
    assert response.content_type == "application/json"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    stored = await response.json()
    markup = {t for t in text_fields(body) if "<" in t}
    for where in (stored, feed["order"]):
        kept = set(text_fields(where))
        assert markup <= kept, markup - kept
    assert stored["items"][0]["modifiers"] == body["items"][0]["modifiers"]
    assert stored["ticket"]["customer"] == body["ticket"]["customer"]


@pytest.mark.parametrize(
    "case", [c for c in CASES if c["route"] == "status"], ids=lambda c: c["name"]
)
async def test_status_corpus(client: TestClient, daemon: Daemon, case: dict[str, Any]) -> None:
    # Bad status bodies on every status route: the named answer, and the order unchanged when refused.
    created = await (await client.post("/api/v1/orders", json=order_body("status-corpus"))).json()
    base = f"/api/v1/orders/{created['id']}"
    body = (CORPUS / case["file"]).read_bytes()
    for path in (
        f"{base}/status",
        f"{base}/items/1/status",
        f"{base}/endpoints/grill/status",
        f"{base}/endpoints/grill/items/1/status",
    ):
        before_rows = await row_counts(daemon)
        before = await (await client.get(base)).json()
        status, answer = await post_raw(client, path, body)
        assert status in case["expect"] or status == 409, (
            f"{case['name']} on {path}: {status} {answer}"
        )
        if status >= 400:
            assert await (await client.get(base)).json() == before
            assert await row_counts(daemon) == before_rows


def items(n: int) -> list[dict[str, Any]]:
    return [
        {"id": i + 1, "plu": {"name": f"Dish {i}", "code": 101}, "quantity": {"amount": 1}}
        for i in range(n)
    ]


@pytest.mark.parametrize(
    "name, make, expect",
    [
        ("10,000 items", lambda: order_body("ten-thousand", items=items(10_000)), (413, 422)),
        ("501 items", lambda: order_body("five-oh-one", items=items(501)), (422,)),
        (
            "51 modifiers",
            lambda: order_body("mods", items=[{"plu": {"name": "x"}, "modifiers": ["m"] * 51}]),
            (422,),
        ),
        ("10,000 levels of nesting", lambda: "[" * 10_000 + "]" * 10_000, (400,)),
        (
            "100,000 levels in a field",
            lambda: '{"id": "deep", "items": ' + "[" * 100_000 + "]" * 100_000 + "}",
            (400, 413),
        ),
        # An unknown field is ignored (not stored), however deep; free-form POS objects are kept
        # and so must stay shallow.
        (
            "33 levels in an unknown field",
            lambda: (
                '{"id": "deep33", "items": [{"plu": {"name": "x"}}], "x": '
                + "[" * 33
                + "]" * 33
                + "}"
            ),
            (201, 400),
        ),
        (
            "20 levels in the customer",
            lambda: order_body(
                "deepcustomer", ticket={"customer": json.loads('{"a":' * 20 + "1" + "}" * 20)}
            ),
            (400, 422),
        ),
        (
            "20 levels in the user",
            lambda: order_body("deepuser", user=json.loads("[" * 20 + "]" * 20)),
            (400, 422),
        ),
        ("2 MB body", lambda: order_body("huge", ticket={"name": "x" * 2_000_000}), (413,)),
        (
            "10,000 keys",
            lambda: {**order_body("keys"), **{f"k{i}": i for i in range(10_000)}},
            (201,),
        ),
    ],
)
async def test_generated_monsters(
    client: TestClient, daemon: Daemon, name: str, make: Any, expect: tuple[int, ...]
) -> None:
    # Bodies too big for the corpus files: refused with the named 4xx and nothing stored, or stored whole.
    value = make()
    body = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    before = await row_counts(daemon)
    status, answer = await post_raw(client, "/api/v1/orders", body)
    assert status in expect, f"{name}: {status} {str(answer)[:300]}"
    if status >= 400:
        assert await row_counts(daemon) == before
    else:
        assert not check_order_whole(answer, None)


async def test_500_items_is_the_limit_and_stored_whole(client: TestClient) -> None:
    # The largest order allowed goes in whole: 500 items, each routed, each with its history.
    response = await client.post(
        "/api/v1/orders", json=order_body("five-hundred", items=items(500))
    )
    assert response.status == 201
    order = await response.json()
    assert len(order["items"]) == 500 and not check_order_whole(order, None)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b"id=form&items=1"),
        (
            "multipart/form-data; boundary=xx",
            b"--xx\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--xx--\r\n",
        ),
        ("text/plain", json.dumps(order_body("plain")).encode()),
        ("application/json; charset=latin-1", json.dumps(order_body("latin")).encode()),
    ],
)
async def test_other_content_types(
    client: TestClient, daemon: Daemon, content_type: str, body: bytes
) -> None:
    # Whatever the Content-Type says, the body is read as JSON: a clear 4xx, or a whole order.
    before = await row_counts(daemon)
    status, answer = await post_raw(client, "/api/v1/orders", body, content_type)
    assert status in (201, 400, 415, 422), (status, answer)
    if status >= 400:
        assert await row_counts(daemon) == before
    else:
        assert not check_order_whole(answer, None)


@pytest.mark.parametrize(
    "query",
    [
        "$take=99999999999999999999",
        "$skip=-1",
        "$take=1e3",
        "$sort=" + ",".join(["number"] * 1000),
        "number=abc",
        "status=cooking",
        "isProcessed=maybe",
        "endpoint=%00",
        "$count=2",
        "id=" + "x" * 10_000,
        "%ff%fe=%ff",
        "$sort=number:sideways",
        "$top=5",
    ],
)
async def test_bad_queries(client: TestClient, query: str) -> None:
    # Bad query strings: 200 or a 400 saying why; never a 5xx.
    response = await client.get(f"/api/v1/orders?{query}")
    assert response.status in (200, 400), await response.text()
    if response.content_type == "text/plain":
        # aiohttp's HTTP parser refuses an over-long request line before kds sees it.
        assert response.status == 400 and len(query) > 8000
        return
    data = await response.json()
    assert ("detail" in data) if response.status == 400 else isinstance(data, dict)


# ----------------------------------------------------------------------------- secrets in the log

LOG_TOKENS = {role: f"{role}-token-{'x' * 20}" for role in ("pos", "kitchen", "viewer", "admin")}
R2O_SECRET = "r2o-webhook-secret-0123456789"
PORTOS_SECRET = "portos-webhook-secret-98765"
PORTOS_TOKEN = "portos-api-token-abcdefghij"
R2O_TOKEN = "r2o-account-token-klmnopqrst"


def test_no_secret_or_token_in_any_log_line_of_the_corpus(tmp_path: Path) -> None:
    # A 10,000-deep webhook body raised RecursionError, a 500 logged with its path — and the
    # ready2order secret is part of that path. Every corpus body and every monster goes to the
    # ingest, status and webhook routes of a `kds run` at debug level with every kind of
    # secret configured; then no log line may hold any of them.
    import urllib.error
    import urllib.request

    from kds.api.auth import hash_token

    from .util import KdsProcess, base_config, write_config

    dead = "http://127.0.0.1:9"  # the POS is down: its adapters log failures, which must hold no secret either
    config = base_config(
        tmp_path,
        logging={"level": "debug", "format": "json"},
        security={
            "access": "tokens",
            "ingest_rate": 0,
            "tokens": [
                {"name": role, "role": role, "sha256": hash_token(t)}
                for role, t in LOG_TOKENS.items()
            ],
        },
        sources=[
            {"type": "native"},
            {
                "type": "ready2order",
                "base_url": dead,
                "account_token": R2O_TOKEN,
                "webhook_secret": R2O_SECRET,
                "poll_interval": "1h",
                "max_backoff": "1s",
            },
            {
                "type": "portos",
                "base_url": dead,
                "token": PORTOS_TOKEN,
                "webhook_secret": PORTOS_SECRET,
                "poll_interval": "1h",
                "max_backoff": "1s",
            },
        ],
    )
    kds = KdsProcess(
        write_config(tmp_path / "config.toml", config), tmp_path / "kds.sqlite3"
    ).start()
    statuses: list[int] = []

    def post(path: str, body: bytes, token: str | None) -> None:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(kds.url + path, data=body, method="POST", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                statuses.append(response.status)
        except urllib.error.HTTPError as err:
            statuses.append(err.code)
            err.read()

    bodies = [(CORPUS / c["file"]).read_bytes() for c in CASES] + [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"id": "deep", "items": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"event": "orderItem.created", "x": ' + b'{"a":' * 10_000 + b"1" + b"}" * 10_000 + b"}",
    ]
    try:
        for body in bodies:
            post("/api/v1/orders", body, LOG_TOKENS["pos"])
            post("/api/v1/orders/nope/endpoints/grill/status", body, LOG_TOKENS["kitchen"])
            post(f"/hooks/ready2order/{R2O_SECRET}", body, None)
            post(
                f"/hooks/ready2order/{R2O_SECRET[:-1]}x", body, None
            )  # a wrong secret, close to the real one
            post("/hooks/portos/portos", body, None)
            post("/api/v1/orders", body, "not-" + LOG_TOKENS["pos"])
    finally:
        assert kds.stop() == 0
    log = kds.log_path.read_text()
    assert "kds.ready" in log
    secrets = [
        *LOG_TOKENS.values(),
        R2O_SECRET,
        R2O_SECRET[:-1],
        PORTOS_SECRET,
        PORTOS_TOKEN,
        R2O_TOKEN,
    ]
    leaks = [
        (secret, line[:300]) for line in log.splitlines() for secret in secrets if secret in line
    ]
    assert not leaks, leaks[:5]
    assert statuses and max(statuses) < 500, sorted(set(statuses))
