"""API tokens: they expire, refresh once, and die with an API logout, a site logout or a
password change by any path (docs/security.md, "API tokens and sessions")."""

from __future__ import annotations

import datetime
import re

import pytest
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.core import mail
from django.test import Client
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from ordering.models import ApiToken
from ordering.services.accounts import api_token_refresh, api_token_user
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db
JSON = "application/json"
NEW_PASSWORD = "brand-new-noodles-77"


def sign_in(user: User, password: str = PASSWORD) -> dict:
    response = Client().post("/api/v1/auth/token", {"username": user.username, "password": password}, content_type=JSON)
    assert response.status_code == 200, response.content
    return response.json()


def orders_status(token: str) -> int:
    return Client(headers={"Authorization": f"Bearer {token}"}).get("/api/v1/orders").status_code


def when(text: str) -> datetime.datetime:
    parsed = parse_datetime(text)
    assert parsed is not None and parsed.tzinfo is not None, text
    return parsed


def refresh(refresh_token: str):
    return Client().post("/api/v1/auth/refresh", {"refresh_token": refresh_token}, content_type=JSON)


# --- issue and expiry ----------------------------------------------------------------------


def test_a_sign_in_gives_a_token_that_expires_after_the_configured_lifetime_and_a_refresh_token(customer):
    before = timezone.now()

    body = sign_in(customer)

    # the contract's {"token"} is still there, extended
    assert set(body) == {"token", "token_type", "expires_at", "refresh_token", "refresh_expires_at"}
    assert body["token_type"] == "Bearer"
    assert body["token"] != body["refresh_token"]
    lifetime = when(body["expires_at"]) - before
    assert datetime.timedelta(hours=23, minutes=59) < lifetime <= datetime.timedelta(hours=24, seconds=5)
    assert when(body["refresh_expires_at"]) > when(body["expires_at"])
    assert orders_status(body["token"]) == 200
    # only digests are stored
    row = ApiToken.objects.get(user=customer)
    assert body["token"] not in (row.digest, row.refresh_digest)


def test_an_expired_token_is_refused(customer, settings):
    settings.API_TOKEN_LIFETIME = datetime.timedelta(seconds=30)
    body = sign_in(customer)
    assert orders_status(body["token"]) == 200

    # when its time has passed
    ApiToken.objects.filter(user=customer).update(expires_at=timezone.now() - datetime.timedelta(seconds=1))

    response = Client(headers={"Authorization": f"Bearer {body['token']}"}).get("/api/v1/orders")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"
    # the function the WebSocket layer asks says the same
    assert api_token_user(token=body["token"]) is None


def test_a_token_lifetime_comes_from_settings(customer, settings):
    settings.API_TOKEN_LIFETIME = datetime.timedelta(minutes=5)
    before = timezone.now()

    body = sign_in(customer)

    assert when(body["expires_at"]) - before <= datetime.timedelta(minutes=5, seconds=5)


# --- refresh ---------------------------------------------------------------------------------


def test_a_refresh_token_gives_a_new_pair_once_and_the_old_pair_stops_working(customer):
    first = sign_in(customer)

    renewed = refresh(first["refresh_token"])

    assert renewed.status_code == 200
    second = renewed.json()
    assert second["token"] != first["token"] and second["refresh_token"] != first["refresh_token"]
    assert orders_status(second["token"]) == 200
    assert orders_status(first["token"]) == 401

    # the same refresh token again: refused
    again = refresh(first["refresh_token"])
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "invalid_refresh_token"


def test_a_reused_refresh_token_revokes_every_token_of_that_sign_in(customer):
    # given a sign-in refreshed once (the client now holds the second pair), and another sign-in
    first = sign_in(customer)
    second = refresh(first["refresh_token"]).json()
    elsewhere = sign_in(customer)

    # when the first refresh token is presented again (a stolen copy, say)
    assert refresh(first["refresh_token"]).status_code == 401

    # then the thief gets nothing, and the pair it was exchanged for is revoked too
    assert orders_status(second["token"]) == 401
    assert refresh(second["refresh_token"]).status_code == 401
    # another sign-in of the same account is untouched
    assert orders_status(elsewhere["token"]) == 200


def test_an_expired_unknown_or_malformed_refresh_token_is_refused(customer):
    body = sign_in(customer)
    ApiToken.objects.filter(user=customer).update(refresh_expires_at=timezone.now() - datetime.timedelta(seconds=1))

    for candidate in (body["refresh_token"], "not-a-token", body["token"]):
        response = refresh(candidate)
        assert response.status_code == 401, candidate
        assert response.json()["error"]["code"] == "invalid_refresh_token"
    long = Client().post("/api/v1/auth/refresh", {"refresh_token": "x" * 500}, content_type=JSON)
    assert long.status_code == 422
    assert ApiToken.objects.filter(user=customer).count() == 1


def test_a_refresh_after_a_password_change_is_refused(customer):
    body = sign_in(customer)
    customer.set_password(NEW_PASSWORD)
    customer.save()

    assert refresh(body["refresh_token"]).status_code == 401


# --- logout ----------------------------------------------------------------------------------


