"""The correlation id of the work in hand, carried from an HTTP request into every message.

One ContextVar: the HTTP middleware sets it (or takes it from ``X-Request-ID``), the outbox
copies it into each message, the consumer runner restores it, and a logging filter adds it
to every log line. ContextVars follow asyncio tasks and threads started with a copied
context, so concurrent requests never see each other's id.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)

# An id from outside is accepted only if it looks like an id: it ends up in logs and
# message headers, so nothing that could forge a log line gets through.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def clean_correlation_id(candidate: str | None) -> str:
    """The caller's id if it is acceptable, otherwise a fresh one."""
    if candidate and _ACCEPTABLE.match(candidate):
        return candidate
    return new_correlation_id()


def get_correlation_id() -> str | None:
    return _correlation_id.get()


def current_or_new_correlation_id() -> str:
    return _correlation_id.get() or new_correlation_id()


@contextmanager
def correlation_context(correlation_id: str) -> Iterator[str]:
    """Run a block of work under ``correlation_id``, restoring the previous one after."""
    token = _correlation_id.set(correlation_id)
    try:
        yield correlation_id
    finally:
        _correlation_id.reset(token)
