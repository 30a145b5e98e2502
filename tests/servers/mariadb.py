"""Private MariaDB servers for fault tests: one server, or a primary with a semi-synchronous
GTID replica that a test may kill, promote and re-join.

Each server is ``mariadbd`` on a free port of loopback with its own data directory, socket and
pid file, configured by docker/mariadb/replication.cnf like the compose ``ha`` profile. The
machine's MariaDB (port 3306) is never touched.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import MySQLdb
import pytest

from tests.support import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
REPLICATION_CNF = ROOT / "docker" / "mariadb" / "replication.cnf"

ADMIN_USER = "passline_admin"
ADMIN_PASSWORD = "admin-test-only"
REPLICATION_USER = "replicator"
REPLICATION_PASSWORD = "replicator-test-only"


class PrivateMariaDB:
    """A ``mariadbd`` child process with a data directory of its own, run as root."""

    def __init__(self, name: str, *, server_id: int, read_only: bool = False) -> None:
        self.name = name
        self.dir = Path(tempfile.mkdtemp(prefix=f"passline-mariadb-{name}-"))
        self.port = free_port()
        self.socket = self.dir / "mariadb.sock"
        self.log_path = self.dir / "error.log"
        self.proc: subprocess.Popen[bytes] | None = None
        (self.dir / "data").mkdir()
        (self.dir / "my.cnf").write_text(
            f"!include {REPLICATION_CNF}\n"
            "[mariadb]\n"
            f"datadir = {self.dir / 'data'}\n"
            f"socket = {self.socket}\n"
            f"pid_file = {self.dir / 'mariadb.pid'}\n"
            f"log_error = {self.log_path}\n"
            f"port = {self.port}\n"
            "bind_address = 127.0.0.1\n"
            f"server_id = {server_id}\n"
            f"read_only = {'ON' if read_only else 'OFF'}\n"
            "skip_name_resolve = ON\n"
            "character_set_server = utf8mb4\n"
            "collation_server = utf8mb4_unicode_ci\n"
            # Small: two of these share a two-core test machine with everything else.
            "innodb_buffer_pool_size = 64M\n"
            "innodb_log_file_size = 32M\n"
            "performance_schema = OFF\n"
        )
        subprocess.run(
            [
                "mariadb-install-db",
                f"--defaults-file={self.dir / 'my.cnf'}",
                "--user=root",
                "--auth-root-authentication-method=socket",
                "--skip-test-db",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __str__(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, *args: str) -> None:
        """Start (or start again, on the same data) with extra server options ``args``."""
        self.proc = subprocess.Popen(
            ["mariadbd", f"--defaults-file={self.dir / 'my.cnf'}", "--user=root", *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self.answers, timeout=60, interval=0.1, what=f"the private MariaDB {self.name} on {self}")

    def answers(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            raise AssertionError(f"the private MariaDB {self.name} exited; its log:\n{self.log()}")
        try:
            self.root().close()
        except MySQLdb.Error:
            return False
        return True

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def root(self) -> MySQLdb.Connection:
        """An administrative connection (root over the socket, as the OS user root)."""
        return MySQLdb.connect(unix_socket=str(self.socket), user="root", autocommit=True, connect_timeout=2)

    def sql(self, statement: str, params: Any = None) -> list[dict[str, Any]]:
        """Run one statement as root; its rows as dicts."""
        conn = self.root()
        try:
            with conn.cursor(MySQLdb.cursors.DictCursor) as cursor:
                cursor.execute(statement, params)
                return list(cursor.fetchall())
        finally:
            conn.close()

    def value(self, statement: str) -> Any:
        rows = self.sql(statement)
        return next(iter(rows[0].values())) if rows else None

    def status(self, name: str) -> str:
        """A global status variable's value (``Rpl_semi_sync_master_status``, ...)."""
        return str(self.sql("SHOW GLOBAL STATUS LIKE %s", [name])[0]["Value"])

    def kill(self) -> None:
        """SIGKILL, as when its machine dies: no flush, no goodbye to clients or replicas."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class ReplicatedMariaDB:
    """A primary and its semi-synchronous GTID replica, both private.

    Both have an administrative account (``ADMIN_USER``, for db_promote and db_rejoin over TCP)
    and the replication account; ``create_database`` adds an application database and user.
    """

    def __init__(self) -> None:
        self.primary = PrivateMariaDB("primary", server_id=1)
        try:
            self.replica = PrivateMariaDB("replica", server_id=2, read_only=True)
        except BaseException:
            self.primary.remove()
            raise

    @property
    def hosts(self) -> str:
        """DB_HOSTS naming both servers."""
        return f"{self.primary},{self.replica}"

    def start(self) -> None:
        self.primary.start()
        self.replica.start()
        self.primary.sql(f"CREATE USER '{ADMIN_USER}'@'%' IDENTIFIED BY '{ADMIN_PASSWORD}'")
        self.primary.sql(f"GRANT ALL PRIVILEGES ON *.* TO '{ADMIN_USER}'@'%' WITH GRANT OPTION")
        self.primary.sql(f"CREATE USER '{REPLICATION_USER}'@'%' IDENTIFIED BY '{REPLICATION_PASSWORD}'")
        self.primary.sql(f"GRANT REPLICATION SLAVE ON *.* TO '{REPLICATION_USER}'@'%'")
        replicate(self.replica, self.primary)
        wait_until(
            lambda: self.primary.status("Rpl_semi_sync_master_clients") == "1",
            timeout=30,
            what="the replica to acknowledge semi-synchronously",
        )
        self.wait_replicated()

    def wait_replicated(self, timeout: float = 30) -> None:
        position = self.primary.value("SELECT @@gtid_binlog_pos")
        wait_until(
            lambda: self.replica.value(f"SELECT MASTER_GTID_WAIT('{position}', 1)") == 0,
            timeout=timeout,
            what=f"the replica to apply {position}",
        )

    def create_database(self, name: str, user: str, password: str) -> None:
        """The application's database and its user, on the primary (so on the replica too)."""
        self.primary.sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        self.primary.sql(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'")
        self.primary.sql(f"GRANT ALL PRIVILEGES ON `{name}`.* TO '{user}'@'%'")

    def kill_primary(self) -> None:
        self.primary.kill()

    def shutdown(self) -> None:
        for server in (self.replica, self.primary):
            try:
                server.remove()
            except Exception:  # noqa: BLE001 - the other server is removed all the same
                server.kill()
                shutil.rmtree(server.dir, ignore_errors=True)


def replicate(replica: PrivateMariaDB, primary: PrivateMariaDB) -> None:
    """Make ``replica`` replicate from ``primary`` by GTID, from the start of its binary log."""
    replica.sql(
        "CHANGE MASTER TO MASTER_HOST = '127.0.0.1', MASTER_PORT = %s, MASTER_USER = %s, MASTER_PASSWORD = %s,"
        " MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1",
        [primary.port, REPLICATION_USER, REPLICATION_PASSWORD],
    )
    replica.sql("START SLAVE")


@contextmanager
def replicated_mariadb_running() -> Iterator[ReplicatedMariaDB]:
    pair = ReplicatedMariaDB()
    try:
        pair.start()
        yield pair
    finally:
        pair.shutdown()


@pytest.fixture
def replicated_mariadb() -> Iterator[ReplicatedMariaDB]:
    """A private primary with its replica, removed after the test whatever happens."""
    with replicated_mariadb_running() as pair:
        yield pair
