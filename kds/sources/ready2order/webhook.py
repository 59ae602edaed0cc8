"""Where a ready2order webhook comes in: `POST /hooks/ready2order/{secret}`, and what it says.

The handler checks the secret in the path (wrong: 404, nothing stored), keeps
the raw body in the durable inbox (dedupe key: the event id, else a hash of the
body, so a retried delivery is kept once) and answers 202 at once; the source's
inbox worker processes it (`source.py`). Webhook payloads are not fixed by the
seed, so `read_webhook` accepts the plausible shapes (`resource` arrays of ids
or objects, `ids`, `order_ids`, nested `data`) and reports what it cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from ...errors import NotFound
from ..coerce import as_int
from .config import Config

#: The item events kds registers and acts on.
ITEM_EVENTS = ("orderItem.created", "orderItem.cancelled", "orderItem.transferred")
#: The catalogue events that keep products and groups current.
CATALOG_EVENTS = (
    "product.created", "product.updated", "product.deleted",
    "productGroup.created", "productGroup.updated", "productGroup.deleted",
)  # fmt: skip
#: An inbox entry kds writes itself: one return row, applied once.
RETURN_EVENT = "kds.return"

_EVENT_KEYS = (
    "event",
    "eventName",
    "event_name",
    "webhookEvent",
    "type",
    "topic",
    "name",
    "action",
)
_ID_KEYS = (
    "order_ids", "orderIds", "orderItemIds", "order_item_ids", "resourceIds", "resource_ids",
    "ids", "resource", "resources", "data", "items", "orderItems", "payload",
)  # fmt: skip
_EVENT_ID_KEYS = ("id", "eventId", "event_id", "webhookId", "webhook_id", "uuid", "deliveryId")


@dataclass
class WebhookEvent:
    """What kds could read from one webhook body."""

    name: str | None
    ids: list[int] = field(default_factory=list)
    objects: list[dict[str, Any]] = field(default_factory=list)
    source_table: int | None = None
    target_table: int | None = None
    problems: list[str] = field(default_factory=list)


def _find_key(data: dict[str, Any], keys: Iterable[str]) -> Any:
    for key in keys:
        if key in data:
            return data[key]
    return None


def dedupe_key(body: bytes) -> str:
    """The inbox key of a webhook: its event id when it has one, else a hash of the body."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        event_id = _find_key(data, _EVENT_ID_KEYS)
        if isinstance(event_id, (str, int)) and not isinstance(event_id, bool) and str(event_id):
            # `id` may also be a resource id (`{"id": 5}`): keep the event name in the key.
            key = f"event:{_find_key(data, _EVENT_KEYS)}:{event_id}"
            if (
                key.encode("utf-8", "replace").decode() == key
            ):  # a lone surrogate cannot be stored as text
                return key
    return "sha256:" + hashlib.sha256(body).hexdigest()


def read_webhook(data: Any) -> WebhookEvent:
    """Read the event name, item ids, full objects and tables from a webhook body."""
    if isinstance(data, list) and len(data) == 1:
        data = data[0]
    if not isinstance(data, dict):
        return WebhookEvent(None, problems=[f"body is a {type(data).__name__}, expected an object"])
    name = _find_key(data, _EVENT_KEYS)
    if isinstance(name, dict):  # {"event": {"name": ..., ...}}
        name = _find_key(name, ("name", "type"))
    event = WebhookEvent(name if isinstance(name, str) else None)
    if event.name is None:
        event.problems.append("no event name")
    _collect(data, event, depth=0, top=True)
    event.ids = list(dict.fromkeys(event.ids))
    return event


def _collect(value: Any, event: WebhookEvent, *, depth: int, top: bool = False) -> None:
    """Gather ids, objects and tables from wherever the sender put them."""
    if depth > 4:
        return
    if isinstance(value, list):
        for element in value:
            if (i := as_int(element)) is not None:
                event.ids.append(i)
            else:
                _collect(element, event, depth=depth + 1)
        return
    if not isinstance(value, dict):
        if (i := as_int(value)) is not None and not top:
            event.ids.append(i)
        return
    for key in ("source_table_id", "sourceTableId", "from_table_id", "fromTableId"):
        if (t := as_int(value.get(key))) is not None:
            event.source_table = t
    for key in ("target_table_id", "targetTableId", "to_table_id", "toTableId"):
        if (t := as_int(value.get(key))) is not None:
            event.target_table = t
    if (oid := as_int(value.get("order_id"))) is not None:
        event.ids.append(oid)
        if any(k.startswith(("order_", "product", "table_")) and k != "order_id" for k in value):
            event.objects.append(value)
        return
    if any(k.startswith(("product_", "productgroup_")) for k in value):
        event.objects.append(value)  # a catalogue object
        return
    found = False
    for key in _ID_KEYS:
        if key in value:
            found = True
            _collect(value[key], event, depth=depth + 1)
    if not found and not top and (i := as_int(value.get("id"))) is not None:
        event.ids.append(i)


class Ready2OrderWebhook:
    """The webhook route of one ready2order source."""

    def __init__(
        self, config: Config, receive: Callable[[str, bytes], Awaitable[int | None]]
    ) -> None:
        self._secret = config.webhook_secret.get_secret_value().encode()
        self.path = config.hook_path
        self._receive = receive

    def routes(self) -> list[web.RouteDef]:
        """The route to add to the daemon's web app."""
        return [web.post(self.path, self._handle)]

    async def _handle(self, request: web.Request) -> web.Response:
        """Store the raw event and answer 202 at once; a wrong secret is a 404."""
        given = request.match_info["secret"].encode()
        if not hmac.compare_digest(given, self._secret):
            raise NotFound("no such webhook")
        body = await request.read()
        inbox_id = await self._receive(dedupe_key(body), body)  # stored before the 202
        return web.json_response({"accepted": True, "duplicate": inbox_id is None}, status=202)
