"""Shared plumbing of the benchmarks: an isolated database and vhost, child processes, results."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"


def _checkout_db_name() -> str:
    """This checkout's database name, from the environment or .env as the settings read it."""
    if os.environ.get("DB_NAME"):
        return os.environ["DB_NAME"]
    dotenv = ROOT / ".env"
    lines = dotenv.read_text().splitlines() if dotenv.exists() else []
    names = [line.split("=", 1)[1].strip() for line in lines if line.startswith("DB_NAME=")]
    return names[-1] if names else "passline"


# Inside the app user's grant on test_<its database>*. Child processes inherit the name.
BENCH_DB = os.environ.get("BENCH_DB_NAME") or f"test_{_checkout_db_name()}_bench"
BENCH_VHOST = "passline-bench"


def bench_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DB_TEST_NAME"}
    env.update(
        PASSLINE_ENV="development",
        # The benchmark creates and migrates its own database: the owner's privileges.
        PASSLINE_DB_OWNER="1",
        DB_NAME=BENCH_DB,
        BENCH_DB_NAME=BENCH_DB,
        LOG_LEVEL="WARNING",
        PYTHONUNBUFFERED="1",
        PASSLINE_EXTRA_CONSUMER_MODULES="bench.consumers",
        RABBITMQ_URL=bench_rabbitmq_url(),
        # Every benchmark client connects from loopback: no per-address socket cap.
        LIVE_MAX_SOCKETS_PER_ADDRESS="0",
        BUS_ROLES="0",  # the bench vhost has guest, not the checkout's role users
    )
    env.update(extra)
    return env


def bench_rabbitmq_url() -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{BENCH_VHOST}"


_lock = None
LOCK_PATH = Path(tempfile.gettempdir()) / "passline-bench.lock"


def one_run_at_a_time() -> None:
    """Wait for any other benchmark on this machine to end, whichever checkout it runs from:
    they share the benchmark's vhost and database and the machine's cores, and would spoil
    each other's figures. The lock goes with this process (a crashed run leaves none)."""
    global _lock
    _lock = open(LOCK_PATH, "a")
    try:
        fcntl.flock(_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for another benchmark on this machine to end ({LOCK_PATH})", flush=True)
        fcntl.flock(_lock, fcntl.LOCK_EX)


def prepare() -> None:
    """Create the bench vhost and database (idempotent) and point this process at them."""
    one_run_at_a_time()
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([ctl, "add_vhost", BENCH_VHOST], capture_output=True, timeout=60)
    subprocess.run(
        [ctl, "set_permissions", "-p", BENCH_VHOST, "guest", ".*", ".*", ".*"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    os.environ.update(bench_env())
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "passline.settings")
    import django

    _create_database()
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def _create_database() -> None:
    import MySQLdb

    from passline import settings as s

    db = s.DATABASES["default"]
    connection = MySQLdb.connect(host=db["HOST"], port=int(db["PORT"]), user=db["USER"], password=db["PASSWORD"])
    try:
        connection.cursor().execute(f"CREATE DATABASE IF NOT EXISTS `{BENCH_DB}` CHARACTER SET utf8mb4")
    finally:
        connection.close()


def clean_redis(prefix: str) -> None:
    """Delete every Redis key under a benchmark's own prefix (channel layer, cache, hints)."""
    from bus import redis_clients

    client = redis_clients.client()
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()


def spawn(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=bench_env(**env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def wrk_binary() -> str:
    binary = shutil.which("wrk")
    if binary is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk); `make bench` installs it")
    return binary


def wait_for(predicate, timeout: float, what: str, interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"benchmark gave up waiting for {what} after {timeout:g} s")
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def machine() -> dict[str, object]:
    import django
    import pika

    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "django": django.get_version(),
        "pika": pika.__version__,
        "mariadb": _version(["mariadb", "--version"]),
        "rabbitmq": _rabbit_version(),
    }


def _version(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.strip()
    except OSError:
        return "unknown"


def _rabbit_version() -> str:
    out = _version([shutil.which("rabbitmqctl") or "rabbitmqctl", "version"])
    return out.splitlines()[-1] if out else "unknown"


def save(name: str, figures: dict[str, object], settings: dict[str, object]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%d")
    path = RESULTS / f"{stamp}-{name}.json"
    path.write_text(
        json.dumps(
            {
                "benchmark": name,
                "at": datetime.now(UTC).isoformat(),
                "machine": machine(),
                "settings": settings,
                "figures": figures,
            },
            indent=2,
        )
    )
    return path


def table(rows: list[tuple[str, str]]) -> str:
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k.ljust(width)}  {v}" for k, v in rows)


median = statistics.median
new_id = lambda: uuid.uuid4().hex  # noqa: E731
