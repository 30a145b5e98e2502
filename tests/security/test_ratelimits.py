"""Password guessing and request floods (docs/security.md, "Rate limits and password guessing"):
lockout on the site, the admin and the token endpoint; API throttles answering 429 with
Retry-After in the contract's error shape; the site's registration, log-in and reset forms
limited per address."""

from __future__ import annotations

import datetime
import json
import logging
import os
import subprocess
import sys
import uuid

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core import mail
from django.core.cache import cache
from django.http import HttpRequest
from django.test import Client, RequestFactory
from ninja.errors import Throttled

from ordering.models import Order
from ordering.services import api_token_issue
from passline import throttles
from passline.api import api
from tests.factories import PASSWORD, UserFactory
from tests.integration.site_helpers import add_to_cart, cart_of, checkout_token
from tests.private_redis import private_redis  # noqa: F401 - a fixture
from tests.support import ROOT

pytestmark = pytest.mark.django_db
JSON = "application/json"
COOL_OFF_SECONDS = 15 * 60


@pytest.fixture(autouse=True)
def fresh_limits():
    """Every test starts with empty rate-limit windows (they live in Redis, not the test database)."""

    def clear() -> None:
        client = cache._cache.get_client(write=True)  # type: ignore[attr-defined]
        for key in client.scan_iter(match=cache.make_key("ratelimit:*")):
            client.delete(key)

    clear()
    yield
    clear()


def rates(settings, **lowered: str) -> None:
    settings.PASSLINE_RATE_LIMITS = {**settings.PASSLINE_RATE_LIMITS, **lowered}


def from_address(ip: str) -> Client:
    return Client(REMOTE_ADDR=ip)


def token_attempt(client: Client, username: str, password: str):
    return client.post("/api/v1/auth/token", {"username": username, "password": password}, content_type=JSON)


def assert_rate_limited(response, code: str = "rate_limited") -> int:
    """The contract's 429: the error shape, a machine code, and Retry-After in whole seconds."""
    assert response.status_code == 429, response.content
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code and body["error"]["message"]
    retry_after = int(response["Retry-After"])
    assert retry_after >= 1
    return retry_after


# --- brute force: the token endpoint ----------------------------------------------------------


def test_guessing_a_password_on_the_token_endpoint_locks_that_username_for_that_address(customer):
    attacker = from_address("198.51.100.7")

    answers = [token_attempt(attacker, customer.username, f"guess-{n}") for n in range(5)]

    assert [r.status_code for r in answers[:4]] == [401] * 4
    assert assert_rate_limited(answers[4], "too_many_attempts") == COOL_OFF_SECONDS
    # locked: even the right password gets no token now, from there
    locked = token_attempt(attacker, customer.username, PASSWORD)
    assert_rate_limited(locked, "too_many_attempts")
    assert "token" not in locked.json()
    # the lock is in the database, for every web process
    assert AccessAttempt.objects.get(username=customer.username, ip_address="198.51.100.7").failures_since_start >= 5


def test_the_owner_elsewhere_and_other_accounts_are_not_locked_out(customer, other_customer):
    attacker = from_address("198.51.100.7")
    for n in range(6):
        token_attempt(attacker, customer.username, f"guess-{n}")

    # the account's owner, from their own address
    assert token_attempt(from_address("203.0.113.20"), customer.username, PASSWORD).status_code == 200
    # another account, from the attacker's address
    assert token_attempt(attacker, other_customer.username, PASSWORD).status_code == 200


def test_spelling_the_username_differently_does_not_earn_more_guesses(customer):
    attacker = from_address("198.51.100.8")
    spellings: list[str] = [
        customer.username,
        customer.username.upper(),
        customer.username + " ",
        customer.username.title(),
    ]
    # MariaDB's collation finds the account under each spelling
    assert all(User.objects.filter(username=s).exists() for s in spellings)

    answers = [token_attempt(attacker, spellings[n % 4], f"guess-{n}") for n in range(5)]

    assert_rate_limited(answers[4], "too_many_attempts")
    assert_rate_limited(token_attempt(attacker, customer.username, PASSWORD), "too_many_attempts")


def test_the_lock_lifts_after_the_cool_off(customer):
    attacker = from_address("198.51.100.9")
    for n in range(5):
        token_attempt(attacker, customer.username, f"guess-{n}")
    assert token_attempt(attacker, customer.username, PASSWORD).status_code == 429

    # when the cool-off has passed since the last attempt
    AccessAttempt.objects.update(attempt_time=datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=16))

    assert token_attempt(attacker, customer.username, PASSWORD).status_code == 200


