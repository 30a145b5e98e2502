"""Create the RabbitMQ user of every bus role and set its permissions (bus/roles.py).

    manage.py bus_users                       with rabbitmqctl, on this machine's broker
    manage.py bus_users --management-url URL  through the management API (a broker in a container)
    manage.py bus_users --list-roles          the role names, one a line (scripts/setup.sh)

Idempotent. A user that exists keeps its password (another running stack may use it); only
missing users are created, with the passwords of RABBITMQ_PASSWORD_<ROLE>. Permissions are
set every time: they follow the code. The vhost is the broker URLs' (RABBITMQ_URLS or
RABBITMQ_URL); users and permissions are the cluster's, so one node is enough.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
import urllib.request
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from bus import roles
from bus.connection import broker_vhost


def _vhost() -> str:
    return broker_vhost()


class Command(BaseCommand):
    help = "Create the RabbitMQ users of the bus roles (missing ones only) and set their permissions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--list-roles", action="store_true", help="print the role names and exit")
        parser.add_argument(
            "--management-url",
            default="",
            help="the management API of the broker, with an administrator's credentials "
            "(http://user:password@rabbitmq:15672); default: rabbitmqctl on this machine",
        )

    def handle(self, *args: Any, list_roles: bool, management_url: str, **options: Any) -> None:
        if list_roles:
            for name in sorted(roles.ROLES):
                self.stdout.write(name)
            return
        passwords = settings.RABBITMQ_ROLE_PASSWORDS
        missing = [roles.password_variable(r) for r in sorted(roles.ROLES) if not passwords.get(r)]
        if missing:
            raise CommandError(f"set {', '.join(missing)} (scripts/setup.sh writes them into .env)")
        api = _Api(management_url) if management_url else None
        existing = api.users() if api else _ctl_users()
        wanted = {f"{settings.RABBITMQ_USER_PREFIX}{role}": role for role in roles.ROLES}
        create = [role for name, role in wanted.items() if name not in existing]
        definitions = roles.definitions(vhost=_vhost(), passwords=passwords, create=create)
        if api:
            api.import_definitions(definitions)
        else:
            _ctl_import(definitions)
            # rabbitmqctl's import finishes in the background: wait until the users are there.
            deadline = time.monotonic() + 30
            while set(wanted) - _ctl_users():
                if time.monotonic() > deadline:
                    raise CommandError("the broker did not create the users within 30 s")
                time.sleep(0.2)
        for role in sorted(create):
            self.stdout.write(f"created RabbitMQ user {settings.RABBITMQ_USER_PREFIX}{role}")
        self.stdout.write(f"permissions of {len(wanted)} bus role(s) set on vhost {_vhost()!r}")


def _rabbitmqctl() -> str:
    return shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"


def _ctl_users() -> set[str]:
    result = subprocess.run(
        [_rabbitmqctl(), "-q", "list_users", "--no-table-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise CommandError(f"rabbitmqctl list_users failed (it needs root): {result.stderr.strip()}")
    return {line.split("\t", 1)[0] for line in result.stdout.splitlines() if line.strip()}


def _ctl_import(definitions: dict[str, Any]) -> None:
    # On standard input: the passwords never reach a file or a command line.
    result = subprocess.run(
        [_rabbitmqctl(), "-q", "import_definitions"],
        input=json.dumps(definitions),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise CommandError(f"rabbitmqctl import_definitions failed: {result.stderr.strip()}")


class _Api:
    def __init__(self, url: str):
        parts = urlsplit(url)
        if parts.scheme not in {"http", "https"}:
            raise CommandError("--management-url must be an http:// or https:// URL.")
        self.base = f"{parts.scheme}://{parts.hostname}:{parts.port or 15672}"
        token = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}"
        self.auth = "Basic " + base64.b64encode(token.encode()).decode()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": self.auth, "Content-Type": "application/json"},
        )
        # An http(s) URL the operator gave, checked in __init__ (bandit B310).
        with urllib.request.urlopen(request, timeout=30) as response:  # nosec B310
            data = response.read()
        return json.loads(data) if data else None

    def users(self) -> set[str]:
        return {user["name"] for user in self._call("GET", "/api/users")}

    def import_definitions(self, definitions: dict[str, Any]) -> None:
        # Vhost permissions are in the definitions; the vhost itself must exist.
        self._call("PUT", f"/api/vhosts/{quote(_vhost(), safe='')}", {})
        self._call("POST", "/api/definitions", definitions)
