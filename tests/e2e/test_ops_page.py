"""The operations page in real Chromium: staff watch a worker process start, and drop out when it
is killed, without a reload; the page's script runs under the site's CSP (no inline script)."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.e2e.conftest import log_in
from tests.factories import UserFactory
from tests.support import ManagedProcess

LIVE = 15_000  # ms: a beat (0.3 s), a poll (2.5 s), an expiry (three beats), with slack


def test_staff_watch_a_worker_come_and_go_without_a_reload(e2e_db, bus, live_url: str, page: Page, password, tmp_path):
    # given: a staff member on the operations page, and no audit worker
    staff = UserFactory(is_staff=True)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_url, str(staff.username), password, next_path="/ops/")
    expect(page.get_by_role("heading", name="Operations")).to_be_visible()
    audit_row = page.locator("#ops-roles tbody tr", has=page.locator("th", has_text="audit"))
    expect(audit_row.locator("td").first).to_have_text("0")
    expect(page.locator("#ops-missing")).to_contain_text("audit")

    # when: an audit worker starts
    worker = ManagedProcess("consume", "audit.events", log_dir=tmp_path, RABBITMQ_URL=bus, WORKER_BEAT_SECONDS="0.3")
    try:
        # then: the page shows its live copy, and its process, without a reload
        expect(audit_row.locator("td").first).to_have_text("1", timeout=LIVE + 30_000)
        expect(page.locator("#ops-workers tbody")).to_contain_text(str(worker.proc.pid))
        expect(page.locator("#ops-missing")).not_to_contain_text("audit")

        # when: it is killed outright
        worker.kill()
        # then: it drops out by itself, and the page flags the role again
        expect(audit_row.locator("td").first).to_have_text("0", timeout=LIVE)
        expect(page.locator("#ops-missing")).to_contain_text("audit")
    finally:
        worker.terminate()
    assert not errors
