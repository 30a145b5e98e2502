"""Dish options, allergens and dietary tags: the fixed lists, and the pure rules of choosing.

No queries here: the service hands in a dish's option groups as :class:`GroupSpec` and gets
back the snapshot an order line keeps and what the options add to the price.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ordering.exceptions import InvalidNote, InvalidOptions

# The 14 allergens EU Regulation 1169/2011 (Annex II) requires a menu to declare.
ALLERGENS: list[tuple[str, str]] = [
    ("gluten", "Gluten"),
    ("crustaceans", "Crustaceans"),
    ("eggs", "Eggs"),
    ("fish", "Fish"),
    ("peanuts", "Peanuts"),
    ("soy", "Soy"),
    ("milk", "Milk"),
    ("nuts", "Tree nuts"),
    ("celery", "Celery"),
    ("mustard", "Mustard"),
    ("sesame", "Sesame"),
    ("sulphites", "Sulphites"),
    ("lupin", "Lupin"),
    ("molluscs", "Molluscs"),
]

DIETARY: list[tuple[str, str]] = [
    ("vegetarian", "Vegetarian"),
    ("vegan", "Vegan"),
    ("gluten_free", "Gluten-free"),
    ("dairy_free", "Dairy-free"),
    ("spicy", "Spicy"),
]

ALLERGEN_CODES = frozenset(code for code, _ in ALLERGENS)
DIETARY_CODES = frozenset(code for code, _ in DIETARY)

# A note to the kitchen on one dish ("no onions"): short, one line.
NOTE_MAX_LENGTH = 140


def labelled(choices: list[tuple[str, str]], codes: Iterable[str]) -> list[tuple[str, str]]:
    """``(code, label)`` of ``codes`` in the list's order; unknown codes are left out."""
    wanted = set(codes or ())
    return [(code, label) for code, label in choices if code in wanted]


def clean_tags(codes: Iterable[str], known: frozenset[str]) -> list[str]:
    """Known codes only, each once, in a stable order (how they are stored)."""
    return sorted(set(codes) & known)


def options_summary(snapshot: Sequence[dict[str, Any]]) -> str:
    """``Size: Large; Extras: Cheese, Bacon`` from a line's options snapshot."""
    groups: dict[str, list[str]] = {}
    for chosen in snapshot or ():
        groups.setdefault(str(chosen.get("group", "")), []).append(str(chosen.get("name", "")))
    return "; ".join(f"{group}: {', '.join(names)}" if group else ", ".join(names) for group, names in groups.items())


@dataclass(frozen=True)
class OptionSpec:
    id: int
    name: str
    price_delta: Decimal
    available: bool = True


@dataclass(frozen=True)
class GroupSpec:
    id: int
    name: str
    min_choices: int
    max_choices: int
    options: tuple[OptionSpec, ...]

    @property
    def required(self) -> bool:
        return self.min_choices > 0


def clean_note(note: str) -> str:
    """The note as kept: one line, trimmed; too long is an error, not a silent cut."""
    cleaned = " ".join((note or "").split())
    if len(cleaned) > NOTE_MAX_LENGTH:
        raise InvalidNote(
            f"A note on a dish can have at most {NOTE_MAX_LENGTH} characters (this one has {len(cleaned)}).",
            max_length=NOTE_MAX_LENGTH,
        )
    return cleaned


def choose(
    *, menu_item_id: int, dish: str, groups: Sequence[GroupSpec], option_ids: Sequence[int]
) -> tuple[list[dict[str, Any]], Decimal]:
    """Check ``option_ids`` against the dish's ``groups``; return the snapshot an order line keeps
    (in menu order) and what the options add to the dish's price."""
    by_id = {option.id: (group, option) for group in groups for option in group.options}
    if len(set(option_ids)) != len(option_ids):
        raise InvalidOptions(
            f"An option of {dish} was chosen twice.", menu_item_id=menu_item_id, reason="duplicate_option"
        )
    unknown = sorted(pk for pk in option_ids if pk not in by_id)
    if unknown:
        raise InvalidOptions(
            f"Some options are not options of {dish}.",
            menu_item_id=menu_item_id,
            reason="unknown_option",
            option_ids=unknown,
        )
    gone = [by_id[pk][1] for pk in option_ids if not by_id[pk][1].available]
    if gone:
        raise InvalidOptions(
            f"Not available right now for {dish}: {', '.join(o.name for o in gone)}.",
            menu_item_id=menu_item_id,
            reason="option_unavailable",
            option_ids=sorted(o.id for o in gone),
        )
    chosen = set(option_ids)
    snapshot: list[dict[str, Any]] = []
    delta = Decimal("0.00")
    for group in groups:
        picked = [option for option in group.options if option.id in chosen]
        if len(picked) < group.min_choices:
            what = "one" if group.min_choices == 1 else f"at least {group.min_choices}"
            raise InvalidOptions(
                f"Choose {what} of {group.name} for {dish}.",
                menu_item_id=menu_item_id,
                reason="too_few_options",
                group=group.name,
                min_choices=group.min_choices,
            )
        if len(picked) > group.max_choices:
            raise InvalidOptions(
                f"Choose at most {group.max_choices} of {group.name} for {dish}.",
                menu_item_id=menu_item_id,
                reason="too_many_options",
                group=group.name,
                max_choices=group.max_choices,
            )
        for option in picked:
            delta += option.price_delta
            snapshot.append(
                {
                    "option_id": option.id,
                    "group": group.name,
                    "name": option.name,
                    "price_delta": f"{option.price_delta:.2f}",
                }
            )
    return snapshot, delta


def price_with(base: Decimal, snapshot: Sequence[dict[str, Any]]) -> Decimal:
    """A dish's price with the options of a snapshot."""
    return base + sum((Decimal(str(chosen["price_delta"])) for chosen in snapshot), Decimal("0.00"))
