"""OpenTelemetry traces, as an option: on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Then every process of the stack exports spans over OTLP/HTTP to that endpoint (a collector,
Jaeger, Tempo…): the web process its HTTP requests (Django's instrumentation, ASGI included), the
workers and the relay their RabbitMQ publishes and consumes (pika's, which carries the trace
context in the message headers, so one order's spans join up across processes). The standard
``OTEL_*`` variables configure the rest (``OTEL_SERVICE_NAME`` overrides the name chosen here,
``OTEL_TRACES_SAMPLER`` the sampling, ``OTEL_EXPORTER_OTLP_HEADERS`` credentials).

Off, nothing is imported and nothing costs anything. The correlation id of the logs
(bus/correlation.py) stays the way to follow an order without a tracing back end.
"""

from __future__ import annotations

import logging
import os
import sys

logger = logging.getLogger(__name__)

_configured = False


def process_name(argv: list[str] | None = None) -> str:
    """``web`` under daphne, else the management command and its arguments, as the Procfile
    names the process (``consume-billing.order_placed``, ``relay_outbox``, ``scheduler``)."""
    argv = sys.argv if argv is None else argv
    program = os.path.basename(argv[0]) if argv else ""
    if program.startswith(("daphne", "uvicorn")):
        return "web"
    if len(argv) > 1 and program in {"manage.py", "django-admin"}:
        return "-".join(argv[1:3]) if argv[1] == "consume" and len(argv) > 2 else argv[1]
    return program or "python"


def configure() -> bool:
    """Start exporting if ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set; whether it did. Idempotent."""
    global _configured
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    if _configured or not endpoint:
        return _configured
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.instrumentation.pika import PikaInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or f"passline-{process_name()}"
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()
    PikaInstrumentor().instrument()
    _configured = True
    logger.info("opentelemetry on", extra={"endpoint": endpoint, "service": name})
    return True


def shutdown() -> None:
    """Flush the spans still buffered (a process that exits calls it; atexit does too)."""
    if not _configured:
        return
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    shutdown_provider = getattr(provider, "shutdown", None)
    if shutdown_provider is not None:
        shutdown_provider()
