"""The customer's cart, kept in the session: a restaurant and its lines (a dish, its options, a
note and a quantity), never prices.

Prices are looked up when the cart is shown and again, authoritatively, when the order is
placed. A cart holds dishes of one restaurant; adding a dish from another starts a new cart.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings

from ordering.exceptions import InvalidOrder
from ordering.models import MenuItem, Option, Order, Restaurant
from ordering.options import choose, options_summary
from ordering.selectors import dish_option_groups
from ordering.services.orders import ItemRequest
from passline.db import one_or_none

SESSION_KEY = "cart"


def line_key(item_id: int, options: tuple[int, ...] | list[int], note: str) -> str:
    """A cart line's key: the dish alone (``"12"``) or with its options and note, so the same dish
    with other choices is another line and identical choices add up."""
    if not options and not note:
        return str(item_id)
    digest = hashlib.sha256(note.encode()).hexdigest()[:8] if note else ""
    return f"{item_id}-{'.'.join(str(o) for o in sorted(options))}-{digest}"


@dataclass(frozen=True)
class CartLine:
    item: MenuItem
    quantity: int
    key: str = ""
    options: tuple[Option, ...] = ()
    note: str = ""
    # False when an option chosen has left the menu since: shown, not orderable, to be removed
    complete: bool = True

    @property
    def unit_price(self) -> Decimal:
        return self.item.price + sum((option.price_delta for option in self.options), Decimal("0.00"))

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity

    @property
    def options_text(self) -> str:
        return options_summary([{"group": o.group.name, "name": o.name} for o in self.options])

    @property
    def orderable(self) -> bool:
        return self.complete and self.item.orderable and all(option.is_available for option in self.options)


@dataclass(frozen=True)
class Refill:
    """What :meth:`Cart.refill` did with an earlier order's dishes."""

    added: int
    skipped: list[str]  # dishes no longer on the menu, unavailable or sold out today
    lowered: list[tuple[str, int]]  # dishes put in with fewer than ordered: (name, how many)
    # Options no longer offered, left off a dish that went in without them: (dish, option names)
    dropped: list[tuple[str, list[str]]] = field(default_factory=list)


