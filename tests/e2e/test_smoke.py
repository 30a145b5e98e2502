"""Smoke: the site answers through a real daphne in a real Chromium."""

from __future__ import annotations

import re

from django.contrib.auth import get_user_model
from playwright.sync_api import Page, expect


def test_admin_login_page_loads(e2e_db, live_url: str, page: Page) -> None:
    # when
    response = page.goto(f"{live_url}/admin/login/")

    # then
    assert response is not None and response.status == 200
    expect(page).to_have_title(re.compile("Django"))
    expect(page.locator("#id_username")).to_be_visible()


def test_superuser_logs_in_to_the_admin(e2e_db, live_url: str, page: Page, password: str) -> None:
    # given a superuser committed to the test database the daphne process reads
    get_user_model().objects.create_superuser(username="e2e-admin", email="e2e-admin@example.com", password=password)
    page.goto(f"{live_url}/admin/login/")

    # when
    page.locator("#id_username").fill("e2e-admin")
    page.locator("#id_password").fill(password)
    page.locator("input[type=submit]").click()

    # then
    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page).to_have_url(f"{live_url}/admin/")


def test_home_page_loads(e2e_db, live_url: str, page: Page) -> None:
    # when
    response = page.goto(f"{live_url}/")

    # then
    assert response is not None and response.status == 200
    expect(page).to_have_title(re.compile("Passline"))
