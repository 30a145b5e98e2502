"""Promotion of a MariaDB replica to primary, and re-joining a former primary as its replica.

Both act over an administrative connection (settings.DB_ADMIN_USER) and refuse, changing
nothing, whenever going on could lose an acknowledged transaction: a target that is not a
replica, a replica stopped on an error, one that has not applied everything it received. The
application needs no step of its own: its connections find the writable server by themselves
(passline.mariadb.base).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any

import MySQLdb
from MySQLdb.cursors import DictCursor

from passline.mariadb.hosts import Host

logger = logging.getLogger(__name__)

# Seconds to wait for a server that may be dead: the old primary when fencing it.
PROBE_TIMEOUT = 2


class ReplicationRefused(Exception):
    """The step would risk acknowledged data or cannot be done; nothing was changed."""


@dataclass(frozen=True)
class Admin:
    """Credentials of an account allowed to manage replication and read_only."""

    user: str
    password: str

    @contextmanager
    def connect(self, host: Host, *, timeout: int = 5) -> Iterator[MySQLdb.Connection]:
        with closing(_open(host, self, timeout=timeout)) as conn:
            yield conn


def _rows(conn: MySQLdb.Connection, statement: str, params: Any = None) -> list[dict[str, Any]]:
    with conn.cursor(DictCursor) as cursor:
        cursor.execute(statement, params)
        return list(cursor.fetchall())


def _value(conn: MySQLdb.Connection, statement: str, params: Any = None) -> Any:
    with conn.cursor() as cursor:
        cursor.execute(statement, params)
        row = cursor.fetchone()
        return row[0] if row else None


def replica_status(conn: MySQLdb.Connection) -> dict[str, Any] | None:
    """SHOW SLAVE STATUS of the default connection, or None when the server replicates nothing."""
    rows = _rows(conn, "SHOW SLAVE STATUS")
    return rows[0] if rows else None


def _kill_client_connections(conn: MySQLdb.Connection) -> int:
    """Drop every client connection but this one (and the server's own threads, and replicas'
    binlog dumps): a fenced server's clients reconnect and so find the new primary."""
    ids = [
        row["ID"]
        for row in _rows(
            conn,
            "SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()"
            " AND USER NOT IN ('system user', 'event_scheduler') AND COMMAND NOT IN ('Daemon', 'Binlog Dump')",
        )
    ]
    for thread_id in ids:
        try:
            _value(conn, f"KILL CONNECTION {int(thread_id)}")
        except MySQLdb.OperationalError:
            pass  # gone by itself meanwhile
    return len(ids)


def fence(conn: MySQLdb.Connection) -> None:
    """Make a server refuse the application's writes, and cut off the clients it has."""
    _value(conn, "SET GLOBAL read_only = 1")
    killed = _kill_client_connections(conn)
    logger.warning("fenced the old primary: read_only on, %d client connections dropped", killed)


@dataclass(frozen=True)
class Promotion:
    primary: Host
    gtid_position: str
    old_primary: Host
    old_primary_fenced: bool
    waited_seconds: float


def promote(replica: Host, *, admin: Admin, old_primary: Host | None = None, timeout: float = 60) -> Promotion:
    """Make ``replica`` the primary once it has applied every transaction it received.

    With the old primary still reachable (a planned switch-over) it is fenced first and the
    replica waits for the old primary's last transaction; else the replica waits for the last
    transaction its I/O thread received, which, replication being semi-synchronous, every
    acknowledged commit is part of.
    """
    started = time.monotonic()
    try:
        conn = _open(replica, admin, timeout=5)
    except MySQLdb.Error as error:
        raise ReplicationRefused(f"{replica} cannot be reached: {error}") from error
    with closing(conn):
        status = replica_status(conn)
        if status is None:
            writable = not int(_value(conn, "SELECT @@global.read_only"))
            raise ReplicationRefused(
                f"{replica} is not a replica (no replication configured)"
                + ("; it already takes writes." if writable else ".")
            )
        if status["Last_SQL_Errno"]:
            raise ReplicationRefused(
                f"{replica} stopped applying on error {status['Last_SQL_Errno']}: {status['Last_SQL_Error']}; "
                "promoting it would lose what follows. Repair replication first."
            )
        old = old_primary or Host(status["Master_Host"], int(status["Master_Port"]))
        old_conn = _reach(old, admin)
        fenced = False
        try:
            if old_conn is not None:
                fence(old_conn)
                fenced = True
                position = str(_value(old_conn, "SELECT @@global.gtid_binlog_pos"))
                source = f"the old primary's last transaction {position or '(none)'}"
            else:
                _value(conn, "STOP SLAVE IO_THREAD")
                position = str(replica_status(conn)["Gtid_IO_Pos"])  # type: ignore[index]
                source = f"the last transaction received {position or '(none)'}"
            if status["Slave_SQL_Running"] != "Yes":
                _value(conn, "START SLAVE SQL_THREAD")
            logger.warning("promoting %s: waiting for it to apply %s", replica, source)
            left = max(1, int(timeout - (time.monotonic() - started)))
            if position and _value(conn, "SELECT MASTER_GTID_WAIT(%s, %s)", [position, left]) != 0:
                applied = _value(conn, "SELECT @@global.gtid_slave_pos")
                raise ReplicationRefused(
                    f"{replica} has not applied {source} within {timeout:g} s (it is at {applied}); nothing was promoted."
                )
        except BaseException:
            # Leave everything as it was: replication going, the old primary taking writes.
            if old_conn is None:
                _quietly(conn, "START SLAVE IO_THREAD")
            elif fenced:
                _quietly(old_conn, "SET GLOBAL read_only = 0")
            raise
        finally:
            if old_conn is not None:
                old_conn.close()
        _value(conn, "STOP SLAVE")
        _value(conn, "RESET SLAVE ALL")
        _value(conn, "SET GLOBAL read_only = 0")
        gtid = str(_value(conn, "SELECT @@global.gtid_binlog_pos"))
    promotion = Promotion(replica, gtid, old, fenced, round(time.monotonic() - started, 3))
    logger.warning(
        "promoted %s to primary at %s (old primary %s %s) in %.2f s",
        replica,
        gtid,
        old,
        "fenced" if fenced else "unreachable: fence it before it comes back",
        promotion.waited_seconds,
    )
    return promotion


