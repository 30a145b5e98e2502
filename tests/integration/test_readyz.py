"""/readyz on the real services: 200 with every check when all answer; 503 naming RabbitMQ when
the broker is stopped (a private node: the machine's broker is never stopped), naming the
database when MariaDB does not answer, naming the outbox when the relay is behind; one round of
checks serves the requests of a second. /healthz stays liveness."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from bus.models import OutboxMessage
from bus.outbox import outbox_write
from operations import readiness
from tests.busapp.consumers import TEST_HAPPENED
from tests.support import ROOT, free_port, process_env

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_round(settings):
    """Every request runs its own round of checks unless a test says otherwise."""
    settings.READYZ_CACHE_SECONDS = 0
    readiness.forget()
    yield
    readiness.forget()


def test_readyz_is_200_with_every_check_when_all_answer(bus, client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"database", "rabbitmq", "redis", "migrations", "outbox"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["outbox"]["oldest_unsent_seconds"] == 0.0
    # and liveness is unchanged
    assert client.get("/healthz").json() == {"status": "ok"}


def test_one_round_of_checks_serves_every_request_within_the_cache_time(bus, client, settings):
    settings.READYZ_CACHE_SECONDS = 60
    first = readiness.readiness()
    assert readiness.readiness() is first
    # a stale outbox is not seen until the round expires
    _old_unsent_row(seconds=600)
    assert client.get("/readyz").status_code == 200
    readiness.forget()
    assert client.get("/readyz").status_code == 503


def test_readyz_is_503_naming_the_outbox_when_the_oldest_unsent_row_is_too_old(bus, client, settings):
    # given: a message the relay has owed for two minutes (no relay runs)
    settings.READYZ_OUTBOX_MAX_AGE_SECONDS = 60
    _old_unsent_row(seconds=120)
    # when
    response = client.get("/readyz")
    # then
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["outbox"]
    assert body["error"]["code"] == "not_ready"
    assert "relay" in body["checks"]["outbox"]["error"]
    assert response["Retry-After"]


@pytest.mark.slow
def test_readyz_is_503_naming_rabbitmq_while_the_broker_is_stopped(private_broker, client, settings, bus):
    # given: the web process on a broker of its own, which answers
    settings.RABBITMQ_URL = private_broker.url
    assert client.get("/readyz").status_code == 200
    # when: the broker stops
    private_broker.stop_app()
    try:
        response = client.get("/readyz")
        # then: not ready, because of RabbitMQ alone, and why
        assert response.status_code == 503
        body = response.json()
        assert body["failing"] == ["rabbitmq"]
        assert not body["checks"]["rabbitmq"]["ok"] and body["checks"]["rabbitmq"]["error"]
        assert body["error"]["message"].startswith("rabbitmq: ")
        assert body["checks"]["database"]["ok"] and body["checks"]["redis"]["ok"]
    finally:
        private_broker.start_app()
    # and: ready again once it is back
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_naming_the_database_when_mariadb_does_not_answer(bus):
    # given: a web process whose database is nowhere (nothing listens on its port)
    env = process_env(DB_PORT=str(free_port()), PYTHONWARNINGS="ignore")
    script = (
        "from django.test import Client; r = Client().get('/readyz', HTTP_HOST='127.0.0.1'); "
        "print(r.status_code); print(r.content.decode())"
    )
    # when: it is asked whether it is ready
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-v", "0", "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    # then: 503, naming the database (and what could not be checked without it)
    status, _, body = result.stdout.strip().partition("\n")
    assert status == "503", result.stdout + result.stderr
    answer = json.loads(body)
    assert answer["failing"] == ["database", "migrations", "outbox"]
    assert answer["error"]["message"].startswith("database: ")
    assert answer["checks"]["rabbitmq"]["ok"] and answer["checks"]["redis"]["ok"]


def _old_unsent_row(*, seconds: int) -> None:
    with transaction.atomic():
        envelope = outbox_write(event=TEST_HAPPENED, payload={"key": "owed"}, aggregate="test:owed")
    OutboxMessage.objects.filter(message_id=envelope.message_id).update(
        created_at=timezone.now() - timedelta(seconds=seconds)
    )
