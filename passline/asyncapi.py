"""The AsyncAPI 3.0 document of Passline's messages, built from the code's own declarations.

Two halves, one document (``docs/asyncapi.json``, written by ``manage.py asyncapi``):

* RabbitMQ — every event and command of ``bus/catalog.py`` (name, exchange, routing key,
  version, the pydantic payload schema) in the envelope of ``bus/envelope.py``, the exchanges
  of ``bus/topology.py``, and every consumer's queue with its bindings (``bus.handlers.registered()``).
* WebSockets — every socket path and frame of ``live/protocol.py``.

Nothing here is written by hand that the code already says: a change of a payload, a binding or
a frame changes the document, and ``manage.py asyncapi --check`` (run by the test suite) fails
until the committed file is regenerated. The output is deterministic: keys sorted, lists in the
declarations' order or sorted.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import BaseModel, TypeAdapter
from pydantic.json_schema import models_json_schema

from bus.catalog import EVENTS, EXCHANGE_BINDINGS, EventType
from bus.envelope import Envelope
from bus.handlers import Handler, registered
from bus.topology import DEAD_LETTER_EXCHANGE, DOMAIN_EXCHANGES, EXCHANGES
from live.protocol import CLOSE_CODES, SOCKETS, Frame, Socket
from ordering.status import OrderStatus

ASYNCAPI_VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"
# AMQP bindings version of the AsyncAPI bindings specification.
AMQP_BINDING = "0.3.0"
WS_BINDING = "0.1.0"

DESCRIPTION = """\
Passline's messages: the WebSocket sockets that pages and outside clients open on the web
process, and the RabbitMQ events and commands its processes exchange. Generated from
live/protocol.py, bus/catalog.py, bus/envelope.py, bus/topology.py and the registered
consumers by `manage.py asyncapi`; docs/contract.md is the prose contract around it.

WebSocket frames are JSON objects with a `type`; unknown fields and frame types are to be
ignored (changes are additive). RabbitMQ bodies are the JSON envelope (`Envelope`) with the
event's payload in `payload`; unknown payload fields are kept (additive changes), a breaking
change is a new `version`."""


def _schemas(server_models: list[type[BaseModel]], client_models: list[type[BaseModel]]) -> dict[str, Any]:
    """JSON Schemas of the models and of everything they use, under ``components/schemas``:
    what the server writes as it serializes it, what clients send as it is validated."""
    pairs = [(model, "serialization") for model in server_models] + [(model, "validation") for model in client_models]
    _, definitions = models_json_schema(pairs, ref_template=SCHEMAS + "{model}")  # type: ignore[arg-type]
    return dict(definitions.get("$defs", {}))


def _envelope_schema() -> dict[str, Any]:
    schema = TypeAdapter(Envelope).json_schema(mode="serialization")
    schema["title"] = "Envelope"
    schema["description"] = "The JSON body of every RabbitMQ message (bus/envelope.py)."
    # Envelope.to_json writes every field, defaults included.
    schema["required"] = list(schema["properties"])
    return schema


def _name(model: type[BaseModel]) -> str:
    return model.__name__


def _placeholders(template: str) -> list[str]:
    return re.findall(r"\{([^}]*)\}", template)


def _binding_key(event: EventType) -> str:
    return re.sub(r"\{[^}]*\}", "*", event.routing_key)


def project_consumers() -> list[Handler]:
    """The registered consumers of the deployed system, by queue name (the test suite's own are left out)."""
    return [
        consumer
        for name, consumer in sorted(registered().items())
        if not consumer.handler.__module__.startswith("tests.")
    ]


# --- RabbitMQ -------------------------------------------------------------------------------


def _event_message(event: EventType) -> dict[str, Any]:
    return {
        "name": event.name,
        "title": event.name,
        "summary": (event.schema.__doc__ or "").strip() or f"{event.name}, version {event.version}.",
        "contentType": "application/json",
        "payload": {
            "allOf": [
                {"$ref": SCHEMAS + "Envelope"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": event.name},
                        "version": {"const": event.version},
                        "payload": {"$ref": SCHEMAS + _name(event.schema)},
                    },
                },
            ]
        },
        "bindings": {"amqp": {"contentEncoding": "utf-8", "messageType": event.name, "bindingVersion": AMQP_BINDING}},
        "x-exchange": event.exchange,
        "x-routing-key": event.routing_key,
        "x-version": event.version,
    }


