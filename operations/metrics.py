"""The web process's ``/metrics``: every process's metrics added up, and what is read from the
database at scrape time.

``/metrics`` answers only callers from ``METRICS_ALLOWED_NETWORKS`` (loopback and the private
networks: Prometheus, compose's network); anyone else gets the site's 404, as for an address
that does not exist. It reads the files every process writes (operations/multiprocess.py) and
runs the collectors of ``PASSLINE_METRICS_COLLECTORS``: here the outbox's backlog and the wallet
ledger's totals, each query cut off after ``METRICS_QUERY_TIMEOUT`` seconds; a collector that
fails leaves its metrics out of that scrape (``passline_metrics_collector_up`` says so) instead
of failing the scrape.

HTTP metrics come from django-prometheus's middleware, with two changes: the latency histogram
has the response's status as a label, and the route is the URL's name (or its pattern when it
has none, ``<unresolved>`` for a 404): never the raw path, whose ids would make a series each.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from datetime import UTC
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import Http404, HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.module_loading import import_string
from django_prometheus.middleware import (  # type: ignore[import-untyped]  # no type information
    Metrics,
    PrometheusAfterMiddleware,
    PrometheusBeforeMiddleware,
)
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from operations.multiprocess import remove_dead_local

logger = logging.getLogger(__name__)

LATENCY = "django_http_requests_latency_seconds_by_view_method"


# --- /metrics ---------------------------------------------------------------------------------


def allowed_client(address: str | None) -> bool:
    """Whether ``address`` is in one of ``METRICS_ALLOWED_NETWORKS``."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in ipaddress.ip_network(network, strict=False) for network in settings.METRICS_ALLOWED_NETWORKS)


class _Guarded:
    """A scrape-time collector whose failure leaves out its metrics, not the whole scrape."""

    def __init__(self, name: str, collector: Collector) -> None:
        self.name = name
        self.collector = collector
        self.up = True

    def collect(self) -> Iterable[Metric]:
        try:
            metrics = list(self.collector.collect())
        except DatabaseError as error:
            logger.warning("metrics collector %s failed: %r", self.name, error)
            self.up = False
            return []
        self.up = True
        return metrics


class _CollectorsUp:
    def __init__(self, guarded: list[_Guarded]) -> None:
        self.guarded = guarded

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "passline_metrics_collector_up",
            "1 when the scrape-time collector answered in this scrape, 0 when it failed (the database?)",
            labels=["collector"],
        )
        for guarded in self.guarded:
            up.add_metric([guarded.name], 1 if guarded.up else 0)
        return [up]


_registry: CollectorRegistry | None = None
_registry_lock = threading.Lock()


def registry() -> CollectorRegistry:
    """The registry /metrics serves: every process's files and the scrape-time collectors."""
    global _registry
    with _registry_lock:
        if _registry is None:
            built = CollectorRegistry()
            MultiProcessCollector(built, path=str(settings.METRICS_DIR))
            guarded = [
                _Guarded(path.rsplit(".", 1)[-1], import_string(path)())
                for path in settings.PASSLINE_METRICS_COLLECTORS
            ]
            for collector in guarded:
                built.register(collector)
            built.register(_CollectorsUp(guarded))
            _registry = built
        return _registry


def _scrape() -> HttpResponse:
    remove_dead_local(str(settings.METRICS_DIR))
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def metrics(request: HttpRequest) -> HttpResponse:
    if not allowed_client(request.META.get("REMOTE_ADDR")):
        raise Http404
    return _scrape()


# --- scrape-time collectors -------------------------------------------------------------------


