"""Two checkouts on one machine: the second one's set-up never breaks the first one's stack.

scripts/setup.sh runs for real in a second checkout (its own directory and .env; this
checkout's virtualenv lent to it) against the machine's MariaDB.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import MySQLdb
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _root_sql(sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mariadb", "-uroot", "-e", sql], capture_output=True, text=True, timeout=60, check=False)


def _can_log_in(user: str, password: str, database: str) -> bool:
    db = settings.DATABASES["default"]
    try:
        MySQLdb.connect(
            host=db["HOST"] or "127.0.0.1",
            port=int(db["PORT"] or 3306),
            user=user,
            password=password,
            database=database,
            connect_timeout=5,
        ).close()
        return True
    except MySQLdb.OperationalError:
        return False


def _dotenv(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#")
    )


@pytest.fixture
def second_checkout(tmp_path: Path):
    """A second checkout: its own directory and set-up script, no .env yet."""
    if _root_sql("SELECT 1").returncode != 0:
        pytest.skip("MariaDB's root cannot log in over the local socket here, so scripts/setup.sh cannot run")
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", tmp_path / "scripts" / "setup.sh")
    for requirements in ("requirements.txt", "requirements-dev.txt"):
        shutil.copy(ROOT / requirements, tmp_path / requirements)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    created: list[dict[str, str]] = []
    yield tmp_path, created
    ours = {settings.DATABASES["default"]["USER"], os.environ.get("DB_USER"), os.environ.get("DB_OWNER_USER")}
    for names in created:
        for user in (names.get("DB_USER"), names.get("DB_OWNER_USER")):
            if user and user not in ours:
                _root_sql(f"DROP USER IF EXISTS '{user}'@'localhost', '{user}'@'127.0.0.1';")
        if names.get("DB_NAME") and names["DB_NAME"] != settings.DATABASES["default"]["NAME"].removeprefix("test_"):
            _root_sql(f"DROP DATABASE IF EXISTS `{names['DB_NAME']}`;")


def _setup(checkout: Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": str(checkout)}
    return subprocess.run(
        ["bash", "scripts/setup.sh", "test"],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_second_checkout_gets_names_of_its_own_and_this_one_keeps_working(second_checkout) -> None:
    checkout, created = second_checkout
    ours = settings.DATABASES["default"]
    our_database = ours["NAME"].removeprefix("test_")  # the test run is on the checkout's test database

    # when a second checkout of the project is set up on the same machine
    result = _setup(checkout)
    names = _dotenv(checkout / ".env")
    created.append(names)
    assert result.returncode == 0, result.stdout + result.stderr

    # then it has a database user, a database, a vhost and Redis keys of its own
    assert names["DB_USER"] != ours["USER"] and names["DB_NAME"] != our_database
    assert names["RABBITMQ_URL"] != settings.RABBITMQ_URL
    assert names["REDIS_PREFIX"] not in {"passline", settings.REDIS_PREFIX}
    assert _can_log_in(names["DB_USER"], names["DB_PASSWORD"], names["DB_NAME"])
    assert _can_log_in(names["DB_OWNER_USER"], names["DB_OWNER_PASSWORD"], names["DB_NAME"])
    # and the application's user may only read and write rows; the owner may change the schema
    app_grants = _root_sql(f"SHOW GRANTS FOR '{names['DB_USER']}'@'127.0.0.1'").stdout
    assert "GRANT SELECT, INSERT, UPDATE, DELETE ON `" + names["DB_NAME"] + "`.*" in app_grants
    assert "ALL PRIVILEGES" not in app_grants and "test" not in app_grants
    owner_grants = _root_sql(f"SHOW GRANTS FOR '{names['DB_OWNER_USER']}'@'127.0.0.1'").stdout
    assert "GRANT ALL PRIVILEGES ON `" + names["DB_NAME"] + "`.*" in owner_grants
    # and this checkout's users still log in with this checkout's passwords
    assert _can_log_in(ours["USER"], ours["PASSWORD"], ours["NAME"])
    assert _can_log_in(os.environ["DB_USER"], os.environ["DB_PASSWORD"], os.environ["DB_NAME"])

    # and a second run changes nothing
    again = _setup(checkout)
    assert again.returncode == 0, again.stdout + again.stderr
    assert _dotenv(checkout / ".env") == names


def test_a_checkout_that_names_an_existing_user_never_resets_its_password(second_checkout) -> None:
    checkout, _ = second_checkout
    ours = settings.DATABASES["default"]

    # given a checkout whose .env names this checkout's database users with other passwords
    (checkout / ".env").write_text(
        f"DB_NAME={ours['NAME'].removeprefix('test_')}\nDB_USER={os.environ['DB_USER']}\nDB_PASSWORD=not-the-password\n"
        f"DB_OWNER_USER={ours['USER']}\nDB_OWNER_PASSWORD=not-the-password-either\nSECRET_KEY=x\n"
    )

    # when it is set up
    result = _setup(checkout)

    # then the set-up stops and says why, and the user's password is the one it was
    assert result.returncode != 0
    assert "exists with another password" in result.stderr
    assert _can_log_in(ours["USER"], ours["PASSWORD"], ours["NAME"])
    assert _can_log_in(os.environ["DB_USER"], os.environ["DB_PASSWORD"], os.environ["DB_NAME"])
    # and the application's user lost none of its privileges to the stranger's set-up
    grants = _root_sql(f"SHOW GRANTS FOR '{os.environ['DB_USER']}'@'127.0.0.1'").stdout
    assert "SELECT, INSERT, UPDATE, DELETE" in grants
