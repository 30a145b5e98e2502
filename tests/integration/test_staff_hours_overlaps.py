"""Overlapping opening hours are refused on the staff hours page with an error on the field, and
change nothing."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client
from django.urls import reverse

from bus.models import OutboxMessage
from ordering.models import Restaurant
from tests.factories import StaffMembershipFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cook_client(restaurant) -> Client:
    client = Client()
    client.force_login(StaffMembershipFactory.create(restaurant=restaurant).user)
    return client


@pytest.mark.parametrize(
    ("body", "field", "error"),
    [
        ({"day_0": "11:00-15:00, 14:00-18:00"}, "day_0", "14:00–18:00 overlaps 11:00–15:00."),
        (
            {"day_4": "18:00-02:00", "day_5": "01:00-04:00, 11:00-14:00"},
            "day_5",
            "01:00–04:00 overlaps Friday’s 18:00–02:00, which runs past midnight.",
        ),
        (
            {"day_6": "20:00-03:00", "day_0": "02:00-10:00"},
            "day_0",
            "02:00–10:00 overlaps Sunday’s 20:00–03:00, which runs past midnight.",
        ),
        ({"exceptions": "2099-12-24 10:00-12:00, 11:00-13:00"}, "exceptions", "2099-12-24: 11:00–13:00 overlaps"),
    ],
)
def test_overlapping_hours_are_a_form_error_and_change_nothing(restaurant, cook_client, body, field, error):
    before = (list(Restaurant.objects.values()), OutboxMessage.objects.count())

    response = cook_client.post(reverse("staff_hours", args=[restaurant.pk]), body)

    assert response.status_code == 400
    page = html.unescape(response.content.decode())
    assert 'class="alert alert-error form-errors"' in page and error in page
    tag = re.search(rf'<(?:input|textarea)[^>]*id="id_{field}"[^>]*>', page)
    assert tag and 'aria-invalid="true"' in tag.group(0)  # the error is on that field
    assert (list(Restaurant.objects.values()), OutboxMessage.objects.count()) == before


def test_hours_that_only_touch_are_saved(restaurant, cook_client):
    response = cook_client.post(
        reverse("staff_hours", args=[restaurant.pk]), {"day_4": "18:00-02:00", "day_5": "02:00-04:00, 11:00-14:00"}
    )

    assert response.status_code == 302
    restaurant.refresh_from_db()
    assert restaurant.opening_hours["5"] == [["02:00", "04:00"], ["11:00", "14:00"]]
