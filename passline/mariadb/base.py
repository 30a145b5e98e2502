"""Django's MySQL backend for a MariaDB primary with replicas (``ENGINE = "passline.mariadb"``).

With more than one server in the connection's ``HOSTS`` (settings.DB_HOSTS), a new connection
goes to the one that takes writes (``@@global.read_only = 0``), trying the primary found last
first. After a promotion a process needs no restart: its kept connection to the dead primary
fails its health check (CONN_HEALTH_CHECKS) or its query (the request answers 503, a batch goes
back to the queue), is dropped, and the next connection finds the new primary.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import MySQLdb as Database
from django.db.backends.mysql import base as mysql

from passline.mariadb.hosts import Host, NoPrimary, PrimaryFinder, parse_hosts

logger = logging.getLogger(__name__)

# MariaDB's client error "can't connect": what a request sees when no server takes writes,
# so that it answers 503 like any other unavailable database (passline.errors).
CR_CONN_HOST_ERROR = 2003

_finders: dict[tuple[Host, ...], PrimaryFinder[Any]] = {}
_finders_lock = threading.Lock()


def _writable(conn: Any) -> bool:
    with conn.cursor() as cursor:
        cursor.execute("SELECT @@global.read_only")
        return not int(cursor.fetchone()[0])


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Database.Error:
        pass


class CursorWrapper(mysql.CursorWrapper):
    """Django's MySQL cursor, which first turns the server's autocommit back on when a statement
    runs outside any transaction (see ``DatabaseWrapper._set_autocommit``)."""

    def __init__(self, cursor: Any, db: DatabaseWrapper) -> None:
        super().__init__(cursor)
        self.db = db

    def execute(self, query: Any, args: Any = None) -> Any:
        self.db.autocommit_before_statement()
        return super().execute(query, args)

    def executemany(self, query: Any, args: Any) -> Any:
        self.db.autocommit_before_statement()
        return super().executemany(query, args)


class DatabaseWrapper(mysql.DatabaseWrapper):
    """Also: autocommit switched on lazily.

    Django wraps every transaction in ``SET autocommit=0`` and, after the ``COMMIT``,
    ``SET autocommit=1``: two round trips to the server per transaction, a third of the
    statements of a worker that handles one message per transaction. Here turning autocommit
    on is only noted; it is sent before the next statement that runs outside a transaction,
    and if the next thing is another transaction, neither is sent: the server's autocommit is
    still off, and its first statement begins the transaction as ``SET autocommit=0`` would.
    Between the two, no transaction is open (the ``COMMIT`` or ``ROLLBACK`` ended it), so the
    server holds nothing. What the server has is read from the client library's status flags
    (``get_autocommit``: no round trip), never assumed.
    """

    def create_cursor(self, name: Any = None) -> CursorWrapper:
        return CursorWrapper(self.connection.cursor(), self)

    def _set_autocommit(self, autocommit: bool) -> None:
        if autocommit:
            return  # sent by autocommit_before_statement, if a statement comes before a transaction
        with self.wrap_database_errors:
            if self.connection.get_autocommit():
                self.connection.autocommit(False)

    def autocommit_before_statement(self) -> None:
        """Outside a transaction (Django's autocommit on), make the server's autocommit on too."""
        if self.autocommit and not self.in_atomic_block and not self.connection.get_autocommit():
            with self.wrap_database_errors:
                self.connection.autocommit(True)

    def hosts(self) -> list[Host]:
        configured = self.settings_dict.get("HOSTS") or []
        return parse_hosts(configured) if configured else []

    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        hosts = self.hosts()
        if len(hosts) <= 1:
            return super().get_new_connection(conn_params)
        key = tuple(hosts)
        with _finders_lock:
            finder = _finders.get(key)
            if finder is None:
                # One per process and set of hosts: every thread's connection starts from the
                # primary any of them found last.
                finder = _finders[key] = PrimaryFinder(hosts, writable=_writable, close=_close)
        previous = finder.order()[0]
        try:
            conn, host = finder.connect(lambda host: self._connect_to(host, conn_params))
        except NoPrimary as error:
            logger.warning("%s", error)
            raise Database.OperationalError(CR_CONN_HOST_ERROR, str(error)) from error
        if host != previous:
            logger.warning("database primary is now %s (was %s)", host, previous)
        return conn

    def _connect_to(self, host: Host, conn_params: dict[str, Any]) -> Any:
        params = {k: v for k, v in conn_params.items() if k != "unix_socket"}
        params.update(host=host.host, port=host.port)
        return super().get_new_connection(params)

    def is_usable(self) -> bool:
        """Alive, and after an error still the primary: a connection to a server fenced by a
        promotion (read-only, yet answering pings) is dropped instead of being kept to fail
        every write."""
        if not super().is_usable():
            return False
        if not self.errors_occurred or len(self.hosts()) <= 1:
            return True
        try:
            return _writable(self.connection)
        except Database.Error:
            return False
