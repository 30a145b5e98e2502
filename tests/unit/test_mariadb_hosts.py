"""Which of DB_HOSTS a new connection takes: the writable one, the one found last first."""

from __future__ import annotations

import pytest

from passline.mariadb.hosts import Host, NoPrimary, PrimaryFinder, parse_hosts


class Servers:
    """Fake servers by name: down, read-only or writable; records what was opened and closed."""

    def __init__(self, **states: str) -> None:
        self.states = states
        self.opened: list[str] = []
        self.closed: list[str] = []

    def open(self, host: Host) -> str:
        self.opened.append(host.host)
        if self.states[host.host] == "down":
            raise ConnectionRefusedError("refused")
        return host.host

    def finder(self, hosts: str) -> PrimaryFinder[str]:
        return PrimaryFinder(
            parse_hosts(hosts), writable=lambda name: self.states[name] == "writable", close=self.closed.append
        )


def test_parse_hosts_keeps_the_order_and_drops_repeats():
    assert parse_hosts("db-1:3306, db-2:3307,db-1:3306,[::1]:3308,db-3") == [
        Host("db-1", 3306),
        Host("db-2", 3307),
        Host("::1", 3308),
        Host("db-3", 3306),
    ]
    assert str(Host("::1", 3308)) == "[::1]:3308"


@pytest.mark.parametrize("value", ["", " , ", "db-1:port", ":3306"])
def test_parse_hosts_refuses_what_is_not_host_port(value):
    with pytest.raises(ValueError):
        parse_hosts(value)


def test_the_writable_server_is_taken_and_the_read_only_one_closed():
    servers = Servers(a="read-only", b="writable")
    conn, host = servers.finder("a:1,b:2").connect(servers.open)
    assert (conn, host) == ("b", Host("b", 2))
    assert servers.closed == ["a"]


def test_after_a_promotion_the_new_primary_is_tried_first():
    # given: b became the primary while a died
    servers = Servers(a="down", b="writable")
    finder = servers.finder("a:1,b:2")
    finder.connect(servers.open)
    servers.opened.clear()
    # when: the next connection
    _, host = finder.connect(servers.open)
    # then: straight to b, without waiting on the dead host
    assert host == Host("b", 2) and servers.opened == ["b"]


def test_no_writable_server_names_each_ones_reason():
    # e.g. between the kill of the primary and the promotion
    servers = Servers(a="down", b="read-only")
    with pytest.raises(NoPrimary) as refused:
        servers.finder("a:1,b:2").connect(servers.open)
    assert "a:1: refused" in str(refused.value) and "b:2: read-only" in str(refused.value)
    assert servers.closed == ["b"]


def test_a_server_that_fails_the_read_only_check_is_skipped():
    servers = Servers(a="writable", b="writable")

    def writable(name: str) -> bool:
        if name == "a":
            raise TimeoutError("read timed out")
        return True

    finder = PrimaryFinder(parse_hosts("a:1,b:2"), writable=writable, close=servers.closed.append)
    _, host = finder.connect(servers.open)
    assert host == Host("b", 2) and servers.closed == ["a"]
