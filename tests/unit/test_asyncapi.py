"""docs/asyncapi.json is what the code declares, and a well-formed AsyncAPI 3.0 document."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bus.catalog import EVENTS
from live.protocol import CLOSE_CODES, SOCKETS
from live.routing import websocket_urlpatterns
from passline.asyncapi import asyncapi_document, project_consumers, refs, render, resolve

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


@pytest.fixture(scope="module")
def document():
    return asyncapi_document()


def test_the_committed_document_is_what_the_code_declares():
    # Stale: run `.venv/bin/python manage.py asyncapi` and commit docs/asyncapi.json.
    call_command("asyncapi", "--check", output=COMMITTED)


def test_the_check_fails_on_a_stale_or_missing_file(tmp_path):
    stale = tmp_path / "asyncapi.json"
    with pytest.raises(CommandError):
        call_command("asyncapi", "--check", output=stale)
    call_command("asyncapi", output=stale)
    call_command("asyncapi", "--check", output=stale)
    stale.write_text(stale.read_text().replace('"order.placed"', '"order.put"', 1))
    with pytest.raises(CommandError):
        call_command("asyncapi", "--check", output=stale)


def test_the_output_is_deterministic(document):
    assert render(asyncapi_document()) == render(document)


def test_it_has_the_shape_of_an_asyncapi_3_document(document):
    assert document["asyncapi"] == "3.0.0"
    assert {"title", "version"} <= set(document["info"])
    assert {server["protocol"] for server in document["servers"].values()} == {"ws", "amqp"}
    for server in document["servers"].values():
        assert server["host"]
        # Every {variable} of a host or pathname is declared.
        for name in re.findall(r"\{([^}]*)\}", server["host"] + server.get("pathname", "")):
            assert name in server["variables"]
    for key in ("channels", "operations"):
        assert document[key], key
    assert {"messages", "schemas", "securitySchemes"} <= set(document["components"])
    names = re.compile(r"^[a-zA-Z0-9.\-_]+$")
    for section in ("channels", "operations"):
        assert all(names.match(key) for key in document[section]), section
    for section in ("messages", "schemas", "securitySchemes"):
        assert all(names.match(key) for key in document["components"][section]), section


def test_every_ref_resolves(document):
    found = refs(document)
    assert len(found) > 100
    for ref in found:
        resolve(document, ref)  # KeyError when it points nowhere


def test_channels_declare_their_parameters_and_operations_use_their_channels_messages(document):
    for channel_id, channel in document["channels"].items():
        placeholders = set(re.findall(r"\{([^}]*)\}", channel["address"]))
        assert placeholders == set(channel.get("parameters", {})), channel_id
        for message in channel["messages"].values():
            assert message["$ref"].startswith("#/components/messages/")
    for operation_id, operation in document["operations"].items():
        assert operation["action"] in ("send", "receive"), operation_id
        channel_ref = operation["channel"]["$ref"]
        for message in operation["messages"]:
            # AsyncAPI 3: an operation's messages are a subset of its channel's.
            assert message["$ref"].startswith(channel_ref + "/messages/"), operation_id
    for message_id, message in document["components"]["messages"].items():
        assert message["contentType"] == "application/json"
        assert "$ref" in message["payload"] or "allOf" in message["payload"], message_id


def test_every_event_of_the_catalog_and_every_consumer_queue_is_in_it(document):
    for event in EVENTS.values():
        message = document["components"]["messages"][event.name]
        assert (message["x-exchange"], message["x-routing-key"], message["x-version"]) == (
            event.exchange,
            event.routing_key,
            event.version,
        )
        assert document["channels"][f"amqp.{event.name}"]["bindings"]["amqp"]["exchange"]["name"] == event.exchange
        assert f"publish.{event.name}" in document["operations"]
    queues = {c.queue for c in project_consumers()}
    assert {"billing.order_placed", "bridge.notification", "balance.commands", "audit.events"} <= queues
    assert not any(queue.startswith("test.") for queue in queues)
    for consumer in project_consumers():
        channel = document["channels"][f"amqp.queue.{consumer.queue}"]
        if consumer.consume_from is None:
            assert [(b["exchange"], b["binding_key"]) for b in channel["x-bindings"]] == consumer.all_bindings()
        assert f"consume.{consumer.queue}" in document["operations"]
    assert "reply" in document["operations"]["consume.balance.commands"]


def test_every_websocket_route_is_declared_with_its_frames_and_close_codes(document):
    routes = {"/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", str(p.pattern)) for p in websocket_urlpatterns}
    assert routes == {socket.path for socket in SOCKETS}
    for socket in SOCKETS:
        channel = document["channels"][f"ws.{socket.name}"]
        assert channel["address"] == socket.path
        assert set(channel["x-close-codes"]) == {str(code) for code in socket.closes}
        assert set(socket.closes) <= set(CLOSE_CODES)
        sent = {m["$ref"].rsplit("/", 1)[1] for m in document["operations"][f"ws.{socket.name}.send"]["messages"]}
        taken = {m["$ref"].rsplit("/", 1)[1] for m in document["operations"][f"ws.{socket.name}.receive"]["messages"]}
        assert sent == {m.__name__ for m in socket.sends} and taken == {m.__name__ for m in socket.takes}
        assert "Ping" in taken and "Pong" in sent


def test_the_committed_file_is_json_with_sorted_keys():
    text = COMMITTED.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False) + "\n"
