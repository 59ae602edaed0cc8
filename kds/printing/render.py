"""Kitchen tickets as ESC/POS bytes, rendered with python-escpos.

The renderer drives python-escpos's `Dummy` printer (which only collects
bytes) with the printer's capabilities profile, so code-page selection is the
library's: it switches with `ESC t` to whichever of the profile's code pages
holds a character. Characters none of them holds are transliterated first
(`transliterate.py`), so python-escpos never falls back to printing `?`.

POS text is untrusted: every string goes through `printable()`, whose first
step is `sanitize.clean_text`, so no control character of a POS string reaches
the printer as a command; line breaks in a POS string become lines of their own.

Layout, top to bottom: a banner for VOID / TRANSFER / REPRINT / COPY tickets,
the endpoint name, the order number in large type, the table or
TAKEAWAY / DELIVERY, time and server, then the items in large type grouped by
course with their modifiers indented and comments marked, and the job id at the
bottom; optional logo and buzzer; cut.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from typing import Any

import structlog
from escpos.capabilities import get_profile
from escpos.magicencode import Encoder, MagicEncode
from escpos.printer import Dummy

from ..contracts import TicketKind
from ..model import Order, OrderItem, OrderStatus, PurchaseType, utcnow
from .config import PrinterConfig
from .sanitize import clean_text
from .transliterate import transliterate

__all__ = ["Ticket", "TicketKind", "TicketRenderer"]

log = structlog.get_logger(__name__)

HW_INIT = b"\x1b@"


@dataclass(frozen=True)
class Ticket:
    """One kitchen ticket to render: an order as seen by one endpoint."""

    order: Order
    endpoint: str
    kind: TicketKind = TicketKind.NEW
    item_ids: tuple[int, ...] | None = None  # None: every item routed to the endpoint
    job_id: str | int | None = None
    reprint: bool = False
    printed_at: datetime = field(default_factory=utcnow)
    note: str | None = None  # e.g. "printed here because the grill printer is down"
    previous_location: str | None = None  # for TRANSFER, when known
    moved_to: str | None = None  # TRANSFER: the ticket's open items went to this station
    moved_from: str | None = None  # NEW: the items came from this station (printed as TRANSFER)

    def items(self) -> list[OrderItem]:
        """The items this ticket lists, in kitchen order (by course, then POS order)."""
        wanted = set(self.item_ids) if self.item_ids is not None else None
        chosen: list[OrderItem] = []
        for item in self.order.items:
            at = item.endpoint(self.endpoint)
            if at is None and wanted is None:
                continue
            if wanted is not None and item.id not in wanted:
                continue
            # A new ticket leaves out what was cancelled before it printed;
            # a VOID ticket lists exactly those.
            if (
                self.kind is TicketKind.NEW
                and at is not None
                and at.status is OrderStatus.PROCESS_SKIPPED
            ):
                continue
            chosen.append(item)
        # Python's sort is stable: POS order is kept inside a course.
        return sorted(chosen, key=lambda i: (i.course_number is not None, i.course_number or 0))


@lru_cache(maxsize=64)
def _code_pages(profile: str, restrict: tuple[str, ...] | None) -> dict[str, str]:
    """The {encoding: slot} map of a profile, optionally restricted."""
    pages = get_profile(profile).get_code_pages()
    if restrict is not None:
        pages = {name: slot for name, slot in pages.items() if name in restrict}
    return pages


class _Charset:
    """Which characters a printer can print through one of its code pages."""

    def __init__(self, pages: dict[str, str]) -> None:
        self._encoder = Encoder(pages)
        self._encodings = list(pages)
        self._known: dict[str, bool] = {}

    def printable(self, char: str) -> bool:
        """True when some code page of the profile holds `char`."""
        known = self._known.get(char)
        if known is None:
            known = any(self._encoder.can_encode(enc, char) for enc in self._encodings)
            self._known[char] = known
        return known


@lru_cache(maxsize=64)
def _charset(profile: str, restrict: tuple[str, ...] | None) -> _Charset:
    return _Charset(_code_pages(profile, restrict))


class _AsciiMagic(MagicEncode):  # type: ignore[misc]
    """python-escpos's code-page switching, with a shortcut for ASCII text.

    Once a code page is selected, every code page prints ASCII as ASCII, so
    MagicEncode's per-character search would write exactly `text.encode("ascii")`:
    most of a ticket (numbers, English menus, layout) is written without it.
    """

    def write(self, text: str) -> None:
        if self.encoding is not None and not self.disabled and text.isascii():
            self.driver._raw(text.encode("ascii"))
            return
        super().write(text)


def format_quantity(amount: Decimal, unit: str) -> str:
    """ "2" for two pieces, "0.5 kg" for half a kilo."""
    text = (
        format(amount.normalize(), "f")
        if amount != amount.to_integral_value()
        else str(int(amount))
    )
    return text if unit in ("pcs", "pc", "ks", "x", "") else f"{text} {unit}"


def location_text(order: Order) -> str:
    """TABLE 12 / TERRACE, or TAKEAWAY / DELIVERY, or the ticket name."""
    ticket = order.ticket
    parts: list[str] = []
    if ticket.purchase_type is PurchaseType.TAKE_AWAY:
        parts.append("TAKEAWAY")
    elif ticket.purchase_type is PurchaseType.DELIVERY:
        parts.append("DELIVERY")
    loc = ticket.location
    if loc is not None and loc.table_name:
        table = loc.table_name
        parts.append(table if table.lower().startswith("table") else f"Table {table}")
        if loc.zone_name:
            parts.append(loc.zone_name)
    elif loc is not None and loc.zone_name:
        parts.append(loc.zone_name)
    if not parts and ticket.name:
        parts.append(ticket.name)
    return " / ".join(parts)


def server_name(order: Order) -> str | None:
    """Who took the order (the POS user), if known."""
    user = order.user
    if isinstance(user, dict):
        for key in ("name", "userName", "displayName", "firstName", "login"):
            value = user.get(key)
            if value:
                return str(value)
        return None
    return user or None


class TicketRenderer:
    """Renders tickets for one printer configuration to ESC/POS bytes."""

    def __init__(self, config: PrinterConfig, *, tz: tzinfo | None = None) -> None:
        self.config = config
        self.tz = tz
        restrict = tuple(config.code_pages) if config.code_pages is not None else None
        self._pages = _code_pages(config.profile, restrict)
        self._charset = _charset(config.profile, restrict)
        # {encoding: {char: byte}}: the same for every ticket, so built once, not per Encoder.
        self._char_maps: dict[str, dict[str, int]] = {}

    # ------------------------------------------------------------------ text

    def printable(self, text: str) -> str:
        """`text` as one line of printable characters: cleaned, then transliterated where needed.

        Every piece of text on a ticket passes here (`_line`, `_wrapped`,
        `_two_columns`): this is what keeps POS text from carrying printer commands.
        """
        text = " ".join(clean_text(text).split())
        if self.config.ascii_only:
            out = transliterate(text)
        else:
            out = transliterate(text, self._charset.printable)
        # A character with no reading leaves its spaces: single ones only, none at the ends.
        return out if out is text else " ".join(out.split())

    def _printer(self) -> Dummy:
        # A fresh Dummy and Encoder per ticket: MagicEncode tracks the selected code page (and
        # the pages used so far), and every ticket starts with ESC @ which resets the printer's.
        encoder = Encoder(self._pages)
        encoder.available_characters = self._char_maps
        p = Dummy(profile=self.config.profile)
        p.magic = _AsciiMagic(p, encoder=encoder, defaultsymbol="")
        return p

    # ------------------------------------------------------------------ layout

    def render(self, ticket: Ticket) -> bytes:
        """The bytes of `ticket` (all configured copies), ready for port 9100."""
        copies = self.config.copies
        out = bytearray()
        for copy in range(1, copies + 1):
            out += self._render_one(ticket, copy=copy, copies=copies)
        return bytes(out)

    def _render_one(self, ticket: Ticket, *, copy: int, copies: int) -> bytes:
        p = self._printer()
        cols = self.config.columns
        p._raw(HW_INIT)
        if self.config.logo:
            self._logo(p)

        for banner in self._banners(ticket, copy=copy, copies=copies):
            p.set(align="center", bold=True, invert=True, double_width=True, double_height=True)
            self._line(p, f" {banner} ", cols // 2)
            p.set(invert=False, normal_textsize=True)
        if ticket.note:
            p.set(align="center", bold=True, normal_textsize=True)
            self._wrapped(p, ticket.note, cols)

        p.set(align="center", bold=True, double_height=True)
        self._line(p, ticket.endpoint.upper(), cols)

        number = f"#{ticket.order.number}"
        scale = 3 if len(number) <= cols // 3 else 2
        p.set(align="center", bold=True, custom_size=True, width=scale, height=scale)
        self._line(p, number, cols // scale)

        place = location_text(ticket.order)
        if place:
            p.set(align="center", bold=True, double_height=True)
            self._wrapped(p, place, cols)
        if ticket.kind is TicketKind.RUSH:
            self._rush_slip(p, ticket, cols)
            return p.output
        moved_station = self._moved_text(ticket)
        if moved_station:
            p.set(align="center", bold=True, double_height=True)
            self._wrapped(p, moved_station, cols)
        elif ticket.kind is TicketKind.TRANSFER:
            p.set(align="center", bold=True, double_height=True)
            moved = (
                f"MOVED: {ticket.previous_location} -> {place}"
                if ticket.previous_location
                else f"NOW AT: {place}"
            )
            self._wrapped(p, moved, cols)

        p.set(align="left", bold=False, normal_textsize=True)
        self._two_columns(
            p, self._time(ticket.order.created_at), self._server_text(ticket.order), cols
        )
        extra = self._ticket_text(ticket.order)
        if extra:
            self._wrapped(p, extra, cols)
        customer = self._customer_text(ticket.order)
        if customer:
            p.set(bold=True)
            self._wrapped(p, customer, cols)
            p.set(bold=False)

        allergens = list(dict.fromkeys(a for i in ticket.items() for a in i.allergens))
        if allergens and ticket.kind is not TicketKind.VOID:
            p.set(align="center", bold=True, normal_textsize=True)
            self._boxed(p, "ALLERGY: " + ", ".join(allergens).upper(), cols)
        self._rule(p, "=", cols)
        self._items(p, ticket, cols)
        self._rule(p, "=", cols)

        p.set(align="left", bold=False, normal_textsize=True)
        footer = f"Job {ticket.job_id}" if ticket.job_id is not None else "Job -"
        self._two_columns(p, footer, f"printed {self._time(ticket.printed_at)}", cols)
        self._wrapped(p, f"Order {ticket.order.id} v{ticket.order.version}", cols)
        if ticket.reprint:
            p.set(align="center", bold=True)
            self._wrapped(p, "REPRINT - NOT A NEW ORDER", cols)
            p.set(align="left", bold=False)
        if self.config.buzzer:
            p.buzzer(self.config.buzzer, 2)
        p.cut(mode="PART" if self.config.cut == "partial" else "FULL")
        if not (p.profile.supports("paperFullCut") or p.profile.supports("paperPartCut")):
            # No cutter: a tear-off line keeps tickets (and copies) apart.
            p.textln("- " * (cols // 2))
            p.print_and_feed(2)
        return p.output

    def _banners(self, ticket: Ticket, *, copy: int, copies: int) -> list[str]:
        banners: list[str] = []
        if ticket.order.rush and ticket.kind is not TicketKind.VOID:
            banners.append("RUSH")
        if ticket.kind is TicketKind.VOID:
            banners.append("VOID")
        elif ticket.kind is TicketKind.TRANSFER or ticket.moved_from:
            banners.append("TRANSFER")
        if ticket.reprint:
            banners.append("REPRINT")
        if copies > 1 and copy > 1:
            banners.append(f"COPY {copy}/{copies}")
        return banners

    def _items(self, p: Dummy, ticket: Ticket, cols: int) -> None:
        items = ticket.items()
        if not items:
            p.set(align="center", normal_textsize=True)
            self._line(p, "(no items)", cols)
            return
        course: int | None = None
        first = True
        void = ticket.kind is TicketKind.VOID
        for item in items:
            if item.course_number is not None and (first or item.course_number != course):
                p.set(align="center", bold=True, normal_textsize=True)
                self._line(p, f" COURSE {item.course_number} ".center(cols, "-"), cols)
            course = item.course_number
            first = False
            p.set(
                align="left",
                bold=True,
                double_height=self.config.large_items,
                normal_textsize=not self.config.large_items,
            )
            qty = format_quantity(Decimal(item.quantity.amount), item.quantity.unit)
            head = f"{'VOID ' if void else ''}{qty} x {item.plu.name}"
            self._wrapped(p, head, cols, indent="    ")
            p.set(bold=False, normal_textsize=True)
            for modifier in item.modifiers:
                self._wrapped(p, f"+ {modifier}", cols, lead="   ", indent="     ")
            if item.comment:
                p.set(bold=True)
                self._wrapped(p, f"! {item.comment}", cols, lead="   ", indent="     ")
                p.set(bold=False)
            if item.allergens and not void:
                p.set(align="center", bold=True, normal_textsize=True)
                self._boxed(p, ", ".join(item.allergens).upper(), cols)
                p.set(align="left", bold=False)

    def _rush_slip(self, p: Dummy, ticket: Ticket, cols: int) -> None:
        """The rest of a RUSH slip (after number and place): the items are on the ticket."""
        p.set(align="center", bold=True, normal_textsize=True)
        self._wrapped(p, "RUSH - MAKE THIS ORDER FIRST", cols)
        p.set(align="left", bold=False)
        self._two_columns(
            p, f"Job {ticket.job_id}", f"printed {self._time(ticket.printed_at)}", cols
        )
        p.cut(mode="PART" if self.config.cut == "partial" else "FULL")

    @staticmethod
    def _moved_text(ticket: Ticket) -> str | None:
        if ticket.moved_to:
            return f"MOVED TO {ticket.moved_to.upper()}"
        if ticket.moved_from:
            return f"MOVED FROM {ticket.moved_from.upper()}"
        return None

    # ------------------------------------------------------------------ pieces

    def _boxed(self, p: Dummy, text: str, width: int) -> None:
        """`text` in reverse print inside a drawn box: the one thing a cook must not miss."""
        inner = max(width - 4, 8)
        rows = textwrap.wrap(self.printable(text), inner, break_long_words=True) or [""]
        border = "+" + "-" * (inner + 2) + "+"
        p.set(invert=True)
        p.textln(border)
        for row in rows:
            p.textln(f"| {row.ljust(inner)} |")
        p.textln(border)
        p.set(invert=False)

    def _logo(self, p: Dummy) -> None:
        try:
            p.set(align="center")
            p.image(self.config.logo, center=True)
        except Exception as err:  # a broken logo file must not stop the kitchen
            log.warning("printer.logo_failed", logo=self.config.logo, error=str(err))

    def _line(self, p: Dummy, text: str, width: int) -> None:
        p.textln(self.printable(text)[: max(width, 1)])

    def _wrapped(
        self, p: Dummy, text: str, width: int, *, lead: str = "", indent: str = ""
    ) -> None:
        # Each line of the POS text (blank ones dropped) is wrapped on its own; lines after
        # the first start at the indentation of a wrapped line.
        paragraphs = [
            body for line in clean_text(text).split("\n") if (body := self.printable(line))
        ]
        lines: list[str] = []
        for body in paragraphs:
            first = indent if lines else lead
            if len(first) + len(body) <= width:  # fits (printable() left single spaces only)
                lines.append(first + body)
                continue
            lines += textwrap.wrap(
                body,
                width=max(width, len(indent) + 8),
                initial_indent=first,
                subsequent_indent=indent,
                break_long_words=True,
                break_on_hyphens=False,
            )
        for line in lines or [lead.rstrip()]:
            p.textln(line)

    def _two_columns(self, p: Dummy, left: str, right: str | None, width: int) -> None:
        left, right = self.printable(left), self.printable(right or "")
        gap = width - len(left) - len(right)
        if right and gap >= 1:
            p.textln(left + " " * gap + right)
        else:
            p.textln(left[:width])
            if right:
                p.textln(right[:width].rjust(width))

    def _rule(self, p: Dummy, char: str, width: int) -> None:
        p.set(align="left", bold=False, normal_textsize=True)
        p.textln(char * width)

    def _time(self, when: datetime) -> str:
        local = when.astimezone(self.tz)
        return local.strftime("%H:%M %d.%m.")

    def _server_text(self, order: Order) -> str | None:
        name = server_name(order)
        return f"Server: {name}" if name else None

    def _ticket_text(self, order: Order) -> str | None:
        parts = []
        if order.ticket.name and order.ticket.name not in location_text(order):
            parts.append(f"Ticket {order.ticket.name}")
        if order.device_name:
            parts.append(f"POS {order.device_name}")
        return "  ".join(parts) or None

    def _customer_text(self, order: Order) -> str | None:
        customer: dict[str, Any] | None = order.ticket.customer
        if not customer:
            return None
        fields: Iterable[str] = ("name", "phone", "address")
        values = [str(customer[k]) for k in fields if customer.get(k)]
        return "Customer: " + ", ".join(values) if values else None