def _exchange(name: str) -> dict[str, Any]:
    return {"name": name, "type": EXCHANGES[name], "durable": True, "autoDelete": False}


def _event_channel(event: EventType) -> dict[str, Any]:
    parameters = {
        field: {
            "description": f"The payload's `{field}`.",
            "location": f"$message.payload#/payload/{field}",
            **({"enum": [s.value for s in OrderStatus]} if field == "status" else {}),
        }
        for field in _placeholders(event.routing_key)
    }
    channel: dict[str, Any] = {
        "address": event.routing_key,
        "title": f"{event.exchange}: {event.routing_key}",
        "description": f"`{event.name}` messages, published to the `{event.exchange}` exchange "
        f"({EXCHANGES[event.exchange]}) with the routing key `{event.routing_key}`.",
        "servers": [{"$ref": "#/servers/broker"}],
        "messages": {event.name: {"$ref": f"#/components/messages/{event.name}"}},
        "bindings": {
            "amqp": {"is": "routingKey", "exchange": _exchange(event.exchange), "bindingVersion": AMQP_BINDING}
        },
    }
    if parameters:
        channel["parameters"] = parameters
    return channel


def _queue_messages(consumer: Handler) -> list[EventType]:
    if consumer.any_type or consumer.consume_from is not None:
        return sorted(EVENTS.values(), key=lambda e: e.name)
    return list(consumer.events)


def _queue_channel(consumer: Handler, dead_letter_queues: list[str]) -> dict[str, Any]:
    messages = {e.name: {"$ref": f"#/components/messages/{e.name}"} for e in _queue_messages(consumer)}
    bindings = [{"exchange": exchange, "binding_key": key} for exchange, key in consumer.all_bindings()]
    if consumer.consume_from is not None:
        description = (
            f"`{consumer.queue}` reads every `<queue>.dead` queue of the other consumers (any message "
            "that failed for good, with `x-passline-reason`, `-queue` and `-attempts` headers)."
        )
        return {
            "address": "{queue}.dead",
            "title": f"queue {consumer.queue}",
            "description": description,
            "servers": [{"$ref": "#/servers/broker"}],
            "parameters": {"queue": {"description": "The work queue the message died in.", "enum": dead_letter_queues}},
            "messages": messages,
            "bindings": {
                "amqp": {
                    "is": "queue",
                    "queue": {"name": "{queue}.dead", "durable": True, "exclusive": False, "autoDelete": False},
                    "bindingVersion": AMQP_BINDING,
                }
            },
            "x-bindings": [{"exchange": DEAD_LETTER_EXCHANGE, "binding_key": "{queue}"}],
        }
    notes = []
    if consumer.rpc:
        notes.append(
            "An RPC server: each request's result or business error goes back to its `reply_to` "
            "(direct reply-to) under the request's AMQP `correlation_id`."
        )
    if consumer.delay_seconds:
        notes.append(
            f"Messages wait in `{consumer.queue}.delay.<n>s` (n = ORDER_ACCEPT_TIMEOUT_SECONDS) "
            "before they reach the queue: a timer."
        )
    bound = ", ".join(f"`{b['exchange'] or '(default)'}` ← `{b['binding_key'] or '(fanout)'}`" for b in bindings)
    return {
        "address": consumer.queue,
        "title": f"queue {consumer.queue}",
        "description": " ".join(
            [
                f"Queue `{consumer.queue}`, bound to {bound}. Failed messages retry through "
                f"`{consumer.queue}.retry.<n>`, then go to `{consumer.dead_letter_queue}`.",
                *notes,
            ]
        ),
        "servers": [{"$ref": "#/servers/broker"}],
        "messages": messages,
        "bindings": {
            "amqp": {
                "is": "queue",
                "queue": {"name": consumer.queue, "durable": True, "exclusive": False, "autoDelete": False},
                "bindingVersion": AMQP_BINDING,
            }
        },
        "x-bindings": bindings,
    }


