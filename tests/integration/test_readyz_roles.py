"""The monitor role on the real broker, with roles on: the web process's readiness check and
the operators' queue depths connect as it, and it may do nothing else — passive declares need
no permission, while declaring, reading and publishing are refused."""

from __future__ import annotations

import io
import secrets
import subprocess
import uuid

import pika
import pytest
from django.core.management import call_command
from django.test import override_settings
from pika.exceptions import ChannelClosedByBroker

from bus import roles
from bus.connection import connection_parameters
from operations import readiness, status
from tests.broker import RABBITMQCTL

pytestmark = pytest.mark.django_db(transaction=True)
ACCESS_REFUSED = 403


@pytest.fixture(scope="module")
def role_users(rabbit_vhost):
    """Every role's user on the session's vhost (``manage.py bus_users``), deleted after."""
    prefix = f"passline-test-{uuid.uuid4().hex[:8]}-"
    config = {
        "RABBITMQ_URL": rabbit_vhost,
        "RABBITMQ_USER_PREFIX": prefix,
        "RABBITMQ_ROLE_PASSWORDS": {role: secrets.token_urlsafe(16) for role in roles.ROLES},
        "BUS_ROLES": True,
    }
    try:
        with override_settings(**config):
            call_command("bus_users", stdout=io.StringIO())
        yield config
    finally:
        for role in roles.ROLES:
            subprocess.run([RABBITMQCTL, "-q", "delete_user", f"{prefix}{role}"], capture_output=True, timeout=60)


@pytest.fixture
def as_roles(bus, role_users, settings):
    for name, value in role_users.items():
        setattr(settings, name, value)
    readiness.forget()
    yield role_users
    readiness.forget()


def test_the_monitor_role_may_connect_and_look_but_touch_nothing(as_roles):
    connection = pika.BlockingConnection(connection_parameters(roles.MONITOR, name="test-monitor"))
    try:
        # a passive declare (a queue's depth and consumers) needs no permission
        found = connection.channel().queue_declare(queue="billing.order_placed", passive=True)
        assert found.method.message_count >= 0
        # everything else is refused
        for action in (
            lambda ch: ch.queue_declare(queue="monitor.own"),
            lambda ch: ch.basic_get(queue="billing.order_placed"),
            lambda ch: (ch.confirm_delivery(), ch.basic_publish("", "billing.order_placed", b"{}")),
            lambda ch: ch.queue_purge(queue="billing.order_placed"),
        ):
            with pytest.raises(ChannelClosedByBroker) as refused:
                action(connection.channel())
            assert refused.value.reply_code == ACCESS_REFUSED
    finally:
        if connection.is_open:
            connection.close()


def test_readiness_and_queue_depths_work_as_the_monitor_role(as_roles, client):
    # the web process has the monitor's password only
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    depths = {q["queue"]: q for q in status.queue_depths({})}
    assert depths["billing.order_placed"]["ready"] == 0 and "missing" not in depths["billing.order_placed"]


def test_readiness_names_rabbitmq_when_the_monitor_has_no_password(as_roles, client, settings):
    settings.RABBITMQ_ROLE_PASSWORDS = {k: v for k, v in as_roles["RABBITMQ_ROLE_PASSWORDS"].items() if k != "monitor"}
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "RABBITMQ_PASSWORD_MONITOR" in response.json()["checks"]["rabbitmq"]["error"]
