"""Promote the MariaDB replica to primary (after the primary died, or for a planned switch-over)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from passline.mariadb.hosts import parse_hosts
from passline.mariadb.replication import Admin, ReplicationRefused, promote


class Command(BaseCommand):
    help = (
        "Make a caught-up replica the primary: wait until it has applied every transaction it "
        "received, stop replication, take writes; fence the old primary (read-only) if it answers. "
        "Refuses, changing nothing, when the target is not a caught-up replica."
    )
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--replica", required=True, help="host:port of the replica to promote")
        parser.add_argument(
            "--old-primary", help="host:port of the primary to fence (default: the one the replica replicates from)"
        )
        parser.add_argument(
            "--timeout", type=float, default=60.0, help="seconds to wait for the replica to catch up (default 60)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            replica = parse_hosts(options["replica"])[0]
            old = parse_hosts(options["old_primary"])[0] if options["old_primary"] else None
        except ValueError as error:
            raise CommandError(str(error)) from error
        admin = Admin(settings.DB_ADMIN_USER, settings.DB_ADMIN_PASSWORD)
        try:
            done = promote(replica, admin=admin, old_primary=old, timeout=options["timeout"])
        except ReplicationRefused as error:
            raise CommandError(f"Not promoted: {error}") from error
        fenced = "fenced (read-only)" if done.old_primary_fenced else "NOT reachable: keep it from coming back writable"
        self.stdout.write(
            f"{done.primary} is the primary at GTID {done.gtid_position} ({done.waited_seconds:.2f} s); "
            f"old primary {done.old_primary} {fenced}. Re-join it with: manage.py db_rejoin "
            f"--server {done.old_primary} --primary {done.primary}"
        )
