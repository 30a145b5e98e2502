"""Prometheus metrics on the real broker, MariaDB and Redis: the bus's counters move with what
the workers and the relay do, /metrics adds up every process's metrics and answers only private
addresses, a socket counts among the open ones while it lives."""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from pathlib import Path
from typing import cast

import pytest
from django.test import Client
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from bus.models import OutboxMessage
from live import metrics as live_metrics
from ordering.models import Order
from ordering.services import api_token_issue
from tests.broker import queue_depth
from tests.busapp.consumers import test_effects
from tests.factories import OrderFactory
from tests.integration.sockets import ws
from tests.integration.test_bus import effects, emit
from tests.support import ManagedProcess, wait_until

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "ops" / "prometheus"


def value(name: str, **labels: str) -> float:
    """This process's value of a sample (0 when it has none yet)."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def scrape(address: str = "127.0.0.1") -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics as ``address`` would: every sample by name and labels (pids left out, summed)."""
    response = Client(REMOTE_ADDR=address).get("/metrics")
    assert response.status_code == 200, response.status_code
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            key = (sample.name, tuple(sorted((k, v) for k, v in sample.labels.items() if k != "pid")))
            samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def sample(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


# --- the bus --------------------------------------------------------------------------------------


@pytest.fixture
def consumer(run_consumers):
    return run_consumers(test_effects).worker


def test_a_handled_message_counts_on_its_queue_and_the_relay_counts_what_it_published(bus, relay, consumer):
    handled = value("passline_bus_messages_handled_total", queue="test.effects")
    batches = value("passline_bus_handler_seconds_count", queue="test.effects")
    published = value("passline_relay_published_total")
    # earlier tests of the run may have failed messages on this queue in this process
    failed = value("passline_bus_messages_failed_total", queue="test.effects")
    emit("counted", 3)
    wait_until(lambda: effects("counted") == 3)
    wait_until(lambda: value("passline_bus_messages_handled_total", queue="test.effects") == handled + 3)
    assert value("passline_bus_handler_seconds_count", queue="test.effects") > batches
    assert value("passline_bus_messages_failed_total", queue="test.effects") == failed
    assert value("passline_relay_published_total") >= published + 3
    assert value("passline_relay_confirm_seconds_count") >= 1


def test_a_failing_message_counts_as_failed_retried_then_dead_lettered(bus, relay, consumer):
    queue = "test.effects"
    handled, failed, retried = (
        value(f"passline_bus_messages_{name}_total", queue=queue) for name in ("handled", "failed", "retried")
    )
    dead = value("passline_bus_messages_dead_lettered_total", queue=queue, reason="permanent")
    # fails twice, then succeeds on its third attempt
    emit("flaky-metrics", fail_times=2)
    wait_until(lambda: effects("flaky-metrics") == 1, timeout=30)
    wait_until(lambda: value("passline_bus_messages_handled_total", queue=queue) == handled + 1)
    assert value("passline_bus_messages_failed_total", queue=queue) == failed + 2
    assert value("passline_bus_messages_retried_total", queue=queue) == retried + 2
    # can never succeed: dead-lettered at once, for that reason
    emit("hopeless", permanent=True)
    wait_until(lambda: value("passline_bus_messages_dead_lettered_total", queue=queue, reason="permanent") == dead + 1)
    assert value("passline_bus_messages_failed_total", queue=queue) == failed + 3
    assert value("passline_bus_messages_retried_total", queue=queue) == retried + 2


# --- /metrics -------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["203.0.113.7", "8.8.8.8", "2001:db8::1", "not an address"])
def test_metrics_are_refused_to_a_public_address_as_a_page_that_does_not_exist(address):
    response = Client(REMOTE_ADDR=address).get("/metrics")
    assert response.status_code == 404
    assert b"passline_" not in response.content


@pytest.mark.django_db
@pytest.mark.parametrize("address", ["127.0.0.1", "::1", "10.1.2.3", "172.18.0.5", "192.168.1.20"])
def test_metrics_answer_loopback_and_private_networks(address):
    response = Client(REMOTE_ADDR=address).get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_http_latency_is_by_route_and_status_never_by_raw_path(customer):
    client = Client()
    client.get("/healthz")
    client.get("/orders/987654/")  # a page that needs a log-in: a redirect
    client.get("/no/such/page/12345/")
    samples = scrape()
    name = "passline_django_http_requests_latency_seconds_by_view_method_count"
    assert sample(samples, name, view="healthz", method="GET", status="200") >= 1
    assert sample(samples, name, view="order_detail", method="GET", status="302") >= 1
    assert sample(samples, name, view="<unresolved>", method="GET", status="404") >= 1
    assert not [key for key in samples if any("987654" in v or "12345" in v for _, v in key[1])]


def test_the_outbox_backlog_and_its_oldest_row_age_are_read_at_scrape(transactional_db):
    from datetime import timedelta

    from django.utils import timezone

    OutboxMessage.objects.all().delete()
    assert sample(scrape(), "passline_outbox_unsent") == 0
    assert sample(scrape(), "passline_outbox_oldest_unsent_age_seconds") == 0
    OutboxMessage.objects.create(
        message_id="m-old",
        type="test.happened",
        exchange="customer",
        routing_key="x",
        aggregate="a",
        correlation_id="c",
        body="{}",
        created_at=timezone.now() - timedelta(seconds=30),
    )
    OutboxMessage.objects.create(
        message_id="m-new",
        type="test.happened",
        exchange="customer",
        routing_key="x",
        aggregate="a",
        correlation_id="c",
        body="{}",
    )
    samples = scrape()
    assert sample(samples, "passline_outbox_unsent") == 2
    assert 29 <= sample(samples, "passline_outbox_oldest_unsent_age_seconds") < 120
    assert sample(samples, "passline_metrics_collector_up", collector="OutboxCollector") == 1


def test_the_wallet_totals_are_read_at_scrape(transactional_db, customer, settings):
    from decimal import Decimal

    settings.METRICS_LEDGER_CACHE_SECONDS = 0
    from billing.models import LedgerEntry, Wallet

    before = scrape()
    wallet, _ = Wallet.objects.get_or_create(user=customer, defaults={"currency": settings.CURRENCY})
    Wallet.objects.filter(pk=wallet.pk).update(balance=Decimal("12.50"))
    LedgerEntry.objects.create(
        wallet=wallet,
        kind="top_up",
        amount=Decimal("12.50"),
        balance_after=Decimal("12.50"),
        idempotency_key="metrics-test",
        description="test",
    )
    after = scrape()
    currency = settings.CURRENCY
    assert sample(after, "passline_wallets_balance", currency=currency) == pytest.approx(
        sample(before, "passline_wallets_balance", currency=currency) + 12.5
    )
    assert sample(after, "passline_ledger_entries_total", kind="top_up") == (
        sample(before, "passline_ledger_entries_total", kind="top_up") + 1
    )


def test_metrics_add_up_what_a_worker_process_counted(bus, relay, tmp_path):
    """A real `manage.py consume` handles a message; the web's /metrics shows it."""
    queue = "test.effects"
    before = sample(scrape(), "passline_bus_messages_handled_total", queue=queue)
    here = value("passline_bus_messages_handled_total", queue=queue)
    worker = ManagedProcess("consume", queue, log_dir=tmp_path, RABBITMQ_URL=bus)
    try:
        wait_until(lambda: queue_depth(bus, queue)[1] == 1, what="the consumer")
        emit("in-another-process", 2)
        wait_until(lambda: effects("in-another-process") == 2, timeout=30)
        # nothing was handled in this process: the count comes from the worker's files
        assert value("passline_bus_messages_handled_total", queue=queue) == here
        wait_until(lambda: sample(scrape(), "passline_bus_messages_handled_total", queue=queue) == before + 2)
    finally:
        assert worker.terminate() == 0, worker.log()
    # its counters outlive it (a total never falls when a worker exits)
    assert sample(scrape(), "passline_bus_messages_handled_total", queue=queue) == before + 2


# --- sockets --------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_an_open_socket_counts_among_the_connections_until_it_closes(customer, restaurant, menu):
    order = cast(Order, OrderFactory(customer=customer, dish=menu["pizza"]))
    token = api_token_issue(user=customer)
    base = value("passline_live_connections", kind="order")
    frames = value("passline_live_frames_sent_total", kind="order")

    async def scenario():
        socket = ws(f"/ws/orders/{order.pk}/", token)
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from(timeout=5))["type"] == "order.snapshot"
        assert value("passline_live_connections", kind="order") == base + 1
        assert value("passline_live_frames_sent_total", kind="order") == frames + 1
        await socket.disconnect()
        await asyncio.sleep(0.1)

    asyncio.run(scenario())
    assert value("passline_live_connections", kind="order") == base

    # one refused socket never counts as open
    async def refused():
        socket = ws(f"/ws/orders/{order.pk}/")
        await socket.connect()
        await socket.receive_output(timeout=5)
        assert value("passline_live_connections", kind="order") == base
        await socket.disconnect()

    asyncio.run(refused())


