"""Which database errors are a brief outage (503, retry) and which are bugs (500)."""

from __future__ import annotations

import pytest
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, ProgrammingError

from passline.errors import database_unavailable


@pytest.mark.parametrize(
    "error",
    [
        OperationalError(2006, "Server has gone away"),
        OperationalError(2013, "Lost connection to server during query"),
        OperationalError(2003, "Can't connect to server on '127.0.0.1'"),
        OperationalError(1927, "Connection was killed"),
        OperationalError(1053, "Server shutdown in progress"),
        OperationalError(1040, "Too many connections"),
        OperationalError(1205, "Lock wait timeout exceeded; try restarting transaction"),
        OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction"),
        InterfaceError(0, ""),
    ],
)
def test_a_lost_connection_or_a_lock_given_up_is_unavailable(error):
    assert database_unavailable(error)


@pytest.mark.parametrize(
    "error",
    [
        OperationalError(1054, "Unknown column 'x' in 'field list'"),
        OperationalError("no number"),
        OperationalError(),
        ProgrammingError(1064, "You have an error in your SQL syntax"),
        IntegrityError(1062, "Duplicate entry"),
        DataError(1406, "Data too long"),
        ValueError("not a database error"),
        None,
    ],
)
def test_anything_else_is_not(error):
    assert not database_unavailable(error)
