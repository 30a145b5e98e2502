"""The operations page and its JSON: staff only (signed out: the login page; a customer: 403),
the registry, queue depths, the outbox and dead letters in it, and no inline script (the CSP)."""

from __future__ import annotations

import re

import pytest

from bus import registry
from bus.models import DeadLetter
from tests.factories import UserFactory
from tests.support import wait_until


@pytest.fixture
def staff(db):
    return UserFactory(is_staff=True)


def test_signed_out_the_operations_page_sends_to_the_login_page(client):
    for path in ("/ops/", "/ops/status.json"):
        response = client.get(path)
        assert response.status_code == 302
        assert response["Location"].startswith("/login/") or "login" in response["Location"]


def test_a_customer_is_refused_the_operations_page_and_its_json(client, customer):
    client.force_login(customer)
    assert client.get("/ops/").status_code == 403
    assert client.get("/ops/status.json").status_code == 403


def test_staff_see_the_registry_queues_outbox_and_dead_letters_live(client, staff, relay, settings):
    # given: the relay beating, and a dead letter waiting for an operator
    settings.WORKER_BEAT_SECONDS = 0.3
    wait_until(lambda: any(e.role == "relay" for e in registry.entries()), timeout=10, what="the relay's entry")
    DeadLetter.objects.create(queue="notifier.sms", type="notification.planned", reason="boom", body="{}")
    client.force_login(staff)

    # when: staff open the page
    page = client.get("/ops/")
    # then: the page, with its snapshot for the script to render and its script a file of its own
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="ops-snapshot"' in html and "/static/js/ops.js" in html
    tags = re.findall(r"<script\b[^>]*>", html)
    assert tags and all("src=" in tag or 'type="application/json"' in tag for tag in tags), tags
    assert re.search(r"<script[^>]*src=\"[^\"]*ops\.js\"", html)

    # and the JSON it polls has the whole picture
    snapshot = client.get("/ops/status.json").json()
    assert "relay" in {w["role"] for w in snapshot["workers"]}
    assert "billing" in snapshot["missing"]
    assert {q["queue"] for q in snapshot["queues"]} >= {"billing.order_placed", "notifier.sms.dead", "bus.parked"}
    assert snapshot["outbox"] == {"unsent": 0, "oldest_seconds": 0.0}
    assert snapshot["dead_letters"]["stored"] == {"notifier.sms": 1}
    assert snapshot["errors"] == {}