@pytest.mark.django_db
def test_a_killed_process_leaves_no_open_sockets_behind(settings):
    """Its live gauge file (a pid of this host that no longer runs) is removed at the next scrape."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    from operations.multiprocess import process_identifier

    dead = process_identifier().rsplit("-", 1)[0] + "-4194999"  # above any pid this kernel hands out
    path = Path(settings.METRICS_DIR) / f"gauge_livesum_{dead}.db"
    help_text = live_metrics.CONNECTIONS._documentation
    key = mmap_key("passline_live_connections", "passline_live_connections", ["kind"], ["kitchen"], help_text)
    file = MmapedDict(str(path))
    file.write_value(key, 7.0, 0.0)
    file.close()
    assert sample(scrape(), "passline_live_connections", kind="kitchen") < 7
    assert not path.exists()


# --- Prometheus's own configuration ---------------------------------------------------------------


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is missing: scripts/setup.sh test installs Debian's prometheus package")
    return promtool


def test_the_prometheus_configuration_is_valid():
    result = subprocess.run(
        [_promtool(), "check", "config", "prometheus.yml"], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_alert_rules_pass_their_tests():
    result = subprocess.run(
        [_promtool(), "test", "rules", "alerts_test.yml"], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_runbook_entry():
    alerts = re.findall(r"^\s*- alert: (\w+)", (PROMETHEUS / "alerts.yml").read_text(), re.M)
    runbook = (ROOT / "docs" / "operations.md").read_text()
    assert alerts
    assert [alert for alert in alerts if f"`{alert}`" not in runbook] == []
