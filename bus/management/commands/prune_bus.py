"""Delete sent outbox rows and old processed-message records (run it daily, from cron or a
scheduler): both tables otherwise grow with every message for ever."""

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bus.services import RetentionTooShort, bus_prune


class Command(BaseCommand):
    help = "Delete outbox rows sent, and processed-message records written, more than --days ago."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=float, default=7.0, help="what to keep, in days (at least 1; default 7)")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            counts = bus_prune(older_than=timedelta(days=options["days"]))
        except RetentionTooShort as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Pruned {counts['outbox']} sent outbox row(s) and {counts['processed']} "
            f"processed-message record(s) older than {options['days']:g} day(s)."
        )
