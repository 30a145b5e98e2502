"""Which broker nodes a client is given, and in which order (bus/connection.py)."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from bus.connection import broker_vhost, connection_parameters, node_name

NODES = [
    "amqp://guest:guest@rabbitmq-1:5672/shop",
    "amqp://guest:guest@rabbitmq-2:5672/shop",
    "amqp://guest:guest@rabbitmq-3:5672/shop",
]


def test_without_rabbitmq_urls_the_one_node_is_rabbitmq_url(settings):
    settings.RABBITMQ_URLS = []
    settings.RABBITMQ_URL = "amqp://guest:guest@broker:5673/%2F"
    (params,) = connection_parameters(None, name="test")
    assert (params.host, params.port, params.virtual_host) == ("broker", 5673, "/")
    assert broker_vhost() == "/"


def test_each_connection_gets_every_node_starting_at_the_next_one(settings):
    settings.RABBITMQ_URLS = NODES
    orders = [[params.host for params in connection_parameters(None, name="test")] for _ in range(3)]
    # every list holds all the nodes, each one a rotation of the cluster's order
    hosts = ["rabbitmq-1", "rabbitmq-2", "rabbitmq-3"]
    for order in orders:
        start = hosts.index(order[0])
        assert order == hosts[start:] + hosts[:start]
    # and three connections in a row start at three different nodes: clients spread
    assert {order[0] for order in orders} == set(hosts)


def test_every_node_must_name_the_same_vhost(settings):
    settings.RABBITMQ_URLS = [*NODES[:2], "amqp://guest:guest@rabbitmq-3:5672/other"]
    with pytest.raises(ImproperlyConfigured):
        broker_vhost()
    settings.RABBITMQ_URLS = NODES
    assert broker_vhost() == "shop"


def test_a_node_is_named_without_its_credentials():
    assert node_name("amqp://user:secret@rabbitmq-2:5672/shop") == "rabbitmq-2:5672"
    assert node_name("amqp://user:secret@rabbitmq-2/shop") == "rabbitmq-2:5672"