def test_a_success_before_the_limit_forgets_earlier_typos(customer):
    client = from_address("203.0.113.30")
    for n in range(4):
        assert token_attempt(client, customer.username, f"typo-{n}").status_code == 401
    assert token_attempt(client, customer.username, PASSWORD).status_code == 200

    for n in range(4):
        assert token_attempt(client, customer.username, f"typo-{n}").status_code == 401


# --- brute force: the site and the admin ------------------------------------------------------


def test_guessing_on_the_site_login_shows_a_clear_error_and_refuses_even_the_right_password(customer):
    browser = from_address("198.51.100.10")
    for n in range(4):
        page = browser.post("/login/", {"username": customer.username, "password": f"guess-{n}"})
        assert page.status_code == 200 and "Please enter a correct username and password" in page.content.decode()

    fifth = browser.post("/login/", {"username": customer.username, "password": "guess-5"})
    right = browser.post("/login/", {"username": customer.username, "password": PASSWORD})

    for response in (fifth, right):
        assert response.status_code == 429
        assert int(response["Retry-After"]) == COOL_OFF_SECONDS
        html = response.content.decode()
        assert "Too many failed sign-in attempts" in html and "15 minutes" in html
        assert 'role="alert"' in html and 'href="/password-reset/"' in html
        assert 'name="username"' in html  # the form is still there
    assert "_auth_user_id" not in browser.session
    # the owner, elsewhere, signs in
    owner = from_address("203.0.113.21")
    assert owner.post("/login/", {"username": customer.username, "password": PASSWORD}).status_code == 302


def test_the_site_and_the_api_count_against_the_same_lock(customer):
    attacker = from_address("198.51.100.11")
    for n in range(3):
        attacker.post("/login/", {"username": customer.username, "password": f"guess-{n}"})
    for n in range(2):
        token_attempt(attacker, customer.username, f"guess-{n}")

    assert attacker.post("/login/", {"username": customer.username, "password": PASSWORD}).status_code == 429


def test_guessing_an_admin_password_locks_the_admin_login():
    admin = UserFactory(is_staff=True, is_superuser=True)
    attacker = from_address("198.51.100.12")

    answers = [
        attacker.post("/admin/login/", {"username": admin.username, "password": f"guess-{n}", "next": "/admin/"})
        for n in range(5)
    ]
    right = attacker.post("/admin/login/", {"username": admin.username, "password": PASSWORD, "next": "/admin/"})

    assert [r.status_code for r in answers[:4]] == [200] * 4
    for response in (answers[4], right):
        assert response.status_code == 429
        assert int(response["Retry-After"]) == COOL_OFF_SECONDS
        assert "Too many failed sign-in attempts" in response.content.decode()
    assert "_auth_user_id" not in attacker.session


# --- API throttles ---------------------------------------------------------------------------


def test_the_default_throttle_answers_429_with_retry_after_in_the_error_shape(settings):
    rates(settings, api_ip="3/min")
    client = from_address("198.51.100.20")

    statuses = [client.get("/api/v1/restaurants").status_code for _ in range(3)]
    refused = client.get("/api/v1/restaurants")

    assert statuses == [200, 200, 200]
    assert 1 <= assert_rate_limited(refused) <= 60
    # another address has its own allowance
    assert from_address("198.51.100.21").get("/api/v1/restaurants").status_code == 200


def test_the_per_user_throttle_follows_the_account_across_addresses(customer, other_customer, settings):
    rates(settings, api_user="2/min")
    token = api_token_issue(user=customer)

    def get(ip: str, who: str) -> int:
        return Client(REMOTE_ADDR=ip, headers={"Authorization": f"Bearer {who}"}).get("/api/v1/orders").status_code

    assert [get("203.0.113.1", token), get("203.0.113.2", token)] == [200, 200]
    assert get("203.0.113.3", token) == 429
    assert get("203.0.113.3", api_token_issue(user=other_customer)) == 200


def test_placing_orders_is_limited_per_account_and_a_refused_order_changes_nothing(customer, menu, settings):
    rates(settings, orders="2/hour")
    client = Client(headers={"Authorization": f"Bearer {api_token_issue(user=customer)}"})
    body = {
        "restaurant_id": menu["pizza"].category.restaurant_id,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "delivery_address": "12 Baker Street",
    }

    placed = [client.post("/api/v1/orders", body, content_type=JSON).status_code for _ in range(2)]
    refused = client.post("/api/v1/orders", body, content_type=JSON)

    assert placed == [201, 201]
    assert assert_rate_limited(refused) > 60  # a slot frees when the first order is an hour old
    assert Order.objects.filter(customer=customer).count() == 2
    # reading is not placing
    assert client.get("/api/v1/orders").status_code == 200


