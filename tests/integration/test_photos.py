"""Photos through the staff pages, on the real database and file storage: stored with every
size, shown on the list, the menu and in the API, served with a year's caching, replaced and
removed with their files, refused with a message when they are not pictures; and the demo's."""

from __future__ import annotations

import io
import json
from typing import cast

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from bus.models import OutboxMessage
from ordering.models import MenuItem, Restaurant, StaffMembership
from ordering.photos import VARIANTS, file_name
from tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db


def upload(colour: str = "orange", fmt: str = "JPEG", name: str = "dish.jpg") -> SimpleUploadedFile:
    out = io.BytesIO()
    Image.new("RGB", (900, 600), colour).save(out, fmt)
    return SimpleUploadedFile(name, out.getvalue(), content_type="image/jpeg")


@pytest.fixture
def cook_client(restaurant) -> Client:
    client = Client()
    client.force_login(cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user)
    return client


def files_of(item, digest: str) -> list[str]:
    return [file_name(item.PHOTO_KIND, item.pk, digest, variant) for variant in VARIANTS]


def test_a_dish_photo_is_stored_in_every_size_shown_and_served_with_caching(cook_client, restaurant, menu) -> None:
    pizza = menu["pizza"]
    url = reverse("staff_dish_photo", args=[restaurant.pk, pizza.pk])
    response = cook_client.post(url, {"photo": upload()}, follow=True)
    assert "Photo saved." in response.content.decode()
    pizza.refresh_from_db()
    assert pizza.photo and all(default_storage.exists(name) for name in files_of(pizza, pizza.photo))
    staff_page = response.content.decode()
    assert f'srcset="{pizza.photo_url("w480")} 480w, {pizza.photo_url("w960")} 960w"' in staff_page
    assert 'alt="The photo of' in staff_page and 'loading="lazy"' in staff_page

    # the menu shows it, with both densities and its size; the API names every size
    menu_page = Client().get(reverse("restaurant_menu", args=[restaurant.slug])).content.decode()
    assert f'src="{pizza.photo_url("s160")}"' in menu_page and f"{pizza.photo_url('s320')} 2x" in menu_page
    api = Client().get(f"/api/v1/restaurants/{restaurant.pk}/menu").json()
    assert next(d for d in api if d["id"] == pizza.pk)["photo"]["w960"] == pizza.photo_url("w960")

    # served as a JPEG that may be cached for a year
    served = Client().get(pizza.photo_url("s320"))
    assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
    assert served["Cache-Control"] == "public, max-age=31536000, immutable"
    body = b"".join(served.streaming_content)  # type: ignore[attr-defined]
    assert Image.open(io.BytesIO(body)).size == (320, 320)


def test_a_dish_photo_change_is_announced_with_its_addresses(cook_client, restaurant, menu) -> None:
    pizza = menu["pizza"]
    url = reverse("staff_dish_photo", args=[restaurant.pk, pizza.pk])

    def announced() -> dict:
        row = OutboxMessage.objects.filter(type="menu.item_changed", aggregate=f"menu_item:{pizza.pk}").last()
        assert row is not None
        return json.loads(row.body)["payload"]

    cook_client.post(url, {"photo": upload()})
    pizza.refresh_from_db()
    assert announced() == {"restaurant_id": restaurant.pk, "menu_item_id": pizza.pk, "photo": pizza.photo_urls}
    assert set(announced()["photo"]) == set(VARIANTS)
    cook_client.post(url, {"remove": "true"})
    assert announced()["photo"] is None


def test_replacing_and_removing_delete_the_old_files(
    cook_client, restaurant, menu, django_capture_on_commit_callbacks
) -> None:
    pizza = menu["pizza"]
    url = reverse("staff_dish_photo", args=[restaurant.pk, pizza.pk])
    cook_client.post(url, {"photo": upload("orange")})
    first = MenuItem.objects.get(pk=pizza.pk).photo
    with django_capture_on_commit_callbacks(execute=True):  # the old files go once the change commits
        cook_client.post(url, {"photo": upload("green", "PNG", "dish.png")})
    second = MenuItem.objects.get(pk=pizza.pk).photo
    assert second != first
    assert not any(default_storage.exists(name) for name in files_of(pizza, first))
    assert all(default_storage.exists(name) for name in files_of(pizza, second))
    with django_capture_on_commit_callbacks(execute=True):
        response = cook_client.post(url, {"remove": "true"}, follow=True)
    assert "Photo removed." in response.content.decode()
    assert MenuItem.objects.get(pk=pizza.pk).photo == ""
    assert not any(default_storage.exists(name) for name in files_of(pizza, second))


def test_a_file_that_is_not_a_picture_is_refused_and_nothing_changes(cook_client, restaurant, menu) -> None:
    pizza = menu["pizza"]
    url = reverse("staff_dish_photo", args=[restaurant.pk, pizza.pk])
    fake = SimpleUploadedFile("dish.jpg", b"<?php echo 'hello'; ?>", content_type="image/jpeg")
    response = cook_client.post(url, {"photo": fake}, follow=True)
    assert "not a picture we can read" in response.content.decode()
    response = cook_client.post(url, {}, follow=True)
    assert "Choose a photo to upload." in response.content.decode()
    assert MenuItem.objects.get(pk=pizza.pk).photo == ""


def test_only_staff_may_upload_and_only_our_files_are_served(client, customer, restaurant, menu) -> None:
    client.force_login(customer)
    url = reverse("staff_dish_photo", args=[restaurant.pk, menu["pizza"].pk])
    assert client.post(url, {"photo": upload()}).status_code == 403
    for name in ("../../manage.py", "photos/dish/1-0123456789abcdef-s160.jpg", "photos/dish/..%2f..%2fsettings.py"):
        assert Client().get(f"/media/{name}").status_code == 404


def test_the_restaurant_photo_is_its_banner_on_the_list(cook_client, restaurant) -> None:
    response = cook_client.post(
        reverse("staff_restaurant_photo", args=[restaurant.pk]), {"photo": upload()}, follow=True
    )
    assert "Photo saved." in response.content.decode()
    restaurant = Restaurant.objects.get(pk=restaurant.pk)
    page = Client().get("/").content.decode()
    assert f'src="{restaurant.photo_url("w480")}"' in page and f'alt="{restaurant.name}"' in page
    assert Client().get("/api/v1/restaurants").json()[0]["photo"]["w480"] == restaurant.photo_url("w480")


def test_the_demo_data_has_a_photo_for_every_restaurant_and_dish_once() -> None:
    from django.core.management import call_command

    call_command("seed_demo", stdout=io.StringIO())
    photos = dict(MenuItem.objects.values_list("pk", "photo"))
    assert all(photos.values()) and all(Restaurant.objects.values_list("photo", flat=True))
    call_command("seed_demo", stdout=io.StringIO())
    assert dict(MenuItem.objects.values_list("pk", "photo")) == photos  # loaded again: the same photos
