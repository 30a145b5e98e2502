"""db_promote's refusals and the planned switch-over, on a private primary and replica: a
promotion that could lose a transaction changes nothing."""

from __future__ import annotations

from contextlib import closing

import MySQLdb
import pytest
from django.core.management import CommandError, call_command

from passline.mariadb.hosts import Host
from passline.mariadb.replication import Admin, ReplicationRefused, promote
from tests.servers.mariadb import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    PrivateMariaDB,
    ReplicatedMariaDB,
    replicated_mariadb_running,
)

pytestmark = pytest.mark.slow

ADMIN = Admin(ADMIN_USER, ADMIN_PASSWORD)


def host(server: PrivateMariaDB) -> Host:
    return Host("127.0.0.1", server.port)


@pytest.fixture
def pair():
    with replicated_mariadb_running() as servers:
        servers.primary.sql("CREATE DATABASE probe")
        servers.primary.sql("CREATE TABLE probe.t (id INT PRIMARY KEY, n INT NOT NULL)")
        servers.primary.sql("INSERT INTO probe.t VALUES (1, 0)")
        # an application's user: no privilege beyond its database, so read_only binds it
        servers.primary.sql("CREATE USER probe@'%' IDENTIFIED BY 'probe-test-only'")
        servers.primary.sql("GRANT ALL PRIVILEGES ON probe.* TO probe@'%'")
        servers.wait_replicated()
        yield servers


def read_only(server: PrivateMariaDB) -> int:
    return int(server.value("SELECT @@global.read_only"))


def test_the_primary_is_not_promoted(pair: ReplicatedMariaDB, settings):
    settings.DB_ADMIN_USER, settings.DB_ADMIN_PASSWORD = ADMIN_USER, ADMIN_PASSWORD
    with pytest.raises(CommandError, match="Not promoted: .* is not a replica .* already takes writes"):
        call_command("db_promote", "--replica", str(pair.primary))
    assert read_only(pair.primary) == 0


def test_a_replica_behind_is_not_promoted_and_everything_stays_as_it_was(pair: ReplicatedMariaDB):
    # given: the replica cannot apply an update (a local transaction holds the row's lock)
    blocker = pair.replica.root()
    with closing(blocker), blocker.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT n FROM probe.t WHERE id = 1 FOR UPDATE")
        pair.primary.sql("UPDATE probe.t SET n = 1 WHERE id = 1")

        # when: a switch-over with the primary alive
        with pytest.raises(ReplicationRefused, match="has not applied"):
            promote(host(pair.replica), admin=ADMIN, timeout=2)

        # then: the old primary takes writes again, the replica still replicates, read-only
        assert read_only(pair.primary) == 0 and read_only(pair.replica) == 1
        status = pair.replica.sql("SHOW SLAVE STATUS")[0]
        assert (status["Slave_IO_Running"], status["Slave_SQL_Running"]) == ("Yes", "Yes")
        cursor.execute("ROLLBACK")
    pair.wait_replicated()
    assert pair.replica.value("SELECT n FROM probe.t WHERE id = 1") == 1


def test_a_replica_behind_a_dead_primary_is_not_promoted(pair: ReplicatedMariaDB):
    blocker = pair.replica.root()
    with closing(blocker), blocker.cursor() as cursor:
        cursor.execute("BEGIN")
        cursor.execute("SELECT n FROM probe.t WHERE id = 1 FOR UPDATE")
        pair.primary.sql("UPDATE probe.t SET n = 2 WHERE id = 1")  # acknowledged: in the relay log
        pair.kill_primary()
        with pytest.raises(ReplicationRefused, match="has not applied the last transaction received"):
            promote(host(pair.replica), admin=ADMIN, timeout=2)
        assert read_only(pair.replica) == 1
        cursor.execute("ROLLBACK")
    # once the replica has applied it, the promotion goes through and keeps the update
    done = promote(host(pair.replica), admin=ADMIN, timeout=30)
    assert not done.old_primary_fenced
    assert read_only(pair.replica) == 0 and pair.replica.sql("SHOW SLAVE STATUS") == []
    assert pair.replica.value("SELECT n FROM probe.t WHERE id = 1") == 2


def test_a_planned_switch_over_fences_the_old_primary_and_drops_its_clients(pair: ReplicatedMariaDB):
    # given: an application's connection to the primary
    client = MySQLdb.connect(host="127.0.0.1", port=pair.primary.port, user="probe", password="probe-test-only")
    with closing(client):
        # when: the replica is promoted while the primary is alive
        done = promote(host(pair.replica), admin=ADMIN, timeout=30)

        # then: the old primary is read-only, its clients cut off; the new one takes writes
        assert done.old_primary_fenced and read_only(pair.primary) == 1 and read_only(pair.replica) == 0
        with pytest.raises(MySQLdb.OperationalError):
            client.ping()
    # and the application's user writes on the new primary
    app = MySQLdb.connect(host="127.0.0.1", port=pair.replica.port, user="probe", password="probe-test-only")
    with closing(app), app.cursor() as cursor:
        cursor.execute("UPDATE probe.t SET n = 3 WHERE id = 1")
        app.commit()
    assert pair.replica.value("SELECT n FROM probe.t WHERE id = 1") == 3