def test_registration_is_limited_per_address(settings):
    rates(settings, register="2/hour")
    client = from_address("198.51.100.30")

    def register(name: str):
        body = {"username": name, "email": f"{name}@example.com", "password": "tasty-noodles-42"}
        return client.post("/api/v1/auth/register", body, content_type=JSON)

    assert [register("reg1").status_code, register("reg2").status_code] == [201, 201]
    assert_rate_limited(register("reg3"))
    assert not User.objects.filter(username="reg3").exists()


def test_token_issue_is_limited_per_address_across_usernames(settings):
    rates(settings, login="3/min")
    users = [UserFactory() for _ in range(4)]
    client = from_address("198.51.100.31")

    answers = [token_attempt(client, str(user.username), PASSWORD) for user in users]

    assert [r.status_code for r in answers[:3]] == [200, 200, 200]
    assert_rate_limited(answers[3])


def test_the_throttled_handler_itself_answers_the_contract(rf: RequestFactory):
    response = api.on_exception(rf.get("/api/v1/orders"), Throttled(wait=12.2))  # type: ignore[arg-type]

    assert response.status_code == 429
    assert response["Retry-After"] == "13"
    assert json.loads(response.content)["error"]["code"] == "rate_limited"


def test_the_money_list_for_top_ups_limits_per_account_and_per_address(customer, other_customer, settings):
    rates(settings, money="2/hour", money_ip="3/hour")
    request = RequestFactory().post("/api/v1/wallet/top-up", REMOTE_ADDR="198.51.100.40")

    def allowed(user: User) -> bool:
        request.auth = user  # type: ignore[attr-defined]
        # every throttle counts the request, as ninja asks each of them
        verdicts = [throttle.allow_request(request) for throttle in throttles.MONEY]
        return all(verdicts)

    assert [allowed(customer), allowed(customer), allowed(customer)] == [True, True, False]
    # the address's allowance (3) is spent by now: another account there is refused too
    assert allowed(other_customer) is False
    assert {repr(t) for t in throttles.MONEY} >= {"UserThrottle('money')", "IpThrottle('money_ip')"}


def test_a_throttle_built_with_its_own_rate_ignores_the_settings():
    throttle = throttles.IpThrottle(f"test-{uuid.uuid4().hex}", rate="2/10s")
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.50")

    assert [throttle.allow_request(request) for _ in range(3)] == [True, True, False]
    assert 0 < (throttle.wait() or 0) <= 10


def test_redis_being_down_lets_requests_through_and_says_so(settings, caplog):
    settings.CACHES = {
        "default": {**settings.CACHES["default"], "LOCATION": "redis://127.0.0.1:1/0"},
    }
    throttle = throttles.IpThrottle("api_ip", rate="1/min")
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.51")

    with caplog.at_level(logging.ERROR, logger="passline.throttles"):
        assert [throttle.allow_request(request) for _ in range(2)] == [True, True]
    assert "Redis unavailable" in caplog.text


# --- the site's forms --------------------------------------------------------------------------


SIGNUP = {
    "username": "newbie",
    "email": "newbie@example.com",
    "password": "tasty-noodles-42",
    "password_confirm": "tasty-noodles-42",
}


def test_site_registration_is_limited_per_address_with_a_form_error(settings):
    rates(settings, register="1/hour")
    browser = from_address("198.51.100.60")
    assert browser.post("/signup/", SIGNUP).status_code == 302
    browser.logout()

    refused = browser.post("/signup/", {**SIGNUP, "username": "second", "email": "second@example.com"})

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 60
    assert "Too many attempts from your network" in refused.content.decode()
    assert not User.objects.filter(username="second").exists()


def test_the_site_login_is_limited_per_address_across_usernames(settings):
    rates(settings, login="2/min")
    users = [UserFactory() for _ in range(3)]
    browser = from_address("198.51.100.61")

    answers = [browser.post("/login/", {"username": u.username, "password": "wrong"}) for u in users]

    assert [r.status_code for r in answers] == [200, 200, 429]
    assert "Too many attempts from your network" in answers[2].content.decode()