def _amqp(document: dict[str, Any]) -> list[type[BaseModel]]:
    """Add the RabbitMQ half; returns the payload models to put under components/schemas."""
    events = sorted(EVENTS.values(), key=lambda e: e.name)
    consumers = project_consumers()
    dead_letter_queues = sorted(c.dead_letter_queue for c in consumers if c.consume_from is None)
    for event in events:
        channel_id = f"amqp.{event.name}"
        document["components"]["messages"][event.name] = _event_message(event)
        document["channels"][channel_id] = _event_channel(event)
        document["operations"][f"publish.{event.name}"] = {
            "action": "send",
            "title": f"publish {event.name}",
            "summary": f"A Passline process publishes `{event.name}` (through the transactional outbox, "
            "or an RPC call) with publisher confirms, persistent.",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{event.name}"}],
            "bindings": {
                "amqp": {"deliveryMode": 2, "mandatory": True, "timestamp": True, "bindingVersion": AMQP_BINDING}
            },
        }
    for consumer in consumers:
        channel_id = f"amqp.queue.{consumer.queue}"
        channel = _queue_channel(consumer, dead_letter_queues)
        document["channels"][channel_id] = channel
        operation: dict[str, Any] = {
            "action": "receive",
            "title": f"consume {consumer.queue}",
            "summary": f"`manage.py consume {consumer.queue}`: at-least-once, deduplicated by message id"
            + (" (RPC: by the command's key)" if consumer.rpc else "")
            + ", acked after commit.",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in channel["messages"]],
            "bindings": {"amqp": {"ack": True, "bindingVersion": AMQP_BINDING}},
        }
        if consumer.rpc:
            operation["reply"] = {
                "address": {
                    "location": "$message.header#/reply_to",
                    "description": "RabbitMQ's direct reply-to of the caller.",
                }
            }
        document["operations"][f"consume.{consumer.queue}"] = operation
    document["x-exchanges"] = {
        name: {"type": kind, "bound_to": _exchange_sources(name)} for name, kind in sorted(EXCHANGES.items())
    }
    return [event.schema for event in events]


def _exchange_sources(name: str) -> list[dict[str, str]]:
    """Exchange-to-exchange bindings into ``name`` (bus/topology.py)."""
    if name == "audit":
        return [{"exchange": source, "binding_key": "#"} for source in DOMAIN_EXCHANGES]
    # What the apps asked for (notifications/events.py: a customer's order steps).
    return [
        {"exchange": source, "binding_key": key}
        for destination, source, key in EXCHANGE_BINDINGS
        if destination == name
    ]


# --- WebSockets -----------------------------------------------------------------------------


def _frame_message(model: type[Frame], direction: str) -> dict[str, Any]:
    kind = model.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]
    return {
        "name": _name(model),
        "title": kind,
        "summary": " ".join((model.__doc__ or "").split()),
        "contentType": "application/json",
        "payload": {"$ref": SCHEMAS + _name(model)},
        "x-direction": direction,
    }


def _socket_channel(socket: Socket) -> dict[str, Any]:
    messages = {_name(m): {"$ref": f"#/components/messages/{_name(m)}"} for m in (*socket.sends, *socket.takes)}
    channel: dict[str, Any] = {
        "address": socket.path,
        "title": socket.path,
        "description": f"{socket.description} Who may connect: {socket.who}",
        "servers": [{"$ref": "#/servers/web"}],
        "messages": messages,
        "bindings": {
            "ws": {
                "method": "GET",
                "headers": {
                    "type": "object",
                    "properties": {
                        "Authorization": {
                            "type": "string",
                            "description": "`Bearer <token>` (or the session cookie instead).",
                        },
                        "Origin": {
                            "type": "string",
                            "description": "Required with a cookie; a bearer upgrade without cookies may omit it.",
                        },
                    },
                },
                "bindingVersion": WS_BINDING,
            }
        },
        "x-who": socket.who,
        "x-close-codes": {str(code): CLOSE_CODES[code] for code in socket.closes},
    }
    if socket.parameters:
        channel["parameters"] = {name: {"description": text} for name, text in socket.parameters}
    return channel


