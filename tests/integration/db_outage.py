"""Helpers of the tests that lose the database in the middle of a request, on the real MariaDB.

A second connection of the application's own user KILLs the connection the request runs on
(MariaDB lets a user kill its own connections), exactly as a restart, a failover or an
operator's ``KILL`` would drop it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import closing, contextmanager

import MySQLdb
from django.conf import settings
from django.db import close_old_connections, connection

from tests.support import wait_until


def second_connection() -> MySQLdb.Connection:
    """A connection of the application's user to the test database, beside Django's."""
    db = settings.DATABASES["default"]
    return MySQLdb.connect(
        host=db["HOST"] or "127.0.0.1",
        port=int(db["PORT"] or 3306),
        user=db["USER"],
        password=db["PASSWORD"],
        database=db["NAME"],
        autocommit=True,
    )


def kill(connection_id: int) -> None:
    """KILL a MariaDB connection from a second one and wait until the server has dropped it."""
    with closing(second_connection()) as admin, admin.cursor() as cursor:
        cursor.execute(f"KILL CONNECTION {int(connection_id)}")

        def gone() -> bool:
            cursor.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", [connection_id])
            return cursor.fetchone()[0] == 0

        wait_until(gone, timeout=10, what=f"connection {connection_id} to be dropped")


@contextmanager
def connection_killed_before(statement: str) -> Iterator[list[int]]:
    """Kill this thread's database connection just before its first statement matching the
    regular expression ``statement`` (the test client runs the view on this thread), which
    then runs on a dead connection. Yields the ids killed (one at most).

    On leaving, the dead connection is closed as a server closes it at the end of every request
    (Django's ``request_finished``), which the test client skips to keep a test's transaction."""
    killed: list[int] = []

    def wrapper(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        if not killed and re.search(statement, sql):
            victim = context["connection"].connection.thread_id()
            kill(victim)
            killed.append(victim)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield killed
    close_old_connections()
