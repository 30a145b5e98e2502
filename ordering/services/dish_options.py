"""The staff's writes of a dish's choices: its allergens and dietary tags, its option groups and
their options. Each change is announced like any edit of the dish (``menu.item_changed``), so
open menu pages fetch it again. The caller has checked that the user is staff of the restaurant.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction

from ordering.exceptions import InvalidOrder, NotFound
from ordering.models import MenuItem, Option, OptionGroup
from ordering.options import ALLERGEN_CODES, DIETARY_CODES, clean_tags
from ordering.services.restaurants import item_changed, locked_item
from passline.db import one_or_none

logger = logging.getLogger(__name__)

# Enough for any real menu; a guard against a pasted list, not a business rule.
MAX_OPTIONS_PER_GROUP = 30


class InvalidOptionGroup(InvalidOrder):
    code = "invalid_option_group"


@dataclass(frozen=True)
class OptionLine:
    name: str
    price_delta: Decimal
    available: bool = True


@transaction.atomic
def menu_item_set_tags(*, restaurant_id: int, menu_item_id: int, allergens: list[str], dietary: list[str]) -> MenuItem:
    """Set a dish's allergens and dietary tags (codes of ``ordering.options``; unknown ones dropped)."""
    item = locked_item(restaurant_id, menu_item_id)
    item.allergens = clean_tags(allergens, ALLERGEN_CODES)
    item.dietary = clean_tags(dietary, DIETARY_CODES)
    item.save(update_fields=["allergens", "dietary"])
    item_changed(item)
    logger.info("dish tags set", extra={"restaurant_id": restaurant_id, "menu_item_id": item.pk})
    return item


@transaction.atomic
def option_group_save(
    *,
    restaurant_id: int,
    menu_item_id: int,
    group_id: int | None,
    name: str,
    min_choices: int,
    max_choices: int,
    options: list[OptionLine],
) -> OptionGroup:
    """Create a group (``group_id`` None) or replace one's rules and options. An option keeps its id
    while its name stays (a cart holding it still finds it); a name no longer listed is removed."""
    item = locked_item(restaurant_id, menu_item_id)
    _check_group(name=name, min_choices=min_choices, max_choices=max_choices, options=options)
    if group_id is None:
        position = OptionGroup.objects.filter(menu_item=item).count()
        group = OptionGroup.objects.create(
            menu_item=item, name=name, min_choices=min_choices, max_choices=max_choices, position=position
        )
    else:
        found = one_or_none(OptionGroup.objects.filter(pk=group_id, menu_item=item))
        if found is None:
            raise NotFound("That dish has no such option group.")
        group = found
        group.name, group.min_choices, group.max_choices = name, min_choices, max_choices
        group.save(update_fields=["name", "min_choices", "max_choices"])
    existing = {option.name: option for option in Option.objects.filter(group=group)}
    Option.objects.filter(group=group).exclude(name__in=[line.name for line in options]).delete()
    for position, line in enumerate(options):
        option = existing.get(line.name) or Option(group=group, name=line.name)
        option.price_delta, option.is_available, option.position = line.price_delta, line.available, position
        option.save()
    item_changed(item)
    logger.info("option group saved", extra={"menu_item_id": item.pk, "group_id": group.pk})
    return group


@transaction.atomic
def option_group_delete(*, restaurant_id: int, menu_item_id: int, group_id: int) -> None:
    """Remove a group and its options from a dish (orders keep what they copied)."""
    item = locked_item(restaurant_id, menu_item_id)
    deleted, _ = OptionGroup.objects.filter(pk=group_id, menu_item=item).delete()
    if not deleted:
        raise NotFound("That dish has no such option group.")
    item_changed(item)
    logger.info("option group deleted", extra={"menu_item_id": item.pk, "group_id": group_id})


def _check_group(*, name: str, min_choices: int, max_choices: int, options: list[OptionLine]) -> None:
    if not name.strip():
        raise InvalidOptionGroup("An option group needs a name.", field="name")
    if not options:
        raise InvalidOptionGroup("List at least one option.", field="options")
    if len(options) > MAX_OPTIONS_PER_GROUP:
        raise InvalidOptionGroup(f"A group can have at most {MAX_OPTIONS_PER_GROUP} options.", field="options")
    names = [line.name for line in options]
    if len(set(names)) != len(names):
        raise InvalidOptionGroup("Each option of a group needs its own name.", field="options")
    if max_choices < 1 or min_choices > max_choices:
        raise InvalidOptionGroup("The most choices must be at least 1 and at least the fewest.", field="max_choices")
    if max_choices > len(options):
        raise InvalidOptionGroup(
            f"At most {len(options)} can be chosen: the group has {len(options)} options.", field="max_choices"
        )