def test_password_reset_requests_are_limited_per_address_and_per_email(customer, other_customer, settings):
    rates(settings, password_reset="3/hour", password_reset_email="1/hour")
    browser = from_address("198.51.100.62")

    first = browser.post("/password-reset/", {"email": customer.email})
    again = browser.post("/password-reset/", {"email": customer.email})
    other = browser.post("/password-reset/", {"email": other_customer.email})
    over = browser.post("/password-reset/", {"email": other_customer.email})

    # the same address twice: the page says "sent" both times, one email leaves
    assert first["Location"] == again["Location"] == other["Location"] == "/password-reset/sent/"
    assert [m.to for m in mail.outbox] == [[customer.email], [other_customer.email]]
    assert over.status_code == 429 and "Too many attempts" in over.content.decode()


# --- the client's address --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("remote_addr", "counted_as"),
    [
        ("203.0.113.5", "203.0.113.5"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::"),
        ("2001:db8:1:2::1", "2001:db8:1:2::"),
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("not-an-address, 1.2.3.4", "0.0.0.0"),
        ("", "0.0.0.0"),
    ],
)
def test_client_ip_is_remote_addr_only_ipv6_by_its_64(remote_addr, counted_as):
    request = HttpRequest()
    request.META = {"REMOTE_ADDR": remote_addr, "HTTP_X_FORWARDED_FOR": "9.9.9.9"}

    assert throttles.client_ip(request) == counted_as


def test_the_site_and_the_api_share_one_allowance_per_address(settings):
    rates(settings, register="2/hour")
    client = from_address("198.51.100.63")
    body = {"username": "viaapi", "email": "viaapi@example.com", "password": "tasty-noodles-42"}
    assert client.post("/api/v1/auth/register", body, content_type=JSON).status_code == 201
    assert client.post("/signup/", SIGNUP).status_code == 302
    client.logout()

    assert client.post("/signup/", {**SIGNUP, "username": "third", "email": "third@example.com"}).status_code == 429
    body = {"username": "fourth", "email": "fourth@example.com", "password": "tasty-noodles-42"}
    assert_rate_limited(client.post("/api/v1/auth/register", body, content_type=JSON))


def test_site_checkout_shares_the_accounts_order_allowance_with_the_api(customer, menu, settings):
    rates(settings, orders="1/hour")
    api_client = Client(headers={"Authorization": f"Bearer {api_token_issue(user=customer)}"})
    body = {
        "restaurant_id": menu["pizza"].category.restaurant_id,
        "items": [{"menu_item_id": menu["pizza"].pk, "quantity": 1}],
        "delivery_address": "12 Baker Street",
    }
    assert api_client.post("/api/v1/orders", body, content_type=JSON).status_code == 201
    browser = Client()
    browser.force_login(customer)
    add_to_cart(browser, menu["pizza"])

    form = {"delivery_address": "9 Elm Street", "notes": "", "checkout_token": checkout_token(browser)}
    refused = browser.post("/checkout/", form)

    assert refused.status_code == 429
    assert int(refused["Retry-After"]) > 60
    assert "Too many attempts from your account" in refused.content.decode()
    assert Order.objects.filter(customer=customer).count() == 1
    assert cart_of(browser)  # the cart is kept for later


def test_a_malformed_rate_in_the_environment_refuses_to_start():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**os.environ, "PASSLINE_ENV": "test", "RATE_LIMIT_ORDERS": "lots"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode != 0
    assert "RATE_LIMIT_ORDERS='lots'" in result.stderr


def test_a_request_is_counted_in_every_bucket_of_its_list_in_one_call_to_redis(customer, private_redis, settings):
    # given: the order list's four throttles (per account and address, general and for orders)
    rates(settings, orders="1/hour")

    def request() -> HttpRequest:
        made = RequestFactory().post("/api/v1/orders", REMOTE_ADDR="198.51.100.60")
        made.auth = customer  # type: ignore[attr-defined]
        return made

    def script_calls() -> int:
        with private_redis.client() as admin:
            stats = admin.info("commandstats")
        return sum(int(stats.get(f"cmdstat_{name}", {}).get("calls", 0)) for name in ("evalsha", "eval"))

    before = script_calls()
    # when: ninja asks each of them about one request, then about a second one
    first = [throttle.allow_request(req) for req in [request()] for throttle in throttles.ORDERS]
    after_first = script_calls()
    second = [throttle.allow_request(req) for req in [request()] for throttle in throttles.ORDERS]

    # then: the first is allowed, counted by one script call (two when Redis had to load it)
    assert first == [True] * 4
    assert 1 <= after_first - before <= 2
    # and each bucket counted it: the second is refused by the one-an-hour orders bucket alone
    assert second == [True, True, False, True]
    assert throttles.ORDERS[2].wait() is not None
