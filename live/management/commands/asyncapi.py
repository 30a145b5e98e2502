"""Write the AsyncAPI document (docs/asyncapi.json) from the code, or check that it is current."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from passline.asyncapi import asyncapi_document, render

DEFAULT_PATH = Path(settings.BASE_DIR) / "docs" / "asyncapi.json"


class Command(BaseCommand):
    help = "Write docs/asyncapi.json (the WebSocket frames and RabbitMQ messages) from the code's declarations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--check",
            action="store_true",
            help="Write nothing; exit 1 when the file differs from what the code generates.",
        )
        parser.add_argument("--output", type=Path, default=DEFAULT_PATH, help=f"Default: {DEFAULT_PATH}.")

    def handle(self, *args: Any, check: bool, output: Path, **options: Any) -> None:
        text = render(asyncapi_document())
        if check:
            current = output.read_text(encoding="utf-8") if output.exists() else None
            if current != text:
                raise CommandError(
                    f"{output} is not what the code declares: run manage.py asyncapi and commit it.", returncode=1
                )
            self.stdout.write(f"{output} is current.")
            return
        output.write_text(text, encoding="utf-8")
        self.stdout.write(f"Wrote {output}.")
