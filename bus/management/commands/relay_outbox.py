"""Run the outbox relay until SIGTERM."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from bus.relay import OutboxRelay


class Command(BaseCommand):
    help = "Publish committed outbox rows to RabbitMQ with publisher confirms."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500)
        parser.add_argument(
            "--idle-interval",
            type=float,
            default=0.25,
            help="seconds between polls when idle; writers' nudges wake the relay before that",
        )

    def handle(self, *args: Any, batch_size: int, idle_interval: float, **options: Any) -> None:
        OutboxRelay(batch_size=batch_size, idle_interval=idle_interval).run()