def test_api_logout_revokes_the_presented_token_and_its_refresh_token_only(customer):
    mine, other_device = sign_in(customer), sign_in(customer)
    client = Client(headers={"Authorization": f"Bearer {mine['token']}"})

    response = client.post("/api/v1/auth/logout")

    assert response.status_code == 204
    assert orders_status(mine["token"]) == 401
    assert refresh(mine["refresh_token"]).status_code == 401
    assert api_token_user(token=mine["token"]) is None
    assert orders_status(other_device["token"]) == 200
    # a second logout with the dead token is not authenticated
    assert client.post("/api/v1/auth/logout").status_code == 401


def test_api_logout_needs_a_bearer_token(customer):
    client = Client()
    client.force_login(customer)

    response = client.post("/api/v1/auth/logout")

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_logging_out_of_the_site_revokes_the_accounts_api_tokens(customer, other_customer):
    tokens = [sign_in(customer)["token"] for _ in range(2)]
    someone_else = sign_in(other_customer)["token"]
    browser = Client()
    browser.force_login(customer)

    assert browser.post("/logout/").status_code == 302

    assert [orders_status(token) for token in tokens] == [401, 401]
    assert orders_status(someone_else) == 200


# --- a password change, by any path --------------------------------------------------------


def test_changing_the_password_on_the_site_revokes_api_tokens_and_keeps_this_browser_signed_in(customer):
    token = sign_in(customer)["token"]
    browser = Client()
    browser.force_login(customer)
    assert browser.get("/account/").status_code == 200
    assert 'href="/account/password/"' in browser.get("/account/").content.decode()

    response = browser.post(
        "/account/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )

    assert response.status_code == 302 and response["Location"] == "/account/password/done/"
    assert orders_status(token) == 401
    assert browser.get("/account/").status_code == 200
    assert sign_in(customer, NEW_PASSWORD)["token"]


def test_a_wrong_current_password_changes_nothing(customer):
    token = sign_in(customer)["token"]
    browser = Client()
    browser.force_login(customer)

    response = browser.post(
        "/account/password/", {"old_password": "wrong", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert orders_status(token) == 200


@pytest.mark.parametrize("path", ["set_password", "queryset_update", "admin"])
def test_a_password_changed_any_other_way_revokes_api_tokens(customer, path):
    token = sign_in(customer)["token"]

    if path == "set_password":
        customer.set_password(NEW_PASSWORD)
        customer.save()
    elif path == "queryset_update":
        # no signal fires for this: the token is tied to the password hash itself
        User.objects.filter(pk=customer.pk).update(password=make_password(NEW_PASSWORD))
    else:
        admin = User.objects.create_superuser("root-of-it-all", "root@example.com", PASSWORD)
        client = Client()
        client.force_login(admin)
        response = client.post(
            f"/admin/auth/user/{customer.pk}/password/",
            {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"},
        )
        assert response.status_code == 302, response.content.decode()[:2000]

    assert orders_status(token) == 401
    assert api_token_user(token=token) is None


def test_a_token_of_a_deactivated_account_is_refused(customer):
    token = sign_in(customer)["token"]
    customer.is_active = False
    customer.save()

    assert api_token_user(token=token) is None


def test_unchanged_saves_of_the_user_keep_tokens_alive(customer):
    body = sign_in(customer)
    customer.first_name = "Renamed"
    customer.save()
    sign_in(customer)  # a later sign-in (last_login is saved) does not touch earlier tokens

    assert orders_status(body["token"]) == 200
    assert api_token_refresh(refresh_token=body["refresh_token"]).token


# --- password reset, end to end ----------------------------------------------------------------


def test_password_reset_by_email_end_to_end(customer, settings):
    settings.SITE_URL = "https://passline.example"
    token = sign_in(customer)["token"]
    browser = Client()
    login_page = browser.get("/login/").content.decode()
    assert 'href="/password-reset/"' in login_page

    # asking for a link
    asked = browser.post("/password-reset/", {"email": customer.email})
    assert asked.status_code == 302 and asked["Location"] == "/password-reset/sent/"
    assert len(mail.outbox) == 1
    email = mail.outbox[0]
    assert email.to == [customer.email]
    # the link points at the site's configured address, whatever Host the request carried
    link = re.search(r"https://passline\.example(/password-reset/[^/\s]+/[^/\s]+/)", str(email.body))
    assert link, email.body

    # following it and choosing a new password
    opened = browser.get(link.group(1), follow=True)
    assert opened.status_code == 200 and "Choose a new password" in opened.content.decode()
    set_url = opened.redirect_chain[-1][0]
    done = browser.post(set_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD})
    assert done.status_code == 302 and done["Location"] == "/password-reset/done/"

    # the new password works, the old one and the old API token do not, the link is spent
    assert orders_status(token) == 401
    assert sign_in(customer, NEW_PASSWORD)["token"]
    wrong = Client().post(
        "/api/v1/auth/token", {"username": customer.username, "password": PASSWORD}, content_type=JSON
    )
    assert wrong.status_code == 401
    assert "This link no longer works" in Client().get(link.group(1), follow=True).content.decode()


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(customer):
    response = Client().post("/password-reset/", {"email": "nobody@example.com"})

    assert response.status_code == 302 and response["Location"] == "/password-reset/sent/"
    assert mail.outbox == []