def _websockets(document: dict[str, Any]) -> tuple[list[type[BaseModel]], list[type[BaseModel]]]:
    """Add the WebSocket half; returns the server and the client frame models."""
    server: dict[str, type[Frame]] = {}
    client: dict[str, type[Frame]] = {}
    for socket in SOCKETS:
        server.update({_name(m): m for m in socket.sends})
        client.update({_name(m): m for m in socket.takes})
        channel_id = f"ws.{socket.name}"
        document["channels"][channel_id] = _socket_channel(socket)
        for action, models, verb in (("send", socket.sends, "sends"), ("receive", socket.takes, "takes")):
            document["operations"][f"ws.{socket.name}.{action}"] = {
                "action": action,
                "title": f"{socket.path} {verb}",
                "channel": {"$ref": f"#/channels/{channel_id}"},
                "messages": [{"$ref": f"#/channels/{channel_id}/messages/{_name(m)}"} for m in models],
            }
    for name, model in server.items():
        document["components"]["messages"][name] = _frame_message(model, "server to client")
    for name, model in client.items():
        document["components"]["messages"][name] = _frame_message(model, "client to server")
    return list(server.values()), list(client.values())


# --- the document ---------------------------------------------------------------------------


def asyncapi_document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document, as JSON-ready data."""
    document: dict[str, Any] = {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:passline:messages",
        "info": {"title": "Passline messages", "version": "1", "description": DESCRIPTION},
        "defaultContentType": "application/json",
        "servers": {
            "web": {
                "host": "{host}",
                "protocol": "ws",
                "title": "The web process (daphne)",
                "description": "WebSockets on the site's own host (`wss` behind TLS in production).",
                "variables": {"host": {"default": "127.0.0.1:8000", "description": "The site's host and port."}},
                "security": [
                    {"$ref": "#/components/securitySchemes/bearer"},
                    {"$ref": "#/components/securitySchemes/session"},
                ],
            },
            "broker": {
                "host": "{host}",
                "protocol": "amqp",
                "protocolVersion": "0-9-1",
                "pathname": "/{vhost}",
                "title": "RabbitMQ",
                "description": "Internal: only Passline's own processes connect, each as its role's own user (bus/roles.py).",
                "variables": {
                    "host": {"default": "127.0.0.1:5672"},
                    "vhost": {"description": "The checkout's vhost, passline-<id> (in .env)."},
                },
                "security": [{"$ref": "#/components/securitySchemes/broker"}],
            },
        },
        "channels": {},
        "operations": {},
        "components": {
            "messages": {},
            "schemas": {},
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "`Authorization: Bearer <token>` from `POST /api/v1/auth/token` on the "
                    "upgrade request; no `Origin` needed when no cookie is sent.",
                },
                "session": {
                    "type": "httpApiKey",
                    "in": "cookie",
                    "name": "sessionid",
                    "description": "The browser site's session; the upgrade's `Origin` must be allowed.",
                },
                "broker": {
                    "type": "userPassword",
                    "description": "One user per process role: <RABBITMQ_USER_PREFIX><role> with RABBITMQ_PASSWORD_<ROLE>.",
                },
            },
        },
    }
    payloads = _amqp(document)
    server_frames, client_frames = _websockets(document)
    schemas = _schemas([*payloads, *server_frames], client_frames)
    schemas["Envelope"] = _envelope_schema()
    document["components"]["schemas"] = schemas
    return document


def render(document: dict[str, Any]) -> str:
    """The document as the committed file holds it: sorted keys, two-space indents, a final newline."""
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def refs(value: Any) -> list[str]:
    """Every ``$ref`` in ``value``, in document order."""
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for key, item in value.items() if key != "$ref" for ref in refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs(item)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    """The object a local ``$ref`` (``#/a/b``) points at; KeyError when it points nowhere."""
    if not ref.startswith("#/"):
        raise KeyError(f"not a local reference: {ref}")
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"{ref} points nowhere")
        node = node[part]
    return node
