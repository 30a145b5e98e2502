"""The limits hold across web processes: two real daphnes, run as production runs them (behind a
proxy, ``--proxy-headers``), on this test run's database and Redis. Requests split between them
meet one shared limit, a burst of parallel requests gets exactly the allowance, and a password
guessed at on both is locked on both."""

from __future__ import annotations

import functools
import json
import random
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from django.conf import settings

from tests.e2e.conftest import AppProcess, tail
from tests.factories import PASSWORD, UserFactory
from tests.support import free_port, process_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

DAPHNE = Path(sys.executable).parent / "daphne"
LIMIT = 6  # requests per minute per address, in both daphnes


def _call(port: int, path: str, client_ip: str, body: dict | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request as the proxy forwards it: the client's address in X-Forwarded-For."""
    headers = {"X-Forwarded-For": client_ip, "Content-Type": "application/json"}
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return False


@pytest.fixture(scope="module")
def daphnes(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[list[int]]:
    env = process_env(
        REDIS_URL=settings.REDIS_URL,
        CACHE_URL=settings.CACHES["default"]["LOCATION"],
        CACHE_PREFIX=settings.CACHES["default"]["KEY_PREFIX"],
        CHANNELS_PREFIX=settings.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"],
        RATE_LIMIT_API_IP=f"{LIMIT}/min",
        DJANGO_SETTINGS_MODULE="passline.settings",
    )
    logs = tmp_path_factory.mktemp("ratelimit-daphnes")
    ports = [free_port(), free_port()]
    processes = [
        AppProcess(
            f"daphne-{n}",
            [str(DAPHNE), "--proxy-headers", "-b", "127.0.0.1", "-p", str(port), "passline.asgi:application"],
            env,
            logs / f"daphne-{n}.log",
        )
        for n, port in enumerate(ports)
    ]
    for process in processes:
        process.start()
    try:
        try:
            for process, port in zip(processes, ports, strict=True):
                process.wait_until(functools.partial(_healthy, port), 90, "a 200 from /healthz")
        except RuntimeError as error:
            pytest.fail("\n".join([str(error), *(f"--- {p.name} ---\n{tail(p.log_path, 30)}" for p in processes)]))
        yield ports
    finally:
        for process in processes:
            process.stop()


_used: set[str] = set()


def _unique_ip() -> str:
    """A client address of its own per use, so that no window of an earlier run is still open."""
    while True:
        candidate = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
        if candidate not in _used:
            _used.add(candidate)
            return candidate


def test_requests_split_between_two_processes_meet_one_limit(daphnes):
    client_ip = _unique_ip()

    answers = [_call(daphnes[n % 2], "/api/v1/restaurants", client_ip) for n in range(LIMIT + 2)]

    statuses = [status for status, _, _ in answers]
    assert statuses == [200] * LIMIT + [429, 429], statuses
    for _, headers, body in answers[LIMIT:]:
        assert json.loads(body)["error"]["code"] == "rate_limited"
        assert 1 <= int(headers["Retry-After"]) <= 60
    # the limit is the client's (as the proxy reported it), not the processes': another is served
    assert _call(daphnes[0], "/api/v1/restaurants", _unique_ip())[0] == 200
    assert _call(daphnes[1], "/api/v1/restaurants", _unique_ip())[0] == 200


def test_a_parallel_burst_across_both_processes_gets_exactly_the_allowance(daphnes):
    client_ip = _unique_ip()

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda n: _call(daphnes[n % 2], "/api/v1/restaurants", client_ip)[0], range(24)))

    assert sorted(statuses) == [200] * LIMIT + [429] * (24 - LIMIT), statuses


def test_password_guesses_split_between_two_processes_lock_the_username_on_both(daphnes):
    user = UserFactory()
    attacker, owner = _unique_ip(), _unique_ip()

    def attempt(port: int, client_ip: str, password: str) -> int:
        body = {"username": user.username, "password": password}
        return _call(port, "/api/v1/auth/token", client_ip, body)[0]

    guesses = [attempt(daphnes[n % 2], attacker, f"guess-{n}") for n in range(5)]

    assert guesses == [401, 401, 401, 401, 429]
    assert [attempt(port, attacker, PASSWORD) for port in daphnes] == [429, 429]
    # the owner, from elsewhere, is not locked out
    assert attempt(daphnes[0], owner, PASSWORD) == 200


def test_a_locked_site_login_through_daphne_is_the_login_form_with_the_reason(daphnes):
    user = UserFactory()
    browser = requests.Session()
    headers = {"X-Forwarded-For": _unique_ip()}

    def post(port: int, password: str) -> requests.Response:
        url = f"http://127.0.0.1:{port}/login/"
        page = browser.get(url, headers=headers, timeout=20)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, page.text[:500]
        form = {"csrfmiddlewaretoken": token.group(1), "username": user.username, "password": password}
        return browser.post(url, data=form, headers={**headers, "Referer": url}, allow_redirects=False, timeout=20)

    answers = [post(daphnes[n % 2], f"guess-{n}") for n in range(5)]

    assert [r.status_code for r in answers] == [200, 200, 200, 200, 429]
    locked = answers[4]
    assert int(locked.headers["Retry-After"]) == 15 * 60
    assert "Too many failed sign-in attempts" in locked.text and 'name="username"' in locked.text
    assert post(daphnes[1], PASSWORD).status_code == 429
