"""Live pages whose socket is closed for good reasons do not reconnect in a loop: they say why.
Real daphne and Chromium; the page's clock is Playwright's, so its 20 s heartbeat (the client
frame on which the server re-checks the socket's access) comes when the test says."""

from __future__ import annotations

import re
import time
from typing import cast

from playwright.sync_api import Page, expect

from ordering.models import Order, StaffMembership
from passline.sessions import SessionStore
from tests.e2e.conftest import log_in
from tests.factories import OrderFactory, StaffMembershipFactory

# The server re-checks on a client frame at most every LIVE_AUTH_RECHECK_SECONDS (5 s).
RECHECK_SECONDS = 5.5
HEARTBEAT_MS = 21_000


def sockets_opened(page: Page, path: str) -> list[str]:
    """Every socket the page opens on ``path`` (pages also open ``/ws/me/``)."""
    opened: list[str] = []
    page.on("websocket", lambda socket: opened.append(socket.url) if socket.url.endswith(path) else None)
    return opened


def session_key(page: Page) -> str:
    return next(c["value"] for c in page.context.cookies() if c["name"] == "sessionid")


def test_a_cook_who_loses_the_kitchen_is_told_so_and_the_screen_stops(
    e2e_db, live_url: str, page: Page, restaurant, password
) -> None:
    cook = cast(StaffMembership, StaffMembershipFactory(restaurant=restaurant)).user
    page.clock.install()
    opened = sockets_opened(page, f"/ws/kitchen/{restaurant.pk}/")
    log_in(page, live_url, cook.username, password, f"/kitchen/{restaurant.pk}/")
    state = page.locator("#kds-connection")
    expect(state).to_have_attribute("data-state", "live")

    # when the cook no longer works there
    StaffMembership.objects.filter(user=cook).delete()
    time.sleep(RECHECK_SECONDS)
    page.clock.run_for(HEARTBEAT_MS)

    # then the screen says so, and never tries again
    expect(state).to_have_attribute("data-state", "off")
    expect(state).to_have_text("Not allowed: this kitchen is not yours")
    page.clock.run_for(120_000)
    assert len(opened) == 1, opened


def test_a_tracking_page_whose_session_ended_retries_once_then_says_signed_out(
    e2e_db, live_url: str, page: Page, customer, password, menu
) -> None:
    order = cast(Order, OrderFactory(customer=customer, dish=menu["pizza"]))
    page.clock.install()
    opened = sockets_opened(page, f"/ws/orders/{order.pk}/")
    log_in(page, live_url, customer.username, password, f"/orders/{order.pk}/")
    state = page.locator("#live-state")
    expect(state).to_have_attribute("data-state", "live")

    # when the session ends on the server (flushed, expired, ended by a password change)
    SessionStore(session_key=session_key(page)).delete()
    time.sleep(RECHECK_SECONDS)
    page.clock.run_for(HEARTBEAT_MS)

    # then the page tries once more (refused: signed out) and stops, saying why
    expect(state).to_have_attribute("data-state", "off")
    expect(state).to_have_text(re.compile("signed out"))
    page.clock.run_for(120_000)
    assert len(opened) == 2, opened


def test_a_page_still_signed_in_under_a_new_session_key_comes_back_live(
    e2e_db, live_url: str, page: Page, customer, password, menu
) -> None:
    order = cast(Order, OrderFactory(customer=customer, dish=menu["pizza"]))
    page.clock.install()
    opened = sockets_opened(page, f"/ws/orders/{order.pk}/")
    log_in(page, live_url, customer.username, password, f"/orders/{order.pk}/")
    state = page.locator("#live-state")
    expect(state).to_have_attribute("data-state", "live")

    # when the session's key is cycled (as a password change in another tab does): the old
    # key is gone, the browser holds the new one
    old = SessionStore(session_key=session_key(page))
    new = SessionStore()
    new.update(old.load())
    new.create()
    old.delete()
    page.context.add_cookies([{"name": "sessionid", "value": new.session_key or "", "url": live_url}])
    time.sleep(RECHECK_SECONDS)
    with page.expect_websocket(lambda socket: socket.url.endswith(f"/ws/orders/{order.pk}/")) as retried:
        page.clock.run_for(HEARTBEAT_MS)

    # then the socket closed with 4401 is retried at once, and the page is live again
    retried.value.wait_for_event("framereceived")
    expect(state).to_have_attribute("data-state", "live")
    page.wait_for_timeout(2_000)
    assert len(opened) == 2, opened
