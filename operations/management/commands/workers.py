"""Show the worker registry, queue depths, the outbox's backlog and dead letters; or check that
a role has a live copy (a container's health check).

    manage.py workers                     the whole picture, as a table
    manage.py workers --json              the same, as JSON (what the operations page polls)
    manage.py workers --check billing     exit 1 unless some billing process beats
    manage.py workers --check billing --self
                                          exit 1 unless a billing process of this host beats
"""

from __future__ import annotations

import json
import socket
import sys
from datetime import UTC, datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from bus import registry
from operations import status


def _seconds(value: float | None) -> str:
    if value is None:
        return "?"
    return f"{value:.1f}s" if value < 120 else f"{value / 60:.0f}m"


class Command(BaseCommand):
    help = "Show the live workers, queue depths, outbox backlog and dead letters; --check ROLE for health checks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the snapshot as JSON")
        parser.add_argument("--check", metavar="ROLE", default="", help="exit 1 unless ROLE has a live copy")
        parser.add_argument(
            "--self", dest="own_host", action="store_true", help="with --check: a live copy on this host only"
        )

    def handle(self, *args: Any, as_json: bool, check: str, own_host: bool, **options: Any) -> None:
        if own_host and not check:
            raise CommandError("--self goes with --check ROLE")
        if check:
            self._check(check, own_host)
            return
        snapshot = status.snapshot()
        if as_json:
            self.stdout.write(_json(snapshot))
            return
        self._table(snapshot)

    def _check(self, role: str, own_host: bool) -> None:
        """Only Redis is read: a health check must not depend on the broker or the database."""
        try:
            entries = registry.entries()
        except Exception as error:  # noqa: BLE001 - unreadable registry: unhealthy, say why
            self.stderr.write(f"the worker registry is unreadable: {error!r}")
            sys.exit(1)
        host = socket.gethostname()
        live = [e for e in entries if e.role == role and (not own_host or e.host == host)]
        if not live:
            where = f" on {host}" if own_host else ""
            self.stderr.write(f"no live copy of {role}{where}")
            sys.exit(1)
        self.stdout.write(f"{role}: {len(live)} live, last beat {_seconds(min(e.beat_age for e in live))} ago")

    def _table(self, snapshot: dict[str, Any]) -> None:
        out = self.stdout.write
        rows = [["ROLE", "HOST", "PID", "UP SINCE", "BEAT AGE", "HANDLED", "LAG"]]
        for worker in snapshot["workers"]:
            rows.append(
                [
                    worker["role"],
                    worker["host"],
                    str(worker["pid"]),
                    datetime.fromtimestamp(worker["started"], tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
                    _seconds(worker["beat_age"]),
                    str(worker["handled"]),
                    _seconds(worker["lag"]),
                ]
            )
        for role in snapshot["missing"]:
            rows.append([role, "-", "-", "-", "-", "-", "NO LIVE COPY"])
        out(_columns(rows))
        if snapshot["missing"]:
            out(self.style.ERROR(f"\nroles with no live copy: {', '.join(snapshot['missing'])}"))
        if snapshot["queues"]:
            queues = [["QUEUE", "READY", "UNACKED", "CONSUMERS"]]
            for queue in snapshot["queues"]:
                if queue.get("missing"):
                    queues.append([queue["queue"], "missing", "", ""])
                else:
                    queues.append([queue["queue"], str(queue["ready"]), str(queue["unacked"]), str(queue["consumers"])])
            out("\n" + _columns(queues))
        outbox = snapshot["outbox"]
        if outbox is not None:
            out(f"\noutbox: {outbox['unsent']} unsent, the oldest {_seconds(outbox['oldest_seconds'])} old")
        dead = snapshot["dead_letters"]
        if dead is not None:
            detail = ", ".join(f"{queue} {count}" for queue, count in dead["stored"].items())
            out(f"dead letters stored: {dead['total']}" + (f" ({detail})" if detail else ""))
        if snapshot["breakers"]:
            out("breakers: " + ", ".join(f"{name} {state}" for name, state in snapshot["breakers"].items()))
        for part, error in snapshot["errors"].items():
            out(self.style.WARNING(f"{part} unreadable: {error}"))


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True)
