"""Run every housekeeping job once, now, and say what each deleted."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from operations.housekeeping import JOBS, run_job


class Command(BaseCommand):
    help = "Prune what grows with every order (bus rows, audit, notifications, sessions) once, now."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("jobs", nargs="*", help=f"some of: {', '.join(job.name for job in JOBS)} (default: all)")

    def handle(self, *args: Any, **options: Any) -> None:
        names = options["jobs"] or [job.name for job in JOBS]
        unknown = set(names) - {job.name for job in JOBS}
        if unknown:
            raise CommandError(f"No such job: {', '.join(sorted(unknown))}.")
        failed = []
        for job in JOBS:
            if job.name not in names:
                continue
            counts = run_job(job)
            if counts is None:
                failed.append(job.name)
                continue
            self.stdout.write(f"{job.name}: " + ", ".join(f"{n} {table} row(s)" for table, n in counts.items()))
        if failed:
            raise CommandError(f"Failed: {', '.join(failed)} (see the log).")
