"""Structured logging: one JSON object a line, each carrying the correlation id."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

from bus.correlation import get_correlation_id

# Attributes every LogRecord has; anything else was passed through ``extra=`` and is
# emitted as a field of its own.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime", "correlation_id"}


# Which process of the Procfile this is (scripts/supervise.py sets it): the processes share
# one terminal under ``make run``, and one log stream in most deployments.
ROLE = os.environ.get("PASSLINE_PROCESS", "-")


class CorrelationIdFilter(logging.Filter):
    """Stamp the current correlation id (or "-") and the process's role on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", None):
            record.correlation_id = get_correlation_id() or "-"
        record.role = ROLE
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "-"),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)
