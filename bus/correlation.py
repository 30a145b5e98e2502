"""The correlation id of the work in hand, carried from an HTTP request into every message,
and the message in hand, the cause of every message written while it is handled.

Two ContextVars: the HTTP middleware sets the correlation id (or takes it from
``X-Request-ID``), the outbox copies it into each message, the consumer runner restores it,
and a logging filter adds it to every log line. While a consumer handles a message, its id is
the causation id of every message written (``causation_id`` in the envelope); a web request
has none, so the messages it writes have no cause (their correlation id is the request's).
ContextVars follow asyncio tasks and threads started with a copied context, so concurrent
requests never see each other's id.

Batches: a handler given many messages runs each message's own work under that message's
:class:`Trace` (``traced(Trace.of(message.envelope))``), and a service that works on the batch's
orders together enters :func:`trace_of` for each order, from the traces the consumer set with
:func:`batch_traces`: so every log line and every message written names its own request and
cause, never another message's of the same batch.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Hashable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Protocol

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)
# The id of the message being handled: the cause of what is written meanwhile.
_causation_id: ContextVar[str | None] = ContextVar("causation_id", default=None)
# In a batch: the trace of each item a service works on together (an order id -> its message's).
_batch: ContextVar[Mapping[Hashable, Trace] | None] = ContextVar("batch_traces", default=None)

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


def get_causation_id() -> str | None:
    """The id of the message being handled, or None (a web request, a command line)."""
    return _causation_id.get()


class _Traceable(Protocol):
    @property
    def message_id(self) -> str: ...

    @property
    def correlation_id(self) -> str: ...


@dataclass(frozen=True)
class Trace:
    """Whose work this is: the request's correlation id and the message being handled."""

    correlation_id: str
    causation_id: str | None = None

    @classmethod
    def of(cls, envelope: _Traceable) -> Trace:
        """The trace of handling the message of ``envelope``."""
        return cls(envelope.correlation_id, envelope.message_id)


def current_trace() -> Trace | None:
    correlation_id = _correlation_id.get()
    return Trace(correlation_id, _causation_id.get()) if correlation_id else None


@contextmanager
def traced(trace: Trace | None) -> Iterator[Trace | None]:
    """Run a block of work under ``trace`` (None: as it is), restoring the previous one after."""
    if trace is None:
        yield None
        return
    token = _correlation_id.set(trace.correlation_id)
    cause = _causation_id.set(trace.causation_id)
    try:
        yield trace
    finally:
        _causation_id.reset(cause)
        _correlation_id.reset(token)


@contextmanager
def batch_traces(traces: Mapping[Hashable, Trace]) -> Iterator[None]:
    """Tell the services a batch handler calls whose work each item is (see :func:`trace_of`)."""
    token = _batch.set(traces)
    try:
        yield
    finally:
        _batch.reset(token)


def trace_of(key: Hashable) -> Trace | None:
    """The trace of a batch's item (e.g. an order id), or None outside a batch that names it."""
    traces = _batch.get()
    return traces.get(key) if traces is not None else None


def first_traces(items: list[tuple[Hashable, Trace]]) -> dict[Hashable, Trace]:
    """Traces by key, the first message of a key winning (services keep an item's first too)."""
    traces: dict[Hashable, Trace] = {}
    for key, trace in items:
        traces.setdefault(key, trace)
    return traces