class Cart:
    """Entries of ``{"item", "options", "note", "quantity"}`` under their :func:`line_key`."""

    def __init__(self, session: MutableMapping[str, Any]):
        self._session = session
        data = session.get(SESSION_KEY) or {}
        self.restaurant_id: int | None = data.get("restaurant_id")
        self.entries: dict[str, dict[str, Any]] = {}
        for pk, quantity in (data.get("items") or {}).items():  # a cart saved before options existed
            self.entries[str(int(pk))] = {"item": int(pk), "options": [], "note": "", "quantity": int(quantity)}
        for key, entry in (data.get("lines") or {}).items():
            self.entries[key] = {
                "item": int(entry["item"]),
                "options": [int(o) for o in entry.get("options") or []],
                "note": str(entry.get("note") or ""),
                "quantity": int(entry["quantity"]),
            }

    @property
    def count(self) -> int:
        return sum(entry["quantity"] for entry in self.entries.values())

    @property
    def is_empty(self) -> bool:
        return not self.entries

    def quantity_of(self, item_id: int) -> int:
        """How many of a dish the cart holds, whatever the options."""
        return sum(entry["quantity"] for entry in self.entries.values() if entry["item"] == item_id)

    def add(self, item: MenuItem, quantity: int = 1, *, options: list[int] | None = None, note: str = "") -> bool:
        """Add ``quantity`` of ``item`` with ``options`` and ``note`` (checked by the caller);
        True when this emptied a cart of another restaurant."""
        replaced = self.restaurant_id is not None and self.restaurant_id != item.restaurant_id and not self.is_empty
        if self.restaurant_id != item.restaurant_id:
            self.entries = {}
            self.restaurant_id = item.restaurant_id
        chosen = sorted(options or [])
        key = line_key(item.pk, chosen, note)
        entry = self.entries.setdefault(key, {"item": item.pk, "options": chosen, "note": note, "quantity": 0})
        entry["quantity"] = max(1, min(entry["quantity"] + quantity, settings.ORDER_MAX_QUANTITY_PER_LINE))
        self._save()
        return replaced

    def set(self, key: str | int, quantity: int) -> None:
        key = str(key)
        if quantity <= 0:
            self.entries.pop(key, None)
        elif key in self.entries:
            self.entries[key]["quantity"] = min(quantity, settings.ORDER_MAX_QUANTITY_PER_LINE)
        self._save()

    def refill(self, order: Order) -> Refill:
        """Replace the cart with ``order``'s dishes, options, notes and quantities, as far as they
        can be ordered today: a dish gone from the menu, unavailable or sold out is skipped, a
        quantity over what is left today is lowered, an option no longer offered is left off (and
        the dish skipped if it cannot be ordered without it). When none can be ordered the cart
        is left as it was."""
        items = MenuItem.objects.in_bulk([line.menu_item_id for line in order.lines.all()])
        groups = dish_option_groups(menu_item_ids=list(items))
        entries: dict[str, dict[str, Any]] = {}
        skipped: list[str] = []
        lowered: list[tuple[str, int]] = []
        dropped: list[tuple[str, list[str]]] = []
        left: dict[int, int | None] = {}
        for line in order.lines.all():
            item = items.get(line.menu_item_id)
            if item is None or item.restaurant_id != order.restaurant_id or not item.orderable:
                skipped.append(line.name)
                continue
            offered = {o.id: o for g in groups.get(item.pk, ()) for o in g.options if o.available}
            wanted = [int(chosen["option_id"]) for chosen in line.options]
            kept = [pk for pk in wanted if pk in offered]
            try:
                choose(menu_item_id=item.pk, dish=item.name, groups=groups.get(item.pk, ()), option_ids=kept)
            except InvalidOrder:
                skipped.append(f"{line.name} ({line.options_text})" if line.options else line.name)
                continue
            if len(kept) < len(wanted):
                dropped.append((item.name, [c["name"] for c in line.options if int(c["option_id"]) not in offered]))
            quantity = min(line.quantity, settings.ORDER_MAX_QUANTITY_PER_LINE)
            remaining = left.setdefault(item.pk, item.remaining_today)
            if remaining is not None:
                quantity = min(quantity, remaining)
                left[item.pk] = remaining - quantity
            if quantity < line.quantity:
                lowered.append((item.name, quantity))
            if quantity <= 0:
                continue
            key = line_key(item.pk, kept, line.note)
            entry = entries.setdefault(
                key, {"item": item.pk, "options": sorted(kept), "note": line.note, "quantity": 0}
            )
            entry["quantity"] = min(entry["quantity"] + quantity, settings.ORDER_MAX_QUANTITY_PER_LINE)
        if entries:
            self.restaurant_id = order.restaurant_id
            self.entries = entries
            self._save()
        return Refill(
            added=sum(entry["quantity"] for entry in entries.values()),
            skipped=skipped,
            lowered=lowered,
            dropped=dropped,
        )

    def clear(self) -> None:
        self.entries = {}
        self.restaurant_id = None
        self._save()

    def restaurant(self) -> Restaurant | None:
        if self.restaurant_id is None:
            return None
        return one_or_none(Restaurant.objects.filter(pk=self.restaurant_id))

    def lines(self) -> list[CartLine]:
        """The cart's dishes at current prices, in menu order; dishes that no longer exist drop
        out (two queries)."""
        if self.restaurant_id is None:
            return []
        items = MenuItem.objects.filter(
            pk__in={entry["item"] for entry in self.entries.values()}, restaurant_id=self.restaurant_id
        ).order_by("category__position", "position", "name")
        wanted = {pk for entry in self.entries.values() for pk in entry["options"]}
        options = Option.objects.select_related("group").in_bulk(list(wanted)) if wanted else {}
        lines = []
        for item in items:
            for key, entry in self.entries.items():
                if entry["item"] != item.pk:
                    continue
                chosen = tuple(
                    options[pk]
                    for pk in entry["options"]
                    if pk in options and options[pk].group.menu_item_id == item.pk
                )
                complete = len(chosen) == len(entry["options"])
                chosen = tuple(sorted(chosen, key=lambda o: (o.group.position, o.group_id, o.position, o.pk)))
                lines.append(
                    CartLine(
                        item=item,
                        quantity=entry["quantity"],
                        key=key,
                        options=chosen,
                        note=entry["note"],
                        complete=complete,
                    )
                )
        return lines

    @staticmethod
    def total(lines: list[CartLine]) -> Decimal:
        return sum((line.line_total for line in lines), Decimal("0.00"))

    def as_items(self) -> list[ItemRequest]:
        return sorted(
            ItemRequest(entry["item"], entry["quantity"], tuple(entry["options"]), entry["note"])
            for entry in self.entries.values()
        )

    def _save(self) -> None:
        if not self.entries:
            self.restaurant_id = None
        # A plain dish stays ``items: {id: quantity}`` as before options existed; a dish with
        # options or a note is one of ``lines`` under its key.
        plain = {key: e["quantity"] for key, e in self.entries.items() if not e["options"] and not e["note"]}
        chosen = {key: e for key, e in self.entries.items() if key not in plain}
        self._session[SESSION_KEY] = {"restaurant_id": self.restaurant_id, "items": plain, "lines": chosen}