def _open(host: Host, admin: Admin, *, timeout: int) -> MySQLdb.Connection:
    return MySQLdb.connect(
        host=host.host,
        port=host.port,
        user=admin.user,
        password=admin.password,
        autocommit=True,
        connect_timeout=timeout,
    )


def _reach(host: Host, admin: Admin) -> MySQLdb.Connection | None:
    try:
        return _open(host, admin, timeout=PROBE_TIMEOUT)
    except MySQLdb.Error as error:
        logger.warning("old primary %s is not reachable: %s", host, error)
        return None


def _quietly(conn: MySQLdb.Connection, statement: str) -> None:
    try:
        _value(conn, statement)
    except MySQLdb.Error:
        logger.exception("could not undo with %s", statement)


def rejoin(
    server: Host,
    *,
    primary: Host,
    admin: Admin,
    replication_user: str,
    replication_password: str,
    timeout: float = 60,
) -> str:
    """Make ``server`` (a former primary) a read-only replica of ``primary``, from its own
    history on; returns the position it has caught up to.

    A former primary that committed transactions its replica never received (the ones in
    flight when it died, never acknowledged) has a history the new primary lacks:
    replication refuses it (error 1236), and so does this. Such a server rejoins after a
    restart with ``--init-rpl-role=SLAVE``, which truncates those, or from a fresh copy.
    """
    with admin.connect(primary) as new:
        if int(_value(new, "SELECT @@global.read_only")):
            raise ReplicationRefused(f"{primary} is read-only: it is not the primary.")
        if replica_status(new) is not None:
            raise ReplicationRefused(f"{primary} is itself a replica: promote it first.")
        target = str(_value(new, "SELECT @@global.gtid_binlog_pos"))
    with admin.connect(server) as conn:
        fence(conn)
        _value(conn, "STOP SLAVE")
        # Its own binary log is its history: replication continues right after it.
        _value(conn, "SET GLOBAL gtid_slave_pos = @@global.gtid_binlog_pos")
        _value(
            conn,
            "CHANGE MASTER TO MASTER_HOST = %s, MASTER_PORT = %s, MASTER_USER = %s, MASTER_PASSWORD = %s,"
            " MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
            [primary.host, primary.port, replication_user, replication_password],
        )
        _value(conn, "START SLAVE")
        deadline = time.monotonic() + timeout
        while True:
            status = replica_status(conn) or {}
            if status.get("Last_IO_Errno") or status.get("Last_SQL_Errno"):
                _quietly(conn, "STOP SLAVE")
                raise ReplicationRefused(
                    f"{server} cannot replicate from {primary}: "
                    f"{status.get('Last_IO_Error') or status.get('Last_SQL_Error')}. If it holds transactions "
                    "the new primary lacks, restart it with --init-rpl-role=SLAVE or copy it afresh."
                )
            if target == "" or _value(conn, "SELECT MASTER_GTID_WAIT(%s, 1)", [target]) == 0:
                break
            if time.monotonic() > deadline:
                raise ReplicationRefused(f"{server} has not caught up to {target} within {timeout:g} s.")
    logger.warning("%s now replicates from %s, caught up to %s", server, primary, target)
    return target
