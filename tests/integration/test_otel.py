"""OpenTelemetry, the option: with OTEL_EXPORTER_OTLP_ENDPOINT set, the web process exports its
requests' spans and the relay and a worker their RabbitMQ publishes and consumes, joined into one
trace through the message headers, to a real OTLP/HTTP receiver; without it, nothing is set up."""

from __future__ import annotations

import http.server
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from operations import otel
from tests.factories import OrderFactory
from tests.support import ROOT, ManagedProcess, free_port, process_env, wait_until


class Receiver:
    """An OTLP/HTTP endpoint: keeps every span posted to /v1/traces with its service's name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, object]] = []
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/v1/traces":
                    export = ExportTraceServiceRequest.FromString(body)
                    for resource_spans in export.resource_spans:
                        service = next(
                            a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"
                        )
                        for scope in resource_spans.scope_spans:
                            receiver.spans += [(service, span) for span in scope.spans]
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def of(self, service: str) -> list:
        return [span for name, span in self.spans if name == service]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.server.shutdown()


def _traced(receiver: Receiver) -> dict[str, str]:
    # a short batch delay: the spans leave within a fraction of a second
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}


def test_off_by_default_nothing_is_instrumented() -> None:
    from opentelemetry import trace

    assert otel.configure() is False
    assert type(trace.get_tracer_provider()).__name__ in {"ProxyTracerProvider", "NoOpTracerProvider"}


def test_the_process_names_follow_the_procfile() -> None:
    assert otel.process_name([".venv/bin/daphne", "-b", "x"]) == "web"
    assert otel.process_name(["manage.py", "consume", "billing.order_placed", "billing.refunds"]) == (
        "consume-billing.order_placed"
    )
    assert otel.process_name(["manage.py", "relay_outbox"]) == "relay_outbox"


@pytest.mark.django_db(transaction=True)
def test_web_requests_are_exported(receiver: Receiver, tmp_path: Path) -> None:
    port = free_port()
    log = (tmp_path / "web.log").open("wb")
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "passline.asgi:application"],
        cwd=ROOT,
        env=process_env(**_traced(receiver)),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: _answers(f"http://127.0.0.1:{port}/healthz"), timeout=30, what="daphne")
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/restaurants", timeout=5).close()
        wait_until(lambda: receiver.of("passline-web"), timeout=15, what="the web's spans")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    names = {span.name for span in receiver.of("passline-web")}
    assert any("restaurants" in name or name.startswith("GET") for name in names), names


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


@pytest.mark.django_db(transaction=True)
def test_a_message_is_one_trace_from_the_relays_publish_to_the_workers_consume(
    bus, receiver: Receiver, tmp_path: Path, customer, menu
) -> None:
    # a placed order: its order.placed waits in the outbox
    OrderFactory(customer=customer, dish=menu["pizza"])
    env = {**_traced(receiver), "RABBITMQ_URL": bus}
    relay = ManagedProcess("relay_outbox", log_dir=tmp_path, **env)
    audit = ManagedProcess("consume", "audit.events", log_dir=tmp_path, **env)
    try:
        wait_until(
            lambda: receiver.of("passline-relay_outbox") and receiver.of("passline-consume-audit.events"),
            timeout=30,
            what="spans from the relay and the audit worker",
        )
    finally:
        relay.terminate()
        audit.terminate()
    published = receiver.of("passline-relay_outbox")
    consumed = receiver.of("passline-consume-audit.events")
    # the worker's span is a child of the relay's publish: the context travelled in the headers
    assert {span.trace_id for span in consumed} & {span.trace_id for span in published}
    assert any(span.parent_span_id in {p.span_id for p in published} for span in consumed)
