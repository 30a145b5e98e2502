"""The application's database user may read and write rows of its own database, nothing more.

A process that is taken over (a SQL injection, a stolen .env of a worker) cannot change the
schema, drop a table, grant itself more, or read another database on the server.
"""

from __future__ import annotations

import os

import MySQLdb
import pytest
from django.conf import settings

pytestmark = pytest.mark.django_db


PROBE = "passline_privilege_probe"


def _connect(user: str, password: str) -> MySQLdb.Connection:
    db = settings.DATABASES["default"]
    return MySQLdb.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 3306),
        user=user,
        password=password,
        database=os.environ["DB_NAME"],
        connect_timeout=5,
    )


@pytest.fixture
def app_cursor():
    if "DB_OWNER_USER" not in os.environ or os.environ["DB_OWNER_USER"] == os.environ["DB_USER"]:
        pytest.skip("this set-up has one database user (no DB_OWNER_USER)")
    # A table of the application's database (the suite itself runs on a test database), made by
    # the owner as a migration would make it.
    owner = _connect(os.environ["DB_OWNER_USER"], os.environ["DB_OWNER_PASSWORD"])
    owner.cursor().execute(f"CREATE TABLE IF NOT EXISTS {PROBE} (id INT PRIMARY KEY, note VARCHAR(20))")
    connection = _connect(os.environ["DB_USER"], os.environ["DB_PASSWORD"])
    try:
        yield connection.cursor()
    finally:
        connection.rollback()
        connection.close()
        owner.cursor().execute(f"DROP TABLE IF EXISTS {PROBE}")
        owner.close()


def test_the_application_reads_and_writes_rows(app_cursor) -> None:
    app_cursor.execute(f"INSERT INTO {PROBE} VALUES (1, 'written')")
    app_cursor.execute(f"UPDATE {PROBE} SET note = 'changed' WHERE id = 1")
    app_cursor.execute(f"SELECT note FROM {PROBE}")
    assert app_cursor.fetchone()[0] == "changed"
    app_cursor.execute(f"DELETE FROM {PROBE} WHERE id = 1")


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE passline_intruder (id INT)",
        f"DROP TABLE {PROBE}",
        f"ALTER TABLE {PROBE} ADD COLUMN intruder INT",
        f"TRUNCATE TABLE {PROBE}",
        f"CREATE INDEX intruder ON {PROBE} (note)",
        "CREATE DATABASE passline_intruder",
        "GRANT ALL PRIVILEGES ON *.* TO CURRENT_USER",
        "SELECT COUNT(*) FROM mysql.user",
    ],
)
def test_the_application_cannot_change_the_schema_or_its_rights(app_cursor, statement: str) -> None:
    with pytest.raises((MySQLdb.OperationalError, MySQLdb.ProgrammingError)) as refused:
        app_cursor.execute(statement)
    # 1044/1045/1142/1227/1410: access denied of one kind or another, never a syntax error
    assert refused.value.args[0] in {1044, 1045, 1142, 1227, 1410}, refused.value
