"""Re-join a former MariaDB primary as a replica of the current primary."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from passline.mariadb.hosts import parse_hosts
from passline.mariadb.replication import Admin, ReplicationRefused, rejoin


class Command(BaseCommand):
    help = (
        "Make a server (the old primary after a promotion) a read-only GTID replica of the "
        "primary, and wait until it has caught up."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--server", required=True, help="host:port of the server to re-join")
        parser.add_argument("--primary", required=True, help="host:port of the current primary")
        parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for it to catch up")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            server = parse_hosts(options["server"])[0]
            primary = parse_hosts(options["primary"])[0]
        except ValueError as error:
            raise CommandError(str(error)) from error
        try:
            position = rejoin(
                server,
                primary=primary,
                admin=Admin(settings.DB_ADMIN_USER, settings.DB_ADMIN_PASSWORD),
                replication_user=settings.DB_REPLICATION_USER,
                replication_password=settings.DB_REPLICATION_PASSWORD,
                timeout=options["timeout"],
            )
        except ReplicationRefused as error:
            raise CommandError(f"Not re-joined: {error}") from error
        self.stdout.write(f"{server} replicates from {primary}, caught up to GTID {position}.")
