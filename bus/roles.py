"""Process roles on the bus: which RabbitMQ user each process connects as, what that user may
touch, and which roles may publish each message type.

Every process of the Procfile that talks to RabbitMQ has a role, and each role its own user
(``<RABBITMQ_USER_PREFIX><role>``, password ``RABBITMQ_PASSWORD_<ROLE>``):

* ``topology`` declares the exchanges, queues and bindings (``manage.py declare_topology``, run
  by the set-up before the processes start); the only role that may configure anything.
* ``relay`` publishes the outbox (every event type, and an operator's dead-letter replay); it
  reads nothing.
* a worker role (``balance``, ``billing``, ``bridge`` …) reads its own queues and writes only
  its retries and dead letters (the default exchange and ``dead-letter``), plus the RPC
  commands it sends (:data:`RPC_COMMANDS`), restricted by topic permissions to those commands'
  routing keys.
* ``deadletters`` reads the ``.dead`` queues and writes nothing.
* ``monitor`` may do nothing but connect: the web process's readiness check (``/readyz``) and
  the operators' queue depths (passive declares, which need no permission).

The web process publishes nothing: it writes the outbox, and the relay publishes.

The broker refuses a message whose ``user_id`` property is not the connection's own user, so
``user_id`` names the publisher truthfully. The default exchange cannot be limited to some
queues (a permission names the exchange ``amq.default``, never the queue), so a worker that
may retry could put a message in any queue: the consumer's check of the publisher
(:func:`refusal`) is what holds. A message whose type its publisher's role may not publish is
dead-lettered with the reason, never handled.

Roles are on in production always, elsewhere once a role has a password (settings.BUS_ROLES).
Off (a development checkout set up before roles, the test suite's default), every process
connects with ``RABBITMQ_URL``'s user and nothing is checked: :func:`enforced` says which.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

TOPOLOGY = "topology"
RELAY = "relay"
DEADLETTERS = "deadletters"
# The web process's readiness check and the operators' views of queue depths: it connects and
# declares queues passively (which needs no permission), and may configure, write and read nothing.
MONITOR = "monitor"

# The header in which a worker's own republish (a retry, a dead letter) names the message's
# first publisher, as the broker authenticated it: the republish itself carries the worker's
# own user_id. Trusted only on a message whose user_id is the consuming role's own.
PUBLISHER_HEADER = "x-passline-publisher"


@dataclass(frozen=True)
class Command:
    """An RPC command: the role that serves it (its replies must come from that role's user)
    and the roles that may send it."""

    server: str
    callers: frozenset[str]


# Commands sent over RPC (not through the outbox). Every other message type is an event, and
# only the relay publishes events.
RPC_COMMANDS: dict[str, Command] = {
    "balance.debit": Command("balance", frozenset({"billing"})),
    "balance.credit": Command("balance", frozenset({"billing"})),
    "balance.get": Command("balance", frozenset({"billing"})),
}


@dataclass(frozen=True)
class Role:
    name: str
    # The queues its processes consume (``manage.py consume`` names them).
    queues: tuple[str, ...] = ()
    # RPC commands it sends (message types in RPC_COMMANDS).
    calls: tuple[str, ...] = ()


ROLES: dict[str, Role] = {}


def define(role: Role) -> Role:
    """Add a role (this module defines the project's; the test suite adds its own)."""
    taken = {queue: other.name for other in ROLES.values() if other.name != role.name for queue in other.queues}
    clash = [queue for queue in role.queues if queue in taken]
    if clash:
        raise ValueError(f"queue(s) {', '.join(clash)} already belong to another role")
    ROLES[role.name] = role
    return role


for _role in (
    Role(TOPOLOGY),
    Role(RELAY),
    Role("balance", queues=("balance.commands",)),
    Role(
        "billing",
        queues=("billing.order_placed", "billing.refunds", "billing.acceptance_timeout", "billing.top_ups"),
        calls=("balance.debit", "balance.credit", "balance.get"),
    ),
    Role("bridge", queues=("bridge.notification",)),
    Role("audit", queues=("audit.events",)),
    Role("notifier", queues=("notifier.plan", "notifier.push")),
    Role("notifier-email", queues=("notifier.email",)),
    Role("notifier-sms", queues=("notifier.sms",)),
    Role("analytics", queues=("analytics.events",)),
    Role(DEADLETTERS, queues=("bus.deadletters",)),
    Role(MONITOR),
):
    define(_role)


class RoleError(ImproperlyConfigured):
    """A process whose role is unknown, ambiguous or has no credentials."""


def enforced() -> bool:
    """Whether processes connect as their roles' users (and publishers are checked)."""
    return bool(settings.BUS_ROLES)


def role_of_queues(queues: Iterable[str]) -> str:
    """The role whose processes consume ``queues`` (all of them one role's)."""
    queues = list(queues)
    owners = {queue: next((r.name for r in ROLES.values() if queue in r.queues), None) for queue in queues}
    unowned = sorted(q for q, owner in owners.items() if owner is None)
    if unowned:
        raise RoleError(f"no bus role consumes {', '.join(unowned)} (bus/roles.py)")
    names = sorted({owner for owner in owners.values() if owner})
    if len(names) != 1:
        raise RoleError(
            f"{', '.join(queues)} belong to roles {', '.join(names)}: one process consumes one role's queues"
        )
    return names[0]


def user(role: str) -> str:
    """The RabbitMQ user ``role`` connects as (``RABBITMQ_URL``'s user when roles are off)."""
    if not enforced():
        return _url_user()
    return f"{settings.RABBITMQ_USER_PREFIX}{role}"


def credentials(role: str) -> tuple[str, str]:
    """(user, password) of ``role``; RoleError when it has no password configured."""
    if role not in ROLES:
        raise RoleError(f"unknown bus role {role!r}; known: {', '.join(sorted(ROLES))}")
    password = settings.RABBITMQ_ROLE_PASSWORDS.get(role, "")
    if not password:
        raise RoleError(f"bus role {role!r} has no password: set {password_variable(role)}")
    return user(role), password


def password_variable(role: str) -> str:
    return "RABBITMQ_PASSWORD_" + role.upper().replace("-", "_")


def _url_user() -> str:
    username = urlsplit(settings.RABBITMQ_URL).username
    return unquote(username) if username else "guest"


# --- the acting role of a thread ---------------------------------------------------------------

_local = threading.local()


def act_as(role: str | None) -> None:
    """Make ``role`` this thread's (a worker's handler thread: its RPC calls go as its role)."""
    _local.role = role


def acting_role() -> str | None:
    return getattr(_local, "role", None) or settings.PASSLINE_BUS_ROLE or None


# --- who may publish what ----------------------------------------------------------------------


def publishers(type_name: str) -> frozenset[str]:
    """The roles that may publish messages of ``type_name``."""
    command = RPC_COMMANDS.get(type_name)
    return command.callers if command is not None else frozenset({RELAY})


def publisher_of(user_id: Any, headers: dict[str, Any], consumer_role: str) -> str:
    """The user that first published a delivery: its ``user_id`` (the broker vouches for it),
    or, on the consuming role's own republish (a retry), the publisher it recorded then."""
    if not isinstance(user_id, str):
        return ""
    recorded = headers.get(PUBLISHER_HEADER)
    if user_id == user(consumer_role) and isinstance(recorded, (str, bytes)):
        return recorded.decode("utf-8", "replace") if isinstance(recorded, bytes) else recorded
    return user_id


def reply_refusal(type_name: str, user_id: Any) -> str | None:
    """Why an RPC reply from ``user_id`` is not the serving role's; None when it is."""
    command = RPC_COMMANDS.get(type_name)
    if not enforced() or command is None or user_id == user(command.server):
        return None
    return f"a reply to {type_name!r} from user {user_id!r}, not from the {command.server!r} role"


def refusal(type_name: str, publisher: str) -> str | None:
    """Why ``publisher`` (a RabbitMQ user) may not publish ``type_name``; None when it may."""
    if not enforced():
        return None
    allowed = publishers(type_name)
    if publisher and publisher in {user(role) for role in allowed}:
        return None
    who = f"user {publisher!r}" if publisher else "a publisher without user_id"
    return f"unauthorized publisher: {who} may not publish {type_name!r} (only {', '.join(sorted(allowed))})"


# --- what each role's user may do (RabbitMQ permissions) -----------------------------------------

NOTHING = "^$"


def _alternatives(names: Iterable[str]) -> str:
    names = sorted(set(names))
    return "^(" + "|".join(re.escape(name) for name in names) + ")$" if names else NOTHING


def _key_pattern(routing_key: str) -> str:
    """A routing key with ``{field}`` placeholders as a regex matching any one word for each."""
    parts = re.split(r"\{\w+\}", routing_key)
    return r"[^.]+".join(re.escape(part) for part in parts)


def permissions(role: str) -> dict[str, Any]:
    """``{"configure", "write", "read", "topics": {exchange: write regex}}`` for ``role``'s user."""
    from bus.catalog import EVENTS
    from bus.topology import DEAD_LETTER_EXCHANGE, DOMAIN_EXCHANGES

    spec = ROLES[role]
    if role == TOPOLOGY:
        return {"configure": ".*", "write": ".*", "read": ".*", "topics": {}}
    if role == RELAY:
        # Events only: a command's routing key is refused on its exchange by topic permission.
        keys: dict[str, list[str]] = {exchange: [] for exchange in DOMAIN_EXCHANGES}
        for event in EVENTS.values():
            if event.name not in RPC_COMMANDS and event.exchange in keys:
                keys[event.exchange].append(_key_pattern(event.routing_key))
        return {
            "configure": NOTHING,
            "write": _alternatives([*DOMAIN_EXCHANGES, "amq.default"]),
            "read": NOTHING,
            "topics": {exchange: _topic(patterns) for exchange, patterns in keys.items()},
        }
    if role == DEADLETTERS:
        return {"configure": NOTHING, "write": NOTHING, "read": r"\.dead$", "topics": {}}
    if role == MONITOR:
        # A permission entry on the vhost (even this empty one) is what lets it connect.
        return {"configure": NOTHING, "write": NOTHING, "read": NOTHING, "topics": {}}
    commands = [EVENTS[name] for name in spec.calls if name in EVENTS]
    exchanges = sorted({command.exchange for command in commands})
    return {
        "configure": NOTHING,
        # Retries go through the default exchange, dead letters through dead-letter, RPC
        # replies to the caller's direct reply-to (the default exchange again).
        "write": _alternatives(["amq.default", DEAD_LETTER_EXCHANGE, *exchanges]),
        "read": _alternatives(spec.queues),
        "topics": {
            exchange: _topic([_key_pattern(c.routing_key) for c in commands if c.exchange == exchange])
            for exchange in exchanges
        },
    }


def _topic(patterns: list[str]) -> str:
    return "^(" + "|".join(sorted(set(patterns))) + ")$" if patterns else NOTHING


def definitions(
    *, vhost: str, passwords: dict[str, str], create: Iterable[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """RabbitMQ definitions (``rabbitmqctl import_definitions``, or the management API) of every
    role's user, its permissions on ``vhost`` and its topic permissions.

    Only the users in ``create`` (default: all) are in it: importing a user sets its password,
    and an existing user's password is never changed here. Permissions are always in it (they
    follow the code).
    """
    create = set(ROLES if create is None else create)
    users, grants, topics = [], [], []
    for role in sorted(ROLES):
        name = f"{settings.RABBITMQ_USER_PREFIX}{role}"
        if role in create:
            users.append({"name": name, "password": passwords[role], "tags": ""})
        allowed = permissions(role)
        grants.append(
            {
                "user": name,
                "vhost": vhost,
                "configure": allowed["configure"],
                "write": allowed["write"],
                "read": allowed["read"],
            }
        )
        for exchange, write in allowed["topics"].items():
            topics.append({"user": name, "vhost": vhost, "exchange": exchange, "write": write, "read": ".*"})
    return {"users": users, "permissions": grants, "topic_permissions": topics}
