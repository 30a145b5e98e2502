"""Print the start-up banner: where Passline serves and how to log in."""

import shutil

from django.conf import settings
from django.core.management.base import BaseCommand

from ordering.demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Print the URL and the demo logins."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url: str, **options) -> None:
        url = url.rstrip("/") + "/"
        lines = [
            "Passline is starting",
            "",
            f"  Site      {url}",
            f"  API       {url}api/v1/",
            f"  API docs  {url}api/v1/docs  (schema: /api/v1/openapi.json)",
            f"  Admin     {url}admin/",
            f"  Kitchen   {url}kitchen/  (log in as a kitchen user)",
            f"  Dashboard {url}dashboard/  (kitchen users: their restaurant; admin: all)",
            f"  Metrics   {url}metrics  (loopback and private networks)",
            (
                f"  Prometheus http://127.0.0.1:{settings.PROMETHEUS_PORT}/  (alerts: /alerts)"
                if shutil.which("prometheus")
                else "  Prometheus not installed (scripts/setup.sh installs it)"
            ),
            "",
            f"  Logins (password: {DEMO_PASSWORD})",
            "    admin      superuser (admin site, every restaurant's dashboard)",
            "    demo       customer (notification emails print in the notifier-email output)",
            "    kitchen1   staff of Trattoria Nonna Lucia (kitchen screen)",
            "    kitchen2   staff of Sakura Ramen Bar",
            "    kitchen3   staff of Green Bowl Kitchen",
            "",
            "  Ctrl-C stops every process.",
        ]
        width = max(len(line) for line in lines) + 4
        self.stdout.write("+" + "-" * width + "+")
        for line in lines:
            self.stdout.write("|  " + line.ljust(width - 2) + "|")
        self.stdout.write("+" + "-" * width + "+")
