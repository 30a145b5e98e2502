"""Declare the exchanges and every registered consumer's queues (idempotent)."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bus.handlers import registered
from bus.topology import declare_topology


class Command(BaseCommand):
    help = "Declare the RabbitMQ exchanges, queues and bindings."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--recreate-empty",
            action="store_true",
            help="delete and declare anew a queue whose arguments changed when it is empty and unused "
            "(run it with the stack stopped; a queue that still holds messages is only reported)",
        )

    def handle(self, *args: Any, recreate_empty: bool = False, **options: Any) -> None:
        consumers = registered()
        declare_topology(consumers.values(), recreate_empty=recreate_empty)
        self.stdout.write(f"Topology declared: {len(consumers)} consumer(s).")
