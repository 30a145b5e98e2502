"""Setting and removing the photo of a restaurant or a dish (staff pages, the demo data).

The files are written before the row names them and the old ones deleted only once the change
has committed: a failure on the way leaves at worst files nobody names, never a row naming files
that are gone. The change shows on open menu pages like any staff edit: a dish's as
``menu.item_changed`` (carrying the new photo's addresses; the pages fetch that dish again), the
restaurant's as ``restaurant.changed`` (the pages fetch the menu again)."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from ordering.models import MenuItem, Photographed, Restaurant
from ordering.photos import VARIANTS, Prepared, file_name, prepare
from ordering.services.restaurants import item_changed, locked_item, locked_restaurant, restaurant_changed

logger = logging.getLogger(__name__)


def _write(owner: Photographed, prepared: Prepared) -> None:
    for variant, data in prepared.files.items():
        name = file_name(owner.PHOTO_KIND, owner.pk, prepared.digest, variant)
        if default_storage.exists(name):
            default_storage.delete(name)  # the same picture again: same bytes, same name
        default_storage.save(name, ContentFile(data))


def _delete_later(owner: Photographed, digest: str) -> None:
    """Delete the files of ``digest`` once the transaction commits (never the ones in use)."""
    if not digest:
        return
    names = [file_name(owner.PHOTO_KIND, owner.pk, digest, variant) for variant in VARIANTS]

    def delete() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                logger.warning("photo file not deleted", extra={"file": name})

    transaction.on_commit(delete)


def _set(owner: Photographed, data: bytes | None) -> str:
    """Write the new files (``data``; None removes the photo); returns the digest to store."""
    if data is None:
        return ""
    prepared = prepare(data, max_bytes=settings.PHOTO_MAX_BYTES)
    _write(owner, prepared)
    return prepared.digest


@transaction.atomic
def dish_photo_set(*, restaurant_id: int, menu_item_id: int, data: bytes | None) -> MenuItem:
    """Give a dish a photo (``data``: the upload) or take it away (None). Raises
    ``ordering.photos.PhotoRejected`` for an upload that is not a picture we take."""
    item = locked_item(restaurant_id, menu_item_id)
    old, item.photo = item.photo, _set(item, data)
    if old != item.photo:
        item.save(update_fields=["photo"])
        _delete_later(item, old)
        item_changed(item)
    return item


@transaction.atomic
def restaurant_photo_set(*, restaurant_id: int, data: bytes | None) -> Restaurant:
    """The restaurant's own photo, as :func:`dish_photo_set`."""
    restaurant = locked_restaurant(restaurant_id)
    old, restaurant.photo = restaurant.photo, _set(restaurant, data)
    if old != restaurant.photo:
        restaurant.save(update_fields=["photo"])
        _delete_later(restaurant, old)
        restaurant_changed(restaurant_id)
    return restaurant
