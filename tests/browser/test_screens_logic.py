"""The screens' pure modules, run in Chromium: feed dedupe, recall window, all-day counts, key map."""

from __future__ import annotations

from typing import Any

from .conftest import Pages


def run(page: Any, script: str) -> Any:
    return page.evaluate(f"async () => {{ {script} }}")


def test_feed_ignores_duplicates_and_older_states(pages: Pages) -> None:
    # Replayed or repeated events never add a ticket twice or roll an order back.
    page = pages.open("/")
    result = run(
        page,
        """
        const { Feed } = await import('/static/js/feed.js');
        const feed = new Feed('grill');
        const seen = [];
        feed.onChange((kind, d) => seen.push(kind + ':' + (d && d.order ? d.order.id : '')));
        const o = (id, at, status) => ({id, version: 1, updatedAt: at, items: [], endpointStatuses: {grill: status}});
        feed._handle({type: 'snapshot', seq: 10, orders: [o('a', '2026-01-01T10:00:00.000Z', 'sent')]});
        feed._handle({type: 'order.created', seq: 11, order: o('b', '2026-01-01T10:00:01.000Z', 'sent')});
        feed._handle({type: 'order.created', seq: 11, order: o('b', '2026-01-01T10:00:01.000Z', 'sent')});
        feed._handle({type: 'order.updated', seq: 9, order: o('a', '2026-01-01T09:00:00.000Z', 'processed')});
        feed._handle({type: 'order.updated', seq: 12, order: o('a', '2026-01-01T10:00:05.000Z', 'accepted')});
        feed.absorb(o('a', '2026-01-01T10:00:04.000Z', 'delivered'));
        feed._handle({type: 'order.removed', seq: 13, orderId: 'b'});
        feed._handle({type: 'order.removed', seq: 13, orderId: 'b'});
        return {seen, seq: feed.seq, ids: [...feed.orders.keys()], a: feed.orders.get('a').endpointStatuses.grill};
    """,
    )
    assert result == {
        "seen": ["snapshot:", "created:b", "updated:a", "removed:"],
        "seq": 13,
        "ids": ["a"],
        "a": "accepted",
    }


def test_recall_window_and_all_day_counts(pages: Pages) -> None:
    # Only orders fully bumped at this endpoint within the window are recallable, newest
    # first; all-day counts sum the quantities still open at the endpoint.
    page = pages.open("/")
    result = run(
        page,
        """
        const { recallable, allDay } = await import('/static/js/orders.js');
        const now = Date.parse('2026-01-01T12:00:00Z');
        const ep = (status, at) => ({name: 'grill', status, statusChanges: [{status, date: at}]});
        const order = (id, items) => ({id, items});
        const it = (name, amount, e) => ({plu: {name}, quantity: {amount}, endpoints: [e]});
        const orders = [
            order('old', [it('Steak', 1, ep('processed', '2026-01-01T11:40:00Z'))]),
            order('new', [it('Steak', 1, ep('processed', '2026-01-01T11:59:00Z'))]),
            order('mid', [it('Soup', 1, ep('processed', '2026-01-01T11:55:00Z')), it('Salad', 1, ep('refused', '2026-01-01T11:55:00Z'))]),
            order('open', [it('Steak', 2, ep('accepted', '2026-01-01T11:58:00Z')), it('Fries', 1.5, ep('delivered', '2026-01-01T11:58:00Z'))]),
            order('open2', [it('Steak', 3, ep('sent', '2026-01-01T11:58:00Z')), it('Fries', 1, ep('processed', '2026-01-01T11:58:00Z'))]),
        ];
        return {
            recall: recallable(orders, 'grill', 600, now).map(o => o.id),
            limited: recallable(orders, 'grill', 600, now, 1).map(o => o.id),
            allDay: allDay(orders, 'grill'),
        };
    """,
    )
    assert result["recall"] == ["new", "mid"]
    assert result["limited"] == ["new"]
    assert result["allDay"] == [["Steak", 5], ["Fries", 1.5]]


def test_key_map_defaults_and_overrides(pages: Pages) -> None:
    # Config maps keys to actions; unknown actions are ignored, "none" unbinds a key.
    page = pages.open("/")
    result = run(
        page,
        """
        const { keyMap } = await import('/static/js/keyboard.js');
        const map = keyMap({F1: 'bump', Enter: 'none', x: 'explode', Space: 'accept'});
        return Object.fromEntries(['1', '9', 'enter', 'f1', 'a', 'r', 'x', ' ', 'arrowright'].map(k => [k, map.get(k) || null]));
    """,
    )
    assert result == {
        "1": "select1",
        "9": "select9",
        "enter": "none",
        "f1": "bump",
        "a": "accept",
        "r": "recall",
        "x": "refuse",
        " ": "accept",
        "arrowright": "nextPage",
    }


def test_voided_and_finished_times(pages: Pages) -> None:
    # A ticket counts as voided at a station only if the station had it before the cancel;
    # an order is finished when its last item endpoint turned final.
    page = pages.open("/")
    result = run(
        page,
        """
        const { voidedAt, finishedAt } = await import('/static/js/orders.js');
        const ch = (status, at) => ({status, date: at});
        const ep = (name, status, ...changes) => ({name, status, statusChanges: changes});
        const shown = {id: 's', items: [{endpoints: [ep('grill', 'processSkipped',
            ch('created', '2026-01-01T10:00:00Z'), ch('sent', '2026-01-01T10:00:00Z'), ch('processSkipped', '2026-01-01T10:05:00Z'))]}]};
        const unseen = {id: 'u', items: [{endpoints: [ep('grill', 'processSkipped',
            ch('created', '2026-01-01T10:00:00Z'), ch('processSkipped', '2026-01-01T10:05:00Z'))]}]};
        const mixed = {id: 'm', items: [
            {endpoints: [ep('grill', 'processed', ch('sent', '2026-01-01T10:00:00Z'), ch('processed', '2026-01-01T10:07:00Z'))]},
            {endpoints: [ep('bar', 'refused', ch('sent', '2026-01-01T10:00:00Z'), ch('refused', '2026-01-01T10:09:00Z'))]}]};
        const open = {id: 'o', items: [{endpoints: [ep('grill', 'accepted', ch('accepted', '2026-01-01T10:01:00Z'))]}]};
        return {
            shown: voidedAt(shown, 'grill'), unseen: voidedAt(unseen, 'grill'), mixedVoid: voidedAt(mixed, 'grill'),
            mixed: finishedAt(mixed), open: finishedAt(open),
        };
    """,
    )
    assert result == {
        "shown": 1767261900000,
        "unseen": 0,
        "mixedVoid": 0,
        "mixed": 1767262140000,
        "open": 0,
    }
