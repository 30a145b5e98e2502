"""The tracking page follows the order live, without reloading, and catches up after the
network drops and after its daphne restarts: real daphne, relay, bridge, RabbitMQ, Redis and
Chromium."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ordering.services import order_transition, order_transition_by_staff
from ordering.status import Actor
from tests.e2e.conftest import STARTUP_TIMEOUT, VENV_BIN, AppProcess, _healthy, free_port, log_in
from tests.factories import OrderFactory, StaffMembershipFactory
from tests.support import wait_until


def test_the_tracking_page_updates_live_and_catches_up_after_a_drop(
    e2e_db, run_bridge, live_url: str, page: Page, customer, password, restaurant, menu
) -> None:
    cook = StaffMembershipFactory(restaurant=restaurant).user
    order = OrderFactory(customer=customer, dish=menu["pizza"])
    run_bridge()
    log_in(page, live_url, customer.username, password, f"/orders/{order.pk}/")
    main = page.locator("main#main")
    expect(main).to_have_attribute("data-status", "pending_payment")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    page.evaluate("window.__sameDocument = true")

    # when the order is paid and accepted
    order_transition(order_id=order.pk, to="paid", actor_kind=Actor.SYSTEM)
    order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")

    # then the page shows it without a reload
    expect(main).to_have_attribute("data-status", "accepted", timeout=10_000)
    expect(page.locator("#order-status")).to_have_text("Accepted by the kitchen")
    assert page.evaluate("window.__sameDocument === true")

    # when the network drops while the kitchen moves on, and comes back
    # (Chromium's offline emulation blocks new connections but may leave an open
    # WebSocket up, so the test also drops the open one, as a real network loss would.)
    page.context.set_offline(True)
    page.evaluate("document.dispatchEvent(new Event('passline:reconnect'))")
    expect(page.locator("#live-state")).to_have_attribute("data-state", "reconnecting", timeout=10_000)
    order_transition_by_staff(order_id=order.pk, user=cook, to="preparing")
    order_transition_by_staff(order_id=order.pk, user=cook, to="ready")
    page.context.set_offline(False)

    # then it catches up, still without a reload
    expect(main).to_have_attribute("data-status", "ready", timeout=20_000)
    expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__sameDocument === true")
    assert list(
        main.locator("ol[data-timeline] li[data-version]").evaluate_all(
            "items => items.map(i => Number(i.dataset.version))"
        )
    ) == [1, 2, 3, 4, 5]
    page.screenshot(path="test-artifacts/live-tracking.png", full_page=True)


# Records the sockets the page opens and the close code of each.
RECORD_CLOSES = """
(() => {
  const Native = window.WebSocket;
  window.__closeCodes = [];
  window.__sockets = [];
  function Recorded(url, protocols) {
    const socket = protocols === undefined ? new Native(url) : new Native(url, protocols);
    window.__sockets.push(socket);
    socket.addEventListener("close", (event) => window.__closeCodes.push(event.code));
    return socket;
  }
  Recorded.prototype = Native.prototype;
  ["CONNECTING", "OPEN", "CLOSING", "CLOSED"].forEach((name) => { Recorded[name] = Native[name]; });
  window.WebSocket = Recorded;
})();
"""


def _daphne(port: int, env: dict[str, str], log_dir: Path, name: str) -> AppProcess:
    server = AppProcess(
        name,
        [str(VENV_BIN / "daphne"), "-b", "127.0.0.1", "-p", str(port), "passline.asgi:application"],
        env,
        log_dir / f"{name}.log",
    )
    server.start()
    try:
        server.wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"), STARTUP_TIMEOUT, "a 200 from /healthz")
    except RuntimeError as error:
        server.stop()
        pytest.fail(server.failure_message(error), pytrace=False)
    return server


def test_the_tracking_page_comes_back_from_a_daphne_restart_with_what_changed_meanwhile(
    e2e_db, e2e_env, tmp_path, page: Page, customer, password, restaurant, menu
) -> None:
    # given: the tracking page on a daphne of its own
    cook = StaffMembershipFactory(restaurant=restaurant).user
    order = OrderFactory(customer=customer, dish=menu["pizza"], paid=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = _daphne(port, e2e_env, tmp_path, "daphne-before")
    try:
        page.add_init_script(RECORD_CLOSES)
        log_in(page, url, customer.username, password, f"/orders/{order.pk}/")
        main = page.locator("main#main")
        expect(main).to_have_attribute("data-status", "paid")
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
        page.evaluate("window.__sameDocument = true")
        # every socket the page opened is open (none still connecting); polled from here:
        # wait_for_function evaluates a string in the page, which the site's CSP forbids
        wait_until(
            lambda: page.evaluate("window.__sockets.length > 0 && window.__sockets.every((s) => s.readyState === 1)"),
            timeout=15,
            what="every socket of the page open",
        )
        live = page.evaluate("window.__sockets.length")
        assert page.evaluate("window.__closeCodes.length") == 0

        # when: the daphne is stopped (a deploy), the kitchen moves on, and it is started again
        server.stop()
        assert server.proc is not None and server.proc.returncode == 0, server.failure_message(RuntimeError("exit"))
        expect(page.locator("#live-state")).to_have_attribute("data-state", "reconnecting")
        order_transition_by_staff(order_id=order.pk, user=cook, to="accepted")
        order_transition_by_staff(order_id=order.pk, user=cook, to="preparing")
        server = _daphne(port, e2e_env, tmp_path, "daphne-after")

        # then: each open socket was told "going away" (the tries while it was down were refused),
        # and the page came back by itself and shows the new state
        codes = page.evaluate("window.__closeCodes")
        assert live >= 1 and codes[:live] == [1001] * live and set(codes[live:]) <= {1006}, codes
        expect(main).to_have_attribute("data-status", "preparing", timeout=20_000)
        expect(page.locator("#live-state")).to_have_attribute("data-state", "live")
        assert page.evaluate("window.__sameDocument === true")
    finally:
        server.stop()
