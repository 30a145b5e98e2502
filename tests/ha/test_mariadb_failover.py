"""The MariaDB primary killed while orders are placed: the replica is promoted with
``manage.py db_promote``, the application (never restarted) finds it by itself, and no order
whose placement was acknowledged is lost. Then the old primary comes back and re-joins as a
replica of the new one with ``manage.py db_rejoin``.

Everything runs on two private servers (tests/servers/mariadb.py); the application (a daphne,
the migrations, the promotion) runs in child processes whose environment names both
(DB_HOSTS)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.servers.mariadb import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    REPLICATION_PASSWORD,
    REPLICATION_USER,
    ReplicatedMariaDB,
    replicated_mariadb_running,
)
from tests.support import free_port, wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
DB_NAME = "passline_failover"
DB_USER = "passline_failover"
DB_PASSWORD = "failover-test-only"
PREFIX = "passline-test-mariadb-failover"
# Orders acknowledged before the kill, and after the promotion, before the test stops.
BEFORE = 40
AFTER = 40


def app_env(pair: ReplicatedMariaDB) -> dict[str, str]:
    """The application's environment: both private servers, nothing of the shared database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DB_")}
    env.update(
        PASSLINE_ENV="test",
        DB_NAME=DB_NAME,
        DB_USER=DB_USER,
        DB_PASSWORD=DB_PASSWORD,
        DB_OWNER_USER="",  # the one user migrates too
        DB_HOST=str(pair.primary).split(":")[0],
        DB_PORT=str(pair.primary.port),
        DB_HOSTS=pair.hosts,
        DB_CONNECT_TIMEOUT="2",
        DB_ADMIN_USER=ADMIN_USER,
        DB_ADMIN_PASSWORD=ADMIN_PASSWORD,
        DB_REPLICATION_USER=REPLICATION_USER,
        DB_REPLICATION_PASSWORD=REPLICATION_PASSWORD,
        REDIS_PREFIX=PREFIX,
        CACHE_PREFIX=PREFIX,
        CHANNELS_PREFIX=PREFIX,
        LOG_FORMAT="text",
        PYTHONUNBUFFERED="1",
    )
    return env


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def answers(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def acknowledged(path: Path, since: float = 0.0) -> list[dict[str, Any]]:
    return [a for a in answers(path) if a["status"] == 201 and a["t"] >= since]


def serving(url: str, web: subprocess.Popen[bytes]) -> bool:
    assert web.poll() is None, "daphne exited"
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def text(value: str | bytes | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


@pytest.fixture
def pair():
    with replicated_mariadb_running() as servers:
        yield servers


def test_primary_killed_then_promoted_loses_no_acknowledged_order(pair: ReplicatedMariaDB, tmp_path: Path) -> None:
    # given: the schema on the primary, and a client placing orders through the API
    pair.create_database(DB_NAME, DB_USER, DB_PASSWORD)
    env = app_env(pair)
    migrated = manage(env, "migrate", "--no-input", timeout=600)
    assert migrated.returncode == 0, migrated.stderr
    stop, out, log = tmp_path / "stop", tmp_path / "answers.jsonl", tmp_path / "client.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    daphne = [
        str(Path(sys.executable).parent / "daphne"),
        "-b",
        "127.0.0.1",
        "-p",
        str(port),
        "passline.asgi:application",
    ]
    with (tmp_path / "daphne.log").open("w") as daphne_log:
        web = subprocess.Popen(daphne, cwd=ROOT, env=env, stdout=daphne_log, stderr=subprocess.STDOUT)
    wait_until(lambda: serving(url, web), timeout=60, what="daphne to answer /healthz")
    with out.open("w") as stdout, log.open("w") as stderr:
        client = subprocess.Popen(
            [sys.executable, "-m", "tests.ha.mariadb_orders", url, str(stop)],
            cwd=ROOT,
            env=env,
            stdout=stdout,
            stderr=stderr,
        )
    try:
        wait_until(lambda: len(acknowledged(out)) >= BEFORE, timeout=120, what=f"{BEFORE} orders placed")

        # when: the primary dies (kill -9) and the replica is promoted
        pair.kill_primary()
        killed_at = time.time()
        promoted = manage(env, "db_promote", "--replica", str(pair.replica), "--timeout", "30")
        promoted_at = time.time()
        assert promoted.returncode == 0, promoted.stderr

        # then: the same client process goes on placing orders, on the new primary
        wait_until(
            lambda: len(acknowledged(out, since=promoted_at)) >= AFTER,
            timeout=120,
            what=f"{AFTER} orders placed after the promotion",
        )
    finally:
        stop.touch()
        try:
            client.wait(timeout=60)
        finally:
            for process in (client, web):
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
    assert client.returncode == 0, log.read_text()[-5000:]

    # and: every order whose placement was acknowledged is on the new primary, each once
    acked = {a["key"]: a["id"] for a in acknowledged(out)}
    rows = pair.replica.sql(f"SELECT id, idempotency_key FROM `{DB_NAME}`.ordering_order")
    stored = {text(r["idempotency_key"]): r["id"] for r in rows}
    lost = {key: order_id for key, order_id in acked.items() if stored.get(key) != order_id}
    assert not lost, f"acknowledged orders missing on the new primary: {lost}"
    assert len(rows) == len(stored)

    first_after = min(a["t"] for a in acknowledged(out, since=killed_at))
    unavailable = sum(1 for a in answers(out) if a["status"] == 503)
    # 503 in the contract's shape while no server takes writes; nothing else (a 500 would be a bug)
    others = [a for a in answers(out) if a["status"] not in (201, 503)]
    assert all(a["error"]["code"] == "unavailable" for a in answers(out) if a["status"] == 503)
    assert not others, others
    print(
        f"\nMariaDB failover: {len(acked)} orders acknowledged, 0 lost; first order on the new primary "
        f"{first_after - killed_at:.2f} s after the kill -9 (db_promote ran {promoted_at - killed_at:.2f} s, "
        f"most of it starting Django); {unavailable} answers 503 meanwhile"
    )
    print(promoted.stdout.strip())

    # when: the old primary comes back, as a replica (a transaction it had written but never got
    # acknowledged by the replica is truncated at start-up), and re-joins the new primary
    pair.primary.start("--init-rpl-role=SLAVE", "--read-only=ON")
    rejoined = manage(env, "db_rejoin", "--server", str(pair.primary), "--primary", str(pair.replica))
    assert rejoined.returncode == 0, rejoined.stderr

    # then: it has every order, and goes on replicating what the new primary writes
    orders = f"SELECT id FROM `{DB_NAME}`.ordering_order ORDER BY id"
    assert pair.primary.sql(orders) == pair.replica.sql(orders)
    pair.replica.sql(f"CREATE TABLE `{DB_NAME}`.after_rejoin (id INT PRIMARY KEY)")
    wait_until(
        lambda: pair.primary.sql(f"SHOW TABLES FROM `{DB_NAME}` LIKE 'after_rejoin'"),
        timeout=30,
        what="a write on the new primary to reach the re-joined server",
    )
    assert pair.primary.value("SELECT @@global.read_only") == 1
    print(rejoined.stdout.strip())
