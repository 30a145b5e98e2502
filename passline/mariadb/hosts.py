"""Which of the configured MariaDB servers takes writes: the order hosts are tried in, and the
choice itself, kept free of any driver so that a unit test drives it with fakes."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

Conn = TypeVar("Conn")


@dataclass(frozen=True)
class Host:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def parse_hosts(value: str | Sequence[str], default_port: int = 3306) -> list[Host]:
    """``"db-1:3306, db-2:3306"`` (or a list of such entries; ``[::1]:3306`` for IPv6, the
    port optional) as hosts, in the order given, each once."""
    entries = value.split(",") if isinstance(value, str) else list(value)
    hosts: list[Host] = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        if entry.startswith("["):
            name, _, rest = entry[1:].partition("]")
            port = rest.removeprefix(":")
        elif entry.count(":") == 1:
            name, port = entry.split(":")
        else:
            name, port = entry, ""
        if not name or (port and not port.isdigit()):
            raise ValueError(f"{entry!r} is not host:port")
        host = Host(name, int(port) if port else default_port)
        if host not in hosts:
            hosts.append(host)
    if not hosts:
        raise ValueError("no database host given")
    return hosts


class NoPrimary(Exception):
    """No configured server is reachable and writable (each one's reason in the message)."""


class PrimaryFinder(Generic[Conn]):
    """Connects to the first of the hosts that is the writable primary.

    The host found last is tried first: after a promotion every process finds the new primary
    once (a new connection pays for the dead host's connect timeout) and then goes straight to
    it. A reachable server that is read-only (a replica, or the old primary fenced by
    ``db_promote``) is never written to: its connection is closed and the next host tried.
    """

    def __init__(
        self,
        hosts: Sequence[Host],
        *,
        writable: Callable[[Conn], bool],
        close: Callable[[Conn], None],
    ) -> None:
        self.hosts = list(hosts)
        self._writable = writable
        self._close = close
        self._last: Host | None = None
        self._lock = threading.Lock()

    def order(self) -> list[Host]:
        last = self._last
        if last is None or last not in self.hosts:
            return list(self.hosts)
        return [last, *(h for h in self.hosts if h != last)]

    def connect(self, open_connection: Callable[[Host], Conn]) -> tuple[Conn, Host]:
        """The first writable server's connection (the others' closed), or ``NoPrimary``."""
        reasons: list[str] = []
        for host in self.order():
            try:
                conn = open_connection(host)
            except Exception as error:  # noqa: BLE001 - the reason is reported, the next host tried
                reasons.append(f"{host}: {error}")
                continue
            try:
                writable = self._writable(conn)
            except Exception as error:  # noqa: BLE001 - as above
                self._close(conn)
                reasons.append(f"{host}: {error}")
                continue
            if writable:
                with self._lock:
                    self._last = host
                return conn, host
            self._close(conn)
            reasons.append(f"{host}: read-only")
        raise NoPrimary("no writable MariaDB primary among " + "; ".join(reasons))
