"""``make run``'s supervisor: every Procfile process, a crashed one restarted, the others serving.

The whole stack as ``make run`` starts it (scripts/supervise.py, the real Procfile, two web
processes on one socket), on this test run's database, vhost and Redis prefix; ``kill -9`` of
workers, the relay and a web process.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

import pytest

from ordering.models import Order
from tests.e2e.conftest import BASE_DIR, _die_with_parent, free_port, tail
from tests.factories import WalletFactory
from tests.support import wait_until

pytestmark = pytest.mark.slow

PROCFILE = BASE_DIR / "Procfile"
WEB_PROCESSES = 2
# supervisorctl's names: the web is a group of processes sharing its socket.
WEB = [f"web:web-{index}" for index in range(WEB_PROCESSES)]


class Supervised:
    """scripts/supervise.py as ``make run`` runs it, and supervisorctl to look into it."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.env = env
        self.dir = directory
        self.conf = directory / "supervisord.conf"
        self.log_path = directory / "output.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(BASE_DIR / "scripts" / "supervise.py"), "--dir", str(self.dir), "--no-prometheus"],
                cwd=BASE_DIR,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

    def status(self) -> dict[str, tuple[str, int]]:
        """Program name -> (state, pid); pid 0 when not running."""
        result = subprocess.run(
            [str(Path(sys.executable).parent / "supervisorctl"), "-c", str(self.conf), "status"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
        programs = {}
        for line in result.stdout.splitlines():
            fields = line.split()
            if len(fields) >= 2:
                pid = int(fields[3].rstrip(",")) if len(fields) > 3 and fields[2] == "pid" else 0
                programs[fields[0]] = (fields[1], pid)
        return programs

    def all_running(self, names: set[str]) -> bool:
        status = self.status()
        return set(status) == names and all(state == "RUNNING" for state, _ in status.values())

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(timeout=10)

    def output(self) -> str:
        return tail(self.log_path, 80)


def _http(method: str, url: str, body: dict | None = None, token: str = "", key: str = "") -> tuple[int, dict]:
    request = urllib.request.Request(url, method=method, data=json.dumps(body).encode() if body is not None else None)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if key:
        request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return 0, {}


@contextmanager
def supervised_stack(env: dict[str, str], broker_url: str, tmp_path: Path) -> Iterator[tuple[Supervised, str]]:
    """The Procfile under the real supervisor on ``broker_url``, every process running and
    /healthz answering; stopped on the way out."""
    port = free_port()
    env = {
        **env,
        "RABBITMQ_URL": broker_url,
        "PASSLINE_PORT": str(port),
        "PASSLINE_HOST": "127.0.0.1",
        "WEB_PROCESSES": str(WEB_PROCESSES),
        # the stack's metric files of its own (supervise.py empties them at start)
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
    }
    supervised = Supervised(env, tmp_path)
    supervised.start()
    url = f"http://127.0.0.1:{port}"
    names = {line.split(":", 1)[0] for line in PROCFILE.read_text().splitlines() if ":" in line} - {"web"}
    names |= set(WEB)
    try:
        try:
            wait_until(
                lambda: supervised.all_running(names) and _http("GET", f"{url}/healthz")[0] == 200,
                timeout=90,
                interval=0.5,
                what="every Procfile process running and /healthz answering",
            )
        except AssertionError as error:
            raise AssertionError(f"{error}\n{supervised.status()}\n{supervised.output()}") from None
        yield supervised, url
    finally:
        supervised.stop()


@pytest.fixture
def stack(e2e_env, e2e_db, bus, tmp_path) -> Iterator[tuple[Supervised, str]]:
    with supervised_stack(e2e_env, bus, tmp_path) as running:
        yield running


def _place_and_await_paid(url: str, token: str, dish_id: int, restaurant_id: int, key: str) -> int:
    body = {
        "restaurant_id": restaurant_id,
        "items": [{"menu_item_id": dish_id, "quantity": 1}],
        "delivery_address": "1 Test Street",
    }
    status, order = wait_until(
        lambda: (lambda answer: answer if answer[0] == 201 else None)(
            _http("POST", f"{url}/api/v1/orders", body, token=token, key=key)
        ),
        timeout=30,
        interval=0.5,
        what="the web server to take an order",
    )
    assert status == 201
    wait_until(
        lambda: Order.objects.get(pk=order["id"]).status == "paid",
        timeout=60,
        interval=0.2,
        what=f"order {order['id']} to be paid",
    )
    return order["id"]


def test_a_killed_process_is_restarted_and_the_others_keep_serving(stack, customer, password, menu) -> None:
    supervised, url = stack
    pizza = menu["pizza"]
    WalletFactory(user=customer, balance="100.00")
    status, answer = _http("POST", f"{url}/api/v1/auth/token", {"username": customer.username, "password": password})
    assert status == 200, answer
    token = answer["token"]

    # given the stack takes and pays an order
    first = _place_and_await_paid(url, token, pizza.pk, pizza.category.restaurant_id, "supervision-1")
    before = supervised.status()

    # when billing, the relay and one web process are killed outright
    killed = ("billing", "relay", WEB[0])
    for name in killed:
        subprocess.run(["kill", "-9", str(before[name][1])], check=True)

    # then the other web process serves the shared socket at once
    assert all(_http("GET", f"{url}/healthz")[0] == 200 for _ in range(5))

    # and each killed one comes back with a new pid, and every other process kept its own
    def restarted() -> bool:
        now = supervised.status()
        return all(now[name][0] == "RUNNING" and now[name][1] != before[name][1] for name in killed)

    try:
        wait_until(restarted, timeout=60, interval=0.5, what="billing, relay and the web process restarted")
    except AssertionError as error:
        raise AssertionError(f"{error}\n{supervised.status()}\n{supervised.output()}") from None
    after = supervised.status()
    untouched = set(before) - set(killed)
    assert {name: after[name] for name in untouched} == {name: before[name] for name in untouched}
    assert "exited: billing (terminated by SIGKILL; not expected)" in supervised.output()

    # and the restarted stack takes and pays the next order, the first one paid once
    second = _place_and_await_paid(url, token, pizza.pk, pizza.category.restaurant_id, "supervision-2")
    assert second != first

    # and so it goes for every other process of the Procfile, killed all at once
    for name in untouched:
        subprocess.run(["kill", "-9", str(after[name][1])], check=True)
    try:
        wait_until(
            lambda: all(
                state == "RUNNING" and pid != after[name][1]
                for name, (state, pid) in supervised.status().items()
                if name in untouched
            ),
            timeout=60,
            interval=0.5,
            what="every other process restarted",
        )
    except AssertionError as error:
        raise AssertionError(f"{error}\n{supervised.status()}\n{supervised.output()}") from None
    third = _place_and_await_paid(url, token, pizza.pk, pizza.category.restaurant_id, "supervision-3")
    assert len({first, second, third}) == 3
    from billing.models import Wallet

    assert Wallet.objects.get(user=customer).balance == Decimal("100.00") - 3 * pizza.price


def test_stopping_the_supervisor_stops_every_process(stack) -> None:
    supervised, _ = stack
    pids = [pid for _, pid in supervised.status().values()]
    assert supervised.stop() == 0

    def gone(pid: int) -> bool:
        try:
            Path(f"/proc/{pid}").stat()
        except FileNotFoundError:
            return True
        return "Z" in Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[:1]

    assert all(gone(pid) for pid in pids)
