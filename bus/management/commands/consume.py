"""Run one or more consumers in this process until SIGTERM, connected as their role's RabbitMQ user."""

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bus import roles
from bus.handlers import registered
from bus.runner import WorkerRunner


class Command(BaseCommand):
    help = "Consume the named queues (see `manage.py consume --list`)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", help="consumer queue names, e.g. billing.order_placed")
        parser.add_argument("--list", action="store_true", help="list the consumers and exit")

    def handle(self, *args: Any, names: list[str], list: bool, **options: Any) -> None:
        consumers = registered()
        if list or not names:
            for name in sorted(consumers):
                self.stdout.write(name)
            if not names:
                return
        unknown = [name for name in names if name not in consumers]
        if unknown:
            raise CommandError(f"unknown consumer(s): {', '.join(unknown)}; known: {', '.join(sorted(consumers))}")
        # The process connects as the role whose queues these are (bus/roles.py).
        role = None
        if roles.enforced():
            try:
                role = roles.role_of_queues(names)
            except roles.RoleError as error:
                raise CommandError(str(error)) from None
        WorkerRunner([consumers[name] for name in names], role=role).run()