def _query(sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    """One read, cut off after METRICS_QUERY_TIMEOUT seconds (MariaDB's max_statement_time)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SET STATEMENT max_statement_time={float(settings.METRICS_QUERY_TIMEOUT)} FOR {sql}", params)
        return list(cursor.fetchall())


class OutboxCollector:
    """The outbox's unsent rows and the age of the oldest: two reads on the ``outbox_unsent``
    index (the oldest row by id, then its creation time)."""

    def collect(self) -> Iterator[Metric]:
        from bus.models import OutboxMessage

        table = OutboxMessage._meta.db_table
        [(unsent, oldest_id)] = _query(f"SELECT COUNT(*), MIN(id) FROM {table} WHERE sent_at IS NULL")  # nosec B608 - the model's own table name
        age = 0.0
        if oldest_id is not None:
            rows = _query(f"SELECT created_at FROM {table} WHERE id = %s", [oldest_id])  # nosec B608 - as above
            if rows:
                created = rows[0][0]
                if timezone.is_naive(created):
                    created = timezone.make_aware(created, UTC)
                age = max(0.0, (timezone.now() - created).total_seconds())
        yield GaugeMetricFamily(
            "passline_outbox_unsent", "Outbox rows not published yet (the relay's backlog)", value=unsent
        )
        yield GaugeMetricFamily(
            "passline_outbox_oldest_unsent_age_seconds",
            "Age of the oldest outbox row not published yet (0 when none is waiting)",
            value=age,
        )


class WalletLedgerCollector:
    """Money in the wallets and the ledger's movements by kind. The ledger is scanned whole
    (one GROUP BY), so the answer is kept METRICS_LEDGER_CACHE_SECONDS and reused meanwhile.

    The sum of the balances equals the sum of every ledger entry (top-ups minus charges plus
    refunds): a difference between the two is money that moved without its entry."""

    _cache: tuple[float, list[Metric]] | None = None
    _lock = threading.Lock()

    def collect(self) -> list[Metric]:
        with self._lock:
            now = time.monotonic()
            cached = type(self)._cache
            if cached is not None and now - cached[0] < settings.METRICS_LEDGER_CACHE_SECONDS:
                return cached[1]
            metrics = self._read()
            type(self)._cache = (now, metrics)
            return metrics

    @staticmethod
    def _read() -> list[Metric]:
        from billing.models import LedgerEntry, Wallet

        currency = settings.CURRENCY
        [(wallets, balances)] = _query(f"SELECT COUNT(*), COALESCE(SUM(balance), 0) FROM {Wallet._meta.db_table}")  # nosec B608 - the model's own table name
        by_kind = _query(
            f"SELECT kind, COUNT(*), COALESCE(SUM(ABS(amount)), 0) FROM {LedgerEntry._meta.db_table} GROUP BY kind"  # nosec B608 - as above
        )
        balance = GaugeMetricFamily(
            "passline_wallets_balance", "Sum of every wallet's balance (money customers hold)", labels=["currency"]
        )
        balance.add_metric([currency], float(Decimal(balances)))
        count = GaugeMetricFamily("passline_wallets", "Wallets", value=wallets)
        entries = CounterMetricFamily(
            "passline_ledger_entries",
            "Wallet ledger entries written, by kind (top_up, charge, refund)",
            labels=["kind"],
        )
        amounts = CounterMetricFamily(
            "passline_ledger_amount",
            "Money moved through the wallet ledger, by kind (absolute amounts)",
            labels=["kind", "currency"],
        )
        seen = {kind: (number, total) for kind, number, total in by_kind}
        for kind in sorted(set(LedgerEntry.Kind.values) | set(seen)):
            number, total = seen.get(kind, (0, 0))
            entries.add_metric([kind], number)
            amounts.add_metric([kind, currency], float(Decimal(total)))
        return [balance, count, entries, amounts]


# --- HTTP (django-prometheus) -----------------------------------------------------------------


class HttpMetrics(Metrics):
    """django-prometheus's metrics, its latency histogram labelled by status too."""

    def register_metric(self, metric_cls, name, documentation, labelnames=(), **kwargs):
        if name == LATENCY:
            labelnames = [*labelnames, "status"]
            documentation = "Time from the first middleware to the response, by route, method and status"
        return super().register_metric(metric_cls, name, documentation, labelnames=labelnames, **kwargs)


class HttpBeforeMiddleware(PrometheusBeforeMiddleware):
    """django-prometheus's first middleware; it also answers Prometheus's own GET /metrics from
    an allowed address before the rest of the chain: a scrape is no request of the site (not
    counted, no session), and reaches the web by an address of the private network (``web:8000``
    in compose) that is no host of the site and over plain HTTP, which the site would refuse or
    redirect. Anyone else goes down the chain to the route, which answers them 404."""

    metrics_cls = HttpMetrics

    def __call__(self, request: HttpRequest):
        if (
            not self.async_mode
            and request.path_info == "/metrics"
            and request.method in ("GET", "HEAD")
            and allowed_client(request.META.get("REMOTE_ADDR"))
        ):
            return _scrape()
        return super().__call__(request)


class HttpAfterMiddleware(PrometheusAfterMiddleware):
    """Routes by the URL's name or pattern, latency by status too; an exception is counted and
    its latency observed once, with the 500 that answered it."""

    metrics_cls = HttpMetrics

    def _get_view_name(self, request: HttpRequest) -> str:
        match = getattr(request, "resolver_match", None)
        if match is None:
            return "<unresolved>"
        return str(match.view_name or match.route or "<unnamed view>")

    def label_metric(self, metric, request, response=None, **labels):
        if metric is self.metrics.requests_latency_by_view_method:
            labels["method"] = self._method(request)
            labels["status"] = str(response.status_code) if response is not None else "500"
        return super().label_metric(metric, request, response, **labels)

    def process_exception(self, request, exception):
        self.label_metric(self.metrics.exceptions_by_type, request, type=type(exception).__name__).inc()
        self.label_metric(self.metrics.exceptions_by_view, request, view=self._get_view_name(request)).inc()
