"""Declare the exchanges and every registered consumer's queues (idempotent)."""

from django.core.management.base import BaseCommand

from bus.consumer import registered
from bus.topology import declare_topology


class Command(BaseCommand):
    help = "Declare the RabbitMQ exchanges, queues and bindings."

    def handle(self, *args, **options) -> None:
        consumers = registered()
        declare_topology(consumers.values())
        self.stdout.write(f"Topology declared: {len(consumers)} consumer(s).")
