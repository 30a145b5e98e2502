"""The worker registry as Prometheus gauges, read from Redis at each scrape.

``passline_workers_alive{role}``: live registry entries of each role (0 for a role of the
Procfile with none: the alert "a worker role with no live copy" fires on it);
``passline_worker_beat_age_seconds{role}``: seconds since the stalest live copy of the role
last beat (none for a role without a live copy).

The registry is shared by every process, so one process exports it: the web process's
``/metrics`` runs :class:`WorkersCollector` at each scrape (settings.PASSLINE_METRICS_COLLECTORS,
operations/metrics.py).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bus import registry
from operations.status import role_summaries

logger = logging.getLogger(__name__)


class WorkersCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        try:
            summaries = role_summaries(registry.entries())
        except Exception as error:  # noqa: BLE001 - Redis away must not fail the whole scrape
            logger.warning("worker registry unreadable for /metrics: %r", error)
            return
        alive = GaugeMetricFamily("passline_workers_alive", "Live worker registry entries per role", labels=["role"])
        age = GaugeMetricFamily(
            "passline_worker_beat_age_seconds",
            "Seconds since the stalest live copy of each role last beat",
            labels=["role"],
        )
        for summary in summaries:
            alive.add_metric([summary.role], summary.alive)
            if summary.max_beat_age is not None:
                age.add_metric([summary.role], summary.max_beat_age)
        yield alive
        yield age
